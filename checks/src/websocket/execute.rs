//! Running a WebSocket check: resolve, connect, TLS and the opening handshake; the conversation and the
//! closing handshake are [`Session`]'s.

use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::handshake::client::generate_key;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use http::header::{HOST, HeaderName, HeaderValue, USER_AGENT};
use serde::Deserialize as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::details::{HandshakeDetails, WebsocketDetails};
use super::session::Session;
use super::spec::WebsocketCheck;
use crate::details::Details as _;
use crate::outcome::{Failure, Judgement, Outcome, Reason};
use crate::run::{Execute, RunContext};
use crate::tls::TlsPart;

const USER_AGENT_VALUE: &str = concat!("probenet/", env!("CARGO_PKG_VERSION"));
/// The most characters of a handshake response body shown in an error.
const BODY_CHARS: usize = 120;

impl Execute for WebsocketCheck {
    async fn execute(&self, cx: &RunContext) -> Outcome {
        let mut details = WebsocketDetails::default();
        let result = run(self, cx, &mut details).await;
        // A run that failed before connecting has nothing to say, as for the other kinds.
        let details = if details == WebsocketDetails::default() { serde_json::Value::Null } else { details.to_value() };
        match result {
            Ok(judgement) => judgement.into_outcome(details),
            Err(failure) => Outcome { details, ..Outcome::failed(failure.reason, failure.message) },
        }
    }
}

async fn run(check: &WebsocketCheck, cx: &RunContext, details: &mut WebsocketDetails) -> Result<Judgement, Failure> {
    let request = request(check, cx)?;
    let addr = cx
        .timed("resolve", crate::net::resolve(cx, &check.host, check.port, check.ip_version))
        .await
        .map_err(|message| Failure::new(Reason::Dns, message))?;
    if addr.ip().to_string() != check.host {
        cx.log(format!("resolved {} to {}", check.host, addr.ip()));
    }
    details.remote_address = Some(addr.to_string());
    let tcp = cx
        .timed("connect", TcpStream::connect(addr))
        .await
        .map_err(|error| Failure::new(Reason::Connect, format!("connect to {addr}: {error}")))?;
    tcp.set_nodelay(true).ok();
    if check.url.scheme() != "wss" {
        return converse(check, cx, tcp, request, details, Judgement::default()).await;
    }
    let name = check.tls.server_name.clone().unwrap_or_else(|| check.host.clone());
    let (stream, seen) = match check.tls.connect(cx, tcp, addr, &name, &[b"http/1.1"], None).await {
        Ok(connected) => connected,
        Err(failure) => {
            details.tls = TlsPart::deserialize(&failure.details).unwrap_or_default();
            return Err(failure);
        }
    };
    details.tls = seen.details();
    // The certificate assertions (all passed, or the handshake would have failed) come first, as for `http`.
    let mut judgement = Judgement::default();
    for tls in &seen.judged.assertions {
        judgement.check(Reason::Tls, &tls.name, tls.expected.clone(), tls.observed.clone(), tls.passed);
    }
    converse(check, cx, stream, request, details, judgement).await
}

/// The opening handshake's request, with the configured headers (secrets resolved).
fn request(check: &WebsocketCheck, cx: &RunContext) -> Result<http::Request<()>, Failure> {
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    for (name, template) in &check.headers {
        let text = cx.resolve(template).map_err(|error| Failure::new(Reason::Secret, error.0))?;
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            Failure::new(Reason::Protocol, format!("header {name}: the value is not a valid header value"))
        })?;
        if value.to_str().is_err() {
            // The handshake is written as text: say so without showing the value.
            return Err(Failure::new(Reason::Protocol, format!("header {name}: the value is not printable ASCII")));
        }
        value.set_sensitive(true);
        headers.push((name.clone(), value));
    }
    let host = check.url.host_str().unwrap_or_default();
    let authority = match check.url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let mut builder = http::Request::builder()
        .method(http::Method::GET)
        .uri(check.url.as_str())
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", generate_key());
    // A `Host` or `User-Agent` from the config wins.
    if !headers.iter().any(|(name, _)| *name == HOST) {
        builder = builder.header(HOST, authority);
    }
    if !headers.iter().any(|(name, _)| *name == USER_AGENT) {
        builder = builder.header(USER_AGENT, USER_AGENT_VALUE);
    }
    if !check.subprotocols.is_empty() {
        builder = builder.header("Sec-WebSocket-Protocol", check.subprotocols.join(", "));
    }
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder.body(()).map_err(|error| Failure::new(Reason::Protocol, format!("building the handshake: {error}")))
}

/// The handshake, the steps and the close over an established (plain or TLS) stream.
async fn converse<S: AsyncRead + AsyncWrite + Unpin + Send>(
    check: &WebsocketCheck,
    cx: &RunContext,
    stream: S,
    request: http::Request<()>,
    details: &mut WebsocketDetails,
    mut judgement: Judgement,
) -> Result<Judgement, Failure> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(check.max_message_size))
        .max_frame_size(Some(check.max_message_size));
    let opened =
        cx.timed("handshake", async_tungstenite::tokio::client_async_with_config(request, stream, Some(config)));
    let (ws, response) = match opened.await {
        Ok(opened) => opened,
        Err(WsError::Http(response)) => {
            let status = response.status();
            details.handshake = Some(HandshakeDetails { status_code: status.as_u16(), subprotocol: None });
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            // Redacted while whole, then cut.
            let body: String = cx.redact(body.trim()).chars().take(BODY_CHARS).collect();
            if !body.is_empty() {
                cx.log(format!("handshake refused with {status}: {body}"));
            }
            let observed = status.to_string();
            judgement.check(Reason::Status, "handshake", "101 Switching Protocols".to_owned(), observed, false);
            return Ok(judgement);
        }
        Err(WsError::Io(error)) => {
            return Err(Failure::new(Reason::Connect, format!("handshake: {}", crate::net::describe(&error))));
        }
        Err(error) => return Err(Failure::new(Reason::Protocol, format!("handshake: {error}"))),
    };
    let subprotocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    details.handshake = Some(HandshakeDetails { status_code: response.status().as_u16(), subprotocol });
    let mut session = Session::new(ws, check.max_frames, cx);
    let failed = cx.timed("messages", session.steps(cx, &check.steps, &mut judgement)).await;
    cx.timed("close", session.close(check, failed, &mut judgement)).await;
    details.conversation = Some(session.into_conversation());
    Ok(judgement)
}
