//! A ledger as `probenet report` prints it (CSV, JSON, a self-contained HTML page), the times it accepts, and
//! the impaired spans of regions read back from the alert history.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::{Figures, ImpairedSpan, Ledger, POLICY_VERSION};
use crate::engine::REGION_IMPAIRED;
use crate::state::HistoryEntry;

/// Where the policy is written for users.
pub const POLICY_DOC: &str = "docs/uptime.md";

/// A time as `--from` and `--to` take it: RFC 3339 (`2026-11-01T00:00:00Z`), a UTC date (`2026-11-01`), `now`,
/// or `now-DURATION` (`now-30d`, `now-1h30m`), read at `now_ms`.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now_ms);
    }
    if let Some(ago) = text.strip_prefix("now-") {
        let ago = probenet_checks::duration::parse(ago).map_err(|error| format!("{text:?}: {error}"))?;
        let ago_ms = i64::try_from(ago.as_millis()).map_err(|_| format!("{text:?}: too far back"))?;
        return Ok(now_ms.saturating_sub(ago_ms));
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).map_or(0, |time| time.and_utc().timestamp_millis()));
    }
    Err(format!(
        "{text:?} is not a time: write RFC 3339 (2026-11-01T00:00:00Z), a UTC date (2026-11-01), now, or now-30d"
    ))
}

/// A time in RFC 3339, UTC, to the second (or the millisecond when it has one).
pub fn rfc3339(ms: i64) -> String {
    let Some(time) = DateTime::<Utc>::from_timestamp_millis(ms) else { return ms.to_string() };
    let format = if ms.rem_euclid(1000) == 0 { SecondsFormat::Secs } else { SecondsFormat::Millis };
    time.to_rfc3339_opts(format, true)
}

/// When each region was impaired, from the alert history (`region-impaired/{region}` firing, then resolved); an
/// impairment still open ends at `until_ms`.
pub fn impaired_spans(history: &[HistoryEntry], until_ms: i64) -> Vec<ImpairedSpan> {
    let mut entries: Vec<&HistoryEntry> = history.iter().filter(|entry| entry.alert == REGION_IMPAIRED).collect();
    entries.sort_by_key(|entry| entry.at_ms);
    let mut open: Vec<(String, i64)> = Vec::new();
    let mut out = Vec::new();
    for entry in entries {
        let region = entry.key.strip_prefix(&format!("{REGION_IMPAIRED}/")).unwrap_or(&entry.key).to_owned();
        match entry.status {
            crate::Status::Firing => {
                if !open.iter().any(|(known, _)| *known == region) {
                    open.push((region, entry.at_ms));
                }
            }
            crate::Status::Resolved => {
                if let Some(at) = open.iter().position(|(known, _)| *known == region) {
                    let (region, start_ms) = open.remove(at);
                    out.push(ImpairedSpan { region, start_ms, end_ms: entry.at_ms });
                }
            }
        }
    }
    out.extend(open.into_iter().map(|(region, start_ms)| ImpairedSpan { region, start_ms, end_ms: until_ms }));
    out
}

fn ratio(value: Option<f64>) -> String {
    value.map(|value| format!("{value:.6}")).unwrap_or_default()
}

/// A CSV field, quoted when it needs to be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// The CSV header.
pub const CSV_HEADER: &str = "policy,check,view,region,from,to,uptime,slo_uptime,up_seconds,down_seconds,\
                              unknown_seconds,maintenance_seconds,muted_seconds,downtimes";

/// One row per check (`view` = `quorum`, the check as a whole) and one per check × region (`view` = `region`).
pub fn csv(ledger: &Ledger) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    let (from, to) = (rfc3339(ledger.from_ms), rfc3339(ledger.to_ms));
    let mut row = |check: &str, view: &str, region: &str, figures: &Figures| {
        let _ = writeln!(
            out,
            "{},{},{view},{},{from},{to},{},{},{},{},{},{},{},{}",
            ledger.policy,
            field(check),
            field(region),
            ratio(figures.uptime),
            ratio(figures.slo_uptime),
            figures.up_seconds,
            figures.down_seconds,
            figures.unknown_seconds,
            figures.maintenance_seconds,
            figures.muted_seconds,
            figures.downtime.len()
        );
    };
    for check in &ledger.checks {
        row(&check.check, "quorum", "", &check.overall);
        for region in &check.regions {
            row(&check.check, "region", &region.region, &region.figures);
        }
    }
    out
}

/// The whole ledger: policy version and where it is written, the window, every figure and interval.
pub fn json(ledger: &Ledger) -> String {
    let mut value = serde_json::to_value(ledger).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("policy_doc".into(), POLICY_DOC.into());
        object.insert("from".into(), rfc3339(ledger.from_ms).into());
        object.insert("to".into(), rfc3339(ledger.to_ms).into());
    }
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

use probenet_checks::html::escape;

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{:.4}%", value * 100.0))
}

fn figures_row(out: &mut String, name: &str, figures: &Figures) {
    let _ = writeln!(
        out,
        "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        escape(name),
        percent(figures.uptime),
        percent(figures.slo_uptime),
        figures.up_seconds,
        figures.down_seconds,
        figures.unknown_seconds,
        figures.maintenance_seconds,
        figures.muted_seconds
    );
}

/// A self-contained page (no script, no external resource), every value escaped.
pub fn html(ledger: &Ledger) -> String {
    let (from, to) = (rfc3339(ledger.from_ms), rfc3339(ledger.to_ms));
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Uptime report {from} to {to}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse;margin:1rem 0}}\
         td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}}th{{text-align:left}}</style></head>\n\
         <body><h1>Uptime report</h1>\n<p>From {from} to {to}. Uptime policy version {} ({POLICY_DOC}): uptime is \
         measured by time; pause windows are neither up nor down; time without data is unknown, never down.</p>\n",
        ledger.policy
    );
    for check in &ledger.checks {
        let _ = writeln!(
            out,
            "<section><h2>{}</h2><p>Down when {} of its regions are down; {} retries forgiven.</p>",
            escape(&check.check),
            escape(&check.quorum),
            check.retries
        );
        out.push_str(
            "<table><tr><th></th><th>uptime</th><th>SLO uptime</th><th>up s</th><th>down s</th><th>unknown s</th>\
             <th>maintenance s</th><th>muted s</th></tr>\n",
        );
        figures_row(&mut out, "all regions (quorum)", &check.overall);
        for region in &check.regions {
            figures_row(&mut out, &region.region, &region.figures);
        }
        out.push_str("</table>\n");
        if !check.overall.downtime.is_empty() {
            out.push_str(
                "<table><tr><th>down from</th><th>to</th><th>seconds</th><th>regions</th><th>reason</th>\
                          <th>message</th><th>muted</th></tr>\n",
            );
            for down in &check.overall.downtime {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    rfc3339(down.start_ms),
                    rfc3339(down.end_ms),
                    down.seconds,
                    escape(&down.regions.join(", ")),
                    escape(down.reason.as_deref().unwrap_or("")),
                    escape(down.error.as_deref().unwrap_or("")),
                    if down.muted { "yes" } else { "" }
                );
            }
            out.push_str("</table>\n");
        }
        for span in &check.maintenance {
            let _ = writeln!(
                out,
                "<p>Maintenance {} ({}): {} to {}</p>",
                escape(&span.window),
                span.mode,
                rfc3339(span.start_ms),
                rfc3339(span.end_ms)
            );
        }
        out.push_str("</section>\n");
    }
    let _ = writeln!(out, "<footer>probenet uptime ledger, policy {POLICY_VERSION}</footer></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{CheckLedger, Downtime, RegionLedger};

    fn sample_ledger() -> Ledger {
        let figures = Figures {
            uptime: Some(0.5),
            up_seconds: 30.0,
            down_seconds: 30.0,
            downtime: vec![Downtime {
                start_ms: 30_000,
                end_ms: 60_000,
                seconds: 30.0,
                regions: vec!["eu".into()],
                reason: Some("body".into()),
                error: Some("<script>alert(1)</script>".into()),
                muted: false,
            }],
            ..Figures::default()
        };
        Ledger {
            policy: POLICY_VERSION,
            from_ms: 0,
            to_ms: 60_000,
            checks: vec![CheckLedger {
                check: "a,\"b\"".into(),
                quorum: "1".into(),
                retries: 0,
                overall: figures.clone(),
                regions: vec![RegionLedger { region: "eu".into(), figures }],
                maintenance: Vec::new(),
            }],
        }
    }

    #[test]
    fn times_are_rfc3339_dates_or_relative_to_now() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("1970-01-01T00:01:00Z", now), Ok(60_000));
        assert_eq!(parse_time("1970-01-01T01:01:00+01:00", now), Ok(60_000));
        assert_eq!(parse_time("1970-01-02", now), Ok(86_400_000));
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("now-1h30m", now), Ok(now - 5_400_000));
        assert!(parse_time("yesterday", now).unwrap_err().contains("is not a time"));
        assert!(parse_time("now-3x", now).is_err());
        assert_eq!(rfc3339(60_000), "1970-01-01T00:01:00Z");
    }

    #[test]
    fn csv_quotes_and_html_escapes() {
        let ledger = sample_ledger();
        let csv = csv(&ledger);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(
            lines[1],
            "1,\"a,\"\"b\"\"\",quorum,,1970-01-01T00:00:00Z,1970-01-01T00:01:00Z,0.500000,,30,30,0,0,0,1"
        );
        assert!(lines[2].contains(",region,eu,"), "{}", lines[2]);
        let html = html(&ledger);
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("a,&quot;b&quot;"));
        let json: serde_json::Value = serde_json::from_str(&json(&ledger)).unwrap();
        assert_eq!(json["policy"], 1);
        assert_eq!(json["from"], "1970-01-01T00:00:00Z");
        assert_eq!(json["checks"][0]["regions"][0]["region"], "eu");
        assert_eq!(json["checks"][0]["overall"]["downtime"][0]["reason"], "body");
    }

    #[test]
    fn impairments_come_from_the_alert_history() {
        let entry = |at_ms: i64, region: &str, status: crate::Status| HistoryEntry {
            at_ms,
            key: format!("region-impaired/{region}"),
            alert: REGION_IMPAIRED.into(),
            check: None,
            status,
            regions: vec![region.into()],
            summary: String::new(),
            notified: true,
        };
        let history = [
            entry(300, "us", crate::Status::Resolved),
            entry(100, "us", crate::Status::Firing),
            entry(500, "ap", crate::Status::Firing),
        ];
        let spans = impaired_spans(&history, 900);
        assert_eq!(
            spans,
            [
                ImpairedSpan { region: "us".into(), start_ms: 100, end_ms: 300 },
                ImpairedSpan { region: "ap".into(), start_ms: 500, end_ms: 900 },
            ]
        );
    }
}
