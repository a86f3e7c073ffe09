//! Metrics end to end: the exposition through promtool, remote write into real Prometheus and VictoriaMetrics
//! (values, stale markers), Prometheus scraping the exposition, and the sink's retries, refusals and auth.

#[path = "metrics/fixtures.rs"]
mod fixtures;
#[path = "metrics/receiver.rs"]
mod receiver;
#[path = "common/tls.rs"]
mod tls;
use probenet_testkit::stores;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use probenet_checks::wire::RunResult;
use probenet_exporters::exposition::CONTENT_TYPE;
use probenet_exporters::remote_write::proto;
use probenet_exporters::{
    CheckMeta, Event, Latest, ProberHealth, QueueOptions, RemoteWriteOptions, RemoteWriteSink, SeriesOptions,
    SinkHandle, sink_families,
};
use stores::{now_seconds, query, query_until};

fn now_ms() -> i64 {
    (now_seconds() * 1000.0) as i64
}

fn fast() -> QueueOptions {
    QueueOptions {
        linger: Duration::from_millis(50),
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..QueueOptions::default()
    }
}

/// Runs `promtool check metrics` on `text`: (exit success, everything it printed).
fn promtool(text: &str) -> (bool, String) {
    let bin = "/usr/bin/promtool";
    assert!(std::path::Path::new(bin).exists(), "{bin} is missing: install the Debian package (CI installs it)");
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("promtool: {error}"));
    child.stdin.take().map(|mut stdin| stdin.write_all(text.as_bytes()));
    let output = child.wait_with_output().unwrap_or_else(|error| panic!("promtool: {error}"));
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

/// The value of the first line of `name` whose labels include every `label="value"` given.
fn value_of(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .find(|line| labels.iter().all(|(label, value)| line.contains(&format!("{label}=\"{value}\""))))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn the_exposition_of_every_kind_passes_promtool() {
    let options = SeriesOptions {
        region_labels: BTreeMap::from([(
            "eu-west".to_owned(),
            BTreeMap::from([("geohash".to_owned(), "u0nd".to_owned()), ("provider".to_owned(), "aws".to_owned())]),
        )]),
        frequency_ms: BTreeMap::from([("https-ok".to_owned(), 30_000)]),
        alert_sensitivity: BTreeMap::from([("https-ok".to_owned(), "high")]),
    };
    let latest = Latest::new(options);
    let cases = fixtures::every_kind(now_ms());
    for (check, result) in &cases {
        latest.record(&Event::Result { check: check.clone(), result: result.clone() });
    }
    let handle = SinkHandle::spawn("main", Arc::new(Latest::default()), fast());
    let health = ProberHealth {
        prober: "p1".into(),
        region: "eu-west".into(),
        version: "0.1.0".into(),
        runs_total: 7,
        scheduler_up: true,
        ..ProberHealth::default()
    };
    let extra = [health.families(), sink_families(std::slice::from_ref(&handle))].concat();
    let text = latest.render_with(&extra);

    let (ok, printed) = promtool(&text);
    assert!(ok && printed.trim().is_empty(), "promtool: {printed}\n{text}");
    // Each family once, grouped.
    let types: Vec<&str> = text.lines().filter(|line| line.starts_with("# TYPE ")).collect();
    assert_eq!(types.len(), types.iter().collect::<BTreeSet<_>>().len(), "{text}");

    let https = [("job", "https-ok"), ("instance", "https://shop.example.com/"), ("probe", "eu-west")];
    assert_eq!(value_of(&text, "probe_success", &https), Some(1.0));
    for (phase, seconds) in
        [("resolve", 0.001), ("connect", 0.002), ("tls", 0.01), ("processing", 0.05), ("transfer", 0.001)]
    {
        assert_eq!(value_of(&text, "probe_http_duration_seconds", &[https[0], ("phase", phase)]), Some(seconds));
    }
    assert_eq!(value_of(&text, "probe_http_version", &https), Some(2.0));
    assert_eq!(value_of(&text, "probe_http_ssl", &https), Some(1.0));
    assert_eq!(value_of(&text, "probe_ssl_earliest_cert_expiry", &https), Some(1_893_456_000.0));
    assert_eq!(value_of(&text, "probe_tls_version_info", &[https[0], ("version", "TLS 1.3")]), Some(1.0));
    assert_eq!(value_of(&text, "probe_tls_cipher_info", &[https[0], ("cipher", "TLS_AES_128_GCM_SHA256")]), Some(1.0));
    assert_eq!(
        value_of(&text, "probe_ssl_last_chain_info", &[https[0], ("issuer", "CN=Test \\\"CA\\\", O=Acme")]),
        Some(1.0)
    );
    // Check labels only on sm_check_info, escaped and with names made valid.
    let info = [
        https[0],
        ("check_name", "http"),
        ("region", "eu-west"),
        ("geohash", "u0nd"),
        ("frequency", "30000"),
        ("alert_sensitivity", "high"),
    ];
    assert_eq!(value_of(&text, "sm_check_info", &info), Some(1.0));
    // A check without a sensitivity has no such label (as Grafana's agent writes it for `none`).
    let slow_info = text.lines().find(|line| line.starts_with("sm_check_info{job=\"http-slow\"")).unwrap_or_default();
    assert!(!slow_info.is_empty() && !slow_info.contains("alert_sensitivity"), "{slow_info}");
    // The region's labels are on every series of its results, not only on sm_check_info.
    for line in text.lines().filter(|line| line.starts_with("probe_") || line.starts_with("probenet_check")) {
        assert!(line.contains(r#"geohash="u0nd""#) && line.contains(r#"provider="aws""#), "{line}");
    }
    // A `tls` check shows on Grafana's TCP dashboard, as its certificate checks are TCP checks with TLS.
    assert_eq!(value_of(&text, "sm_check_info", &[("job", "cert"), ("check_name", "tcp")]), Some(1.0));
    assert!(text.contains(r#"label_team="web \"shop\"\\\nops""#), "{text}");
    assert!(text.contains(r#"label_tier_1="yes""#), "{text}");
    assert_eq!(value_of(&text, "probe_success", &[("job", "http-slow")]), Some(1.0));
    assert_eq!(value_of(&text, "probenet_check_state", &[("job", "http-slow")]), Some(1.0));
    assert_eq!(value_of(&text, "probenet_check_degraded", &[("job", "http-slow")]), Some(1.0));
    assert_eq!(value_of(&text, "probe_success", &[("job", "http-body")]), Some(0.0));
    assert_eq!(value_of(&text, "probe_failed_due_to_regex", &[("job", "http-body")]), Some(1.0));
    assert_eq!(
        value_of(&text, "probenet_check_failure_reason", &[("job", "http-body"), ("reason", "body")]),
        Some(1.0)
    );
    assert_eq!(
        value_of(&text, "probenet_check_failure_reason", &[("job", "http-body"), ("reason", "status")]),
        Some(0.0)
    );
    assert_eq!(value_of(&text, "probe_http_status_code", &[("job", "http-refused")]), Some(0.0));
    assert_eq!(
        value_of(&text, "probe_http_duration_seconds", &[("job", "http-refused"), ("phase", "transfer")]),
        Some(0.0)
    );
    assert_eq!(value_of(&text, "probe_dns_answer_rrs", &[("job", "dns-ok")]), Some(2.0));
    assert_eq!(value_of(&text, "probe_dns_duration_seconds", &[("job", "dns-ok"), ("phase", "request")]), Some(0.004));
    assert_eq!(value_of(&text, "probe_dns_serial", &[("job", "dns-soa")]), Some(2_024_010_101.0));
    assert_eq!(value_of(&text, "probe_ip_protocol", &[("job", "dns-soa")]), Some(6.0));
    assert_eq!(value_of(&text, "probe_dns_query_succeeded", &[("job", "dns-timeout")]), Some(0.0));
    assert_eq!(value_of(&text, "probe_tls_version_info", &[("job", "smtp"), ("version", "TLS 1.2")]), Some(1.0));
    assert_eq!(value_of(&text, "probe_failed_due_to_regex", &[("job", "smtp")]), Some(1.0));
    assert_eq!(
        value_of(&text, "probe_ssl_last_chain_expiry_timestamp_seconds", &[("job", "cert")]),
        Some(1_893_456_000.0)
    );
    assert_eq!(value_of(&text, "probe_icmp_duration_seconds", &[("job", "ping"), ("phase", "rtt")]), Some(0.002));
    assert_eq!(value_of(&text, "probe_icmp_duration_seconds", &[("job", "ping-lost"), ("phase", "rtt")]), Some(0.0));
    assert_eq!(value_of(&text, "probenet_icmp_packets_received", &[("job", "ping-lost")]), Some(0.0));
    // Browser series under the names, units (ms, bytes) and `url` label of Grafana's browser checks.
    let home = [("job", "checkout"), ("url", "https://shop.example.com/")];
    let cart = [("job", "checkout"), ("url", "https://shop.example.com/cart")];
    for (name, labels, value) in [
        ("probe_browser_web_vital_fcp", &home, Some(300.0)),
        ("probe_browser_web_vital_lcp", &home, Some(600.0)),
        ("probe_browser_web_vital_ttfb", &home, Some(50.0)),
        ("probe_browser_web_vital_cls", &home, Some(0.01)),
        ("probe_browser_web_vital_inp", &home, None),
        ("probe_browser_http_req_duration", &home, Some(123.0)),
        ("probe_browser_data_sent", &home, Some(512.0)),
        ("probe_browser_data_received", &home, Some(20480.0)),
        ("probe_browser_web_vital_lcp", &cart, Some(200.0)),
        ("probe_browser_web_vital_inp", &cart, Some(48.0)),
        ("probe_browser_data_sent", &cart, None),
    ] {
        assert_eq!(value_of(&text, name, labels), value, "{name} {labels:?}");
    }
    assert_eq!(
        value_of(&text, "probenet_browser_navigation_seconds", &[("job", "checkout"), ("phase", "load")]),
        Some(0.4)
    );
    assert_eq!(value_of(&text, "probe_dns_lookup_time_seconds", &[("job", "checkout")]), None);
    assert_eq!(value_of(&text, "probe_all_success_count", &[("job", "checkout")]), Some(1.0));
    assert_eq!(value_of(&text, "probe_all_duration_seconds_bucket", &[("job", "https-ok"), ("le", "0.1")]), Some(1.0));
    assert_eq!(value_of(&text, "probe_all_duration_seconds_bucket", &[("job", "https-ok"), ("le", "0.05")]), Some(0.0));
    assert_eq!(value_of(&text, "probenet_prober_runs_total", &[]), Some(7.0));
    assert_eq!(value_of(&text, "probenet_sink_sent_total", &[("sink", "main"), ("kind", "exposition")]), Some(0.0));

    // A removed pair leaves the exposition; an older result does not replace a newer one.
    let (check, result) = &cases[0];
    latest.record(&Event::Removed { check: check.clone(), region: "eu-west".into(), at_ms: now_ms() });
    assert_eq!(value_of(&latest.render(), "probe_success", &https), None);
    let (check, result_b) = &cases[2];
    let older = RunResult {
        planned_at_ms: result_b.planned_at_ms - 1,
        outcome: result.outcome.clone(),
        ..(**result_b).clone()
    };
    latest.record(&Event::Result { check: check.clone(), result: Arc::new(older) });
    assert_eq!(value_of(&latest.render(), "probe_success", &[("job", "http-body")]), Some(0.0));

    // promtool does catch what it should: a counter without `_total`.
    let (ok, printed) = promtool("# HELP bad_counter x\n# TYPE bad_counter counter\nbad_counter 1\n");
    assert!(!ok && printed.contains("_total"), "{printed}");
}

/// A target for real HTTP checks and the prober's `/metrics`.
async fn target_server(latest: Arc<Latest>) -> std::net::SocketAddr {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/ok", get(|| async { "hello" }))
        .route("/missing", get(|| async { (axum::http::StatusCode::NOT_FOUND, "gone") }))
        .route(
            "/metrics",
            get(move || {
                let latest = latest.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], latest.render()) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
    let addr = listener.local_addr().unwrap_or_else(|error| panic!("{error}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn checks(addr: std::net::SocketAddr) -> Vec<probenet_checks::Check> {
    let yaml = format!(
        "regions: {{eu-west: {{}}}}\nchecks:\n  - name: web\n    http: {{url: \"http://{addr}/ok\"}}\n  \
         - name: web-broken\n    http: {{url: \"http://{addr}/missing\", expect: {{status: [200]}}}}\n"
    );
    probenet_checks::load_str("t.yaml", &yaml).unwrap_or_else(|errors| panic!("{errors:?}")).checks
}

async fn wait_sent(handles: &[&SinkHandle], at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while handles.iter().any(|handle| handle.counters().sent < at_least) {
        assert!(
            Instant::now() < deadline,
            "not delivered: {:?}",
            handles.iter().map(|h| h.counters()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_hold_the_results_end_series_on_removal_and_scrape_the_same_series() {
    let latest = Arc::new(Latest::default());
    let addr = target_server(latest.clone()).await;
    let prom = stores::prometheus(Some(&addr.to_string())).await;
    let vm = stores::victoria_metrics().await;
    let sink = |base: &str| {
        let options = RemoteWriteOptions { url: format!("{base}/api/v1/write"), ..RemoteWriteOptions::default() };
        let sink = RemoteWriteSink::new(options).unwrap_or_else(|error| panic!("{error}"));
        SinkHandle::spawn(base.to_owned(), Arc::new(sink), fast())
    };
    let (to_prom, to_vm) = (sink(&prom.base), sink(&vm.base));

    let checks = checks(addr);
    let mut last = BTreeMap::new();
    for _ in 0..3 {
        for check in &checks {
            let started = now_ms();
            let outcome = probenet_checks::run_once(check, "eu-west").await;
            let result = fixtures::result(&check.name, "eu-west", started, outcome);
            let meta = Arc::new(CheckMeta::of(check));
            let event = Event::Result { check: meta.clone(), result: result.clone() };
            to_prom.offer(event.clone());
            to_vm.offer(event);
            // The prober's /metrics shows the same results under another job name (one series, one writer).
            let scraped = Arc::new(CheckMeta { name: format!("scraped-{}", check.name), ..(*meta).clone() });
            latest.record(&Event::Result { check: scraped, result: result.clone() });
            last.insert(check.name.clone(), result);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_sent(&[&to_prom, &to_vm], 6).await;
    let web = &last["web"];
    let connect = web.outcome.phase("connect").unwrap_or_else(|| panic!("no connect phase: {:?}", web.outcome));
    let target = format!("http://{addr}/ok");

    for store in [&prom, &vm] {
        if std::ptr::eq(store, &vm) {
            let flushed = reqwest::get(format!("{}/internal/force_flush", vm.base)).await;
            assert!(flushed.is_ok_and(|r| r.status().is_success()), "force_flush failed");
        }
        let base = &store.base;
        let success = query_until(base, r#"probe_success{job="web",probe="eu-west"}"#, None, 10).await;
        assert_eq!(success.len(), 1, "{base}: {success:?}");
        assert_eq!(success[0].1, 1.0, "{base}");
        assert_eq!(success[0].0["instance"], target.as_str(), "{base}: {success:?}");
        let phase =
            query(base, r#"probe_http_duration_seconds{job="web",probe="eu-west",phase="connect"}"#, now_seconds())
                .await;
        assert!(phase.len() == 1 && close(phase[0].1, connect), "{base}: {phase:?} != {connect}");
        let phases = query(base, r#"count(probe_http_duration_seconds{job="web"})"#, now_seconds()).await;
        assert_eq!(phases.first().map(|p| p.1), Some(5.0), "{base}");
        let broken = query(base, r#"probe_success{job="web-broken",probe="eu-west"}"#, now_seconds()).await;
        assert_eq!(broken.first().map(|p| p.1), Some(0.0), "{base}: {broken:?}");
        let status = query(base, r#"probe_http_status_code{job="web-broken"}"#, now_seconds()).await;
        assert_eq!(status.first().map(|p| p.1), Some(404.0), "{base}");
        let reason =
            query(base, r#"probenet_check_failure_reason{job="web-broken",reason="status"}"#, now_seconds()).await;
        assert_eq!(reason.first().map(|p| p.1), Some(1.0), "{base}");
        let runs = query(base, r#"probe_all_success_count{job="web"}"#, now_seconds()).await;
        assert_eq!(runs.first().map(|p| p.1), Some(3.0), "{base}");
        let info = query(base, r#"sm_check_info{job="web",check_name="http",region="eu-west"}"#, now_seconds()).await;
        assert_eq!(info.len(), 1, "{base}: {info:?}");
    }

    // Prometheus scraping the prober's /metrics sees the same series (names and labels but the job).
    let scraped = query_until(&prom.base, r#"probe_success{job="scraped-web",probe="eu-west"}"#, None, 15).await;
    assert_eq!(scraped.first().map(|p| p.1), Some(1.0), "{scraped:?}");
    let written = query(&prom.base, r#"probe_success{job="web"}"#, now_seconds()).await;
    let without_job = |metric: &serde_json::Value| {
        let mut metric = metric.clone();
        metric.as_object_mut().map(|m| m.remove("job"));
        metric
    };
    assert_eq!(without_job(&scraped[0].0), without_job(&written[0].0));
    let names = |job: &str| {
        let promql = format!("group by (__name__) ({{job=\"{job}\"}})");
        let base = prom.base.clone();
        async move {
            query(&base, &promql, now_seconds())
                .await
                .into_iter()
                .map(|(m, _)| m["__name__"].to_string())
                .collect::<BTreeSet<_>>()
        }
    };
    let (written_names, scraped_names) = (names("web").await, names("scraped-web").await);
    assert!(written_names.len() > 20, "{written_names:?}");
    assert_eq!(written_names, scraped_names);

    // Removing `web` ends its series with stale markers; `web-broken` keeps its own.
    let removed_at = now_ms();
    let web_meta = Arc::new(CheckMeta::of(&checks[0]));
    let removal = Event::Removed { check: web_meta, region: "eu-west".into(), at_ms: removed_at };
    to_prom.offer(removal.clone());
    to_vm.offer(removal);
    wait_sent(&[&to_prom, &to_vm], 7).await;
    let flushed = reqwest::get(format!("{}/internal/force_flush", vm.base)).await;
    assert!(flushed.is_ok_and(|r| r.status().is_success()), "force_flush failed");
    let before = removed_at as f64 / 1000.0 - 0.001;
    let after = removed_at as f64 / 1000.0 + 1.0;
    for base in [&prom.base, &vm.base] {
        let still = query_until(base, r#"probe_success{job="web"}"#, Some(before), 5).await;
        assert_eq!(still.len(), 1, "{base}: before the removal: {still:?}");
        let phases = query(base, r#"probe_http_duration_seconds{job="web"}"#, after).await;
        let gone = query(base, r#"probe_success{job="web"}"#, after).await;
        assert!(gone.is_empty() && phases.is_empty(), "{base}: after the removal: {gone:?} {phases:?}");
        let other = query(base, r#"probe_success{job="web-broken"}"#, after).await;
        assert_eq!(other.len(), 1, "{base}: {other:?}");
    }
    let counters = to_prom.counters();
    assert_eq!((counters.dropped, counters.retried), (0, 0), "{counters:?}");
}

fn spawn_sink(options: RemoteWriteOptions, queue: QueueOptions) -> SinkHandle {
    let sink = RemoteWriteSink::new(options).unwrap_or_else(|error| panic!("{error}"));
    SinkHandle::spawn("rw", Arc::new(sink), queue)
}

#[tokio::test]
async fn transient_failures_are_retried_refusals_dropped_and_requests_well_formed() {
    let receiver = receiver::Receiver::new(&[500, 429, 503], None);
    let url = receiver::serve(receiver.clone()).await;
    let options = RemoteWriteOptions {
        url,
        external_labels: vec![("cluster".into(), "c1".into()), ("job".into(), "ignored".into())],
        ..RemoteWriteOptions::default()
    };
    let handle = spawn_sink(options, fast());
    let cases = fixtures::every_kind(1_700_000_000_000);
    let (check, first) = cases[0].clone();
    // The same pair again, later, without TLS: its TLS series vanish and get a stale marker.
    let refused = fixtures::result(&check.name, "eu-west", first.started_at_ms + 10_000, cases[3].1.outcome.clone());
    handle.offer(Event::Result { check: check.clone(), result: first.clone() });
    handle.offer(Event::Result { check: check.clone(), result: refused });
    handle.offer(Event::Removed {
        check: check.clone(),
        region: "eu-west".into(),
        at_ms: first.started_at_ms + 20_000,
    });
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.retried, counters.dropped), (3, 3, 0), "{counters:?}");

    let seen = receiver.seen();
    assert_eq!(seen.iter().map(|(_, _, status)| *status).collect::<Vec<_>>(), [500, 429, 503, 204]);
    let (headers, request, _) = &seen[3];
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(header("content-encoding"), "snappy");
    assert_eq!(header("content-type"), "application/x-protobuf");
    assert_eq!(header("x-prometheus-remote-write-version"), "0.1.0");
    assert!(header("user-agent").starts_with("probenet/"), "{headers:?}");
    let bytes = |request: &proto::WriteRequest| proto::encode(request).unwrap_or_else(|error| panic!("{error}"));
    assert!(bytes(&seen[0].1) == bytes(request), "a retried batch is the same batch");

    let find = |name: &str| {
        request.timeseries.iter().find(|series| series.labels.iter().any(|l| l.name == "__name__" && l.value == name))
    };
    for series in &request.timeseries {
        let names: Vec<&str> = series.labels.iter().map(|label| label.name.as_str()).collect();
        assert!(names.windows(2).all(|pair| pair[0] < pair[1]), "labels not sorted and unique: {names:?}");
        assert!(series.labels.iter().any(|l| l.name == "cluster" && l.value == "c1"));
        assert!(series.labels.iter().any(|l| l.name == "job" && l.value == "https-ok"));
        assert!(series.samples.windows(2).all(|pair| pair[0].timestamp < pair[1].timestamp), "{series:?}");
        // Every series ends with a stale marker at the removal (or, for vanished ones, at the next run).
        let last = series.samples.last().unwrap_or_else(|| panic!("empty series"));
        assert!(proto::is_stale(last.value), "{series:?}");
    }
    let success = find("probe_success").unwrap_or_else(|| panic!("no probe_success"));
    let values: Vec<(i64, f64)> = success.samples.iter().map(|s| (s.timestamp, s.value)).collect();
    assert_eq!(values[..2], [(1_700_000_000_000, 1.0), (1_700_000_010_000, 0.0)]);
    assert_eq!(values[2].0, 1_700_000_020_000);
    let tls = find("probe_tls_version_info").unwrap_or_else(|| panic!("no probe_tls_version_info"));
    assert_eq!(tls.samples.len(), 2);
    assert_eq!(tls.samples[1].timestamp, 1_700_000_010_000, "vanished at the next run");
    let count = find("probe_all_success_count").unwrap_or_else(|| panic!("no count"));
    assert_eq!(count.samples.iter().map(|s| s.value).take(2).collect::<Vec<_>>(), [1.0, 2.0]);
    assert!(request.metadata.iter().any(|m| m.metric_family_name == "probe_success" && m.r#type == 2));
    assert!(request.metadata.iter().any(|m| m.metric_family_name == "probe_all_success" && m.r#type == 5));

    // A 400 is final: dropped and counted, not retried.
    let receiver = receiver::Receiver::new(&[400, 400, 400], None);
    let handle =
        spawn_sink(RemoteWriteOptions { url: receiver::serve(receiver.clone()).await, ..Default::default() }, fast());
    handle.offer(Event::Result { check: check.clone(), result: first.clone() });
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.retried, counters.dropped), (0, 0, 1), "{counters:?}");
    assert!(counters.last_error.as_deref().is_some_and(|e| e.contains("400")), "{counters:?}");
    assert_eq!(receiver.seen().len(), 1);
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn credentials_are_sent_only_as_configured_and_never_shown() {
    let (check, result) = fixtures::every_kind(1_700_000_000_000).swap_remove(0);
    let event = Event::Result { check, result };
    let once = QueueOptions { max_attempts: 2, ..fast() };

    // Bearer: the right token is accepted, a wrong one refused (401 is final) without showing it.
    let receiver = receiver::Receiver::new(&[], Some("Bearer s3cret-token".into()));
    let url = receiver::serve(receiver.clone()).await;
    for (token, sent) in [("s3cret-token", 1), ("wrong-token", 0)] {
        let options = RemoteWriteOptions { url: url.clone(), bearer_token: Some(token.into()), ..Default::default() };
        let handle = spawn_sink(options, once);
        handle.offer(event.clone());
        handle.close(Duration::from_secs(10)).await;
        let counters = handle.counters();
        assert_eq!((counters.sent, counters.dropped), (sent, 1 - sent), "{token}: {counters:?}");
        assert!(!format!("{counters:?}").contains(token), "{counters:?}");
    }

    // Basic auth from the URL's user info (percent-decoded), removed from the URL itself.
    let wanted = format!("Basic {}", base64(b"alice:p@ss:word"));
    let receiver = receiver::Receiver::new(&[], Some(wanted));
    let url = receiver::serve(receiver.clone()).await.replace("http://", "http://alice:p%40ss%3Aword@");
    let handle = spawn_sink(RemoteWriteOptions { url, ..Default::default() }, once);
    handle.offer(event.clone());
    handle.close(Duration::from_secs(10)).await;
    assert_eq!(handle.counters().sent, 1, "{:?}", handle.counters());
    let options = RemoteWriteOptions {
        url: "http://127.0.0.1:9/".into(),
        basic_auth: Some(("alice".into(), "hunter2".into())),
        ..Default::default()
    };
    let handle = spawn_sink(options.clone(), once);
    handle.offer(event.clone());
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.retried, counters.dropped), (1, 1), "connection refused is retried: {counters:?}");
    assert!(!format!("{counters:?}{options:?}").contains("hunter2"), "{counters:?} {options:?}");

    // Refused configurations say why without the secret.
    let refused = |options: RemoteWriteOptions| match RemoteWriteSink::new(options) {
        Ok(sink) => panic!("accepted: {sink:?}"),
        Err(error) => error.to_string(),
    };
    let both = RemoteWriteOptions { bearer_token: Some("t0ken".into()), ..options.clone() };
    assert!(refused(both).contains("only one"));
    let scheme = refused(RemoteWriteOptions { url: "ftp://alice:hunter2@x/".into(), ..Default::default() });
    assert!(scheme.contains("scheme") && !scheme.contains("hunter2"), "{scheme}");
    let bad = refused(RemoteWriteOptions { url: "http://alice:hunter2@[::1/".into(), ..Default::default() });
    assert!(!bad.contains("hunter2"), "{bad}");
    let ca = RemoteWriteOptions { ca_file: Some("/nonexistent/ca.pem".into()), ..options.clone() };
    assert!(refused(ca).contains("/nonexistent/ca.pem"));
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap_or_else(|error| panic!("{error}"));
    assert!(refused(RemoteWriteOptions { ca_file: Some(junk), ..options.clone() }).contains("no valid PEM"));
    // An extra CA is accepted by the TLS backend (a PEM bundle written here: the system's, if present).
    let bundle = dir.path().join("ca.pem");
    let system = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    if !system.is_empty() {
        std::fs::write(&bundle, system).unwrap_or_else(|error| panic!("{error}"));
        let with_ca = RemoteWriteOptions { url: "https://127.0.0.1:9/".into(), ca_file: Some(bundle), ..options };
        RemoteWriteSink::new(with_ca).unwrap_or_else(|error| panic!("{error}"));
    }
}

#[tokio::test]
async fn remote_write_over_tls_trusts_only_the_configured_ca() {
    let (check, result) = fixtures::every_kind(1_700_000_000_000).swap_remove(0);
    let event = Event::Result { check, result };
    let (ca_pem, config) = tls::config();
    let receiver = receiver::Receiver::new(&[], Some("Bearer tls-token".into()));
    let (url, refused) = receiver::serve_tls(receiver.clone(), config).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let once = QueueOptions { max_attempts: 2, ..fast() };

    // With the CA: delivered, with the bearer token, over TLS.
    let options = RemoteWriteOptions {
        url: url.clone(),
        bearer_token: Some("tls-token".into()),
        ca_file: Some(ca_file),
        ..Default::default()
    };
    let handle = spawn_sink(options, once);
    handle.offer(event.clone());
    handle.close(Duration::from_secs(10)).await;
    assert_eq!(handle.counters().sent, 1, "{:?}", handle.counters());
    assert_eq!(receiver.seen().len(), 1);

    // Without it the certificate is not trusted: the handshake fails, nothing arrives, the token never leaves.
    let options = RemoteWriteOptions { url, bearer_token: Some("tls-token".into()), ..Default::default() };
    let handle = spawn_sink(options, once);
    handle.offer(event);
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.dropped), (0, 1), "{counters:?}");
    assert!(*refused.lock().unwrap() >= 1, "the client refused the server's certificate");
    assert_eq!(receiver.seen().len(), 1, "nothing reached the receiver without the CA");
    assert!(!format!("{counters:?}").contains("tls-token"), "{counters:?}");
}

/// Every series a recorded result of any kind writes belongs to a declared family (the exposition drops a
/// series without one), each family is declared once, and a kind's own families carry its name.
#[test]
fn every_series_of_every_kind_has_its_family_declared_once() {
    use probenet_checks::Kind;
    use probenet_exporters::samples::{FAMILIES, Totals, family, samples};

    let names: Vec<&str> = FAMILIES.iter().map(|family| family.name).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "a family is declared twice: {names:?}");
    for kind in Kind::ALL {
        for family in kind.families() {
            let key = kind.key();
            assert!(
                family.name.starts_with(&format!("probe_{key}_"))
                    || family.name.starts_with(&format!("probenet_{key}_")),
                "{} is declared by {key} but is not named after it",
                family.name
            );
        }
    }

    let allowed = |name: &str| {
        ["job", "instance", "probe"].contains(&name)
            || probenet_checks::metrics::SERIES_LABELS.contains(&name)
            || name.starts_with("label_")
    };
    let recorded = include_str!("../../checks/tests/fixtures/details.jsonl");
    let mut written: BTreeMap<Kind, BTreeSet<&str>> = BTreeMap::new();
    for line in recorded.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"));
        let kind: Kind = serde_json::from_value(record["kind"].clone()).unwrap_or_else(|error| panic!("{error}"));
        let outcome = probenet_checks::Outcome { details: record["details"].clone(), ..fixtures::up() };
        let check = fixtures::meta("c", kind.key(), "target");
        let result = fixtures::result("c", "eu-west", 1_700_000_000_000, outcome);
        for sample in samples(&check, &result, &Totals::default(), &SeriesOptions::default()) {
            let declared = family(sample.name).unwrap_or_else(|| panic!("{kind}: {} has no family", sample.name));
            for (label, _) in &sample.labels {
                assert!(allowed(label), "{kind}: {} has label {label}, missing from SERIES_LABELS", sample.name);
            }
            written.entry(kind).or_default().insert(declared.name);
        }
    }
    for kind in Kind::ALL {
        let written = written.get(&kind).unwrap_or_else(|| panic!("no recorded result of {kind}"));
        let own = kind.families().iter().filter(|own| written.contains(own.name)).count();
        assert!(own > 0 || kind.families().is_empty(), "no recorded {kind} result writes a family of its own");
    }
}

/// A reload that changes only what labels series (a region's labels, a check's interval or alert sensitivity)
/// relabels `/metrics` and rebuilds the sinks, on a prober that started without a config too.
#[tokio::test]
async fn a_reload_relabels_the_series_of_metrics_and_sinks() {
    use probenet_checks::config::exporters::ExportOn;
    use probenet_exporters::{Outputs, Rebuilt};

    let config = |geohash: &str, interval: &str, sensitivity: &str| {
        let yaml = format!(
            "regions: {{eu: {{labels: {{geohash: {geohash}}}}}}}\n\
             exporters: [{{logs: {{path: /dev/null, on: probers}}}}]\n\
             checks:\n  - {{name: web, interval: {interval}, alert_sensitivity: {sensitivity}, http: {{url: \"http://127.0.0.1:9/\"}}}}\n"
        );
        probenet_checks::load_str("checks.yaml", &yaml).unwrap_or_else(|errors| panic!("{errors}"))
    };
    let result = fixtures::result("web", "eu", now_ms(), fixtures::up());
    let info = |outputs: &Outputs| {
        let text = outputs.render(Vec::new()).concat();
        text.lines().find(|line| line.starts_with("sm_check_info{")).unwrap_or_default().to_owned()
    };

    for outputs in [
        Outputs::new(ExportOn::Probers),
        Outputs::start(&config("u0", "10s", "none"), ExportOn::Probers, None).unwrap(),
    ] {
        assert!(matches!(
            outputs.configure(&config("u0", "10s", "none")),
            Ok(Rebuilt::Started(1) | Rebuilt::Unchanged)
        ));
        outputs.publish(&result);
        let first = info(&outputs);
        assert!(first.contains(r#"geohash="u0""#) && first.contains(r#"frequency="10000""#), "{first}");
        assert!(!first.contains("alert_sensitivity"), "{first}");
        assert_eq!(outputs.configure(&config("u0", "10s", "none")).ok(), Some(Rebuilt::Unchanged));

        assert_eq!(outputs.configure(&config("u1", "20s", "high")).ok(), Some(Rebuilt::Started(1)));
        let second = info(&outputs);
        assert!(second.contains(r#"geohash="u1""#) && second.contains(r#"frequency="20000""#), "{second}");
        assert!(second.contains(r#"alert_sensitivity="high""#), "{second}");
        let success = outputs.render(Vec::new()).concat();
        let line = success.lines().find(|line| line.starts_with("probe_success{")).unwrap_or_default();
        assert!(line.contains(r#"geohash="u1""#), "the region's labels are on every series: {line}");
    }
}
