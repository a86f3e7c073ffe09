//! The status page as the public reads it: one incident per service and outage (the store records one per
//! region), with its reason in words rather than a label such as `status`.

use probenet_checks::Reason;

use crate::model::{Incident, StatusPage};

/// A failure reason label (`status`, `timeout`...) in words for the public; other text is kept as it is.
pub fn readable_reason(summary: &str) -> String {
    let Ok(reason) = serde_json::from_value::<Reason>(serde_json::Value::String(summary.trim().to_owned())) else {
        return summary.to_owned();
    };
    match reason {
        Reason::Timeout => "Requests time out.",
        Reason::Dns => "The name does not resolve.",
        Reason::Connect => "Connections fail.",
        Reason::Tls => "Secure connections (TLS) fail.",
        Reason::CertExpired => "The certificate has expired.",
        Reason::CertNotYetValid => "The certificate is not valid yet.",
        Reason::CertUntrusted => "The certificate is not trusted.",
        Reason::CertHostname => "The certificate does not match the name.",
        Reason::CertExpiring => "The certificate expires soon.",
        Reason::Status => "Requests fail with an unexpected HTTP status.",
        Reason::Body => "Responses do not have the expected content.",
        Reason::Header => "Responses do not have the expected headers.",
        Reason::Duration => "Responses are too slow.",
        Reason::Redirects => "Requests are redirected too many times.",
        Reason::Rcode => "DNS answers with an error.",
        Reason::Loss => "Packets are lost.",
        Reason::Assertion => "The service does not answer as expected.",
        Reason::Protocol => "The service answers with an invalid response.",
        Reason::Secret => "A monitoring probe is misconfigured.",
        Reason::Unsupported => "A monitoring probe cannot run this check.",
        Reason::BrowserUnavailable => "A monitoring probe has no browser.",
    }
    .to_owned()
}

/// Whether two incidents are the same outage of the same service: same checks, same state, overlapping times.
fn same_outage(a: &Incident, b: &Incident) -> bool {
    let end = |incident: &Incident| incident.resolved_at_ms.unwrap_or(i64::MAX);
    a.checks == b.checks && a.state == b.state && a.started_at_ms <= end(b) && b.started_at_ms <= end(a)
}

/// Merges the incidents of one service that overlap in time (one per region, say) into one, and words their
/// reasons; newest first.
pub fn merge_incidents(page: &mut StatusPage) {
    let mut incidents = std::mem::take(&mut page.incidents);
    incidents.sort_by_key(|incident| incident.started_at_ms);
    let mut merged: Vec<(Incident, usize)> = Vec::new();
    for incident in incidents {
        match merged.iter_mut().find(|(kept, _)| same_outage(kept, &incident)) {
            Some((kept, count)) => {
                *count += 1;
                for region in incident.regions {
                    if !kept.regions.contains(&region) {
                        kept.regions.push(region);
                    }
                }
                kept.started_at_ms = kept.started_at_ms.min(incident.started_at_ms);
                kept.resolved_at_ms = match (kept.resolved_at_ms, incident.resolved_at_ms) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                let summary = readable_reason(&incident.summary);
                if !summary.is_empty() && !kept.summary.split('\n').any(|line| line == summary) {
                    kept.summary =
                        if kept.summary.is_empty() { summary } else { format!("{}\n{summary}", kept.summary) };
                }
            }
            None => {
                let summary = readable_reason(&incident.summary);
                merged.push((Incident { summary, ..incident }, 1));
            }
        }
    }
    for (incident, count) in &mut merged {
        if *count > 1 {
            let shown: Vec<&str> = incident
                .checks
                .iter()
                .map(|name| {
                    page.checks
                        .iter()
                        .find(|check| &check.name == name)
                        .map_or(name.as_str(), |check| check.display_name.as_str())
                })
                .collect();
            let what = if incident.state == crate::State::Degraded { "degraded" } else { "unavailable" };
            incident.title = format!("{} {what}", shown.join(", "));
        }
    }
    page.incidents = merged.into_iter().map(|(incident, _)| incident).rev().collect();
    page.incidents.sort_by_key(|incident| std::cmp::Reverse(incident.started_at_ms));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::State;
    use crate::model::StatusCheck;

    fn incident(region: &str, started: i64, resolved: Option<i64>, summary: &str) -> Incident {
        Incident {
            title: format!("Website down in {region}"),
            checks: vec!["web".into()],
            regions: vec![region.into()],
            state: State::Down,
            started_at_ms: started,
            resolved_at_ms: resolved,
            summary: summary.into(),
        }
    }

    #[test]
    fn overlapping_incidents_of_a_service_are_one() {
        let mut page = StatusPage {
            title: "t".into(),
            checks: vec![StatusCheck { name: "web".into(), display_name: "Website".into(), ..Default::default() }],
            incidents: vec![
                incident("eu", 100, None, "status"),
                incident("us", 150, Some(300), "status"),
                incident("ap", 120, None, "timeout"),
                incident("eu", 10, Some(50), "connect"),
            ],
            maintenance: Vec::new(),
            uptime_as_of_ms: None,
        };
        merge_incidents(&mut page);
        assert_eq!(page.incidents.len(), 2, "{:#?}", page.incidents);
        let ongoing = &page.incidents[0];
        assert_eq!(ongoing.title, "Website unavailable");
        assert_eq!(ongoing.regions, ["eu", "ap", "us"]);
        assert_eq!((ongoing.started_at_ms, ongoing.resolved_at_ms), (100, None));
        assert_eq!(ongoing.summary, "Requests fail with an unexpected HTTP status.\nRequests time out.");
        assert_eq!(page.incidents[1].title, "Website down in eu");
        assert_eq!(page.incidents[1].summary, "Connections fail.");
        assert_eq!(readable_reason("Responses took over 2 seconds."), "Responses took over 2 seconds.");
    }
}
