//! The `browser` kind's series: navigation timing, web vitals and errors of the journey's first page.

use super::BrowserDetails;
use crate::Outcome;
use crate::metrics::{Family, SeriesWriter, gauge};

/// The families only `browser` writes.
pub(super) const FAMILIES: &[Family] = &[
    gauge("probenet_browser_navigation_seconds", "Navigation timing of the first page, by phase"),
    gauge("probenet_browser_web_vital_seconds", "Web vitals of the first page measured in seconds (lcp, inp)"),
    gauge("probenet_browser_cumulative_layout_shift", "Cumulative layout shift of the first page"),
    gauge("probenet_browser_console_errors", "Number of console errors and uncaught exceptions"),
    gauge("probenet_browser_failed_requests", "Number of failed network requests"),
];

pub(super) fn series(_outcome: &Outcome, details: &BrowserDetails, out: &mut dyn SeriesWriter) {
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
    let vitals = details.web_vitals.clone().unwrap_or_default();
    for (vital, seconds) in [("lcp", vitals.lcp_seconds), ("inp", vitals.inp_seconds)] {
        if let Some(seconds) = seconds {
            out.push("probenet_browser_web_vital_seconds", &[("vital", vital)], seconds);
        }
    }
    if let Some(cls) = vitals.cls {
        out.gauge("probenet_browser_cumulative_layout_shift", cls);
    }
    out.gauge("probenet_browser_console_errors", details.console_errors as f64);
    out.gauge("probenet_browser_failed_requests", details.failed_requests as f64);
}
