//! Turning a journey into an outcome: the failing step first, then the journey-wide assertions, and the details
//! (steps, navigation timing, web vitals, console and network).

use probenet_checks::browser::BrowserExpect;
use probenet_checks::browser::{BrowserDetails, BrowserInfo, FailedRequest, FailedStep, StepDetails};
use probenet_checks::details::Details as _;
use probenet_checks::outcome::{Judgement, Outcome, Reason};

use crate::journey::Journey;
use crate::observer::Observed;
use crate::vitals::{PageSnapshot, seconds};

/// Judges a journey and builds its outcome (phases are the runtime's).
pub fn outcome(expect: &BrowserExpect, journey: Journey, observed: &Observed, browser: &BrowserInfo) -> Outcome {
    let first = journey.pages.first();
    let judged = judge(expect, first, observed);
    let failed = journey.failed().cloned();
    let failure = match &failed {
        Some(step) => step.failure.as_ref().map(|(reason, message)| {
            let at = journey.url.as_deref().map(|url| format!(" (page {url})")).unwrap_or_default();
            (*reason, format!("step {} {} {}: {message}{at}", step.number, step.action, step.target))
        }),
        None => judged.failure.clone(),
    };
    let steps = journey
        .steps
        .iter()
        .map(|step| StepDetails {
            step: step.number,
            action: step.action.to_owned(),
            target: step.target.clone(),
            seconds: (step.seconds * 1000.0).round() / 1000.0,
            passed: step.failure.is_none(),
            error: step.failure.as_ref().map(|(_, message)| message.clone()),
        })
        .collect();
    let failed_step = failed.as_ref().map(|step| FailedStep {
        step: step.number,
        action: step.action.to_owned(),
        target: step.target.clone(),
        error: step.failure.as_ref().map(|(_, message)| message.clone()),
        reason: step.failure.as_ref().map(|(reason, _)| reason.as_str().to_owned()),
        url: journey.url.clone(),
    });
    let details = BrowserDetails {
        steps,
        failed_step,
        url: journey.url.clone(),
        title: journey.title.clone(),
        navigation: first.map(PageSnapshot::navigation).map(|mut navigation| {
            navigation.sent_bytes = observed.document_bytes.get(&navigation.url).copied();
            navigation
        }),
        web_vitals: first.map(PageSnapshot::vitals),
        pages: journey
            .pages
            .all()
            .iter()
            .map(|page| {
                let mut details = page.details();
                details.navigation.sent_bytes = observed.document_bytes.get(&page.url).copied();
                details
            })
            .collect(),
        browser: browser.clone(),
        console_errors: observed.console_errors,
        console_messages: observed.console_messages.clone(),
        requests: observed.requests,
        failed_requests: observed.failed_requests,
        failed_request_list: observed
            .failed
            .iter()
            .map(|(url, why)| FailedRequest { url: url.clone(), error: why.clone() })
            .collect(),
    };
    let mut assertions = journey.assertions;
    assertions.extend(judged.assertions);
    let mut outcome = Judgement { assertions, failure }.into_outcome(details.to_value());
    outcome.artifacts = journey.artifacts;
    outcome
}

/// Evaluates every journey-wide assertion that is set.
fn judge(expect: &BrowserExpect, first: Option<&PageSnapshot>, observed: &Observed) -> Judgement {
    let mut judgement = Judgement::default();
    if expect.no_console_errors {
        let seen = match observed.console_messages.first() {
            None => "none".to_owned(),
            Some(message) => format!("{} ({message})", observed.console_errors),
        };
        judgement.check(Reason::Assertion, "no_console_errors", "none".to_owned(), seen, observed.console_errors == 0);
    }
    if let Some(max) = expect.max_failed_requests {
        let seen = match observed.failed.first() {
            None => observed.failed_requests.to_string(),
            Some((url, why)) => format!("{} ({why}: {url})", observed.failed_requests),
        };
        let passed = observed.failed_requests <= max as usize;
        judgement.check(Reason::Assertion, "max_failed_requests", format!("at most {max}"), seen, passed);
    }
    if let Some(max) = expect.max_lcp {
        let lcp = first.and_then(|page| page.lcp);
        let seen = lcp.map_or_else(|| "none".to_owned(), |ms| format!("{}s", seconds(ms)));
        let passed = lcp.is_some_and(|ms| ms <= max.as_secs_f64() * 1000.0);
        let expected = format!("at most {}", probenet_checks::duration::format(max));
        judgement.check(Reason::Duration, "max_lcp", expected, seen, passed);
    }
    if let Some(max) = expect.max_cls {
        let cls = first.and_then(|page| page.cls);
        let seen = cls.map_or_else(|| "none".to_owned(), |cls| format!("{cls:.4}"));
        judgement.check(
            Reason::Assertion,
            "max_cls",
            format!("at most {max}"),
            seen,
            cls.is_some_and(|cls| cls <= max),
        );
    }
    judgement
}
