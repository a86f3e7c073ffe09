//! The admin API under /api/v1, /healthz and /metrics.

use probenet_checks::State;
use reqwest::StatusCode;
use serde_json::Value;

use crate::util::{CONFIG, Net, now_ms, on_grid, result};

#[tokio::test]
async fn the_read_api_lists_probers_assignments_checks_results_and_config() {
    let net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    net.register("u1", "us").await;

    let probers = net.admin_get("/api/v1/probers").await;
    let names: Vec<&str> = probers.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["p1", "u1"]);
    assert_eq!(probers[0]["region"], "eu");
    assert_eq!(probers[0]["version"], "0.1.0");
    assert_eq!(probers[0]["assigned"], 3);
    assert_eq!(probers[1]["assigned"], 2);
    let heartbeat = probers[0]["last_heartbeat"].as_str().unwrap();
    let heartbeat_ms = probenet_scheduler::time::parse_rfc3339_ms(heartbeat).unwrap();
    assert!((now_ms() - heartbeat_ms).abs() < 60_000, "{heartbeat}");

    let assignments = net.admin_get("/api/v1/assignments").await;
    assert_eq!(assignments.as_array().map(Vec::len), Some(5));
    for entry in assignments.as_array().unwrap() {
        let expected = if entry["region"] == "eu" { "p1" } else { "u1" };
        assert_eq!(entry["prober"], expected, "{entry}");
        assert!(entry["offset_ms"].as_u64().unwrap() < 30_000);
    }

    // A fresh result gives the pair its state; pairs without one are unknown; a stale one is unknown too.
    let now = now_ms();
    let (home, api) = (on_grid("home", "eu", 30, now), on_grid("api", "eu", 10, now));
    let batch = [
        result("home", "eu", home, State::Up),
        result("api", "eu", api, State::Down),
        result("eu-only", "eu", on_grid("eu-only", "eu", 30, now - 3_600_000), State::Up),
    ];
    let (status, _) = net.post_results("eu", &batch).await;
    assert_eq!(status, StatusCode::OK);
    let checks = net.admin_get("/api/v1/checks").await;
    let state = |check: &str, region: &str| -> String {
        let entry = checks.as_array().unwrap().iter().find(|c| c["check"] == check && c["region"] == region).unwrap();
        entry["state"].as_str().unwrap().to_owned()
    };
    assert_eq!(checks.as_array().map(Vec::len), Some(5));
    assert_eq!(state("home", "eu"), "up");
    assert_eq!(state("api", "eu"), "down");
    assert_eq!(state("eu-only", "eu"), "unknown");
    assert_eq!(state("home", "us"), "unknown");
    let home_entry = checks.as_array().unwrap().iter().find(|c| c["check"] == "home" && c["region"] == "eu").unwrap();
    assert_eq!(home_entry["last_result"]["planned_at_ms"], home);
    assert!(checks.as_array().unwrap().iter().any(|c| c["last_result"].is_null()));

    // Results: filters, since (RFC 3339 or unix ms), limit.
    let more: Vec<_> = (1..=20).map(|i| result("home", "eu", home - i * 30_000, State::Up)).collect();
    net.post_results("eu", &more).await;
    let all = net.admin_get("/api/v1/results?check=home&region=eu&limit=5000").await;
    assert_eq!(all.as_array().map(Vec::len), Some(21));
    let limited = net.admin_get("/api/v1/results?check=home&limit=3").await;
    assert_eq!(limited.as_array().map(Vec::len), Some(3));
    assert_eq!(limited[0]["planned_at_ms"], home);
    let since_ms = home - 5 * 30_000;
    let by_ms = net.admin_get(&format!("/api/v1/results?check=home&since={since_ms}")).await;
    assert_eq!(by_ms.as_array().map(Vec::len), Some(6));
    let rfc = probenet_scheduler::time::rfc3339_ms(since_ms);
    let by_rfc = net.admin_get(&format!("/api/v1/results?check=home&since={rfc}")).await;
    assert_eq!(by_rfc, by_ms);
    let everything = net.admin_get("/api/v1/results").await;
    assert_eq!(everything.as_array().map(Vec::len), Some(23));
    let (status, body) = net.call("GET", Some(&net.admin), "/api/v1/results?since=yesterday", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = net.call("GET", Some(&net.admin), "/api/v1/results?limit=many", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let config = net.admin_get("/api/v1/config").await;
    assert_eq!(config["errors"], Value::Array(Vec::new()));
    assert_eq!(config["checks"], 3);
    assert_eq!(config["pairs"], 5);
    assert!(config["files"][0].as_str().unwrap().ends_with("checks.yaml"));
    assert!(config["generation"].as_u64().unwrap() >= 3);
    assert!(probenet_scheduler::time::parse_rfc3339_ms(config["loaded_at"].as_str().unwrap()).is_some());

    let (status, body) = net.call("GET", Some(&net.admin), "/api/v1/nothing", None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not found")));
    net.stop().await;
}

/// A sample: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Splits a sample line `name{labels} value` into its name, labels and value.
fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        None => (series, Vec::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}')?;
            let mut labels = Vec::new();
            for pair in body.split(',').filter(|pair| !pair.is_empty()) {
                let (key, quoted) = pair.split_once('=')?;
                let value = quoted.strip_prefix('"')?.strip_suffix('"')?;
                labels.push((key.to_owned(), value.to_owned()));
            }
            (name, labels)
        }
    };
    let valid_name = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    valid_name.then(|| (name.to_owned(), labels, value))
}

#[tokio::test]
async fn health_is_open_metrics_need_the_admin_token_and_parse_line_by_line() {
    // One maintenance window in force (every minute, for a week) and one long over.
    let config = format!(
        "{CONFIG}maintenance:
  - {{name: always, checks: [home], schedule: '* * * * *', duration: 7d}}
  - {{name: done, checks: [api], start: '2020-01-01T00:00:00Z', end: '2020-01-01T01:00:00Z', mode: pause}}
"
    );
    let net = Net::start(&config).await;
    net.register("p1", "eu").await;
    let health = net.client.get(format!("{}/healthz", net.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap().trim(), "ok");
    // /metrics names every check and target: not for strangers, nor for a prober token.
    let open = net.client.get(format!("{}/metrics", net.base)).send().await.unwrap();
    assert_eq!(open.status(), StatusCode::UNAUTHORIZED);
    let prober = net.client.get(format!("{}/metrics", net.base)).bearer_auth(&net.eu).send().await.unwrap();
    assert_eq!(prober.status(), StatusCode::FORBIDDEN);

    let response = net.client.get(format!("{}/metrics", net.base)).bearer_auth(&net.admin).send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        samples.push(parse_sample(line).unwrap_or_else(|| panic!("not a sample line: {line:?}")));
    }
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels.iter().all(|(k, v)| l.contains(&((*k).into(), (*v).into())))
            })
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
            .2
    };
    assert_eq!(value("probenet_scheduler_probers", &[("region", "eu")]), 1.0);
    assert_eq!(value("probenet_scheduler_probers", &[("region", "us")]), 0.0);
    assert_eq!(value("probenet_scheduler_pairs", &[]), 5.0);
    assert_eq!(value("probenet_scheduler_unassigned_pairs", &[]), 2.0);
    assert_eq!(value("probenet_scheduler_results_ingested_total", &[]), 0.0);
    assert_eq!(value("probenet_scheduler_results_duplicate_total", &[]), 0.0);
    assert_eq!(value("probenet_scheduler_config_reloads_total", &[("result", "ok")]), 0.0);
    assert_eq!(value("probenet_scheduler_config_reloads_total", &[("result", "error")]), 0.0);
    assert_eq!(value("probenet_scheduler_results_refused_total", &[("reason", "future")]), 0.0);
    assert!(value("probenet_scheduler_generation", &[]) >= 2.0);
    assert_eq!(value("probenet_maintenance_active", &[("window", "always"), ("mode", "mute")]), 1.0);
    assert_eq!(value("probenet_maintenance_active", &[("window", "done"), ("mode", "pause")]), 0.0);
    // The same windows through the API, with their spans; the admin token only.
    let (status, _) = net.call("GET", Some(&net.eu), "/api/v1/maintenance", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let windows = net.admin_get("/api/v1/maintenance").await;
    let always = &windows["windows"][0];
    assert_eq!((&always["name"], &always["mode"], &always["active"]), (&"always".into(), &"mute".into(), &true.into()));
    assert_eq!(
        (&always["schedule"], &always["timezone"], &always["duration_ms"]),
        (&"* * * * *".into(), &"UTC".into(), &604_800_000.into())
    );
    let start = probenet_scheduler::time::parse_rfc3339_ms(always["start"].as_str().unwrap()).unwrap();
    let end = probenet_scheduler::time::parse_rfc3339_ms(always["end"].as_str().unwrap()).unwrap();
    assert!(start <= now_ms() && now_ms() < end && end - start == 604_800_000, "{always}");
    let done = &windows["windows"][1];
    assert_eq!(
        (&done["checks"], &done["active"], &done["start"]),
        (&serde_json::json!(["api"]), &false.into(), &Value::Null)
    );
    assert_eq!(windows["silences"], serde_json::json!([]));
    // Every series has its TYPE line.
    for (name, _, _) in &samples {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} has no TYPE line");
    }
    // And Prometheus' own linter has nothing to say (counters end in _total, HELP everywhere).
    let promtool = "/usr/bin/promtool";
    assert!(std::path::Path::new(promtool).exists(), "{promtool} is missing: install the prometheus package");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let linted = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&linted.stdout), String::from_utf8_lossy(&linted.stderr));
    assert!(linted.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");
    net.stop().await;
}

#[tokio::test]
async fn a_failed_runs_traceroute_is_stored_and_shown_with_the_failure() {
    let net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    let planned = on_grid("home", "eu", 30, now_ms() - 60_000);
    let evidence = br#"{"traceroute":{"target":"127.0.0.1","method":"udp","hops":[{"ttl":1,"address":"127.0.0.1","rtt_ms":[0.05]}],"reached":true,"stopped_at_ttl":1,"summary":"reached 127.0.0.1 in 1 hop (0.05 ms)","duration_ms":0.2},"in_details":[]}"#;
    let mut run = result("home", "eu", planned, State::Down);
    run.outcome.artifacts.push(probenet_checks::outcome::Artifact {
        name: "traceroute.json".into(),
        media_type: "application/json".into(),
        data: evidence.to_vec(),
        path: None,
    });
    assert_eq!(net.post_results("eu", &[run]).await.0, StatusCode::OK);

    // The check page's failure names the stored traceroute...
    let response = net.client.get(format!("{}/api/ui/checks/home?range=24h", net.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let detail: Value = response.json().await.unwrap();
    let failure = &detail["failures"][0];
    assert_eq!(failure["screenshot"], Value::Null);
    let path = failure["traceroute"].as_str().expect("the failure names its traceroute").to_owned();
    assert!(path.ends_with("traceroute.json"), "{path}");
    // ... served as JSON, byte for byte what the prober sent.
    let response = net.client.get(format!("{}/api/ui/artifacts/{path}", net.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.bytes().await.unwrap().as_ref(), evidence.as_slice());
    net.stop().await;
}
