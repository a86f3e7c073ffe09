//! Results leave probenet the ways users wire it: a real scheduler and two real probers, the scheduler's
//! remote write into a real VictoriaMetrics and its result log, Prometheus scraping a prober's `/metrics`;
//! the values match the runs, and a check removed from the config ends its series with stale markers.

use std::path::Path;
use std::time::{Duration, Instant};

use probenet_testkit::stores::{self, now_seconds, query, query_until};

use crate::util::Server;
use crate::util::processes::{Kill, free_port, plain_prober, plain_scheduler};

fn config(home: &str, missing: &str, vm: &str, log: &Path, with_missing: bool) -> String {
    let mut yaml = format!(
        "regions: {{r1: {{}}, r2: {{}}}}\ndefaults: {{interval: 1s, timeout: 900ms}}\n\
         exporters:\n  - remote_write: {{url: \"{vm}/api/v1/write\"}}\n  - logs: {{path: \"{}\"}}\n\
         \x20 - logs: {{path: \"{}.probers\", on: probers}}\n\
         checks:\n  - name: home\n    labels: {{team: web}}\n    http: {{url: \"{home}\"}}\n",
        log.display(),
        log.display()
    );
    if with_missing {
        yaml.push_str(&format!("  - name: missing\n    http: {{url: \"{missing}\"}}\n"));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_logs_and_prober_metrics_carry_the_same_results() {
    let target = Server::http1().route("/", 200, "welcome").route("/gone", 404, "no").start().await;
    let vm = stores::victoria_metrics().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let log = dir.path().join("results.jsonl");
    let checks = dir.path().join("checks.yaml");
    let (home, missing) = (target.url("/"), target.url("/gone"));
    std::fs::write(&checks, config(&home, &missing, &vm.base, &log, true)).unwrap();

    let port = free_port();
    let _scheduler = Kill(plain_scheduler(dir.path(), &checks, &data, port).spawn().unwrap());
    let metrics_port = free_port();
    let mut probers = Vec::new();
    for (region, metrics) in [("r1", Some(metrics_port)), ("r2", None)] {
        let mut command = plain_prober(dir.path(), &data, port, region);
        if let Some(metrics) = metrics {
            command.args(["--metrics-listen", &format!("127.0.0.1:{metrics}")]);
        }
        probers.push(Kill(command.spawn().unwrap()));
    }
    let prometheus = stores::prometheus(Some(&format!("127.0.0.1:{metrics_port}"))).await;

    // VictoriaMetrics receives the scheduler's remote write: both regions, the right values.
    for region in ["r1", "r2"] {
        let up = query_until(&vm.base, &format!("probe_success{{job=\"home\",probe=\"{region}\"}}"), None, 30).await;
        assert_eq!(up.len(), 1, "home in {region}: {up:?}; logs in {}", dir.path().display());
        assert_eq!(up[0].1, 1.0);
        assert_eq!(up[0].0["instance"], home.as_str());
        let down =
            query_until(&vm.base, &format!("probe_success{{job=\"missing\",probe=\"{region}\"}}"), None, 30).await;
        assert_eq!(down.first().map(|series| series.1), Some(0.0), "missing in {region}: {down:?}");
    }
    let status = query(&vm.base, "probe_http_status_code{job=\"missing\"}", now_seconds()).await;
    assert!(!status.is_empty() && status.iter().all(|series| series.1 == 404.0), "{status:?}");
    let phases = query(&vm.base, "probe_http_duration_seconds{job=\"home\",probe=\"r1\"}", now_seconds()).await;
    let names: std::collections::BTreeSet<String> =
        phases.iter().filter_map(|series| series.0["phase"].as_str().map(str::to_owned)).collect();
    assert_eq!(names, ["connect", "processing", "resolve", "tls", "transfer"].map(String::from).into());
    assert!(phases.iter().all(|series| series.1 >= 0.0 && series.1 < 1.0), "{phases:?}");
    let info = query_until(&vm.base, "sm_check_info{job=\"home\"}", None, 10).await;
    assert_eq!(info.first().map(|series| series.0["label_team"].clone()), Some("web".into()), "{info:?}");

    // Prometheus scraping prober r1's /metrics sees r1's pairs with the same labels, and its health.
    let scraped = query_until(&prometheus.base, "probe_success{probe=\"r1\"}", None, 30).await;
    let mut jobs: Vec<(String, f64)> =
        scraped.iter().map(|series| (series.0["job"].as_str().unwrap_or_default().to_owned(), series.1)).collect();
    jobs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(jobs, [("home".to_owned(), 1.0), ("missing".to_owned(), 0.0)], "{scraped:?}");
    assert!(scraped.iter().all(|series| series.0["instance"] != ""), "{scraped:?}");
    let health = query_until(&prometheus.base, "probenet_prober_assigned_checks", None, 10).await;
    assert_eq!(health.first().map(|series| series.1), Some(2.0), "{health:?}");
    let other_region = query(&prometheus.base, "probe_success{probe=\"r2\"}", now_seconds()).await;
    assert!(other_region.is_empty(), "prober r1 shows only its own pairs: {other_region:?}");

    // The result log holds one JSON record per result, of both checks and both regions.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let records: Vec<serde_json::Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    for (check, region) in [("home", "r1"), ("home", "r2"), ("missing", "r1"), ("missing", "r2")] {
        let found = records.iter().find(|record| record["check"] == check && record["region"] == region);
        let record = found.unwrap_or_else(|| panic!("no record of {check} in {region}: {text}"));
        assert_eq!(record["success"], check == "home", "{record}");
    }

    // The log configured `on: probers` is written by the probers themselves: records of both regions, each
    // naming the prober that ran it.
    let text = std::fs::read_to_string(log.with_extension("jsonl.probers")).unwrap_or_default();
    let records: Vec<serde_json::Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    for region in ["r1", "r2"] {
        let prober = format!("p-{region}");
        assert!(
            records.iter().any(|record| record["region"] == region && record["prober"] == prober.as_str()),
            "{text}"
        );
    }

    // Removing `missing` from the config ends its series: VictoriaMetrics answers nothing for it after the
    // reload, while `home` goes on.
    std::fs::write(&checks, config(&home, &missing, &vm.base, &log, false)).unwrap();
    let start = Instant::now();
    let gone = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = reqwest::get(format!("{}/internal/force_flush", vm.base)).await;
        let left = query(&vm.base, "probe_success{job=\"missing\"}", now_seconds()).await;
        if left.is_empty() {
            break true;
        }
        if start.elapsed() > Duration::from_secs(30) {
            break false;
        }
    };
    assert!(gone, "the removed check's series did not end; logs in {}", dir.path().display());
    let home_now = query_until(&vm.base, "probe_success{job=\"home\"}", None, 10).await;
    assert_eq!(home_now.len(), 2, "{home_now:?}");
    drop(probers);
}
