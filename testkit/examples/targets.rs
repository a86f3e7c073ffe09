//! Local probe targets for whole-process benchmarks: HTTP, HTTPS, DNS, TCP and gRPC (health) servers on
//! 127.0.0.1.
//!
//! `targets CA_PEM_PATH [BIND_IP]` starts them (on 127.0.0.1 unless BIND_IP is given), writes the CA certificate of the HTTPS server to CA_PEM_PATH, prints one
//! JSON line `{"http": PORT, "https": PORT, "dns": PORT, "tcp": PORT, "grpc": PORT}` and serves until stdin closes
//! (gRPC: plaintext HTTP/2, the standard health service answering SERVING for the server as a whole). The
//! servers are minimal and cheap so that what a benchmark measures is the prober, not the target.

use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record, rdata::A};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: close\r\n\r\nWelcome";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ca_path = std::env::args().nth(1).unwrap_or_else(|| "targets-ca.pem".to_owned());
    let ip: std::net::IpAddr = std::env::args().nth(2).unwrap_or_else(|| "127.0.0.1".to_owned()).parse()?;
    let http = TcpListener::bind((ip, 0)).await?;
    let https = TcpListener::bind((ip, 0)).await?;
    let tcp = TcpListener::bind((ip, 0)).await?;
    let dns = UdpSocket::bind((ip, 0)).await?;
    let grpc = TcpListener::bind((ip, 0)).await?;
    println!(
        "{{\"http\": {}, \"https\": {}, \"dns\": {}, \"tcp\": {}, \"grpc\": {}}}",
        http.local_addr()?.port(),
        https.local_addr()?.port(),
        dns.local_addr()?.port(),
        tcp.local_addr()?.port(),
        grpc.local_addr()?.port()
    );

    let acceptor = tls_acceptor(&ca_path, ip)?;
    tokio::spawn(serve_http(http, None));
    tokio::spawn(serve_http(https, Some(acceptor)));
    tokio::spawn(async move {
        while let Ok((stream, _)) = tcp.accept().await {
            drop(stream);
        }
    });
    tokio::spawn(serve_dns(dns));
    // The health service alone (its reporter says SERVING for "" from the start).
    let (_reporter, health) = tonic_health::server::health_reporter();
    let incoming = tonic::transport::server::TcpIncoming::from(grpc);
    tokio::spawn(tonic::transport::Server::builder().add_service(health).serve_with_incoming(incoming));
    // Serve until stdin closes.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await?;
    Ok(())
}

async fn serve_http(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
    while let Ok((stream, _)) = listener.accept().await {
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        answer(stream).await;
                    }
                }
                None => answer(stream).await,
            }
        });
    }
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.write_all(RESPONSE).await;
    let _ = stream.shutdown().await;
}

async fn serve_dns(socket: UdpSocket) {
    let mut buf = [0u8; 1500];
    while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
        let Ok(query) = Message::from_vec(&buf[..len]) else { continue };
        let mut reply = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.metadata.authoritative = true;
        reply.metadata.response_code = ResponseCode::NoError;
        for question in &query.queries {
            reply.add_query(question.clone());
            reply.add_answer(Record::from_rdata(question.name().clone(), 60, RData::A(A::new(192, 0, 2, 1))));
        }
        if let Ok(bytes) = reply.to_vec() {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

fn tls_acceptor(ca_path: &str, ip: std::net::IpAddr) -> Result<tokio_rustls::TlsAcceptor, Box<dyn std::error::Error>> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "probenet bench CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), ip.to_string()])?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    std::fs::write(ca_path, ca.pem())?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
