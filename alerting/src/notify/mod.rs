//! Notifiers that deliver [`Notification`](crate::Notification)s, and the dispatcher that queues and retries them.
//!
//! Every notifier is built from its own options struct, and its module maps the config's spec onto them
//! (`from_spec`); secrets arrive as
//! resolved strings and never appear in errors, logs or `Debug` output. Delivery is one attempt per call of
//! [`Notifier::deliver`](crate::Notifier::deliver); the [`Dispatcher`] around the notifiers owns queueing,
//! retries with backoff and the record of recent deliveries.

mod alertmanager;
mod discord;
mod dispatch;
mod email;
mod from_config;
mod google_chat;
mod hook;
mod http;
mod mattermost;
mod ntfy;
mod opsgenie;
mod pagerduty;
mod slack;
mod smtp;
mod teams;
mod telegram;
pub mod text;
mod webhook;

pub use alertmanager::{AlertmanagerNotifier, AlertmanagerOptions, HttpAuth};
pub use discord::{DiscordNotifier, DiscordOptions};
pub use dispatch::{DeliveryRecord, DeliveryStatus, Dispatcher, DispatcherOptions, NotifierCounters};
pub use email::{EmailNotifier, EmailOptions, SmtpTls};
pub use from_config::{notifier, notifiers};
pub use google_chat::{GoogleChatNotifier, GoogleChatOptions};
pub use mattermost::{MattermostNotifier, MattermostOptions};
pub use ntfy::{NtfyNotifier, NtfyOptions};
pub use opsgenie::{OpsgenieNotifier, OpsgenieOptions, opsgenie_priority};
pub use pagerduty::{PAGERDUTY_EVENTS_URL, PagerDutyNotifier, PagerDutyOptions, pagerduty_severity};
pub use probenet_checks::config::alerting::notifiers::telegram::ParseMode as TelegramParseMode;
pub use slack::{SlackNotifier, SlackOptions};
pub use teams::{TeamsNotifier, TeamsOptions};
pub use telegram::{TelegramNotifier, TelegramOptions};
pub use webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookNotifier, WebhookOptions, sign};

/// A secret template of a notifier's spec, resolved on this machine (the error never holds the secret).
fn resolve(template: &probenet_checks::secret::Template) -> Result<String, String> {
    template.resolve(&mut Vec::new()).map_err(|error| error.0)
}

/// Why a notifier could not be built from its options. Messages never hold a secret or a secret-bearing URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The URL does not parse or is not http(s).
    #[error("invalid url: {0}")]
    Url(String),
    /// The CA file cannot be read or holds no certificate.
    #[error("ca_file: {0}")]
    CaFile(String),
    /// An option has a value that cannot work (an empty address, a header that is not valid HTTP).
    #[error("{0}")]
    Invalid(String),
    /// The HTTP client could not be set up.
    #[error("http client: {0}")]
    Client(String),
}
