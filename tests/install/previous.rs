//! The previous release (the last line of RELEASES, built from its commit by `scripts/previous-release`)
//! installs a stack; this build's `probenet upgrade` then replaces its scheduler and probers (the older
//! probers working with the newer scheduler until their turn), keeps VictoriaMetrics' samples and the embedded
//! store's results, and loses no result across the upgrade.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::{Stack, current, poll, require_packages};
use crate::util::processes::{free_port, now_ms, serve_ok};

/// The previous release's binary, built when missing (minutes, once: it is kept under target/previous).
fn previous_release() -> (PathBuf, String) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(repo.join("scripts/previous-release")).current_dir(&repo).output().unwrap();
    assert!(output.status.success(), "scripts/previous-release failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let path = repo.join(String::from_utf8_lossy(&output.stdout).trim());
    let version = Command::new(&path).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().trim_start_matches("probenet ").to_owned();
    (path, version)
}

#[test]
fn the_previous_release_upgrades_to_this_build_without_losing_a_result() {
    require_packages();
    let (previous, previous_version) = previous_release();
    let version = env!("CARGO_PKG_VERSION");
    assert_ne!(previous_version, version, "RELEASES names this version as the previous one: bump the version");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().port();
    serve_ok(listener, 20_000);
    let checks = format!(
        "regions: {{ra: {{}}, rb: {{}}}}\ndefaults: {{interval: 1s, timeout: 700ms}}\nchecks:\n  - name: web\n    \
         http: {{url: \"http://127.0.0.1:{target}/\"}}\n"
    );
    // Every listener on a free port: on the defaults (Alertmanager on 9093...), a stack of another test running
    // at the same time could answer this one's health checks (a failed CI run: "invalid peer certificate:
    // BadSignature", another install's Alertmanager).
    let (scheduler, store, vmalert, alertmanager) = (free_port(), free_port(), free_port(), free_port());
    let stack = Stack::new(
        &checks,
        &format!(
            "name: previous\nchecks: [checks.yaml]\nscheduler: {{host: localhost, listen: '127.0.0.1:{scheduler}'}}\n\
             regions:\n  ra: {{probers: 2}}\n  rb: {{probers: 1}}\nstore: {{listen: '127.0.0.1:{store}'}}\n\
             alerting:\n  vmalert: {{listen: '127.0.0.1:{vmalert}'}}\n  alertmanager: {{listen: '127.0.0.1:{alertmanager}'}}\n"
        ),
    );

    // The previous release installs the stack.
    let output = stack.run(&previous, &["install", "local", "--yes"], &[]);
    assert!(output.status.success(), "the previous release's install failed");
    let output = stack.run(&current(), &["status"], &[]);
    assert!(output.status.success(), "the previous release's stack is unhealthy");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    for component in stack.components().iter().filter(|name| name.starts_with("probenet-prober")) {
        let line = Stack::status_line(&text, component);
        assert!(line.contains(&format!("probenet {previous_version} (running)")), "{line}");
    }
    poll("probe_success of both regions in VictoriaMetrics", Duration::from_secs(30), || {
        let series = stack.store_query(store, "probe_success{job=\"web\"}")?;
        (series.len() == 2).then_some(())
    });
    let stored_before = stack.store_query(store, "count_over_time(probe_success{job=\"web\"}[1h])").unwrap();

    // This build upgrades it.
    let before = now_ms();
    let output = stack.run(&current(), &["upgrade"], &[]);
    assert!(output.status.success(), "the upgrade from {previous_version} failed");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("the supervisor predates 0.2.0"), "the old supervisor is not re-executed: {said}");
    let after = now_ms();
    std::thread::sleep(Duration::from_secs(3));

    // Everything of probenet's runs this build; nothing was lost.
    let output = stack.run(&current(), &["status"], &[]);
    assert!(output.status.success(), "unhealthy after the upgrade");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    for component in &stack.probenet_components() {
        let line = Stack::status_line(&text, component);
        assert!(line.contains(&format!("probenet {version} (running)")), "{line}");
    }
    for region in ["ra", "rb"] {
        stack.assert_no_gap(scheduler, "web", region, before, after, &format!("in {region} across the upgrade"));
        let planned = stack.planned(scheduler, "web", region);
        // The embedded store kept what the previous release stored: results from the install on.
        assert!(planned.first().is_some_and(|first| *first < before - 5_000), "{region}: {planned:?}");
    }
    // VictoriaMetrics kept its samples and goes on receiving.
    let stored_after = stack.store_query(store, "count_over_time(probe_success{job=\"web\"}[1h])").unwrap();
    for series in &stored_before {
        let probe = &series["metric"]["probe"];
        let count = |of: &Value| of["value"][1].as_str().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        let later = stored_after.iter().find(|s| &s["metric"]["probe"] == probe).map(count).unwrap_or(0);
        assert!(later > count(series), "{probe}: {} samples before the upgrade, {later} after", count(series));
    }

    let output = stack.run(&current(), &["uninstall", "--purge"], &[]);
    assert!(output.status.success(), "uninstall failed");
}
