//! The `icmp` kind: echo requests (ping) to a host over IPv4 or IPv6, from an unprivileged ICMP datagram
//! socket when the system allows it, else a raw socket; judged on loss and round-trip time.

mod details;
mod execute;
mod metrics;
mod packet;
mod socket;
mod spec;

pub use details::{IcmpDetails, Reply, Rtt};
pub use spec::{IcmpCheck, IcmpExpectSpec, IcmpSpec};

use crate::details::Details as _;

impl crate::kind::KindCheck for IcmpCheck {
    const KIND: crate::Kind = crate::Kind::Icmp;
    type Spec = IcmpSpec;
    type Details = IcmpDetails;
    const FAMILIES: &'static [crate::metrics::Family] = metrics::FAMILIES;
    const SM_CHECK_NAME: &'static str = "ping";

    fn series(outcome: &crate::Outcome, details: &IcmpDetails, out: &mut dyn crate::metrics::SeriesWriter) {
        metrics::series(outcome, details, out);
    }

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Icmp(self)
    }

    /// The host.
    fn target(&self) -> String {
        self.host.clone()
    }

    fn timeout_problem(&self, timeout: std::time::Duration) -> Option<(&'static [&'static str], String)> {
        self.too_long_for(timeout).map(|message| (&["interval", "count"][..], message))
    }

    fn ip_target(&self) -> Option<crate::net::IpTarget> {
        Some(crate::net::IpTarget::new(&self.host, 0, self.ip_version, self.ips))
    }

    fn representative(&self) -> crate::Outcome {
        let details = IcmpDetails {
            address: "192.0.2.1".to_owned(),
            sent: 3,
            received: 3,
            rtt_seconds: Some(Rtt { min: 0.01, avg: 0.015, max: 0.02, stddev: 0.001 }),
            ..IcmpDetails::default()
        };
        crate::Outcome::representative(&["resolve", "setup", "rtt"], details.to_value())
    }
}
