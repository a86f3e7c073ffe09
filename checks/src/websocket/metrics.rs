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
