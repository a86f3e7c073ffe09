//! Telegram through the Bot API: `POST <api>/bot<token>/sendMessage` with the chat, the text (HTML,
//! MarkdownV2 or plain) and link previews off. The token sits in the path, so the URL is never shown.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::BuildError;
use super::hook::SecretUrlHook;
use super::http;
use super::resolve;
use super::text::{self, truncate};
use crate::{DeliveryError, Notification, Notifier};
use probenet_checks::config::alerting::notifiers::telegram::{ParseMode, TELEGRAM_API_URL, TelegramSpec};

/// The longest message Telegram takes, in characters (after its markup is parsed); the text is cut below it.
const MAX_TEXT: usize = 4000;

/// How a [`TelegramNotifier`] is set up.
#[derive(Clone)]
pub struct TelegramOptions {
    /// The bot's token (a secret, never shown).
    pub bot_token: String,
    /// The chat: a numeric id or `@channelusername`.
    pub chat_id: String,
    /// How the text is formatted.
    pub parse_mode: ParseMode,
    /// The Bot API's base URL; `https://api.telegram.org` unless overridden (tests, a local Bot API server).
    pub api_url: String,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
}

impl Default for TelegramOptions {
    fn default() -> Self {
        Self {
            bot_token: String::new(),
            chat_id: String::new(),
            parse_mode: ParseMode::Html,
            api_url: TELEGRAM_API_URL.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for TelegramOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramOptions")
            .field("bot_token", &"<redacted>")
            .field("chat_id", &self.chat_id)
            .field("parse_mode", &self.parse_mode)
            .field("api_url", &self.api_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends each notification as a Telegram message.
pub struct TelegramNotifier {
    hook: SecretUrlHook,
    chat_id: Value,
    parse_mode: ParseMode,
}

impl fmt::Debug for TelegramNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramNotifier")
            .field("origin", &self.hook.origin())
            .field("chat_id", &self.chat_id)
            .finish_non_exhaustive()
    }
}

impl TelegramNotifier {
    /// Builds the notifier a config's `telegram` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &TelegramSpec) -> Result<Self, String> {
        let options = TelegramOptions {
            bot_token: resolve(&spec.bot_token)?,
            chat_id: spec.chat_id.clone(),
            parse_mode: spec.parse_mode,
            api_url: resolve(&spec.api_url)?,
            ..TelegramOptions::default()
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options and builds the HTTP client.
    pub fn new(options: TelegramOptions) -> Result<Self, BuildError> {
        let token = options.bot_token.trim().to_owned();
        if token.is_empty() || token.contains(['/', '?', '#']) || token.chars().any(char::is_whitespace) {
            return Err(BuildError::Invalid("telegram: bot_token is empty or not a token".into()));
        }
        let chat_id = options.chat_id.trim();
        if chat_id.is_empty() {
            return Err(BuildError::Invalid("telegram: chat_id is empty".into()));
        }
        let mut url = http::parse_url("telegram api_url", &options.api_url)?;
        url.path_segments_mut()
            .map_err(|()| BuildError::Url("telegram api_url: cannot take a path".into()))?
            .pop_if_empty()
            .push(&format!("bot{token}"))
            .push("sendMessage");
        let hook = SecretUrlHook::with_secrets(url, [token], options.timeout)?;
        // A numeric id is sent as a number, a `@channel` as a string (the Bot API takes both).
        let chat_id = chat_id.parse::<i64>().map_or_else(|_| json!(chat_id), |id| json!(id));
        Ok(Self { hook, chat_id, parse_mode: options.parse_mode })
    }

    /// The JSON body posted for a notification.
    pub fn payload(&self, notification: &Notification) -> Value {
        let mut body = Map::new();
        body.insert("chat_id".into(), self.chat_id.clone());
        body.insert("text".into(), json!(message(notification, self.parse_mode)));
        match self.parse_mode {
            ParseMode::Html => body.insert("parse_mode".into(), json!("HTML")),
            ParseMode::MarkdownV2 => body.insert("parse_mode".into(), json!("MarkdownV2")),
            ParseMode::None => None,
        };
        body.insert("link_preview_options".into(), json!({"is_disabled": true}));
        Value::Object(body)
    }
}

/// Escapes text for Telegram's HTML: `&`, `<`, `>` and `"`.
fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Escapes text for MarkdownV2: every reserved character gets a backslash.
fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "_*[]()~`>#+-=|{}.!\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The message's text in the given format: the subject in bold, the summary, the facts, the dashboard link.
pub fn message(notification: &Notification, mode: ParseMode) -> String {
    let subject = text::subject(notification);
    let summary = truncate(notification.summary.trim(), text::MAX_FACT);
    let (head, facts, link) = match mode {
        ParseMode::Html => (
            format!("<b>{}</b>\n{}", html(&subject), html(&summary)),
            text::fact_lines(notification, |label, value| format!("<b>{label}:</b> {}", html(value))),
            notification.dashboard_url.as_ref().map(|url| format!("<a href=\"{}\">Open in probenet</a>", html(url))),
        ),
        ParseMode::MarkdownV2 => (
            format!("*{}*\n{}", markdown(&subject), markdown(&summary)),
            text::fact_lines(notification, |label, value| format!("*{label}:* {}", markdown(value))),
            notification
                .dashboard_url
                .as_ref()
                .map(|url| format!("[Open in probenet]({})", url.replace('\\', "\\\\").replace(')', "\\)"))),
        ),
        ParseMode::None => (
            format!("{subject}\n{summary}"),
            text::fact_lines(notification, |label, value| format!("{label}: {value}")),
            notification.dashboard_url.as_ref().map(|url| format!("Dashboard: {url}")),
        ),
    };
    let mut out = format!("{head}\n\n{}", facts.join("\n"));
    if let Some(link) = link {
        out.push_str(&format!("\n{link}"));
    }
    // Facts are cut already; this bounds a message with very many labels (cutting markup is then possible,
    // and Telegram refuses the message with a clear 400).
    truncate(&out, MAX_TEXT)
}

impl Notifier for TelegramNotifier {
    fn kind(&self) -> &'static str {
        "telegram"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.hook.post_json(self.payload(notification)))
    }
}

#[cfg(test)]
mod tests {
    use super::{html, markdown};

    #[test]
    fn escapes_for_each_parse_mode() {
        assert_eq!(html("a <b> & \"c\""), "a &lt;b&gt; &amp; &quot;c&quot;");
        assert_eq!(markdown("site-down: 2 of 3 (eu-west)."), "site\\-down: 2 of 3 \\(eu\\-west\\)\\.");
    }
}
