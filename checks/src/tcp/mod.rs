//! The `tcp` kind: a TCP connection to `host:port` and an optional send/expect script over it, as
//! blackbox_exporter's tcp prober with `query_response`.

mod details;
mod execute;
mod metrics;
mod spec;

pub use details::{Conversation, TcpDetails};
pub use spec::{TcpCheck, TcpSpec, TcpStep, TcpStepSpec};

use crate::details::Details as _;
use crate::tls::TlsPart;

impl crate::kind::KindCheck for TcpCheck {
    const KIND: crate::Kind = crate::Kind::Tcp;
    type Spec = TcpSpec;
    type Details = TcpDetails;
    const FAMILIES: &'static [crate::metrics::Family] = metrics::FAMILIES;
    const SM_CHECK_NAME: &'static str = "tcp";

    fn series(outcome: &crate::Outcome, details: &TcpDetails, out: &mut dyn crate::metrics::SeriesWriter) {
        metrics::series(outcome, details, out);
    }

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Tcp(self)
    }

    /// `host:port`.
    fn target(&self) -> String {
        crate::net::host_port(&self.host, self.port)
    }

    fn ip_target(&self) -> Option<crate::net::IpTarget> {
        Some(crate::net::IpTarget::new(&self.host, self.port, self.ip_version, self.ips))
    }

    fn representative(&self) -> crate::Outcome {
        let mut clocks = crate::clock::PhaseClocks::default();
        clocks.note("resolve", crate::clock::Clock::Stopwatch);
        clocks.note("connect", crate::clock::Clock::KernelRtt);
        let details = TcpDetails {
            remote_address: Some("192.0.2.1:25".to_owned()),
            conversation: Some(Conversation::default()),
            tls: if self.tls.is_some() { crate::tls::representative_tls() } else { TlsPart::default() },
            clocks: Some(clocks),
        };
        crate::Outcome::representative(&["resolve", "connect"], details.to_value())
    }
}
