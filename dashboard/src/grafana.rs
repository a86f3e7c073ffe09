//! `probenet export grafana`: a Grafana dashboard over the Prometheus-compatible store, with blackbox_exporter's
//! metric names (`probe_success`, `probe_http_duration_seconds`, `probe_ssl_earliest_cert_expiry`), `job` the
//! check and `probe` the region.

use serde_json::{Value, json};

/// A check offered by the dashboard's `check` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrafanaCheck {
    /// The check's name (the `job` label).
    pub name: String,
    /// Its kind (`http`, `tls`...): only kinds with certificates get the expiry panel's attention, but every
    /// check is offered.
    pub kind: String,
}

/// The selector every query uses.
const SELECTOR: &str = r#"job=~"$check",probe=~"$probe""#;

/// A custom variable with an `All` option.
fn variable(name: &str, label: &str, values: &[String]) -> Value {
    let options: Vec<Value> =
        values.iter().map(|value| json!({ "text": value, "value": value, "selected": false })).collect();
    json!({
        "type": "custom",
        "name": name,
        "label": label,
        "query": values.iter().map(|value| value.replace(',', "\\,")).collect::<Vec<_>>().join(","),
        "multi": true,
        "includeAll": true,
        "allValue": ".*",
        "current": { "text": ["All"], "value": ["$__all"] },
        "options": options,
    })
}

/// The options of a single-choice custom variable.
fn choices(values: &[&str], selected: &str) -> Vec<Value> {
    values.iter().map(|value| json!({ "text": value, "value": value, "selected": *value == selected })).collect()
}

/// A Prometheus query target.
fn target(expr: String, legend: &str, instant: bool) -> Value {
    json!({
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "expr": expr,
        "legendFormat": legend,
        "refId": "A",
        "instant": instant,
        "range": !instant,
        "format": if instant { "table" } else { "time_series" },
    })
}

/// One panel.
fn panel(id: u32, kind: &str, title: &str, grid: (u32, u32, u32, u32), targets: Vec<Value>, field: Value) -> Value {
    let (x, y, w, h) = grid;
    json!({
        "id": id,
        "type": kind,
        "title": title,
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "gridPos": { "x": x, "y": y, "w": w, "h": h },
        "targets": targets,
        "fieldConfig": { "defaults": field, "overrides": [] },
        "options": {},
    })
}

/// Thresholds from red to green at the given steps.
fn thresholds(steps: &[(Option<f64>, &str)]) -> Value {
    let steps: Vec<Value> = steps.iter().map(|(value, color)| json!({ "value": value, "color": color })).collect();
    json!({ "mode": "absolute", "steps": steps })
}

/// The Grafana dashboard JSON (schema 39) for `checks` and `regions`: a Prometheus data source variable, `check`
/// and `probe` (region) variables, and panels for uptime per region, latency by phase, certificate expiry and
/// the SLO error budget (against an `objective` variable).
pub fn grafana_dashboard(checks: &[GrafanaCheck], regions: &[String]) -> Value {
    let names: Vec<String> = checks.iter().map(|check| check.name.clone()).collect();
    let uptime = |window: &str| format!("avg_over_time(probe_success{{{SELECTOR}}}[{window}])");
    let budget = format!("1 - (1 - avg by (job) ({})) / (1 - $objective)", uptime("$slo_window"));
    let burn = |window: &str| format!("(1 - avg by (job) ({})) / (1 - $objective)", uptime(window));
    let percent = |red: f64, orange: f64| {
        json!({ "unit": "percentunit", "decimals": 3, "min": 0, "max": 1,
                "thresholds": thresholds(&[(None, "red"), (Some(red), "orange"), (Some(orange), "green")]) })
    };
    let panels = vec![
        panel(
            1,
            "table",
            "Uptime per region (dashboard range)",
            (0, 0, 12, 9),
            vec![target(format!("avg by (job, probe) ({})", uptime("$__range")), "{{job}} {{probe}}", true)],
            percent(0.99, 0.999),
        ),
        panel(
            2,
            "timeseries",
            "Uptime per region",
            (12, 0, 12, 9),
            vec![target(format!("avg by (probe) ({})", uptime("$__rate_interval")), "{{probe}}", false)],
            json!({ "unit": "percentunit", "min": 0, "max": 1 }),
        ),
        panel(
            3,
            "timeseries",
            "HTTP latency by phase",
            (0, 9, 12, 9),
            vec![target(format!("avg by (phase) (probe_http_duration_seconds{{{SELECTOR}}})"), "{{phase}}", false)],
            json!({ "unit": "s", "custom": { "stacking": { "mode": "normal" }, "fillOpacity": 40 } }),
        ),
        panel(
            4,
            "timeseries",
            "Total latency per region",
            (12, 9, 12, 9),
            vec![target(format!("avg by (probe) (probe_duration_seconds{{{SELECTOR}}})"), "{{probe}}", false)],
            json!({ "unit": "s" }),
        ),
        panel(
            5,
            "bargauge",
            "Certificate expiry",
            (0, 18, 12, 9),
            vec![target(
                format!("min by (job) (probe_ssl_earliest_cert_expiry{{{SELECTOR}}} - time())"),
                "{{job}}",
                true,
            )],
            json!({ "unit": "s", "thresholds": thresholds(&[(None, "red"), (Some(604_800.0), "orange"), (Some(1_814_400.0), "green")]) }),
        ),
        panel(
            6,
            "bargauge",
            "SLO error budget remaining",
            (12, 18, 12, 9),
            vec![target(budget, "{{job}}", true)],
            json!({ "unit": "percentunit", "min": 0, "max": 1,
                    "thresholds": thresholds(&[(None, "red"), (Some(0.25), "orange"), (Some(0.5), "green")]) }),
        ),
        panel(
            7,
            "timeseries",
            "SLO burn rate (1 h and 6 h)",
            (0, 27, 24, 8),
            vec![target(burn("1h"), "{{job}} 1h", false), {
                let mut six = target(burn("6h"), "{{job}} 6h", false);
                six["refId"] = json!("B");
                six
            }],
            json!({ "unit": "none", "min": 0 }),
        ),
    ];
    json!({
        "uid": "probenet",
        "title": "probenet",
        "description": "Uptime per region, latency by phase, certificate expiry and SLO budget (probenet export grafana)",
        "tags": ["probenet", "synthetic-monitoring"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "refresh": "1m",
        "time": { "from": "now-24h", "to": "now" },
        "templating": { "list": [
            { "type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
              "current": {}, "hide": 0 },
            variable("check", "Check", &names),
            variable("probe", "Region", regions),
            { "type": "custom", "name": "objective", "label": "SLO objective", "query": "0.99,0.995,0.999,0.9999",
              "current": { "text": "0.999", "value": "0.999" }, "multi": false, "includeAll": false,
              "options": choices(&["0.99", "0.995", "0.999", "0.9999"], "0.999") },
            { "type": "custom", "name": "slo_window", "label": "SLO window", "query": "7d,28d,30d",
              "current": { "text": "30d", "value": "30d" }, "multi": false, "includeAll": false,
              "options": choices(&["7d", "28d", "30d"], "30d") },
        ] },
        "panels": panels,
    })
}
