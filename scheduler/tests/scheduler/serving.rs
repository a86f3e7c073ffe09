//! How the scheduler serves: its own CA (made once, reused, server certificate remade when the names change),
//! given certificate files, HTTP/1.1 and h2, plain HTTP only on loopback, and start-up errors.

use probenet_checks::tls::{CertInfo, sha256_hex};
use probenet_scheduler::{Error, TlsMode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::util::{CONFIG, client, options};

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("checks.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    (dir, config)
}

fn leaf(path: &std::path::Path) -> CertInfo {
    let der = CertificateDer::from_pem_file(path).unwrap();
    CertInfo::parse(der.as_ref())
}

async fn health(client: &reqwest::Client, url: &str) -> (reqwest::Version, String) {
    let response = client.get(format!("{url}/healthz")).send().await.unwrap();
    (response.version(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_ca_is_made_once_and_the_server_certificate_follows_the_names() {
    let (dir, config) = setup();
    let data = dir.path().join("data");
    let first = probenet_scheduler::start(options(dir.path(), config.clone())).await.unwrap();
    let ca = first.ca_pem().unwrap().to_owned();
    let ca_der = CertificateDer::from_pem_slice(ca.as_bytes()).unwrap();
    assert_eq!(first.fingerprint(), Some(sha256_hex(ca_der.as_ref()).as_str()));
    assert!(first.url().starts_with("https://127.0.0.1:"));
    let server = leaf(&data.join("server.pem"));
    let mut sans = server.sans.clone();
    sans.sort();
    assert_eq!(sans, ["127.0.0.1", "::1", "localhost"]);
    assert!(server.not_after_unix - probenet_scheduler::time::now_ms() / 1000 > 300 * 86_400);
    assert_eq!(std::fs::read_to_string(data.join("ca.pem")).unwrap(), ca);
    use std::os::unix::fs::PermissionsExt as _;
    for key in ["ca-key.pem", "server-key.pem"] {
        assert_eq!(std::fs::metadata(data.join(key)).unwrap().permissions().mode() & 0o777, 0o600, "{key}");
    }
    let (version, body) = health(&client(&ca), &first.url()).await;
    assert_eq!((version, body.trim()), (reqwest::Version::HTTP_2, "ok"));
    let http1 = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .http1_only()
        .build()
        .unwrap();
    assert_eq!(health(&http1, &first.url()).await.0, reqwest::Version::HTTP_11);
    first.shutdown().await;

    // A restart reuses both.
    let server_pem = std::fs::read(data.join("server.pem")).unwrap();
    let second = probenet_scheduler::start(options(dir.path(), config.clone())).await.unwrap();
    assert_eq!(second.ca_pem(), Some(ca.as_str()));
    assert_eq!(std::fs::read(data.join("server.pem")).unwrap(), server_pem);
    second.shutdown().await;

    // A new name: same CA, new server certificate that holds it.
    let mut with_san = options(dir.path(), config.clone());
    with_san.sans = vec!["scheduler.example".into(), "10.1.2.3".into()];
    let third = probenet_scheduler::start(with_san).await.unwrap();
    assert_eq!(third.ca_pem(), Some(ca.as_str()));
    assert_ne!(std::fs::read(data.join("server.pem")).unwrap(), server_pem);
    let sans = leaf(&data.join("server.pem")).sans;
    assert!(sans.contains(&"scheduler.example".to_owned()) && sans.contains(&"10.1.2.3".to_owned()), "{sans:?}");
    assert_eq!(health(&client(&ca), &third.url()).await.1.trim(), "ok");
    third.shutdown().await;
}

#[tokio::test]
async fn given_certificate_files_are_served() {
    let (dir, config) = setup();
    // Make a CA and server certificate with a first run, then give them as files to another data dir.
    let made = probenet_scheduler::start(options(dir.path(), config.clone())).await.unwrap();
    let ca = made.ca_pem().unwrap().to_owned();
    made.shutdown().await;
    let data = dir.path().join("data");
    let mut given = options(dir.path(), config);
    given.data = dir.path().join("other");
    given.tls = TlsMode::Files { cert: data.join("server.pem"), key: data.join("server-key.pem") };
    let running = probenet_scheduler::start(given).await.unwrap();
    assert_eq!(running.ca_pem(), None);
    assert_eq!(running.fingerprint(), Some(leaf(&data.join("server.pem")).sha256_fingerprint.as_str()));
    assert!(!dir.path().join("other/ca.pem").exists());
    assert_eq!(health(&client(&ca), &running.url()).await.1.trim(), "ok");
    running.shutdown().await;

    let mut missing = options(dir.path(), dir.path().join("checks.yaml"));
    missing.tls = TlsMode::Files { cert: dir.path().join("nope.pem"), key: data.join("server-key.pem") };
    let error = probenet_scheduler::start(missing).await.err().map(|error| error.to_string()).unwrap_or_default();
    assert!(error.contains("nope.pem"), "{error}");
}

#[tokio::test]
async fn plain_http_is_served_on_loopback_only() {
    let (dir, config) = setup();
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:7443"] {
        let mut plain = options(dir.path(), config.clone());
        plain.tls = TlsMode::PlainHttp;
        plain.listen = listen.parse().unwrap();
        let error = probenet_scheduler::start(plain).await.err();
        assert!(matches!(error, Some(Error::PlainHttpNotLoopback(_))), "{listen}: {error:?}");
        assert!(error.unwrap().to_string().contains("loopback"));
    }
    let mut plain = options(dir.path(), config);
    plain.tls = TlsMode::PlainHttp;
    let running = probenet_scheduler::start(plain).await.unwrap();
    assert!(running.url().starts_with("http://127.0.0.1:"));
    assert_eq!((running.ca_pem(), running.fingerprint()), (None, None));
    assert!(!dir.path().join("data/ca.pem").exists());
    let (version, body) = health(&reqwest::Client::new(), &running.url()).await;
    assert_eq!((version, body.trim()), (reqwest::Version::HTTP_11, "ok"));
    running.shutdown().await;
}

#[tokio::test]
async fn a_bad_config_stops_the_start_with_every_error() {
    let (dir, config) = setup();
    std::fs::write(&config, CONFIG.replace("interval: 10s", "interval: soon").replace("[eu]", "[mars]")).unwrap();
    match probenet_scheduler::start(options(dir.path(), config)).await {
        Err(Error::Config(errors)) => assert_eq!(errors.0.len(), 2, "{errors}"),
        other => panic!("started: {other:?}"),
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut busy = options(dir.path(), dir.path().join("checks.yaml"));
    std::fs::write(dir.path().join("checks.yaml"), CONFIG).unwrap();
    busy.listen = taken.local_addr().unwrap();
    assert!(matches!(probenet_scheduler::start(busy).await, Err(Error::Listen { .. })));
}
