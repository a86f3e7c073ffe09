//! The `browser` kind: a scripted journey in headless Chromium.
//!
//! Validated here; executing it is the browser issue's work, and until then a run fails with reason
//! `unsupported`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};
use crate::secret::Template;

/// A scripted journey in a headless browser.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowserSpec {
    /// The steps, run in order; the journey fails at the first step that fails.
    pub steps: Vec<StepSpec>,
}

/// One step of a journey.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    /// Open a URL.
    Goto(String),
    /// Click the element matching a CSS selector.
    Click(String),
    /// Type text into the element matching a selector. The text may hold secrets.
    Fill(FillSpec),
    /// Wait until the page shows this text.
    ExpectText(String),
    /// Wait until the page title is this text.
    ExpectTitle(String),
    /// Wait until an element matching this CSS selector exists.
    WaitFor(String),
}

/// The options of a `fill` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FillSpec {
    /// The CSS selector of the input.
    pub selector: String,
    /// The text to type. Write passwords as secret references.
    pub text: String,
}

/// A validated step.
#[derive(Debug, Clone)]
pub enum Step {
    /// Open a URL.
    Goto(url::Url),
    /// Click a selector.
    Click(String),
    /// Type into a selector.
    Fill {
        /// The selector.
        selector: String,
        /// The text.
        text: Template,
    },
    /// Wait for text.
    ExpectText(String),
    /// Wait for a title.
    ExpectTitle(String),
    /// Wait for a selector.
    WaitFor(String),
}

/// A validated browser check.
#[derive(Debug, Clone)]
pub struct BrowserCheck {
    /// The steps.
    pub steps: Vec<Step>,
}

impl KindSpec for BrowserSpec {
    type Check = BrowserCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<BrowserCheck> {
        if self.steps.is_empty() {
            cx.error(&path.key("steps"), "a journey needs at least one step");
            return None;
        }
        if !matches!(self.steps.first(), Some(StepSpec::Goto(_))) {
            cx.error(&path.key("steps").index(0), "a journey starts with a `goto` step");
        }
        let mut ok = true;
        let mut steps = Vec::new();
        for (i, step) in self.steps.into_iter().enumerate() {
            let at = path.key("steps").index(i);
            let step = match step {
                StepSpec::Goto(text) => match url::Url::parse(&text) {
                    Ok(url) if matches!(url.scheme(), "http" | "https") => Some(Step::Goto(url)),
                    _ => {
                        cx.error(&at.key("goto"), format!("{text:?} is not an http or https URL"));
                        None
                    }
                },
                StepSpec::Click(selector) => Some(Step::Click(selector)),
                StepSpec::Fill(fill) => cx
                    .template(&at.key("fill").key("text"), &fill.text)
                    .map(|text| Step::Fill { selector: fill.selector, text }),
                StepSpec::ExpectText(text) => Some(Step::ExpectText(text)),
                StepSpec::ExpectTitle(text) => Some(Step::ExpectTitle(text)),
                StepSpec::WaitFor(selector) => Some(Step::WaitFor(selector)),
            };
            match step {
                Some(step) => steps.push(step),
                None => ok = false,
            }
        }
        ok.then_some(BrowserCheck { steps })
    }
}

impl BrowserCheck {
    /// The first URL of the journey, as the `instance` label shows it.
    pub fn target(&self) -> String {
        self.steps
            .iter()
            .find_map(|step| match step {
                Step::Goto(url) => Some(url.to_string()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

impl crate::run::Execute for BrowserCheck {
    async fn execute(&self, cx: &crate::run::RunContext) -> crate::Outcome {
        match crate::run::browser_runner() {
            Some(runner) => runner.run(self, cx).await,
            None => crate::run::unsupported("browser"),
        }
    }
}
