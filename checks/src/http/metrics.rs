//! The `http` kind's series: blackbox_exporter's `probe_http_*`.

use super::HttpDetails;
use crate::details::Details as _;
use crate::metrics::{Family, SeriesWriter, flag, gauge};
use crate::{Outcome, Reason};

/// The families only `http` writes.
pub(super) const FAMILIES: &[Family] = &[
    gauge("probe_http_duration_seconds", "Duration of http request by phase, summed over all redirects"),
    gauge("probe_http_status_code", "Response HTTP status code"),
    gauge("probe_http_version", "Returns the version of HTTP of the probe response"),
    gauge("probe_http_ssl", "Indicates if SSL was used for the final redirect"),
    gauge("probe_http_redirects", "The number of redirects"),
    gauge("probe_http_content_length", "Length of http content response"),
    gauge("probe_http_uncompressed_body_length", "Length of uncompressed response body"),
];

pub(super) fn series(outcome: &Outcome, details: &HttpDetails, out: &mut dyn SeriesWriter) {
    crate::metrics::lookup(out, outcome);
    crate::metrics::ip_protocol(out, details.address());
    let response = details.response.clone().unwrap_or_default();
    out.phases("probe_http_duration_seconds", outcome, &["resolve", "connect", "tls", "processing", "transfer"]);
    out.gauge("probe_http_status_code", f64::from(response.status_code));
    out.gauge("probe_http_version", response.http_version.parse::<f64>().unwrap_or(0.0));
    out.gauge("probe_http_ssl", flag(response.tls));
    out.gauge("probe_http_redirects", f64::from(response.redirects));
    let length = response.content_length as f64;
    out.gauge("probe_http_content_length", length);
    out.gauge("probe_http_uncompressed_body_length", length);
    out.gauge("probe_failed_due_to_regex", flag(matches!(outcome.reason, Some(Reason::Body | Reason::Header))));
    crate::metrics::tls_part(out, &details.tls);
}
