//! Running a gRPC check: resolve, connect, TLS (ALPN `h2`), then over one HTTP/2 connection the health check
//! and the call, timed together as `processing`.

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use prost_reflect::{DynamicMessage, SerializeOptions};
use serde::Deserialize as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::details::GrpcDetails;
use super::reflect;
use super::spec::{Call, GrpcCheck, Health, status_name};
use super::wire::{Channel, HealthCheckRequest, HealthCheckResponse, serving_status_name};
use crate::details::Details as _;
use crate::outcome::{Failure, Judgement, Outcome, Reason};
use crate::run::{Execute, RunContext};
use crate::tls::TlsPart;

/// The most characters of a response kept in the details.
const RESPONSE_CHARS: usize = 512;
/// The most characters of a status message kept in the details.
const MESSAGE_CHARS: usize = 200;
/// The largest header (and trailer) block accepted.
const MAX_HEADER_LIST_SIZE: u32 = 16 << 10;
const HEALTH_PATH: &str = "/grpc.health.v1.Health/Check";

impl Execute for GrpcCheck {
    async fn execute(&self, cx: &RunContext) -> Outcome {
        let mut details = GrpcDetails::default();
        let result = run(self, cx, &mut details).await;
        let details = if details == GrpcDetails::default() { serde_json::Value::Null } else { details.to_value() };
        match result {
            Ok(judgement) => judgement.into_outcome(details),
            Err(failure) => Outcome { details, ..Outcome::failed(failure.reason, failure.message) },
        }
    }
}

async fn run(check: &GrpcCheck, cx: &RunContext, details: &mut GrpcDetails) -> Result<Judgement, Failure> {
    let mut metadata = Vec::new();
    for (name, template) in &check.metadata {
        let text = cx.resolve(template).map_err(|error| Failure::new(Reason::Secret, error.0))?;
        metadata.push((name.clone(), crate::http::execute::sensitive_value(text, &format!("metadata {name}"))?));
    }
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
    let channel = |sender| Channel {
        sender,
        scheme: if check.tls.is_some() { "https" } else { "http" },
        authority: crate::net::host_port(&check.host, check.port),
        metadata,
        max_message_size: check.max_message_size,
    };
    let Some(tls) = &check.tls else {
        return converse(check, cx, tcp, channel, details, Judgement::default()).await;
    };
    let name = tls.server_name.clone().unwrap_or_else(|| check.host.clone());
    let (stream, seen) = match tls.connect(cx, tcp, addr, &name, &[b"h2"], None).await {
        Ok(connected) => connected,
        Err(failure) => {
            details.tls = TlsPart::deserialize(&failure.details).unwrap_or_default();
            return Err(failure);
        }
    };
    details.tls = seen.details();
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err(Failure::new(Reason::Protocol, "the server did not choose HTTP/2 (ALPN h2), which gRPC needs"));
    }
    let mut judgement = Judgement::default();
    for tls in &seen.judged.assertions {
        judgement.check(Reason::Tls, &tls.name, tls.expected.clone(), tls.observed.clone(), tls.passed);
    }
    converse(check, cx, stream, channel, details, judgement).await
}

/// Aborts the spawned connection task when the run ends or is cancelled by its timeout.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The HTTP/2 handshake, the health check and the call over an open (plain or TLS) stream.
async fn converse<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    check: &GrpcCheck,
    cx: &RunContext,
    stream: S,
    channel: impl FnOnce(hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>) -> Channel,
    details: &mut GrpcDetails,
    judgement: Judgement,
) -> Result<Judgement, Failure> {
    let work = async {
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .max_header_list_size(MAX_HEADER_LIST_SIZE)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| Failure::new(Reason::Protocol, format!("http/2: {}", crate::net::describe(&error))))?;
        let _guard = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let mut channel = channel(sender);
        calls(check, cx, &mut channel, details, judgement).await
    };
    cx.timed("processing", work).await
}

async fn calls(
    check: &GrpcCheck,
    cx: &RunContext,
    channel: &mut Channel,
    details: &mut GrpcDetails,
    mut judgement: Judgement,
) -> Result<Judgement, Failure> {
    let remaining = || cx.timeout().saturating_sub(cx.elapsed()).max(Duration::from_millis(1));
    if let Some(health) = &check.health {
        self::health(health, cx, channel, remaining(), details, &mut judgement).await?;
        if judgement.failure.is_some() {
            return Ok(judgement);
        }
    }
    if let Some(call) = &check.call {
        self::call(call, cx, channel, &remaining, details, &mut judgement).await?;
    }
    Ok(judgement)
}

async fn health(
    health: &Health,
    cx: &RunContext,
    channel: &mut Channel,
    remaining: Duration,
    details: &mut GrpcDetails,
    judgement: &mut Judgement,
) -> Result<(), Failure> {
    let request = HealthCheckRequest { service: health.service.clone() }.encode_to_vec();
    let reply = channel.unary(HEALTH_PATH, &request, remaining).await?;
    details.status_code = Some(reply.code);
    details.status_message = status_message(cx, &reply.message);
    let status = match reply.code {
        0 => {
            let answer = HealthCheckResponse::decode(reply.body.unwrap_or_default())
                .map_err(|error| Failure::new(Reason::Protocol, format!("health: the answer: {error}")))?;
            serving_status_name(answer.status)
        }
        // The protocol's answer for a service the server does not know.
        5 => "SERVICE_UNKNOWN",
        12 => {
            return Err(Failure::new(Reason::Status, "health: the server has no health service (UNIMPLEMENTED)"));
        }
        code => {
            let message = format!("health: {} {}", status_name(code), reply.message);
            return Err(Failure::new(Reason::Status, message.trim_end().to_owned()));
        }
    };
    details.serving_status = Some(status.to_owned());
    let observed = if status == "SERVICE_UNKNOWN" {
        format!("SERVICE_UNKNOWN (the server does not know the service {:?})", health.service)
    } else {
        status.to_owned()
    };
    let name = format!("health {:?}", health.service);
    judgement.check(Reason::Status, &name, health.expect.name().to_owned(), observed, status == health.expect.name());
    Ok(())
}

async fn call(
    call: &Call,
    cx: &RunContext,
    channel: &mut Channel,
    remaining: &impl Fn() -> Duration,
    details: &mut GrpcDetails,
    judgement: &mut Judgement,
) -> Result<(), Failure> {
    let name = call.name();
    details.method = Some(name.clone());
    let method = reflect::method(channel, call, remaining).await?;
    let input = method.input();
    let request = DynamicMessage::deserialize(input.clone(), call.request.clone()).map_err(|error| {
        Failure::new(Reason::Protocol, format!("{name}: the request does not fit {}: {error}", input.full_name()))
    })?;
    let reply = channel.unary(&format!("/{name}"), &request.encode_to_vec(), remaining()).await?;
    details.status_code = Some(reply.code);
    details.status_message = status_message(cx, &reply.message);
    let observed = format!("{} {}", status_name(reply.code), reply.message).trim_end().to_owned();
    judgement.check(
        Reason::Status,
        &format!("{name} status"),
        status_name(call.status),
        observed,
        reply.code == call.status,
    );
    if reply.code != 0 || call.status != 0 {
        return Ok(());
    }
    let Some(body) = reply.body else {
        return Err(Failure::new(Reason::Protocol, format!("{name}: the answer is OK but has no message")));
    };
    let output = method.output();
    let message = DynamicMessage::decode(output.clone(), body).map_err(|error| {
        Failure::new(Reason::Protocol, format!("{name}: the answer is not a {}: {error}", output.full_name()))
    })?;
    let options = SerializeOptions::new().skip_default_fields(false);
    let json = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|error| Failure::new(Reason::Protocol, format!("{name}: the answer as JSON: {error}")))?;
    // Redacted while whole, then cut.
    details.response = Some(cx.redact(&json.to_string()).chars().take(RESPONSE_CHARS).collect());
    for assertion in &call.json {
        let (expected, observed, passed) = crate::http::execute::judge_json(assertion, &json);
        judgement.check(Reason::Body, &format!("json {}", assertion.text), expected, observed, passed);
    }
    Ok(())
}

/// A status message for the details: redacted while whole, then cut.
fn status_message(cx: &RunContext, message: &str) -> Option<String> {
    (!message.is_empty()).then(|| cx.redact(message).chars().take(MESSAGE_CHARS).collect())
}
