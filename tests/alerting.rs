//! Alerts end to end: a real scheduler and two real probers; the target goes down in both regions, one signed
//! webhook notification fires naming both regions; the scheduler restarts while it fires and does not page
//! again; the target comes back and one resolve follows.

use std::net::TcpListener;
use std::time::Duration;

use crate::util::processes::{
    Kill, free_port, notifications, plain_prober, plain_scheduler, receiver, serve_ok, wait_for,
};

const SECRET: &str = "hook-secret-for-the-test";

#[test]
fn a_target_down_in_every_region_fires_once_survives_a_restart_and_resolves_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let target_port = free_port();
    let (hook_port, got) = receiver();
    let checks = dir.path().join("checks.yaml");
    std::fs::write(
        &checks,
        format!(
            "regions: {{r1: {{}}, r2: {{}}}}\ndefaults: {{interval: 1s, timeout: 500ms}}\n\
             notifiers:\n  oncall: {{webhook: {{url: \"http://127.0.0.1:{hook_port}/hook\", secret: \"${{env:HOOK_SECRET}}\"}}}}\n\
             checks:\n  - name: site\n    http: {{url: \"http://127.0.0.1:{target_port}/\"}}\n\
             alerts:\n  - name: site-down\n    checks: [site]\n    failed_regions: 2\n    for: 2s\n    \
             resolve_after: 3s\n    severity: page\n    notify: [oncall]\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let scheduler = || {
        let mut command = plain_scheduler(dir.path(), &checks, &data, port);
        command.env("HOOK_SECRET", SECRET).args(["--dashboard-url", "http://probenet.test"]);
        command.args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]);
        Kill(command.spawn().unwrap())
    };
    let mut running = scheduler();
    let mut probers = Vec::new();
    for region in ["r1", "r2"] {
        probers.push(Kill(plain_prober(dir.path(), &data, port, region).spawn().unwrap()));
    }

    // Down everywhere (nothing listens): one firing notification naming both regions.
    wait_for("the firing notification", Duration::from_secs(40), dir.path(), || !got.lock().unwrap().is_empty());
    let fired = notifications(&got, SECRET);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["status"], "firing");
    assert_eq!(fired[0]["alert"], "site-down");
    assert_eq!(fired[0]["check"], "site");
    assert_eq!(fired[0]["regions"], serde_json::json!(["r1", "r2"]));
    assert_eq!(fired[0]["reason"], "connect");
    assert!(fired[0]["dashboard_url"].as_str().unwrap_or_default().starts_with("http://probenet.test"));

    // A scheduler restart while it fires does not page again.
    drop(running);
    running = scheduler();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(notifications(&got, SECRET).len(), 1, "no second firing after the restart");

    // The target comes back: one resolve, and nothing more.
    serve_ok(TcpListener::bind(("127.0.0.1", target_port)).unwrap(), 100_000);
    wait_for("the resolve", Duration::from_secs(40), dir.path(), || got.lock().unwrap().len() >= 2);
    std::thread::sleep(Duration::from_secs(3));
    let all = notifications(&got, SECRET);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["status"], "resolved");
    assert_eq!(all[1]["key"], all[0]["key"]);
    // The scheduler's metrics count its deliveries since it restarted (the resolve), and its alerting state;
    // a scraper reads them on the metrics port without a token (the API port wants the admin token).
    let api = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics")).unwrap();
    assert_eq!(api.status(), reqwest::StatusCode::UNAUTHORIZED);
    let metrics = reqwest::blocking::get(format!("http://127.0.0.1:{metrics_port}/metrics")).unwrap().text().unwrap();
    assert!(metrics.contains("probenet_notifications_sent{notifier=\"oncall\",kind=\"webhook\"} 1\n"), "{metrics}");
    assert!(metrics.contains("probenet_notifications_failed{notifier=\"oncall\",kind=\"webhook\"} 0\n"), "{metrics}");
    assert!(metrics.contains("\nprobenet_alerts_firing 0\n"), "{metrics}");
    drop(probers);
    drop(running);
    let log = std::fs::read_to_string(dir.path().join("scheduler.log")).unwrap_or_default();
    assert!(!log.contains(SECRET), "the secret is not logged");
}
