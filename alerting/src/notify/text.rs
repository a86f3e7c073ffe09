//! The human text of a notification, shared by every notifier: a title ("site-down: homepage down in eu-west,
//! us-east"), the fields (check, regions, since, reason, error, dashboard) and a plain-text body.

use chrono::{DateTime, Utc};

use crate::{Notification, Status};

/// `FIRING` or `RESOLVED`.
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Firing => "FIRING",
        Status::Resolved => "RESOLVED",
    }
}

/// One line naming the alert, the check and the regions: `site-down: homepage down in eu-west, us-east`;
/// when resolved, `site-down: homepage recovered (was down in eu-west, us-east)`. An alert about no check
/// (region-impaired) names its regions: `region-impaired: eu-west`.
pub fn title(notification: &Notification) -> String {
    let regions = notification.regions.join(", ");
    let line = match (&notification.check, notification.status) {
        (Some(check), Status::Firing) if regions.is_empty() => format!("{check} down"),
        (Some(check), Status::Firing) => format!("{check} down in {regions}"),
        (Some(check), Status::Resolved) if regions.is_empty() => format!("{check} recovered"),
        (Some(check), Status::Resolved) => format!("{check} recovered (was down in {regions})"),
        (None, Status::Firing) => regions,
        (None, Status::Resolved) if regions.is_empty() => "recovered".to_owned(),
        (None, Status::Resolved) => format!("{regions} recovered"),
    };
    one_line(&if line.is_empty() { notification.alert.clone() } else { format!("{}: {line}", notification.alert) })
}

/// `[FIRING] ` or `[RESOLVED] ` and the [`title`]: the email subject.
pub fn subject(notification: &Notification) -> String {
    format!("[{}] {}", status_word(notification.status), title(notification))
}

/// The facts of a notification as (label, value) pairs, in reading order; absent facts are left out.
pub fn fields(notification: &Notification) -> Vec<(&'static str, String)> {
    let mut fields = Vec::new();
    if let Some(check) = &notification.check {
        fields.push(("Check", check.clone()));
    }
    if let Some(target) = &notification.target {
        fields.push(("Target", target.clone()));
    }
    if !notification.regions.is_empty() {
        let mut regions = notification.regions.join(", ");
        if notification.total_regions > 0 {
            regions.push_str(&format!(" ({} of {})", notification.regions.len(), notification.total_regions));
        }
        fields.push(("Regions", regions));
    }
    fields.push(("Since", human_time(notification.since_ms)));
    if let Some(ended) = notification.ended_ms {
        let lasted = duration_words(ended.saturating_sub(notification.since_ms));
        fields.push(("Ended", format!("{} (after {lasted})", human_time(ended))));
    }
    if let Some(reason) = &notification.reason {
        fields.push(("Reason", reason.clone()));
    }
    if let Some(error) = &notification.error {
        fields.push(("Error", one_line(error)));
    }
    fields.push(("Severity", notification.severity.clone()));
    if !notification.labels.is_empty() {
        let labels: Vec<String> = notification.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        fields.push(("Labels", labels.join(", ")));
    }
    if let Some(url) = &notification.dashboard_url {
        fields.push(("Dashboard", url.clone()));
    }
    fields
}

/// The plain-text body: the subject, the summary, the fields aligned, and the alert's key.
pub fn body(notification: &Notification) -> String {
    let mut out = format!("{}\n\n{}\n\n", subject(notification), notification.summary.trim());
    let fields = fields(notification);
    let width = fields.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    for (label, value) in fields {
        out.push_str(&format!("{:<width$} {value}\n", format!("{label}:")));
    }
    out.push_str(&format!("\nAlert key: {}\n-- \nprobenet\n", notification.key));
    out
}

/// The facts as lines, each written by `line(label, value)`, leaving the dashboard out (chat notifiers give it
/// as a link); each value is cut to [`MAX_FACT`] characters first.
pub fn fact_lines(notification: &Notification, line: impl Fn(&str, &str) -> String) -> Vec<String> {
    fields(notification)
        .into_iter()
        .filter(|(label, _)| *label != "Dashboard")
        .map(|(label, value)| line(label, &truncate(&value, MAX_FACT)))
        .collect()
}

/// The longest fact value a chat message carries, in characters.
pub const MAX_FACT: usize = 500;

/// `text` cut to at most `max` characters, the cut marked with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Unix ms as RFC 3339 in UTC with milliseconds: `2024-05-01T12:00:00.000Z`.
pub use probenet_checks::time::rfc3339_ms;

/// Unix ms for people: `2024-05-01 12:00:00 UTC`.
pub fn human_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A duration in ms as `1h 5m`, `3m 20s`, `45s`.
pub fn duration_words(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (days, hours, minutes, seconds) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) if seconds > 0 => format!("{minutes}m {seconds}s"),
        (0, 0, _) => format!("{minutes}m"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// Control characters (line breaks included) turned into spaces, runs of whitespace into one.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sample() -> Notification {
        Notification {
            alert: "site-down".into(),
            key: "site-down/homepage".into(),
            status: Status::Firing,
            severity: "page".into(),
            check: Some("homepage".into()),
            target: Some("https://example.com/".into()),
            regions: vec!["eu-west".into(), "us-east".into()],
            total_regions: 3,
            since_ms: 1_714_564_800_000,
            ended_ms: None,
            reason: Some("timeout".into()),
            error: Some("no answer\nafter 10s".into()),
            labels: BTreeMap::from([("team".into(), "web".into())]),
            summary: "homepage is down in 2 of 3 regions".into(),
            dashboard_url: Some("https://dash.example.com/checks/homepage".into()),
        }
    }

    #[test]
    fn titles_name_check_and_regions() {
        let mut n = sample();
        assert_eq!(subject(&n), "[FIRING] site-down: homepage down in eu-west, us-east");
        n.status = Status::Resolved;
        assert_eq!(subject(&n), "[RESOLVED] site-down: homepage recovered (was down in eu-west, us-east)");
        n.check = None;
        n.regions = vec!["eu-west".into()];
        n.alert = "region-impaired".into();
        n.status = Status::Firing;
        assert_eq!(title(&n), "region-impaired: eu-west");
    }

    #[test]
    fn body_holds_every_fact() {
        let mut n = sample();
        n.ended_ms = Some(n.since_ms + 15 * 60_000);
        let body = body(&n);
        for needle in [
            "homepage is down in 2 of 3 regions",
            "Regions:   eu-west, us-east (2 of 3)",
            "Since:     2024-05-01 12:00:00 UTC",
            "Ended:     2024-05-01 12:15:00 UTC (after 15m)",
            "Reason:    timeout",
            "Error:     no answer after 10s",
            "Dashboard: https://dash.example.com/checks/homepage",
            "Alert key: site-down/homepage",
        ] {
            assert!(body.contains(needle), "{needle:?} not in:\n{body}");
        }
        assert_eq!(rfc3339_ms(n.since_ms), "2024-05-01T12:00:00.000Z");
        assert_eq!(duration_words(3_725_000), "1h 2m");
    }

    #[test]
    fn facts_are_lines_without_the_dashboard_and_cut() {
        let mut n = sample();
        n.error = Some("x".repeat(MAX_FACT + 10));
        let lines = fact_lines(&n, |label, value| format!("{label}={value}"));
        assert_eq!(lines[0], "Check=homepage");
        assert!(lines.iter().all(|line| !line.starts_with("Dashboard")));
        let error = lines.iter().find(|line| line.starts_with("Error=")).unwrap();
        assert_eq!(error.chars().count(), "Error=".len() + MAX_FACT);
        assert!(error.ends_with('…'));
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
    }
}
