//! Running one check once: the runtime that owns timeouts, phases, secrets and redaction, and the
//! dispatch to each kind's executor.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{Check, CheckKind};
use crate::outcome::{Outcome, Phase, Reason, State};
use crate::secret::{Redactor, ResolveError, Template};

/// What an executor may use while it runs: phase timers, secret resolution, a short log.
/// The runtime owns it and builds the final outcome from it, also when the run times out.
#[derive(Debug)]
pub struct RunContext {
    region: String,
    started: Instant,
    timeout: Duration,
    phases: Mutex<Vec<Phase>>,
    secrets: Mutex<Vec<String>>,
    log: Mutex<Vec<String>>,
    /// The host name whose address this run is pinned to, and that address (see [`RunContext::pin`]).
    pin: Option<(String, IpAddr)>,
}

/// The most lines a run's log keeps.
const MAX_LOG_LINES: usize = 50;

impl RunContext {
    /// A context for a run from `region` with this timeout, starting now.
    pub fn new(region: &str, timeout: Duration) -> Self {
        Self {
            region: region.to_owned(),
            started: Instant::now(),
            timeout,
            phases: Mutex::new(Vec::new()),
            secrets: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            pin: None,
        }
    }

    /// A context for probing one address of `host`: the same region, start and timeout, its own phases and
    /// log, and `host` resolving to `ip` alone ([`crate::net::resolve`] honours it; TLS SNI, the `Host`
    /// header and the certificate check still use the name).
    pub fn pin(&self, host: &str, ip: IpAddr) -> Self {
        Self {
            region: self.region.clone(),
            started: self.started,
            timeout: self.timeout,
            phases: Mutex::new(Vec::new()),
            secrets: Mutex::new(self.secrets()),
            log: Mutex::new(Vec::new()),
            pin: Some((normal_host(host).to_owned(), ip)),
        }
    }

    /// The address this run is pinned to when `host` is the pinned name.
    pub fn pinned(&self, host: &str) -> Option<IpAddr> {
        let (name, ip) = self.pin.as_ref()?;
        normal_host(host).eq_ignore_ascii_case(name).then_some(*ip)
    }

    /// The region this run is for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The run's timeout (the runtime enforces it; an executor may plan within it, as ICMP does).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// When the run must end: its start plus its timeout.
    pub(crate) fn deadline(&self) -> Instant {
        self.started + self.timeout
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Adds `duration` to the phase `name` (phases of the same name are summed, as over redirects).
    pub fn phase(&self, name: &str, duration: Duration) {
        let mut phases = self.phases.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match phases.iter_mut().find(|phase| phase.name == name) {
            Some(phase) => phase.seconds += duration.as_secs_f64(),
            None => phases.push(Phase { name: name.to_owned(), seconds: duration.as_secs_f64() }),
        }
    }

    /// Times `future` as the phase `name`.
    pub async fn timed<T>(&self, name: &str, future: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = future.await;
        self.phase(name, start.elapsed());
        out
    }

    /// Resolves a template, remembering its secret values so they are redacted from the outcome.
    pub fn resolve(&self, template: &Template) -> Result<String, ResolveError> {
        let mut secrets = self.secrets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        template.resolve(&mut secrets)
    }

    /// Registers a value derived from secrets (an encoded credential, say) so it is redacted like a secret.
    pub fn remember_secret(&self, value: &str) {
        let mut secrets = self.secrets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !value.is_empty() && !secrets.iter().any(|known| known == value) {
            secrets.push(value.to_owned());
        }
    }

    /// `text` with every secret resolved so far redacted: for an executor that must cut an observation itself
    /// (the runtime redacts the rest of the outcome, but after a cut a secret may no longer be whole).
    pub fn redact(&self, text: &str) -> String {
        Redactor::new(&self.secrets()).redact(text)
    }

    /// Adds a line to the run's log (bounded).
    pub fn log(&self, line: impl Into<String>) {
        let mut log = self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if log.len() < MAX_LOG_LINES {
            log.push(line.into());
        }
    }

    /// Seconds spent so far in the phase `name`, if it happened.
    pub fn phase_seconds(&self, name: &str) -> Option<f64> {
        let phases = self.phases.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        phases.iter().find(|phase| phase.name == name).map(|phase| phase.seconds)
    }

    pub(crate) fn take_phases(&self) -> Vec<Phase> {
        std::mem::take(&mut *self.phases.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    pub(crate) fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    pub(crate) fn secrets(&self) -> Vec<String> {
        self.secrets.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// A host as compared for pinning: without brackets or a trailing dot.
fn normal_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.')
}

/// A check kind's executor: it measures and judges. Timeouts, phases and redaction belong to the runtime.
pub trait Execute {
    /// Runs the check once. Phases go through `cx.phase`; the returned outcome's phases are ignored.
    fn execute(&self, cx: &RunContext) -> impl Future<Output = Outcome> + Send;
}

/// Runs `check` once from `region`, within its timeout, and returns its outcome with phases filled in
/// and every secret value redacted.
pub async fn run_once(check: &Check, region: &str) -> Outcome {
    let cx = RunContext::new(region, check.timeout);
    let result = match check.kind.ip_target() {
        // Every address of a name: each probe is bounded by the same deadline, so the sub-results of the
        // addresses that answered in time are kept.
        Some(target) if target.host.parse::<IpAddr>().is_err() && target.plan != crate::net::IpPlan::First => {
            Ok(crate::ips::run_each(&check.kind, &cx, &target).await)
        }
        _ => tokio::time::timeout(check.timeout, dispatch(&check.kind, &cx)).await,
    };
    let mut outcome = match result {
        Ok(outcome) => outcome,
        Err(_) => timed_out(check.timeout),
    };
    outcome.duration_seconds = cx.elapsed().as_secs_f64();
    outcome.phases = cx.take_phases();
    let mut log = cx.take_log();
    log.append(&mut outcome.log);
    outcome.log = log;
    if outcome.reason.is_some() && outcome.state != State::Degraded {
        outcome.state = State::Down;
    }
    redact_outcome(&mut outcome, &Redactor::new(&cx.secrets()));
    outcome
}

/// The outcome of a run that did not finish within `timeout`.
pub(crate) fn timed_out(timeout: Duration) -> Outcome {
    Outcome::failed(Reason::Timeout, format!("no result within the timeout of {}", crate::duration::format(timeout)))
}

pub(crate) async fn dispatch(kind: &CheckKind, cx: &RunContext) -> Outcome {
    crate::config::with_check!(kind, check => check.execute(cx).await)
}

/// Runs browser journeys. It lives outside this crate (Chromium's protocol code is the slowest thing to
/// compile), and the binary installs one at start-up with [`install_browser_runner`].
pub trait BrowserRunner: Send + Sync + std::fmt::Debug {
    /// Runs `check` once; the runtime owns the timeout, phases and redaction as for every kind.
    fn run<'a>(
        &'a self,
        check: &'a crate::browser::BrowserCheck,
        cx: &'a RunContext,
    ) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;
}

static BROWSER_RUNNER: std::sync::OnceLock<std::sync::Arc<dyn BrowserRunner>> = std::sync::OnceLock::new();

/// Installs the process's browser runner; false if one was installed already.
pub fn install_browser_runner(runner: std::sync::Arc<dyn BrowserRunner>) -> bool {
    BROWSER_RUNNER.set(runner).is_ok()
}

/// The installed browser runner, if any.
pub fn browser_runner() -> Option<&'static std::sync::Arc<dyn BrowserRunner>> {
    BROWSER_RUNNER.get()
}

/// The outcome of a kind that this version of probenet cannot run yet: a failure, never a success.
pub fn unsupported(kind: &str) -> Outcome {
    Outcome::failed(Reason::Unsupported, format!("`{kind}` checks are not supported yet by this version of probenet"))
}

/// Redacts every secret value, in any encoding, from the outcome's text, then bounds each text. Executors hand
/// over raw observations (unescaped, uncut) so that a secret is always found whole before anything is cut or
/// escaped. The redactor is built once per run.
fn redact_outcome(outcome: &mut Outcome, redactor: &Redactor) {
    let clean = |text: &mut String, limit: usize| *text = present(&redactor.redact(text), limit);
    if let Some(error) = &mut outcome.error {
        clean(error, MAX_ERROR_CHARS);
    }
    outcome.log.iter_mut().for_each(|line| clean(line, MAX_ERROR_CHARS));
    for assertion in &mut outcome.assertions {
        clean(&mut assertion.observed, MAX_OBSERVED_CHARS);
        clean(&mut assertion.expected, MAX_OBSERVED_CHARS);
    }
    if !redactor.is_empty() {
        redact_json(&mut outcome.details, redactor);
        for artifact in &mut outcome.artifacts {
            artifact.name = redactor.redact(&artifact.name);
            artifact.media_type = redactor.redact(&artifact.media_type);
            if let Some(path) = &mut artifact.path {
                *path = redactor.redact(path);
            }
        }
    }
}

/// The longest error or log line an outcome keeps.
const MAX_ERROR_CHARS: usize = 400;
/// The longest observed or expected value an assertion keeps.
const MAX_OBSERVED_CHARS: usize = 160;

/// Escapes control characters (so a value stays on one line) and cuts the text to `limit` characters.
fn present(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == limit {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Redacts every string of `value`, object keys included.
fn redact_json(value: &mut serde_json::Value, redactor: &Redactor) {
    match value {
        serde_json::Value::String(text) => *text = redactor.redact(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| redact_json(item, redactor)),
        serde_json::Value::Object(map) => {
            for (key, mut item) in std::mem::take(map) {
                redact_json(&mut item, redactor);
                map.insert(redactor.redact(&key), item);
            }
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {}
    }
}
