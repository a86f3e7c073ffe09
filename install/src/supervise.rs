//! `probenet supervise`: keeps the components of a local install running without systemd. It starts them in
//! order (each waited for until healthy, bounded), restarts a crashed one with backoff (a bounded number of
//! restarts per minute, then marks it failed), re-reads its file and restarts the components named in the
//! restart file on SIGHUP, and stops them all, probers first, on SIGTERM.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::http::{Get, Http};
use crate::layout::Layout;
use crate::local::{Component, Health};

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

struct Running {
    spec: Component,
    child: Option<Child>,
    state: RunState,
    restarts: u64,
    recent: VecDeque<Instant>,
    next_start: Option<Instant>,
}

/// Runs the supervisor of `layout` until `control.stop`: writes the pid and state files, starts every
/// component, keeps them running. `user` is the uid and gid components run as (None: the supervisor's).
pub fn run(
    layout: &Layout,
    control: &Control,
    http: &dyn Http,
    user: Option<(u32, u32)>,
    log: &mut dyn std::io::Write,
) -> Result<(), SuperviseError> {
    if let Some(pid) = running_pid(layout).filter(|pid| *pid != std::process::id()) {
        return Err(SuperviseError::Running(pid));
    }
    let io = |path: PathBuf| move |source| SuperviseError::Io { path: path.clone(), source };
    fs::create_dir_all(layout.run_dir()).map_err(io(layout.run_dir()))?;
    fs::write(layout.supervisor_pid(), format!("{}\n", std::process::id())).map_err(io(layout.supervisor_pid()))?;
    let specs = read_components(&layout.supervisor_file())?;
    let mut components: Vec<Running> = specs.into_iter().map(new_running).collect();
    let _ = writeln!(log, "supervise: starting {} components", components.len());
    for index in 0..components.len() {
        if control.stop.load(Ordering::SeqCst) {
            break;
        }
        start(&mut components[index], layout, user, log);
        write_state(layout, &components);
        wait_healthy(&components[index].spec.health, http, control);
    }
    while !control.stop.load(Ordering::SeqCst) {
        std::thread::sleep(TICK);
        if control.reload.swap(false, Ordering::SeqCst) {
            reload(&mut components, layout, user, log);
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

fn new_running(spec: Component) -> Running {
    Running { spec, child: None, state: RunState::Stopped, restarts: 0, recent: VecDeque::new(), next_start: None }
}

fn wait_healthy(health: &Health, http: &dyn Http, control: &Control) {
    let Some(get) = Get::of_health(health) else { return };
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline && !control.stop.load(Ordering::SeqCst) {
        if matches!(http.get(&get), Ok((200, _))) {
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
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    match command.spawn() {
        Ok(child) => {
            let _ = writeln!(log, "supervise: started {} (pid {})", spec.name, child.id());
            component.child = Some(child);
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
        && let Ok(Some(status)) = child.try_wait()
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
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ =
                writeln!(log, "supervise: {} did not stop in {}s: killed", component.spec.name, STOP_TIMEOUT.as_secs());
            let _ = child.kill();
            let _ = child.wait();
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

fn write_state(layout: &Layout, components: &[Running]) {
    let state = State {
        pid: std::process::id(),
        components: components
            .iter()
            .map(|component| ComponentState {
                name: component.spec.name.clone(),
                state: component.state,
                pid: component.child.as_ref().map(Child::id),
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
