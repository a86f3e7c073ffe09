//! `probenet supervise`: keeps the components of a local install running without systemd. It starts them in
//! order (each waited for until healthy, bounded), restarts a crashed one with backoff (a bounded number of
//! restarts per minute, then marks it failed), re-reads its file and restarts the components named in the
//! restart file on SIGHUP, and stops them all, probers first, on SIGTERM.
//!
//! An upgrade replaces the supervisor too, without stopping anything: on SIGHUP with the re-exec file present it
//! executes the installed binary (`supervise --adopt`) in its own process, whose children the components stay;
//! the new image adopts them from the state file and watches them with `waitpid`.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::http::{Get, Http};
use crate::layout::Layout;
use crate::local::{Component, Health, Role};

/// Restarts allowed within [`RESTART_WINDOW`]; one more marks the component failed.
pub const MAX_RESTARTS: usize = 5;
/// The window restarts are counted in.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// How long a component may take to stop after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the supervisor waits for a component to be healthy before starting the next one anyway.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_millis(200);

/// Why the supervisor could not run.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The component file is not valid.
    #[error("{path}: not a valid component list: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Another supervisor runs for this install.
    #[error("a supervisor already runs (pid {0})")]
    Running(u32),
}

/// What the signal handlers tell the supervisor.
#[derive(Debug, Default)]
pub struct Control {
    /// SIGTERM or SIGINT: stop everything and exit.
    pub stop: AtomicBool,
    /// SIGHUP: re-read the component file and the restart file.
    pub reload: AtomicBool,
}

/// A component's state as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Its process runs.
    Running,
    /// It exited; it is started again after a delay.
    Backoff,
    /// It crashed too often; started again only on SIGHUP.
    Failed,
    /// Stopped by the supervisor.
    Stopped,
}

/// One component in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentState {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: RunState,
    /// Its process id while running.
    pub pid: Option<u32>,
    /// How often it was restarted after exiting.
    pub restarts: u64,
}

/// The state file (`run/probenet/supervise-state.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The supervisor's process id.
    pub pid: u32,
    /// The supervisor's version (absent before 0.2.0, whose supervisors cannot re-exec).
    #[serde(default)]
    pub version: Option<String>,
    /// When the running image of the supervisor started (unix ms; a re-exec changes it, the pid stays).
    #[serde(default)]
    pub image_started_ms: Option<i64>,
    /// Every component, in start order.
    pub components: Vec<ComponentState>,
}

impl State {
    /// Reads the state file, if there is one.
    pub fn read(layout: &Layout) -> Option<Self> {
        serde_json::from_str(&fs::read_to_string(layout.supervisor_state()).ok()?).ok()
    }

    /// A component's state.
    pub fn component(&self, name: &str) -> Option<&ComponentState> {
        self.components.iter().find(|component| component.name == name)
    }
}

/// Reads the component list.
pub fn read_components(path: &Path) -> Result<Vec<Component>, SuperviseError> {
    let text = fs::read_to_string(path).map_err(|source| SuperviseError::Io { path: path.to_owned(), source })?;
    serde_json::from_str(&text)
        .map_err(|error| SuperviseError::Invalid { path: path.to_owned(), message: error.to_string() })
}

/// The pid in the supervisor's pid file when that process still runs.
pub fn running_pid(layout: &Layout) -> Option<u32> {
    let pid: u32 = fs::read_to_string(layout.supervisor_pid()).ok()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

/// Whether a process runs (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends a signal (`TERM`, `KILL`, `HUP`) to a process; false when it could not be sent.
pub fn signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A component's process: started by this image, or adopted from the image before a re-exec (still this
/// process's child, but without a [`Child`] handle).
enum Process {
    Spawned(Child),
    Adopted(u32),
}

impl Process {
    fn id(&self) -> u32 {
        match self {
            Self::Spawned(child) => child.id(),
            Self::Adopted(pid) => *pid,
        }
    }

    /// Its exit, once it exited (reaped); None while it runs.
    fn try_wait(&mut self) -> Option<String> {
        match self {
            Self::Spawned(child) => child.try_wait().ok().flatten().map(|status: ExitStatus| status.to_string()),
            Self::Adopted(pid) => {
                let pid = nix::unistd::Pid::from_raw(i32::try_from(*pid).unwrap_or(i32::MAX));
                match nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                    Ok(nix::sys::wait::WaitStatus::StillAlive) => None,
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => Some(format!("exit status: {code}")),
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) => Some(format!("signal: {signal}")),
                    Ok(_) => None,
                    // Not (or no longer) a child: gone.
                    Err(error) => Some(format!("not waitable: {error}")),
                }
            }
        }
    }

    /// Kills it and reaps it.
    fn kill(&mut self) {
        match self {
            Self::Spawned(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Self::Adopted(pid) => {
                let pid = nix::unistd::Pid::from_raw(i32::try_from(*pid).unwrap_or(i32::MAX));
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
            }
        }
    }
}

struct Running {
    spec: Component,
    child: Option<Process>,
    state: RunState,
    restarts: u64,
    recent: VecDeque<Instant>,
    next_start: Option<Instant>,
}

/// Runs the supervisor of `layout` until `control.stop`: writes the pid and state files, starts every
/// component, keeps them running. `user` is the uid and gid components run as (None: the supervisor's).
///
/// With `adopt` (after a re-exec), components whose process the state file names and that still run are
/// adopted instead of started.
pub fn run(
    layout: &Layout,
    control: &Control,
    http: &dyn Http,
    user: Option<(u32, u32)>,
    adopt: bool,
    log: &mut dyn std::io::Write,
) -> Result<(), SuperviseError> {
    if let Some(pid) = running_pid(layout).filter(|pid| *pid != std::process::id()) {
        return Err(SuperviseError::Running(pid));
    }
    let io = |path: PathBuf| move |source| SuperviseError::Io { path: path.clone(), source };
    fs::create_dir_all(layout.run_dir()).map_err(io(layout.run_dir()))?;
    fs::write(layout.supervisor_pid(), format!("{}\n", std::process::id())).map_err(io(layout.supervisor_pid()))?;
    let specs = read_components(&layout.supervisor_file())?;
    image_started_ms();
    let mut components: Vec<Running> = specs.into_iter().map(new_running).collect();
    let adopted = if adopt { adopt_running(&mut components, layout, log) } else { 0 };
    let _ = writeln!(log, "supervise: probenet {} (pid {})", env!("CARGO_PKG_VERSION"), std::process::id());
    let _ = writeln!(log, "supervise: starting {} components", components.len() - adopted);
    for index in 0..components.len() {
        if control.stop.load(Ordering::SeqCst) {
            break;
        }
        if components[index].child.is_some() {
            continue;
        }
        start(&mut components[index], layout, user, log);
        write_state(layout, &components);
        wait_healthy(&components[index].spec.health, http, control);
    }
    while !control.stop.load(Ordering::SeqCst) {
        std::thread::sleep(TICK);
        if control.reload.swap(false, Ordering::SeqCst) {
            reload(&mut components, layout, user, log);
            if fs::remove_file(layout.supervisor_reexec()).is_ok() {
                write_state(layout, &components);
                reexec(layout, log);
            }
        }
        let mut changed = false;
        for component in &mut components {
            changed |= watch(component, layout, user, log);
        }
        if changed {
            write_state(layout, &components);
        }
    }
    let _ = writeln!(log, "supervise: stopping every component");
    for component in components.iter_mut().rev() {
        stop(component, log);
    }
    write_state(layout, &components);
    let _ = fs::remove_file(layout.supervisor_pid());
    let _ = fs::remove_file(layout.supervisor_state());
    Ok(())
}

/// Takes over the components the state file says run, by pid; returns how many.
fn adopt_running(components: &mut [Running], layout: &Layout, log: &mut dyn std::io::Write) -> usize {
    let Some(state) = State::read(layout) else { return 0 };
    let mut adopted = 0;
    for component in components.iter_mut() {
        let Some(known) = state.component(&component.spec.name) else { continue };
        let Some(pid) = known.pid else { continue };
        let mut process = Process::Adopted(pid);
        // One that exited meanwhile is reaped here and started again by the caller.
        if let Some(status) = process.try_wait() {
            let _ = writeln!(log, "supervise: {} exited during the re-exec ({status})", component.spec.name);
            continue;
        }
        let _ = writeln!(log, "supervise: adopted {} (pid {pid})", component.spec.name);
        component.child = Some(process);
        component.state = RunState::Running;
        component.restarts = known.restarts;
        adopted += 1;
    }
    write_state(layout, components);
    adopted
}

/// Replaces this process's image with the installed binary's `supervise --adopt`; returns only when that
/// failed (this image then goes on).
fn reexec(layout: &Layout, log: &mut dyn std::io::Write) {
    let binary = layout.binary();
    // A binary that cannot even parse `supervise --adopt` must not replace this image: its components would be
    // left without a supervisor.
    let usable = Command::new(&binary)
        .args(["supervise", "--adopt", "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !usable {
        let _ = writeln!(log, "supervise: {} cannot run `supervise --adopt`; this version goes on", binary.display());
        return;
    }
    let _ = writeln!(log, "supervise: re-executing {}", binary.display());
    let _ = log.flush();
    let error = Command::new(&binary).arg("supervise").arg("--root").arg(layout.root()).arg("--adopt").exec();
    let _ = writeln!(log, "supervise: cannot re-execute {}: {error}; this version goes on", binary.display());
}

fn new_running(spec: Component) -> Running {
    Running { spec, child: None, state: RunState::Stopped, restarts: 0, recent: VecDeque::new(), next_start: None }
}

fn wait_healthy(health: &Health, http: &dyn Http, control: &Control) {
    let healthy = || match health {
        Health::Tcp { address } => std::net::TcpStream::connect_timeout(address, Duration::from_secs(1)).is_ok(),
        _ => Get::of_health(health).is_none_or(|get| matches!(http.get(&get), Ok((200, _)))),
    };
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline && !control.stop.load(Ordering::SeqCst) {
        if healthy() {
            return;
        }
        std::thread::sleep(TICK);
    }
}

/// Reads `NAME=value` lines of an environment file.
fn env_file(path: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, value)| (name.trim().to_owned(), value.to_owned())))
        .collect()
}

fn start(component: &mut Running, layout: &Layout, user: Option<(u32, u32)>, log: &mut dyn std::io::Write) {
    let spec = &component.spec;
    let mut words: Vec<String> = Vec::new();
    if let Some(netns) = &spec.netns {
        words.extend(["ip".to_owned(), "netns".to_owned(), "exec".to_owned(), netns.clone()]);
    }
    words.extend(spec.exec.iter().cloned());
    let Some((program, args)) = words.split_first() else { return };
    let path = layout.log_dir().join(format!("{}.log", spec.name));
    let output = OpenOptions::new().create(true).append(true).open(&path);
    let (stdout, stderr) = match output.and_then(|file| Ok((file.try_clone()?, file))) {
        Ok((out, err)) => (Stdio::from(out), Stdio::from(err)),
        Err(_) => (Stdio::null(), Stdio::null()),
    };
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    if let Some(file) = &spec.env_file {
        command.envs(env_file(file));
    }
    // PostgreSQL refuses to run as root: as root without a components' user (an install below another root),
    // it runs as Debian's `postgres` user, which owns its directory.
    let user = match (&spec.role, user) {
        (Role::Database, None) => crate::apply::database_user(layout),
        (_, user) => user,
    };
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    match command.spawn() {
        Ok(child) => {
            let _ = writeln!(log, "supervise: started {} (pid {})", spec.name, child.id());
            component.child = Some(Process::Spawned(child));
            component.state = RunState::Running;
        }
        Err(error) => {
            let _ = writeln!(log, "supervise: cannot start {}: {error}", spec.name);
            component.state = RunState::Backoff;
            after_exit(component, log);
        }
    }
}

/// Counts an exit: backoff (1 s, doubling, at most 30 s), or failed after too many restarts in the window.
fn after_exit(component: &mut Running, log: &mut dyn std::io::Write) {
    let now = Instant::now();
    component.recent.push_back(now);
    while component.recent.front().is_some_and(|at| now.duration_since(*at) > RESTART_WINDOW) {
        component.recent.pop_front();
    }
    if component.recent.len() > MAX_RESTARTS {
        let _ = writeln!(
            log,
            "supervise: {} exited {} times within {}s: marked failed (SIGHUP starts it again)",
            component.spec.name,
            component.recent.len(),
            RESTART_WINDOW.as_secs()
        );
        component.state = RunState::Failed;
        component.next_start = None;
        return;
    }
    let exponent = u32::try_from(component.recent.len().saturating_sub(1)).unwrap_or(5).min(5);
    let delay = Duration::from_secs(1u64 << exponent).min(Duration::from_secs(30));
    component.state = RunState::Backoff;
    component.next_start = Some(now + delay);
}

/// Notices an exit and restarts when its backoff is over; true when the state changed.
fn watch(component: &mut Running, layout: &Layout, user: Option<(u32, u32)>, log: &mut dyn std::io::Write) -> bool {
    if let Some(child) = &mut component.child
        && let Some(status) = child.try_wait()
    {
        let _ = writeln!(log, "supervise: {} exited ({status})", component.spec.name);
        component.child = None;
        after_exit(component, log);
        return true;
    }
    if component.state == RunState::Backoff && component.next_start.is_some_and(|at| Instant::now() >= at) {
        component.restarts += 1;
        component.next_start = None;
        start(component, layout, user, log);
        return true;
    }
    false
}

fn stop(component: &mut Running, log: &mut dyn std::io::Write) {
    if let Some(mut child) = component.child.take() {
        let pid = child.id();
        signal(pid, "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut exited = child.try_wait().is_some();
        while !exited && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            exited = child.try_wait().is_some();
        }
        if !exited {
            let _ =
                writeln!(log, "supervise: {} did not stop in {}s: killed", component.spec.name, STOP_TIMEOUT.as_secs());
            child.kill();
        }
        let _ = writeln!(log, "supervise: stopped {}", component.spec.name);
    }
    component.state = RunState::Stopped;
    component.next_start = None;
}

/// SIGHUP: the component file again (removed components stop, new ones start, changed ones restart, failed
/// ones start again) and the restart file (those components restart, in the file's order; the file is removed).
fn reload(components: &mut Vec<Running>, layout: &Layout, user: Option<(u32, u32)>, log: &mut dyn std::io::Write) {
    let specs = match read_components(&layout.supervisor_file()) {
        Ok(specs) => specs,
        Err(error) => {
            let _ = writeln!(log, "supervise: reload refused, keeping the components: {error}");
            return;
        }
    };
    let mut old: BTreeMap<String, Running> =
        components.drain(..).map(|component| (component.spec.name.clone(), component)).collect();
    for spec in specs {
        let component = match old.remove(&spec.name) {
            Some(mut component) if component.spec == spec => {
                if component.state == RunState::Failed {
                    component.recent.clear();
                    start(&mut component, layout, user, log);
                }
                component
            }
            Some(mut component) => {
                stop(&mut component, log);
                component.spec = spec;
                start(&mut component, layout, user, log);
                component
            }
            None => {
                let mut component = new_running(spec);
                start(&mut component, layout, user, log);
                component
            }
        };
        components.push(component);
    }
    for (_, mut component) in old {
        stop(&mut component, log);
    }
    let restart = fs::read_to_string(layout.supervisor_restart()).unwrap_or_default();
    for name in restart.lines().map(str::trim).filter(|name| !name.is_empty()) {
        if let Some(component) = components.iter_mut().find(|component| component.spec.name == name) {
            let _ = writeln!(log, "supervise: restarting {name} as asked");
            stop(component, log);
            component.recent.clear();
            start(component, layout, user, log);
        }
    }
    let _ = fs::remove_file(layout.supervisor_restart());
    write_state(layout, components);
}

/// When this image started (unix ms), fixed at its first call.
fn image_started_ms() -> i64 {
    static STARTED: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    })
}

fn write_state(layout: &Layout, components: &[Running]) {
    let state = State {
        pid: std::process::id(),
        version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        image_started_ms: Some(image_started_ms()),
        components: components
            .iter()
            .map(|component| ComponentState {
                name: component.spec.name.clone(),
                state: component.state,
                pid: component.child.as_ref().map(Process::id),
                restarts: component.restarts,
            })
            .collect(),
    };
    if let Ok(text) = serde_json::to_string_pretty(&state) {
        let path = layout.supervisor_state();
        let temporary = path.with_extension("tmp");
        if fs::write(&temporary, text).is_ok() {
            let _ = fs::rename(&temporary, &path);
        }
    }
}
