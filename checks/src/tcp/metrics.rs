//! The `tcp` kind's series: blackbox_exporter's tcp prober writes none of its own, only the shared ones.

use super::TcpDetails;
use crate::details::Details as _;
use crate::metrics::{Family, SeriesWriter, flag};
use crate::{Outcome, Reason};

/// The families only `tcp` writes: none.
pub(super) const FAMILIES: &[Family] = &[];

pub(super) fn series(outcome: &Outcome, details: &TcpDetails, out: &mut dyn SeriesWriter) {
    crate::metrics::lookup(out, outcome);
    crate::metrics::ip_protocol(out, details.address());
    out.gauge("probe_failed_due_to_regex", flag(outcome.reason == Some(Reason::Assertion)));
    crate::metrics::tls_part(out, &details.tls);
}
