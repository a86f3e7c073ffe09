//! The `http` kind: one request (and its redirects) on fresh connections, timed phase by phase
//! as blackbox_exporter times them, and judged against its `expect` block.

mod details;
pub(crate) mod execute;
mod metrics;
pub(crate) mod spec;

pub use details::{HttpDetails, HttpResponse};
pub use spec::{
    BasicAuthSpec, HttpCheck, HttpExpect, HttpExpectSpec, HttpSpec, HttpVersion, IpVersion, JsonAssert, JsonAssertSpec,
    JsonTest, PHASES, StatusMatch, StatusSpec,
};

use crate::details::Details as _;

impl crate::kind::KindCheck for HttpCheck {
    const KIND: crate::Kind = crate::Kind::Http;
    type Spec = HttpSpec;
    type Details = HttpDetails;
    const FAMILIES: &'static [crate::metrics::Family] = metrics::FAMILIES;
    const SM_CHECK_NAME: &'static str = "http";

    fn series(outcome: &crate::Outcome, details: &HttpDetails, out: &mut dyn crate::metrics::SeriesWriter) {
        metrics::series(outcome, details, out);
    }

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Http(Box::new(self))
    }

    /// The URL.
    fn degraded_after(&self) -> Option<std::time::Duration> {
        self.expect.degraded_after
    }

    fn target(&self) -> String {
        self.url.to_string()
    }

    fn ip_target(&self) -> Option<crate::net::IpTarget> {
        Some(crate::net::IpTarget::new(
            self.url.host_str().unwrap_or_default(),
            self.url.port_or_known_default().unwrap_or(80),
            self.ip_version,
            self.ips,
        ))
    }

    fn representative(&self) -> crate::Outcome {
        let https = self.url.scheme() == "https";
        let response = HttpResponse {
            status_code: 200,
            http_version: "1.1".to_owned(),
            content_length: 1024,
            tls: https,
            ..HttpResponse::default()
        };
        let tls = if https { crate::tls::representative_tls() } else { crate::tls::TlsPart::default() };
        let mut clocks = crate::clock::PhaseClocks::default();
        clocks.note("resolve", crate::clock::Clock::Stopwatch);
        clocks.note("connect", crate::clock::Clock::KernelRtt);
        if https {
            clocks.note("tls", crate::clock::Clock::Stopwatch);
        }
        clocks.note("processing", crate::clock::Clock::KernelRx);
        clocks.note("transfer", crate::clock::Clock::Stopwatch);
        let details = HttpDetails {
            response: Some(response),
            tls,
            clocks: Some(clocks),
            remote_address: Some("192.0.2.1:443".to_owned()),
        };
        crate::Outcome::representative(&["resolve", "connect", "tls", "processing", "transfer"], details.to_value())
    }
}
