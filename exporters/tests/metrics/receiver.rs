//! A remote-write receiver for tests: answers with scripted statuses, checks credentials, and keeps every
//! request it accepted (headers and decoded body).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use probenet_exporters::remote_write::proto::{self, WriteRequest};

/// What the receiver does and saw.
#[derive(Default)]
pub struct Receiver {
    /// Statuses to answer, in order; 204 once they run out.
    pub script: Mutex<VecDeque<u16>>,
    /// The `Authorization` header required, if any (401 otherwise).
    pub authorization: Option<String>,
    /// Every request: its headers, its decoded body, and the status answered.
    pub seen: Mutex<Vec<(HeaderMap, WriteRequest, u16)>>,
}

impl Receiver {
    /// A receiver answering `script` first.
    pub fn new(script: &[u16], authorization: Option<String>) -> Arc<Self> {
        Arc::new(Self { script: Mutex::new(script.iter().copied().collect()), authorization, ..Self::default() })
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<(HeaderMap, WriteRequest, u16)> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

async fn write(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let request = proto::decode(&body).unwrap_or_else(|error| panic!("undecodable body: {error}"));
    let authorized = receiver.authorization.as_ref().is_none_or(|wanted| {
        headers.get("authorization").and_then(|value| value.to_str().ok()) == Some(wanted.as_str())
    });
    let status = if authorized {
        receiver.script.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front().unwrap_or(204)
    } else {
        401
    };
    receiver.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((headers, request, status));
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Serves `receiver` on a free loopback port; returns the write URL.
pub async fn serve(receiver: Arc<Receiver>) -> String {
    let app = axum::Router::new().route("/api/v1/write", axum::routing::post(write)).with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
    let addr = listener.local_addr().unwrap_or_else(|error| panic!("{error}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/v1/write")
}

/// Serves `receiver` over HTTPS on a free loopback port; returns the write URL and the count of failed
/// handshakes (a client that does not trust the certificate).
pub async fn serve_tls(receiver: Arc<Receiver>, config: Arc<rustls::ServerConfig>) -> (String, Arc<Mutex<u32>>) {
    let app = axum::Router::new().route("/api/v1/write", axum::routing::post(write)).with_state(receiver);
    let (addr, refused) = crate::tls::serve(app, config).await;
    (format!("https://127.0.0.1:{}/api/v1/write", addr.port()), refused)
}
