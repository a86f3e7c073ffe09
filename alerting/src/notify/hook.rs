//! What the notifiers whose URL is itself the credential share (Slack, Teams, Google Chat, Discord, Mattermost,
//! Telegram with its token in the path, ntfy with its topic): the URL, checked and never shown but for its
//! origin, the client, and one POST whose failure names no part of it.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::BuildError;
use super::http::{self, Redactor};
use crate::DeliveryError;

/// A webhook whose URL is a secret: every part of it is scrubbed from errors, and only its origin is shown.
pub(crate) struct SecretUrlHook {
    url: reqwest::Url,
    client: reqwest::Client,
    redactor: Redactor,
}

impl SecretUrlHook {
    /// Checks the URL (`label`, such as `slack url`, names it in errors) and builds the client; a zero
    /// `timeout` means 10 s.
    pub(crate) fn new(label: &str, url: &str, timeout: Duration) -> Result<Self, BuildError> {
        Self::with_secrets(http::parse_url(label, url)?, std::iter::empty(), timeout)
    }

    /// A hook to a URL checked and built already (Telegram's, with the bot token put into its path; ntfy's,
    /// with its topic checked), with more secrets to scrub from errors besides the URL's parts.
    pub(crate) fn with_secrets(
        url: reqwest::Url,
        secrets: impl IntoIterator<Item = String>,
        timeout: Duration,
    ) -> Result<Self, BuildError> {
        let client = http::client(timeout, None, false)?;
        let redactor = Redactor::new(Redactor::url_parts(&url).into_iter().chain(secrets));
        Ok(Self { url, client, redactor })
    }

    /// The part of the URL safe to show: scheme, host and port.
    pub(crate) fn origin(&self) -> String {
        http::origin(&self.url)
    }

    /// The `Debug` of the notifier `name` around this hook: its origin and nothing else.
    pub(crate) fn debug_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name).field("origin", &self.origin()).finish_non_exhaustive()
    }

    /// POSTs `body` as JSON and sends it as [`Self::send`] does.
    pub(crate) async fn post_json(&self, body: Value) -> Result<(), DeliveryError> {
        self.send(self.post().json(&body)).await
    }

    /// A POST to the URL, for a receiver that wants more than a JSON body (ntfy's headers and plain text);
    /// send it with [`Self::send`].
    pub(crate) fn post(&self) -> reqwest::RequestBuilder {
        self.client.post(self.url.clone())
    }

    /// Sends a request from [`Self::post`]: a 2xx answer is a delivery, anything else is sorted into retry
    /// or reject as [`http::send`] does, with every part of the URL (and the other secrets) scrubbed.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<(), DeliveryError> {
        http::send(request, &self.redactor).await.map(drop)
    }
}

impl fmt::Debug for SecretUrlHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.debug_as("SecretUrlHook", f)
    }
}
