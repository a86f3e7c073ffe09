//! The `grpc` kind as written in YAML, and its validation into [`GrpcCheck`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};
use crate::http::{JsonAssert, JsonAssertSpec};
use crate::net::{IpPlan, IpStrategy, IpVerdict, IpVersion, validate_ip_plan};
use crate::secret::Template;

/// A gRPC server: the standard health check (`grpc.health.v1.Health/Check`) and, optionally, a unary call whose
/// types come from the server's reflection service. Over HTTP/2, on one fresh connection.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcSpec {
    /// The server as `host:port`, such as `api.example.com:443` or `[2001:db8::1]:50051`.
    pub target: String,
    /// TLS options, the same as `http`'s. TLS is the default; set `plaintext: true` for a server without it.
    pub tls: Option<crate::tls::ClientTlsSpec>,
    /// Speak HTTP/2 without TLS (prior knowledge), for servers that have no TLS (default `false`). Cannot be
    /// set with `tls`.
    pub plaintext: Option<bool>,
    /// Which address family to use: `any` (default: the first address the resolver gives), `ipv4` or `ipv6`.
    pub ip_version: Option<IpVersion>,
    /// Which addresses of the host to probe: `first` (default: one, the first the resolver gives of the
    /// `ip_version` family) or `all` (each address of that family, at most 16, all at once within the check's
    /// timeout; the result holds one entry per address under `ips` and each address gets its own
    /// `probenet_ip_success{ip}` series). `all` needs a host name, not an IP address.
    pub ip_strategy: Option<IpStrategy>,
    /// With `ip_strategy: all`, when the check is up: `all` (default: every address is up) or `any` (at least
    /// one is). The error of a failed run names each failing address.
    pub ip_verdict: Option<IpVerdict>,
    /// Request metadata sent with every call, such as `{authorization: "Bearer ${env:TOKEN}"}`. Values may hold
    /// secrets: `${env:NAME}` or `${file:PATH}`. Names are lowercase ASCII; `grpc-*`, `content-type`, `te`
    /// and `user-agent` are the protocol's own and cannot be set.
    pub metadata: Option<BTreeMap<String, String>>,
    /// The health check. Without `health` and `call`, the server's overall health (service `""`) is checked.
    pub health: Option<GrpcHealthSpec>,
    /// A unary call, after the health check when both are set.
    pub call: Option<GrpcCallSpec>,
    /// The largest message accepted from the server (a response, a reflection answer), from `1KiB` to `64MiB`
    /// (default `4MiB`). A larger one fails the check with reason `protocol`.
    pub max_message_size: Option<String>,
}

/// A call of `grpc.health.v1.Health/Check`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcHealthSpec {
    /// The service to ask about, such as `my.package.Orders` (default `""`: the server as a whole).
    pub service: Option<String>,
    /// The status the server must answer: `serving` (default) or `not_serving`. Any other answer fails the
    /// check with reason `status`; a service the server does not know (`SERVICE_UNKNOWN`, or the `NOT_FOUND`
    /// error) fails with a message saying so.
    pub expect: Option<ServingStatus>,
}

/// A health status the server may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServingStatus {
    /// `SERVING`.
    Serving,
    /// `NOT_SERVING`.
    NotServing,
}

impl ServingStatus {
    /// The protocol's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Serving => "SERVING",
            Self::NotServing => "NOT_SERVING",
        }
    }
}

/// A unary call described by the server's reflection service (`grpc.reflection.v1`, else `v1alpha`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcCallSpec {
    /// The method as `package.Service/Method`, such as `shop.Orders/GetOrder`. It must be unary.
    pub method: String,
    /// The request message in protobuf's JSON mapping (default `{}`), such as `{id: 42}`. An unknown field fails
    /// the check with reason `protocol`.
    pub request: Option<serde_json::Value>,
    /// What the answer must be.
    pub expect: Option<GrpcExpectSpec>,
}

/// Assertions on a call's answer.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcExpectSpec {
    /// The gRPC status the call must end with, by name: `OK` (default), `NOT_FOUND`, `PERMISSION_DENIED`...
    pub status: Option<String>,
    /// JSONPath assertions on the response message in protobuf's JSON mapping (field names in lowerCamelCase,
    /// fields at their default value included, 64-bit integers as strings), like `http`'s `json`.
    pub json: Option<Vec<JsonAssertSpec>>,
}

/// A validated gRPC check.
#[derive(Debug, Clone)]
pub struct GrpcCheck {
    /// The target as written.
    pub target: String,
    /// Its host, without brackets.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS options, `None` for plaintext.
    pub tls: Option<crate::tls::ClientTls>,
    /// Address family preference.
    pub ip_version: IpVersion,
    /// Which addresses of the host are probed.
    pub ips: IpPlan,
    /// Metadata sent with every call (values may hold secrets).
    pub metadata: Vec<(http::HeaderName, Template)>,
    /// The health check, if one is made.
    pub health: Option<Health>,
    /// The unary call, if one is made.
    pub call: Option<Call>,
    /// The largest message accepted, in bytes.
    pub max_message_size: usize,
}

/// A validated health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The service asked about.
    pub service: String,
    /// The status it must answer.
    pub expect: ServingStatus,
}

/// A validated unary call.
#[derive(Debug, Clone)]
pub struct Call {
    /// `package.Service`.
    pub service: String,
    /// `Method`.
    pub method: String,
    /// The request, in JSON.
    pub request: serde_json::Value,
    /// The status code it must end with.
    pub status: u32,
    /// Assertions on the response.
    pub json: Vec<JsonAssert>,
}

impl Call {
    /// `package.Service/Method`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.service, self.method)
    }
}

/// The phases of a gRPC check, in order.
pub const PHASES: [&str; 4] = ["resolve", "connect", "tls", "processing"];

/// gRPC status codes by number.
pub const STATUS_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The name of a gRPC status code, `CODE_<n>` for one outside the table.
pub fn status_name(code: u32) -> String {
    usize::try_from(code)
        .ok()
        .and_then(|index| STATUS_NAMES.get(index))
        .map_or_else(|| format!("CODE_{code}"), |name| (*name).to_owned())
}

const DEFAULT_MAX_MESSAGE_SIZE: u64 = 4 << 20;
const MIN_MAX_MESSAGE_SIZE: u64 = 1 << 10;
const MAX_MAX_MESSAGE_SIZE: u64 = 64 << 20;
/// The most metadata entries.
const MAX_METADATA: usize = 64;
/// Metadata the client writes itself.
const RESERVED_METADATA: [&str; 4] = ["content-type", "te", "user-agent", "host"];

impl KindSpec for GrpcSpec {
    type Check = GrpcCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<GrpcCheck> {
        let target = validate_target(cx, &path.key("target"), &self.target);
        let plaintext = self.plaintext.unwrap_or(false);
        let tls = if plaintext && self.tls.is_some() {
            cx.error_at_key(&path.key("plaintext"), "set either `tls` or `plaintext: true`, not both");
            None
        } else if plaintext {
            Some(None)
        } else {
            crate::tls::validate_client_tls(cx, &path.key("tls"), self.tls).map(Some)
        };
        let metadata = validate_metadata(cx, &path.key("metadata"), self.metadata.unwrap_or_default());
        let health = self.health.map(|spec| Health {
            service: spec.service.unwrap_or_default(),
            expect: spec.expect.unwrap_or(ServingStatus::Serving),
        });
        let call = match self.call {
            Some(spec) => validate_call(cx, &path.key("call"), spec).map(Some),
            None => Some(None),
        };
        let max_message_size = match self.max_message_size.as_deref() {
            None => Some(DEFAULT_MAX_MESSAGE_SIZE),
            Some(text) => cx.size(&path.key("max_message_size"), text).and_then(|size| {
                let fits = (MIN_MAX_MESSAGE_SIZE..=MAX_MAX_MESSAGE_SIZE).contains(&size);
                if !fits {
                    cx.error(&path.key("max_message_size"), format!("{text:?} is not between 1KiB and 64MiB"));
                }
                fits.then_some(size)
            }),
        };
        let host = target.as_ref().map(|(host, _)| host.as_str());
        let ips = validate_ip_plan(cx, path, self.ip_strategy, self.ip_verdict, host);
        let (host, port) = target?;
        let call = call?;
        // Neither: the server's overall health.
        let health = match (&health, &call) {
            (None, None) => Some(Health { service: String::new(), expect: ServingStatus::Serving }),
            _ => health,
        };
        Some(GrpcCheck {
            target: self.target,
            host,
            port,
            tls: tls?,
            ip_version: self.ip_version.unwrap_or(IpVersion::Any),
            ips,
            metadata: metadata?,
            health,
            call,
            max_message_size: usize::try_from(max_message_size?).unwrap_or(usize::MAX),
        })
    }
}

fn validate_target(cx: &mut Ctx<'_>, path: &Path, text: &str) -> Option<(String, u16)> {
    if text.contains("://") {
        cx.error(path, format!("{text:?}: write the target as host:port, without a scheme"));
        return None;
    }
    let (host, port) = cx.host_port(path, text, None)?;
    Some((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
}

fn validate_metadata(
    cx: &mut Ctx<'_>,
    path: &Path,
    metadata: BTreeMap<String, String>,
) -> Option<Vec<(http::HeaderName, Template)>> {
    if metadata.len() > MAX_METADATA {
        cx.error(path, format!("{} entries: at most {MAX_METADATA}", metadata.len()));
        return None;
    }
    let mut ok = true;
    let mut out = Vec::new();
    for (name, value) in metadata {
        let at = path.key(&name);
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !valid {
            cx.error_at_key(
                &at,
                format!("{name:?} is not a metadata name: lowercase letters, digits, `-`, `_` and `.`"),
            );
            ok = false;
            continue;
        }
        if name.starts_with("grpc-") || RESERVED_METADATA.contains(&name.as_str()) {
            cx.error_at_key(&at, format!("{name:?} is the protocol's own metadata and cannot be set"));
            ok = false;
            continue;
        }
        let parsed = http::HeaderName::from_bytes(name.as_bytes()).ok();
        match (parsed, cx.header_value(&at, &name, &value)) {
            (Some(parsed), Some(template)) => out.push((parsed, template)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn validate_call(cx: &mut Ctx<'_>, path: &Path, spec: GrpcCallSpec) -> Option<Call> {
    let method = match spec.method.split_once('/') {
        Some((service, method)) if is_full_name(service) && !method.is_empty() && method.bytes().all(is_name_byte) => {
            Some((service.to_owned(), method.to_owned()))
        }
        _ => {
            cx.error(
                &path.key("method"),
                format!("{:?} is not a method: write it as package.Service/Method", spec.method),
            );
            None
        }
    };
    let request = spec.request.unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
    let request_ok = request.is_object();
    if !request_ok {
        cx.error(&path.key("request"), "the request is a message: write it as a mapping, such as `{id: 42}`");
    }
    let expect = spec.expect.unwrap_or(GrpcExpectSpec { status: None, json: None });
    let at = path.key("expect");
    let status = match expect.status.as_deref() {
        None => Some(0),
        Some(text) => {
            let upper = text.to_ascii_uppercase();
            let found = STATUS_NAMES.iter().position(|name| *name == upper).and_then(|i| u32::try_from(i).ok());
            if found.is_none() {
                cx.error(
                    &at.key("status"),
                    format!("{text:?} is not a gRPC status: use one of {}", STATUS_NAMES.join(", ")),
                );
            }
            found
        }
    };
    let json = crate::http::spec::validate_json_asserts(cx, &at.key("json"), expect.json.unwrap_or_default());
    if let (Some(code), Some(json)) = (status, &json)
        && code != 0
        && !json.is_empty()
    {
        cx.error_at_key(&at.key("json"), "a call that must fail has no response to assert on: drop `json`");
        return None;
    }
    let (service, method) = method?;
    request_ok.then_some(Call { service, method, request, status: status?, json: json? })
}

/// `package.Service`: dot-separated identifiers.
fn is_full_name(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(|part| !part.is_empty() && part.bytes().all(is_name_byte))
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_follow_the_codes() {
        assert_eq!(status_name(0), "OK");
        assert_eq!(status_name(5), "NOT_FOUND");
        assert_eq!(status_name(16), "UNAUTHENTICATED");
        assert_eq!(status_name(99), "CODE_99");
    }

    #[test]
    fn full_names_are_dotted_identifiers() {
        assert!(is_full_name("shop.v1.Orders") && is_full_name("Echo"));
        assert!(!is_full_name("shop..Orders") && !is_full_name("") && !is_full_name("shop/Orders"));
    }
}
