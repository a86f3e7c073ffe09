//! The PagerDuty notifier's config: the integration's routing key and the events endpoint.

use schemars::JsonSchema;
use serde::Deserialize;

use super::base_url;
use crate::config::{Ctx, Path};
use crate::secret::Template;

/// The PagerDuty events endpoint used when none is set.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty Events API v2.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PagerDuty")]
pub struct RawPagerDuty {
    /// The integration's routing key. Write it as a secret reference.
    pub routing_key: String,
    /// The events endpoint (default `https://events.pagerduty.com/v2/enqueue`).
    pub url: Option<String>,
}

/// PagerDuty Events API v2, validated.
#[derive(Debug, Clone)]
pub struct PagerDutySpec {
    /// The routing key.
    pub routing_key: Template,
    /// The events endpoint.
    pub url: Template,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawPagerDuty) -> Option<PagerDutySpec> {
    let routing_key = cx.credential(&at.key("routing_key"), &raw.routing_key);
    let url = base_url(cx, &at.key("url"), raw.url.as_deref(), PAGERDUTY_URL);
    Some(PagerDutySpec { routing_key: routing_key?, url: url? })
}
