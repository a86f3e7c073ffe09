//! Running an HTTP check: resolve, connect, TLS, request, body, redirects; then judging the response.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue, LOCATION, USER_AGENT};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::details::{HttpDetails, HttpResponse};
use super::spec::{HttpCheck, HttpExpect, HttpVersion, JsonAssert, JsonTest};
use crate::clock::{Clock, Marker, PhaseClocks, Wire};
use crate::details::Details as _;
use crate::net::describe;
use crate::outcome::Failure;
use crate::outcome::Judgement;
use crate::outcome::{Assertion, Outcome, Reason, State};
use crate::run::{Execute, RunContext};

const USER_AGENT_VALUE: &str = concat!("probenet/", env!("CARGO_PKG_VERSION"));

impl Execute for HttpCheck {
    async fn execute(&self, cx: &RunContext) -> Outcome {
        match run(self, cx).await {
            Ok(outcome) => outcome,
            Err(failure) => failure.into(),
        }
    }
}

/// The request parts that come from secrets, resolved once per run.
pub(crate) struct Prepared {
    /// Configured headers; the flag says the value holds a secret.
    pub(crate) headers: Vec<(HeaderName, HeaderValue, bool)>,
    pub(crate) authorization: Option<HeaderValue>,
    pub(crate) body: Bytes,
}

/// One response as far as it was read.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) version: &'static str,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) truncated: bool,
    pub(crate) tls: Option<crate::tls::Handshake>,
}

/// The final response of a request and how it was reached.
pub(crate) struct Fetched {
    pub(crate) response: Response,
    /// Redirects followed.
    pub(crate) redirects: u32,
    /// The URL that answered.
    pub(crate) url: url::Url,
}

async fn run(check: &HttpCheck, cx: &RunContext) -> Result<Outcome, Failure> {
    let prepared = prepare(check, cx)?;
    let mut clocks = PhaseClocks::default();
    let Fetched { response, redirects, url } = fetch(check, cx, &prepared, &mut clocks).await?;
    let total = cx.elapsed();
    let judged = judge(&check.expect, &response, total, &|phase| cx.phase_seconds(phase));
    let details = HttpDetails {
        response: Some(HttpResponse {
            status_code: response.status,
            http_version: response.version.to_owned(),
            redirects,
            final_url: url.to_string(),
            content_length: response.body.len(),
            body_truncated: response.truncated,
            tls: response.tls.is_some(),
        }),
        tls: response.tls.as_ref().map(crate::tls::Handshake::details).unwrap_or_default(),
        clocks: Some(clocks),
        remote_address: None,
    };
    let state = judged.state;
    let judgement = Judgement { assertions: judged.assertions, failure: judged.failure };
    let mut outcome = judgement.into_outcome(details.to_value());
    // Slow but correct is degraded: the reason says why, the state keeps it a success.
    outcome.state = state;
    Ok(outcome)
}

/// The request (and its redirects) on fresh connections, as `prepared`: every phase goes to the run's phases
/// and its clock to `clocks`.
pub(crate) async fn fetch(
    check: &HttpCheck,
    cx: &RunContext,
    prepared: &Prepared,
    clocks: &mut PhaseClocks,
) -> Result<Fetched, Failure> {
    let mut url = check.url.clone();
    let mut method = check.method.clone();
    let mut body = prepared.body.clone();
    let mut visited = vec![url.to_string()];
    let mut redirects = 0u32;
    let response = loop {
        let same_origin = url.origin() == check.url.origin();
        let request = HopRequest { url: &url, method: &method, prepared, body: body.clone(), same_origin };
        let response = hop(check, cx, request, clocks).await?;
        let location = response.headers.get(LOCATION).and_then(|value| value.to_str().ok());
        let follow = check.max_redirects > 0 && (300..400).contains(&response.status) && response.status != 304;
        let Some(location) = location.filter(|_| follow) else {
            break response;
        };
        let next = url.join(location).map_err(|error| {
            Failure::new(Reason::Protocol, format!("redirect to an invalid location {location:?}: {error}"))
        })?;
        if !matches!(next.scheme(), "http" | "https") {
            return Err(Failure::new(Reason::Redirects, format!("redirect to unsupported scheme {:?}", next.scheme())));
        }
        redirects += 1;
        cx.log(format!("{} redirect to {next}", response.status));
        if visited.contains(&next.to_string()) {
            visited.push(next.to_string());
            return Err(Failure::new(Reason::Redirects, format!("redirect loop: {}", visited.join(" -> "))));
        }
        if redirects > check.max_redirects {
            return Err(Failure::new(Reason::Redirects, format!("more than {} redirects", check.max_redirects)));
        }
        if response.status == 303 || (matches!(response.status, 301 | 302) && method == Method::POST) {
            method = Method::GET;
            body = Bytes::new();
        }
        visited.push(next.to_string());
        url = next;
    };
    Ok(Fetched { response, redirects, url })
}

/// A header value that may hold a secret: `Debug` does not show it, nor does its error.
pub(crate) fn sensitive_value(text: String, what: &str) -> Result<HeaderValue, Failure> {
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| Failure::new(Reason::Protocol, format!("{what}: the value is not a valid header value")))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Resolves the check's headers, credentials and body (the runtime remembers the secrets read for redaction).
pub(crate) fn prepare(check: &HttpCheck, cx: &RunContext) -> Result<Prepared, Failure> {
    let secret = |error: crate::secret::ResolveError| Failure::new(Reason::Secret, error.0);
    let value = sensitive_value;
    let mut headers = Vec::new();
    for (name, template) in &check.headers {
        let text = cx.resolve(template).map_err(secret)?;
        headers.push((name.clone(), value(text, &format!("header {name}"))?, template.has_secrets()));
    }
    let authorization = if let Some((user, password)) = &check.basic_auth {
        let password = cx.resolve(password).map_err(secret)?;
        let encoded = base64(format!("{user}:{password}").as_bytes());
        cx.remember_secret(&encoded);
        Some(value(format!("Basic {encoded}"), "basic_auth")?)
    } else if let Some(token) = &check.bearer_token {
        Some(value(format!("Bearer {}", cx.resolve(token).map_err(secret)?), "bearer_token")?)
    } else {
        None
    };
    let body = match &check.body {
        Some(template) => Bytes::from(cx.resolve(template).map_err(secret)?),
        None => Bytes::new(),
    };
    Ok(Prepared { headers, authorization, body })
}

/// What one hop asks for.
struct HopRequest<'a> {
    url: &'a url::Url,
    method: &'a Method,
    prepared: &'a Prepared,
    body: Bytes,
    /// Whether `url` is the configured URL's origin (credentials go only there).
    same_origin: bool,
}

/// One request on a fresh connection. Every phase is added to the run's phases, and its clock to `clocks`.
async fn hop(
    check: &HttpCheck,
    cx: &RunContext,
    request: HopRequest<'_>,
    clocks: &mut PhaseClocks,
) -> Result<Response, Failure> {
    let HopRequest { url, method, prepared, body, same_origin } = request;
    let kernel = crate::clock::kernel_allowed();
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = cx
        .timed("resolve", crate::net::resolve(cx, &host, port, check.ip_version))
        .await
        .map_err(|message| Failure::new(Reason::Dns, message))?;
    clocks.note("resolve", Clock::Stopwatch);
    cx.log(format!("resolved {host} to {}", addr.ip()));
    let started = Instant::now();
    let connected = TcpStream::connect(addr).await;
    let stopwatch = started.elapsed();
    let tcp = connected.map_err(|error| {
        cx.phase("connect", stopwatch);
        Failure::new(Reason::Connect, format!("connect to {addr}: {error}"))
    })?;
    let (connect, clock) = crate::clock::connect_phase(&tcp, stopwatch, kernel);
    cx.phase("connect", connect);
    clocks.note("connect", clock);
    tcp.set_nodelay(true).ok();
    let (tcp, marker) = Wire::new(tcp, kernel);

    let mut request = Request::builder().method(method.clone());
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let headers = request.headers_mut();
    if let Some(headers) = headers {
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        for (name, value, secret) in &prepared.headers {
            // Credentials, and any header holding a secret, go only to the origin they were configured for.
            if same_origin || !(*secret || *name == AUTHORIZATION) {
                headers.insert(name.clone(), value.clone());
            }
        }
        if let (Some(auth), true) = (&prepared.authorization, same_origin) {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        if !body.is_empty() {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
    }

    if url.scheme() == "https" {
        let alpn: &[&[u8]] = match check.http_version {
            None => &[b"h2", b"http/1.1"],
            Some(HttpVersion::Http2) => &[b"h2"],
            Some(HttpVersion::Http1) => &[b"http/1.1"],
        };
        // `server_name` belongs to the configured URL's host; a redirect to another host is checked as that host.
        let configured_host = check.url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let name = match &check.tls.server_name {
            Some(name) if host == configured_host => name.clone(),
            _ => host.clone(),
        };
        let (stream, seen) = check.tls.connect(cx, tcp, addr, &name, alpn, check.expect.min_days_remaining).await?;
        clocks.note("tls", Clock::Stopwatch);
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        if check.http_version == Some(HttpVersion::Http2) && !h2 {
            return Err(Failure::new(Reason::Protocol, "the server did not agree to HTTP/2"));
        }
        let request = finish(request, url, &authority, h2, body)?;
        exchange(cx, (stream, marker), h2, request, check.body_limit, Some(seen), clocks).await
    } else {
        let h2 = check.http_version == Some(HttpVersion::Http2);
        let request = finish(request, url, &authority, h2, body)?;
        exchange(cx, (tcp, marker), h2, request, check.body_limit, None, clocks).await
    }
}

fn finish(
    mut request: http::request::Builder,
    url: &url::Url,
    authority: &str,
    h2: bool,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Failure> {
    let path_and_query = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let uri = if h2 {
        format!("{}://{authority}{path_and_query}", url.scheme())
    } else {
        // A `Host` header from the config wins, as it does over HTTP/2 where it is sent as given.
        if let Some(headers) = request.headers_mut()
            && !headers.contains_key(HOST)
            && let Ok(value) = HeaderValue::from_str(authority)
        {
            headers.insert(HOST, value);
        }
        path_and_query
    };
    request
        .uri(uri)
        .body(Full::new(body))
        .map_err(|error| Failure::new(Reason::Protocol, format!("building the request: {error}")))
}

/// Aborts the spawned connection task when the run ends or is cancelled by its timeout.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The request and its response over `io`, whose [`Marker`] tells when the request left and when the
/// response came.
async fn exchange<S>(
    cx: &RunContext,
    (io, marker): (S, Marker),
    h2: bool,
    request: Request<Full<Bytes>>,
    body_limit: u64,
    tls: Option<crate::tls::Handshake>,
    clocks: &mut PhaseClocks,
) -> Result<Response, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    marker.arm();
    let io = TokioIo::new(marker.watch(io, h2));
    let protocol = |error: hyper::Error| Failure::new(Reason::Protocol, format!("http: {}", describe(&error)));
    let start = Instant::now();
    let (response, _connection) = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.map_err(protocol)?;
        let guard = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        (sender.send_request(request).await.map_err(protocol)?, guard)
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(protocol)?;
        let guard = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        (sender.send_request(request).await.map_err(protocol)?, guard)
    };
    let (processing, clock) = processing(marker.exchange(), start, Instant::now());
    cx.phase("processing", processing);
    clocks.note("processing", clock);

    let status = response.status().as_u16();
    let version = match response.version() {
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_10 => "1.0",
        _ => "1.1",
    };
    let (parts, mut incoming) = response.into_parts();
    let start = Instant::now();
    let limit = usize::try_from(body_limit).unwrap_or(usize::MAX);
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(frame) = incoming.frame().await {
        let frame =
            frame.map_err(|error| Failure::new(Reason::Body, format!("reading the body: {}", describe(&error))))?;
        if let Some(data) = frame.data_ref() {
            let room = limit.saturating_sub(body.len());
            if data.len() > room {
                body.extend_from_slice(&data[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(data);
        }
    }
    cx.phase("transfer", start.elapsed());
    clocks.note("transfer", Clock::Stopwatch);
    if truncated {
        cx.log(format!("body truncated at the body_limit of {body_limit} bytes"));
    }
    Ok(Response { status, version, headers: parts.headers, body, truncated, tls })
}

/// The processing phase: from the last request byte handed to the kernel (else from before the client's
/// handshake, `start`) to the kernel's receive stamp of the response's first byte when it lies in between,
/// else to `head`, when the client handed over the response head.
fn processing(exchange: crate::clock::Exchange, start: Instant, head: Instant) -> (Duration, Clock) {
    let sent = exchange.request_sent.filter(|sent| *sent <= head).unwrap_or(start);
    match exchange.first_byte {
        Some(first) if first >= sent && first <= head => (first - sent, Clock::KernelRx),
        _ => (head.saturating_duration_since(sent), Clock::Stopwatch),
    }
}

/// The verdict on a response.
pub(crate) struct Judged {
    pub(crate) state: State,
    pub(crate) assertions: Vec<Assertion>,
    pub(crate) failure: Option<(Reason, String)>,
}

/// Evaluates every assertion; the first failing one gives the reason.
pub(crate) fn judge(
    expect: &HttpExpect,
    response: &Response,
    total: Duration,
    phase: &dyn Fn(&str) -> Option<f64>,
) -> Judged {
    let body = String::from_utf8_lossy(&response.body);
    let mut judgement = Judgement::default();
    let mut check = |reason: Reason, name: &str, expected: String, observed: String, passed: bool| {
        judgement.check(reason, name, expected, observed, passed);
    };

    if let Some(seen) = &response.tls {
        for tls in &seen.judged.assertions {
            let reason = match tls.name.as_str() {
                "min_days_remaining" => Reason::CertExpiring,
                _ => Reason::Tls,
            };
            check(reason, &tls.name, tls.expected.clone(), tls.observed.clone(), tls.passed);
        }
    }
    let accepted = expect.status.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let status_ok = expect.status.iter().any(|status| status.matches(response.status));
    check(Reason::Status, "status", accepted, response.status.to_string(), status_ok);
    let snippet = |found: bool| if found { "found" } else { "not found" }.to_owned();
    if let Some(text) = &expect.body_contains {
        let found = body.contains(text.as_str());
        check(Reason::Body, "body_contains", format!("{text:?}"), snippet(found), found);
    }
    if let Some(text) = &expect.body_not_contains {
        let found = body.contains(text.as_str());
        check(Reason::Body, "body_not_contains", format!("no {text:?}"), snippet(found), !found);
    }
    if let Some(regex) = &expect.body_regex {
        let found = regex.find(&body).map(|m| quoted(m.as_str()));
        let passed = found.is_some();
        check(Reason::Body, "body_regex", format!("/{regex}/"), found.unwrap_or_else(|| "no match".to_owned()), passed);
    }
    if let Some(regex) = &expect.body_not_regex {
        let found = regex.find(&body).map(|m| quoted(m.as_str()));
        let passed = found.is_none();
        check(
            Reason::Body,
            "body_not_regex",
            format!("no /{regex}/"),
            found.unwrap_or_else(|| "no match".to_owned()),
            passed,
        );
    }
    for (name, regex) in &expect.headers {
        let value = response.headers.get(name).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let passed = value.as_deref().is_some_and(|value| regex.is_match(value));
        let observed = value.map(|value| quoted(&value)).unwrap_or_else(|| "absent".to_owned());
        check(Reason::Header, &format!("header {name}"), format!("/{regex}/"), observed, passed);
    }
    if !expect.json.is_empty() {
        let parsed = serde_json::from_slice::<serde_json::Value>(&response.body);
        for assertion in &expect.json {
            let name = format!("json {}", assertion.text);
            let (expected, observed, passed) = match &parsed {
                Err(error) => (json_expected(&assertion.test), format!("the body is not JSON: {error}"), false),
                Ok(document) => judge_json(assertion, document),
            };
            check(Reason::Body, &name, expected, observed, passed);
        }
    }
    let seconds = |duration: Duration| format!("{:.3}s", duration.as_secs_f64());
    for (name, limit) in &expect.max_phase_duration {
        let spent = Duration::from_secs_f64(phase(name).unwrap_or(0.0));
        let label = format!("max_phase_duration {name}");
        check(Reason::Duration, &label, format!("at most {}", seconds(*limit)), seconds(spent), spent <= *limit);
    }
    if let Some(max) = expect.max_duration {
        check(Reason::Duration, "max_duration", format!("at most {}", seconds(max)), seconds(total), total <= max);
    }
    let Judgement { assertions, mut failure } = judgement;
    let degraded = expect.degraded_after.is_some_and(|after| total > after);
    let state = match (&failure, degraded) {
        (Some(_), _) => State::Down,
        (None, true) => State::Degraded,
        (None, false) => State::Up,
    };
    if let (None, true, Some(after)) = (&failure, degraded, expect.degraded_after) {
        failure = Some((Reason::Duration, format!("degraded: took {}, more than {}", seconds(total), seconds(after))));
    }
    Judged { state, assertions, failure }
}

pub(crate) fn json_expected(test: &JsonTest) -> String {
    match test {
        JsonTest::Equals(value) => format!("a node equal to {value}"),
        JsonTest::Regex(regex) => format!("a node matching /{regex}/"),
        JsonTest::Exists(true) => "at least one node".to_owned(),
        JsonTest::Exists(false) => "no node".to_owned(),
    }
}

/// Evaluates one JSON assertion: (expected, observed, passed).
pub(crate) fn judge_json(assertion: &JsonAssert, document: &serde_json::Value) -> (String, String, bool) {
    let nodes = assertion.path.query(document).all();
    let observed = match nodes.as_slice() {
        [] => "no match".to_owned(),
        [one] => one.to_string(),
        many => format!("{} nodes, first {}", many.len(), many[0]),
    };
    let passed = match &assertion.test {
        JsonTest::Equals(value) => nodes.contains(&value),
        JsonTest::Regex(regex) => nodes.iter().any(|node| match node {
            serde_json::Value::String(text) => regex.is_match(text),
            other => regex.is_match(&other.to_string()),
        }),
        JsonTest::Exists(exists) => nodes.is_empty() != *exists,
    };
    (json_expected(&assertion.test), observed, passed)
}

/// An observed text, quoted. Not escaped or cut here: the runtime redacts secrets first, then bounds it.
fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::StatusMatch;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            version: "1.1",
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            truncated: false,
            tls: None,
        }
    }

    fn expect() -> HttpExpect {
        HttpExpect {
            status: vec![StatusMatch::Class(2)],
            body_contains: None,
            body_not_contains: None,
            body_regex: None,
            body_not_regex: None,
            headers: Vec::new(),
            json: Vec::new(),
            max_duration: None,
            max_phase_duration: Vec::new(),
            degraded_after: None,
            min_days_remaining: None,
        }
    }

    fn no_phases(_: &str) -> Option<f64> {
        None
    }

    fn json_assert(path: &str, test: JsonTest) -> JsonAssert {
        let parsed = serde_json_path::JsonPath::parse(path).unwrap_or_else(|error| panic!("{error}"));
        JsonAssert { text: path.to_owned(), path: parsed, test }
    }

    #[test]
    fn json_assertions_check_equals_regex_and_exists() {
        let mut e = expect();
        e.json = vec![
            json_assert("$.status", JsonTest::Equals(serde_json::json!("ok"))),
            json_assert(
                "$.items[*].id",
                JsonTest::Regex(regex::Regex::new("^4[0-9]$").unwrap_or_else(|e| panic!("{e}"))),
            ),
            json_assert("$.count", JsonTest::Equals(serde_json::json!(3))),
            json_assert("$.error", JsonTest::Exists(false)),
        ];
        let body = r#"{"status": "ok", "count": 3, "items": [{"id": 7}, {"id": 42}]}"#;
        let judged = judge(&e, &response(200, body), Duration::from_millis(5), &no_phases);
        assert_eq!(judged.state, State::Up, "{:?}", judged.assertions);

        let body = r#"{"status": "degraded", "count": 3, "items": [{"id": 7}], "error": "db down"}"#;
        let judged = judge(&e, &response(200, body), Duration::from_millis(5), &no_phases);
        assert_eq!(judged.failure.as_ref().map(|f| f.0), Some(Reason::Body));
        let passed: Vec<bool> = judged.assertions.iter().map(|a| a.passed).collect();
        assert_eq!(passed, vec![true, false, false, true, false]);
        assert_eq!(judged.assertions[1].observed, "\"degraded\"");

        let judged = judge(&e, &response(200, "<html>"), Duration::from_millis(5), &no_phases);
        assert!(judged.assertions[1].observed.starts_with("the body is not JSON"));
    }

    #[test]
    fn a_slow_phase_fails_with_reason_duration() {
        let mut e = expect();
        e.max_phase_duration = vec![("connect", Duration::from_millis(100)), ("processing", Duration::from_secs(1))];
        let phases = |name: &str| match name {
            "connect" => Some(0.25),
            "processing" => Some(0.5),
            _ => None,
        };
        let judged = judge(&e, &response(200, ""), Duration::from_millis(800), &phases);
        assert_eq!(judged.failure.as_ref().map(|f| f.0), Some(Reason::Duration));
        assert_eq!(judged.assertions[1].observed, "0.250s");
        assert!(!judged.assertions[1].passed);
        assert!(judged.assertions[2].passed);
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, output) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn status_and_body_failures_name_the_first_failing_assertion() {
        let mut e = expect();
        e.body_contains = Some("Welcome".to_owned());
        let judged = judge(&e, &response(500, "oops"), Duration::from_millis(5), &no_phases);
        assert_eq!(judged.state, State::Down);
        assert_eq!(judged.failure.map(|f| f.0), Some(Reason::Status));
        assert_eq!(judged.assertions.len(), 2);
        assert!(judged.assertions.iter().all(|a| !a.passed));

        let judged = judge(&e, &response(200, "hello"), Duration::from_millis(5), &no_phases);
        assert_eq!(judged.failure.as_ref().map(|f| f.0), Some(Reason::Body));
        assert_eq!(judged.assertions[1].observed, "not found");
    }

    #[test]
    fn slow_but_correct_is_degraded_not_down() {
        let mut e = expect();
        e.degraded_after = Some(Duration::from_millis(100));
        let judged = judge(&e, &response(204, ""), Duration::from_millis(300), &no_phases);
        assert_eq!(judged.state, State::Degraded);
        let judged = judge(&e, &response(204, ""), Duration::from_millis(50), &no_phases);
        assert_eq!(judged.state, State::Up);
        assert!(judged.failure.is_none());
    }
}
