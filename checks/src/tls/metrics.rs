//! The `tls` kind's series: only the shared TLS session and certificate ones.

use super::TlsDetails;
use crate::Outcome;
use crate::details::Details as _;
use crate::metrics::{Family, SeriesWriter};

/// The families only `tls` writes: none (its certificate series are the ones `http` and `tcp` write too).
pub(super) const FAMILIES: &[Family] = &[];

pub(super) fn series(outcome: &Outcome, details: &TlsDetails, out: &mut dyn SeriesWriter) {
    crate::metrics::lookup(out, outcome);
    crate::metrics::ip_protocol(out, details.address());
    crate::metrics::tls_series(
        out,
        details.chain.as_ref(),
        details.version.as_deref(),
        details.cipher_suite.as_deref(),
    );
}
