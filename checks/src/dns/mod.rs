//! The `dns` kind: one query to a chosen server (or the system resolver's first nameserver) over UDP or TCP,
//! timed phase by phase as blackbox_exporter times it, and judged against its `expect` block.

mod details;
mod execute;
mod judge;
mod metrics;
mod render;
mod spec;

pub use details::{DnsAnswer, DnsDetails, Flags};
pub use spec::{DnsCheck, DnsExpect, DnsExpectSpec, DnsServer, DnsSpec, SectionExpect};

use crate::details::Details as _;

impl crate::kind::KindCheck for DnsCheck {
    const KIND: crate::Kind = crate::Kind::Dns;
    type Spec = DnsSpec;
    type Details = DnsDetails;
    const FAMILIES: &'static [crate::metrics::Family] = metrics::FAMILIES;
    const SM_CHECK_NAME: &'static str = "dns";

    fn series(outcome: &crate::Outcome, details: &DnsDetails, out: &mut dyn crate::metrics::SeriesWriter) {
        metrics::series(outcome, details, out);
    }

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Dns(self)
    }

    /// The name looked up.
    fn target(&self) -> String {
        self.query.clone()
    }

    fn representative(&self) -> crate::Outcome {
        let answer = DnsAnswer {
            rcode: Some("NOERROR".to_owned()),
            answer_rrs: 1,
            serial: self.record.eq_ignore_ascii_case("SOA").then_some(2026010101),
            ..DnsAnswer::default()
        };
        let details =
            DnsDetails { server: Some("192.0.2.53:53".to_owned()), answer: Some(answer), ..DnsDetails::default() };
        crate::Outcome::representative(&["resolve", "connect", "request"], details.to_value())
    }
}
