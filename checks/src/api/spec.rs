//! The `api` kind as written in YAML, and its validation into [`ApiCheck`]: each step validates as an `http`
//! request (the same keys, messages and limits), plus its name, its captures and the variables it uses.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::vars::{Scope, StepText, is_name};
use crate::config::{Ctx, KindSpec, LITERAL_CREDENTIAL, Path, is_credential_header};
use crate::http::{BasicAuthSpec, HttpCheck, HttpExpectSpec, HttpSpec};
use crate::net::IpVersion;

/// A sequence of HTTP(S) requests run in order, each judged like an `http` check, where later requests use
/// values captured from earlier responses.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    /// The requests, run in order, each on fresh connections, from 1 to 20 steps. The first step that fails
    /// ends the run; the check's `timeout` covers every step.
    pub steps: Vec<ApiStepSpec>,
    /// Which address family every step uses: `any` (default), `ipv4` or `ipv6`.
    pub ip_version: Option<IpVersion>,
    /// The HTTP version of every step: `auto` (default), `1.1` or `2`.
    pub http_version: Option<String>,
    /// TLS options for every `https://` step, as `http`'s.
    pub tls: Option<crate::tls::ClientTlsSpec>,
}

/// One request of an `api` check. `url`, `headers` and `body` may hold secrets (`${env:NAME}`,
/// `${file:PATH}`) and values captured by earlier steps: `${steps.<step name>.<variable>}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiStepSpec {
    /// The step's name, unique in the check: 1 to 64 letters, digits, `_` and `-`. Errors name it, later steps
    /// refer to its captures by it, and its series carry it as the `step` label.
    pub name: String,
    /// The URL to request, `http://` or `https://`.
    pub url: String,
    /// The request method (default `GET`).
    pub method: Option<String>,
    /// Request headers, such as `{Authorization: "Bearer ${steps.login.token}"}`.
    pub headers: Option<BTreeMap<String, String>>,
    /// The request body.
    pub body: Option<String>,
    /// HTTP basic authentication, as `http`'s.
    pub basic_auth: Option<BasicAuthSpec>,
    /// A bearer token sent as `Authorization: Bearer ...`. Write it as a secret reference; to send a captured
    /// token, write the header: `headers: {Authorization: "Bearer ${steps.login.token}"}`.
    pub bearer_token: Option<String>,
    /// Follow redirects (default `true`).
    pub follow_redirects: Option<bool>,
    /// The most redirects followed before the step fails with reason `redirects` (default 10).
    pub max_redirects: Option<u32>,
    /// How much of the response body is read, at most `16MiB` (default `1MiB`); the rest is not downloaded.
    pub body_limit: Option<String>,
    /// What the response must look like, as `http`'s `expect`. Without it, any 2xx status passes.
    pub expect: Option<HttpExpectSpec>,
    /// Values to capture from the response for later steps, by variable name (1 to 64 letters, digits, `_` and
    /// `-`; at most 20): each exactly one of `json`, `regex` or `header`. A capture that finds nothing fails the
    /// step with reason `assertion`. Captured values are treated as secrets: results show their name and
    /// length, never the value.
    pub capture: Option<BTreeMap<String, CaptureSpec>>,
}

/// Where a captured value comes from: exactly one of `json`, `regex` and `header`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// A JSONPath (RFC 9535) into the body read as JSON: the first node matched (a string as is, anything
    /// else as JSON text).
    pub json: Option<String>,
    /// A regular expression on the body: its first capture group (the whole match without one).
    pub regex: Option<String>,
    /// A response header: its value.
    pub header: Option<String>,
}

/// A validated `api` check.
#[derive(Debug, Clone)]
pub struct ApiCheck {
    /// The steps, in order.
    pub steps: Vec<ApiStep>,
}

/// A validated step.
#[derive(Debug, Clone)]
pub struct ApiStep {
    /// Its name.
    pub name: String,
    /// The URL as written (it may use variables).
    pub url: StepText,
    /// The request as an `http` check: method, credentials, redirects, body limit, TLS and assertions. Its
    /// `url` is the step's with variables replaced by a placeholder; the run fills them in. Its headers and
    /// body are empty: the step's own come from `headers` and `body`.
    pub http: HttpCheck,
    /// Request headers.
    pub headers: Vec<(http::HeaderName, StepText)>,
    /// The request body.
    pub body: Option<StepText>,
    /// Values captured from the response, in name order.
    pub captures: Vec<Capture>,
}

/// A validated capture.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The variable name.
    pub name: String,
    /// Where the value comes from.
    pub from: CaptureFrom,
}

/// Where a captured value comes from.
#[derive(Debug, Clone)]
pub enum CaptureFrom {
    /// The first node a JSONPath matches.
    Json {
        /// The query as written.
        text: String,
        /// The parsed query.
        path: serde_json_path::JsonPath,
    },
    /// The first capture group of a regex on the body (the whole match without a group).
    Regex(regex::Regex),
    /// A response header.
    Header(http::HeaderName),
}

/// The most steps an `api` check may have.
pub const MAX_STEPS: usize = 20;
/// The most values one step may capture.
pub const MAX_CAPTURES: usize = 20;
/// The largest `body_limit` of a step.
pub const MAX_BODY_LIMIT: u64 = 16 << 20;
/// What stands for a variable when the shape of a URL is checked at validation.
const PLACEHOLDER: &str = "x";

impl KindSpec for ApiSpec {
    type Check = ApiCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<ApiCheck> {
        let steps_path = path.key("steps");
        if self.steps.is_empty() {
            cx.error(&steps_path, "an `api` check needs at least one step");
            return None;
        }
        if self.steps.len() > MAX_STEPS {
            cx.error(&steps_path, format!("`steps` has {} steps, more than the allowed {MAX_STEPS}", self.steps.len()));
            return None;
        }
        let mut ok = true;
        let names: Vec<String> = self.steps.iter().map(|step| step.name.clone()).collect();
        for (i, name) in names.iter().enumerate() {
            let at = steps_path.index(i).key("name");
            if !is_name(name) {
                cx.error(&at, format!("{name:?} is not a step name: 1 to 64 letters, digits, `_` and `-`"));
                ok = false;
            } else if let Some(first) = names[..i].iter().position(|earlier| earlier == name) {
                cx.error(&at, format!("duplicate step name {name:?} (first used by steps[{first}])"));
                ok = false;
            }
        }
        let captures: Vec<Vec<String>> = self
            .steps
            .iter()
            .map(|step| {
                let names = step.capture.as_ref().map(|map| map.keys().filter(|name| is_name(name)).cloned().collect());
                names.unwrap_or_default()
            })
            .collect();
        let http_version =
            crate::http::spec::validate_http_version(cx, &path.key("http_version"), self.http_version.as_deref());
        let tls = crate::tls::validate_client_tls(cx, &path.key("tls"), self.tls);
        let ip_version = self.ip_version.unwrap_or(IpVersion::Any);
        let mut steps = Vec::new();
        for (i, spec) in self.steps.into_iter().enumerate() {
            let scope = Scope { names: &names, current: i, captures: &captures };
            match validate_step(cx, &steps_path.index(i), spec, &scope) {
                Some(mut step) => {
                    step.http.ip_version = ip_version;
                    if let (Some(version), Some(tls)) = (http_version, &tls) {
                        step.http.http_version = version;
                        step.http.tls = tls.clone();
                    }
                    steps.push(step);
                }
                None => ok = false,
            }
        }
        (ok && http_version.is_some() && tls.is_some()).then_some(ApiCheck { steps })
    }
}

fn validate_step(cx: &mut Ctx<'_>, path: &Path, spec: ApiStepSpec, scope: &Scope<'_>) -> Option<ApiStep> {
    let url = StepText::parse(cx, &path.key("url"), &spec.url, scope);
    // The shape of the URL (scheme, host) is checked by `http`'s validation, with variables as placeholders.
    // As written when that parses (so messages show it), else with placeholders (a variable in the host).
    let url_shape = match &url {
        None => "http://invalid/".to_owned(),
        Some(url) => {
            let written = url.with_placeholders(None);
            if url::Url::parse(&written).is_ok() { written } else { url.with_placeholders(Some(PLACEHOLDER)) }
        }
    };
    let mut headers = Vec::new();
    let mut ok = url.is_some();
    for (name, value) in spec.headers.unwrap_or_default() {
        let at = path.key("headers").key(&name);
        let parsed = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| cx.error_at_key(&at, format!("{name:?} is not a valid header name")))
            .ok();
        let text = StepText::parse(cx, &at, &value, scope);
        if let Some(text) = &text
            && is_credential_header(&name)
            && !text.is_sensitive()
            && !value.trim().is_empty()
        {
            cx.warn(&at, LITERAL_CREDENTIAL);
        }
        match (parsed, text) {
            (Some(parsed), Some(text)) => headers.push((parsed, text)),
            _ => ok = false,
        }
    }
    let body = match spec.body.as_deref() {
        Some(text) => {
            let parsed = StepText::parse(cx, &path.key("body"), text, scope);
            ok &= parsed.is_some();
            parsed
        }
        None => None,
    };
    let captures = validate_captures(cx, &path.key("capture"), spec.capture.unwrap_or_default());
    let request = HttpSpec {
        url: url_shape,
        method: spec.method,
        headers: None,
        body: None,
        basic_auth: spec.basic_auth,
        bearer_token: spec.bearer_token,
        follow_redirects: spec.follow_redirects,
        max_redirects: spec.max_redirects,
        ip_version: None,
        ip_strategy: None,
        ip_verdict: None,
        http_version: None,
        body_limit: spec.body_limit,
        tls: None,
        expect: spec.expect,
    };
    let http = request.validate(cx, path)?;
    if http.body_limit > MAX_BODY_LIMIT {
        cx.error(&path.key("body_limit"), "an `api` step reads at most 16MiB of a body");
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(ApiStep { name: spec.name, url: url?, http, headers, body, captures: captures? })
}

fn validate_captures(cx: &mut Ctx<'_>, path: &Path, specs: BTreeMap<String, CaptureSpec>) -> Option<Vec<Capture>> {
    if specs.len() > MAX_CAPTURES {
        cx.error(path, format!("{} captures, more than the allowed {MAX_CAPTURES}", specs.len()));
        return None;
    }
    let mut ok = true;
    let mut out = Vec::new();
    for (name, spec) in specs {
        let at = path.key(&name);
        if !is_name(&name) {
            cx.error_at_key(&at, format!("{name:?} is not a variable name: 1 to 64 letters, digits, `_` and `-`"));
            ok = false;
            continue;
        }
        let from = match (spec.json, spec.regex, spec.header) {
            (Some(text), None, None) => match serde_json_path::JsonPath::parse(&text) {
                Ok(path) => Some(CaptureFrom::Json { text, path }),
                Err(error) => {
                    cx.error(&at.key("json"), format!("{text:?} is not a valid JSONPath: {error}"));
                    None
                }
            },
            (None, Some(text), None) => cx.regex(&at.key("regex"), &text).map(CaptureFrom::Regex),
            (None, None, Some(header)) => match http::HeaderName::from_bytes(header.as_bytes()) {
                Ok(header) => Some(CaptureFrom::Header(header)),
                Err(_) => {
                    cx.error(&at.key("header"), format!("{header:?} is not a valid header name"));
                    None
                }
            },
            _ => {
                cx.error(&at, "a capture needs exactly one of `json`, `regex` and `header`");
                None
            }
        };
        match from {
            Some(from) => out.push(Capture { name, from }),
            None => ok = false,
        }
    }
    ok.then_some(out)
}
