//! The remote-write exporter's config: a Prometheus remote-write receiver, its credentials and external labels.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{HttpParts, HttpTarget, http_target};
use crate::config::{Ctx, Path};
use crate::http::BasicAuthSpec;

/// Prometheus remote write.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteWrite {
    /// The receiver's URL, such as `http://127.0.0.1:8428/api/v1/write` (VictoriaMetrics) or
    /// `http://prometheus:9090/api/v1/write` (Prometheus with `--web.enable-remote-write-receiver`).
    pub url: String,
    /// A bearer token, as a secret reference: `${env:NAME}` or `${file:PATH}`.
    pub bearer_token: Option<String>,
    /// Basic authentication; the password as a secret reference.
    pub basic_auth: Option<BasicAuthSpec>,
    /// Extra request headers (values may hold secrets), such as `X-Scope-OrgID`.
    pub headers: Option<BTreeMap<String, String>>,
    /// A PEM file of CA certificates to trust besides the system's, for an `https://` receiver.
    pub ca_file: Option<String>,
    /// Accept any certificate from the receiver. Only for tests; never in production.
    pub insecure_skip_verify: Option<bool>,
    /// How long one request may take (default `30s`).
    pub timeout: Option<String>,
    /// Labels added to every series (for example `cluster: prod`).
    pub external_labels: Option<BTreeMap<String, String>>,
    /// Where it runs: `scheduler` (default: every result, once) or `probers` (each prober sends its own).
    pub on: Option<String>,
}

/// Prometheus remote write, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteSpec {
    /// The receiver, its credentials, headers and TLS; its `labels` are the external labels.
    pub target: HttpTarget,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawRemoteWrite) -> Option<RemoteWriteSpec> {
    let target = http_target(
        cx,
        at,
        HttpParts {
            url: &raw.url,
            url_key: "url",
            bearer_token: raw.bearer_token.as_deref(),
            basic_auth: raw.basic_auth,
            headers: raw.headers.unwrap_or_default(),
            ca_file: raw.ca_file,
            insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
            timeout: raw.timeout.as_deref(),
            labels: raw.external_labels.unwrap_or_default(),
            labels_key: "external_labels",
        },
    )?;
    Some(RemoteWriteSpec { target })
}
