//! One Chromium process: finding the binary, starting it headless with a fresh profile and the flags that keep
//! it from calling home, talking to it over its DevTools pipe (never a TCP port), and stopping (killing and
//! reaping) it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chromiumoxide_cdp::cdp::browser_protocol::browser::{CloseParams, GetVersionParams};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::{oneshot, watch};

use crate::cdp::{Cdp, CdpError};

/// The environment variable naming the Chromium binary to use.
pub const ENV_BINARY: &str = "PROBENET_CHROMIUM";
/// The binaries looked for on `PATH`, in order, when [`ENV_BINARY`] is not set.
pub const CANDIDATES: [&str; 4] = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

/// How long Chromium may take to answer its first DevTools call.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful close may take before the process is killed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How many of Chromium's last stderr lines are kept to explain a failed start.
const STDERR_LINES: usize = 8;

/// Flags for a headless browser that stays quiet: no first-run UI, no background traffic (updates, sync,
/// metrics, component downloads, safe browsing), no QUIC, and no throttling of pages that are not in front
/// (journeys run side by side in one browser).
const FLAGS: [&str; 27] = [
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,InterestFeedContentSuggestions,CertificateTransparencyComponentUpdater",
    "--disable-field-trial-config",
    "--no-pings",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-ipc-flooding-protection",
    "--disable-dev-shm-usage",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--hide-scrollbars",
];

/// The window (and so viewport) size of every page.
pub const WINDOW: (u32, u32) = (1280, 800);

/// Finds the Chromium binary: `PROBENET_CHROMIUM` (a path, or a name looked up on `PATH`), else the first of
/// [`CANDIDATES`] on `PATH`. `env` reads an environment variable (the process's, or a test's).
pub fn find_binary(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, String> {
    let path = env("PATH").unwrap_or_default();
    let on_path = |name: &str| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|file| is_executable(file));
    if let Some(chosen) = env(ENV_BINARY).filter(|value| !value.is_empty()) {
        let chosen = PathBuf::from(chosen);
        if chosen.components().count() == 1 {
            return on_path(&chosen.to_string_lossy())
                .ok_or_else(|| format!("{ENV_BINARY}={}: no such program on PATH", chosen.display()));
        }
        return if is_executable(&chosen) {
            Ok(chosen)
        } else {
            Err(format!("{ENV_BINARY}={}: no such executable file", chosen.display()))
        };
    }
    CANDIDATES.iter().find_map(|name| on_path(name)).ok_or_else(|| {
        format!("no Chromium found: install `chromium` or set {ENV_BINARY} (looked for {})", CANDIDATES.join(", "))
    })
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(file).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root (Chromium's sandbox then cannot start, and `--no-sandbox` is needed).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .is_some_and(|effective| effective == "0")
    })
}

/// What Chromium prints when its sandbox cannot start: no usable sandbox at all (no user namespaces and no
/// setuid helper), or user namespaces refused (a seccomp profile, a sysctl).
const SANDBOX_FAILURES: [&str; 3] = ["No usable sandbox", "Failed to move to new namespace", "zygote_host_impl_linux"];

/// Whether a failed start failed because Chromium's sandbox could not start.
fn sandbox_unusable(message: &str) -> bool {
    SANDBOX_FAILURES.iter().any(|failure| message.contains(failure))
}

/// The start of a profile directory's name, followed by the owning process's id.
const PROFILE_PREFIX: &str = "probenet-chromium-";

/// Removes the profile directories of processes that are gone (killed before they could clean up).
fn remove_stale_profiles() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner =
            name.to_str().and_then(|name| name.strip_prefix(PROFILE_PREFIX)?.split('-').next()?.parse::<u32>().ok());
        if let Some(owner) = owner
            && !Path::new(&format!("/proc/{owner}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs its arguments with the standard input and output moved to fds 3 and 4, where `--remote-debugging-pipe`
/// makes Chromium read DevTools commands and write answers and events; fds 0 and 1 become `/dev/null`. (Done by
/// the shell so that no unsafe `pre_exec` is needed; `setpriv` and `unshare` pass the descriptors on.)
const PIPE_SHELL: [&str; 3] = ["-c", "exec 3<&0 4>&1 </dev/null >/dev/null; exec \"$@\"", "sh"];

/// The arguments that run Chromium as the first process of a new PID namespace, killed with `unshare`.
const UNSHARE_ARGS: [&str; 4] = ["--pid", "--fork", "--kill-child=SIGKILL", "--"];

/// `unshare`, if this process may create PID namespaces with it (tried once).
async fn pid_namespaces() -> Option<&'static Path> {
    static ALLOWED: tokio::sync::OnceCell<Option<&'static Path>> = tokio::sync::OnceCell::const_new();
    *ALLOWED
        .get_or_init(|| async {
            let unshare =
                ["/usr/bin/unshare", "/bin/unshare"].into_iter().map(Path::new).find(|path| is_executable(path))?;
            let probe = tokio::process::Command::new(unshare)
                .args(UNSHARE_ARGS)
                .arg("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status();
            match tokio::time::timeout(CLOSE_TIMEOUT, probe).await {
                Ok(Ok(status)) if status.success() => Some(unshare),
                _ => None,
            }
        })
        .await
}

/// Whether a process runs (not gone, not a zombie): a killed browser is known dead at once, before its pipe
/// has been seen to close.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned)))
        .is_some_and(|state| state != "Z" && state != "X")
}

/// The processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect();
    children.sort_unstable();
    children
}

/// The parent of a process, from `/proc/PID/stat` (the field after the parenthesised name).
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn signal_kill(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

/// A running Chromium and the connection to it. Dropping it kills the process, which a task on the runner's
/// thread then reaps; [`Chromium::stop`] closes it gracefully first.
#[derive(Debug)]
pub struct Chromium {
    /// The DevTools connection (over the pipe).
    pub cdp: Cdp,
    /// The browser's version string, such as `Chrome/148.0.7778.167`.
    pub version: String,
    /// The process id of Chromium's main process.
    pub pid: Option<u32>,
    /// Whether Chromium runs in its own sandbox (false as root, or where the sandbox could not start).
    pub sandbox: bool,
    /// Why the sandboxed start failed, when this browser runs without its sandbox for that reason.
    pub sandbox_error: Option<String>,
    /// Set when the browser misbehaved (a context could not be closed): the next run starts a new one.
    unhealthy: AtomicBool,
    /// Turns true once the process has exited (and been reaped).
    exited: watch::Receiver<bool>,
    /// Dropping (or sending on) it makes the process's watcher kill it.
    kill: Mutex<Option<oneshot::Sender<()>>>,
    /// The profile directory, removed when the browser is dropped.
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts `binary` and connects to it. Call it on the runner's thread: the process and the connection
    /// belong to the runtime that starts them.
    ///
    /// As root, Chromium's sandbox cannot start and it runs without. Otherwise it starts sandboxed; where the
    /// sandbox is not usable (a container runtime that allows no user namespaces, no setuid sandbox helper), it
    /// is started again without, and [`Chromium::sandbox`] says so.
    pub async fn launch(binary: &Path) -> Result<Self, String> {
        if running_as_root() {
            return Self::start(binary, false).await;
        }
        match Self::start(binary, true).await {
            Err(message) if sandbox_unusable(&message) => {
                let mut chromium = Self::start(binary, false).await?;
                chromium.sandbox_error = Some(message);
                Ok(chromium)
            }
            started => started,
        }
    }

    async fn start(binary: &Path, sandbox: bool) -> Result<Self, String> {
        remove_stale_profiles();
        let profile = tempfile::Builder::new()
            .prefix(&format!("{PROFILE_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|error| format!("cannot create a browser profile directory: {error}"))?;
        // `setpriv --pdeathsig` makes the kernel kill the process if this thread dies without stopping it (a
        // crash, a test binary exiting). Under `unshare --pid` (when allowed: as root), Chromium is the first
        // process of its own PID namespace: when it exits, the kernel kills and reaps every process it started,
        // so none is left behind as an orphan or a zombie, whatever this machine's init does.
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().map(Path::new).find(|path| is_executable(path));
        let unshare = pid_namespaces().await;
        let mut command = tokio::process::Command::new("/bin/sh");
        command.args(PIPE_SHELL);
        if let Some(setpriv) = setpriv {
            command.arg(setpriv).args(["--pdeathsig", "KILL", "--"]);
        }
        if let Some(unshare) = unshare {
            command.arg(unshare).args(UNSHARE_ARGS);
        }
        command
            .arg(binary)
            .args(FLAGS)
            .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-pipe")
            .arg("--lang=en-US");
        if !sandbox {
            // Headless Chromium without its sandbox needs to run without the zygote too on these machines.
            command.args(["--no-sandbox", "--no-zygote"]);
        }
        command
            .arg("about:blank")
            .env("LANG", "C.UTF-8")
            .env_remove("LANGUAGE")
            .env_remove("LC_ALL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child =
            command.spawn().map_err(|error| format!("cannot start Chromium ({}): {error}", binary.display()))?;
        let child_pid = child.id();
        let (Some(commands), Some(answers), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, child.wait()).await;
            return Err("cannot connect to Chromium's DevTools pipe".to_owned());
        };
        // Read stderr to its end, so that Chromium never blocks on a full pipe; its last lines explain a failed
        // start.
        let said = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr_task = tokio::spawn({
            let said = said.clone();
            async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut said = said.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    if said.len() == STDERR_LINES {
                        said.remove(0);
                    }
                    said.push(line);
                }
            }
        });
        let cdp = Cdp::start(answers, commands);

        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (exited_tx, exited) = watch::channel(false);
        // Under `unshare`, Chromium is the child of our child; known once it answers.
        let (init_tx, init_rx) = oneshot::channel::<Option<u32>>();
        tokio::spawn(async move {
            tokio::select! {
                _ = child.wait() => {}
                // A kill request, or the `Chromium` being dropped.
                _ = kill_rx => {
                    // Killing the namespace's first process ends the namespace; `unshare` then exits by itself.
                    if let Ok(Some(init)) = init_rx.await {
                        signal_kill(init);
                    }
                    if tokio::time::timeout(CLOSE_TIMEOUT, child.wait()).await.is_err() {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                    }
                }
            }
            let _ = exited_tx.send(true);
        });

        let version = tokio::time::timeout(LAUNCH_TIMEOUT, cdp.execute(None, GetVersionParams::default())).await;
        let pid = match (unshare, child_pid) {
            (Some(_), Some(parent)) => children_of(parent).first().copied().or(child_pid),
            _ => child_pid,
        };
        let _ = init_tx.send(pid.filter(|pid| Some(*pid) != child_pid));
        let version = match version {
            Ok(Ok(version)) => version.product,
            failed => {
                let _ = kill_tx.send(());
                let mut exited = exited.clone();
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, exited.wait_for(|exited| *exited)).await;
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, stderr_task).await;
                let why = match failed {
                    Err(_) => format!("no answer on the DevTools pipe within {}s", LAUNCH_TIMEOUT.as_secs()),
                    Ok(Err(CdpError::Closed)) => "it exited".to_owned(),
                    Ok(Err(error)) => format!("it does not answer: {error}"),
                    Ok(Ok(_)) => String::new(),
                };
                let said = said.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let said = said.iter().map(|line| line.trim()).filter(|line| !line.is_empty()).collect::<Vec<_>>();
                let said = if said.is_empty() { String::new() } else { format!(": {}", said.join(" | ")) };
                return Err(format!("Chromium ({}) did not start: {why}{said}", binary.display()));
            }
        };
        Ok(Self {
            cdp,
            version,
            pid,
            sandbox,
            sandbox_error: None,
            unhealthy: AtomicBool::new(false),
            exited,
            kill: Mutex::new(Some(kill_tx)),
            _profile: profile,
        })
    }

    /// Whether the process runs and nothing marked it unhealthy.
    pub fn alive(&self) -> bool {
        !*self.exited.borrow()
            && !self.unhealthy.load(Ordering::Relaxed)
            && !self.cdp.is_closed()
            && self.pid.is_none_or(running)
    }

    /// Whether the process has exited.
    pub fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    /// Marks the browser for replacement at the next run.
    pub fn mark_unhealthy(&self) {
        self.unhealthy.store(true, Ordering::Relaxed);
    }

    /// Resolves once the process has exited.
    pub async fn exited(&self) {
        let mut exited = self.exited.clone();
        let _ = exited.wait_for(|exited| *exited).await;
    }

    /// Closes the browser (gracefully, then by force), and waits until the process is reaped.
    pub async fn stop(&self) {
        if !*self.exited.borrow() {
            let close = self.cdp.execute(None, CloseParams::default());
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
            if tokio::time::timeout(CLOSE_TIMEOUT, self.exited()).await.is_err() {
                self.kill();
            }
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.exited()).await;
        }
    }

    /// Kills the process now (its watcher reaps it).
    pub fn kill(&self) {
        if let Some(kill) = self.kill.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            let _ = kill.send(());
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.kill();
    }
}
