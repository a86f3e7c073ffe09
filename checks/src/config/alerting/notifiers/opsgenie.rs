//! The Opsgenie notifier's config: the API integration's key (a credential) and which API: the US or EU
//! instance, or a base URL.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Credential, url_template};
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// The Alert API of Opsgenie's US instance.
pub const OPSGENIE_US_URL: &str = "https://api.opsgenie.com";
/// The Alert API of Opsgenie's EU instance.
pub const OPSGENIE_EU_URL: &str = "https://api.eu.opsgenie.com";

/// Opsgenie's Alert API v2.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Opsgenie")]
pub struct RawOpsgenie {
    /// The key of an API integration, sent as `Authorization: GenieKey ...`. Write it as a secret reference
    /// (`${env:OPSGENIE_API_KEY}`).
    pub api_key: String,
    /// The instance the account lives on: `us` (default, `https://api.opsgenie.com`) or `eu`
    /// (`https://api.eu.opsgenie.com`). Exclusive with `api_url`.
    pub region: Option<String>,
    /// The API's base URL, for a proxy. Exclusive with `region`.
    pub api_url: Option<String>,
}

/// Opsgenie, validated.
#[derive(Debug, Clone)]
pub struct OpsgenieSpec {
    /// The API key.
    pub api_key: Template,
    /// The API's base URL (`/v2/alerts` is appended).
    pub api_url: Template,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawOpsgenie) -> Option<OpsgenieSpec> {
    let api_key = cx.credential(&at.key("api_key"), &raw.api_key);
    let api_url = match (raw.region.as_deref(), raw.api_url.as_deref()) {
        (Some(_), Some(_)) => {
            cx.error_at_key(&at.key("api_url"), "set either `region` or `api_url`, not both");
            None
        }
        (None, Some(text)) => url_template(cx, &at.key("api_url"), text, Credential::WithQuery),
        (None | Some("us"), None) => Some(Template::literal(OPSGENIE_US_URL)),
        (Some("eu"), None) => Some(Template::literal(OPSGENIE_EU_URL)),
        (Some(other), None) => {
            cx.error(&at.key("region"), format!("{other:?} is not one of us, eu"));
            None
        }
    };
    Some(OpsgenieSpec { api_key: api_key?, api_url: api_url? })
}
