//! The `dns` kind's series: blackbox_exporter's `probe_dns_*`.

use super::DnsDetails;
use crate::Outcome;
use crate::details::Details as _;
use crate::metrics::{Family, SeriesWriter, flag, gauge};

/// The families only `dns` writes.
pub(super) const FAMILIES: &[Family] = &[
    gauge("probe_dns_duration_seconds", "Duration of DNS request by phase"),
    gauge("probe_dns_answer_rrs", "Returns number of entries in the answer resource record list"),
    gauge("probe_dns_authority_rrs", "Returns number of entries in the authority resource record list"),
    gauge("probe_dns_additional_rrs", "Returns number of entries in the additional resource record list"),
    gauge("probe_dns_query_succeeded", "Displays whether or not the query was executed successfully"),
    gauge("probe_dns_serial", "Returns the serial number of the zone"),
];

pub(super) fn series(outcome: &Outcome, details: &DnsDetails, out: &mut dyn SeriesWriter) {
    crate::metrics::lookup(out, outcome);
    crate::metrics::ip_protocol(out, details.address());
    let answer = details.answer.clone().unwrap_or_default();
    out.phases("probe_dns_duration_seconds", outcome, &["resolve", "connect", "request"]);
    out.gauge("probe_dns_answer_rrs", answer.answer_rrs as f64);
    out.gauge("probe_dns_authority_rrs", answer.authority_rrs as f64);
    out.gauge("probe_dns_additional_rrs", answer.additional_rrs as f64);
    out.gauge("probe_dns_query_succeeded", flag(answer.rcode.is_some()));
    if let Some(serial) = answer.serial {
        out.gauge("probe_dns_serial", f64::from(serial));
    }
}
