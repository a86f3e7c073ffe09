//! A fuzz-style property test of the prober protocol's JSON bodies against a running scheduler: whatever a
//! token holder sends (random JSON, valid bodies with hostile values, deep nesting, huge numbers, long strings,
//! bytes that are not JSON), the answer is a 2xx or a 4xx with a JSON reason, never a 5xx, a hang or a crash,
//! and the scheduler's memory stays bounded.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{CONFIG, Net, now_ms, on_grid, rss};

/// Any JSON value, nested a few levels, with the awkward leaves (extreme numbers, odd strings).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("x".repeat(10_000))),
        Just(json!("../../etc/passwd")),
        Just(json!("\u{0}\u{202e}")),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A valid body of `path` with one field replaced by `value` (or the whole body, when `field` is empty).
fn mutated(path: &str, field: &str, value: Value) -> Value {
    let now = now_ms();
    let mut body = match path {
        "/v1/register" => json!({"name": "p1", "region": "eu", "version": "0.2.0", "protocol": 1, "kinds": ["http"]}),
        "/v1/heartbeat" | "/v1/deregister" => json!({"name": "p1", "region": "eu"}),
        _ => json!({"prober": "p1", "results": [{
            "check": "home", "region": "eu", "planned_at_ms": on_grid("home", "eu", 30, now),
            "started_at_ms": now, "prober": "p1",
            "outcome": {"state": "up", "duration_seconds": 0.1, "phases": [], "assertions": [], "log": [], "details": {}}
        }]}),
    };
    if field.is_empty() {
        return value;
    }
    let target = if path == "/v1/results" && field != "prober" && field != "results" {
        &mut body["results"][0]
    } else {
        &mut body
    };
    if let Some(object) = target.as_object_mut() {
        object.insert(field.to_owned(), value);
    }
    body
}

const FIELDS: [&str; 14] = [
    "",
    "name",
    "region",
    "version",
    "protocol",
    "kinds",
    "prober",
    "results",
    "check",
    "planned_at_ms",
    "started_at_ms",
    "outcome",
    "details",
    "artifacts",
];

#[test]
fn hostile_protocol_bodies_get_a_4xx_never_a_5xx_or_a_crash() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let net = runtime.block_on(async {
        let net = Net::start(CONFIG).await;
        net.register("p1", "eu").await;
        let _ = net.assignments("p1", "eu", 0, 0).await;
        net
    });
    let before = rss();
    let started = Instant::now();
    let paths = ["/v1/register", "/v1/heartbeat", "/v1/deregister", "/v1/results", "/api/v1/silences"];
    let strategy = (0..paths.len(), 0..FIELDS.len(), any_json(), prop::collection::vec(any::<u8>(), 0..256), 0..8u8);
    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    runner
        .run(&strategy, |(path, field, value, bytes, mode)| {
            let path = paths[path];
            let token = if path.starts_with("/api/") { net.admin.clone() } else { net.eu.clone() };
            let url = format!("{}{path}", net.base);
            let status = runtime.block_on(async {
                let request = net.client.post(&url).bearer_auth(&token).timeout(Duration::from_secs(20));
                let request = match mode {
                    // Bytes that are not JSON at all, sometimes with a JSON content type.
                    0 => request.header("content-type", "application/json").body(bytes),
                    1 => request.body(bytes),
                    _ => request.json(&mutated(path, FIELDS[field], value)),
                };
                let response = request.send().await.expect("the scheduler answers");
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status.is_client_error() {
                    let reason: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    assert!(reason["error"].is_string(), "{path} {status}: not a JSON reason: {text}");
                }
                status
            });
            prop_assert!(!status.is_server_error(), "{path} answered {status}");
            Ok(())
        })
        .unwrap();
    // Still healthy, still serving the one real prober, memory bounded.
    runtime.block_on(async {
        let health = net.client.get(format!("{}/healthz", net.base)).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let probers = net.admin_get("/api/v1/probers").await;
        assert!(probers.as_array().unwrap().len() <= 100);
    });
    let grown = rss().saturating_sub(before);
    println!("fuzz: 300 bodies in {:.1}s; RSS grew {} MiB", started.elapsed().as_secs_f64(), grown >> 20);
    assert!(grown < 256 << 20, "memory grew {} MiB", grown >> 20);
    runtime.block_on(net.stop());
}
