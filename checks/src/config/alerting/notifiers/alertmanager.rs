//! The Alertmanager notifier's config: the base URL and optional bearer or basic credentials.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Credential, HttpAuth, http_auth, url_template};
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// A Prometheus Alertmanager.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Alertmanager")]
pub struct RawAlertmanager {
    /// The Alertmanager's base URL, such as `http://alertmanager:9093`; alerts go to `/api/v2/alerts`.
    pub url: String,
    /// A bearer token. Write it as a secret reference.
    pub bearer_token: Option<String>,
    /// HTTP basic authentication.
    pub basic_auth: Option<crate::http::BasicAuthSpec>,
}

/// An Alertmanager, validated.
#[derive(Debug, Clone)]
pub struct AlertmanagerSpec {
    /// The base URL (`/api/v2/alerts` is appended).
    pub url: Template,
    /// Credentials, if any.
    pub auth: Option<HttpAuth>,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawAlertmanager) -> Option<AlertmanagerSpec> {
    let url = url_template(cx, &at.key("url"), &raw.url, Credential::WithQuery);
    let auth = http_auth(cx, at, "bearer_token", raw.bearer_token.as_deref(), raw.basic_auth).ok()?;
    Some(AlertmanagerSpec { url: url?, auth })
}
