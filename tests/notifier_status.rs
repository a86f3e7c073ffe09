//! A notifier whose receiver answers 500: `probenet up` logs a WARN line naming it at the first failed attempt
//! and when it gives up, and the dashboard's Alerts page shows its last delivery (retrying, then failed, with
//! the receiver's answer); a notifier never used shows "none yet".

use std::time::Duration;

use crate::util::Server;
use crate::util::processes::{ShowOnFailure, free_port, up_logged};

const TOKEN: &str = "dashboard-token-of-the-notifier-test";

/// Polls `done` every 200 ms without blocking the runtime (the receiver runs on it), up to `limit`.
async fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_logged_and_shown_on_the_alerts_page() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Server::http1().route("/hook", 500, "receiver down").start().await;
    let closed = free_port();
    let file = dir.path().join("checks.yaml");
    std::fs::write(
        &file,
        format!(
            "regions: {{a: {{}}}}\ndefaults: {{interval: 1s, timeout: 500ms}}\n\
             dashboard: {{token: \"${{env:DASHBOARD_TOKEN}}\"}}\n\
             notifiers:\n  oncall: {{webhook: {{url: \"{}\"}}}}\n  spare: {{webhook: {{url: \"{}\"}}}}\n\
             checks:\n  - name: site\n    http: {{url: \"http://127.0.0.1:{closed}/\"}}\n\
             alerts:\n  - name: site-down\n    checks: [site]\n    failed_regions: 1\n    for: 1s\n    \
             severity: page\n    notify: [oncall]\n",
            receiver.url("/hook"),
            receiver.url("/spare"),
        ),
    )
    .unwrap();
    let log = dir.path().join("up.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _up = up_logged(&file, dir.path(), port, TOKEN, "180s", &log);
    let terminal = || std::fs::read_to_string(&log).unwrap_or_default();
    let _show = ShowOnFailure(log.clone());
    let client = reqwest::Client::new();
    let page = || async {
        let response = client.get(format!("{base}/alerts")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    };
    // The row of a notifier on the page.
    let row = |html: &str, name: &str| -> String {
        let start = html.find(&format!("<tr data-notifier=\"{name}\">")).unwrap_or_else(|| panic!("no {name}: {html}"));
        html[start..].split("</tr>").next().unwrap_or_default().to_owned()
    };

    // The first failed attempt: a WARN line naming the notifier, and the page shows it retrying with the answer.
    wait("a failed attempt in the log", Duration::from_secs(40), || {
        terminal().lines().any(|line| line.contains("WARN") && line.contains("notifier=\"oncall\""))
    })
    .await;
    assert!(receiver.hits("/hook") >= 1);
    let html = page().await;
    let oncall = row(&html, "oncall");
    assert!(oncall.contains("site-down"), "{oncall}");
    assert!(oncall.contains("500"), "the receiver's answer: {oncall}");
    assert!(oncall.contains("badge degraded\">retrying") || oncall.contains("badge down\">failed"), "{oncall}");
    assert!(row(&html, "spare").contains("none yet"), "{html}");

    // Given up after its retries (about 31 s of backoff): failed, and a WARN line saying so.
    wait("the notification given up", Duration::from_secs(90), || {
        terminal()
            .lines()
            .any(|line| line.contains("WARN") && line.contains("notifier=\"oncall\"") && line.contains("given up"))
    })
    .await;
    let oncall = row(&page().await, "oncall");
    assert!(oncall.contains("badge down\">failed"), "{oncall}");
    assert!(oncall.contains("500"), "{oncall}");
    assert!(oncall.contains("0 / 1"), "sent / failed: {oncall}");
    let api: serde_json::Value =
        client.get(format!("{base}/api/ui/alerts")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    let notifiers = api["notifiers"].as_array().cloned().unwrap_or_default();
    assert_eq!(notifiers.len(), 2, "{api}");
    assert_eq!(notifiers[0]["name"], "oncall");
    assert_eq!(notifiers[0]["last"]["state"], "failed", "{api}");
    assert_eq!(notifiers[1]["last"], serde_json::Value::Null, "{api}");
}
