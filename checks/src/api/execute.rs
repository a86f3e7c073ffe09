//! Running an `api` check: each step is a request on `http`'s client (its phases, redirects, TLS and body
//! limit) judged by `http`'s assertions; then its captures are taken for the steps after it.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::details::{ApiDetails, Captured, StepDetails, StepPhases};
use super::spec::{ApiCheck, ApiStep, Capture, CaptureFrom};
use super::vars::Vars;
use crate::clock::PhaseClocks;
use crate::details::Details as _;
use crate::http::PHASES;
use crate::http::execute::{Fetched, Response, fetch, judge, prepare, sensitive_value};
use crate::outcome::{Assertion, Failure, Outcome, Reason, State};
use crate::run::{Execute, RunContext};

/// The longest value a capture may take: a token or an id, not a document.
pub const MAX_CAPTURE_BYTES: usize = 8 << 10;
/// How long before the check's timeout a step gives up, so that the result still names it.
const TIMEOUT_MARGIN: Duration = Duration::from_millis(50);

impl Execute for ApiCheck {
    async fn execute(&self, cx: &RunContext) -> Outcome {
        let mut details = ApiDetails::default();
        let mut assertions = Vec::new();
        let mut vars = Vars::new();
        let mut degraded = None;
        for step in &self.steps {
            cx.log(format!("step `{}`", step.name));
            let ran = run_step(step, cx, &mut vars, &mut details).await;
            assertions.extend(
                ran.assertions
                    .into_iter()
                    .map(|assertion| Assertion { name: format!("{}: {}", step.name, assertion.name), ..assertion }),
            );
            if let Some((reason, message)) = ran.failure {
                details.failed_step = Some(step.name.clone());
                if let Some(last) = details.steps.last_mut() {
                    last.passed = false;
                }
                let message = format!("step `{}`: {message}", step.name);
                return Outcome { assertions, details: details.to_value(), ..Outcome::failed(reason, message) };
            }
            if let Some(message) = ran.degraded {
                degraded.get_or_insert(format!("step `{}`: {message}", step.name));
            }
        }
        let mut outcome = Outcome { assertions, details: details.to_value(), ..Outcome::up(0.0) };
        if let Some(message) = degraded {
            // Slow but correct is degraded: the reason says why, the state keeps it a success.
            outcome.state = State::Degraded;
            outcome.reason = Some(Reason::Duration);
            outcome.error = Some(message);
        }
        outcome
    }
}

/// How one step went.
#[derive(Default)]
struct Ran {
    assertions: Vec<Assertion>,
    failure: Option<(Reason, String)>,
    /// Why a step that passed is degraded.
    degraded: Option<String>,
}

/// Runs one step, adding its entry to `details` and its captures to `vars`.
async fn run_step(step: &ApiStep, cx: &RunContext, vars: &mut Vars, details: &mut ApiDetails) -> Ran {
    let before: Vec<f64> = PHASES.iter().map(|phase| cx.phase_seconds(phase).unwrap_or(0.0)).collect();
    let started = Instant::now();
    let mut entry =
        StepDetails { name: step.name.clone(), url: step.url.written().to_owned(), ..StepDetails::default() };
    let fetched = fetch_step(step, cx, vars).await;
    let elapsed = started.elapsed();
    let mut phases = StepPhases::default();
    for (phase, before) in PHASES.iter().zip(before) {
        phases.set(phase, (cx.phase_seconds(phase).unwrap_or(0.0) - before).max(0.0));
    }
    entry.duration_seconds = elapsed.as_secs_f64();
    entry.phases = phases;
    let mut ran = Ran::default();
    let fetched = match fetched {
        Ok(fetched) => fetched,
        Err(failure) => {
            let tls = <crate::tls::TlsPart as serde::Deserialize>::deserialize(&failure.details).unwrap_or_default();
            if tls != crate::tls::TlsPart::default() {
                details.tls = tls;
            }
            details.steps.push(entry);
            ran.failure = Some((failure.reason, failure.message));
            return ran;
        }
    };
    let Fetched { response, redirects, .. } = fetched;
    entry.status_code = response.status;
    entry.http_version = response.version.to_owned();
    entry.redirects = redirects;
    entry.content_length = response.body.len();
    entry.body_truncated = response.truncated;
    if let Some(seen) = &response.tls {
        details.tls = seen.details();
    }
    // Captured first, so that every value is a secret before anything about the response is reported.
    let captured = capture(&step.captures, &response, cx);
    let judged = judge(&step.http.expect, &response, elapsed, &|phase| Some(phases.get(phase)));
    ran.assertions = judged.assertions;
    match (judged.state, judged.failure) {
        (State::Down, failure) => {
            ran.failure = failure.or(Some((Reason::Assertion, "failed".to_owned())));
        }
        (State::Degraded, failure) => ran.degraded = failure.map(|(_, message)| message),
        (State::Up, _) => {}
    }
    if ran.failure.is_none() {
        match captured {
            Ok(values) => {
                for (name, value) in values {
                    cx.log(format!("step `{}`: captured {name} ({} bytes)", step.name, value.len()));
                    entry.captured.push(Captured { name: name.clone(), length: value.len() });
                    vars.insert((step.name.clone(), name), value);
                }
            }
            Err(message) => ran.failure = Some((Reason::Assertion, message)),
        }
    }
    entry.passed = ran.failure.is_none();
    details.steps.push(entry);
    ran
}

/// The step's request, with its variables and secrets filled in, on `http`'s client; it gives up shortly before
/// the check's timeout so that the result names the step.
async fn fetch_step(step: &ApiStep, cx: &RunContext, vars: &Vars) -> Result<Fetched, Failure> {
    let mut http = step.http.clone();
    if step.url.has_vars() || step.url.is_sensitive() {
        let text = step.url.resolve(cx, vars)?;
        http.url = match url::Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
            // The URL holds captured values or secrets: say which, never what.
            _ => {
                return Err(Failure::new(
                    Reason::Protocol,
                    format!("the URL {} is not a valid http or https URL once filled in", step.url.written()),
                ));
            }
        };
    }
    let mut prepared = prepare(&http, cx)?;
    for (name, text) in &step.headers {
        let value = sensitive_value(text.resolve(cx, vars)?, &format!("header {name}"))?;
        prepared.headers.push((name.clone(), value, text.is_sensitive()));
    }
    if let Some(body) = &step.body {
        prepared.body = Bytes::from(body.resolve(cx, vars)?);
    }
    let remaining = cx.timeout().saturating_sub(cx.elapsed()).saturating_sub(TIMEOUT_MARGIN);
    let mut clocks = PhaseClocks::default();
    match tokio::time::timeout(remaining, fetch(&http, cx, &prepared, &mut clocks)).await {
        Ok(fetched) => fetched,
        Err(_) => Err(Failure::new(
            Reason::Timeout,
            format!("no response within the check's timeout of {}", crate::duration::format(cx.timeout())),
        )),
    }
}

/// Takes every capture from `response`, remembering each value as a secret. The error names the capture and
/// where it looked, never a value.
fn capture(captures: &[Capture], response: &Response, cx: &RunContext) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut missing = None;
    let mut document = None;
    for capture in captures {
        let (value, place) = match &capture.from {
            CaptureFrom::Json { text, path } => {
                let parsed =
                    document.get_or_insert_with(|| serde_json::from_slice::<serde_json::Value>(&response.body));
                let value = parsed.as_ref().ok().and_then(|document| {
                    path.query(document).first().map(|node| match node {
                        serde_json::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    })
                });
                let place = match parsed {
                    Ok(_) => format!("{text} matched nothing"),
                    Err(_) => format!("{text}: the body is not JSON"),
                };
                (value, place)
            }
            CaptureFrom::Regex(regex) => {
                let body = String::from_utf8_lossy(&response.body);
                let value = regex
                    .captures(&body)
                    .and_then(|found| found.get(1).or_else(|| found.get(0)).map(|matched| matched.as_str().to_owned()));
                (value, format!("/{regex}/ matched nothing"))
            }
            CaptureFrom::Header(name) => {
                let value =
                    response.headers.get(name).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
                (value, format!("no {name} header"))
            }
        };
        match value {
            Some(value) => {
                cx.remember_secret(&value);
                if value.len() > MAX_CAPTURE_BYTES {
                    missing.get_or_insert(format!(
                        "capture {}: the value is {} bytes, more than {MAX_CAPTURE_BYTES}",
                        capture.name,
                        value.len()
                    ));
                }
                out.push((capture.name.clone(), value));
            }
            None => {
                missing.get_or_insert(format!("capture {}: {place}", capture.name));
            }
        }
    }
    match missing {
        Some(message) => Err(message),
        None => Ok(out),
    }
}
