//! The supervisor: starts components, restarts one that dies (a new process), restarts one on request (the
//! restart file and a reload), and stops them all when told to.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use probenet_install::http::{Get, Http, HttpError};
use probenet_install::layout::Layout;
use probenet_install::local::{Component, Health, Role};
use probenet_install::supervise::{self, Control, RunState, State};

struct Healthy;

impl Http for Healthy {
    fn get(&self, _: &Get) -> Result<(u16, String), HttpError> {
        Ok((200, String::new()))
    }
}

fn sleeper(name: &str) -> Component {
    Component {
        name: name.to_owned(),
        role: Role::Scheduler,
        exec: vec!["/bin/sleep".to_owned(), "300".to_owned()],
        env_file: None,
        netns: None,
        user: "probenet".to_owned(),
        writable: Vec::new(),
        net_raw: false,
        after: Vec::new(),
        health: Health::Http { url: "http://127.0.0.1:1/".to_owned(), ca: None, basic_auth: None, client_cert: None },
        every_s: None,
    }
}

fn pid_of(layout: &Layout, name: &str) -> Option<u32> {
    State::read(layout).and_then(|state| state.component(name).and_then(|c| c.pid))
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn restarts_a_dead_component_and_one_asked_for_then_stops_all() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::for_root(dir.path());
    std::fs::create_dir_all(layout.etc()).unwrap();
    std::fs::create_dir_all(layout.log_dir()).unwrap();
    let components = vec![sleeper("a"), sleeper("b")];
    std::fs::write(layout.supervisor_file(), serde_json::to_string(&components).unwrap()).unwrap();
    let control = Arc::new(Control::default());
    let (thread_layout, thread_control) = (layout.clone(), control.clone());
    let supervisor = std::thread::spawn(move || {
        supervise::run(&thread_layout, &thread_control, &Healthy, None, false, &mut std::io::sink())
    });
    wait("both components", || pid_of(&layout, "a").is_some() && pid_of(&layout, "b").is_some());
    let (a, b) = (pid_of(&layout, "a").unwrap(), pid_of(&layout, "b").unwrap());

    // A crash: restarted after its backoff, as a new process, counted.
    assert!(supervise::signal(a, "KILL"));
    wait("a restarted", || pid_of(&layout, "a").is_some_and(|pid| pid != a));
    let state = State::read(&layout).unwrap();
    assert_eq!(state.component("a").unwrap().restarts, 1);
    assert_eq!(state.component("a").unwrap().state, RunState::Running);
    assert_eq!(pid_of(&layout, "b"), Some(b), "b untouched");

    // A restart asked for: b gets a new process, the request file is consumed.
    std::fs::write(layout.supervisor_restart(), "b\n").unwrap();
    control.reload.store(true, Ordering::SeqCst);
    wait("b restarted", || pid_of(&layout, "b").is_some_and(|pid| pid != b) && !layout.supervisor_restart().exists());
    assert!(!supervise::alive(b), "the old b is gone");

    // Stop: every component ends, the pid and state files go.
    let pids = [pid_of(&layout, "a").unwrap(), pid_of(&layout, "b").unwrap()];
    control.stop.store(true, Ordering::SeqCst);
    supervisor.join().unwrap().unwrap();
    assert!(pids.iter().all(|pid| !supervise::alive(*pid)), "components stopped");
    assert!(!layout.supervisor_pid().exists() && !layout.supervisor_state().exists());
}

#[test]
fn a_second_supervisor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::for_root(dir.path());
    std::fs::create_dir_all(layout.run_dir()).unwrap();
    // A live process named in the pid file: a supervisor runs.
    let mut parent = std::process::Command::new("/bin/sleep").arg("30").spawn().unwrap();
    std::fs::write(layout.supervisor_pid(), parent.id().to_string()).unwrap();
    let result = supervise::run(&layout, &Control::default(), &Healthy, None, false, &mut std::io::sink());
    let _ = parent.kill();
    let _ = parent.wait();
    assert!(matches!(result, Err(supervise::SuperviseError::Running(_))), "{result:?}");
}

#[test]
fn after_a_re_exec_the_running_components_are_adopted_not_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::for_root(dir.path());
    for dir in [layout.etc(), layout.log_dir(), layout.run_dir()] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let components = vec![sleeper("a"), sleeper("b")];
    std::fs::write(layout.supervisor_file(), serde_json::to_string(&components).unwrap()).unwrap();
    // What the image before the re-exec left: "a" running (a child of this process, as it would be of the
    // supervisor's), with 2 restarts; "b" named with a pid that is not a child (gone, or never ours).
    let mut running = std::process::Command::new("/bin/sleep").arg("300").spawn().unwrap();
    let before = State {
        pid: std::process::id(),
        version: Some("0.0.1".to_owned()),
        image_started_ms: Some(1),
        components: vec![
            supervise::ComponentState {
                name: "a".to_owned(),
                state: RunState::Running,
                pid: Some(running.id()),
                restarts: 2,
            },
            supervise::ComponentState { name: "b".to_owned(), state: RunState::Running, pid: Some(1), restarts: 0 },
        ],
    };
    std::fs::write(layout.supervisor_state(), serde_json::to_string(&before).unwrap()).unwrap();

    let control = Arc::new(Control::default());
    let (thread_layout, thread_control) = (layout.clone(), control.clone());
    let supervisor = std::thread::spawn(move || {
        supervise::run(&thread_layout, &thread_control, &Healthy, None, true, &mut std::io::sink())
    });
    wait("b started", || pid_of(&layout, "b").is_some_and(|pid| pid != 1));
    let state = State::read(&layout).unwrap();
    assert_eq!(state.version.as_deref(), Some(env!("CARGO_PKG_VERSION")), "the state names the new version");
    assert!(state.image_started_ms > Some(1), "and the new image's start");
    let a = state.component("a").unwrap();
    assert_eq!((a.pid, a.restarts, a.state), (Some(running.id()), 2, RunState::Running), "a adopted as it was");

    // The adopted process dies: noticed through waitpid and started again as a new process.
    assert!(supervise::signal(running.id(), "KILL"));
    wait("a restarted", || pid_of(&layout, "a").is_some_and(|pid| pid != running.id()));
    assert!(!supervise::alive(running.id()), "the adopted process was reaped");
    assert!(running.wait().is_err(), "reaped by the supervisor, not left for its spawner");
    assert_eq!(State::read(&layout).unwrap().component("a").unwrap().restarts, 3);

    let pids = [pid_of(&layout, "a").unwrap(), pid_of(&layout, "b").unwrap()];
    control.stop.store(true, Ordering::SeqCst);
    supervisor.join().unwrap().unwrap();
    assert!(pids.iter().all(|pid| !supervise::alive(*pid)), "components stopped");
}
