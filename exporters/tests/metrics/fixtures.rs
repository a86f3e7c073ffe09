//! Results of every kind, success and failure, with the details shapes the executors produce; and real HTTP
//! runs against a local server.

use std::collections::BTreeMap;
use std::sync::Arc;

use probenet_checks::outcome::{Assertion, Outcome, Phase, Reason, State};
use probenet_checks::wire::RunResult;
use probenet_exporters::CheckMeta;
use serde_json::json;

/// A check's labelling facts.
pub fn meta(name: &str, kind: &str, target: &str) -> Arc<CheckMeta> {
    let kind = kind.parse().unwrap_or_else(|error| panic!("{error}"));
    Arc::new(CheckMeta { name: name.into(), kind, target: target.into(), labels: BTreeMap::new() })
}

/// A result of `outcome` for `check` from `region`, started at `at_ms`.
pub fn result(check: &str, region: &str, at_ms: i64, outcome: Outcome) -> Arc<RunResult> {
    Arc::new(RunResult {
        check: check.into(),
        region: region.into(),
        planned_at_ms: at_ms,
        started_at_ms: at_ms,
        prober: "p1".into(),
        outcome,
    })
}

fn phases(list: &[(&str, f64)]) -> Vec<Phase> {
    list.iter().map(|(name, seconds)| Phase { name: (*name).into(), seconds: *seconds }).collect()
}

fn outcome(state: State, reason: Option<Reason>, phases: Vec<Phase>, details: serde_json::Value) -> Outcome {
    let passed = reason.is_none() || state == State::Degraded;
    Outcome {
        state,
        duration_seconds: phases.iter().map(|p| p.seconds).sum(),
        phases,
        reason,
        error: reason.map(|r| format!("failed: {} \"quoted\"\nsecond line", r.as_str())),
        assertions: vec![Assertion { name: "status".into(), expected: "200".into(), observed: "200".into(), passed }],
        details,
        log: Vec::new(),
        artifacts: Vec::new(),
    }
}

/// An up outcome with every phase of every kind and no details.
pub fn up() -> Outcome {
    let all = [("resolve", 0.001), ("connect", 0.002), ("tls", 0.01), ("processing", 0.05), ("transfer", 0.001)];
    outcome(State::Up, None, phases(&all), serde_json::Value::Null)
}

fn certificate() -> serde_json::Value {
    json!({
        "verdict": "ok", "problems": [], "trusted": true, "verify_error": null, "server_name": "shop.example.com",
        "earliest_expiry": "2030-01-01T00:00:00Z", "earliest_expiry_unix": 1_893_456_000,
        "last_chain_expiry": "2030-01-01T00:00:00Z", "last_chain_expiry_unix": 1_893_456_000,
        "chain": [{
            "subject": "CN=shop.example.com", "issuer": "CN=Test \"CA\", O=Acme", "sans": ["shop.example.com", "*.example.com"],
            "serial": "0a1b", "not_before": "2024-01-01T00:00:00Z", "not_before_unix": 1_704_067_200,
            "not_after": "2030-01-01T00:00:00Z", "not_after_unix": 1_893_456_000,
            "sha256_fingerprint": "ab".repeat(32), "is_ca": false
        }]
    })
}

/// One result of every kind, in success and failure, all for region `eu-west`, started at `at_ms`.
pub fn every_kind(at_ms: i64) -> Vec<(Arc<CheckMeta>, Arc<RunResult>)> {
    let http_phases =
        phases(&[("resolve", 0.001), ("connect", 0.002), ("tls", 0.01), ("processing", 0.05), ("transfer", 0.001)]);
    let cases = vec![
        (
            "https-ok",
            "http",
            "https://shop.example.com/",
            outcome(
                State::Up,
                None,
                http_phases.clone(),
                json!({
                    "status_code": 200, "http_version": "2", "redirects": 1, "final_url": "https://shop.example.com/",
                    "content_length": 1234, "body_truncated": false, "tls": true, "tls_version": "TLSv1.3",
                    "cipher_suite": "TLS13_AES_128_GCM_SHA256", "alpn": "h2", "certificate": certificate()
                }),
            ),
        ),
        (
            "http-slow",
            "http",
            "http://shop.example.com/slow",
            outcome(
                State::Degraded,
                Some(Reason::Duration),
                http_phases,
                json!({
                    "status_code": 200, "http_version": "1.1", "redirects": 0, "content_length": 5, "tls": false
                }),
            ),
        ),
        (
            "http-body",
            "http",
            "http://shop.example.com/b",
            outcome(
                State::Down,
                Some(Reason::Body),
                phases(&[("resolve", 0.001)]),
                json!({
                    "status_code": 200, "http_version": "1.1", "redirects": 0, "content_length": 5, "tls": false
                }),
            ),
        ),
        (
            "http-refused",
            "http",
            "http://127.0.0.1:1/",
            outcome(
                State::Down,
                Some(Reason::Connect),
                phases(&[("resolve", 0.0), ("connect", 0.001)]),
                serde_json::Value::Null,
            ),
        ),
        (
            "dns-ok",
            "dns",
            "shop.example.com A @192.0.2.53:53",
            outcome(
                State::Up,
                None,
                phases(&[("resolve", 0.0), ("connect", 0.0001), ("request", 0.004)]),
                json!({
                    "query": "shop.example.com.", "record": "A", "class": "IN", "transport": "udp", "server": "192.0.2.53:53",
                    "rcode": "NOERROR", "answer_rrs": 2, "authority_rrs": 0, "additional_rrs": 1, "serial": null
                }),
            ),
        ),
        (
            "dns-soa",
            "dns",
            "example.com SOA",
            outcome(
                State::Down,
                Some(Reason::Rcode),
                phases(&[("resolve", 0.0), ("connect", 0.0001), ("request", 0.004)]),
                json!({
                    "server": "[2001:db8::53]:53", "rcode": "SERVFAIL", "answer_rrs": 1, "authority_rrs": 0, "additional_rrs": 0, "serial": 2024010101
                }),
            ),
        ),
        (
            "dns-timeout",
            "dns",
            "slow.example.com A",
            outcome(State::Down, Some(Reason::Timeout), phases(&[("resolve", 0.0)]), json!({"server": null})),
        ),
        (
            "smtp",
            "tcp",
            "mail.example.com:465",
            outcome(
                State::Down,
                Some(Reason::Assertion),
                phases(&[("resolve", 0.0), ("connect", 0.001), ("tls", 0.01)]),
                json!({
                    "remote_address": "192.0.2.25:465", "bytes_sent": 10, "bytes_received": 30, "banner": "220 ready",
                    "tls_version": "TLSv1.2", "cipher_suite": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "alpn": null, "certificate": certificate()
                }),
            ),
        ),
        (
            "cert",
            "tls",
            "shop.example.com:443",
            outcome(
                State::Down,
                Some(Reason::CertExpiring),
                phases(&[("resolve", 0.0), ("connect", 0.001), ("tls", 0.01)]),
                {
                    let mut details = json!({"address": "192.0.2.1:443", "sni": true, "version": "TLSv1.3", "cipher_suite": "TLS13_AES_256_GCM_SHA384", "alpn": null, "insecure": false});
                    probenet_checks::outcome::merge_details(&mut details, certificate());
                    details
                },
            ),
        ),
        (
            "ping",
            "icmp",
            "192.0.2.7",
            outcome(
                State::Up,
                None,
                phases(&[("resolve", 0.0), ("setup", 0.0001), ("rtt", 0.002)]),
                json!({
                    "address": "192.0.2.7", "socket": "datagram", "payload_size": 56, "count": 3, "sent": 3, "received": 3,
                    "duplicates": 0, "loss": 0.0, "rtt_seconds": {"min": 0.001, "avg": 0.002, "max": 0.003, "stddev": 0.0008}
                }),
            ),
        ),
        (
            "ping-lost",
            "icmp",
            "192.0.2.8",
            outcome(
                State::Down,
                Some(Reason::Loss),
                phases(&[("resolve", 0.0), ("setup", 0.0001)]),
                json!({
                    "address": "192.0.2.8", "sent": 3, "received": 0, "loss": 1.0, "rtt_seconds": null
                }),
            ),
        ),
        (
            "checkout",
            "browser",
            "https://shop.example.com/",
            outcome(
                State::Up,
                None,
                Vec::new(),
                json!({
                    "navigation": {"url": "https://shop.example.com/", "status": 200, "ttfb_seconds": 0.05, "dom_content_loaded_seconds": 0.2, "load_seconds": 0.4},
                    "web_vitals": {"fcp_seconds": 0.3, "lcp_seconds": 0.6, "cls": 0.01, "inp_seconds": null},
                    "pages": [
                        {"url": "https://shop.example.com/", "status": 200, "ttfb_seconds": 0.05, "load_seconds": 0.4,
                         "request_seconds": 0.123, "sent_bytes": 512, "received_bytes": 20480,
                         "fcp_seconds": 0.3, "lcp_seconds": 0.6, "cls": 0.01, "inp_seconds": null},
                        {"url": "https://shop.example.com/cart", "status": 200, "ttfb_seconds": 0.02,
                         "fcp_seconds": 0.1, "lcp_seconds": 0.2, "cls": 0.0, "inp_seconds": 0.048}
                    ],
                    "console_errors": 0, "failed_requests": 1
                }),
            ),
        ),
        (
            "checkout-nobrowser",
            "browser",
            "https://shop.example.com/",
            Outcome::failed(Reason::BrowserUnavailable, "no chromium"),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, kind, target, outcome)| {
            let mut check = (*meta(name, kind, target)).clone();
            check.labels.insert("team".into(), "web \"shop\"\\\nops".into());
            check.labels.insert("tier-1".into(), "yes".into());
            (Arc::new(check), result(name, "eu-west", at_ms, outcome))
        })
        .collect()
}
