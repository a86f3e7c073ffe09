//! Running the steps of one journey on one page, each timed as a phase, and what a failing step leaves behind:
//! its error, the page's URL and a screenshot.

use std::time::Duration;

use probenet_checks::browser::{Action, BrowserCheck, Step, WaitFor};
use probenet_checks::outcome::{Artifact, Assertion, Reason};
use probenet_checks::run::RunContext;
use serde_json::Value;
use tokio::time::Instant;

use crate::driver::{self, Driver, Fail, Probe, Waited};
use crate::observer::Observer;
use crate::vitals::{PageSnapshot, Pages, SNAPSHOT, settled_snapshot};

/// When a journey must be done: its steps end at `steps`, the diagnostics of a failure (URL, screenshot,
/// final measurements) at `end`, just before the runtime's own timeout.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The check's timeout.
    pub timeout: Duration,
    /// The end for steps.
    pub steps: Instant,
    /// The end for everything.
    pub end: Instant,
}

impl Budget {
    /// The budget of a run with this timeout, starting now.
    pub fn new(timeout: Duration) -> Self {
        let now = Instant::now();
        let end = now + timeout.saturating_sub(Duration::from_millis(50));
        let reserve = (timeout / 5).clamp(Duration::from_millis(300), Duration::from_secs(3));
        Self { timeout, steps: end.checked_sub(reserve).unwrap_or(now), end }
    }
}

/// How one step went.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// 1-based.
    pub number: usize,
    /// The action's name.
    pub action: &'static str,
    /// What it acted on.
    pub target: String,
    /// How long it took.
    pub seconds: f64,
    /// Why it failed, if it did.
    pub failure: Option<(Reason, String)>,
}

/// Everything a journey produced, for the report.
#[derive(Debug, Default)]
pub struct Journey {
    /// The steps that ran, the failing one last.
    pub steps: Vec<StepReport>,
    /// The URL at the end (or at the failure).
    pub url: Option<String>,
    /// The title at the end.
    pub title: Option<String>,
    /// Step assertions (`expect_*`, `eval`).
    pub assertions: Vec<Assertion>,
    /// Screenshots.
    pub artifacts: Vec<Artifact>,
    /// Measurements of each document.
    pub pages: Pages,
    /// The selectors of the fields filled with a secret: hidden in every screenshot.
    pub secret_fields: Vec<String>,
}

impl Journey {
    /// The failing step, if one failed.
    pub fn failed(&self) -> Option<&StepReport> {
        self.steps.last().filter(|step| step.failure.is_some())
    }
}

/// A step's failure before it is reported.
struct StepFailure {
    reason: Reason,
    message: String,
    /// For `expect_*` steps: the observed value.
    observed: Option<String>,
}

impl StepFailure {
    fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into(), observed: None }
    }
}

/// Runs the check's steps on the page until one fails or the budget ends.
pub async fn run(
    check: &BrowserCheck,
    cx: &RunContext,
    driver: &Driver<'_>,
    observer: &mut Observer,
    budget: Budget,
) -> Journey {
    let mut journey = Journey::default();
    for (index, step) in check.steps.iter().enumerate() {
        let number = index + 1;
        let action = step.action.name();
        let started = Instant::now();
        let (until, own_limit) = match step.timeout {
            Some(limit) if started + limit < budget.steps => (started + limit, true),
            _ => (budget.steps, false),
        };
        let result = if started >= budget.steps {
            Err(StepFailure::new(
                Reason::Timeout,
                format!(
                    "not started: the check's timeout of {} is spent",
                    probenet_checks::duration::format(budget.timeout)
                ),
            ))
        } else {
            run_step(step, cx, driver, until, own_limit, budget, &mut journey).await
        };
        let elapsed = started.elapsed();
        cx.phase(&format!("step_{number}_{action}"), elapsed);
        observer.drain();
        let failure = result.err();
        if let Some(assertion) = assertion_of(step, number, failure.as_ref()) {
            journey.assertions.push(assertion);
        }
        let failed = failure.is_some();
        journey.steps.push(StepReport {
            number,
            action,
            target: step.action.target(),
            seconds: elapsed.as_secs_f64(),
            failure: failure.map(|failure| (failure.reason, failure.message)),
        });
        if failed {
            diagnose(driver, number, budget, &mut journey).await;
            break;
        }
        if !matches!(step.action, Action::Sleep(_) | Action::Screenshot(_)) {
            measure(driver, budget.steps, &mut journey, false).await;
        }
    }
    if journey.failed().is_none() {
        let until = Instant::now().max(budget.steps).min(budget.end);
        measure(driver, until, &mut journey, true).await;
        if let Some(last) = journey.pages.all().last() {
            journey.url = Some(last.url.clone());
            journey.title = Some(last.title.clone());
        }
    }
    observer.drain();
    journey
}

/// The assertion an `expect_*` or `eval` step records, passed or not.
fn assertion_of(step: &Step, number: usize, failure: Option<&StepFailure>) -> Option<Assertion> {
    let expected = match &step.action {
        Action::ExpectText { text, .. } => format!("the text {text:?}"),
        Action::ExpectTitle(title) => format!("{title:?}"),
        Action::ExpectUrl(regex) => format!("a URL matching /{regex}/"),
        Action::ExpectCount { min, max: Some(max), .. } if min == max => format!("{min}"),
        Action::ExpectCount { min, max: Some(max), .. } => format!("{min} to {max}"),
        Action::ExpectCount { min, max: None, .. } => format!("at least {min}"),
        Action::Eval(expression) => format!("truthy: {expression}"),
        _ => return None,
    };
    let observed = match failure {
        None => "as expected".to_owned(),
        Some(failure) => failure.observed.clone().unwrap_or_else(|| failure.message.clone()),
    };
    Some(Assertion {
        name: format!("step_{number}_{}", step.action.name()),
        expected,
        observed,
        passed: failure.is_none(),
    })
}

async fn run_step(
    step: &Step,
    cx: &RunContext,
    driver: &Driver<'_>,
    until: Instant,
    own_limit: bool,
    budget: Budget,
    journey: &mut Journey,
) -> Result<(), StepFailure> {
    let limit = match (own_limit, step.timeout) {
        (true, Some(limit)) => format!("within the step's timeout of {}", probenet_checks::duration::format(limit)),
        _ => format!("within the check's timeout of {}", probenet_checks::duration::format(budget.timeout)),
    };
    // A condition that did not hold in the time there was (the step's or what is left of the check's) is an
    // assertion that failed; a page or a call that did not finish in that time is a timeout.
    let waited = |waited: Waited, what: &str| match waited {
        Waited::Deadline(seen) => {
            StepFailure { reason: Reason::Assertion, message: format!("{what} {limit}: {seen}"), observed: Some(seen) }
        }
        Waited::Fatal(message) => StepFailure { reason: Reason::Assertion, observed: Some(message.clone()), message },
        Waited::Unresponsive => StepFailure::new(Reason::Timeout, format!("{what} {limit}: the page did not respond")),
        Waited::Exited => exited(),
    };
    let failed = |fail: Fail, what: &str| match fail {
        Fail::Deadline => StepFailure::new(Reason::Timeout, format!("{what}: no result {limit}")),
        Fail::Exited => exited(),
        Fail::Js(message) | Fail::Cdp(message) => StepFailure::new(Reason::Protocol, format!("{what}: {message}")),
    };
    match &step.action {
        Action::Goto(url) => goto(driver, url, until, &limit).await,
        Action::Click(selector) => {
            let target = driver
                .poll(until, &driver::clickable(selector), driver::standard)
                .await
                .map_err(|w| waited(w, "no clickable element"))?;
            let x = target.get("x").and_then(Value::as_f64).unwrap_or_default();
            let y = target.get("y").and_then(Value::as_f64).unwrap_or_default();
            driver.click_at(until, x, y).await.map_err(|fail| failed(fail, "click"))
        }
        Action::Fill { selector, text } => {
            let secret = text.has_secrets();
            let text = cx.resolve(text).map_err(|error| StepFailure::new(Reason::Secret, error.0))?;
            let secret = secret && !text.is_empty();
            if secret && !journey.secret_fields.contains(selector) {
                journey.secret_fields.push(selector.clone());
            }
            let script = driver::fillable(selector, text.is_empty(), secret);
            driver.poll(until, &script, driver::standard).await.map_err(|w| waited(w, "no element to fill"))?;
            if text.is_empty() {
                return Ok(());
            }
            driver.insert_text(until, &text).await.map_err(|fail| failed(fail, "typing"))
        }
        Action::Press { key, selector } => {
            if let Some(selector) = selector {
                let script = driver::focusable(selector);
                driver.poll(until, &script, driver::standard).await.map_err(|w| waited(w, "no element to focus"))?;
            }
            driver.press(until, key).await.map_err(|fail| failed(fail, "pressing the key"))
        }
        Action::Select { selector, value } => {
            let script = driver::select(selector, value);
            driver.poll(until, &script, driver::standard).await.map(drop).map_err(|w| waited(w, "no option chosen"))
        }
        Action::WaitFor(WaitFor::Selector(selector)) => driver
            .poll(until, &driver::visible(selector), driver::standard)
            .await
            .map(drop)
            .map_err(|w| waited(w, "no visible element")),
        Action::WaitFor(WaitFor::Text(text)) | Action::ExpectText { text, selector: None } => driver
            .poll(until, &driver::shows_text(text, None), driver::standard)
            .await
            .map(drop)
            .map_err(|w| waited(w, "the text did not show")),
        Action::ExpectText { text, selector: Some(selector) } => driver
            .poll(until, &driver::shows_text(text, Some(selector)), driver::standard)
            .await
            .map(drop)
            .map_err(|w| waited(w, "the text did not show")),
        Action::WaitFor(WaitFor::Url(regex)) | Action::ExpectUrl(regex) => driver
            .poll(until, driver::URL, |value| match value.as_str() {
                Some(url) if regex.is_match(url) => Probe::Ready(()),
                Some(url) => Probe::Wait(url.to_owned()),
                None => Probe::Wait("no URL".to_owned()),
            })
            .await
            .map_err(|w| waited(w, "the URL did not match")),
        Action::ExpectTitle(title) => driver
            .poll(until, driver::TITLE, |value| match value.as_str() {
                Some(seen) if seen == title => Probe::Ready(()),
                Some(seen) => Probe::Wait(format!("{seen:?}")),
                None => Probe::Wait("no title".to_owned()),
            })
            .await
            .map_err(|w| waited(w, "the title did not match")),
        Action::ExpectCount { selector, min, max } => driver
            .poll(until, &driver::count(selector), |value| {
                if let Some(error) = value.get("error").and_then(Value::as_str) {
                    return Probe::Fatal(error.to_owned());
                }
                let count = value.get("count").and_then(Value::as_u64).unwrap_or_default();
                if count >= u64::from(*min) && max.is_none_or(|max| count <= u64::from(max)) {
                    Probe::Ready(())
                } else {
                    Probe::Wait(format!("{count}"))
                }
            })
            .await
            .map_err(|w| waited(w, "the count did not match")),
        Action::Eval(expression) => match driver.evaluate(until, expression, false).await {
            Ok(result) if driver::truthy(&result) => Ok(()),
            Ok(result) => {
                let seen = result.description.clone().unwrap_or_else(|| format!("{:?}", result.r#type).to_lowercase());
                Err(StepFailure {
                    reason: Reason::Assertion,
                    message: format!("the expression is falsy: {seen}"),
                    observed: Some(seen),
                })
            }
            Err(Fail::Js(message)) => Err(StepFailure {
                reason: Reason::Assertion,
                message: format!("the expression threw: {message}"),
                observed: Some(format!("threw {message}")),
            }),
            Err(fail) => Err(failed(fail, "evaluating")),
        },
        Action::Screenshot(name) => {
            let png = screenshot(driver, until, &journey.secret_fields, Some(budget.end))
                .await
                .map_err(|fail| failed(fail, "screenshot"))?;
            journey.artifacts.push(png_artifact(format!("{name}.png"), png));
            Ok(())
        }
        Action::Sleep(duration) => {
            let wake = Instant::now() + *duration;
            if wake > until {
                tokio::time::sleep_until(until).await;
                return Err(StepFailure::new(Reason::Timeout, format!("sleeping: no result {limit}")));
            }
            tokio::time::sleep_until(wake).await;
            Ok(())
        }
    }
}

fn exited() -> StepFailure {
    StepFailure::new(Reason::BrowserUnavailable, "the browser exited during the step")
}

/// Opens `url` and waits for `load`; maps network errors to reasons, and a 4xx or 5xx document to `status`.
async fn goto(driver: &Driver<'_>, url: &url::Url, until: Instant, limit: &str) -> Result<(), StepFailure> {
    match driver.call(until, driver.page.goto(url.as_str())).await {
        Ok(_) => {}
        Err(Fail::Deadline) => {
            return Err(StepFailure::new(Reason::Timeout, format!("the page did not finish loading {limit}")));
        }
        Err(Fail::Exited) => return Err(exited()),
        Err(Fail::Js(message) | Fail::Cdp(message)) => {
            return Err(StepFailure::new(net_reason(&message), format!("loading {url}: {message}")));
        }
    }
    let status = driver.value(until, "(performance.getEntriesByType('navigation')[0] || {}).responseStatus").await;
    match status.ok().and_then(|status| status.as_u64()) {
        Some(status) if status >= 400 => {
            Err(StepFailure::new(Reason::Status, format!("loading {url}: the server answered HTTP {status}")))
        }
        _ => Ok(()),
    }
}

/// The reason of a Chromium network error such as `net::ERR_CONNECTION_REFUSED`.
pub fn net_reason(message: &str) -> Reason {
    let code = message.split("net::").nth(1).unwrap_or_default();
    let code = code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or_default();
    match code {
        "ERR_NAME_NOT_RESOLVED" | "ERR_NAME_RESOLUTION_FAILED" | "ERR_DNS_TIMED_OUT" => Reason::Dns,
        "ERR_CERT_DATE_INVALID" => Reason::CertExpired,
        "ERR_CERT_AUTHORITY_INVALID" => Reason::CertUntrusted,
        "ERR_CERT_COMMON_NAME_INVALID" => Reason::CertHostname,
        "ERR_TIMED_OUT" | "ERR_CONNECTION_TIMED_OUT" => Reason::Timeout,
        code if code.starts_with("ERR_CERT_") || code.starts_with("ERR_SSL_") || code.contains("_TLS_") => Reason::Tls,
        code if code.starts_with("ERR_CONNECTION_")
            || code.starts_with("ERR_ADDRESS_")
            || matches!(code, "ERR_NETWORK_UNREACHABLE" | "ERR_INTERNET_DISCONNECTED" | "ERR_EMPTY_RESPONSE") =>
        {
            Reason::Connect
        }
        _ => Reason::Protocol,
    }
}

/// Reads the current document's measurements into the journey; `settle` waits for the page to paint first.
async fn measure(driver: &Driver<'_>, until: Instant, journey: &mut Journey, settle: bool) {
    let until = until.min(Instant::now() + Duration::from_millis(1500));
    let script = if settle { settled_snapshot() } else { SNAPSHOT.to_owned() };
    if let Ok(value) = driver.value(until, &script).await
        && let Some(snapshot) = PageSnapshot::parse(&value)
    {
        journey.pages.record(snapshot);
    }
}

/// After a failing step: the page's URL, a screenshot, and its last measurements, within the budget's reserve.
async fn diagnose(driver: &Driver<'_>, number: usize, budget: Budget, journey: &mut Journey) {
    let end = budget.end;
    let short = |ms: u64| (Instant::now() + Duration::from_millis(ms)).min(end);
    journey.url = match driver.value(short(500), driver::URL).await {
        Ok(Value::String(url)) => Some(url),
        _ => driver.call(short(300), driver.page.url()).await.ok(),
    };
    // The page is discarded after it: what the screenshot hid stays hidden.
    if let Ok(png) = screenshot(driver, end, &journey.secret_fields, None).await {
        journey.artifacts.push(png_artifact(format!("failure-step-{number}.png"), png));
    }
    if let Ok(Value::String(title)) = driver.value(short(300), driver::TITLE).await {
        journey.title = Some(title);
    }
    measure(driver, end, journey, true).await;
}

/// A PNG of the page with password fields and the fields filled with secrets hidden; with `restore_by`, they are
/// given back after it (by then at the latest). When the journey filled a secret and hiding fails (the page does
/// not answer), there is no screenshot.
async fn screenshot(
    driver: &Driver<'_>,
    until: Instant,
    secret_fields: &[String],
    restore_by: Option<Instant>,
) -> Result<Vec<u8>, Fail> {
    let mask_until = until.min(Instant::now() + Duration::from_secs(1));
    let masked = driver.value(mask_until, &driver::mask(secret_fields)).await;
    if let Err(fail) = &masked
        && !secret_fields.is_empty()
    {
        return Err(match fail {
            Fail::Deadline | Fail::Exited => fail.clone(),
            Fail::Js(message) | Fail::Cdp(message) => {
                Fail::Cdp(format!("cannot hide the fields filled with secrets: {message}"))
            }
        });
    }
    let shot = driver.call(until, driver.page.screenshot()).await;
    if let (Ok(_), Some(restore_by)) = (&masked, restore_by) {
        let restore = until.max(Instant::now() + Duration::from_millis(300)).min(restore_by);
        let _ = driver.value(restore, driver::UNMASK).await;
    }
    shot
}

fn png_artifact(name: String, data: Vec<u8>) -> Artifact {
    Artifact { name, media_type: "image/png".to_owned(), data, path: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_errors_map_to_reasons() {
        assert_eq!(net_reason("net::ERR_CONNECTION_REFUSED"), Reason::Connect);
        assert_eq!(net_reason("net::ERR_NAME_NOT_RESOLVED"), Reason::Dns);
        assert_eq!(net_reason("net::ERR_CERT_AUTHORITY_INVALID"), Reason::CertUntrusted);
        assert_eq!(net_reason("net::ERR_CERT_DATE_INVALID"), Reason::CertExpired);
        assert_eq!(net_reason("net::ERR_SSL_PROTOCOL_ERROR"), Reason::Tls);
        assert_eq!(net_reason("net::ERR_ABORTED"), Reason::Protocol);
        assert_eq!(net_reason("something else"), Reason::Protocol);
    }

    #[test]
    fn the_budget_keeps_a_reserve_for_diagnostics() {
        let budget = Budget::new(Duration::from_secs(10));
        assert!(budget.steps < budget.end);
        assert!(budget.end - budget.steps >= Duration::from_secs(2));
        let tiny = Budget::new(Duration::from_millis(100));
        assert!(tiny.steps <= tiny.end);
    }
}
