//! Google Chat through a space's incoming webhook: one text message (Chat's `*bold*` and `<url|text>` link
//! syntax) with the subject, the summary, the facts and a link to the dashboard.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use super::BuildError;
use super::hook::SecretUrlHook;
use super::resolve;
use super::text;
use crate::{DeliveryError, Notification, Notifier};
use probenet_checks::config::alerting::notifiers::google_chat::GoogleChatSpec;

/// How a [`GoogleChatNotifier`] is set up.
#[derive(Clone, Default)]
pub struct GoogleChatOptions {
    /// The webhook URL (its `key` and `token` parameters are credentials): a secret, never shown.
    pub url: String,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
}

impl fmt::Debug for GoogleChatOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleChatOptions").field("url", &"<redacted>").field("timeout", &self.timeout).finish()
    }
}

/// Posts each notification to a Google Chat webhook.
pub struct GoogleChatNotifier {
    hook: SecretUrlHook,
}

impl fmt::Debug for GoogleChatNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.hook.debug_as("GoogleChatNotifier", f)
    }
}

impl GoogleChatNotifier {
    /// Builds the notifier a config's `google_chat` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &GoogleChatSpec) -> Result<Self, String> {
        let options = GoogleChatOptions { url: resolve(&spec.url)?, ..GoogleChatOptions::default() };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the URL and builds the HTTP client.
    pub fn new(options: GoogleChatOptions) -> Result<Self, BuildError> {
        Ok(Self { hook: SecretUrlHook::new("google_chat url", &options.url, options.timeout)? })
    }
}

/// The message's text.
pub fn message(notification: &Notification) -> String {
    let mut out = format!("*{}*\n{}\n\n", text::subject(notification), notification.summary.trim());
    for line in text::fact_lines(notification, |label, value| format!("{label}: {value}")) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(url) = &notification.dashboard_url {
        out.push_str(&format!("<{url}|Open in probenet>\n"));
    }
    out
}

impl Notifier for GoogleChatNotifier {
    fn kind(&self) -> &'static str {
        "google_chat"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.hook.post_json(json!({"text": message(notification)})))
    }
}
