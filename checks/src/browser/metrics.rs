//! The `browser` kind's series: the names, units and labels of Grafana synthetic monitoring's browser checks
//! (k6 browser's metrics with the `probe_` prefix: web vitals and request durations in milliseconds, data in
//! bytes, one series per document with its `url`), plus probenet's navigation timing and error counts.

use super::BrowserDetails;
use crate::Outcome;
use crate::metrics::{Family, SeriesWriter, gauge};

/// The families only `browser` writes.
pub(super) const FAMILIES: &[Family] = &[
    gauge("probe_browser_web_vital_fcp", "First Contentful Paint of the page, in milliseconds"),
    gauge("probe_browser_web_vital_lcp", "Largest Contentful Paint of the page, in milliseconds"),
    gauge("probe_browser_web_vital_ttfb", "Time to first byte of the page, in milliseconds"),
    gauge("probe_browser_web_vital_cls", "Cumulative Layout Shift of the page"),
    gauge("probe_browser_web_vital_inp", "The longest interaction on the page, in milliseconds"),
    gauge("probe_browser_http_req_duration", "Duration of the page's document request, in milliseconds"),
    gauge("probe_browser_data_sent", "Bytes sent for the page's document request"),
    gauge("probe_browser_data_received", "Bytes received for the page's document response"),
    gauge("probenet_browser_navigation_seconds", "Navigation timing of the first page, by phase"),
    gauge("probenet_browser_console_errors", "Number of console errors and uncaught exceptions"),
    gauge("probenet_browser_failed_requests", "Number of failed network requests"),
];

pub(super) fn series(_outcome: &Outcome, details: &BrowserDetails, out: &mut dyn SeriesWriter) {
    // One series per document (the last measurement of a URL visited twice), as k6 tags them by `url`.
    let mut pages: Vec<&super::PageDetails> = Vec::new();
    for page in &details.pages {
        match pages.iter_mut().find(|seen| seen.navigation.url == page.navigation.url) {
            Some(seen) => *seen = page,
            None => pages.push(page),
        }
    }
    let ms = |seconds: Option<f64>| seconds.map(|seconds| (seconds * 1000.0).round());
    for page in pages {
        let (navigation, vitals) = (&page.navigation, &page.vitals);
        let url = [("url", navigation.url.as_str())];
        for (name, value) in [
            ("probe_browser_web_vital_fcp", ms(vitals.fcp_seconds)),
            ("probe_browser_web_vital_lcp", ms(vitals.lcp_seconds)),
            ("probe_browser_web_vital_ttfb", ms(navigation.ttfb_seconds)),
            ("probe_browser_web_vital_cls", vitals.cls),
            ("probe_browser_web_vital_inp", ms(vitals.inp_seconds)),
            ("probe_browser_http_req_duration", ms(navigation.request_seconds)),
            ("probe_browser_data_sent", navigation.sent_bytes.map(|bytes| bytes as f64)),
            ("probe_browser_data_received", navigation.received_bytes.map(|bytes| bytes as f64)),
        ] {
            if let Some(value) = value {
                out.push(name, &url, value);
            }
        }
    }
    let navigation = details.navigation.clone().unwrap_or_default();
    for (phase, seconds) in [
        ("ttfb", navigation.ttfb_seconds),
        ("dom_content_loaded", navigation.dom_content_loaded_seconds),
        ("load", navigation.load_seconds),
    ] {
        if let Some(seconds) = seconds {
            out.push("probenet_browser_navigation_seconds", &[("phase", phase)], seconds);
        }
    }
    out.gauge("probenet_browser_console_errors", details.console_errors as f64);
    out.gauge("probenet_browser_failed_requests", details.failed_requests as f64);
}
