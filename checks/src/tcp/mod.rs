//! The `tcp` kind: a TCP connection to `host:port` and an optional send/expect script over it, as
//! blackbox_exporter's tcp prober with `query_response`.

mod execute;
mod spec;

pub use spec::{TcpCheck, TcpSpec, TcpStep, TcpStepSpec};

impl crate::kind::KindCheck for TcpCheck {
    const KIND: crate::Kind = crate::Kind::Tcp;
    type Spec = TcpSpec;

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Tcp(self)
    }

    /// `host:port`.
    fn target(&self) -> String {
        crate::net::host_port(&self.host, self.port)
    }

    fn representative(&self) -> crate::Outcome {
        let mut details = serde_json::json!({"address": "192.0.2.1:25"});
        if self.tls.is_some() {
            crate::tls::add_representative_tls(&mut details);
        }
        crate::Outcome::representative(&["resolve", "connect"], details)
    }
}
