//! HTTPS for the capturing servers of the exporter tests: a CA and a certificate for 127.0.0.1 it signed, and
//! an axum app served over TLS that counts the handshakes clients refused.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A CA and a server certificate for 127.0.0.1 it signed: (CA PEM, server config).
pub fn config() -> (String, Arc<rustls::ServerConfig>) {
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

/// Serves `app` over HTTPS on a free loopback port (at most 1,000 connections); returns its address and the
/// count of failed handshakes.
pub async fn serve(app: axum::Router, config: Arc<rustls::ServerConfig>) -> (SocketAddr, Arc<Mutex<u32>>) {
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
    (addr, refused)
}
