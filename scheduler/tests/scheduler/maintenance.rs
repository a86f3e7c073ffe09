//! Maintenance windows through the API: validated by the config's own code (its messages, at the field), bounded,
//! for admins only; in the running config (a new hash, the pause in the view of its check's region only); kept
//! across a restart and across a reload of the files, broken or not; a window of the files is not the API's.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{CONFIG, Net};

const PATH: &str = "/api/v1/maintenance";

/// A one-off pause of `check` from a minute ago, for an hour.
fn pause(name: &str, check: &str) -> Value {
    let start = probenet_scheduler::time::rfc3339_ms(probenet_scheduler::time::now_ms() - 60_000);
    json!({ "name": name, "checks": [check], "start": start, "duration": "1h", "mode": "pause" })
}

/// The names and sources of the windows listed.
async fn listed(net: &Net) -> Vec<(String, String)> {
    let body = net.admin_get(PATH).await;
    body["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|window| (window["name"].as_str().unwrap().to_owned(), window["source"].as_str().unwrap().to_owned()))
        .collect()
}

fn with_config_window() -> String {
    format!("{CONFIG}maintenance:\n  - {{name: nightly, checks: [home], schedule: '0 2 * * *', duration: 1h}}\n")
}

#[tokio::test]
async fn bad_windows_are_refused_with_the_configs_message_and_change_nothing() {
    let net = Net::start(&with_config_window()).await;
    let hash = net.admin_get("/api/v1/config").await["config_hash"].clone();
    let post = |body: Value| net.call("POST", Some(&net.admin), PATH, Some(body));
    let refused = [
        (
            json!({"name": "w", "checks": ["api"], "schedule": "61 * * * *", "duration": "1h"}),
            "schedule: \"61 * * * *\"",
        ),
        (
            json!({"name": "w", "checks": ["api"], "start": "2026-12-07T09:00:00Z", "duration": "1h", "colour": "red"}),
            "colour: unknown field \"colour\"; expected one of: name, checks, match,",
        ),
        (
            json!({"name": "w", "start": "2026-12-07T09:00:00Z", "duration": "1h"}),
            "a maintenance window needs `checks` (a list of check names) or `match` (labels)",
        ),
        (
            json!({"name": "w", "checks": ["nope"], "start": "2026-12-07T09:00:00Z", "duration": "1h"}),
            "checks[0]: unknown check \"nope\"",
        ),
        (pause("nightly", "api"), "name: duplicate maintenance window name \"nightly\" (first defined at "),
        (json!(["not", "a", "window"]), "the body must be a JSON object: one maintenance window"),
    ];
    for (body, message) in refused {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{body}: {error:?} does not say {message:?}");
    }
    // The exact message of an invalid crontab line, as `probenet validate` prints it for a file.
    let (_, answer) = post(json!({"name": "w", "checks": ["api"], "schedule": "61 * * * *", "duration": "1h"})).await;
    let file = probenet_checks::load_str(
        "c.yaml",
        &format!("{CONFIG}maintenance:\n  - {{name: w, checks: [api], schedule: '61 * * * *', duration: 1h}}\n"),
    );
    let expected = file.err().map(|errors| errors.0[0].message.clone()).unwrap_or_default();
    assert_eq!(answer["error"], format!("schedule: {expected}"));

    // A name taken by another window of the API.
    let (status, _) = post(pause("first", "api")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = post(pause("first", "home")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"].as_str().unwrap_or_default().starts_with("name: duplicate maintenance window name"));

    // Too large a body: 413, never parsed.
    let huge = json!({"name": "w", "checks": ["api"], "reason": "x".repeat(70_000)});
    let (status, answer) = post(huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"], "request body is larger than 65536 bytes");

    // Nothing but `first` was added.
    assert_eq!(listed(&net).await, [("nightly".to_owned(), "config".to_owned()), ("first".into(), "api".into())]);
    assert_ne!(net.admin_get("/api/v1/config").await["config_hash"], hash, "the window is in the config");

    // Who may: an admin token only, checked before the body is read.
    let (status, _) = net.call("POST", Some(&net.eu), PATH, Some(pause("x", "api"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = net.call("POST", None, PATH, Some(pause("x", "api"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = net.call("DELETE", Some(&net.us), &format!("{PATH}/first"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A window of the files is changed in the files.
    let (status, answer) = net.call("DELETE", Some(&net.admin), &format!("{PATH}/nightly"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("maintenance window \"nightly\" is written in the config files ("), "{error}");
    assert!(error.ends_with("): edit them to change or remove it"), "{error}");
    let (status, _) = net.call("DELETE", Some(&net.admin), &format!("{PATH}/nothing"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(listed(&net).await.len(), 2);
    net.stop().await;
}

#[tokio::test]
async fn a_pause_reaches_the_probers_of_its_checks_region_and_survives_a_restart_and_reloads() {
    let mut net = Net::start(CONFIG).await;
    net.register("p-eu", "eu").await;
    net.register("p-us", "us").await;
    let (eu_before, us_before) =
        (net.assignments("p-eu", "eu", 0, 0).await.config_hash, net.assignments("p-us", "us", 0, 0).await.config_hash);
    let (status, created) = net.call("POST", Some(&net.admin), PATH, Some(pause("eu-db-move", "eu-only"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!((created["source"].as_str(), created["active"].as_bool()), (Some("api"), Some(true)));

    // eu's probers run eu-only: their view has the pause (a new hash); us's view does not change.
    let eu = net.assignments("p-eu", "eu", 0, 0).await;
    assert_ne!(eu.config_hash, eu_before);
    let config = probenet_checks::config::load_sources(&eu.config).unwrap();
    let windows: Vec<(&str, &[String])> =
        config.maintenance.iter().map(|window| (window.name.as_str(), &window.checks[..])).collect();
    assert_eq!(windows, [("eu-db-move", &["eu-only".to_owned()][..])]);
    assert_eq!(net.assignments("p-us", "us", 0, 0).await.config_hash, us_before);

    // A broken edit of the files is refused and the window stays; a good one keeps it too.
    net.write_config("checks: [oops\n");
    crate::util::eventually(std::time::Duration::from_secs(10), || async {
        let config = net.admin_get("/api/v1/config").await;
        (!config["errors"].as_array().unwrap().is_empty()).then_some(())
    })
    .await;
    assert_eq!(listed(&net).await, [("eu-db-move".to_owned(), "api".to_owned())]);
    net.write_config(&format!("{CONFIG}  - name: added\n    http: {{url: 'http://127.0.0.1:9/added'}}\n"));
    crate::util::eventually(std::time::Duration::from_secs(10), || async {
        (net.admin_get("/api/v1/config").await["checks"] == 4).then_some(())
    })
    .await;
    assert_eq!(listed(&net).await, [("eu-db-move".to_owned(), "api".to_owned())]);

    // Kept in DATA/maintenance.json across a restart.
    assert!(net.dir.path().join("data/maintenance.json").is_file());
    net.restart().await;
    assert_eq!(listed(&net).await, [("eu-db-move".to_owned(), "api".to_owned())]);
    net.register("p-eu", "eu").await;
    let eu = net.assignments("p-eu", "eu", 0, 0).await;
    assert!(probenet_checks::config::load_sources(&eu.config).unwrap().maintenance.len() == 1);

    // Removed before it ends? It is in force: it ends now and stays listed, over.
    let (status, answer) = net.call("DELETE", Some(&net.admin), &format!("{PATH}/eu-db-move"), None).await;
    assert_eq!((status, answer["result"].as_str()), (StatusCode::OK, Some("ended")), "{answer}");
    let body = net.admin_get(PATH).await;
    assert_eq!(body["windows"][0]["active"], false, "{body}");
    // Deleted again, it is removed.
    let (status, answer) = net.call("DELETE", Some(&net.admin), &format!("{PATH}/eu-db-move"), None).await;
    assert_eq!((status, answer["result"].as_str()), (StatusCode::OK, Some("removed")), "{answer}");
    assert_eq!(listed(&net).await, []);
    net.stop().await;
}
