//! The cost estimate of a known config, to the unit: runs per day, active series, samples and bytes.

mod common;

use probenet_install::cost::{self, STORE_BYTES_PER_RESULT, VM_BYTES_PER_SAMPLE};

/// Series every result writes whatever its kind (see exporters/src/samples.rs): probe_success,
/// probe_duration_seconds, probe_dns_lookup_time_seconds, probe_ip_protocol (4); sm_check_info (1);
/// probe_all_success_{sum,count} (2); probe_all_duration_seconds buckets (11 bounds + `+Inf` = 12), sum and count
/// (2); probenet_check_{state,degraded} (2), one probenet_check_failure_reason per reason (21),
/// probenet_check_{assertions,assertions_failed,last_run_timestamp_seconds} (3).
const COMMON: u64 = 4 + 1 + 2 + 12 + 2 + 2 + 21 + 3;

#[test]
fn a_known_config_costs_exactly_this() {
    let (_dir, loaded) = common::load(common::STACK, common::CHECKS);
    let cost = cost::estimate(&loaded.config);

    // Per kind: http 5 phases + status, version, ssl, redirects, content length, uncompressed length, regex (12),
    // with TLS 5 more (earliest expiry, last chain expiry, chain info, version info, cipher info); dns 3 phases
    // + 3 record counts + query succeeded (7); icmp 3 phases + min, max, stddev + sent, received (8); tcp
    // without TLS: regex (1).
    let (https, http, dns, icmp, tcp) = (COMMON + 17, COMMON + 12, COMMON + 7, COMMON + 8, COMMON + 1);
    let series: Vec<(&str, usize)> =
        loaded.config.checks.iter().map(|check| (check.name.as_str(), cost::series_per_result(check))).collect();
    assert_eq!(
        series,
        [
            ("web", https as usize),
            ("api", http as usize),
            ("dns", dns as usize),
            ("ping", icmp as usize),
            ("nightly", tcp as usize)
        ]
    );

    // web: every 60s from 2 regions; api: 30s from 1; dns: 60s from 2; ping: 10s from 2; nightly: once a day
    // (cron 0 3 * * *) from 2.
    let runs = [1440.0 * 2.0, 2880.0, 1440.0 * 2.0, 8640.0 * 2.0, 2.0];
    assert_eq!(cost.runs_per_day, runs.iter().sum::<f64>());
    assert_eq!(cost.runs_per_day, 25_922.0);
    assert_eq!(cost.active_series, https * 2 + http + dns * 2 + icmp * 2 + tcp * 2);
    assert_eq!(cost.active_series, 501);
    let per_run = [https, http, dns, icmp, tcp];
    let samples: f64 = runs.iter().zip(per_run).map(|(runs, series)| runs * series as f64).sum();
    assert_eq!(cost.samples_per_day, samples);
    assert_eq!(cost.samples_per_day, 1_460_256.0);
    assert_eq!(cost.victoria_metrics_bytes_per_day, 1_460_256.0 * VM_BYTES_PER_SAMPLE);
    assert_eq!(cost.store_bytes_per_day, 25_922.0 * STORE_BYTES_PER_RESULT);
    assert_eq!(cost.store_bytes_per_day, 7_439_614.0);

    let http_kind = &cost.by_kind["http"];
    assert_eq!((http_kind.checks, http_kind.pairs, http_kind.runs_per_day), (2, 3, 5760.0));
    assert_eq!(http_kind.series, https * 2 + http);

    let shown = cost.to_string();
    for line in [
        "runs per day:       25922",
        "active series:      501",
        "1.5 MB in VictoriaMetrics",
        "7.4 MB in the embedded store",
    ] {
        assert!(shown.contains(line), "{line:?} not in\n{shown}");
    }
}

#[test]
fn a_config_without_checks_costs_nothing() {
    let (_dir, loaded) = common::load(common::STACK, "regions: {eu-west: {}, us-east: {}}\n");
    let cost = cost::estimate(&loaded.config);
    assert_eq!((cost.runs_per_day, cost.active_series, cost.store_bytes_per_day), (0.0, 0, 0.0));
    assert!(cost.by_kind.is_empty());
}
