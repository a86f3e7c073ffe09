//! `probenet export grafana`: the dashboard JSON has the expected variables, panels and queries, and every query
//! is valid PromQL once Grafana's variables are filled in (checked by Prometheus's own `promtool`).

use std::path::Path;
use std::process::Command;

use probenet_dashboard::{GrafanaCheck, grafana_dashboard};
use serde_json::Value;

const PROMTOOL: &str = "/usr/bin/promtool";

fn dashboard() -> Value {
    let checks = vec![
        GrafanaCheck { name: "web".to_owned(), kind: "http".to_owned() },
        GrafanaCheck { name: "api,v2".to_owned(), kind: "tls".to_owned() },
    ];
    grafana_dashboard(&checks, &["eu-west".to_owned(), "us-east".to_owned()])
}

fn queries(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().expect("title").to_owned();
            panel["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .map(move |target| (title.clone(), target["expr"].as_str().expect("expr").to_owned()))
        })
        .collect()
}

#[test]
fn the_dashboard_has_the_expected_variables_panels_and_queries() {
    let dashboard = dashboard();
    // Round trip: it is plain JSON.
    let text = serde_json::to_string_pretty(&dashboard).expect("encode");
    let again: Value = serde_json::from_str(&text).expect("decode");
    assert_eq!(again, dashboard);
    assert_eq!(dashboard["uid"], "probenet");

    let variables: Vec<&str> =
        dashboard["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(variables, ["datasource", "check", "probe", "objective", "slo_window"]);
    let check = &dashboard["templating"]["list"][1];
    assert_eq!(check["query"], "web,api\\,v2");
    assert_eq!(check["options"].as_array().unwrap().len(), 2);
    assert_eq!(dashboard["templating"]["list"][2]["options"][1]["value"], "us-east");

    let queries = queries(&dashboard);
    let find = |title: &str| {
        queries
            .iter()
            .find(|(t, _)| t.starts_with(title))
            .map(|(_, q)| q.as_str())
            .unwrap_or_else(|| panic!("no panel {title}"))
    };
    assert_eq!(
        find("Uptime per region (dashboard range)"),
        r#"avg by (job, probe) (avg_over_time(probe_success{job=~"$check",probe=~"$probe"}[$__range]))"#
    );
    assert!(
        find("HTTP latency by phase").contains("probe_http_duration_seconds{")
            && find("HTTP latency by phase").contains("by (phase)")
    );
    assert!(
        find("Certificate expiry").contains("probe_ssl_earliest_cert_expiry{")
            && find("Certificate expiry").contains("- time()")
    );
    assert!(find("SLO error budget remaining").contains("/ (1 - $objective)"));
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"], "${datasource}");
        for key in ["x", "y", "w", "h"] {
            assert!(panel["gridPos"][key].is_u64(), "{} has no gridPos.{key}", panel["title"]);
        }
    }
    let ids: std::collections::BTreeSet<u64> =
        dashboard["panels"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), dashboard["panels"].as_array().unwrap().len(), "panel ids must be unique");
}

#[test]
fn every_query_is_valid_promql() {
    assert!(Path::new(PROMTOOL).exists(), "{PROMTOOL} is missing: install Debian's `prometheus` package");
    let mut rules = String::from("groups:\n  - name: grafana\n    rules:\n");
    for (n, (_, expr)) in queries(&dashboard()).iter().enumerate() {
        let filled = expr
            .replace("$__rate_interval", "5m")
            .replace("$__range", "1d")
            .replace("$slo_window", "30d")
            .replace("$objective", "0.999")
            .replace("$check", ".*")
            .replace("$probe", ".*");
        assert!(!filled.contains('$'), "an unfilled variable in {filled}");
        rules.push_str(&format!(
            "      - record: probenet:grafana_{n}\n        expr: '{}'\n",
            filled.replace('\'', "''")
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, &rules).expect("write rules");
    let output = Command::new(PROMTOOL).args(["check", "rules"]).arg(&file).output().expect("run promtool");
    assert!(
        output.status.success(),
        "promtool refused the queries:\n{}\n{}\n{rules}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // And it does refuse a broken one (the check can fail).
    std::fs::write(
        &file,
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: 'avg_over_time(up[5m]'\n",
    )
    .unwrap();
    let output = Command::new(PROMTOOL).args(["check", "rules"]).arg(&file).output().expect("run promtool");
    assert!(!output.status.success());
}
