//! The Discord notifier's config: a channel webhook URL (a credential) and the name the messages show.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Credential, url_template};
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// A Discord channel webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Discord")]
pub struct RawDiscord {
    /// The webhook URL (`https://discord.com/api/webhooks/ID/TOKEN`). It is a credential: write it as a secret
    /// reference (`${env:DISCORD_HOOK}`).
    pub url: String,
    /// The name the messages are posted under (default: the webhook's own name).
    pub username: Option<String>,
}

/// A Discord channel webhook, validated.
#[derive(Debug, Clone)]
pub struct DiscordSpec {
    /// The webhook URL.
    pub url: Template,
    /// The name the messages are posted under.
    pub username: Option<String>,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawDiscord) -> Option<DiscordSpec> {
    let url = url_template(cx, &at.key("url"), &raw.url, Credential::Always);
    if let Some(name) = &raw.username
        && (name.trim().is_empty() || name.chars().count() > 80)
    {
        cx.error(&at.key("username"), format!("{name:?}: a Discord username has 1 to 80 characters"));
        return None;
    }
    Some(DiscordSpec { url: url?, username: raw.username })
}
