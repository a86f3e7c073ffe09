//! The `browser` kind: a scripted journey in headless Chromium.
//!
//! Validated here. Executing it needs Chromium, whose protocol code lives in its own crate
//! (`probenet-browser`); the binary installs that runner at start-up, and without one a run fails with reason
//! `unsupported`.

mod spec;

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
        let details = serde_json::json!({
            "navigation": {"ttfb_seconds": 0.1, "dom_content_loaded_seconds": 0.3, "load_seconds": 0.5},
            "web_vitals": {"lcp_seconds": 0.6, "inp_seconds": 0.05, "cls": 0.01},
            "console_errors": 0, "failed_requests": 0});
        crate::Outcome::representative(&[], details)
    }
}

#[cfg(test)]
mod tests;
