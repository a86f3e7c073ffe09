//! The `http` kind as written in YAML, and its validation into [`HttpCheck`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, OneOrMany, Path};
use crate::net::{IpPlan, IpStrategy, IpVerdict, validate_ip_plan};
use crate::secret::Template;

/// An HTTP(S) request and what its response must look like.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// The URL to request, `http://` or `https://`.
    pub url: String,
    /// The request method (default `GET`).
    pub method: Option<String>,
    /// Request headers. Values may hold secrets: `${env:NAME}` or `${file:PATH}`.
    pub headers: Option<BTreeMap<String, String>>,
    /// The request body. May hold secrets.
    pub body: Option<String>,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuthSpec>,
    /// A bearer token sent as `Authorization: Bearer ...`. Write it as a secret reference.
    pub bearer_token: Option<String>,
    /// Follow redirects (default `true`).
    pub follow_redirects: Option<bool>,
    /// The most redirects followed before the check fails with reason `redirects` (default 10).
    pub max_redirects: Option<u32>,
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
    /// The HTTP version: `auto` (default: HTTP/2 when the server offers it over TLS, else HTTP/1.1), `1.1` or `2`.
    pub http_version: Option<String>,
    /// How much of the body is read (default `1MiB`); the rest is not downloaded.
    pub body_limit: Option<String>,
    /// TLS options for `https://` URLs.
    pub tls: Option<crate::tls::ClientTlsSpec>,
    /// What the response must look like. Without it, any 2xx status passes.
    pub expect: Option<HttpExpectSpec>,
}

/// Basic authentication credentials.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthSpec {
    /// The user name.
    pub username: String,
    /// The password. Write it as a secret reference: `${env:NAME}` or `${file:PATH}`.
    pub password: String,
}

pub use crate::net::IpVersion;

/// What an HTTP response must look like. Every assertion is evaluated and reported.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpExpectSpec {
    /// Accepted status codes and classes, such as `[200, 301, "3xx"]` (default `["2xx"]`).
    pub status: Option<OneOrMany<StatusSpec>>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// Text the body must not contain.
    pub body_not_contains: Option<String>,
    /// A regular expression the body must match.
    pub body_regex: Option<String>,
    /// A regular expression the body must not match.
    pub body_not_regex: Option<String>,
    /// Response headers that must be present and match a regular expression (header name to regex).
    pub headers: Option<BTreeMap<String, String>>,
    /// JSON body assertions: each a JSONPath (RFC 9535) with `equals`, `regex` or `exists`.
    pub json: Option<Vec<JsonAssertSpec>>,
    /// The whole run must take at most this long, or it fails with reason `duration`.
    pub max_duration: Option<String>,
    /// Limits per phase (`resolve`, `connect`, `tls`, `processing`, `transfer`), summed over redirects,
    /// such as `{connect: 200ms, processing: 1s}`; a slower phase fails with reason `duration`.
    pub max_phase_duration: Option<BTreeMap<String, String>>,
    /// A run slower than this passes but is reported as degraded.
    pub degraded_after: Option<String>,
    /// For `https://`: the fewest whole days before the earliest expiry in the certificate chain. Fails with
    /// reason `cert_expiring`. (An expired, untrusted or wrong-host certificate always fails, with its own
    /// reason, unless `tls.insecure` is set.)
    pub min_days_remaining: Option<u32>,
}

/// One JSON body assertion. With none of `equals`, `regex` and `exists`, the path must match something.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonAssertSpec {
    /// A JSONPath query such as `$.status` or `$.items[*].id`.
    pub path: String,
    /// A value (string, number, boolean, null, list or mapping) that one of the matched nodes must equal.
    pub equals: Option<serde_json::Value>,
    /// A regular expression that one of the matched nodes must match (non-strings are matched as JSON text).
    pub regex: Option<String>,
    /// `true`: the path must match at least one node; `false`: it must match none.
    pub exists: Option<bool>,
}

/// A status code (`200`) or class (`"2xx"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSpec(pub String);

impl<'de> Deserialize<'de> for StatusSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = StatusSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a status code such as 200 or a class such as \"2xx\"")
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<StatusSpec, E> {
                Ok(StatusSpec(value.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<StatusSpec, E> {
                Ok(StatusSpec(value.to_string()))
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<StatusSpec, E> {
                Ok(StatusSpec(value.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for StatusSpec {
    fn schema_name() -> Cow<'static, str> {
        "StatusSpec".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A status code such as 200, or a class such as \"2xx\".",
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {"type": "string", "pattern": "^([1-5][0-9][0-9]|[1-5]xx)$"}
            ]
        })
    }
}

/// An accepted status: one code or a whole class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    /// Exactly this code.
    Code(u16),
    /// Any code of this class (2 for 2xx).
    Class(u16),
}

impl StatusMatch {
    /// Whether `status` is accepted.
    pub fn matches(self, status: u16) -> bool {
        match self {
            Self::Code(code) => code == status,
            Self::Class(class) => status / 100 == class,
        }
    }
}

impl std::fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(code) => write!(f, "{code}"),
            Self::Class(class) => write!(f, "{class}xx"),
        }
    }
}

fn parse_status(text: &str) -> Option<StatusMatch> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        return class.parse::<u16>().ok().filter(|class| (1..=5).contains(class)).map(StatusMatch::Class);
    }
    lower.parse::<u16>().ok().filter(|code| (100..=599).contains(code)).map(StatusMatch::Code)
}

/// A validated HTTP check.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// The URL.
    pub url: url::Url,
    /// The method.
    pub method: http::Method,
    /// Request headers (values may hold secrets).
    pub headers: Vec<(http::HeaderName, Template)>,
    /// The request body.
    pub body: Option<Template>,
    /// Basic auth user and password.
    pub basic_auth: Option<(String, Template)>,
    /// A bearer token.
    pub bearer_token: Option<Template>,
    /// The most redirects followed; 0 means redirects are not followed.
    pub max_redirects: u32,
    /// Address family preference.
    pub ip_version: IpVersion,
    /// Which addresses of the host are probed.
    pub ips: IpPlan,
    /// `None` for auto, else `1.1` or `2`.
    pub http_version: Option<HttpVersion>,
    /// The most body bytes read.
    pub body_limit: u64,
    /// TLS options.
    pub tls: crate::tls::ClientTls,
    /// Assertions.
    pub expect: HttpExpect,
}

/// A forced HTTP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 (over TLS by ALPN, over plain TCP with prior knowledge).
    Http2,
}

/// A validated JSON body assertion.
#[derive(Debug, Clone)]
pub struct JsonAssert {
    /// The query as written.
    pub text: String,
    /// The parsed query.
    pub path: serde_json_path::JsonPath,
    /// What the matched nodes must satisfy.
    pub test: JsonTest,
}

/// What a JSON assertion checks.
#[derive(Debug, Clone)]
pub enum JsonTest {
    /// One matched node equals this value.
    Equals(serde_json::Value),
    /// One matched node matches this regex.
    Regex(Regex),
    /// The path matches something (true) or nothing (false).
    Exists(bool),
}

/// The phases of an HTTP check, in order.
pub const PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

/// Validated assertions.
#[derive(Debug, Clone)]
pub struct HttpExpect {
    /// Accepted statuses.
    pub status: Vec<StatusMatch>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// Text the body must not contain.
    pub body_not_contains: Option<String>,
    /// Regex the body must match.
    pub body_regex: Option<Regex>,
    /// Regex the body must not match.
    pub body_not_regex: Option<Regex>,
    /// Header name and the regex its value must match.
    pub headers: Vec<(http::HeaderName, Regex)>,
    /// JSON body assertions.
    pub json: Vec<JsonAssert>,
    /// The longest acceptable run.
    pub max_duration: Option<Duration>,
    /// The longest acceptable time per phase.
    pub max_phase_duration: Vec<(&'static str, Duration)>,
    /// Slower than this is degraded.
    pub degraded_after: Option<Duration>,
    /// The fewest days before the earliest certificate expiry.
    pub min_days_remaining: Option<u32>,
}

const DEFAULT_MAX_REDIRECTS: u32 = 10;
const DEFAULT_BODY_LIMIT: u64 = 1 << 20;

impl KindSpec for HttpSpec {
    type Check = HttpCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<HttpCheck> {
        let url = match url::Url::parse(&self.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
            Ok(url) if url.host().is_none() => {
                cx.error(&path.key("url"), format!("{:?} has no host", self.url));
                None
            }
            Ok(url) => {
                cx.error(&path.key("url"), format!("{:?}: scheme {:?} is not http or https", self.url, url.scheme()));
                None
            }
            Err(error) => {
                cx.error(&path.key("url"), format!("{:?} is not a valid URL: {error}", self.url));
                None
            }
        };
        if url.as_ref().is_some_and(|url| url.password().is_some()) {
            cx.error(&path.key("url"), "put credentials in `basic_auth` with a secret reference, not in the URL");
        }
        let host =
            url.as_ref().and_then(|url| url.host_str()).map(|host| host.trim_start_matches('[').trim_end_matches(']'));
        let ips = validate_ip_plan(cx, path, self.ip_strategy, self.ip_verdict, host);
        let method_text = self.method.as_deref().unwrap_or("GET");
        let method = match http::Method::from_bytes(method_text.as_bytes()) {
            Ok(method) if method_text.bytes().all(|b| b.is_ascii_uppercase()) => Some(method),
            _ => {
                cx.error(&path.key("method"), format!("{method_text:?} is not an HTTP method such as GET or POST"));
                None
            }
        };
        let mut headers = Vec::new();
        for (name, value) in self.headers.unwrap_or_default() {
            let at = path.key("headers").key(&name);
            let parsed = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| cx.error_at_key(&at, format!("{name:?} is not a valid header name")))
                .ok();
            if let (Some(parsed), Some(template)) = (parsed, cx.header_value(&at, &name, &value)) {
                headers.push((parsed, template));
            }
        }
        let body = self.body.as_deref().and_then(|text| cx.template(&path.key("body"), text));
        let basic_auth = self.basic_auth.and_then(|auth| {
            let password = cx.credential(&path.key("basic_auth").key("password"), &auth.password)?;
            Some((auth.username, password))
        });
        let bearer_token = self.bearer_token.as_deref().and_then(|text| cx.credential(&path.key("bearer_token"), text));
        if bearer_token.is_some() && basic_auth.is_some() {
            cx.error_at_key(&path.key("bearer_token"), "set either `basic_auth` or `bearer_token`, not both");
        }
        let max_redirects = match self.follow_redirects {
            Some(false) => 0,
            _ => self.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
        };
        let http_version = validate_http_version(cx, &path.key("http_version"), self.http_version.as_deref());
        let body_limit = match self.body_limit.as_deref() {
            Some(text) => cx.size(&path.key("body_limit"), text),
            None => Some(DEFAULT_BODY_LIMIT),
        };
        let tls = crate::tls::validate_client_tls(cx, &path.key("tls"), self.tls);
        let expect = validate_expect(cx, &path.key("expect"), self.expect.unwrap_or_default());
        Some(HttpCheck {
            url: url?,
            method: method?,
            headers,
            body,
            basic_auth,
            bearer_token,
            max_redirects,
            ip_version: self.ip_version.unwrap_or(IpVersion::Any),
            ips,
            http_version: http_version?,
            body_limit: body_limit?,
            tls: tls?,
            expect: expect?,
        })
    }
}

/// Validates JSON body assertions written at `path` (a list): every error is recorded; `None` when any.
pub(crate) fn validate_json_asserts(
    cx: &mut Ctx<'_>,
    path: &Path,
    items: Vec<JsonAssertSpec>,
) -> Option<Vec<JsonAssert>> {
    let mut ok = true;
    let mut json = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = path.index(i);
        let query = match serde_json_path::JsonPath::parse(&item.path) {
            Ok(query) => Some(query),
            Err(error) => {
                cx.error(&at.key("path"), format!("{:?} is not a valid JSONPath: {error}", item.path));
                None
            }
        };
        let test = match (item.equals, item.regex, item.exists) {
            (Some(value), None, None) => Some(JsonTest::Equals(value)),
            (None, Some(text), None) => cx.regex(&at.key("regex"), &text).map(JsonTest::Regex),
            (None, None, exists) => Some(JsonTest::Exists(exists.unwrap_or(true))),
            _ => {
                cx.error(&at, "set only one of `equals`, `regex` and `exists`");
                None
            }
        };
        match (query, test) {
            (Some(path), Some(test)) => json.push(JsonAssert { text: item.path, path, test }),
            _ => ok = false,
        }
    }
    ok.then_some(json)
}

/// The `http_version` written at `path`: `None` for auto (the default).
pub(crate) fn validate_http_version(cx: &mut Ctx<'_>, path: &Path, text: Option<&str>) -> Option<Option<HttpVersion>> {
    match text {
        None | Some("auto") => Some(None),
        Some("1.1") => Some(Some(HttpVersion::Http1)),
        Some("2") | Some("2.0") => Some(Some(HttpVersion::Http2)),
        Some(other) => {
            cx.error(path, format!("{other:?} is not one of auto, 1.1, 2"));
            None
        }
    }
}

fn validate_expect(cx: &mut Ctx<'_>, path: &Path, spec: HttpExpectSpec) -> Option<HttpExpect> {
    let mut ok = true;
    let status = match spec.status {
        None => vec![StatusMatch::Class(2)],
        Some(list) => {
            if list.is_empty() {
                cx.error(&path.key("status"), "the list of accepted statuses is empty");
                ok = false;
            }
            let mut out = Vec::new();
            for (i, item) in list.iter().enumerate() {
                match parse_status(&item.0) {
                    Some(parsed) => out.push(parsed),
                    None => {
                        cx.error(
                            &path.key("status").index(i),
                            format!("{:?} is not a status code or class (such as 200 or \"2xx\")", item.0),
                        );
                        ok = false;
                    }
                }
            }
            out
        }
    };
    let mut regex = |cx: &mut Ctx<'_>, key: &str, text: Option<String>| match text {
        Some(text) => {
            let compiled = cx.regex(&path.key(key), &text);
            ok &= compiled.is_some();
            compiled
        }
        None => None,
    };
    let body_regex = regex(cx, "body_regex", spec.body_regex);
    let body_not_regex = regex(cx, "body_not_regex", spec.body_not_regex);
    let mut headers = Vec::new();
    for (name, pattern) in spec.headers.unwrap_or_default() {
        let at = path.key("headers").key(&name);
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => match cx.regex(&at, &pattern) {
                Some(compiled) => headers.push((header, compiled)),
                None => ok = false,
            },
            Err(_) => {
                cx.error_at_key(&at, format!("{name:?} is not a valid header name"));
                ok = false;
            }
        }
    }
    let json = validate_json_asserts(cx, &path.key("json"), spec.json.unwrap_or_default());
    ok &= json.is_some();
    let json = json.unwrap_or_default();
    let mut max_phase_duration = Vec::new();
    for (phase, text) in spec.max_phase_duration.unwrap_or_default() {
        let at = path.key("max_phase_duration").key(&phase);
        match PHASES.iter().find(|known| **known == phase) {
            Some(known) => match cx.duration(&at, &text) {
                Some(limit) => max_phase_duration.push((*known, limit)),
                None => ok = false,
            },
            None => {
                let hint = crate::config::suggest(&phase, PHASES)
                    .map(|close| format!(" (did you mean {close:?}?)"))
                    .unwrap_or_default();
                cx.error_at_key(&at, format!("{phase:?} is not a phase{hint}; phases: {}", PHASES.join(", ")));
                ok = false;
            }
        }
    }
    let max_duration = spec.max_duration.as_deref().map(|text| cx.duration(&path.key("max_duration"), text));
    let degraded_after = spec.degraded_after.as_deref().map(|text| cx.duration(&path.key("degraded_after"), text));
    if matches!(max_duration, Some(None)) || matches!(degraded_after, Some(None)) {
        ok = false;
    }
    let (max_duration, degraded_after) = (max_duration.flatten(), degraded_after.flatten());
    if let (Some(max), Some(degraded)) = (max_duration, degraded_after)
        && degraded >= max
    {
        cx.error(&path.key("degraded_after"), "`degraded_after` must be shorter than `max_duration`");
        ok = false;
    }
    ok.then_some(HttpExpect {
        status,
        body_contains: spec.body_contains,
        body_not_contains: spec.body_not_contains,
        body_regex,
        body_not_regex,
        headers,
        json,
        max_duration,
        max_phase_duration,
        degraded_after,
        min_days_remaining: spec.min_days_remaining,
    })
}
