//! The Microsoft Teams notifier's config: a Workflows webhook URL, which is a credential.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Credential, url_template};
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// A Microsoft Teams channel, through a Workflows ("When a Teams webhook request is received") webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Teams")]
pub struct RawTeams {
    /// The workflow's webhook URL. Its `sig` parameter is a credential: write the URL as a secret reference
    /// (`${env:TEAMS_HOOK}`).
    pub url: String,
}

/// A Microsoft Teams webhook, validated.
#[derive(Debug, Clone)]
pub struct TeamsSpec {
    /// The webhook URL.
    pub url: Template,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawTeams) -> Option<TeamsSpec> {
    let url = url_template(cx, &at.key("url"), &raw.url, Credential::Always)?;
    Some(TeamsSpec { url })
}
