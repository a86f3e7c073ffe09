//! The `websocket` kind: a WebSocket connection (`ws://` or `wss://`), a conversation of sent and awaited
//! messages, and the closing handshake, timed phase by phase. blackbox_exporter has no such prober; its series
//! are named in its style (`probe_websocket_*`).

mod details;
mod execute;
mod metrics;
mod session;
mod spec;

pub use details::{Conversation, HandshakeDetails, WebsocketDetails};
pub use spec::{
    CloseExpect, Expect, Matcher, PHASES, WebsocketCheck, WebsocketCloseSpec, WebsocketExpectSpec, WebsocketJsonSpec,
    WebsocketSpec, WebsocketStep, WebsocketStepSpec,
};

use crate::details::Details as _;
use crate::tls::TlsPart;

impl crate::kind::KindCheck for WebsocketCheck {
    const KIND: crate::Kind = crate::Kind::Websocket;
    type Spec = WebsocketSpec;
    type Details = WebsocketDetails;
    const FAMILIES: &'static [crate::metrics::Family] = metrics::FAMILIES;
    /// Grafana synthetic monitoring has no WebSocket check; its TCP dashboard shows what every kind reports.
    const SM_CHECK_NAME: &'static str = "tcp";

    fn series(outcome: &crate::Outcome, details: &WebsocketDetails, out: &mut dyn crate::metrics::SeriesWriter) {
        metrics::series(outcome, details, out);
    }

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Websocket(Box::new(self))
    }

    /// The URL.
    fn target(&self) -> String {
        self.url.to_string()
    }

    fn representative(&self) -> crate::Outcome {
        let wss = self.url.scheme() == "wss";
        let details = WebsocketDetails {
            remote_address: Some("192.0.2.1:443".to_owned()),
            handshake: Some(HandshakeDetails { status_code: 101, subprotocol: None }),
            conversation: Some(Conversation { close_code: Some(1000), ..Conversation::default() }),
            tls: if wss { crate::tls::representative_tls() } else { TlsPart::default() },
        };
        crate::Outcome::representative(&PHASES, details.to_value())
    }
}
