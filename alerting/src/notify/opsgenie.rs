//! Opsgenie through the Alert API v2: a firing notification creates an alert (`POST /v2/alerts`) whose alias
//! is the alert's key, so a re-sent firing is deduplicated into the same alert; a resolved one closes it
//! (`POST /v2/alerts/<alias>/close?identifierType=alias`). The key goes in `Authorization: GenieKey ...`.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::BuildError;
use super::http::{self, Redactor};
use super::resolve;
use super::text::{self, truncate};
use crate::{DeliveryError, Notification, Notifier, Status};
use probenet_checks::config::alerting::notifiers::opsgenie::{OPSGENIE_US_URL, OpsgenieSpec};

/// The longest `message` Opsgenie takes.
const MAX_MESSAGE: usize = 130;
/// The longest `alias` Opsgenie takes.
const MAX_ALIAS: usize = 512;
/// The longest `description` Opsgenie takes.
const MAX_DESCRIPTION: usize = 15_000;

/// How an [`OpsgenieNotifier`] is set up.
#[derive(Clone)]
pub struct OpsgenieOptions {
    /// The API integration's key (a secret, never shown).
    pub api_key: String,
    /// The API's base URL: `https://api.opsgenie.com` (US), `https://api.eu.opsgenie.com` (EU), or a proxy.
    pub api_url: String,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
}

impl Default for OpsgenieOptions {
    fn default() -> Self {
        Self { api_key: String::new(), api_url: OPSGENIE_US_URL.to_owned(), timeout: Duration::from_secs(10) }
    }
}

impl fmt::Debug for OpsgenieOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpsgenieOptions")
            .field("api_key", &"<redacted>")
            .field("api_url", &self.api_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Creates and closes Opsgenie alerts.
pub struct OpsgenieNotifier {
    authorization: reqwest::header::HeaderValue,
    base: reqwest::Url,
    client: reqwest::Client,
    redactor: Redactor,
}

impl fmt::Debug for OpsgenieNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpsgenieNotifier").field("origin", &http::origin(&self.base)).finish_non_exhaustive()
    }
}

impl OpsgenieNotifier {
    /// Builds the notifier a config's `opsgenie` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &OpsgenieSpec) -> Result<Self, String> {
        let options = OpsgenieOptions {
            api_key: resolve(&spec.api_key)?,
            api_url: resolve(&spec.api_url)?,
            ..OpsgenieOptions::default()
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options and builds the HTTP client.
    pub fn new(options: OpsgenieOptions) -> Result<Self, BuildError> {
        let api_key = options.api_key.trim().to_owned();
        if api_key.is_empty() || !api_key.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(BuildError::Invalid("opsgenie: api_key is empty or not a key".into()));
        }
        let base = http::parse_url("opsgenie api_url", &options.api_url)?;
        if base.cannot_be_a_base() {
            return Err(BuildError::Url("opsgenie api_url: cannot take a path".into()));
        }
        let client = http::client(options.timeout, None, false)?;
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!("GenieKey {api_key}"))
            .map_err(|_| BuildError::Invalid("opsgenie: api_key is not a key".into()))?;
        authorization.set_sensitive(true);
        let redactor = Redactor::new(Redactor::url_parts(&base).into_iter().chain([api_key]));
        Ok(Self { authorization, base, client, redactor })
    }

    /// The URL a notification is posted to: the alerts, or the close action of the alert with its alias.
    pub fn url(&self, notification: &Notification) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["v2", "alerts"]);
            if notification.status == Status::Resolved {
                path.extend([alias(notification).as_str(), "close"]);
            }
        }
        if notification.status == Status::Resolved {
            url.set_query(Some("identifierType=alias"));
        }
        url
    }

    /// The JSON body posted for a notification.
    pub fn payload(&self, notification: &Notification) -> Value {
        match notification.status {
            Status::Firing => create(notification),
            Status::Resolved => json!({"source": "probenet", "note": text::title(notification)}),
        }
    }
}

/// The alias: the alert's key, which identifies the alert instance.
fn alias(notification: &Notification) -> String {
    truncate(&notification.key, MAX_ALIAS)
}

/// Opsgenie's priority for our severity: `P1` (page, critical, fatal, emergency), `P2` (error, major), `P3`
/// (ticket, warning, warn, minor, and anything else), `P4` (low, notice), `P5` (info, informational, none).
pub fn opsgenie_priority(severity: &str) -> &'static str {
    match severity.trim().to_ascii_lowercase().as_str() {
        "page" | "critical" | "fatal" | "emergency" => "P1",
        "error" | "major" => "P2",
        "low" | "notice" => "P4",
        "info" | "informational" | "none" => "P5",
        _ => "P3",
    }
}

fn create(notification: &Notification) -> Value {
    let mut details = Map::new();
    for (label, value) in text::fields(notification) {
        details.insert(label.to_ascii_lowercase(), json!(value));
    }
    for (name, value) in &notification.labels {
        details.entry(name.clone()).or_insert_with(|| json!(value));
    }
    let mut body = Map::new();
    body.insert("message".into(), json!(truncate(&text::title(notification), MAX_MESSAGE)));
    body.insert("alias".into(), json!(alias(notification)));
    body.insert("description".into(), json!(truncate(&text::body(notification), MAX_DESCRIPTION)));
    body.insert("tags".into(), json!(["probenet", notification.severity]));
    body.insert("details".into(), Value::Object(details));
    let entity = notification.check.clone().unwrap_or_else(|| notification.regions.join(", "));
    if !entity.is_empty() {
        body.insert("entity".into(), json!(entity));
    }
    body.insert("source".into(), json!("probenet"));
    body.insert("priority".into(), json!(opsgenie_priority(&notification.severity)));
    Value::Object(body)
}

impl Notifier for OpsgenieNotifier {
    fn kind(&self) -> &'static str {
        "opsgenie"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let request = self
                .client
                .post(self.url(notification))
                .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
                .json(&self.payload(notification));
            http::send(request, &self.redactor).await.map(drop)
        })
    }
}
