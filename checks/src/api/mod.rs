//! The `api` kind: a sequence of HTTP(S) requests, each on `http`'s client and judged by `http`'s assertions,
//! where later requests use values captured from earlier responses (`${steps.<step>.<variable>}`).
//! blackbox_exporter has no such prober; its series are named in its style (`probe_api_*`).

mod details;
mod execute;
mod metrics;
mod spec;
mod vars;

pub use details::{ApiDetails, Captured, StepDetails, StepPhases};
pub use spec::{ApiCheck, ApiSpec, ApiStep, ApiStepSpec, Capture, CaptureFrom, CaptureSpec, MAX_STEPS};
pub use vars::StepText;

use crate::details::Details as _;

impl crate::kind::KindCheck for ApiCheck {
    const KIND: crate::Kind = crate::Kind::Api;
    type Spec = ApiSpec;
    type Details = ApiDetails;
    const FAMILIES: &'static [crate::metrics::Family] = metrics::FAMILIES;
    /// Grafana synthetic monitoring calls its multi-step HTTP check `multihttp`.
    const SM_CHECK_NAME: &'static str = "multihttp";

    fn series(outcome: &crate::Outcome, details: &ApiDetails, out: &mut dyn crate::metrics::SeriesWriter) {
        metrics::series(outcome, details, out);
    }

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Api(Box::new(self))
    }

    /// The first step's URL as written.
    fn target(&self) -> String {
        self.steps.first().map(|step| step.url.written().to_owned()).unwrap_or_default()
    }

    fn representative(&self) -> crate::Outcome {
        let https = self.steps.iter().any(|step| step.http.url.scheme() == "https");
        let phases = StepPhases { resolve: 0.01, connect: 0.01, tls: 0.01, processing: 0.01, transfer: 0.01 };
        let steps = self
            .steps
            .iter()
            .map(|step| StepDetails {
                name: step.name.clone(),
                url: step.url.written().to_owned(),
                passed: true,
                status_code: 200,
                http_version: "1.1".to_owned(),
                content_length: 1024,
                duration_seconds: 0.05,
                phases,
                ..StepDetails::default()
            })
            .collect();
        let tls = if https { crate::tls::representative_tls() } else { crate::tls::TlsPart::default() };
        let details = ApiDetails { steps, failed_step: None, tls };
        crate::Outcome::representative(&crate::http::PHASES, details.to_value())
    }
}
