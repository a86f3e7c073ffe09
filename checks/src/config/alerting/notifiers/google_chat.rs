//! The Google Chat notifier's config: a space's incoming-webhook URL, which is a credential.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Credential, url_template};
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// A Google Chat space's incoming webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GoogleChat")]
pub struct RawGoogleChat {
    /// The webhook URL (`https://chat.googleapis.com/v1/spaces/.../messages?key=...&token=...`). It is a
    /// credential: write it as a secret reference (`${env:GOOGLE_CHAT_HOOK}`).
    pub url: String,
}

/// A Google Chat webhook, validated.
#[derive(Debug, Clone)]
pub struct GoogleChatSpec {
    /// The webhook URL.
    pub url: Template,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawGoogleChat) -> Option<GoogleChatSpec> {
    let url = url_template(cx, &at.key("url"), &raw.url, Credential::Always)?;
    Some(GoogleChatSpec { url })
}
