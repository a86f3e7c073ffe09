//! Discord through a channel webhook: a `content` line and one embed coloured by status, with the summary,
//! the facts as fields and the dashboard as the title's link (Discord's documented "Execute Webhook" body).
//! Mentions are disabled, so an error text holding `@everyone` pings nobody.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::BuildError;
use super::hook::SecretUrlHook;
use super::resolve;
use super::text::{self, truncate};
use crate::{DeliveryError, Notification, Notifier, Status};
use probenet_checks::config::alerting::notifiers::discord::DiscordSpec;

/// The embed colour of a firing alert (`#E01E5A`, as Slack's).
pub const FIRING_COLOR: u32 = 0xE0_1E5A;
/// The embed colour of a resolved alert (`#2EB67D`).
pub const RESOLVED_COLOR: u32 = 0x2E_B67D;

/// How a [`DiscordNotifier`] is set up.
#[derive(Clone, Default)]
pub struct DiscordOptions {
    /// The webhook URL (`https://discord.com/api/webhooks/ID/TOKEN`): a secret, never shown.
    pub url: String,
    /// The name the messages are posted under; `None`: the webhook's own.
    pub username: Option<String>,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
}

impl fmt::Debug for DiscordOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordOptions")
            .field("url", &"<redacted>")
            .field("username", &self.username)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Posts each notification to a Discord webhook.
pub struct DiscordNotifier {
    hook: SecretUrlHook,
    username: Option<String>,
}

impl fmt::Debug for DiscordNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.hook.debug_as("DiscordNotifier", f)
    }
}

impl DiscordNotifier {
    /// Builds the notifier a config's `discord` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &DiscordSpec) -> Result<Self, String> {
        let options =
            DiscordOptions { url: resolve(&spec.url)?, username: spec.username.clone(), ..DiscordOptions::default() };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the URL and builds the HTTP client.
    pub fn new(options: DiscordOptions) -> Result<Self, BuildError> {
        let hook = SecretUrlHook::new("discord url", &options.url, options.timeout)?;
        Ok(Self { hook, username: options.username })
    }

    /// The JSON body posted for a notification.
    pub fn payload(&self, notification: &Notification) -> Value {
        let subject = text::subject(notification);
        let fields: Vec<Value> = text::fields(notification)
            .into_iter()
            .filter(|(label, _)| *label != "Dashboard")
            .take(25)
            .map(|(label, value)| {
                let inline = !matches!(label, "Error" | "Labels" | "Target");
                json!({"name": label, "value": truncate(&value, 1024), "inline": inline})
            })
            .collect();
        let mut embed = Map::new();
        embed.insert("title".into(), json!(truncate(&subject, 256)));
        if let Some(url) = &notification.dashboard_url {
            embed.insert("url".into(), json!(url));
        }
        embed.insert("description".into(), json!(truncate(notification.summary.trim(), 4096)));
        let color = match notification.status {
            Status::Firing => FIRING_COLOR,
            Status::Resolved => RESOLVED_COLOR,
        };
        embed.insert("color".into(), json!(color));
        embed.insert("fields".into(), json!(fields));
        embed.insert("footer".into(), json!({"text": truncate(&format!("probenet · {}", notification.key), 2048)}));
        let at = notification.ended_ms.unwrap_or(notification.since_ms);
        embed.insert("timestamp".into(), json!(text::rfc3339_ms(at)));
        let mut body = Map::new();
        body.insert("content".into(), json!(truncate(&subject, 2000)));
        if let Some(username) = &self.username {
            body.insert("username".into(), json!(username));
        }
        body.insert("embeds".into(), json!([embed]));
        body.insert("allowed_mentions".into(), json!({"parse": []}));
        Value::Object(body)
    }
}

impl Notifier for DiscordNotifier {
    fn kind(&self) -> &'static str {
        "discord"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.hook.post_json(self.payload(notification)))
    }
}
