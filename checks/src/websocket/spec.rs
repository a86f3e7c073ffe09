//! The `websocket` kind as written in YAML, and its validation into [`WebsocketCheck`].

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};
use crate::http::JsonTest;
use crate::net::IpVersion;
use crate::secret::Template;

/// A WebSocket connection: the opening handshake, a conversation of messages, and the closing handshake.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebsocketSpec {
    /// The URL to open, `ws://` or `wss://`, such as `wss://chat.example.com/socket?room=status`.
    pub url: String,
    /// Headers of the opening handshake request, such as `{Authorization: "Bearer ${env:TOKEN}"}`. Values may
    /// hold secrets: `${env:NAME}` or `${file:PATH}`. The handshake's own headers (`Connection`, `Upgrade`,
    /// `Sec-WebSocket-*`) cannot be set; offer subprotocols with `subprotocols`.
    pub headers: Option<BTreeMap<String, String>>,
    /// Subprotocols to offer in `Sec-WebSocket-Protocol`, most preferred first, such as `[graphql-transport-ws]`.
    /// The server must choose one of them, or the check fails with reason `protocol`; the chosen one is reported.
    pub subprotocols: Option<Vec<String>>,
    /// Which address family to use: `any` (default: the first address the resolver gives), `ipv4` or `ipv6`.
    pub ip_version: Option<IpVersion>,
    /// TLS options for `wss://` URLs, the same as `http`'s. An expired, untrusted or wrong-host certificate fails
    /// with its own reason before the handshake, unless `insecure` is set.
    pub tls: Option<crate::tls::ClientTlsSpec>,
    /// Steps run in order once the connection is open, each a `send` or an `expect`, such as
    /// `[{send: ping}, {expect: {text: pong, within: 2s}}]`. Without it, the check opens and closes the connection.
    pub steps: Option<Vec<WebsocketStepSpec>>,
    /// How the connection must close (default `{code: 1000}`). After the last step probenet sends a close frame
    /// with code 1000 and waits for the server's, whose code must be `code` (a reply without a code counts as
    /// 1000). If the server closes first after the last step, its code must be `code` too; if it closes during a
    /// step, that step fails. A mismatch fails with reason `assertion`.
    pub close: Option<WebsocketCloseSpec>,
    /// The largest message (and frame) accepted from the server, from `1KiB` to `16MiB` (default `1MiB`). A larger
    /// one fails the check with reason `protocol`.
    pub max_message_size: Option<String>,
    /// The most frames (messages, pings, pongs) one `expect` reads while it waits for its message, from 1 to
    /// 10000 (default 100).
    pub max_frames: Option<u32>,
}

/// One step of a WebSocket conversation: exactly one of `send` or `expect`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebsocketStepSpec {
    /// A text message to send, as is. May hold secrets.
    pub send: Option<String>,
    /// What the next message from the server must be. A miss fails the check with reason `assertion`; the
    /// details say which step failed, why and what was received.
    pub expect: Option<WebsocketExpectSpec>,
}

/// What an awaited message must be: exactly one of `text`, `regex` and `json`. Binary messages are read as
/// UTF-8 text.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebsocketExpectSpec {
    /// The exact text of the message.
    pub text: Option<String>,
    /// A regular expression the message must match.
    pub regex: Option<String>,
    /// A JSONPath assertion on the message, read as JSON.
    pub json: Option<WebsocketJsonSpec>,
    /// How long to wait for the message, such as `2s` (default, and at most: until shortly before the check's
    /// timeout, so that the result still names the step and what came).
    pub within: Option<String>,
    /// Skip messages that do not match (up to `max_frames`) instead of failing at the first one (default
    /// `false`): for servers that interleave other messages, such as heartbeats.
    pub skip_others: Option<bool>,
}

/// A JSONPath (RFC 9535) assertion on a JSON message. With neither `equals` nor `matches`, the path must match
/// a node.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebsocketJsonSpec {
    /// A JSONPath query such as `$.type` or `$.items[*].id`.
    pub path: String,
    /// A value (string, number, boolean, null, list or mapping) that one of the matched nodes must equal.
    pub equals: Option<serde_json::Value>,
    /// A regular expression one of the matched nodes must match (non-strings are matched as JSON text).
    pub matches: Option<String>,
}

/// The expected closing handshake.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebsocketCloseSpec {
    /// The close code the server must send: 1000 (normal, the default) to 1003, 1007 to 1014, or 3000 to 4999.
    pub code: Option<u16>,
    /// How long to wait for the server's close frame after probenet's (default `2s`).
    pub within: Option<String>,
}

/// A validated WebSocket check.
#[derive(Debug, Clone)]
pub struct WebsocketCheck {
    /// The URL (`ws` or `wss`).
    pub url: url::Url,
    /// Its host, without brackets.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Handshake request headers (values may hold secrets).
    pub headers: Vec<(http::HeaderName, Template)>,
    /// Subprotocols offered, most preferred first.
    pub subprotocols: Vec<String>,
    /// Address family preference.
    pub ip_version: IpVersion,
    /// TLS options, for `wss`.
    pub tls: crate::tls::ClientTls,
    /// The conversation.
    pub steps: Vec<WebsocketStep>,
    /// The expected close.
    pub close: CloseExpect,
    /// The largest message accepted, in bytes.
    pub max_message_size: usize,
    /// The most frames one `expect` reads.
    pub max_frames: u32,
}

/// One validated step.
#[derive(Debug, Clone)]
pub enum WebsocketStep {
    /// Send this text (may hold secrets).
    Send(Template),
    /// Wait for a message like this.
    Expect(Expect),
}

/// A validated `expect` step.
#[derive(Debug, Clone)]
pub struct Expect {
    /// What the message must be.
    pub matcher: Matcher,
    /// How long to wait for it.
    pub within: Option<Duration>,
    /// Whether other messages are skipped.
    pub skip_others: bool,
}

/// What a message must be.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Exactly this text.
    Text(String),
    /// A match of this regex.
    Regex(regex::Regex),
    /// JSON whose nodes at this path pass the test.
    Json {
        /// The query as written.
        text: String,
        /// The parsed query.
        path: serde_json_path::JsonPath,
        /// What one of the matched nodes must satisfy (`Exists(true)` without `equals` or `matches`).
        test: JsonTest,
    },
}

/// The validated closing expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseExpect {
    /// The code the server must send.
    pub code: u16,
    /// How long to wait for the server's close frame.
    pub within: Duration,
}

/// The phases of a WebSocket check, in order.
pub const PHASES: [&str; 6] = ["resolve", "connect", "tls", "handshake", "messages", "close"];

/// The most steps a conversation may have.
const MAX_STEPS: usize = 100;
const DEFAULT_MAX_MESSAGE_SIZE: u64 = 1 << 20;
const MIN_MAX_MESSAGE_SIZE: u64 = 1 << 10;
const MAX_MAX_MESSAGE_SIZE: u64 = 16 << 20;
const DEFAULT_MAX_FRAMES: u32 = 100;
const MAX_MAX_FRAMES: u32 = 10_000;
const DEFAULT_CLOSE_WITHIN: Duration = Duration::from_secs(2);
/// Handshake headers the client writes itself.
const RESERVED_HEADERS: [&str; 6] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-accept",
];

impl KindSpec for WebsocketSpec {
    type Check = WebsocketCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<WebsocketCheck> {
        let url = validate_url(cx, &path.key("url"), &self.url);
        let headers = validate_headers(cx, &path.key("headers"), self.headers.unwrap_or_default());
        let subprotocols = validate_subprotocols(cx, &path.key("subprotocols"), self.subprotocols);
        let tls = crate::tls::validate_client_tls(cx, &path.key("tls"), self.tls);
        let steps = validate_steps(cx, &path.key("steps"), self.steps.unwrap_or_default());
        let close = validate_close(cx, &path.key("close"), self.close);
        let max_message_size = match self.max_message_size.as_deref() {
            None => Some(DEFAULT_MAX_MESSAGE_SIZE),
            Some(text) => cx.size(&path.key("max_message_size"), text).and_then(|size| {
                let fits = (MIN_MAX_MESSAGE_SIZE..=MAX_MAX_MESSAGE_SIZE).contains(&size);
                if !fits {
                    cx.error(&path.key("max_message_size"), format!("{text:?} is not between 1KiB and 16MiB"));
                }
                fits.then_some(size)
            }),
        };
        let max_frames = self.max_frames.unwrap_or(DEFAULT_MAX_FRAMES);
        if !(1..=MAX_MAX_FRAMES).contains(&max_frames) {
            cx.error(&path.key("max_frames"), format!("{max_frames} is not between 1 and {MAX_MAX_FRAMES}"));
        }
        let url = url?;
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        Some(WebsocketCheck {
            url,
            host,
            port,
            headers: headers?,
            subprotocols: subprotocols?,
            ip_version: self.ip_version.unwrap_or(IpVersion::Any),
            tls: tls?,
            steps: steps?,
            close: close?,
            max_message_size: usize::try_from(max_message_size?).unwrap_or(usize::MAX),
            max_frames: (1..=MAX_MAX_FRAMES).contains(&max_frames).then_some(max_frames)?,
        })
    }
}

fn validate_url(cx: &mut Ctx<'_>, path: &Path, text: &str) -> Option<url::Url> {
    let url = match url::Url::parse(text) {
        Ok(url) if url.host().is_none() => {
            cx.error(path, format!("{text:?} has no host"));
            return None;
        }
        Ok(url) if matches!(url.scheme(), "ws" | "wss") => url,
        Ok(url) => {
            cx.error(path, format!("{text:?}: scheme {:?} is not ws or wss", url.scheme()));
            return None;
        }
        Err(error) => {
            cx.error(path, format!("{text:?} is not a valid URL: {error}"));
            return None;
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        cx.error(path, "put credentials in `headers` with a secret reference, not in the URL");
        return None;
    }
    if url.fragment().is_some() {
        cx.error(path, format!("{text:?} has a fragment (`#...`), which a WebSocket URL cannot have"));
        return None;
    }
    Some(url)
}

fn validate_headers(
    cx: &mut Ctx<'_>,
    path: &Path,
    headers: BTreeMap<String, String>,
) -> Option<Vec<(http::HeaderName, Template)>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (name, value) in headers {
        let at = path.key(&name);
        let lower = name.to_ascii_lowercase();
        if lower == "sec-websocket-protocol" {
            cx.error_at_key(&at, "offer subprotocols with `subprotocols`, not a header");
            ok = false;
            continue;
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            cx.error_at_key(&at, format!("{name:?} is a header of the handshake itself and cannot be set"));
            ok = false;
            continue;
        }
        let parsed = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| cx.error_at_key(&at, format!("{name:?} is not a valid header name")))
            .ok();
        match (parsed, cx.header_value(&at, &name, &value)) {
            (Some(parsed), Some(template)) => out.push((parsed, template)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn validate_subprotocols(cx: &mut Ctx<'_>, path: &Path, list: Option<Vec<String>>) -> Option<Vec<String>> {
    let Some(list) = list else {
        return Some(Vec::new());
    };
    if list.is_empty() {
        cx.error(path, "the list of subprotocols is empty; leave `subprotocols` out to offer none");
        return None;
    }
    let mut ok = true;
    for (i, name) in list.iter().enumerate() {
        // An HTTP token (RFC 9110): visible ASCII but separators.
        let token =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            cx.error(
                &path.index(i),
                format!("{name:?} is not a subprotocol name: letters, digits and !#$%&'*+-.^_`|~"),
            );
            ok = false;
        } else if list[..i].contains(name) {
            cx.error(&path.index(i), format!("{name:?} is offered twice"));
            ok = false;
        }
    }
    ok.then_some(list)
}

fn validate_steps(cx: &mut Ctx<'_>, path: &Path, steps: Vec<WebsocketStepSpec>) -> Option<Vec<WebsocketStep>> {
    cx.steps(path, "steps", steps, MAX_STEPS, validate_step)
}

fn validate_step(cx: &mut Ctx<'_>, path: &Path, step: WebsocketStepSpec) -> Option<WebsocketStep> {
    match (step.send, step.expect) {
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("expect"), "a step has either `send` or `expect`, not both");
            None
        }
        (None, None) => {
            cx.error(path, "a step needs `send` (a message to send) or `expect` (the message to wait for)");
            None
        }
        (Some(text), None) => {
            if text.is_empty() {
                cx.error(&path.key("send"), "nothing to send: the text is empty");
                return None;
            }
            cx.template(&path.key("send"), &text).map(WebsocketStep::Send)
        }
        (None, Some(expect)) => validate_expect(cx, &path.key("expect"), expect).map(WebsocketStep::Expect),
    }
}

fn validate_expect(cx: &mut Ctx<'_>, path: &Path, spec: WebsocketExpectSpec) -> Option<Expect> {
    let within = match spec.within.as_deref() {
        Some(text) => match cx.duration(&path.key("within"), text) {
            Some(zero) if zero.is_zero() => {
                cx.error(&path.key("within"), "`within` must be longer than 0s");
                None
            }
            Some(within) => Some(Some(within)),
            None => None,
        },
        None => Some(None),
    };
    let matcher = match (spec.text, spec.regex, spec.json) {
        (Some(text), None, None) => Some(Matcher::Text(text)),
        (None, Some(pattern), None) => cx.regex(&path.key("regex"), &pattern).map(Matcher::Regex),
        (None, None, Some(json)) => validate_json(cx, &path.key("json"), json),
        (None, None, None) => {
            cx.error(path, "an `expect` needs one of `text`, `regex` and `json`");
            None
        }
        _ => {
            cx.error(path, "set only one of `text`, `regex` and `json`");
            None
        }
    };
    Some(Expect { matcher: matcher?, within: within?, skip_others: spec.skip_others.unwrap_or(false) })
}

fn validate_json(cx: &mut Ctx<'_>, path: &Path, spec: WebsocketJsonSpec) -> Option<Matcher> {
    let query = match serde_json_path::JsonPath::parse(&spec.path) {
        Ok(query) => Some(query),
        Err(error) => {
            cx.error(&path.key("path"), format!("{:?} is not a valid JSONPath: {error}", spec.path));
            None
        }
    };
    let test = match (spec.equals, spec.matches) {
        (Some(value), None) => Some(JsonTest::Equals(value)),
        (None, Some(pattern)) => cx.regex(&path.key("matches"), &pattern).map(JsonTest::Regex),
        (None, None) => Some(JsonTest::Exists(true)),
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("matches"), "set either `equals` or `matches`, not both");
            None
        }
    };
    Some(Matcher::Json { text: spec.path, path: query?, test: test? })
}

fn validate_close(cx: &mut Ctx<'_>, path: &Path, spec: Option<WebsocketCloseSpec>) -> Option<CloseExpect> {
    let Some(spec) = spec else {
        return Some(CloseExpect { code: 1000, within: DEFAULT_CLOSE_WITHIN });
    };
    let code = spec.code.unwrap_or(1000);
    let code_ok = is_sendable_close_code(code);
    if !code_ok {
        cx.error(
            &path.key("code"),
            format!("{code} is not a close code a server sends: use 1000 to 1003, 1007 to 1014, or 3000 to 4999"),
        );
    }
    let within = match spec.within.as_deref() {
        Some(text) => match cx.duration(&path.key("within"), text) {
            Some(zero) if zero.is_zero() => {
                cx.error(&path.key("within"), "`within` must be longer than 0s");
                None
            }
            other => other,
        },
        None => Some(DEFAULT_CLOSE_WITHIN),
    };
    code_ok.then_some(CloseExpect { code, within: within? })
}

/// Whether `code` may travel in a close frame (RFC 6455 section 7.4): not 1004, 1005, 1006 or 1015, which are
/// reserved or only reported locally, and nothing under 1000 or from 5000.
fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_close_codes_follow_rfc_6455() {
        for code in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(is_sendable_close_code(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000] {
            assert!(!is_sendable_close_code(code), "{code}");
        }
    }
}
