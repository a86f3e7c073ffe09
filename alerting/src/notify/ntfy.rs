//! ntfy: `POST <topic URL>` with the message as a plain-text body and ntfy's `Title`, `Priority`, `Tags` and
//! `Click` headers; a bearer token or basic credentials when the server wants them. A non-ASCII title is
//! sent as an RFC 2047 encoded word, which ntfy decodes.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::BoxFuture;

use super::hook::SecretUrlHook;
use super::http;
use super::text;
use super::{BuildError, HttpAuth, resolve};
use crate::{DeliveryError, Notification, Notifier, Status};
use probenet_checks::config::alerting::notifiers::ntfy::{DEFAULT_PRIORITY, NtfySpec};

/// The tag (an emoji short code) of a firing alert.
pub const FIRING_TAG: &str = "rotating_light";
/// The tag of a resolved alert.
pub const RESOLVED_TAG: &str = "white_check_mark";
/// The priority of a resolved alert (`default`).
pub const RESOLVED_PRIORITY: u8 = 3;

/// How an [`NtfyNotifier`] is set up.
#[derive(Clone)]
pub struct NtfyOptions {
    /// The topic URL (`https://ntfy.sh/TOPIC`); on a public server the topic is a secret, never shown.
    pub url: String,
    /// Credentials, if the server wants them.
    pub auth: Option<HttpAuth>,
    /// The priority of firing alerts, 1 (min) to 5 (urgent).
    pub priority: u8,
    /// Extra tags on every message.
    pub tags: Vec<String>,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
}

impl Default for NtfyOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            auth: None,
            priority: DEFAULT_PRIORITY,
            tags: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for NtfyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtfyOptions")
            .field("url", &"<redacted>")
            .field("auth", &self.auth)
            .field("priority", &self.priority)
            .field("tags", &self.tags)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Publishes each notification to an ntfy topic.
pub struct NtfyNotifier {
    hook: SecretUrlHook,
    auth: Option<HttpAuth>,
    priority: u8,
    tags: Vec<String>,
}

impl fmt::Debug for NtfyNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtfyNotifier")
            .field("origin", &self.hook.origin())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl NtfyNotifier {
    /// Builds the notifier a config's `ntfy` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &NtfySpec) -> Result<Self, String> {
        let options = NtfyOptions {
            url: resolve(&spec.url)?,
            auth: HttpAuth::resolve(spec.auth.as_ref())?,
            priority: spec.priority,
            tags: spec.tags.clone(),
            ..NtfyOptions::default()
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options and builds the HTTP client.
    pub fn new(options: NtfyOptions) -> Result<Self, BuildError> {
        let url = http::parse_url("ntfy url", &options.url)?;
        if url.path().trim_matches('/').is_empty() {
            return Err(BuildError::Invalid("ntfy: the url names no topic".into()));
        }
        if !(1..=5).contains(&options.priority) {
            return Err(BuildError::Invalid(format!("ntfy: priority {} is not 1 to 5", options.priority)));
        }
        if let Some(tag) = options.tags.iter().find(|tag| tag.contains(',') || !tag.is_ascii() || tag.is_empty()) {
            return Err(BuildError::Invalid(format!("ntfy: {tag:?} is not a tag")));
        }
        // The hook scrubs the URL's parts and this credential from errors.
        let secret = match &options.auth {
            Some(HttpAuth::Bearer(token)) => Some(token.clone()),
            Some(HttpAuth::Basic { password, .. }) => Some(password.clone()),
            None => None,
        };
        let hook = SecretUrlHook::with_secrets(url, secret, options.timeout)?;
        Ok(Self { hook, auth: options.auth, priority: options.priority, tags: options.tags })
    }

    /// The headers of a notification's message, in the order sent (authorization aside).
    pub fn headers(&self, notification: &Notification) -> Vec<(&'static str, String)> {
        let (priority, tag) = match notification.status {
            Status::Firing => (self.priority, FIRING_TAG),
            Status::Resolved => (RESOLVED_PRIORITY, RESOLVED_TAG),
        };
        let tags: Vec<&str> = std::iter::once(tag).chain(self.tags.iter().map(String::as_str)).collect();
        let mut headers = vec![
            ("Title", encode_header(&text::subject(notification))),
            ("Priority", priority.to_string()),
            ("Tags", tags.join(",")),
        ];
        if let Some(url) = notification.dashboard_url.as_ref().filter(|url| url.is_ascii()) {
            headers.push(("Click", url.clone()));
        }
        headers
    }
}

/// The plain-text body: the summary and the facts, one a line.
pub fn message(notification: &Notification) -> String {
    let mut out = format!("{}\n\n", notification.summary.trim());
    out.push_str(&text::fact_lines(notification, |label, value| format!("{label}: {value}")).join("\n"));
    out
}

/// A header value as is when printable ASCII, else as one RFC 2047 encoded word (UTF-8, base64).
fn encode_header(value: &str) -> String {
    let value = text::one_line(value);
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        value
    } else {
        format!("=?UTF-8?B?{}?=", BASE64.encode(value.as_bytes()))
    }
}

impl Notifier for NtfyNotifier {
    fn kind(&self) -> &'static str {
        "ntfy"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let mut request = self
                .hook
                .post()
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(message(notification));
            for (name, value) in self.headers(notification) {
                request = request.header(name, value);
            }
            request = match &self.auth {
                Some(HttpAuth::Bearer(token)) => request.bearer_auth(token),
                Some(HttpAuth::Basic { username, password }) => request.basic_auth(username, Some(password)),
                None => request,
            };
            self.hook.send(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::encode_header;

    #[test]
    fn non_ascii_titles_are_encoded_words() {
        assert_eq!(encode_header("[FIRING] a: b"), "[FIRING] a: b");
        assert_eq!(encode_header("é"), "=?UTF-8?B?w6k=?=");
    }
}
