//! The Loki exporter's config: the push URL, the tenant, credentials and stream labels.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{HttpParts, HttpTarget, http_target};
use crate::config::{Ctx, Path};
use crate::http::BasicAuthSpec;

/// Grafana Loki's push API.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoki {
    /// The push URL, such as `http://loki:3100/loki/api/v1/push`.
    pub url: String,
    /// The tenant, sent as `X-Scope-OrgID`.
    pub tenant: Option<String>,
    /// A bearer token, as a secret reference.
    pub bearer_token: Option<String>,
    /// Basic authentication; the password as a secret reference.
    pub basic_auth: Option<BasicAuthSpec>,
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca_file: Option<String>,
    /// How long one request may take (default `30s`).
    pub timeout: Option<String>,
    /// Labels added to every stream (keep them few: each value is a stream).
    pub labels: Option<BTreeMap<String, String>>,
    /// Where it runs: `scheduler` (default) or `probers`.
    pub on: Option<String>,
}

/// Loki push, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LokiSpec {
    /// Where and how to send; its `labels` are added to every stream.
    pub target: HttpTarget,
    /// The tenant.
    pub tenant: Option<String>,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawLoki) -> Option<LokiSpec> {
    let target = http_target(
        cx,
        at,
        HttpParts {
            url: &raw.url,
            url_key: "url",
            bearer_token: raw.bearer_token.as_deref(),
            basic_auth: raw.basic_auth,
            headers: BTreeMap::new(),
            ca_file: raw.ca_file,
            insecure_skip_verify: false,
            timeout: raw.timeout.as_deref(),
            labels: raw.labels.unwrap_or_default(),
            labels_key: "labels",
        },
    )?;
    Some(LokiSpec { target, tenant: raw.tenant })
}
