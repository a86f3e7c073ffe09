//! The `icmp` kind's series: blackbox_exporter's `probe_icmp_*` and the packet counts.

use super::IcmpDetails;
use crate::Outcome;
use crate::details::Details as _;
use crate::metrics::{Family, SeriesWriter, gauge};

/// The families only `icmp` writes.
pub(super) const FAMILIES: &[Family] = &[
    gauge("probe_icmp_duration_seconds", "Duration of icmp request by phase"),
    gauge("probe_icmp_duration_rtt_min_seconds", "Minimum duration of round trip time phase"),
    gauge("probe_icmp_duration_rtt_max_seconds", "Maximum duration of round trip time phase"),
    gauge("probe_icmp_duration_rtt_stddev_seconds", "Standard deviation of round trip time phase"),
    gauge("probenet_icmp_packets_sent", "Number of ICMP echo requests sent by the latest run"),
    gauge("probenet_icmp_packets_received", "Number of ICMP echo replies received by the latest run"),
];

pub(super) fn series(outcome: &Outcome, details: &IcmpDetails, out: &mut dyn SeriesWriter) {
    crate::metrics::lookup(out, outcome);
    crate::metrics::ip_protocol(out, details.address());
    out.phases("probe_icmp_duration_seconds", outcome, &["resolve", "setup", "rtt"]);
    if let Some(rtt) = details.rtt_seconds {
        out.gauge("probe_icmp_duration_rtt_min_seconds", rtt.min);
        out.gauge("probe_icmp_duration_rtt_max_seconds", rtt.max);
        out.gauge("probe_icmp_duration_rtt_stddev_seconds", rtt.stddev);
    }
    out.gauge("probenet_icmp_packets_sent", details.sent as f64);
    out.gauge("probenet_icmp_packets_received", details.received as f64);
}
