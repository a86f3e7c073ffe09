//! The `icmp` kind: echo requests (ping) to a host over IPv4 or IPv6, from an unprivileged ICMP datagram
//! socket when the system allows it, else a raw socket; judged on loss and round-trip time.

mod execute;
mod packet;
mod socket;
mod spec;

pub use spec::{IcmpCheck, IcmpExpectSpec, IcmpSpec};
