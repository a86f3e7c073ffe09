//! The ntfy notifier's config: the topic URL, optional credentials, the priority of firing alerts and tags.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Credential, HttpAuth, http_auth, url_template};
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// An ntfy topic.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ntfy")]
pub struct RawNtfy {
    /// The topic's URL, such as `https://ntfy.sh/probenet-alerts` or `https://ntfy.example.com/ops`. On a
    /// public server anyone who knows the topic can read it: pick a hard-to-guess name, or use credentials.
    pub url: String,
    /// An access token (`tk_...`), sent as `Authorization: Bearer`. Write it as a secret reference.
    pub token: Option<String>,
    /// HTTP basic authentication.
    pub basic_auth: Option<crate::http::BasicAuthSpec>,
    /// The priority of firing alerts: `min`, `low`, `default`, `high` (default) or `urgent`, or 1 to 5. Resolved
    /// alerts are sent with `default`.
    #[serde(default)]
    #[schemars(schema_with = "priority_schema")]
    pub priority: Option<String>,
    /// Tags added to every message (ntfy shows emoji short codes such as `warning` as emojis).
    pub tags: Option<Vec<String>>,
}

fn priority_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 5},
            {"type": "string", "enum": ["min", "low", "default", "high", "urgent", "max"]}
        ]
    })
}

/// An ntfy topic, validated.
#[derive(Debug, Clone)]
pub struct NtfySpec {
    /// The topic URL.
    pub url: Template,
    /// Credentials, if any.
    pub auth: Option<HttpAuth>,
    /// The priority of firing alerts, 1 (min) to 5 (urgent).
    pub priority: u8,
    /// Extra tags.
    pub tags: Vec<String>,
}

/// The priority of firing alerts unless set: `high`.
pub const DEFAULT_PRIORITY: u8 = 4;

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawNtfy) -> Option<NtfySpec> {
    let url = url_template(cx, &at.key("url"), &raw.url, Credential::WithQuery);
    if let (Some(url), Ok(parsed)) = (&url, url::Url::parse(&raw.url))
        && !url.has_secrets()
        && parsed.path().trim_matches('/').is_empty()
    {
        cx.error(&at.key("url"), format!("{:?} names no topic: write it as https://ntfy.sh/TOPIC", raw.url));
        return None;
    }
    let auth = http_auth(cx, at, "token", raw.token.as_deref(), raw.basic_auth);
    let priority = match raw.priority.as_deref().map(str::trim) {
        None => Some(DEFAULT_PRIORITY),
        Some("1" | "min") => Some(1),
        Some("2" | "low") => Some(2),
        Some("3" | "default") => Some(3),
        Some("4" | "high") => Some(4),
        Some("5" | "urgent" | "max") => Some(5),
        Some(other) => {
            cx.error(&at.key("priority"), format!("{other:?} is not one of min, low, default, high, urgent or 1 to 5"));
            None
        }
    };
    let tags = raw.tags.unwrap_or_default();
    let mut ok = true;
    for (i, tag) in tags.iter().enumerate() {
        if tag.trim().is_empty() || tag.contains(',') || !tag.is_ascii() {
            cx.error(&at.key("tags").index(i), format!("{tag:?} is not a tag: ASCII, no commas"));
            ok = false;
        }
    }
    let (url, auth, priority) = (url?, auth.ok()?, priority?);
    ok.then_some(NtfySpec { url, auth, priority, tags })
}
