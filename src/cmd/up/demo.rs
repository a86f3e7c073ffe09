//! `probenet up --demo`: a small local service to probe, so the quick start shows real results offline: a
//! healthy page, a JSON health endpoint, a slow one, a flaky one, a failing one, one down for 45 s every 3
//! minutes (an alert that fires and resolves), the same over TLS with a certificate close to expiry, an
//! SMTP-like banner, a DNS zone, and a webhook receiver that prints the notifications it gets. Loopback only.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

/// Where the demo listens (port 0: any free port, as tests use).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub http: u16,
    pub https: u16,
    pub smtp: u16,
    pub dns: u16,
}

impl Ports {
    /// The ports `examples/quickstart.yaml` expects.
    pub const QUICKSTART: Self = Self { http: 8000, https: 8443, smtp: 8025, dns: 8053 };
    /// Free ports, chosen by the system.
    pub const ANY: Self = Self { http: 0, https: 0, smtp: 0, dns: 0 };

    /// `base` (HTTP), `base + 1` (HTTPS), `base + 2` (SMTP) and `base + 3` (DNS); none when they pass 65535.
    pub fn from_base(base: u16) -> Option<Self> {
        Some(Self { http: base, https: base.checked_add(1)?, smtp: base.checked_add(2)?, dns: base.checked_add(3)? })
    }
}

/// How long the inventory endpoint is down at the start of each cycle, and the cycle.
const INVENTORY_DOWN: Duration = Duration::from_secs(45);
const INVENTORY_CYCLE: Duration = Duration::from_secs(180);

/// A port the demo could not listen on.
#[derive(Debug)]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// `/udp` for the DNS port, else empty.
    proto: &'static str,
    /// Why.
    source: std::io::Error,
}

impl BindError {
    /// Whether another program holds the port.
    pub fn in_use(&self) -> bool {
        self.source.kind() == std::io::ErrorKind::AddrInUse
    }
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "demo service: cannot listen on {}{}: ", self.addr, self.proto)?;
        match self.source.kind() {
            std::io::ErrorKind::AddrInUse => f.write_str("the port is in use by another program"),
            _ => write!(f, "{}", self.source),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The running demo service; it stops when dropped.
#[derive(Debug)]
pub struct Demo {
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub smtp: SocketAddr,
    pub dns: SocketAddr,
    tasks: JoinSet<()>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Starts the demo service on `ip` (a loopback address); writes its CA certificate to `ca_path`.
pub async fn start(ip: IpAddr, ports: Ports, ca_path: &Path) -> anyhow::Result<Demo> {
    anyhow::ensure!(ip.is_loopback(), "the demo service only listens on loopback addresses");
    let failed =
        |port: u16, proto: &'static str| move |source| BindError { addr: SocketAddr::new(ip, port), proto, source };
    let bind = |port: u16| async move { TcpListener::bind((ip, port)).await.map_err(failed(port, "")) };
    let http = bind(ports.http).await?;
    let https = bind(ports.https).await?;
    let smtp = bind(ports.smtp).await?;
    let dns = UdpSocket::bind((ip, ports.dns)).await.map_err(failed(ports.dns, "/udp"))?;
    let acceptor = tls_acceptor(ip, ca_path)?;
    let demo_addrs = (http.local_addr()?, https.local_addr()?, smtp.local_addr()?, dns.local_addr()?);
    let mut tasks = JoinSet::new();
    let shared = Arc::new(Shared { flaky: AtomicU64::new(0), started: tokio::time::Instant::now() });
    tasks.spawn(serve_http(http, None, shared.clone()));
    tasks.spawn(serve_http(https, Some(acceptor), shared));
    tasks.spawn(serve_smtp(smtp));
    tasks.spawn(serve_dns(dns, ip));
    Ok(Demo { http: demo_addrs.0, https: demo_addrs.1, smtp: demo_addrs.2, dns: demo_addrs.3, tasks })
}

/// What the HTTP endpoints share: the flaky endpoint's request count and the start of the inventory's cycle.
#[derive(Debug)]
struct Shared {
    flaky: AtomicU64,
    started: tokio::time::Instant,
}

async fn serve_http(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let (tls, shared) = (tls.clone(), shared.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| route(request, shared.clone()));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                }
            }
        });
    }
}

async fn route(
    request: Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &'static str, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    };
    const HTML: &str = "text/html; charset=utf-8";
    Ok(match request.uri().path() {
        "/" => reply(
            StatusCode::OK,
            HTML,
            "<!doctype html><title>probenet demo shop</title><h1>Welcome to the probenet demo shop</h1>\n",
        ),
        "/health.json" => reply(StatusCode::OK, "application/json", "{\"status\": \"ok\", \"version\": \"v1\"}\n"),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            reply(StatusCode::OK, HTML, "<h1>Welcome, eventually</h1>\n")
        }
        // One request in three fails: a flaky dependency.
        "/flaky" if shared.flaky.fetch_add(1, Ordering::Relaxed) % 3 == 2 => {
            reply(StatusCode::SERVICE_UNAVAILABLE, HTML, "<h1>upstream unavailable</h1>\n")
        }
        "/flaky" => reply(StatusCode::OK, HTML, "<h1>Welcome</h1>\n"),
        "/broken" => reply(StatusCode::INTERNAL_SERVER_ERROR, HTML, "<h1>database unavailable</h1>\n"),
        // Down for the first 45 s of every 3 minutes: an alert that fires, then resolves.
        "/inventory" if inventory_down(shared.started.elapsed()) => {
            reply(StatusCode::SERVICE_UNAVAILABLE, HTML, "<h1>inventory sync in progress</h1>\n")
        }
        "/inventory" => reply(StatusCode::OK, "application/json", "{\"in_stock\": 42}\n"),
        "/hooks/alerts" if request.method() == hyper::Method::POST => {
            use http_body_util::BodyExt as _;
            let limited = http_body_util::Limited::new(request.into_body(), 64 << 10);
            if let Ok(body) = limited.collect().await
                && let Ok(notification) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes())
            {
                println!("{}", notification_line(&notification));
            }
            reply(StatusCode::OK, "text/plain", "ok\n")
        }
        _ => reply(StatusCode::NOT_FOUND, HTML, "<h1>not found</h1>\n"),
    })
}

/// Whether the inventory endpoint is down `elapsed` after the demo started.
fn inventory_down(elapsed: Duration) -> bool {
    let cycle = INVENTORY_CYCLE.as_millis();
    elapsed.as_millis() % cycle < INVENTORY_DOWN.as_millis()
}

/// One line for a webhook notification (probenet's webhook body): what fired or resolved, and where.
fn notification_line(notification: &serde_json::Value) -> String {
    let text = |key: &str| notification[key].as_str().unwrap_or("-").to_owned();
    let regions: Vec<&str> =
        notification["regions"].as_array().into_iter().flatten().filter_map(serde_json::Value::as_str).collect();
    let status = text("status").to_uppercase();
    let mut line = format!("demo service: notification received: {status} {}", text("key"));
    if status == "FIRING" {
        let total = notification["total_regions"].as_u64().unwrap_or(0);
        line.push_str(&format!(" in {} of {total} regions ({})", regions.len(), regions.join(", ")));
        if let Some(reason) = notification["reason"].as_str() {
            line.push_str(&format!(", reason {reason}"));
        }
    }
    line
}

async fn serve_smtp(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let _ = stream.write_all(b"220 demo.probenet.test ESMTP ready\r\n").await;
            let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
        });
    }
}

/// Answers `A` for `*.demo.probenet.test` with `ip`; NXDOMAIN for anything else.
async fn serve_dns(socket: UdpSocket, ip: IpAddr) {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{RData, Record, RecordType, rdata::A};
    let mut buf = [0u8; 1500];
    while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
        let Ok(query) = Message::from_vec(&buf[..len]) else { continue };
        let mut reply = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.metadata.authoritative = true;
        let mut found = false;
        for question in &query.queries {
            reply.add_query(question.clone());
            let name = question.name().to_ascii().to_ascii_lowercase();
            if name.trim_end_matches('.').ends_with("demo.probenet.test") {
                found = true;
                if let (RecordType::A, IpAddr::V4(v4)) = (question.query_type(), ip) {
                    reply.add_answer(Record::from_rdata(question.name().clone(), 60, RData::A(A::from(v4))));
                }
            }
        }
        reply.metadata.response_code = if found { ResponseCode::NoError } else { ResponseCode::NXDomain };
        if let Ok(bytes) = reply.to_vec() {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

/// A CA (written to `ca_path`) and a leaf for `localhost` and `ip` that expires in ten days.
fn tls_acceptor(ip: IpAddr, ca_path: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let now = std::time::SystemTime::now();
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "probenet demo CA");
    ca_params.not_before = (now - Duration::from_secs(86_400)).into();
    ca_params.not_after = (now + Duration::from_secs(365 * 86_400)).into();
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate()?;
    let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), ip.to_string()])?;
    leaf_params.distinguished_name.push(rcgen::DnType::CommonName, "demo.probenet.test");
    leaf_params.not_before = (now - Duration::from_secs(86_400)).into();
    leaf_params.not_after = (now + Duration::from_secs(10 * 86_400)).into();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    if let Some(parent) = ca_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(ca_path, ca.pem()).with_context(|| format!("writing {}", ca_path.display()))?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(anyhow::Error::msg)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::AsyncReadExt as _;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|error| panic!("{error}"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap_or_else(|error| panic!("{error}"));
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap_or_else(|error| panic!("{error}"));
        let status = text.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        (status, text)
    }

    #[test]
    fn the_inventory_is_down_45_s_every_3_minutes_and_notifications_read_as_one_line() {
        let down = |seconds: u64| inventory_down(Duration::from_secs(seconds));
        assert_eq!([0, 44, 45, 179, 180, 224, 225].map(down), [true, true, false, false, true, true, false]);
        let firing = serde_json::json!({"status": "firing", "key": "web-down/shop-checkout",
            "regions": ["local-a", "local-b"], "total_regions": 2, "reason": "status"});
        assert_eq!(
            notification_line(&firing),
            "demo service: notification received: FIRING web-down/shop-checkout in 2 of 2 regions (local-a, \
             local-b), reason status"
        );
        let resolved = serde_json::json!({"status": "resolved", "key": "web-down/shop-inventory"});
        assert_eq!(
            notification_line(&resolved),
            "demo service: notification received: RESOLVED web-down/shop-inventory"
        );
    }

    #[tokio::test]
    async fn the_demo_serves_healthy_flaky_and_broken_endpoints() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let ports = Ports::ANY;
        let demo =
            start("127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1])), ports, &dir.path().join("ca.pem"))
                .await
                .unwrap_or_else(|error| panic!("{error:#}"));
        let (status, body) = get(demo.http, "/").await;
        assert_eq!(status, 200);
        assert!(body.contains("Welcome"));
        assert_eq!(get(demo.http, "/broken").await.0, 500);
        let flaky: Vec<u16> =
            [get(demo.http, "/flaky").await.0, get(demo.http, "/flaky").await.0, get(demo.http, "/flaky").await.0]
                .to_vec();
        assert_eq!(flaky, vec![200, 200, 503]);
        // The inventory starts down (its first 45 s), and the webhook receiver answers 200.
        assert_eq!(get(demo.http, "/inventory").await.0, 503);
        let mut stream = tokio::net::TcpStream::connect(demo.http).await.unwrap_or_else(|error| panic!("{error}"));
        let body = r#"{"status": "firing", "key": "a/b", "regions": ["x"], "total_regions": 2}"#;
        let request = format!(
            "POST /hooks/alerts HTTP/1.1\r\nHost: demo\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap_or_else(|error| panic!("{error}"));
        let mut answer = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(std::fs::read_to_string(dir.path().join("ca.pem")).unwrap_or_default().contains("BEGIN CERTIFICATE"));
        assert!(
            start("0.0.0.0".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), ports, &dir.path().join("x.pem"))
                .await
                .is_err()
        );
    }
}
