//! The Telegram notifier's config: the bot's token (a credential), the chat, how text is formatted, and the
//! Bot API's base URL.

use schemars::JsonSchema;
use serde::Deserialize;

use super::base_url;
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// The Bot API used when no `api_url` is set.
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// A Telegram chat, through a bot.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Telegram")]
pub struct RawTelegram {
    /// The bot's token from @BotFather (`123456:ABC...`). It is a credential: write it as a secret reference
    /// (`${env:TELEGRAM_BOT_TOKEN}`).
    pub bot_token: String,
    /// The chat: its numeric id (`-1001234567890` for a group or channel) or `@channelusername`.
    #[schemars(schema_with = "chat_id_schema")]
    pub chat_id: String,
    /// How the message is formatted: `HTML` (default), `MarkdownV2` or `none` (plain text).
    pub parse_mode: Option<String>,
    /// The Bot API's base URL (default `https://api.telegram.org`), for a local Bot API server or a proxy.
    pub api_url: Option<String>,
}

fn chat_id_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["integer", "string"]})
}

/// How Telegram reads a message's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseMode {
    /// Telegram's HTML subset (`<b>`, `<a href>`; `<`, `>`, `&` escaped).
    Html,
    /// MarkdownV2 (its reserved characters escaped).
    MarkdownV2,
    /// Plain text.
    None,
}

/// A Telegram chat, validated.
#[derive(Debug, Clone)]
pub struct TelegramSpec {
    /// The bot's token.
    pub bot_token: Template,
    /// The chat id or `@channelusername`.
    pub chat_id: String,
    /// How the text is formatted.
    pub parse_mode: ParseMode,
    /// The Bot API's base URL.
    pub api_url: Template,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawTelegram) -> Option<TelegramSpec> {
    let bot_token = cx.credential(&at.key("bot_token"), &raw.bot_token);
    let chat_id = raw.chat_id.trim();
    let numeric = chat_id.strip_prefix('-').unwrap_or(chat_id);
    let chat_ok = (!numeric.is_empty() && numeric.chars().all(|c| c.is_ascii_digit()))
        || chat_id
            .strip_prefix('@')
            .is_some_and(|name| name.len() >= 4 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !chat_ok {
        cx.error(&at.key("chat_id"), format!("{chat_id:?} is not a chat id such as -1001234567890 or @channelname"));
    }
    let parse_mode = match raw.parse_mode.as_deref() {
        None | Some("HTML") => Some(ParseMode::Html),
        Some("MarkdownV2") => Some(ParseMode::MarkdownV2),
        Some("none") => Some(ParseMode::None),
        Some(other) => {
            cx.error(&at.key("parse_mode"), format!("{other:?} is not one of HTML, MarkdownV2, none"));
            None
        }
    };
    let api_url = base_url(cx, &at.key("api_url"), raw.api_url.as_deref(), TELEGRAM_API_URL);
    let (bot_token, parse_mode, api_url) = (bot_token?, parse_mode?, api_url?);
    chat_ok.then(|| TelegramSpec { bot_token, chat_id: chat_id.to_owned(), parse_mode, api_url })
}
