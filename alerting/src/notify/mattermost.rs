//! Mattermost through an incoming webhook: a Markdown `text` with the subject in bold, the summary, the facts
//! and a link to the dashboard, optionally to another channel or under another name.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::BuildError;
use super::hook::SecretUrlHook;
use super::resolve;
use super::text;
use crate::{DeliveryError, Notification, Notifier};
use probenet_checks::config::alerting::notifiers::mattermost::MattermostSpec;

/// How a [`MattermostNotifier`] is set up.
#[derive(Clone, Default)]
pub struct MattermostOptions {
    /// The webhook URL (`https://mattermost.example.com/hooks/KEY`): a secret, never shown.
    pub url: String,
    /// The channel to post to instead of the webhook's own.
    pub channel: Option<String>,
    /// The name to post as.
    pub username: Option<String>,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
}

impl fmt::Debug for MattermostOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MattermostOptions")
            .field("url", &"<redacted>")
            .field("channel", &self.channel)
            .field("username", &self.username)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Posts each notification to a Mattermost webhook.
pub struct MattermostNotifier {
    hook: SecretUrlHook,
    channel: Option<String>,
    username: Option<String>,
}

impl fmt::Debug for MattermostNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.hook.debug_as("MattermostNotifier", f)
    }
}

impl MattermostNotifier {
    /// Builds the notifier a config's `mattermost` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &MattermostSpec) -> Result<Self, String> {
        let options = MattermostOptions {
            url: resolve(&spec.url)?,
            channel: spec.channel.clone(),
            username: spec.username.clone(),
            ..MattermostOptions::default()
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the URL and builds the HTTP client.
    pub fn new(options: MattermostOptions) -> Result<Self, BuildError> {
        let hook = SecretUrlHook::new("mattermost url", &options.url, options.timeout)?;
        Ok(Self { hook, channel: options.channel, username: options.username })
    }

    /// The JSON body posted for a notification.
    pub fn payload(&self, notification: &Notification) -> Value {
        let mut body = Map::new();
        body.insert("text".into(), json!(message(notification)));
        if let Some(channel) = &self.channel {
            body.insert("channel".into(), json!(channel));
        }
        if let Some(username) = &self.username {
            body.insert("username".into(), json!(username));
        }
        Value::Object(body)
    }
}

/// The message's Markdown text.
pub fn message(notification: &Notification) -> String {
    let mut out = format!("**{}**\n{}\n\n", text::subject(notification), notification.summary.trim());
    for line in text::fact_lines(notification, |label, value| format!("**{label}:** {value}")) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(url) = &notification.dashboard_url {
        out.push_str(&format!("[Open in probenet]({url})\n"));
    }
    out
}

impl Notifier for MattermostNotifier {
    fn kind(&self) -> &'static str {
        "mattermost"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.hook.post_json(self.payload(notification)))
    }
}
