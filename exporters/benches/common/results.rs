//! Realistic results for the benchmarks.

use std::time::Duration;

use probenet_checks::outcome::{Assertion, Outcome, Phase, State};
use probenet_checks::wire::RunResult;

/// A realistic HTTPS result of pair number `pair` (of `checks` x `regions`) at run number `run`, one run every
/// `every_ms` from `t0`.
pub fn http_result(t0: i64, every_ms: i64, checks: i64, regions: i64, pair: i64, run: i64) -> RunResult {
    let (check, region) = (pair / regions % checks, pair % regions);
    let planned_at_ms = t0 + run * every_ms + (pair * 7919) % every_ms;
    // Durations as probers measure them: `Duration::as_secs_f64` of nanosecond timings.
    let nanos = 50_000_000 + ((pair * 31 + run * 17) % 200) as u64 * 1_000_000 + (pair * 7 + run * 13) as u64 % 997_001;
    let seconds = Duration::from_nanos(nanos).as_secs_f64();
    let state = if (pair + run) % 97 == 0 { State::Down } else { State::Up };
    let phase = |name: &str, share: f64| Phase {
        name: name.to_owned(),
        seconds: Duration::from_nanos((nanos as f64 * share) as u64).as_secs_f64(),
    };
    RunResult {
        check: format!("check-{check:04}"),
        region: format!("region-{region}"),
        planned_at_ms,
        started_at_ms: planned_at_ms + 2,
        prober: format!("prober-{region}-a"),
        outcome: Outcome {
            state,
            duration_seconds: seconds,
            phases: vec![
                phase("resolve", 0.05),
                phase("connect", 0.15),
                phase("tls", 0.3),
                phase("processing", 0.4),
                phase("transfer", 0.1),
            ],
            reason: None,
            error: None,
            assertions: vec![Assertion {
                name: "status".into(),
                expected: "200-299".into(),
                observed: "200".into(),
                passed: true,
            }],
            details: serde_json::json!({
                "status": 200, "http_version": "HTTP/2", "body_bytes": 5120 + run % 100,
                "tls": {"version": "TLSv1.3", "cipher": "TLS13_AES_128_GCM_SHA256", "cert_not_after": "2027-01-01T00:00:00Z"}
            }),
            log: vec![
                format!("resolved check-{check:04}.example.net to 192.0.2.{}", check % 250),
                "connected, TLSv1.3 handshake done".into(),
                "GET / -> 200".into(),
            ],
            artifacts: Vec::new(),
        },
    }
}

/// A realistic TCP result (a connect, no TLS) of pair number `pair`, like [`http_result`]: the smallest
/// result a network sends by the thousand.
#[allow(dead_code)] // not every benchmark that includes this file uses both shapes
pub fn tcp_result(t0: i64, every_ms: i64, checks: i64, regions: i64, pair: i64, run: i64) -> RunResult {
    let mut result = http_result(t0, every_ms, checks, regions, pair, run);
    let nanos = 200_000 + ((pair * 31 + run * 17) % 200) as u64 * 10_000;
    let seconds = Duration::from_nanos(nanos).as_secs_f64();
    let phase = |name: &str, share: f64| Phase {
        name: name.to_owned(),
        seconds: Duration::from_nanos((nanos as f64 * share) as u64).as_secs_f64(),
    };
    result.outcome.duration_seconds = seconds;
    result.outcome.phases = vec![phase("resolve", 0.1), phase("connect", 0.9)];
    result.outcome.assertions = Vec::new();
    result.outcome.details = serde_json::json!({"remote_address": format!("192.0.2.{}:443", pair % 250)});
    result.outcome.log = vec![format!("connected to 192.0.2.{}:443", pair % 250)];
    result
}
