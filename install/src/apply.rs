//! Carries out a local plan in order: packages (with consent), user, binary, directories, certificates and
//! secrets (0600), configuration, units or the supervisor's file, then starts each component and waits until it
//! is healthy, with a progress line per step on the progress writer.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use probenet_scheduler::tokens::Scope;

use crate::http::{Get, Http};
use crate::layout::Layout;
use crate::local::{Component, Health, Role};
use crate::plan::{Action, CertUsage, PRIVATE, Plan, ServiceManager};
use crate::secrets::{self, SecretError};

/// How long a component may take to become healthy.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

/// The binaries the packages install, by package.
pub const PACKAGE_BINARIES: [(&str, &[&str]); 2] = [
    ("victoria-metrics", &["/usr/bin/victoria-metrics", "/usr/bin/vmalert"]),
    ("prometheus-alertmanager", &["/usr/bin/prometheus-alertmanager"]),
];

/// Why an install stopped. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Packages are missing and `--yes` was not given.
    #[error("needs the packages {}: run again with --yes to install them with apt-get", .0.join(" "))]
    NeedPackages(Vec<String>),
    /// A command failed.
    #[error("{command}: {message}")]
    Command {
        /// The command (no secret is ever on a command line).
        command: String,
        /// What went wrong.
        message: String,
    },
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A secret could not be made.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A component did not become healthy in time.
    #[error("{component} is not healthy after {}s ({last}); see {log}", .waited.as_secs())]
    Unhealthy {
        /// The component.
        component: String,
        /// How long it was waited for.
        waited: Duration,
        /// The last error.
        last: String,
        /// Where its log is.
        log: String,
    },
    /// The supervisor did not start.
    #[error("the supervisor did not start; see {0}")]
    Supervisor(String),
}

/// How to carry out a plan.
pub struct Options<'a> {
    /// Where everything goes.
    pub layout: Layout,
    /// Whether packages may be installed without asking.
    pub yes: bool,
    /// The probenet binary to install (the running one).
    pub binary: PathBuf,
    /// The HTTP client of health checks and the scheduler's API.
    pub http: &'a dyn Http,
    /// Where progress lines go.
    pub progress: &'a mut dyn std::io::Write,
    /// How long each component may take to become healthy.
    pub health_timeout: Duration,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("layout", &self.layout).field("yes", &self.yes).finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io { path: path.to_owned(), source }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// The uid and gid of the `probenet` user when components should run as it: installing to `/` as root with
/// the user present.
pub fn component_user(layout: &Layout) -> Option<(u32, u32)> {
    if layout.root() != Path::new("/") || !is_root() {
        return None;
    }
    let out = |flag: &str| {
        let output = Command::new("id").arg(flag).arg(crate::layout::USER).stderr(Stdio::null()).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse::<u32>().ok()
    };
    Some((out("-u")?, out("-g")?))
}

fn run(command: &mut Command) -> Result<(), ApplyError> {
    let text = format!("{command:?}").replace('"', "");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| ApplyError::Command { command: text.clone(), message: error.to_string() })?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = format!("{} {}", output.status, stderr.lines().last().unwrap_or_default());
        Err(ApplyError::Command { command: text, message })
    }
}

/// The packages whose binaries are missing on this host.
pub fn missing_packages(packages: &[String]) -> Vec<String> {
    packages
        .iter()
        .filter(|package| {
            PACKAGE_BINARIES
                .iter()
                .find(|(name, _)| name == package)
                .is_none_or(|(_, binaries)| binaries.iter().any(|binary| !Path::new(binary).exists()))
        })
        .cloned()
        .collect()
}

fn install_packages(packages: &[String], yes: bool) -> Result<(), ApplyError> {
    let missing = missing_packages(packages);
    if missing.is_empty() {
        return Ok(());
    }
    if !yes {
        return Err(ApplyError::NeedPackages(missing));
    }
    // policy-rc.d keeps the packaged services from starting (probenet runs its own).
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        fs::write(policy, "#!/bin/sh\n# written by probenet install while it installs packages\nexit 101\n")
            .map_err(io(policy))?;
        fs::set_permissions(policy, fs::Permissions::from_mode(0o755)).map_err(io(policy))?;
    }
    let result = run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    if ours {
        let _ = fs::remove_file(policy);
    }
    result
}

/// Writes `contents` with `mode` unless the file already holds it.
pub fn write_file(path: &Path, mode: u32, contents: &str) -> Result<(), ApplyError> {
    if fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))?;
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    if mode == PRIVATE {
        let _ = fs::remove_file(path);
        return Ok(secrets::write_private(path, contents.as_bytes())?);
    }
    let temporary = path.with_extension("tmp-probenet");
    fs::write(&temporary, contents).map_err(io(path))?;
    fs::set_permissions(&temporary, fs::Permissions::from_mode(mode)).map_err(io(path))?;
    fs::rename(&temporary, path).map_err(io(path))
}

/// Copies `from` to `to` (0755) through a temporary file and a rename, so a running binary is never written.
pub fn install_binary(from: &Path, to: &Path) -> Result<(), ApplyError> {
    if fs::read(from).ok() == fs::read(to).ok() && to.exists() {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let temporary = to.with_extension("new");
    fs::copy(from, &temporary).map_err(io(to))?;
    fs::set_permissions(&temporary, fs::Permissions::from_mode(0o755)).map_err(io(to))?;
    fs::rename(&temporary, to).map_err(io(to))
}

/// The scheduler's base URL for its API, from its health check.
pub fn scheduler_api(components: &[Component]) -> Option<String> {
    components.iter().find(|component| component.role == Role::Scheduler).and_then(|component| {
        match &component.health {
            Health::Http { url, .. } => url.strip_suffix("/healthz").map(str::to_owned),
            Health::Registered { .. } => None,
        }
    })
}

/// A GET of the scheduler's admin API.
pub fn admin_get(layout: &Layout, components: &[Component], path: &str) -> Option<Get> {
    let base = scheduler_api(components)?;
    Some(Get {
        ca: Some(layout.ca_cert()),
        bearer_file: Some(layout.admin_token()),
        ..Get::new(format!("{base}{path}"))
    })
}

/// Whether a component answers its health check; the error says why not.
pub fn check_health(health: &Health, layout: &Layout, components: &[Component], http: &dyn Http) -> Result<(), String> {
    match health {
        Health::Http { .. } => {
            let get = Get::of_health(health).ok_or_else(|| "no health check".to_owned())?;
            match http.get(&get) {
                Ok((200, _)) => Ok(()),
                Ok((status, _)) => Err(format!("status {status}")),
                Err(error) => Err(error.message),
            }
        }
        Health::Registered { name } => {
            let get = admin_get(layout, components, "/api/v1/probers").ok_or_else(|| "no scheduler".to_owned())?;
            let (status, body) = http.get(&get).map_err(|error| error.message)?;
            let probers: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let listed = probers.as_array().is_some_and(|all| all.iter().any(|p| p["name"] == name.as_str()));
            if status == 200 && listed { Ok(()) } else { Err(format!("{name} is not registered")) }
        }
    }
}

/// Waits (bounded) until a component is healthy.
pub fn wait_healthy(
    component: &Component,
    layout: &Layout,
    components: &[Component],
    http: &dyn Http,
    timeout: Duration,
) -> Result<Duration, ApplyError> {
    let started = Instant::now();
    let mut last = String::from("not checked");
    while started.elapsed() < timeout {
        match check_health(&component.health, layout, components, http) {
            Ok(()) => return Ok(started.elapsed()),
            Err(error) => last = error,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(ApplyError::Unhealthy {
        component: component.name.clone(),
        waited: timeout,
        last,
        log: layout.log_dir().join(format!("{}.log", component.name)).display().to_string(),
    })
}

/// Starts `probenet supervise --root ROOT` detached (its own session, stdin closed, output to its log), or
/// asks a running one to re-read its file; waits until its pid file names a live process.
pub fn start_supervisor(layout: &Layout, binary: &Path) -> Result<u32, ApplyError> {
    if let Some(pid) = crate::supervise::running_pid(layout) {
        crate::supervise::signal(pid, "HUP");
        return Ok(pid);
    }
    let log_path = layout.supervisor_log();
    fs::create_dir_all(layout.log_dir()).map_err(io(&layout.log_dir()))?;
    fs::create_dir_all(layout.run_dir()).map_err(io(&layout.run_dir()))?;
    let log = fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(io(&log_path))?;
    let err = log.try_clone().map_err(io(&log_path))?;
    let mut command = if Path::new("/usr/bin/setsid").exists() {
        let mut command = Command::new("/usr/bin/setsid");
        command.arg(binary);
        command
    } else {
        Command::new(binary)
    };
    command.arg("supervise").arg("--root").arg(layout.root()).stdin(Stdio::null()).stdout(log).stderr(err);
    let mut child = command.spawn().map_err(|error| ApplyError::Command {
        command: format!("{} supervise", binary.display()),
        message: error.to_string(),
    })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(pid) = crate::supervise::running_pid(layout) {
            // Reap the direct child in the background so it never lingers as a zombie.
            std::thread::spawn(move || child.wait());
            return Ok(pid);
        }
        if let Ok(Some(status)) = child.try_wait()
            && !status.success()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ApplyError::Supervisor(log_path.display().to_string()))
}

/// Carries out every step of `plan`, printing a line per step; returns the components it started.
pub fn apply(plan: &Plan, options: &mut Options<'_>) -> Result<(), ApplyError> {
    let layout = options.layout.clone();
    let manager = match plan.target {
        crate::plan::Target::Local(manager) => manager,
        crate::plan::Target::Kubernetes { .. } => ServiceManager::Supervisor,
    };
    let mut started_manager = false;
    for action in plan.actions() {
        match action {
            Action::InstallPackages { packages } => {
                progress(options, &format!("packages: {}", packages.join(" ")));
                install_packages(packages, options.yes)?;
            }
            Action::DisablePackagedService { unit } => {
                let _ = run(Command::new("systemctl").args(["disable", "--now", unit]));
            }
            Action::CreateUser { name } => {
                if layout.root() == Path::new("/") && is_root() && component_user(&layout).is_none() {
                    progress(options, &format!("creating system user {name}"));
                    let home = layout.data();
                    run(Command::new("useradd")
                        .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin"])
                        .arg("--home-dir")
                        .arg(&home)
                        .arg(name))?;
                }
            }
            Action::InstallBinary { path } => {
                progress(options, &format!("binary {}", path.display()));
                install_binary(&options.binary, path)?;
            }
            Action::CreateDir { path, mode } => {
                fs::create_dir_all(path).map_err(io(path))?;
                fs::set_permissions(path, fs::Permissions::from_mode(*mode)).map_err(io(path))?;
            }
            Action::CreateCa { .. } => {}
            Action::CreateCert { usage: CertUsage::Server, sans, cert, .. } => {
                progress(options, "certificates: CA and server");
                let dir = cert.parent().unwrap_or(Path::new("."));
                secrets::ca_and_server(dir, sans)?;
            }
            Action::CreateCert { usage: CertUsage::Client, common_name, cert, key, .. } => {
                let dir = cert.parent().unwrap_or(Path::new("."));
                secrets::client_cert(dir, common_name, cert, key)?;
            }
            Action::CreatePassword { file, env_file, variable, .. } => {
                progress(options, "secrets: store password");
                secrets::password(file, env_file, variable)?;
            }
            Action::CreateToken { region, data, file } => {
                progress(options, &format!("secrets: prober token of region {region}"));
                secrets::token(&Scope::Region(region.clone()), data, file)?;
                secrets::token(&Scope::Admin, data, &layout.admin_token())?;
            }
            Action::WriteFile { path, mode, contents, .. } => write_file(path, *mode, contents)?,
            Action::Start { component } => {
                if !started_manager {
                    own_files(&layout)?;
                }
                match manager {
                    ServiceManager::Supervisor if !started_manager => {
                        let pid = start_supervisor(&layout, &layout.binary())?;
                        progress(options, &format!("supervisor running (pid {pid}), starting {component}"));
                    }
                    ServiceManager::Supervisor => progress(options, &format!("starting {component}")),
                    ServiceManager::Systemd => {
                        if !started_manager {
                            run(Command::new("systemctl").arg("daemon-reload"))?;
                        }
                        progress(options, &format!("starting {component}"));
                        run(Command::new("systemctl").args(["enable", "--now", component]))?;
                    }
                }
                started_manager = true;
            }
            Action::WaitHealthy { component, .. } => {
                if let Some(spec) = plan.components.iter().find(|spec| spec.name == *component) {
                    let waited = wait_healthy(spec, &layout, &plan.components, options.http, options.health_timeout)?;
                    progress(options, &format!("{component} is healthy ({:.1}s)", waited.as_secs_f64()));
                }
            }
            Action::ShowResults { .. } | Action::Object { .. } => {}
        }
    }
    Ok(())
}

/// Gives the install's files to the components' user (installs to `/` as root).
fn own_files(layout: &Layout) -> Result<(), ApplyError> {
    if component_user(layout).is_none() {
        return Ok(());
    }
    let owner = format!("{0}:{0}", crate::layout::USER);
    for dir in [layout.etc(), layout.data(), layout.log_dir()] {
        if dir.exists() {
            run(Command::new("chown").arg("-R").arg(&owner).arg(&dir))?;
        }
    }
    Ok(())
}

fn progress(options: &mut Options<'_>, line: &str) {
    let _ = writeln!(options.progress, "probenet: {line}");
}
