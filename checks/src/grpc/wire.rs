//! gRPC over one HTTP/2 connection: a unary call framed by hand (one length-prefixed message out, at most one
//! in, the status from the trailers), bounded in size, and the few protobuf messages of the health and
//! reflection services, derived here so that no `protoc` is needed.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt as _, Full};

use crate::outcome::{Failure, Reason};

const USER_AGENT_VALUE: &str = concat!("probenet/", env!("CARGO_PKG_VERSION"));

/// A gRPC client on an open HTTP/2 connection.
#[derive(Debug)]
pub struct Channel {
    /// The connection's request sender.
    pub sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host:port`, as the `:authority`.
    pub authority: String,
    /// Metadata sent with every call (secrets resolved, marked sensitive).
    pub metadata: Vec<(HeaderName, HeaderValue)>,
    /// The largest message accepted.
    pub max_message_size: usize,
}

/// How a unary call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The gRPC status code.
    pub code: u32,
    /// The status message, decoded: raw (a secret the server echoes is still whole, for the runtime to redact),
    /// and bounded by the header list size.
    pub message: String,
    /// The response message, when one came.
    pub body: Option<Bytes>,
}

impl Channel {
    /// Calls `path` (`/package.Service/Method`) with `message`, to end within `remaining`.
    pub async fn unary(&mut self, path: &str, message: &[u8], remaining: Duration) -> Result<Reply, Failure> {
        let protocol = |what: String| Failure::new(Reason::Protocol, format!("{path}: {what}"));
        let mut frame = BytesMut::with_capacity(message.len() + 5);
        frame.extend_from_slice(&[0]);
        frame.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
        frame.extend_from_slice(message);
        let mut builder = Request::post(format!("{}://{}{path}", self.scheme, self.authority))
            .version(http::Version::HTTP_2)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", USER_AGENT_VALUE)
            .header("grpc-timeout", format!("{}m", remaining.as_millis().clamp(1, 99_999_999)));
        for (name, value) in &self.metadata {
            builder = builder.header(name, value.clone());
        }
        let request = builder.body(Full::new(frame.freeze())).map_err(|error| protocol(error.to_string()))?;
        self.sender.ready().await.map_err(|error| connection(path, &error))?;
        let response = self.sender.send_request(request).await.map_err(|error| connection(path, &error))?;
        let (parts, mut body) = response.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(protocol(format!("HTTP status {}, not a gRPC answer", parts.status)));
        }
        // A trailers-only answer: the status in the headers, no body.
        if let Some(code) = status_of(&parts.headers) {
            return Ok(Reply { code, message: message_of(&parts.headers), body: None });
        }
        let grpc = parts.headers.get("content-type").and_then(|value| value.to_str().ok());
        if !grpc.is_some_and(|value| value.starts_with("application/grpc")) {
            return Err(protocol(format!("content-type {:?}, not application/grpc", grpc.unwrap_or(""))));
        }
        let limit = self.max_message_size.saturating_add(5);
        let mut data = BytesMut::new();
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| connection(path, &error))?;
            match frame.into_data() {
                Ok(chunk) => {
                    if data.len() + chunk.len() > limit {
                        return Err(protocol(format!(
                            "the response is larger than max_message_size ({} bytes)",
                            self.max_message_size
                        )));
                    }
                    data.extend_from_slice(&chunk);
                }
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
        let trailers = trailers.unwrap_or_default();
        let Some(code) = status_of(&trailers) else {
            return Err(protocol("the answer ended without a grpc-status".to_owned()));
        };
        let body = unframe(data.freeze()).map_err(protocol)?;
        Ok(Reply { code, message: message_of(&trailers), body })
    }
}

fn connection(path: &str, error: &hyper::Error) -> Failure {
    Failure::new(Reason::Connect, format!("{path}: {}", crate::net::describe(error)))
}

/// The one message of a unary answer's body, if any.
fn unframe(mut data: Bytes) -> Result<Option<Bytes>, String> {
    if data.is_empty() {
        return Ok(None);
    }
    if data.len() < 5 {
        return Err("a truncated message frame".to_owned());
    }
    let compressed = data.get_u8();
    let length = usize::try_from(data.get_u32()).unwrap_or(usize::MAX);
    if compressed != 0 {
        return Err("a compressed message, which was not asked for".to_owned());
    }
    if data.len() < length {
        return Err("a truncated message".to_owned());
    }
    if data.len() > length {
        return Err("more than one message in a unary answer".to_owned());
    }
    Ok(Some(data))
}

fn status_of(headers: &HeaderMap) -> Option<u32> {
    headers.get("grpc-status").and_then(|value| value.to_str().ok()).and_then(|text| text.trim().parse().ok())
}

/// `grpc-message`, percent-decoded.
fn message_of(headers: &HeaderMap) -> String {
    let Some(raw) = headers.get("grpc-message") else {
        return String::new();
    };
    let raw = raw.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (raw[i], raw.get(i + 1).copied().and_then(hex), raw.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    /// The service asked about.
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// The name of a health status.
pub fn serving_status_name(status: i32) -> &'static str {
    match status {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// The health statuses, for the series.
pub const SERVING_STATUSES: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// `grpc.reflection.v1.ServerReflectionRequest` (the same in `v1alpha`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReflectionRequest {
    /// Unused by servers in practice.
    #[prost(string, tag = "1")]
    pub host: String,
    /// What is asked.
    #[prost(oneof = "ReflectionQuery", tags = "3, 4")]
    pub query: Option<ReflectionQuery>,
}

/// The questions asked of the reflection service.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ReflectionQuery {
    /// The file of this name.
    #[prost(string, tag = "3")]
    FileByFilename(String),
    /// The file defining this symbol.
    #[prost(string, tag = "4")]
    FileContainingSymbol(String),
}

/// `grpc.reflection.v1.ServerReflectionResponse`, the parts read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReflectionResponse {
    /// The answer.
    #[prost(oneof = "ReflectionAnswer", tags = "4, 7")]
    pub answer: Option<ReflectionAnswer>,
}

/// The answers read.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ReflectionAnswer {
    /// Serialized `FileDescriptorProto`s.
    #[prost(message, tag = "4")]
    Files(FileDescriptorResponse),
    /// An error.
    #[prost(message, tag = "7")]
    Error(ErrorResponse),
}

/// `FileDescriptorResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileDescriptorResponse {
    /// Serialized `FileDescriptorProto`s.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub file_descriptor_proto: Vec<Bytes>,
}

/// `ErrorResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorResponse {
    /// A gRPC status code.
    #[prost(int32, tag = "1")]
    pub error_code: i32,
    /// Why.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unary_body_is_exactly_one_uncompressed_message() {
        assert_eq!(unframe(Bytes::new()), Ok(None));
        assert_eq!(unframe(Bytes::from_static(&[0, 0, 0, 0, 2, 8, 1])), Ok(Some(Bytes::from_static(&[8, 1]))));
        assert!(unframe(Bytes::from_static(&[0, 0, 0, 0, 3, 8, 1])).is_err());
        assert!(unframe(Bytes::from_static(&[0, 0, 0, 0, 1, 8, 1])).is_err());
        assert!(unframe(Bytes::from_static(&[1, 0, 0, 0, 2, 8, 1])).is_err());
        assert!(unframe(Bytes::from_static(&[0, 0])).is_err());
    }

    #[test]
    fn status_messages_are_percent_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-message", HeaderValue::from_static("no%20such%20order%3A 42%"));
        assert_eq!(message_of(&headers), "no such order: 42%");
    }
}
