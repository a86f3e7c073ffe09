//! The README's quick start as a new user runs it: a fresh clone of this repository (no build state: its own
//! empty target directory), then the README's main-job command (`scripts/demo`) as written, which builds
//! probenet and runs `probenet up --demo` until Ctrl-C. It must build from nothing with the locked
//! dependencies, show the status table with the firing alert, print the notification the demo receives, and
//! stop cleanly on Ctrl-C (SIGINT).
//!
//! A test binary of its own: the build takes minutes of both cores, so it runs alone rather than beside the
//! timing-sensitive end-to-end tests. The README's other command (`scripts/test`) is what CI runs in a fresh
//! clone, so that one is tested by every CI run; here it is only checked to be the README's test command.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// Building everything from nothing on a 2-core machine takes several minutes; a hang must still fail.
const BUILD_LIMIT: Duration = Duration::from_secs(40 * 60);
/// From the first line `probenet up` prints to the firing alert and the notification.
const DEMO_LIMIT: Duration = Duration::from_secs(120);

/// The README's quick-start commands: the lines of the first `sh` block under `## Quick start`, without their
/// comments.
fn quick_start_commands(readme: &str) -> Vec<String> {
    let section = readme.split("\n## Quick start\n").nth(1).expect("the README has a Quick start section");
    let block = section.split("```sh\n").nth(1).and_then(|rest| rest.split("\n```").next()).expect("an sh block");
    block.lines().map(|line| line.split('#').next().unwrap_or_default().trim().to_owned()).collect()
}

#[test]
fn the_readme_quick_start_works_in_a_fresh_clone() {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let commands = quick_start_commands(&readme);
    assert_eq!(commands, ["scripts/demo", "scripts/test"], "the README's quick start changed: update this test");
    let ci = std::fs::read_to_string(Path::new(REPO).join(".ci/run")).unwrap();
    assert!(ci.contains("\nexec scripts/test\n"), "CI runs the README's test command");

    if !Path::new(REPO).join(".git").exists() {
        eprintln!("skip: {REPO} is not a git checkout, so there is nothing to clone");
        return;
    }
    // What is committed, as a user's `git clone` gets it.
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("probenet");
    let status = Command::new("git").args(["clone", "--quiet", "--no-hardlinks", REPO]).arg(&clone).status().unwrap();
    assert!(status.success(), "git clone");
    assert!(!clone.join("target").exists());

    // `scripts/demo`, as written, with a fresh target directory (not this build's) and data in the clone.
    let started = Instant::now();
    let mut demo = Command::new(clone.join(&commands[0]))
        .current_dir(&clone)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = mpsc::channel::<(bool, String)>();
    for (is_stdout, stream) in [
        (true, demo.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>)),
        (false, demo.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>)),
    ] {
        let lines = lines.clone();
        let stream = stream.unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if lines.send((is_stdout, line)).is_err() {
                    return;
                }
            }
        });
    }
    drop(lines);

    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut demo_started: Option<Instant> = None;
    let fired = "demo service: notification received: FIRING web-down/shop-checkout";
    loop {
        let limit = match demo_started {
            None => BUILD_LIMIT.saturating_sub(started.elapsed()),
            Some(at) => DEMO_LIMIT.saturating_sub(at.elapsed()),
        };
        let Ok((is_stdout, line)) = seen.recv_timeout(limit) else {
            let _ = demo.kill();
            panic!(
                "{} without the firing alert's notification\nstdout:\n{stdout}\nstderr (last 4 KB):\n{}",
                if demo_started.is_some() { "the demo ran 2 minutes" } else { "the build did not finish" },
                tail(&stderr, 4096)
            );
        };
        if is_stdout {
            if demo_started.is_none() {
                demo_started = Some(Instant::now());
                eprintln!("scripts/demo built probenet from nothing in {:.0} s", started.elapsed().as_secs_f64());
            }
            stdout.push_str(&line);
            stdout.push('\n');
        } else {
            stderr.push_str(&line);
            stderr.push('\n');
        }
        // Once the notification is in and a status table shows the alert firing, stop as a user would.
        let alert_shown = stdout.lines().any(|line| {
            line.starts_with("web-down/shop-checkout ")
                && line.contains(" FIRING ")
                && line.contains("local-a, local-b")
        });
        if stdout.contains(fired) && alert_shown {
            break;
        }
    }
    assert!(stderr.contains("Compiling probenet"), "it built probenet itself:\n{}", tail(&stderr, 4096));
    let build = clone.join("target");
    assert!(build.is_dir(), "the build is in the clone's own target directory");

    // Ctrl-C: a clean stop.
    let status = Command::new("kill").args(["-INT", &demo.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -INT");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "Ctrl-C did not stop the demo within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    for (is_stdout, line) in seen.try_iter() {
        if is_stdout {
            stdout.push_str(&line);
            stdout.push('\n');
        }
    }
    assert!(status.success(), "the demo's exit after Ctrl-C: {status:?}\n{stdout}");
    // What the README promises of the first minute: the status table, the dashboard's address, the alert.
    for expected in ["probenet is up: ", "dashboard: http://127.0.0.1:", "\nCHECK ", "shop-homepage ", fired] {
        assert!(stdout.contains(expected), "{expected:?} missing from what the demo printed:\n{stdout}");
    }
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
