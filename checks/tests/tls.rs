//! The `tls` kind against real TLS servers on 127.0.0.1, with certificates made here by rcgen: valid,
//! expired, not yet valid, wrong host, self-signed, short-lived intermediate, version limits, pins, ALPN,
//! mutual TLS, a server that is not TLS, and nothing listening.

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use probenet_checks::tls::sha256_hex;
use probenet_checks::{Check, Outcome, Reason, State, load_str, run_once};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const DAY: i64 = 86_400;

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// A certificate made here, with its key and parameters (to sign others with when it is a CA).
struct Made {
    der: CertificateDer<'static>,
    pem: String,
    key: KeyPair,
    params: CertificateParams,
}

impl Made {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }

    fn not_after(&self) -> i64 {
        probenet_checks::tls::CertInfo::parse(&self.der).not_after_unix
    }
}

/// What to make: a common name, SANs, validity in days from now, and whether it is a CA.
struct Spec<'a> {
    cn: &'a str,
    sans: &'a [&'a str],
    from_days: i64,
    to_days: i64,
    ca: bool,
}

impl<'a> Spec<'a> {
    fn leaf(cn: &'a str) -> Self {
        Self { cn, sans: &["localhost", "127.0.0.1"], from_days: -1, to_days: 90, ca: false }
    }

    fn ca(cn: &'a str) -> Self {
        Self { cn, sans: &[], from_days: -10, to_days: 3650, ca: true }
    }

    fn days(self, from_days: i64, to_days: i64) -> Self {
        Self { from_days, to_days, ..self }
    }

    fn params(&self) -> CertificateParams {
        let sans: Vec<String> = self.sans.iter().map(|san| (*san).to_owned()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, self.cn);
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let time = |days: i64| epoch + Duration::from_secs(u64::try_from(now() + days * DAY).unwrap());
        params.not_before = time(self.from_days);
        params.not_after = time(self.to_days);
        if self.ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        }
        params
    }

    fn self_signed(&self) -> Made {
        let key = KeyPair::generate().unwrap();
        let params = self.params();
        let cert = params.self_signed(&key).unwrap();
        Made { der: cert.der().clone(), pem: cert.pem(), key, params }
    }

    fn signed_by(&self, issuer: &Made) -> Made {
        let key = KeyPair::generate().unwrap();
        let params = self.params();
        let cert = params.signed_by(&key, &issuer.issuer()).unwrap();
        Made { der: cert.der().clone(), pem: cert.pem(), key, params }
    }
}

/// A TLS server on 127.0.0.1 that completes handshakes and then waits for the client to leave.
struct TlsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The most connections a test server accepts, and how long it keeps one.
const MAX_CONNECTIONS: usize = 16;
const CONNECTION_TIME: Duration = Duration::from_secs(5);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl TlsServer {
    /// Serves `chain` (leaf first) with TLS 1.2 and 1.3.
    async fn start(chain: &[&Made], key: PrivateKeyDer<'static>) -> Self {
        Self::start_with(chain, key, rustls::ALL_VERSIONS, &[], None).await
    }

    async fn start_with(
        chain: &[&Made],
        key: PrivateKeyDer<'static>,
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&str],
        client_ca: Option<&Made>,
    ) -> Self {
        let builder = ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions).unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.der.clone()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build().unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let chain: Vec<CertificateDer<'static>> = chain.iter().map(|made| made.der.clone()).collect();
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = alpn.iter().map(|proto| proto.as_bytes().to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                tokio::spawn(tokio::time::timeout(CONNECTION_TIME, async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = [0u8; 64];
                        let _ = tls.read(&mut buf).await;
                    }
                }));
            }
        });
        Self { addr, task }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// A CA and a leaf for `localhost` and 127.0.0.1 signed by it, the CA written to a PEM file.
struct Pki {
    ca: Made,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let ca = Spec::ca("Probenet Test Root").self_signed();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
        Self { ca, dir }
    }

    fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

/// Loads one tls check written as a YAML flow mapping.
fn check(tls: &str) -> Check {
    let text = format!("checks:\n  - name: t\n    timeout: 5s\n    tls: {tls}\n");
    let config = load_str("tls-test.yaml", &text).unwrap_or_else(|errors| panic!("{errors}\n{text}"));
    config.checks.into_iter().next().unwrap()
}

async fn run(tls: &str) -> Outcome {
    run_once(&check(tls), "local").await
}

fn assertion<'a>(outcome: &'a Outcome, name: &str) -> &'a probenet_checks::Assertion {
    outcome.assertions.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("no assertion {name}: {outcome:#?}"))
}

fn chain(outcome: &Outcome) -> &Vec<Value> {
    outcome.details["chain"].as_array().unwrap_or_else(|| panic!("no chain in {outcome:#?}"))
}

#[tokio::test]
async fn valid_chain_passes_and_reports_every_certificate() {
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").signed_by(&pki.ca);
    let server = TlsServer::start(&[&leaf, &pki.ca], leaf.key_der()).await;
    let outcome = run(&format!("{{target: 'localhost:{}', ca_file: '{}'}}", server.port(), pki.ca_file())).await;
    assert!(outcome.success(), "{outcome:#?}");
    assert_eq!(outcome.state, State::Up);
    assert_eq!(outcome.reason, None);
    let names: Vec<&str> = outcome.phases.iter().map(|phase| phase.name.as_str()).collect();
    assert_eq!(names, ["resolve", "connect", "tls"]);
    let details = &outcome.details;
    assert_eq!(details["verdict"], "ok");
    assert_eq!(details["trusted"], true);
    assert_eq!(details["sni"], true);
    assert_eq!(details["version"], "TLSv1.3");
    assert!(details["cipher_suite"].as_str().unwrap().starts_with("TLS13_"), "{details:#}");
    assert_eq!(details["alpn"], Value::Null);
    let certs = chain(&outcome);
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0]["subject"], "CN=localhost");
    assert_eq!(certs[0]["issuer"], "CN=Probenet Test Root");
    assert_eq!(certs[0]["is_ca"], false);
    assert_eq!(certs[0]["sans"], serde_json::json!(["localhost", "127.0.0.1"]));
    assert_eq!(certs[0]["sha256_fingerprint"], sha256_hex(&leaf.der));
    assert_eq!(certs[1]["subject"], "CN=Probenet Test Root");
    assert_eq!(certs[1]["is_ca"], true);
    assert_eq!(certs[1]["sha256_fingerprint"], sha256_hex(&pki.ca.der));
    assert_eq!(certs[0]["not_after_unix"], leaf.not_after());
    assert!(certs[0]["not_after"].as_str().unwrap().ends_with('Z'));
    // The leaf expires first; the only path to the root is leaf -> root.
    assert_eq!(details["earliest_expiry_unix"], leaf.not_after());
    assert_eq!(details["last_chain_expiry_unix"], leaf.not_after());
    for name in ["validity", "trusted", "hostname"] {
        assert!(assertion(&outcome, name).passed, "{outcome:#?}");
    }
    // A certificate fingerprint differs from the CA's: the list is the presented chain, in order.
    assert_ne!(certs[0]["sha256_fingerprint"], certs[1]["sha256_fingerprint"]);
}

#[tokio::test]
async fn ip_target_sends_no_sni_and_verifies_the_ip_san() {
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").signed_by(&pki.ca);
    let server = TlsServer::start(&[&leaf], leaf.key_der()).await;
    let outcome = run(&format!("{{target: '127.0.0.1:{}', ca_file: '{}'}}", server.port(), pki.ca_file())).await;
    assert!(outcome.success(), "{outcome:#?}");
    assert_eq!(outcome.details["sni"], false);
    assert_eq!(outcome.details["server_name"], "127.0.0.1");

    // A leaf without the IP address fails on the name.
    let named = Spec { sans: &["localhost"], ..Spec::leaf("localhost") }.signed_by(&pki.ca);
    let server = TlsServer::start(&[&named], named.key_der()).await;
    let outcome = run(&format!("{{target: '127.0.0.1:{}', ca_file: '{}'}}", server.port(), pki.ca_file())).await;
    assert_eq!(outcome.reason, Some(Reason::CertHostname), "{outcome:#?}");
}

#[tokio::test]
async fn expired_leaf_is_cert_expired_with_the_chain_reported() {
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").days(-30, -2).signed_by(&pki.ca);
    let server = TlsServer::start(&[&leaf], leaf.key_der()).await;
    let outcome = run(&format!("{{target: 'localhost:{}', ca_file: '{}'}}", server.port(), pki.ca_file())).await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::CertExpired), "{outcome:#?}");
    assert!(outcome.error.as_deref().unwrap().contains("expired"), "{outcome:#?}");
    assert_eq!(outcome.details["verdict"], "expired");
    // Trust is still decided with the dates set aside, and the name is still checked.
    assert_eq!(outcome.details["trusted"], true);
    assert!(assertion(&outcome, "trusted").passed);
    assert!(assertion(&outcome, "hostname").passed);
    assert!(!assertion(&outcome, "validity").passed);
    assert_eq!(chain(&outcome).len(), 1);
    assert_eq!(chain(&outcome)[0]["subject"], "CN=localhost");
    assert!(outcome.details["verify_error"].as_str().unwrap().contains("expired"), "{outcome:#?}");
}

#[tokio::test]
async fn not_yet_valid_leaf_is_cert_not_yet_valid() {
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").days(5, 90).signed_by(&pki.ca);
    let server = TlsServer::start(&[&leaf], leaf.key_der()).await;
    let outcome = run(&format!("{{target: 'localhost:{}', ca_file: '{}'}}", server.port(), pki.ca_file())).await;
    assert_eq!(outcome.reason, Some(Reason::CertNotYetValid), "{outcome:#?}");
    assert_eq!(outcome.details["verdict"], "not_yet_valid");
    assert_eq!(outcome.details["trusted"], true);
}

#[tokio::test]
async fn wrong_host_is_cert_hostname() {
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").signed_by(&pki.ca);
    let server = TlsServer::start(&[&leaf], leaf.key_der()).await;
    let outcome = run(&format!(
        "{{target: '127.0.0.1:{}', server_name: shop.example.com, ca_file: '{}'}}",
        server.port(),
        pki.ca_file()
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::CertHostname), "{outcome:#?}");
    assert_eq!(outcome.details["verdict"], "hostname");
    assert_eq!(outcome.details["sni"], true);
    let hostname = assertion(&outcome, "hostname");
    assert!(!hostname.passed);
    assert!(hostname.observed.contains("localhost, 127.0.0.1"), "{hostname:?}");
    assert!(assertion(&outcome, "trusted").passed);
}

#[tokio::test]
async fn expired_and_wrong_host_gives_expired_and_lists_both() {
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").days(-30, -2).signed_by(&pki.ca);
    let server = TlsServer::start(&[&leaf], leaf.key_der()).await;
    let outcome = run(&format!(
        "{{target: '127.0.0.1:{}', server_name: shop.example.com, ca_file: '{}'}}",
        server.port(),
        pki.ca_file()
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::CertExpired), "{outcome:#?}");
    let kinds: Vec<&Value> = outcome.details["problems"].as_array().unwrap().iter().map(|p| &p["kind"]).collect();
    assert_eq!(kinds, ["expired", "hostname"]);
    assert!(!assertion(&outcome, "hostname").passed);
}

#[tokio::test]
async fn self_signed_is_cert_untrusted_with_system_roots_and_with_another_ca() {
    let pki = Pki::new();
    let leaf = Spec::leaf("Probenet Self-Signed").self_signed();
    let server = TlsServer::start(&[&leaf], leaf.key_der()).await;
    for extra in [String::new(), format!(", ca_file: '{}'", pki.ca_file())] {
        let outcome = run(&format!("{{target: 'localhost:{}'{extra}}}", server.port())).await;
        assert_eq!(outcome.reason, Some(Reason::CertUntrusted), "{outcome:#?}");
        assert_eq!(outcome.details["verdict"], "untrusted");
        assert_eq!(outcome.details["trusted"], false);
        assert!(assertion(&outcome, "trusted").observed.contains("self-signed"), "{outcome:#?}");
        assert_eq!(chain(&outcome)[0]["sha256_fingerprint"], sha256_hex(&leaf.der));
        assert_eq!(outcome.details["last_chain_expiry"], Value::Null);
    }
}

#[tokio::test]
async fn self_signed_with_the_name_of_a_trusted_root_is_cert_untrusted() {
    let pki = Pki::new();
    let impostor = Spec::leaf("Probenet Test Root").self_signed();
    let server = TlsServer::start(&[&impostor], impostor.key_der()).await;
    let outcome = run(&format!("{{target: 'localhost:{}', ca_file: '{}'}}", server.port(), pki.ca_file())).await;
    assert_eq!(outcome.reason, Some(Reason::CertUntrusted), "{outcome:#?}");
    assert!(assertion(&outcome, "trusted").observed.contains("self-signed"), "{outcome:#?}");
    // Its name matches the root, but it is no path to it.
    assert_eq!(outcome.details["last_chain_expiry"], Value::Null);
}

#[tokio::test]
async fn unknown_issuer_is_cert_untrusted() {
    let pki = Pki::new();
    let other_ca = Spec::ca("Somebody Else").self_signed();
    let leaf = Spec::leaf("localhost").signed_by(&other_ca);
    let server = TlsServer::start(&[&leaf], leaf.key_der()).await;
    let outcome = run(&format!("{{target: 'localhost:{}', ca_file: '{}'}}", server.port(), pki.ca_file())).await;
    assert_eq!(outcome.reason, Some(Reason::CertUntrusted), "{outcome:#?}");
    assert!(assertion(&outcome, "trusted").observed.contains("Somebody Else"), "{outcome:#?}");
}

#[tokio::test]
async fn intermediate_expiring_first_is_cert_expiring_and_the_earliest_expiry() {
    let pki = Pki::new();
    let intermediate = Spec::ca("Probenet Intermediate").days(-10, 3).signed_by(&pki.ca);
    let leaf = Spec::leaf("localhost").days(-1, 60).signed_by(&intermediate);
    let server = TlsServer::start(&[&leaf, &intermediate], leaf.key_der()).await;
    let outcome = run(&format!(
        "{{target: 'localhost:{}', ca_file: '{}', expect: {{min_days_remaining: 14}}}}",
        server.port(),
        pki.ca_file()
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::CertExpiring), "{outcome:#?}");
    assert_eq!(outcome.details["verdict"], "ok");
    assert_eq!(chain(&outcome).len(), 2);
    assert_eq!(chain(&outcome)[1]["subject"], "CN=Probenet Intermediate");
    assert_eq!(outcome.details["earliest_expiry_unix"], intermediate.not_after());
    assert!(intermediate.not_after() < leaf.not_after());
    assert_eq!(outcome.details["last_chain_expiry_unix"], intermediate.not_after());
    let days = assertion(&outcome, "min_days_remaining");
    assert!(!days.passed);
    assert!(days.observed.contains("Probenet Intermediate"), "{days:?}");
    assert!(days.observed.starts_with("2 days") || days.observed.starts_with("3 days"), "{days:?}");

    // The same chain passes a lower bound.
    let outcome = run(&format!(
        "{{target: 'localhost:{}', ca_file: '{}', expect: {{min_days_remaining: 2}}}}",
        server.port(),
        pki.ca_file()
    ))
    .await;
    assert!(outcome.success(), "{outcome:#?}");
}

#[tokio::test]
async fn expired_intermediate_is_cert_expired() {
    let pki = Pki::new();
    let intermediate = Spec::ca("Probenet Intermediate").days(-10, -1).signed_by(&pki.ca);
    let leaf = Spec::leaf("localhost").days(-5, 60).signed_by(&intermediate);
    let server = TlsServer::start(&[&leaf, &intermediate], leaf.key_der()).await;
    let outcome = run(&format!("{{target: 'localhost:{}', ca_file: '{}'}}", server.port(), pki.ca_file())).await;
    assert_eq!(outcome.reason, Some(Reason::CertExpired), "{outcome:#?}");
    assert!(assertion(&outcome, "validity").observed.contains("Probenet Intermediate"), "{outcome:#?}");
    assert_eq!(outcome.details["trusted"], true);
}

#[tokio::test]
async fn min_version_fails_against_tls12_and_passes_against_tls13() {
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").signed_by(&pki.ca);
    let old = TlsServer::start_with(&[&leaf], leaf.key_der(), &[&rustls::version::TLS12], &[], None).await;
    let new = TlsServer::start_with(&[&leaf], leaf.key_der(), &[&rustls::version::TLS13], &[], None).await;
    let yaml = |port: u16| {
        format!("{{target: 'localhost:{port}', ca_file: '{}', expect: {{min_version: '1.3'}}}}", pki.ca_file())
    };
    let outcome = run(&yaml(old.port())).await;
    assert_eq!(outcome.reason, Some(Reason::Tls), "{outcome:#?}");
    assert_eq!(outcome.details["version"], "TLSv1.2");
    let version = assertion(&outcome, "min_version");
    assert!(!version.passed);
    assert_eq!(version.observed, "TLSv1.2");
    assert!(outcome.details["cipher_suite"].as_str().unwrap().starts_with("TLS_ECDHE_"), "{outcome:#?}");
    let outcome = run(&yaml(new.port())).await;
    assert!(outcome.success(), "{outcome:#?}");
    assert_eq!(outcome.details["version"], "TLSv1.3");
}

#[tokio::test]
async fn insecure_reports_the_verdict_without_failing_on_trust_or_name() {
    let leaf = Spec::leaf("Probenet Self-Signed").self_signed();
    let server = TlsServer::start(&[&leaf], leaf.key_der()).await;
    let outcome =
        run(&format!("{{target: '127.0.0.1:{}', server_name: shop.example.com, insecure: true}}", server.port())).await;
    assert!(outcome.success(), "{outcome:#?}");
    assert_eq!(outcome.details["verdict"], "untrusted");
    assert_eq!(outcome.details["insecure"], true);
    let kinds: Vec<&Value> = outcome.details["problems"].as_array().unwrap().iter().map(|p| &p["kind"]).collect();
    assert_eq!(kinds, ["untrusted", "hostname"]);
    assert!(assertion(&outcome, "trusted").passed);
    assert!(assertion(&outcome, "trusted").observed.contains("self-signed"));

    // Dates still apply.
    let expired = Spec::leaf("Probenet Self-Signed").days(-30, -1).self_signed();
    let server = TlsServer::start(&[&expired], expired.key_der()).await;
    let outcome = run(&format!("{{target: 'localhost:{}', insecure: true}}", server.port())).await;
    assert_eq!(outcome.reason, Some(Reason::CertExpired), "{outcome:#?}");
}

#[tokio::test]
async fn fingerprint_pin_and_alpn() {
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").signed_by(&pki.ca);
    let server = TlsServer::start_with(&[&leaf], leaf.key_der(), rustls::ALL_VERSIONS, &["h2", "http/1.1"], None).await;
    let pin = sha256_hex(&leaf.der).to_uppercase();
    let outcome = run(&format!(
        "{{target: 'localhost:{}', ca_file: '{}', alpn: [h2, http/1.1], expect: {{fingerprint_sha256: '{pin}'}}}}",
        server.port(),
        pki.ca_file()
    ))
    .await;
    assert!(outcome.success(), "{outcome:#?}");
    assert_eq!(outcome.details["alpn"], "h2");
    assert!(assertion(&outcome, "fingerprint_sha256").passed);

    let wrong = sha256_hex(&pki.ca.der);
    let outcome = run(&format!(
        "{{target: 'localhost:{}', ca_file: '{}', alpn: [http/1.1], expect: {{fingerprint_sha256: '{wrong}'}}}}",
        server.port(),
        pki.ca_file()
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::CertUntrusted), "{outcome:#?}");
    assert_eq!(outcome.details["alpn"], "http/1.1");
}

#[tokio::test]
async fn client_certificate_for_mutual_tls() {
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").signed_by(&pki.ca);
    let client = Spec::leaf("probenet client").signed_by(&pki.ca);
    let server = TlsServer::start_with(&[&leaf], leaf.key_der(), rustls::ALL_VERSIONS, &[], Some(&pki.ca)).await;
    let cert = pki.write("client.pem", &client.pem);
    let key = pki.write("client-key.pem", &client.key.serialize_pem());
    let outcome = run(&format!(
        "{{target: 'localhost:{}', ca_file: '{}', client_cert: '{cert}', client_key: '{key}'}}",
        server.port(),
        pki.ca_file()
    ))
    .await;
    assert!(outcome.success(), "{outcome:#?}");

    // Over TLS 1.2 the server refuses a client without a certificate during the handshake.
    let strict = TlsServer::start_with(&[&leaf], leaf.key_der(), &[&rustls::version::TLS12], &[], Some(&pki.ca)).await;
    let outcome = run(&format!("{{target: 'localhost:{}', ca_file: '{}'}}", strict.port(), pki.ca_file())).await;
    assert_eq!(outcome.reason, Some(Reason::Tls), "{outcome:#?}");
    // The chain was verified before the server refused, and is still reported.
    assert_eq!(outcome.details["verdict"], "ok", "{outcome:#?}");
}

#[tokio::test]
async fn a_server_that_is_not_tls_is_reason_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        if let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
            let mut buf = [0u8; 512];
            let _ = tokio::time::timeout(CONNECTION_TIME, tcp.read(&mut buf)).await;
        }
    });
    let outcome = run(&format!("{{target: '127.0.0.1:{port}', insecure: true}}")).await;
    task.abort();
    assert_eq!(outcome.reason, Some(Reason::Tls), "{outcome:#?}");
    assert!(outcome.error.as_deref().unwrap().starts_with("tls handshake with 127.0.0.1:"), "{outcome:#?}");
    assert!(outcome.phase("tls").is_some());
}

#[tokio::test]
async fn nothing_listening_is_reason_connect() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let outcome = run(&format!("{{target: '127.0.0.1:{port}'}}")).await;
    assert_eq!(outcome.reason, Some(Reason::Connect), "{outcome:#?}");
    assert!(outcome.phase("tls").is_none());
}

#[tokio::test]
async fn unreadable_ca_file_is_reason_tls_and_names_the_file() {
    let outcome = run("{target: '127.0.0.1:1', ca_file: '/nonexistent/probenet-ca.pem'}").await;
    assert_eq!(outcome.reason, Some(Reason::Tls), "{outcome:#?}");
    assert!(outcome.error.as_deref().unwrap().contains("/nonexistent/probenet-ca.pem"), "{outcome:#?}");
}

/// The reusable API, as the HTTP and TCP kinds use it: the handshake succeeds and the report tells.
#[tokio::test]
async fn recording_verifier_lets_the_handshake_finish_and_reports() {
    use probenet_checks::tls::{RecordingVerifier, TrustRoots, Verdict, client_config, provider};
    let pki = Pki::new();
    let leaf = Spec::leaf("localhost").days(-30, -2).signed_by(&pki.ca);
    let server = TlsServer::start_with(&[&leaf, &pki.ca], leaf.key_der(), rustls::ALL_VERSIONS, &["h2"], None).await;
    let ca_file = pki.ca_file();
    let (config, verifier) = client_config(Some(std::path::Path::new(&ca_file)), &[b"h2"], None).unwrap();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let report = verifier.report().unwrap();
    assert_eq!(report.verdict, Verdict::Expired);
    assert_eq!(report.verdict.reason(), Some(Reason::CertExpired));
    assert_eq!(report.certs.len(), 2);
    assert_eq!(report.earliest_expiry(), Some(leaf.not_after()));
    assert_eq!(report.last_chain_expiry(), Some(leaf.not_after()));
    assert!(report.error.as_deref().unwrap().contains("expired"));
    assert!(verifier.take().is_some());
    assert!(verifier.take().is_none());

    // Without any root (a machine with no CA bundle), every chain is untrusted and still reported.
    let empty = RecordingVerifier::new(TrustRoots::from_certs(Vec::new()), provider());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let now = rustls::pki_types::UnixTime::now();
    let report = empty.analyse(&leaf.der, &[], &name, &[], now);
    assert_eq!(report.verdict, Verdict::Expired);
    let kinds: Vec<Verdict> = report.problems.iter().map(|problem| problem.kind).collect();
    assert_eq!(kinds, [Verdict::Expired, Verdict::Untrusted]);
    assert_eq!(report.problem(Verdict::Untrusted).unwrap().message, "no trusted root certificates on this machine");
    assert_eq!(report.last_chain_expiry(), None);
    assert_eq!(report.earliest_expiry(), Some(leaf.not_after()));
}
