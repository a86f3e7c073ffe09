//! The result of one run of one check: state, phases, the failure reason and every assertion.

use serde::{Deserialize, Serialize};

/// How a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Every assertion passed.
    Up,
    /// Every assertion passed, but the run was slower than `degraded_after`.
    Degraded,
    /// The run failed; `reason` says why.
    Down,
}

/// Why a run failed: a small fixed set, safe to use as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The check's timeout passed before it finished.
    Timeout,
    /// The target's name did not resolve.
    Dns,
    /// The TCP connection failed.
    Connect,
    /// The TLS handshake failed for another reason than the certificate checks below.
    Tls,
    /// A certificate in the chain has expired.
    CertExpired,
    /// A certificate in the chain is not valid yet.
    CertNotYetValid,
    /// The chain does not lead to a trusted root (self-signed, unknown issuer).
    CertUntrusted,
    /// The certificate is not valid for the name asked for.
    CertHostname,
    /// The certificate expires sooner than `min_days_remaining`.
    CertExpiring,
    /// The HTTP status code was not one of the expected ones.
    Status,
    /// The body did not contain, or did contain, what was asked.
    Body,
    /// A header assertion failed.
    Header,
    /// A duration limit was passed.
    Duration,
    /// Too many redirects, or a redirect loop.
    Redirects,
    /// A DNS answer had an unexpected response code.
    Rcode,
    /// Too many ICMP echo requests went unanswered.
    Loss,
    /// Another assertion failed.
    Assertion,
    /// The target answered something that is not valid for the protocol.
    Protocol,
    /// A secret reference could not be resolved on this machine.
    Secret,
    /// This kind of check cannot run here yet.
    Unsupported,
    /// A browser check ran on a machine or build without a usable browser.
    BrowserUnavailable,
}

impl Reason {
    /// The label value, as in JSON output and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::CertExpired => "cert_expired",
            Self::CertNotYetValid => "cert_not_yet_valid",
            Self::CertUntrusted => "cert_untrusted",
            Self::CertHostname => "cert_hostname",
            Self::CertExpiring => "cert_expiring",
            Self::Status => "status",
            Self::Body => "body",
            Self::Header => "header",
            Self::Duration => "duration",
            Self::Redirects => "redirects",
            Self::Rcode => "rcode",
            Self::Loss => "loss",
            Self::Assertion => "assertion",
            Self::Protocol => "protocol",
            Self::Secret => "secret",
            Self::Unsupported => "unsupported",
            Self::BrowserUnavailable => "browser_unavailable",
        }
    }
}

/// A named phase of a run and how long it took, in seconds. Phases of the same name are summed
/// (an HTTP check with redirects adds up `connect` over every hop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// The phase, for example `resolve`, `connect`, `tls`, `processing`, `transfer`.
    pub name: String,
    /// Seconds spent in this phase.
    pub seconds: f64,
}

/// One assertion and what was observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assertion {
    /// What was asserted, for example `status`, `body_contains`, `max_duration`.
    pub name: String,
    /// What the config expected, as written.
    pub expected: String,
    /// What the run observed.
    pub observed: String,
    /// Whether it held.
    pub passed: bool,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Up, degraded or down.
    pub state: State,
    /// Total seconds from start to finish (or to the timeout).
    pub duration_seconds: f64,
    /// Phases in the order they first happened.
    pub phases: Vec<Phase>,
    /// Why the run failed, when it did (or `duration` when it was degraded).
    pub reason: Option<Reason>,
    /// A one-line human explanation of the failure. Never holds a secret.
    pub error: Option<String>,
    /// Every assertion evaluated, passed or not.
    pub assertions: Vec<Assertion>,
    /// Kind-specific details (HTTP status, TLS chain, DNS answers...), as JSON.
    pub details: serde_json::Value,
    /// A short log of what the run did.
    pub log: Vec<String>,
    /// Files the run produced, such as a browser screenshot of the failing step.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

/// A file a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// What it is, such as `failure.png`.
    pub name: String,
    /// Its media type, such as `image/png`.
    pub media_type: String,
    /// The content, base64 in JSON while it travels (prober to scheduler); empty once written to a file, whose
    /// path is then set.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "base64_bytes")]
    pub data: Vec<u8>,
    /// Where the file was written, once it was.
    pub path: Option<String>,
}

impl Outcome {
    /// Whether the run counts as a success (up or degraded).
    pub fn success(&self) -> bool {
        self.state != State::Down
    }

    /// An up outcome that took `duration_seconds`, with nothing else.
    pub fn up(duration_seconds: f64) -> Self {
        Self { state: State::Up, duration_seconds, reason: None, error: None, ..Self::failed(Reason::Status, "") }
    }

    /// A failed outcome with the given reason and message and nothing else.
    pub fn failed(reason: Reason, error: impl Into<String>) -> Self {
        Self {
            state: State::Down,
            duration_seconds: 0.0,
            phases: Vec::new(),
            reason: Some(reason),
            error: Some(error.into()),
            assertions: Vec::new(),
            details: serde_json::Value::Null,
            log: Vec::new(),
            artifacts: Vec::new(),
        }
    }

    /// A successful outcome with these phases (0.01 s each) and details: what a kind's
    /// [`crate::KindCheck::representative`] builds.
    pub fn representative(phases: &[&str], details: serde_json::Value) -> Self {
        Self {
            state: State::Up,
            duration_seconds: 0.05,
            phases: phases.iter().map(|name| Phase { name: (*name).to_owned(), seconds: 0.01 }).collect(),
            reason: None,
            error: None,
            assertions: Vec::new(),
            details,
            log: Vec::new(),
            artifacts: Vec::new(),
        }
    }

    /// The seconds spent in `name`, if that phase happened.
    pub fn phase(&self, name: &str) -> Option<f64> {
        self.phases.iter().find(|phase| phase.name == name).map(|phase| phase.seconds)
    }
}

/// Assertions as an executor evaluates them: every one is recorded, and the first failing one gives the
/// run its reason and message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Judgement {
    /// Every assertion evaluated, in order.
    pub assertions: Vec<Assertion>,
    /// The reason and message of the first failing one.
    pub failure: Option<(Reason, String)>,
}

impl Judgement {
    /// The outcome of a run judged this way: up when every assertion passed, else down with the first
    /// failure's reason and message. The runtime fills in the duration and the phases.
    pub fn into_outcome(self, details: serde_json::Value) -> Outcome {
        let state = if self.failure.is_some() { State::Down } else { State::Up };
        let (reason, error) = match self.failure {
            Some((reason, message)) => (Some(reason), Some(message)),
            None => (None, None),
        };
        Outcome {
            state,
            duration_seconds: 0.0,
            phases: Vec::new(),
            reason,
            error,
            assertions: self.assertions,
            details,
            log: Vec::new(),
            artifacts: Vec::new(),
        }
    }

    /// Records one assertion; if it is the first to fail, its reason becomes the run's.
    pub fn check(&mut self, reason: Reason, name: &str, expected: String, observed: String, passed: bool) {
        if !passed && self.failure.is_none() {
            self.failure = Some((reason, format!("{name}: expected {expected}, got {observed}")));
        }
        self.assertions.push(Assertion { name: name.to_owned(), expected, observed, passed });
    }
}

/// A run that ended before there was anything to judge: why, and what was seen until then.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The reason.
    pub reason: Reason,
    /// A one-line explanation.
    pub message: String,
    /// What the run saw before it failed (an address, a certificate chain...).
    pub details: serde_json::Value,
}

impl Failure {
    /// A failure with nothing seen yet.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into(), details: serde_json::Value::Null }
    }
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        Self { details: failure.details, ..Self::failed(failure.reason, failure.message) }
    }
}

/// Adds the keys of the JSON object `from` to the JSON object `into` (anything else is left as it is).
pub fn merge_details(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (serde_json::Value::Object(into), serde_json::Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

/// Artifact bytes as standard base64 in JSON.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}
