//! The runner's life: a missing browser, the limit on concurrent journeys, a crashed browser replaced at the
//! next run, and nothing left running or unreaped after shutdown.

mod util;

use std::time::Duration;

use probenet_browser::{ChromiumRunner, Options};
use probenet_checks::{Reason, State};
use util::{Site, journey, run_with};

#[tokio::test]
async fn a_missing_browser_fails_every_run_as_browser_unavailable() {
    let runner = ChromiumRunner::new(Options {
        chromium: Some("/nonexistent/probenet-test/chromium".into()),
        ..Options::default()
    });
    let check = journey("no-browser", "5s", "        - goto: \"http://127.0.0.1:9/\"\n", "");
    for _ in 0..2 {
        let (outcome, _) = run_with(&runner, &check).await;
        assert_eq!(outcome.state, State::Down, "{outcome:#?}");
        assert!(!outcome.success());
        assert_eq!(outcome.reason, Some(Reason::BrowserUnavailable), "{outcome:#?}");
        let error = outcome.error.unwrap_or_default();
        assert!(error.contains("/nonexistent/probenet-test/chromium"), "{error}");
    }
}

/// The environment variable that makes this test binary's child run the check below.
const CHILD: &str = "PROBENET_BROWSER_TEST_CHILD";

#[tokio::test]
async fn probenet_chromium_pointing_nowhere_makes_the_installed_runner_report_browser_unavailable() {
    if std::env::var_os(CHILD).is_some() {
        // The child: installed as `probenet` installs it, with PROBENET_CHROMIUM set by the parent.
        let _installed = probenet_browser::install();
        let check = journey("env-no-browser", "5s", "        - goto: \"http://127.0.0.1:9/\"\n", "");
        let outcome = probenet_checks::run_once(&check, "local").await;
        assert_eq!(outcome.reason, Some(Reason::BrowserUnavailable), "{outcome:#?}");
        assert!(outcome.error.as_deref().is_some_and(|e| e.contains("PROBENET_CHROMIUM=/nonexistent")), "{outcome:#?}");
        println!("child-checked-browser-unavailable");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = tokio::process::Command::new(exe)
        .args(["--exact", "probenet_chromium_pointing_nowhere_makes_the_installed_runner_report_browser_unavailable"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("PROBENET_CHROMIUM", "/nonexistent/chromium")
        .output()
        .await
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("child-checked-browser-unavailable"), "{stdout}");
}

#[tokio::test]
async fn the_runner_bounds_concurrency_restarts_a_crashed_browser_and_leaves_no_process_behind() {
    if !util::chromium_present() {
        return;
    }
    let site = Site::start().await;
    let runner = ChromiumRunner::new(Options { chromium: None, concurrency: 1 });
    let steps = format!("        - goto: \"{}\"\n        - sleep: 600ms\n", site.url("/steps"));
    let check = journey("slow", "15s", &steps, "");

    // One slot: two journeys at once run one after the other.
    let ((first, first_cx), (second, second_cx)) = tokio::join!(run_with(&runner, &check), run_with(&runner, &check));
    assert_eq!(first.state, State::Up, "{first:#?}");
    assert_eq!(second.state, State::Up, "{second:#?}");
    let queued: Vec<f64> = [&first_cx, &second_cx].iter().filter_map(|cx| cx.phase_seconds("queue")).collect();
    assert_eq!(queued.len(), 1, "exactly one journey waited for the slot");
    assert!(queued[0] >= 0.5, "it waited for the other's sleep: {queued:?}");
    let launched: Vec<bool> =
        [&first, &second].iter().map(|o| o.details["browser"]["launched"].as_bool().unwrap_or(false)).collect();
    assert_eq!(launched.iter().filter(|l| **l).count(), 1, "one shared browser: {launched:?}");

    // A crash: the next run starts a new browser and works.
    let pid = runner.browser_pid().expect("a running browser");
    let tree = util::descendants(pid);
    assert!(!tree.is_empty(), "Chromium runs helper processes");
    let killed = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    let gone = wait_until(Duration::from_secs(5), || !util::process_exists(pid)).await;
    assert!(gone, "the killed browser was reaped");
    let (outcome, _) = run_with(&runner, &check).await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["browser"]["launched"], true, "a new browser was started");
    let new_pid = runner.browser_pid().expect("a running browser");
    assert_ne!(new_pid, pid);
    assert!(tree.iter().all(|pid| !util::process_exists(*pid)), "the crashed browser's helpers are gone");

    // Shutdown closes it; nothing of it is left, not even a zombie.
    let tree = util::descendants(new_pid);
    let runner_clone = runner.clone();
    tokio::task::spawn_blocking(move || runner_clone.shutdown()).await.expect("shutdown");
    assert!(!util::process_exists(new_pid), "the browser was reaped at shutdown");
    let left = wait_until(Duration::from_secs(3), || tree.iter().all(|pid| !util::process_exists(*pid))).await;
    assert!(left, "helper processes remain: {tree:?}");
    // Runs after shutdown fail, never succeed.
    let (outcome, _) = run_with(&runner, &check).await;
    assert_eq!(outcome.reason, Some(Reason::BrowserUnavailable), "{outcome:#?}");
}

#[tokio::test]
async fn chromium_listens_on_no_tcp_port_and_talks_over_its_pipe() {
    if !util::chromium_present() {
        return;
    }
    let site = Site::start().await;
    let runner = ChromiumRunner::new(Options { chromium: None, concurrency: 1 });
    let steps = format!("        - goto: \"{}\"\n        - sleep: 3s\n", site.url("/steps"));
    let check = journey("pipe-only", "20s", &steps, "");
    let running = tokio::spawn({
        let runner = runner.clone();
        async move { run_with(&runner, &check).await.0 }
    });
    // While the journey runs (its page is open), look at every process of the browser.
    let found = wait_until(Duration::from_secs(15), || runner.browser_pid().is_some()).await;
    assert!(found, "the browser did not start");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = runner.browser_pid().expect("a running browser");
    let mut tree = vec![pid];
    tree.extend(util::descendants(pid));
    assert!(tree.len() > 1, "Chromium runs helper processes: {tree:?}");
    let command = util::command_line(pid);
    assert!(command.contains("--remote-debugging-pipe"), "{command}");
    assert!(!command.contains("--remote-debugging-port"), "{command}");
    let listening = util::listening_sockets(pid);
    for process in &tree {
        let theirs: Vec<_> = util::socket_inodes(*process)
            .into_iter()
            .filter_map(|inode| listening.iter().find(|(listener, _)| *listener == inode))
            .collect();
        assert!(
            theirs.is_empty(),
            "Chromium process {process} listens on TCP: {theirs:?} ({})",
            util::command_line(*process)
        );
    }
    let outcome = running.await.expect("the journey");
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    tokio::task::spawn_blocking(move || runner.shutdown()).await.expect("shutdown");
}

async fn wait_until(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while !condition() {
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}
