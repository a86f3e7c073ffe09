//! Three scheduler replicas on a PostgreSQL the install runs itself (`scheduler: {replicas: 3, store:
//! postgresql}`), one prober in region ra (its restart is caught up) and two in rb: results from both, `status` naming one leader among three replicas;
//! a rolling upgrade during which some replica answers `/healthz` at every moment and no result is lost;
//! `uninstall --purge` leaving nothing.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use probenet_install::supervise::{self, State};

use super::{Stack, current};
use crate::util::processes::{free_port, now_ms, serve_ok};

/// A port whose next `count - 1` are free too (replicas, and a region's probers, listen on ports in a row).
fn free_ports_in_a_row(count: u16) -> u16 {
    for _ in 0..200 {
        let first = free_port();
        let rest = (1..count)
            .all(|offset| first.checked_add(offset).is_some_and(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()));
        if rest {
            return first;
        }
    }
    panic!("no {count} free ports in a row");
}

#[test]
fn three_replicas_on_a_local_postgresql_upgrade_one_at_a_time() {
    if probenet_testkit::postgres::binaries().is_none() {
        assert!(std::env::var_os("CI").is_none(), "no PostgreSQL under /usr/lib/postgresql/*/bin on CI");
        println!("skip: no PostgreSQL under /usr/lib/postgresql/*/bin (install Debian's postgresql)");
        return;
    }
    let started = Instant::now();
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_port = target.local_addr().unwrap().port();
    serve_ok(target, 100_000);
    let scheduler = free_ports_in_a_row(3);
    let (database, metrics_a, metrics_b) = (free_port(), free_ports_in_a_row(2), free_ports_in_a_row(2));
    let checks = format!(
        "regions: {{ra: {{}}, rb: {{}}}}\ndefaults: {{interval: 1s, timeout: 700ms}}\nchecks:\n  - name: web\n    \
         http: {{url: \"http://127.0.0.1:{target_port}/\"}}\n"
    );
    let stack = Stack::new(
        &checks,
        &format!(
            "name: ha\nchecks: [checks.yaml]\n\
             scheduler: {{host: localhost, listen: '127.0.0.1:{scheduler}', replicas: 3, store: postgresql, \
             store_listen: '127.0.0.1:{database}'}}\n\
             regions:\n  ra: {{probers: 1, metrics_port: {metrics_a}}}\n  rb: {{probers: 2, metrics_port: {metrics_b}}}\n\
             store: {{kind: none}}\n"
        ),
    );
    // PostgreSQL runs as Debian's `postgres` user (it refuses root): it must pass the temp dirs.
    for dir in [stack.dir.path(), stack.root.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let layout = &stack.layout;
    let replicas: Vec<String> = (1..=3).map(|index| format!("probenet-scheduler-{index}")).collect();
    let ports: Vec<u16> = (0..3).map(|offset| scheduler + offset).collect();

    // Install from nothing: the database, three replicas, results from both regions.
    let output = stack.run(&current(), &["install", "local", "--yes"], &[]);
    assert!(output.status.success(), "install failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("web in ra: up") && stdout.contains("web in rb: up"), "first results: {stdout}");
    assert!(layout.postgres_data().join("PG_VERSION").exists(), "initdb ran in the stack's data dir");
    let mode = std::fs::metadata(layout.postgres_password()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database password is private");
    let password = super::read_trimmed(&layout.postgres_password());
    assert!(password.len() >= 32, "a generated password");
    let supervisor = supervise::running_pid(layout).expect("the supervisor runs");

    // Status: the database and every replica healthy, one leader among three.
    let output = stack.run(&current(), &["status"], &[]);
    assert!(output.status.success(), "status says unhealthy");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = Stack::status_line(&text, "probenet-postgresql");
    assert!(line.contains("healthy") && !line.contains("UNHEALTHY"), "{line}");
    let mut leaders = 0;
    for replica in &replicas {
        let line = Stack::status_line(&text, replica);
        assert!(line.contains("healthy") && !line.contains("UNHEALTHY"), "{line}");
        assert!(line.contains(&format!("probenet {} (running)", env!("CARGO_PKG_VERSION"))), "{line}");
        assert!(line.contains(", leader") || line.contains(", follower"), "{line}");
        leaders += usize::from(line.contains(", leader"));
    }
    assert_eq!(leaders, 1, "one leader: {text}");
    assert!(text.contains("3 replicas: "), "{text}");
    assert!(!text.contains(&password), "status shows the database password");

    // A rolling upgrade through another path: a thread asks every replica's /healthz every 100 ms; at no
    // moment may all three fail.
    let pids_before = State::read(layout).unwrap().components;
    let newer: PathBuf = stack.dir.path().join("probenet-newer");
    symlink(current(), &newer).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (rounds, all_down, one_down) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let poller = {
        let (stop, rounds, all_down, one_down) = (stop.clone(), rounds.clone(), all_down.clone(), one_down.clone());
        let client = stack.client(false);
        let ports = ports.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let up = ports
                    .iter()
                    .filter(|port| {
                        client
                            .get(format!("https://127.0.0.1:{port}/healthz"))
                            .timeout(Duration::from_millis(500))
                            .send()
                            .is_ok_and(|response| response.status().as_u16() == 200)
                    })
                    .count();
                rounds.fetch_add(1, Ordering::SeqCst);
                if up == 0 {
                    all_down.fetch_add(1, Ordering::SeqCst);
                }
                if up < 3 {
                    one_down.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let before = now_ms();
    let output = stack.run(&newer, &["upgrade"], &[]);
    let after = now_ms();
    stop.store(true, Ordering::SeqCst);
    poller.join().unwrap();
    assert!(output.status.success(), "upgrade failed");
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    let (rounds, all_down, one_down) =
        (rounds.load(Ordering::SeqCst), all_down.load(Ordering::SeqCst), one_down.load(Ordering::SeqCst));
    eprintln!("healthz rounds {rounds}, with a replica down {one_down}, with all down {all_down}");
    assert!(rounds >= 20, "the poller ran {rounds} rounds");
    assert_eq!(all_down, 0, "no replica answered /healthz in {all_down} of {rounds} rounds");
    assert!(one_down > 0, "a replica was seen restarting");
    // One replica at a time: each back healthy before the next restarts, the probers after them all.
    let at = |text: &str| said.find(text).unwrap_or_else(|| panic!("no {text:?} in:\n{said}"));
    for pair in replicas.windows(2) {
        assert!(at(&format!("{} is healthy again", pair[0])) < at(&format!("restarting {}", pair[1])), "{said}");
    }
    assert!(at("probenet-scheduler-3 is healthy again") < at("restarting probenet-prober-ra-1"), "{said}");
    let pids_after = State::read(layout).unwrap().components;
    for replica in &replicas {
        let pid = |components: &[supervise::ComponentState]| {
            components.iter().find(|c| c.name == *replica).and_then(|c| c.pid)
        };
        assert_ne!(pid(&pids_before), pid(&pids_after), "{replica} was restarted");
    }
    let database_pid = |components: &[supervise::ComponentState]| {
        components.iter().find(|c| c.name == "probenet-postgresql").and_then(|c| c.pid)
    };
    assert_eq!(database_pid(&pids_before), database_pid(&pids_after), "the database was not restarted");
    std::thread::sleep(Duration::from_secs(3));
    for region in ["ra", "rb"] {
        stack.assert_no_gap(scheduler, "web", region, before, after, &format!("in {region}, rolling upgrade"));
    }
    let output = stack.run(&current(), &["status"], &[]);
    assert!(output.status.success(), "unhealthy after the upgrade");

    // Uninstall: nothing runs, nothing is left.
    let pids: Vec<u32> = State::read(layout).unwrap().components.iter().filter_map(|c| c.pid).collect();
    assert_eq!(pids.len(), stack.components().len(), "every component runs");
    let output = stack.run(&current(), &["uninstall", "--purge"], &[]);
    assert!(output.status.success(), "uninstall failed");
    assert!(!supervise::alive(supervisor), "the supervisor is gone");
    for pid in pids {
        assert!(!supervise::alive(pid), "component pid {pid} still runs");
    }
    let left: Vec<PathBuf> = std::fs::read_dir(&stack.root).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(started.elapsed() < Duration::from_secs(180), "took {:?}", started.elapsed());
}
