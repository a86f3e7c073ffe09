//! Maintenance windows added through the API on a real scheduler and real probers: a `pause` stops the check's
//! runs on its prober and its deletion resumes them; a `mute` holds the alert's page while the check runs and is
//! stored, the page goes out when the window ends, and `probenet report` counts the time as muted maintenance.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::processes::{
    Kill, command, free_port, notifications, now_ms, plain_prober, plain_scheduler, receiver, serve_ok, token, wait_for,
};

const SECRET: &str = "hook-secret-for-maintenance";

/// A call to the scheduler's API on `port`: the status and the JSON body (Null when there is none).
fn call(port: u16, method: &str, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut request = match method {
        "GET" => client.get(url),
        "POST" => client.post(url),
        "DELETE" => client.delete(url),
        other => panic!("method {other}"),
    };
    request = request.bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}

/// The results of `check` stored so far, by planned time.
fn planned(port: u16, admin: &str, check: &str) -> Vec<i64> {
    let (status, body) = call(port, "GET", admin, &format!("/api/v1/results?check={check}&limit=1000"), None);
    assert_eq!(status, 200, "{body}");
    let mut times: Vec<i64> =
        body.as_array().into_iter().flatten().filter_map(|result| result["planned_at_ms"].as_i64()).collect();
    times.sort_unstable();
    times
}

/// A counter of a Prometheus text page (0 when absent).
fn counter(page: &str, series: &str) -> f64 {
    page.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

fn rfc3339(ms: i64) -> String {
    probenet_scheduler::time::rfc3339_ms(ms)
}

fn scheduler(dir: &Path, checks: &Path, data: &Path, port: u16) -> Kill {
    let mut command = plain_scheduler(dir, checks, data, port);
    command.env("HOOK_SECRET", SECRET);
    Kill(command.spawn().unwrap())
}

#[test]
fn a_pause_window_added_through_the_api_stops_the_runs_and_deleting_it_resumes_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_port = target.local_addr().unwrap().port();
    serve_ok(target, 100_000);
    let checks = dir.path().join("checks.yaml");
    std::fs::write(
        &checks,
        format!(
            "regions: {{r1: {{}}}}\ndefaults: {{interval: 1s, timeout: 500ms}}\n\
             checks:\n  - name: site\n    http: {{url: \"http://127.0.0.1:{target_port}/\"}}\n  \
             - name: other\n    http: {{url: \"http://127.0.0.1:{target_port}/other\"}}\n\
             maintenance:\n  - {{name: yearly, checks: [site], schedule: '0 3 1 1 *', duration: 1h}}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let admin = token(&data, &["--admin"]);
    let _scheduler = scheduler(dir.path(), &checks, &data, port);
    let prober_metrics = free_port();
    let mut prober = plain_prober(dir.path(), &data, port, "r1");
    prober.args(["--metrics-listen", &format!("127.0.0.1:{prober_metrics}")]);
    let _prober = Kill(prober.spawn().unwrap());
    let skipped = || {
        let page = reqwest::blocking::get(format!("http://127.0.0.1:{prober_metrics}/metrics"))
            .and_then(|response| response.text())
            .unwrap_or_default();
        counter(&page, "probenet_prober_runs_skipped_total{reason=\"maintenance\"}")
    };
    wait_for("results of site", Duration::from_secs(30), dir.path(), || planned(port, &admin, "site").len() >= 2);

    // A pause from now on, for an hour.
    let window = json!({
        "name": "incident-42", "checks": ["site"], "start": rfc3339(now_ms() - 1_000), "duration": "1h",
        "mode": "pause", "reason": "database failover", "created_by": "ops on call"
    });
    let (status, created) = call(port, "POST", &admin, "/api/v1/maintenance", Some(window));
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["source"].as_str(), created["active"].as_bool()), (Some("api"), Some(true)), "{created}");
    assert_eq!(created["reason"], "database failover");
    wait_for("runs skipped for maintenance", Duration::from_secs(15), dir.path(), || skipped() >= 2.0);
    let paused_at = now_ms();
    let before = skipped();
    std::thread::sleep(Duration::from_secs(3));
    assert!(skipped() >= before + 2.0, "the prober keeps skipping site's runs");
    let late: Vec<i64> = planned(port, &admin, "site").into_iter().filter(|at| *at > paused_at).collect();
    assert_eq!(late, [] as [i64; 0], "no run of site while it is paused");
    assert!(planned(port, &admin, "other").iter().any(|at| *at > paused_at), "the other check still runs");

    // Listed with the config's window, each with its source.
    let (status, listed) = call(port, "GET", &admin, "/api/v1/maintenance", None);
    assert_eq!(status, 200, "{listed}");
    let sources: Vec<(&str, &str)> = listed["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|window| (window["name"].as_str().unwrap(), window["source"].as_str().unwrap()))
        .collect();
    assert_eq!(sources, [("yearly", "config"), ("incident-42", "api")]);

    // Deleted: it ends now, and the runs resume.
    let (status, ended) = call(port, "DELETE", &admin, "/api/v1/maintenance/incident-42", None);
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["result"], "ended");
    let resumed_after = now_ms();
    wait_for("site runs again", Duration::from_secs(15), dir.path(), || {
        planned(port, &admin, "site").iter().any(|at| *at > resumed_after)
    });
    let (_, listed) = call(port, "GET", &admin, "/api/v1/maintenance", None);
    let over = listed["windows"].as_array().unwrap().iter().find(|window| window["name"] == "incident-42").cloned();
    assert_eq!(over.map(|window| window["active"].clone()), Some(Value::Bool(false)), "listed, over: {listed}");
}

#[test]
fn a_mute_window_added_through_the_api_holds_the_page_and_the_report_counts_it_muted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let target_port = free_port();
    let (hook_port, got) = receiver();
    let checks = dir.path().join("checks.yaml");
    std::fs::write(
        &checks,
        format!(
            "regions: {{r1: {{}}}}\ndefaults: {{interval: 1s, timeout: 500ms}}\n\
             notifiers:\n  oncall: {{webhook: {{url: \"http://127.0.0.1:{hook_port}/hook\", secret: \"${{env:HOOK_SECRET}}\"}}}}\n\
             checks:\n  - name: site\n    http: {{url: \"http://127.0.0.1:{target_port}/\"}}\n\
             alerts:\n  - name: site-down\n    checks: [site]\n    failed_regions: 1\n    for: 1s\n    notify: [oncall]\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let admin = token(&data, &["--admin"]);
    let started = now_ms();
    let scheduler = scheduler(dir.path(), &checks, &data, port);
    wait_for("the scheduler", Duration::from_secs(20), dir.path(), || {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz")).is_ok_and(|r| r.status().is_success())
    });
    // Muted before the first run: the target is down (nothing listens), the page is held.
    let window = json!({
        "name": "vendor-outage", "checks": "site", "start": rfc3339(started - 60_000), "duration": "2h",
        "reason": "the vendor's planned work"
    });
    let (status, created) = call(port, "POST", &admin, "/api/v1/maintenance", Some(window));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["mode"], "mute");
    let prober = Kill(plain_prober(dir.path(), &data, port, "r1").spawn().unwrap());
    wait_for("results of site", Duration::from_secs(30), dir.path(), || planned(port, &admin, "site").len() >= 6);
    std::thread::sleep(Duration::from_secs(2));
    assert!(got.lock().unwrap().is_empty(), "no page while muted: {:?}", notifications(&got, SECRET));

    // Ended: the page held goes out, since the alert still fires.
    let (status, ended) = call(port, "DELETE", &admin, "/api/v1/maintenance/vendor-outage", None);
    assert_eq!((status, ended["result"].as_str()), (200, Some("ended")), "{ended}");
    let ended_at = now_ms();
    wait_for("the page after the window", Duration::from_secs(30), dir.path(), || !got.lock().unwrap().is_empty());
    let fired = notifications(&got, SECRET);
    assert_eq!((fired[0]["status"].as_str(), fired[0]["alert"].as_str()), (Some("firing"), Some("site-down")));
    drop(prober);
    drop(scheduler);

    // The report reads the API's windows from the data directory: the muted time is maintenance.
    let output = command()
        .arg("report")
        .arg("-c")
        .arg(&checks)
        .arg("--data")
        .arg(&data)
        .args(["--from", &rfc3339(started), "--to", &rfc3339(ended_at), "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let site = &report["checks"][0];
    assert_eq!(site["maintenance"][0]["window"], "vendor-outage", "{report}");
    assert_eq!(site["maintenance"][0]["mode"], "mute", "{report}");
    assert!(site["overall"]["muted_seconds"].as_f64().unwrap_or(0.0) > 0.0, "{report}");
}
