//! Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received", the replacement
//! of the retired Office 365 connectors): a `message` with one Adaptive Card (1.4) attachment holding the
//! title coloured by status, the summary, the facts as a FactSet and a button to the dashboard.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::BuildError;
use super::hook::SecretUrlHook;
use super::resolve;
use super::text::{self, truncate};
use crate::{DeliveryError, Notification, Notifier, Status};
use probenet_checks::config::alerting::notifiers::teams::TeamsSpec;

/// How a [`TeamsNotifier`] is set up.
#[derive(Clone, Default)]
pub struct TeamsOptions {
    /// The workflow's webhook URL (its `sig` parameter is a credential): a secret, never shown.
    pub url: String,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
}

impl fmt::Debug for TeamsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamsOptions").field("url", &"<redacted>").field("timeout", &self.timeout).finish()
    }
}

/// Posts each notification as an Adaptive Card to a Teams workflow.
pub struct TeamsNotifier {
    hook: SecretUrlHook,
}

impl fmt::Debug for TeamsNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.hook.debug_as("TeamsNotifier", f)
    }
}

impl TeamsNotifier {
    /// Builds the notifier a config's `teams` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &TeamsSpec) -> Result<Self, String> {
        let options = TeamsOptions { url: resolve(&spec.url)?, ..TeamsOptions::default() };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the URL and builds the HTTP client.
    pub fn new(options: TeamsOptions) -> Result<Self, BuildError> {
        Ok(Self { hook: SecretUrlHook::new("teams url", &options.url, options.timeout)? })
    }
}

/// The JSON body posted to Teams.
pub fn payload(notification: &Notification) -> Value {
    let color = match notification.status {
        Status::Firing => "Attention",
        Status::Resolved => "Good",
    };
    let facts: Vec<Value> = text::fields(notification)
        .into_iter()
        .filter(|(label, _)| *label != "Dashboard")
        .map(|(label, value)| json!({"title": label, "value": truncate(&value, text::MAX_FACT)}))
        .collect();
    let mut card = Map::new();
    card.insert("$schema".into(), json!("http://adaptivecards.io/schemas/adaptive-card.json"));
    card.insert("type".into(), json!("AdaptiveCard"));
    card.insert("version".into(), json!("1.4"));
    card.insert(
        "body".into(),
        json!([
            {"type": "TextBlock", "text": text::subject(notification), "weight": "Bolder", "size": "Medium",
             "color": color, "wrap": true},
            {"type": "TextBlock", "text": notification.summary.trim(), "wrap": true},
            {"type": "FactSet", "facts": facts},
        ]),
    );
    if let Some(url) = &notification.dashboard_url {
        card.insert("actions".into(), json!([{"type": "Action.OpenUrl", "title": "Open in probenet", "url": url}]));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

impl Notifier for TeamsNotifier {
    fn kind(&self) -> &'static str {
        "teams"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.hook.post_json(payload(notification)))
    }
}
