//! Slack through an incoming webhook: a `text` line and one attachment coloured by status, with the
//! summary, the facts as fields and the dashboard as the title's link (Slack's documented webhook payload).

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use super::BuildError;
use super::hook::SecretUrlHook;
use super::resolve;
use super::text;
use crate::{DeliveryError, Notification, Notifier, Status};
use probenet_checks::config::alerting::notifiers::slack::SlackSpec;

/// The attachment colour of a firing alert.
pub const FIRING_COLOR: &str = "#E01E5A";
/// The attachment colour of a resolved alert.
pub const RESOLVED_COLOR: &str = "#2EB67D";

/// How a [`SlackNotifier`] is set up.
#[derive(Clone, Default)]
pub struct SlackOptions {
    /// The incoming webhook URL (`https://hooks.slack.com/services/...`): a secret, never shown.
    pub url: String,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
}

impl fmt::Debug for SlackOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackOptions").field("url", &"<redacted>").field("timeout", &self.timeout).finish()
    }
}

/// Posts each notification to a Slack incoming webhook.
pub struct SlackNotifier {
    hook: SecretUrlHook,
}

impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.hook.debug_as("SlackNotifier", f)
    }
}

impl SlackNotifier {
    /// Builds the notifier a config's `slack` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &SlackSpec) -> Result<Self, String> {
        let options = SlackOptions { url: resolve(&spec.url)?, ..SlackOptions::default() };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the URL and builds the HTTP client.
    pub fn new(options: SlackOptions) -> Result<Self, BuildError> {
        Ok(Self { hook: SecretUrlHook::new("slack url", &options.url, options.timeout)? })
    }
}

/// Escapes the three characters Slack's mrkdwn reserves.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The JSON body posted to Slack.
pub fn payload(notification: &Notification) -> serde_json::Value {
    let subject = escape(&text::subject(notification));
    let fields: Vec<serde_json::Value> = text::fields(notification)
        .into_iter()
        .filter(|(label, _)| *label != "Dashboard")
        .map(|(label, value)| {
            let short = !matches!(label, "Error" | "Labels" | "Target");
            json!({"title": label, "value": escape(&value), "short": short})
        })
        .collect();
    let color = match notification.status {
        Status::Firing => FIRING_COLOR,
        Status::Resolved => RESOLVED_COLOR,
    };
    let mut attachment = json!({
        "fallback": subject,
        "color": color,
        "title": subject,
        "text": escape(notification.summary.trim()),
        "fields": fields,
        "footer": format!("probenet · {}", escape(&notification.key)),
        "ts": notification.ended_ms.unwrap_or(notification.since_ms) / 1000,
    });
    if let (Some(url), Some(object)) = (&notification.dashboard_url, attachment.as_object_mut()) {
        object.insert("title_link".to_owned(), json!(url));
    }
    json!({"text": subject, "attachments": [attachment]})
}

impl Notifier for SlackNotifier {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.hook.post_json(payload(notification)))
    }
}
