//! What a prober receives: its region's view of the config, never the notifiers, the dashboard or the checks
//! of other regions.

use probenet_checks::config::load_sources;
use reqwest::StatusCode;
use serde_json::json;

use crate::util::Net;

/// Two regions with checks of their own, and the scheduler's secrets written literally.
const CONFIG: &str = "\
regions:
  eu: {labels: {provider: hetzner}}
  us: {labels: {provider: aws}}
defaults: {interval: 30s, timeout: 5s}
notifiers:
  oncall:
    webhook: {url: 'https://hooks.example.com/literal-webhook-secret'}
alerts:
  - {name: down, checks: [home], failed_regions: 1, notify: [oncall]}
dashboard:
  token: literal-dashboard-token-0123456789
exporters:
  - remote_write: {url: 'https://metrics.internal.example.com/api/v1/write'}
  - logs: {path: '-', on: probers}
checks:
  - name: home
    http: {url: 'http://127.0.0.1:9/'}
  - name: eu-db
    regions: [eu]
    tcp: {target: '127.0.0.1:5432'}
  - name: us-billing-internal
    regions: [us]
    slo: {objective: 99.9, notify: [oncall]}
    http: {url: 'http://10.20.30.40:8080/billing'}
";

#[tokio::test]
async fn each_region_receives_its_own_view_of_the_config() {
    let net = Net::start(CONFIG).await;
    net.register("p-eu", "eu").await;
    net.register("p-us", "us").await;

    let eu = net.assignments("p-eu", "eu", 0, 0).await;
    let text: String = eu.config.iter().map(|file| file.text.as_str()).collect();
    for secret in [
        "us-billing-internal",
        "10.20.30.40",
        "literal-webhook-secret",
        "hooks.example.com",
        "literal-dashboard-token",
        "metrics.internal.example.com",
        "aws",
        "notifiers",
        "dashboard",
    ] {
        assert!(!text.contains(secret), "the eu prober received {secret:?}:\n{text}");
    }
    let config = load_sources(&eu.config).unwrap_or_else(|errors| panic!("{errors}\n{text}"));
    let names: Vec<&str> = config.checks.iter().map(|check| check.name.as_str()).collect();
    assert_eq!(names, ["home", "eu-db"]);
    assert_eq!(config.exporters.len(), 1, "only the exporter that runs on probers");
    let mut assigned: Vec<&str> = eu.assigned.iter().map(|a| a.check.as_str()).collect();
    assigned.sort_unstable();
    assert_eq!(assigned, ["eu-db", "home"]);

    let us = net.assignments("p-us", "us", 0, 0).await;
    let us_text: String = us.config.iter().map(|file| file.text.as_str()).collect();
    assert!(us_text.contains("us-billing-internal") && !us_text.contains("eu-db"), "{us_text}");
    assert!(!us_text.contains("literal-webhook-secret") && !us_text.contains("notify"), "{us_text}");
    assert_ne!(us.config_hash, eu.config_hash);
    assert_eq!(us.config_hash.len(), 16);
    // The scheduler's own hash is of the whole config, which no prober receives.
    let admin = net.admin_get("/api/v1/config").await;
    assert_ne!(admin["config_hash"], json!(eu.config_hash));
    // Asked again, the same view and hash: views are built once per config.
    assert_eq!(net.assignments("p-eu", "eu", 0, 0).await.config_hash, eu.config_hash);
    net.stop().await;
}

#[tokio::test]
async fn a_protocol_1_prober_gets_the_same_shape() {
    let net = Net::start(CONFIG).await;
    let register = json!({ "name": "old", "region": "eu", "version": "0.1.0", "protocol": 1 });
    let (status, body) = net.call("POST", Some(&net.eu), "/v1/register", Some(register)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = net.call("GET", Some(&net.eu), "/v1/assignments?prober=old&generation=0", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["assigned", "config", "config_hash", "generation"]);
    let file = &body["config"][0];
    assert!(file["name"].as_str().unwrap().ends_with("checks.yaml"), "{body}");
    assert!(file["text"].as_str().unwrap().contains("eu-db"), "{body}");
    assert!(!body.to_string().contains("literal-dashboard-token"), "{body}");
    net.stop().await;
}
