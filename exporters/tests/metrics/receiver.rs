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

/// A CA and a server certificate for 127.0.0.1 it signed: (CA PEM, server config).
pub fn tls() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|error| panic!("{error}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap_or_else(|error| panic!("{error}")))
        .unwrap_or_else(|error| panic!("{error}"));
    let key = KeyPair::generate().unwrap_or_else(|error| panic!("{error}"));
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .and_then(|params| params.signed_by(&key, &issuer))
        .unwrap_or_else(|error| panic!("{error}"));
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_no_client_auth().with_single_cert(vec![leaf.der().clone()], key))
        .unwrap_or_else(|error| panic!("{error}"))
        .unwrap_or_else(|error| panic!("{error}"));
    (issuer.pem(), Arc::new(config))
}

/// Serves `receiver` over HTTPS on a free loopback port; returns the write URL. Failed handshakes (a client
/// that does not trust the certificate) are counted in the returned counter.
pub async fn serve_tls(receiver: Arc<Receiver>, config: Arc<rustls::ServerConfig>) -> (String, Arc<Mutex<u32>>) {
    let app = axum::Router::new().route("/api/v1/write", axum::routing::post(write)).with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
    let addr = listener.local_addr().unwrap_or_else(|error| panic!("{error}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let refused = Arc::new(Mutex::new(0));
    let count = refused.clone();
    tokio::spawn(async move {
        for _ in 0..1_000 {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (acceptor, app, count) = (acceptor.clone(), app.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    *count.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (format!("https://127.0.0.1:{}/api/v1/write", addr.port()), refused)
}
