//! The `dns` kind: one query to a chosen server (or the system resolver's first nameserver) over UDP or TCP,
//! timed phase by phase as blackbox_exporter times it, and judged against its `expect` block.

mod execute;
mod judge;
mod render;
mod spec;

pub use spec::{DnsCheck, DnsExpect, DnsExpectSpec, DnsServer, DnsSpec, SectionExpect};
