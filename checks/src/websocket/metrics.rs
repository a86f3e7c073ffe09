//! The `websocket` kind's series: `probe_websocket_*`, in blackbox_exporter's style (it has no such prober).

use super::{PHASES, WebsocketDetails};
use crate::details::Details as _;
use crate::metrics::{Family, SeriesWriter, flag, gauge};
use crate::{Outcome, Reason};

/// The families only `websocket` writes.
pub(super) const FAMILIES: &[Family] = &[
    gauge("probe_websocket_duration_seconds", "Duration of websocket probe by phase"),
    gauge("probe_websocket_status_code", "Response HTTP status code of the opening handshake"),
    gauge("probe_websocket_close_code", "Close code the server sent, 0 without a close frame"),
    gauge("probe_websocket_messages_sent", "Number of websocket messages sent"),
    gauge("probe_websocket_messages_received", "Number of websocket messages received"),
];

pub(super) fn series(outcome: &Outcome, details: &WebsocketDetails, out: &mut dyn SeriesWriter) {
    crate::metrics::lookup(out, outcome);
    crate::metrics::ip_protocol(out, details.address());
    out.phases("probe_websocket_duration_seconds", outcome, &PHASES);
    let status = details.handshake.as_ref().map_or(0, |handshake| handshake.status_code);
    out.gauge("probe_websocket_status_code", f64::from(status));
    let conversation = details.conversation.clone().unwrap_or_default();
    out.gauge("probe_websocket_close_code", f64::from(conversation.close_code.unwrap_or(0)));
    out.gauge("probe_websocket_messages_sent", conversation.messages_sent as f64);
    out.gauge("probe_websocket_messages_received", conversation.messages_received as f64);
    let expect_failed = conversation.failed_step.as_deref().is_some_and(|step| step.ends_with(".expect"));
    out.gauge("probe_failed_due_to_regex", flag(expect_failed && outcome.reason == Some(Reason::Assertion)));
    crate::metrics::tls_part(out, &details.tls);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KindCheck as _;

    use crate::metrics::SeriesNames as Names;

    #[test]
    fn the_representative_outcome_writes_every_family_and_the_tls_series_of_wss() {
        let yaml = "checks:\n  - {name: a, websocket: {url: \"wss://chat.example.com/\"}}\n";
        let config = crate::load_str("t.yaml", yaml).unwrap_or_else(|errors| panic!("{errors}"));
        let crate::CheckKind::Websocket(check) = &config.checks[0].kind else { panic!("not a websocket check") };
        let outcome = check.representative();
        let mut names = Names::default();
        series(&outcome, &WebsocketDetails::read(&outcome.details), &mut names);
        for family in FAMILIES {
            assert!(names.0.iter().any(|name| name.starts_with(&format!("{}{{", family.name))), "{}", family.name);
        }
        for phase in PHASES {
            assert!(names.0.contains(&format!("probe_websocket_duration_seconds{{phase={phase}}}")), "{phase}");
        }
        assert!(names.0.iter().any(|name| name.starts_with("probe_ssl_earliest_cert_expiry")), "{:?}", names.0);
        assert!(names.0.contains(&"probe_ip_protocol{}".to_owned()), "{:?}", names.0);
    }
}
