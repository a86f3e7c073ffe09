//! `probenet export rules`: promtool accepts the exported rules, and `promtool test rules` shows they fire as
//! the engine does (2 of 3 regions fire, 1 of 3 does not; burn alerts on a hard outage).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use probenet_alerting::export::prometheus_rules;
use probenet_checks::config::load_str;

const PROMTOOL: &str = "/usr/bin/promtool";

const CONFIG: &str = r#"regions: {ap-south: {}, eu-west: {}, us-east: {}}
defaults: {interval: 1m}
notifiers:
  oncall: {webhook: {url: "https://hooks.example.com/probenet"}}
checks:
  - name: homepage
    labels: {team: web}
    slo: {objective: 99.9, window: 30d}
    http: {url: "https://shop.example.com/"}
  - name: api
    labels: {team: web}
    http: {url: "https://api.example.com/health"}
  - name: db
    interval: 30s
    tcp: {target: "db.example.com:5432"}
alerts:
  - name: site-down
    checks: [homepage, api]
    failed_regions: 2
    for: 2m
    severity: page
    notify: [oncall]
  - name: web-half-down
    match: {labels: {team: web}}
    failed_regions: "50%"
    labels: {service: shop}
  - name: db-flaky
    checks: [db, api]
    consecutive: 3
    failed_regions: 1
  - name: web-slow
    checks: [homepage]
    state: degraded
"#;

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    assert!(Path::new(PROMTOOL).exists(), "{PROMTOOL} is missing: install the prometheus package (CI does)");
    let out = Command::new(PROMTOOL).args(args).current_dir(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn exported(dir: &Path) -> String {
    let config = load_str("alerting.yaml", CONFIG).unwrap_or_else(|errors| panic!("{errors}"));
    let rules = prometheus_rules(&config);
    std::fs::write(dir.join("rules.yaml"), &rules).unwrap();
    rules
}

#[test]
fn promtool_accepts_the_exported_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = exported(dir.path());
    let (ok, output) = promtool(&["check", "rules", "rules.yaml"], dir.path());
    assert!(ok, "promtool rejected the rules:\n{output}\n{rules}");
    assert!(output.contains("SUCCESS: 7 rules found"), "{output}\n{rules}");
    for expected in [
        r#"count by (job) (probe_success{job=~\"homepage|api\"} == 0) >= 2"#,
        r#"count by (job) (probe_success{job=~\"homepage|api\"} == 0) / count by (job) (probe_success{job=~\"homepage|api\"}) >= 0.5"#,
        r#"(count by (job) (max_over_time(probe_success{job=\"db\"}[1m30s]) == 0) >= 1) or (count by (job) (max_over_time(probe_success{job=\"api\"}[3m]) == 0) >= 1)"#,
        "for: 2m",
        "keep_firing_for: 2m",
        "# web-slow: not exported",
        "alert: \"slo-fast-burn\"",
        "[720h]",
    ] {
        assert!(rules.contains(expected), "missing {expected}:\n{rules}");
    }
    // promtool does fail on a broken file, so the check above means something.
    std::fs::write(
        dir.path().join("broken.yaml"),
        "groups:\n  - name: x\n    rules:\n      - alert: a\n        expr: 'count by ('\n",
    )
    .unwrap();
    let (ok, output) = promtool(&["check", "rules", "broken.yaml"], dir.path());
    assert!(!ok, "{output}");
}

const UNIT_TESTS: &str = r#"rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'probe_success{job="homepage",probe="ap-south"}'
        values: '1x30'
      - series: 'probe_success{job="homepage",probe="eu-west"}'
        values: '1 1 0x28'
      - series: 'probe_success{job="homepage",probe="us-east"}'
        values: '1 1 0x28'
      - series: 'probe_success{job="api",probe="ap-south"}'
        values: '1x30'
      - series: 'probe_success{job="api",probe="eu-west"}'
        values: '1 1 0x28'
      - series: 'probe_success{job="api",probe="us-east"}'
        values: '1x30'
    alert_rule_test:
      - eval_time: 3m
        alertname: site-down
        exp_alerts: []
      - eval_time: 5m
        alertname: site-down
        exp_alerts:
          - exp_labels: {job: homepage, severity: page}
            exp_annotations:
              summary: "check homepage fails in at least 2 of its regions (probenet rule site-down)"
      - eval_time: 20m
        alertname: slo-fast-burn
        exp_alerts:
          - exp_labels: {job: homepage, severity: page}
            exp_annotations:
              summary: "check homepage burns its error budget (99.9% over 720h) at 14.4x or more over 1h and 5m"
"#;

#[test]
fn the_exported_rules_fire_like_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let rules = exported(dir.path());
    std::fs::write(dir.path().join("tests.yaml"), UNIT_TESTS).unwrap();
    let (ok, output) = promtool(&["test", "rules", "tests.yaml"], dir.path());
    assert!(ok, "promtool test rules failed:\n{output}\n{rules}");
    // And the test would catch a rule that fires for 1 of 3 regions.
    let broken = rules.replace(">= 2", ">= 1");
    std::fs::write(dir.path().join("rules.yaml"), broken).unwrap();
    let (ok, output) = promtool(&["test", "rules", "tests.yaml"], dir.path());
    assert!(!ok, "{output}");
}
