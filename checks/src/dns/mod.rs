//! The `dns` kind: one query to a chosen server (or the system resolver's first nameserver) over UDP or TCP,
//! timed phase by phase as blackbox_exporter times it, and judged against its `expect` block.

mod execute;
mod judge;
mod render;
mod spec;

pub use spec::{DnsCheck, DnsExpect, DnsExpectSpec, DnsServer, DnsSpec, SectionExpect};

impl crate::kind::KindCheck for DnsCheck {
    const KIND: crate::Kind = crate::Kind::Dns;
    type Spec = DnsSpec;

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Dns(self)
    }

    /// The name looked up.
    fn target(&self) -> String {
        self.query.clone()
    }

    fn representative(&self) -> crate::Outcome {
        let mut details = serde_json::json!({"server": "192.0.2.53:53", "rcode": "NOERROR", "answer_rrs": 1,
            "authority_rrs": 0, "additional_rrs": 0});
        if self.record.eq_ignore_ascii_case("SOA") {
            details["serial"] = serde_json::json!(2026010101);
        }
        crate::Outcome::representative(&["resolve", "connect", "request"], details)
    }
}
