//! The Slack notifier's config: an incoming-webhook URL, which is a credential.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Credential, url_template};
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// A Slack incoming webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Slack")]
pub struct RawSlack {
    /// The incoming webhook URL. It is a credential: write it as a secret reference (`${env:SLACK_HOOK}`).
    pub url: String,
}

/// A Slack incoming webhook, validated.
#[derive(Debug, Clone)]
pub struct SlackSpec {
    /// The webhook URL.
    pub url: Template,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawSlack) -> Option<SlackSpec> {
    let url = url_template(cx, &at.key("url"), &raw.url, Credential::Always)?;
    Some(SlackSpec { url })
}
