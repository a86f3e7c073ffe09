//! PagerDuty through the Events API v2: a `trigger` event per firing notification and a `resolve` event
//! per resolved one, both deduplicated by the alert's key.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use super::BuildError;
use super::http::{self, Redactor};
use super::resolve;
use super::text;
use crate::{DeliveryError, Notification, Notifier, Status};
use probenet_checks::config::alerting::notifiers::pagerduty::PagerDutySpec;

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The longest `summary` PagerDuty accepts.
const MAX_SUMMARY: usize = 1024;

/// How a [`PagerDutyNotifier`] is set up.
#[derive(Clone)]
pub struct PagerDutyOptions {
    /// The integration's routing key (a secret, never shown).
    pub routing_key: String,
    /// The events endpoint; [`PAGERDUTY_EVENTS_URL`] unless overridden (tests, proxies).
    pub url: String,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
    /// A PEM file of extra roots to trust for https.
    pub ca_file: Option<PathBuf>,
}

impl Default for PagerDutyOptions {
    fn default() -> Self {
        Self {
            routing_key: String::new(),
            url: PAGERDUTY_EVENTS_URL.to_owned(),
            timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }
}

impl fmt::Debug for PagerDutyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyOptions")
            .field("routing_key", &"<redacted>")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Sends each notification as a PagerDuty event.
pub struct PagerDutyNotifier {
    routing_key: String,
    url: reqwest::Url,
    client: reqwest::Client,
    redactor: Redactor,
}

impl fmt::Debug for PagerDutyNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyNotifier").field("origin", &http::origin(&self.url)).finish_non_exhaustive()
    }
}

impl PagerDutyNotifier {
    /// Builds the notifier a config's `pagerduty` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &PagerDutySpec) -> Result<Self, String> {
        let options = PagerDutyOptions {
            routing_key: resolve(&spec.routing_key)?,
            url: resolve(&spec.url)?,
            ..PagerDutyOptions::default()
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options and builds the HTTP client.
    pub fn new(options: PagerDutyOptions) -> Result<Self, BuildError> {
        let routing_key = options.routing_key.trim().to_owned();
        if routing_key.is_empty() {
            return Err(BuildError::Invalid("pagerduty: routing_key is empty".into()));
        }
        let url = if options.url.trim().is_empty() { PAGERDUTY_EVENTS_URL } else { options.url.as_str() };
        let url = http::parse_url("pagerduty url", url)?;
        let client = http::client(options.timeout, options.ca_file.as_deref(), false)?;
        let redactor = Redactor::new(Redactor::url_parts(&url).into_iter().chain([routing_key.clone()]));
        Ok(Self { routing_key, url, client, redactor })
    }

    /// The event posted for a notification.
    pub fn payload(&self, notification: &Notification) -> serde_json::Value {
        event(&self.routing_key, notification)
    }
}

/// PagerDuty's severity for ours: `critical`, `error`, `warning` or `info`. `page`, `critical`, `fatal` and
/// `emergency` are critical; `ticket`, `warning`, `warn` and `minor` warning; `info`, `informational`,
/// `notice`, `low` and `none` info; anything else error.
pub fn pagerduty_severity(severity: &str) -> &'static str {
    match severity.trim().to_ascii_lowercase().as_str() {
        "page" | "critical" | "fatal" | "emergency" => "critical",
        "ticket" | "warning" | "warn" | "minor" => "warning",
        "info" | "informational" | "notice" | "low" | "none" => "info",
        _ => "error",
    }
}

fn event(routing_key: &str, notification: &Notification) -> serde_json::Value {
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": match notification.status {
            Status::Firing => "trigger",
            Status::Resolved => "resolve",
        },
        "dedup_key": notification.key,
        "client": "probenet",
    });
    let Some(object) = event.as_object_mut() else { return event };
    if let Some(url) = &notification.dashboard_url {
        object.insert("client_url".into(), json!(url));
    }
    if notification.status == Status::Resolved {
        return event;
    }
    let summary: String = text::title(notification).chars().take(MAX_SUMMARY).collect();
    let source = notification.target.clone().or_else(|| notification.check.clone()).unwrap_or_else(|| {
        if notification.regions.is_empty() { "probenet".to_owned() } else { notification.regions.join(", ") }
    });
    let mut details = serde_json::Map::new();
    details.insert("summary".into(), json!(notification.summary));
    details.insert("alert".into(), json!(notification.alert));
    details.insert("severity".into(), json!(notification.severity));
    details.insert("regions".into(), json!(notification.regions));
    details.insert("total_regions".into(), json!(notification.total_regions));
    details.insert("since".into(), json!(text::rfc3339_ms(notification.since_ms)));
    if let Some(reason) = &notification.reason {
        details.insert("reason".into(), json!(reason));
    }
    if let Some(error) = &notification.error {
        details.insert("error".into(), json!(error));
    }
    if !notification.labels.is_empty() {
        details.insert("labels".into(), json!(notification.labels));
    }
    let mut payload = json!({
        "summary": summary,
        "source": source,
        "severity": pagerduty_severity(&notification.severity),
        "timestamp": text::rfc3339_ms(notification.since_ms),
        "group": notification.alert,
        "custom_details": details,
    });
    if let Some(object) = payload.as_object_mut() {
        if let Some(check) = &notification.check {
            object.insert("component".into(), json!(check));
        }
        if let Some(reason) = &notification.reason {
            object.insert("class".into(), json!(reason));
        }
    }
    object.insert("payload".into(), payload);
    if let Some(url) = &notification.dashboard_url {
        object.insert("links".into(), json!([{"href": url, "text": "probenet dashboard"}]));
    }
    event
}

impl Notifier for PagerDutyNotifier {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let request = self.client.post(self.url.clone()).json(&self.payload(notification));
            http::send(request, &self.redactor).await.map(drop)
        })
    }
}
