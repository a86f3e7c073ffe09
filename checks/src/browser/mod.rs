//! The `browser` kind: a scripted journey in headless Chromium.
//!
//! Validated here. Executing it needs Chromium, whose protocol code lives in its own crate
//! (`probenet-browser`); the binary installs that runner at start-up, and without one a run fails with reason
//! `unsupported`.

mod details;
mod metrics;
mod spec;

pub use details::{
    BrowserDetails, BrowserInfo, FailedRequest, FailedStep, Navigation, PageDetails, StepDetails, WebVitals,
};
pub use spec::{
    Action, BrowserCheck, BrowserExpect, BrowserExpectSpec, BrowserSpec, CountSpec, FillSpec, KEYS, MAX_SLEEP,
    MAX_STEPS, PressSpec, SelectSpec, Step, StepSpec, StringOr, TextSpec, WaitFor, WaitForSpec,
};

impl crate::run::Execute for BrowserCheck {
    async fn execute(&self, cx: &crate::run::RunContext) -> crate::Outcome {
        match crate::run::browser_runner() {
            Some(runner) => runner.run(self, cx).await,
            None => crate::run::unsupported("browser"),
        }
    }
}

impl crate::kind::KindCheck for BrowserCheck {
    const KIND: crate::Kind = crate::Kind::Browser;
    type Spec = BrowserSpec;
    type Details = BrowserDetails;
    const FAMILIES: &'static [crate::metrics::Family] = metrics::FAMILIES;
    const SM_CHECK_NAME: &'static str = "browser";

    fn series(outcome: &crate::Outcome, details: &BrowserDetails, out: &mut dyn crate::metrics::SeriesWriter) {
        metrics::series(outcome, details, out);
    }

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Browser(self)
    }

    /// The first URL of the journey.
    fn target(&self) -> String {
        self.steps
            .iter()
            .find_map(|step| match &step.action {
                Action::Goto(url) => Some(url.to_string()),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn representative(&self) -> crate::Outcome {
        let navigation = Navigation {
            url: self.target(),
            status: Some(200),
            ttfb_seconds: Some(0.1),
            dom_content_loaded_seconds: Some(0.3),
            load_seconds: Some(0.5),
            request_seconds: Some(0.12),
            sent_bytes: Some(400),
            received_bytes: Some(20_000),
        };
        let vitals =
            WebVitals { fcp_seconds: Some(0.4), lcp_seconds: Some(0.6), cls: Some(0.01), inp_seconds: Some(0.05) };
        let details = BrowserDetails {
            navigation: Some(navigation.clone()),
            web_vitals: Some(vitals.clone()),
            pages: vec![PageDetails { navigation, vitals }],
            ..BrowserDetails::default()
        };
        crate::Outcome::representative(&[], crate::details::Details::to_value(&details))
    }
}

#[cfg(test)]
mod tests;
