//! The generic webhook notifier's config: a URL, an optional HMAC key and extra headers.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Credential, url_template};
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// A generic webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Webhook")]
pub struct RawWebhook {
    /// The `http://` or `https://` URL notifications are posted to. May hold secrets (`${env:NAME}`).
    pub url: String,
    /// The HMAC-SHA256 key; the signature of the body is sent in the `X-Probenet-Signature` header. Write it as
    /// a secret reference.
    pub secret: Option<String>,
    /// Extra request headers. Values may hold secrets.
    pub headers: Option<BTreeMap<String, String>>,
}

/// A generic webhook, validated.
#[derive(Debug, Clone)]
pub struct WebhookSpec {
    /// The URL posted to (an `http(s)://` URL once resolved).
    pub url: Template,
    /// The HMAC-SHA256 key for the signature header.
    pub secret: Option<Template>,
    /// Extra headers (name, value).
    pub headers: Vec<(String, Template)>,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawWebhook) -> Option<WebhookSpec> {
    let url = url_template(cx, &at.key("url"), &raw.url, Credential::WithQuery);
    let secret = raw.secret.as_deref().and_then(|text| cx.credential(&at.key("secret"), text));
    let mut headers = Vec::new();
    for (name, value) in raw.headers.unwrap_or_default() {
        let header = at.key("headers").key(&name);
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            cx.error_at_key(&header, format!("{name:?} is not a valid header name"));
        } else if let Some(value) = cx.header_value(&header, &name, &value) {
            headers.push((name, value));
        }
    }
    Some(WebhookSpec { url: url?, secret, headers })
}
