//! What the rule engine tells notifiers: one alert starting or ending, and the [`Notifier`] trait that
//! delivers it.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// Whether an alert starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The alert fires (or fires again after its repeat interval).
    Firing,
    /// The alert ended.
    Resolved,
}

/// One alert, as sent to notifiers. Built by the engine; holds no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The rule's name, or `region-impaired` for a probe-health alert.
    pub alert: String,
    /// Stable identity of this alert instance (rule and check, or rule and region): notifiers use it to
    /// deduplicate and to match a resolve to its firing.
    pub key: String,
    /// Firing or resolved.
    pub status: Status,
    /// The rule's severity, such as `page` or `ticket`.
    pub severity: String,
    /// The check, when the alert is about one.
    pub check: Option<String>,
    /// The check's target (URL, host), when the alert is about one check.
    pub target: Option<String>,
    /// The regions failing (for a region-impaired alert: the impaired region).
    pub regions: Vec<String>,
    /// How many regions the check runs in.
    pub total_regions: usize,
    /// When the alert started firing, unix ms.
    pub since_ms: i64,
    /// When it resolved, unix ms.
    pub ended_ms: Option<i64>,
    /// The failure reason label (`timeout`, `status`, ...), when known.
    pub reason: Option<String>,
    /// The last failure's message, when known.
    pub error: Option<String>,
    /// The rule's labels and the check's labels.
    pub labels: BTreeMap<String, String>,
    /// One human line: what is wrong, where, since when.
    pub summary: String,
    /// A link to the check's dashboard page, when the dashboard URL is known.
    pub dashboard_url: Option<String>,
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Transient (connection refused, 5xx, 429): try again after a backoff.
    #[error("{0}")]
    Retry(String),
    /// Refused for good (4xx, bad address): do not retry.
    #[error("{0}")]
    Reject(String),
}

/// A destination for notifications. Messages of errors must never hold a secret (URL tokens, passwords).
pub trait Notifier: Send + Sync + std::fmt::Debug + 'static {
    /// The notifier's kind: its key in the config (`webhook`, `slack`, `telegram`...).
    fn kind(&self) -> &'static str;
    /// How often a firing alert must be sent again to stay active at the receiver (Alertmanager ends alerts
    /// that are not re-sent); `None`: once is enough.
    fn resend_interval(&self) -> Option<std::time::Duration> {
        None
    }
    /// Delivers one notification once (the dispatcher around it retries).
    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>>;
}
