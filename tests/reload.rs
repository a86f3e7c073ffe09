//! A broken config edit under `probenet up` is visible: the located errors and "the previous config is still in
//! use" in the terminal, a banner on the dashboard's pages and the reload's state in the admin API; fixing the
//! file prints `reloaded:` and the banner goes.

use std::time::Duration;

use crate::util::processes::{command, free_port, up_logged, wait_for};

const TOKEN: &str = "dashboard-token-of-the-reload-test";

/// A check that never runs during the test (once a year): only reloads happen.
fn config(checks: &[&str]) -> String {
    let mut yaml = String::from("regions: {a: {}}\ndashboard: {token: \"${env:DASHBOARD_TOKEN}\"}\nchecks:\n");
    for name in checks {
        yaml.push_str(&format!(
            "  - name: {name}\n    schedule: \"0 0 1 1 *\"\n    http: {{url: \"http://127.0.0.1:9/\"}}\n"
        ));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_shows_in_the_terminal_and_on_the_dashboard_until_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checks.yaml");
    std::fs::write(&file, config(&["web"])).unwrap();
    let log = dir.path().join("up.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _up = up_logged(&file, dir.path(), port, TOKEN, "120s", &log);
    let client = reqwest::Client::new();
    let page = |path: &'static str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let response = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.text().await.unwrap()
        }
    };
    let terminal = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut ready = false;
    for _ in 0..150 {
        if client.get(format!("{base}/")).bearer_auth(TOKEN).send().await.is_ok_and(|r| r.status().is_success()) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "probenet up did not serve the dashboard: {}", terminal());
    let overview = page("/").await;
    assert!(overview.contains("id=\"reload-problem\""), "{overview}");
    assert!(!overview.contains("failed; the previous config"), "no banner before any reload: {overview}");

    // A typo (with markup in the key) and a bad duration (with markup in the value): refused, every error
    // located, the old config still runs.
    let broken = config(&["web"]).replace(
        "    schedule: \"0 0 1 1 *\"\n",
        "    schedule: \"0 0 1 1 *\"\n    timeout: <b>soon</b>\n    \"<i>intervall\": 1m\n",
    );
    std::fs::write(&file, &broken).unwrap();
    let path = file.display().to_string();
    wait_for("the refused reload in the terminal", Duration::from_secs(20), dir.path(), || {
        terminal().contains("the previous config is still in use")
    });
    let out = terminal();
    assert!(out.contains(&format!("{path}:7:")), "located errors: {out}");
    assert!(out.contains("checks[0].timeout"), "{out}");
    assert!(out.contains(r#"checks[0]["<i>intervall"]"#), "{out}");
    assert!(out.contains("<b>soon</b>"), "the terminal shows the values: {out}");
    assert!(out.contains("config reload refused (2 errors in the config)"), "{out}");
    // The same errors as `probenet validate` prints.
    let validate = command().env("DASHBOARD_TOKEN", TOKEN).arg("validate").arg(&file).output().unwrap();
    assert_eq!(validate.status.code(), Some(1));
    for line in String::from_utf8_lossy(&validate.stderr).lines().filter(|line| line.starts_with(&path)) {
        assert!(out.contains(line), "validate's {line:?} is in the terminal: {out}");
    }

    // Every dashboard page shows the banner, the markup escaped and the values written elided (one may be a
    // credential); the public status page does not.
    for path in ["/", "/alerts", "/probers", "/slos", "/checks/web"] {
        let html = page(path).await;
        assert!(html.contains("failed; the previous config is still in use"), "{path}: {html}");
        assert!(html.contains("&lt;i&gt;intervall") && !html.contains("<i>intervall"), "escaped: {html}");
        assert!(html.contains("checks[0].timeout") && !html.contains("soon"), "the value is elided: {html}");
    }
    let reload: serde_json::Value =
        client.get(format!("{base}/api/ui/reload")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(reload["failed"], true, "{reload}");
    assert_eq!(reload["errors"].as_array().map(Vec::len), Some(2), "{reload}");
    let admin = std::fs::read_to_string(dir.path().join("data/up/admin.token")).unwrap();
    let api: serde_json::Value = client
        .get(format!("{base}/api/v1/config"))
        .bearer_auth(admin.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["last_reload"]["result"], "rejected", "{api}");
    assert_eq!(api["checks"], 1, "the previous config still runs: {api}");

    // Fixed, with a check more: `reloaded:` in the terminal and no banner.
    std::fs::write(&file, config(&["web", "api"])).unwrap();
    wait_for("the reload in the terminal", Duration::from_secs(20), dir.path(), || {
        terminal().contains("probenet: reloaded: 2 checks (added api)")
    });
    for path in ["/", "/alerts"] {
        let html = page(path).await;
        assert!(!html.contains("failed; the previous config"), "{path}: {html}");
    }
    let reload: serde_json::Value =
        client.get(format!("{base}/api/ui/reload")).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(reload["failed"], false, "{reload}");
}
