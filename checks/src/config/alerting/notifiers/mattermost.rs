//! The Mattermost notifier's config: an incoming-webhook URL (a credential), and the channel and name to
//! post as when the webhook allows overriding them.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Credential, url_template};
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// A Mattermost incoming webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Mattermost")]
pub struct RawMattermost {
    /// The webhook URL (`https://mattermost.example.com/hooks/KEY`). It is a credential: write it as a secret
    /// reference (`${env:MATTERMOST_HOOK}`).
    pub url: String,
    /// The channel to post to instead of the webhook's own, by name (`town-square`, or `@user` for a direct
    /// message).
    pub channel: Option<String>,
    /// The name to post as (the server must allow webhooks to override it).
    pub username: Option<String>,
}

/// A Mattermost webhook, validated.
#[derive(Debug, Clone)]
pub struct MattermostSpec {
    /// The webhook URL.
    pub url: Template,
    /// The channel to post to.
    pub channel: Option<String>,
    /// The name to post as.
    pub username: Option<String>,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawMattermost) -> Option<MattermostSpec> {
    let url = url_template(cx, &at.key("url"), &raw.url, Credential::Always);
    let mut ok = true;
    for (key, value) in [("channel", &raw.channel), ("username", &raw.username)] {
        if value.as_deref().is_some_and(|value| value.trim().is_empty()) {
            cx.error(&at.key(key), format!("`{key}` is empty: leave it out to use the webhook's own"));
            ok = false;
        }
    }
    let url = url?;
    ok.then_some(MattermostSpec { url, channel: raw.channel, username: raw.username })
}
