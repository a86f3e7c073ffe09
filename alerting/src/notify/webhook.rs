//! The generic webhook: the notification as JSON (schema version 1), POSTed with an HMAC-SHA256 signature
//! over the timestamp and the body, so that receivers can tell it comes from us and is fresh.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use aws_lc_rs::hmac;
use futures::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::json;

use super::BuildError;
use super::http::{self, Redactor};
use super::resolve;
use super::text::rfc3339_ms;
use crate::{DeliveryError, Notification, Notifier};
use probenet_checks::config::alerting::notifiers::webhook::WebhookSpec;

/// The signature header: `sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>`.
pub const SIGNATURE_HEADER: &str = "X-Probenet-Signature";
/// The timestamp header: unix seconds when the request was signed.
pub const TIMESTAMP_HEADER: &str = "X-Probenet-Timestamp";

/// How a [`WebhookNotifier`] is set up.
#[derive(Clone, Default)]
pub struct WebhookOptions {
    /// Where to POST (http or https). May hold a token: it is never shown.
    pub url: String,
    /// The shared secret to sign with; without it no signature header is sent.
    pub secret: Option<String>,
    /// Extra request headers (such as `Authorization`); their values are treated as secrets.
    pub headers: Vec<(String, String)>,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
    /// A PEM file of extra roots to trust for https.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    pub insecure_skip_verify: bool,
}

impl fmt::Debug for WebhookOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookOptions")
            .field("url", &"<redacted>")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("headers", &self.headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// POSTs each notification as JSON to one URL, signed when a secret is set. See `docs/notifiers.md`.
pub struct WebhookNotifier {
    url: reqwest::Url,
    key: Option<hmac::Key>,
    headers: Vec<(HeaderName, HeaderValue)>,
    client: reqwest::Client,
    redactor: Redactor,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("origin", &http::origin(&self.url))
            .field("signed", &self.key.is_some())
            .field("headers", &self.headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// Builds the notifier a config's `webhook` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &WebhookSpec) -> Result<Self, String> {
        let mut headers = Vec::new();
        for (name, value) in &spec.headers {
            headers.push((name.clone(), resolve(value)?));
        }
        let options = WebhookOptions {
            url: resolve(&spec.url)?,
            secret: spec.secret.as_ref().map(resolve).transpose()?,
            headers,
            ..WebhookOptions::default()
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options and builds the HTTP client.
    pub fn new(options: WebhookOptions) -> Result<Self, BuildError> {
        let url = http::parse_url("webhook url", &options.url)?;
        let mut headers = Vec::with_capacity(options.headers.len());
        for (name, value) in &options.headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| BuildError::Invalid(format!("webhook header {name:?}: invalid name")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| BuildError::Invalid(format!("webhook header {name:?}: invalid value")))?;
            value.set_sensitive(true);
            headers.push((header, value));
        }
        let secret = options.secret.filter(|secret| !secret.is_empty());
        let key = secret.as_ref().map(|secret| hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()));
        let secrets = Redactor::url_parts(&url)
            .into_iter()
            .chain(secret)
            .chain(options.headers.iter().map(|(_, value)| value.clone()));
        let client = http::client(options.timeout, options.ca_file.as_deref(), options.insecure_skip_verify)?;
        Ok(Self { url, key, headers, client, redactor: Redactor::new(secrets) })
    }
}

/// The JSON document a webhook receives (schema version 1).
pub fn payload(notification: &Notification) -> serde_json::Value {
    json!({
        "version": 1,
        "alert": notification.alert,
        "key": notification.key,
        "status": notification.status,
        "severity": notification.severity,
        "check": notification.check,
        "target": notification.target,
        "regions": notification.regions,
        "total_regions": notification.total_regions,
        "since": rfc3339_ms(notification.since_ms),
        "ended": notification.ended_ms.map(rfc3339_ms),
        "reason": notification.reason,
        "error": notification.error,
        "labels": notification.labels,
        "title": super::text::title(notification),
        "summary": notification.summary,
        "dashboard_url": notification.dashboard_url,
    })
}

/// The signature header's value for a body sent at `timestamp` (unix seconds):
/// `sha256=` and the lowercase hex of HMAC-SHA256(secret, `"{timestamp}.{body}"`).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    signature(&hmac::Key::new(hmac::HMAC_SHA256, secret), timestamp, body)
}

fn signature(key: &hmac::Key, timestamp: i64, body: &[u8]) -> String {
    let mut context = hmac::Context::with_key(key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let hex: String = tag.as_ref().iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

impl Notifier for WebhookNotifier {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&payload(notification))
                .map_err(|error| DeliveryError::Reject(format!("encoding the payload: {error}")))?;
            let mut request = self.client.post(self.url.clone());
            for (name, value) in &self.headers {
                request = request.header(name, value);
            }
            request = request.header(CONTENT_TYPE, "application/json");
            if let Some(key) = &self.key {
                let timestamp = chrono::Utc::now().timestamp();
                request = request
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .header(SIGNATURE_HEADER, signature(key, timestamp, &body));
            }
            http::send(request.body(body), &self.redactor).await.map(drop)
        })
    }
}
