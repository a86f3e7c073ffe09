//! Grafana's synthetic-monitoring app and the community blackbox-exporter mixin, on probenet's series.
//!
//! A scheduler and probers in two regions remote-write a passing and a failing check of every kind into a real
//! VictoriaMetrics, with the `cluster` and `source` external labels docs/grafana.md recommends. vmalert runs
//! the app's legacy recording rule and alerts and its per-check "failed executions" alert over them. Then every
//! query of `tests/fixtures/grafana/` runs with the dashboards' variables filled in (once per check when it
//! names one), and each must give the series expected for each check, and nothing where nothing is expected.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use probenet_checks::yaml::{Node, NodeKind, parse};
use probenet_testkit::stores::{self, now_seconds, query};

use crate::util::processes::{Kill, free_port, plain_prober, plain_scheduler};
use crate::util::{Pki, Server};

/// One query of a fixture file.
struct Query {
    id: String,
    expr: String,
}

fn text(node: &Node) -> Option<&str> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Some(text),
        NodeKind::Seq(_) | NodeKind::Map(_) => None,
    }
}

/// The queries of `tests/fixtures/grafana/NAME`.
fn queries(name: &str) -> Vec<Query> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grafana").join(name);
    let source = std::fs::read_to_string(&path).unwrap();
    let root = parse(&source).unwrap_or_else(|error| panic!("{}: {error:?}", path.display()));
    let Some(NodeKind::Seq(items)) = root.get("queries").map(|node| &node.kind) else { panic!("{name}: no queries") };
    items
        .iter()
        .map(|item| Query {
            id: item.get("id").and_then(text).unwrap().to_owned(),
            expr: item.get("expr").and_then(text).unwrap().to_owned(),
        })
        .collect()
}

/// A check of the test and what it writes.
struct Probe {
    name: &'static str,
    /// probenet's kind.
    kind: &'static str,
    /// Its `instance` label.
    target: String,
    passing: bool,
    /// Whether its runs see a certificate (`probe_ssl_*`, `probe_tls_*`).
    tls: bool,
}

impl Probe {
    /// Grafana's check type of its kind (`check_name`).
    fn check_name(&self) -> &str {
        match self.kind {
            "icmp" => "ping",
            "tls" => "tcp",
            kind => kind,
        }
    }

    /// Whether its results carry `metric`.
    fn writes(&self, metric: &str) -> bool {
        match metric {
            "probe_success" | "probe_duration_seconds" | "sm_check_info" => true,
            "probe_dns_lookup_time_seconds" => self.kind != "browser",
            m if m.starts_with("probe_all_") => true,
            m if m.starts_with("probe_http_") => self.kind == "http",
            m if m.starts_with("probe_dns_") => self.kind == "dns",
            m if m.starts_with("probe_icmp_") => self.kind == "icmp",
            m if m.starts_with("probe_browser_") => self.kind == "browser",
            m if m.starts_with("probe_ssl_") || m.starts_with("probe_tls_") => self.tls,
            _ => false,
        }
    }

    /// Whether its certificate has expired.
    fn expired(&self) -> bool {
        self.tls && !self.passing
    }
}

/// The metric names a query reads (`probe_*`, `sm_check_info`, `ALERTS`, recorded series).
fn metrics(expr: &str) -> BTreeSet<&str> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(tail.len());
        let word = &tail[..end];
        let quoted = rest[..start].ends_with('"');
        if !quoted && (word.starts_with("probe_") || word.contains(':') || ["sm_check_info", "ALERTS"].contains(&word))
        {
            names.insert(word);
        }
        rest = &tail[end..];
    }
    names
}

/// Series only a fallback branch reads (`... or probe_duration_seconds_sum`), or that nothing here writes.
const OPTIONAL: [&str; 2] = ["probe_duration_seconds_sum", "probe_duration_seconds_count"];

/// The threshold each per-check alert template is tried with.
fn threshold(id: &str) -> &'static str {
    match id {
        "alert-probe-failed-executions-too-high" => "1",
        "alert-tls-cert-close-to-expiring" => "30",
        _ => "0",
    }
}

/// The query with the dashboards' variables filled in (all probes, all regions, no ad-hoc filter), for `check`
/// when it names one; the mixin's alert selector is replaced as docs/grafana.md says.
fn fill(query: &Query, check: Option<&Probe>) -> String {
    let mut expr = query.expr.replace(r#"job="blackbox-exporter""#, r#"source="probenet""#);
    for (variable, value) in [
        ("$__rate_interval", "1m"),
        ("$__range", "5m"),
        ("$__all", ".*"),
        ("$period", "5m"),
        ("$threshold", threshold(&query.id)),
        ("$check_type", ".*"),
        ("$region", ".*"),
        ("$Filters", ""),
        ("$cluster", "test"),
        ("$probe", "r1|r2"),
    ] {
        expr = expr.replace(variable, value);
    }
    if let Some(check) = check {
        expr = expr.replace("$instance", &check.target).replace("$job", check.name);
    }
    assert!(!expr.contains('$'), "{}: a variable is left: {expr}", query.id);
    expr
}

/// `label_values(SELECTOR, LABEL)` as a query grouping by the label.
fn label_values(expr: &str) -> Option<(String, String)> {
    let inner = expr.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    let label = label.trim().to_owned();
    Some((format!("group by ({label}) ({selector})"), label))
}

/// What a query must give.
#[derive(Debug, PartialEq)]
enum Expect {
    /// At least one series (and, for a query over every check, one of each check or region by its labels).
    Series,
    /// At least one series, of any check.
    Any,
    /// None.
    Empty,
    /// Exactly these `job`s.
    Jobs(BTreeSet<String>),
    /// Exactly these values of the label `label_values` asks for.
    Values(BTreeSet<String>),
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    items.into_iter().map(str::to_owned).collect()
}

/// What `query` gives for `check` (a query naming `$job`), from what the check writes and the alerts over it.
fn expect_for(query: &Query, check: &Probe, all: &[Probe]) -> Expect {
    let yes = |condition: bool| if condition { Expect::Series } else { Expect::Empty };
    match query.id.as_str() {
        "alert-probe-failed-executions-too-high" => return yes(!check.passing),
        "alert-tls-cert-close-to-expiring" => return yes(check.expired()),
        // The legacy alerts (firing: only `high`'s, held for 0 s here) and the per-check one (pending, 1 h).
        "common-annotation-alerts-firing" => return yes(check.name == "http-down"),
        "common-annotation-alerts-pending" => return yes(!check.passing),
        // Latency of successful runs only (`* on (...) group_left probe_success > 0`).
        "common-response-latency-by-probe" => return yes(check.passing),
        // The mixin's share of HTTPS probes: `count(probe_http_ssl == 1) / ...`, empty without one.
        "summary-probes-ssl" => return yes(check.kind == "http" && check.tls),
        _ => {}
    }
    if let Some(at) = query.expr.find("check_name=\"") {
        let wanted = query.expr[at + 12..].split('"').next().unwrap_or_default();
        if wanted != check.check_name() {
            return if label_values(&query.expr).is_some() { Expect::Values(BTreeSet::new()) } else { Expect::Empty };
        }
    }
    let reads = metrics(&query.expr);
    let writes = reads.iter().filter(|metric| !OPTIONAL.contains(metric)).all(|metric| check.writes(metric));
    match label_values(&query.expr) {
        Some((_, label)) if writes => Expect::Values(match label.as_str() {
            "probe" => set(["r1", "r2"]),
            "instance" => set([check.target.as_str()]),
            "job" => all.iter().map(|check| check.name.to_owned()).collect(),
            other => panic!("{}: no expectation for label {other}", query.id),
        }),
        Some(_) => Expect::Values(BTreeSet::new()),
        None => yes(writes),
    }
}

/// What a query without a check gives.
fn expect_global(query: &Query, all: &[Probe]) -> Expect {
    let failing = || all.iter().filter(|check| !check.passing).map(|check| check.name.to_owned()).collect();
    let expired = || all.iter().filter(|check| check.expired()).map(|check| check.name.to_owned()).collect();
    match query.id.as_str() {
        "summary-annotation-firing" | "checks-firing-alerts" | "legacy-alert-high" => Expect::Jobs(set(["http-down"])),
        "summary-annotation-pending" | "legacy-alert-medium" => Expect::Jobs(set(["dns-down"])),
        "legacy-alert-low" => Expect::Jobs(BTreeSet::new()),
        "legacy-recording-probe-success-mean5m" => Expect::Jobs(set(["http-up", "http-down", "dns-down"])),
        "alert-blackbox-probe-failed" | "alert-blackbox-low-uptime-30d" => Expect::Jobs(failing()),
        "alert-blackbox-ssl-will-expire-soon" | "alert-blackbox-ssl-expired" => Expect::Jobs(expired()),
        "alert-blackbox-ssl-will-expire-soon-v2" => Expect::Jobs(BTreeSet::new()),
        "config-label-preview" => Expect::Any,
        _ => match label_values(&query.expr) {
            Some((_, label)) => Expect::Values(match label.as_str() {
                "probe" | "region" => set(["r1", "r2"]),
                "check_name" => set(["http", "dns", "tcp", "ping", "browser"]),
                "cluster" => set(["test"]),
                "job" => all.iter().map(|check| check.name.to_owned()).collect(),
                other => panic!("{}: no expectation for label {other}", query.id),
            }),
            None => Expect::Series,
        },
    }
}

/// Runs one query and returns why it does not give what is expected, if it does not.
async fn verify(vm: &str, id: &str, expr: &str, expect: &Expect, all: &[Probe]) -> Option<String> {
    let at = now_seconds();
    let (promql, label) = match label_values(expr) {
        Some((promql, label)) => (promql, Some(label)),
        None => (expr.to_owned(), None),
    };
    let result = query(vm, &promql, at).await;
    let values = |name: &str| -> BTreeSet<String> {
        result.iter().filter_map(|(labels, _)| labels[name].as_str().map(str::to_owned)).collect()
    };
    let wrong = match expect {
        Expect::Series if result.is_empty() => true,
        Expect::Series => {
            // A result by job covers every check, and one by probe both regions.
            let jobs = values("job");
            let everyone: BTreeSet<String> = all.iter().map(|check| check.name.to_owned()).collect();
            let per_check = expr.contains("job=\"") || expr.contains("job=~\"");
            (!per_check && result.iter().all(|(labels, _)| labels["job"].is_string()) && jobs != everyone)
                || (result.iter().all(|(labels, _)| labels["probe"].is_string() && labels["job"].is_null())
                    && values("probe") != set(["r1", "r2"]))
        }
        Expect::Any => result.is_empty(),
        Expect::Empty => !result.is_empty(),
        Expect::Jobs(jobs) => values("job") != *jobs,
        Expect::Values(wanted) => label.as_deref().map(values).as_ref() != Some(wanted),
    };
    wrong.then(|| format!("{id}: expected {expect:?}, got {} series {result:?}\n  query: {promql}", result.len()))
}

/// Every query of both fixture files, checked once; the failures.
async fn round(vm: &str, all: &[Probe]) -> Vec<String> {
    let mut failures = Vec::new();
    for file in ["sm-app.yaml", "mixin.yaml"] {
        for query in queries(file) {
            if query.expr.contains("$job") {
                for check in all {
                    let expect = expect_for(&query, check, all);
                    let expr = fill(&query, Some(check));
                    let id = format!("{file} {} for {}", query.id, check.name);
                    failures.extend(verify(vm, &id, &expr, &expect, all).await);
                }
            } else {
                let expect = expect_global(&query, all);
                let expr = fill(&query, None);
                failures.extend(verify(vm, &format!("{file} {}", query.id), &expr, &expect, all).await);
            }
        }
    }
    failures
}

/// The app's legacy rules (`src/hooks/useAlerts.ts`) and its per-check "failed executions" alert
/// (`AlertsPerCheck.constants.tsx`), from the fixture, for vmalert. The `high` and `low` alerts are held for 0 s
/// (the app: 5 m) so that the test sees them fire; `medium` keeps the app's 5 m and stays pending; the
/// per-check alert is held for 1 h, so it is pending for every failing check.
fn rules(app: &[Query]) -> String {
    let expr = |id: &str| {
        let query = app.iter().find(|query| query.id == id).unwrap_or_else(|| panic!("no {id}"));
        let filled = query.expr.replace("$threshold", "1").replace("$period", "5m");
        filled.replace(r#"="$instance""#, r#"=~".+""#).replace(r#"="$job""#, r#"=~".+""#)
    };
    let indent = |text: String| text.lines().map(|line| format!("          {line}")).collect::<Vec<_>>().join("\n");
    let mut yaml = String::from("groups:\n  - name: default\n    interval: 1s\n    rules:\n");
    let _ = write!(
        yaml,
        "      - record: instance_job_severity:probe_success:mean5m\n        expr: |-\n{}\n",
        indent(expr("legacy-recording-probe-success-mean5m"))
    );
    for (level, name, hold) in [("high", "High", "0s"), ("medium", "Medium", "5m"), ("low", "Low", "0s")] {
        let _ = write!(
            yaml,
            "      - alert: SyntheticMonitoringCheckFailureAt{name}Sensitivity\n        expr: |-\n{}\n        for: {hold}\n        labels: {{namespace: synthetic_monitoring}}\n",
            indent(expr(&format!("legacy-alert-{level}")))
        );
    }
    let _ = write!(
        yaml,
        "      - alert: ProbeFailedExecutionsTooHigh\n        expr: |-\n{}\n        for: 1h\n",
        indent(expr("alert-probe-failed-executions-too-high"))
    );
    yaml
}

/// A DNS server answering every A question with 192.0.2.1.
async fn dns_server() -> u16 {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{RData, Record, rdata::A};
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            let Ok(question) = Message::from_vec(&buf[..len]) else { continue };
            let mut reply = Message::new(question.metadata.id, MessageType::Response, question.metadata.op_code);
            reply.metadata.authoritative = true;
            reply.metadata.response_code = ResponseCode::NoError;
            for asked in &question.queries {
                reply.add_query(asked.clone());
                reply.add_answer(Record::from_rdata(asked.name().clone(), 60, RData::A(A::new(192, 0, 2, 1))));
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    port
}

/// The tail of every log of the test's processes, shown when it fails.
struct Logs<'a>(&'a Path);

impl std::fmt::Display for Logs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for entry in std::fs::read_dir(self.0).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|extension| extension == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                writeln!(f, "--- {}", path.display())?;
                for line in tail.iter().rev() {
                    writeln!(f, "{line}")?;
                }
            }
        }
        Ok(())
    }
}

const PAGE: &str = "<!doctype html><title>Shop</title><h1>Shop</h1><p>Welcome to the shop.</p>\
    <button id=go onclick=\"document.getElementById('out').textContent = 'Clicked'\">Go</button><p id=out></p>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafanas_dashboards_and_alerts_and_the_blackbox_mixin_read_probenets_series() {
    if probenet_browser::find_binary(|name| std::env::var_os(name)).is_err() {
        println!("skip: no Chromium, the browser dashboard cannot be fed (CI installs chromium)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let secure = Server::tls(pki.valid_leaf()).route("/", 200, "secure").start().await;
    let expired = Server::tls(pki.expired_leaf()).route("/", 200, "old").start().await;
    let plain = Server::http1()
        .route("/down", 503, "unavailable")
        .route_with_headers("/app", 200, &[("content-type", "text/html")], PAGE)
        .start()
        .await;
    let dns = dns_server().await;
    let vm = stores::victoria_metrics().await;

    let (https, app) = (secure.url("/"), plain.url("/app"));
    let (good, old) = (secure.addr().to_string(), expired.addr().to_string());
    let ca = ca.display();
    let journey =
        |text: &str| format!("{{steps: [{{goto: \"{app}\"}}, {{click: \"#go\"}}, {{expect_text: \"{text}\"}}]}}");
    let config = format!(
        "regions:\n  r1: {{labels: {{geohash: u0nd}}}}\n  r2: {{labels: {{geohash: 9q8y}}}}\n\
         defaults: {{interval: 2s, timeout: 1500ms}}\n\
         exporters:\n  - remote_write: {{url: \"{vm}/api/v1/write\", external_labels: {{cluster: test, source: probenet}}}}\n\
         checks:\n\
         \x20 - {{name: http-up, alert_sensitivity: low, http: {{url: \"{https}\", tls: {{ca_file: \"{ca}\"}}}}}}\n\
         \x20 - {{name: http-down, alert_sensitivity: high, http: {{url: \"{down}\"}}}}\n\
         \x20 - {{name: dns-up, dns: {{query: www.probenet.test, server: \"127.0.0.1:{dns}\", expect: {{answers: [192.0.2.1]}}}}}}\n\
         \x20 - {{name: dns-down, alert_sensitivity: medium, dns: {{query: www.probenet.test, server: \"127.0.0.1:{dns}\", expect: {{answers: [198.51.100.7]}}}}}}\n\
         \x20 - {{name: tcp-up, tcp: {{target: \"{good}\", tls: {{ca_file: \"{ca}\"}}}}}}\n\
         \x20 - {{name: tcp-down, tcp: {{target: \"{old}\", tls: {{ca_file: \"{ca}\"}}}}}}\n\
         \x20 - {{name: tls-up, tls: {{target: \"{good}\", ca_file: \"{ca}\"}}}}\n\
         \x20 - {{name: tls-down, tls: {{target: \"{old}\", ca_file: \"{ca}\"}}}}\n\
         \x20 - {{name: ping-up, icmp: {{host: 127.0.0.1, count: 1}}}}\n\
         \x20 - {{name: ping-down, icmp: {{host: 127.0.0.1, count: 1, expect: {{max_rtt: 0.001ms}}}}}}\n\
         \x20 - {{name: browser-up, interval: 10s, timeout: 8s, browser: {up}}}\n\
         \x20 - {{name: browser-down, interval: 10s, timeout: 8s, browser: {broken}}}\n",
        vm = vm.base,
        down = plain.url("/down"),
        up = journey("Clicked"),
        broken = journey("Never shown"),
    );
    let checks = dir.path().join("checks.yaml");
    std::fs::write(&checks, config).unwrap();
    let probe = |name, kind, target: &str, passing, tls| Probe { name, kind, target: target.to_owned(), passing, tls };
    let all = [
        probe("http-up", "http", &https, true, true),
        probe("http-down", "http", &plain.url("/down"), false, false),
        probe("dns-up", "dns", "www.probenet.test", true, false),
        probe("dns-down", "dns", "www.probenet.test", false, false),
        probe("tcp-up", "tcp", &good, true, true),
        probe("tcp-down", "tcp", &old, false, true),
        probe("tls-up", "tls", &good, true, true),
        probe("tls-down", "tls", &old, false, true),
        probe("ping-up", "icmp", "127.0.0.1", true, false),
        probe("ping-down", "icmp", "127.0.0.1", false, false),
        probe("browser-up", "browser", &app, true, false),
        probe("browser-down", "browser", &app, false, false),
    ];

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let _scheduler = Kill(plain_scheduler(dir.path(), &checks, &data, port).spawn().unwrap());
    let _probers: Vec<Kill> = ["r1", "r2"]
        .into_iter()
        .map(|region| Kill(plain_prober(dir.path(), &data, port, region).spawn().unwrap()))
        .collect();
    let rules_file = dir.path().join("rules.yaml");
    std::fs::write(&rules_file, rules(&queries("sm-app.yaml"))).unwrap();
    let _vmalert = stores::vmalert(&rules_file, &vm.base).await;

    // Every pair has a few runs in VictoriaMetrics, with the verdict its check is built for.
    let logs = Logs(dir.path());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let runs =
            query(&vm.base, r#"count_over_time(probe_success{source="probenet"}[1m]) >= 3"#, now_seconds()).await;
        if runs.len() == 2 * all.len() {
            break;
        }
        assert!(Instant::now() < deadline, "runs of every pair did not arrive: {runs:?}; logs:\n{logs}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let verdicts = query(&vm.base, r#"probe_success{source="probenet"}"#, now_seconds()).await;
    for (labels, value) in &verdicts {
        let check = all.iter().find(|check| labels["job"] == check.name).unwrap();
        assert_eq!(*value, if check.passing { 1.0 } else { 0.0 }, "{labels}; logs:\n{logs}");
        assert_eq!(labels["instance"], check.target.as_str(), "{labels}");
    }

    // Then every query, until all give what they should (the alerts need a few evaluations).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let failures = round(&vm.base, &all).await;
        if failures.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            // Why a check built to pass failed, if one did (a run that timed out on a loaded machine...).
            let why = r#"max_over_time(probenet_check_failure_reason{job=~".*-up"}[10m]) == 1"#;
            let reasons = query(&vm.base, why, now_seconds()).await;
            panic!(
                "{} queries are wrong:\n{}\nfailed runs of passing checks: {reasons:?}\nlogs:\n{logs}",
                failures.len(),
                failures.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // Values, not only presence: the uptime and reachability panels, and the legacy rule's percentages.
    for check in &all {
        for id in ["common-uptime", "common-reachability"] {
            let query = queries("sm-app.yaml").into_iter().find(|query| query.id == id).unwrap();
            let result = stores::query(&vm.base, &fill(&query, Some(check)), now_seconds()).await;
            let want = if check.passing { 1.0 } else { 0.0 };
            assert!(result.iter().all(|(_, value)| (value - want).abs() < 1e-9), "{id} {}: {result:?}", check.name);
        }
    }
    let recorded = query(&vm.base, "instance_job_severity:probe_success:mean5m", now_seconds()).await;
    for (labels, value) in &recorded {
        let (job, sensitivity) = (labels["job"].as_str().unwrap(), labels["alert_sensitivity"].as_str().unwrap());
        let want = match job {
            "http-up" => ("low", 100.0),
            "http-down" => ("high", 0.0),
            _ => ("medium", 0.0),
        };
        assert_eq!((sensitivity, *value), want, "{labels}");
    }
}
