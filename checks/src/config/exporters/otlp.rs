//! The OTLP exporter's config: an OTLP/HTTP receiver (a Collector), its credentials, compression, resource
//! attributes and which signals to send.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{HttpParts, HttpTarget, http_target};
use crate::config::{Ctx, Path};
use crate::http::BasicAuthSpec;

/// The resource attribute every request carries; it cannot be configured.
pub const SERVICE_NAME: &str = "service.name";

/// OpenTelemetry's OTLP over HTTP with protobuf bodies.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOtlp {
    /// The receiver's base URL, such as `http://otel-collector:4318`; results are posted to `/v1/metrics` and
    /// `/v1/logs` under it.
    pub endpoint: String,
    /// A bearer token, as a secret reference: `${env:NAME}` or `${file:PATH}`.
    pub bearer_token: Option<String>,
    /// Basic authentication; the password as a secret reference.
    pub basic_auth: Option<BasicAuthSpec>,
    /// Extra request headers (values may hold secrets), such as `X-Scope-OrgID` or an API key header.
    pub headers: Option<BTreeMap<String, String>>,
    /// A PEM file of CA certificates to trust besides the system's, for an `https://` receiver.
    pub ca_file: Option<String>,
    /// Accept any certificate from the receiver. Only for tests; never in production.
    pub insecure_skip_verify: Option<bool>,
    /// How long one request may take (default `30s`).
    pub timeout: Option<String>,
    /// `gzip` or `none` (default): how request bodies are compressed.
    pub compression: Option<String>,
    /// Attributes added to the resource of every request (such as `deployment.environment: prod`), besides
    /// `service.name: probenet`, which is always set.
    pub resource_attributes: Option<BTreeMap<String, String>>,
    /// Send each result's series as gauges to `/v1/metrics` (default `true`).
    pub metrics: Option<bool>,
    /// Send each result as a log record to `/v1/logs` (default `true`).
    pub logs: Option<bool>,
    /// Where it runs: `scheduler` (default: every result, once) or `probers` (each prober sends its own).
    pub on: Option<String>,
}

/// How request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Not at all.
    #[default]
    None,
    /// gzip, with `Content-Encoding: gzip`.
    Gzip,
}

/// OTLP, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSpec {
    /// The receiver's base URL, credentials, headers and TLS (its `labels` are unused: see
    /// `resource_attributes`).
    pub target: HttpTarget,
    /// Body compression.
    pub compression: Compression,
    /// Resource attributes besides `service.name`.
    pub resource_attributes: BTreeMap<String, String>,
    /// Whether metrics are sent.
    pub metrics: bool,
    /// Whether log records are sent.
    pub logs: bool,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawOtlp) -> Option<OtlpSpec> {
    let compression = match raw.compression.as_deref() {
        None | Some("none") => Some(Compression::None),
        Some("gzip") => Some(Compression::Gzip),
        Some(other) => {
            cx.error(&at.key("compression"), format!("{other:?} is not `gzip` or `none`"));
            None
        }
    };
    let resource_attributes = raw.resource_attributes.unwrap_or_default();
    for name in resource_attributes.keys() {
        let place = at.key("resource_attributes").key(name);
        if name == SERVICE_NAME {
            cx.error_at_key(&place, "`service.name` is always `probenet`: it cannot be set");
        } else if name.trim().is_empty() {
            cx.error_at_key(&place, "an attribute name cannot be empty");
        }
    }
    let (metrics, logs) = (raw.metrics.unwrap_or(true), raw.logs.unwrap_or(true));
    if !metrics && !logs {
        cx.error_at_key(&at.key("metrics"), "`metrics` and `logs` are both false: this exporter would send nothing");
    }
    let target = http_target(
        cx,
        at,
        HttpParts {
            url: &raw.endpoint,
            url_key: "endpoint",
            bearer_token: raw.bearer_token.as_deref(),
            basic_auth: raw.basic_auth,
            headers: raw.headers.unwrap_or_default(),
            ca_file: raw.ca_file,
            insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
            timeout: raw.timeout.as_deref(),
            labels: BTreeMap::new(),
            labels_key: "resource_attributes",
        },
    )?;
    if target.url.query().is_some() || target.url.fragment().is_some() {
        cx.error(&at.key("endpoint"), "the endpoint is a base URL: `/v1/metrics` and `/v1/logs` are added to its path");
    }
    Some(OtlpSpec { target, compression: compression?, resource_attributes, metrics, logs })
}
