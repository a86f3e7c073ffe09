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

#[cfg(test)]
mod tests;
