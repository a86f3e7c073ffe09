//! WebSocket checks against real WebSocket servers on 127.0.0.1 (tokio + async-tungstenite on the server side):
//! an echo server over `ws://` and `wss://` (an rcgen certificate), one that closes with 1011, one that refuses
//! the handshake with 403, and one that never speaks.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Message, Utf8Bytes};
use futures::StreamExt as _;
use probenet_checks::{Outcome, Reason, State, load_str, run_once};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// What a test server does once a client connected.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Echoes every message; answers `whoami` with the request's `Authorization` header.
    Echo,
    /// Echoes the first message, then closes with this code.
    CloseAfterEcho(u16),
    /// Refuses the handshake with 403 Forbidden.
    Refuse,
    /// Upgrades, then never sends anything.
    Silent,
    /// Answers any message with five `noise N` messages, `target`, then 2 KiB of `x`.
    Burst,
}

/// A server on 127.0.0.1 and the handshake requests it saw.
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<http::HeaderMap>>>,
}

impl Server {
    async fn start(behaviour: Behaviour, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (seen, tls) = (seen.clone(), tls.clone());
                tokio::spawn(tokio::time::timeout(Duration::from_secs(10), async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, behaviour, seen).await;
                            }
                        }
                        None => serve(tcp, behaviour, seen).await,
                    }
                }));
            }
        });
        Self { addr, requests }
    }

    fn header(&self, name: &str) -> Option<String> {
        let requests = self.requests.lock().unwrap();
        requests.last()?.get(name).map(|value| value.to_str().unwrap().to_owned())
    }
}

#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    behaviour: Behaviour,
    seen: Arc<Mutex<Vec<http::HeaderMap>>>,
) {
    let authorization = Arc::new(Mutex::new(String::new()));
    let auth = authorization.clone();
    let callback = move |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        seen.lock().unwrap().push(request.headers().clone());
        let header = |name: &str| request.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
        *auth.lock().unwrap() = header("authorization").unwrap_or_default();
        if let Behaviour::Refuse = behaviour {
            let refused = http::Response::builder().status(403).body(Some("no entry".to_owned())).unwrap();
            return Err(refused);
        }
        if let Some(offered) = header("sec-websocket-protocol") {
            let first = offered.split(',').next().unwrap_or_default().trim().to_owned();
            response.headers_mut().insert("sec-websocket-protocol", first.parse().unwrap());
        }
        Ok(response)
    };
    let Ok(mut ws) = async_tungstenite::tokio::accept_hdr_async(stream, callback).await else { return };
    while let Some(Ok(message)) = ws.next().await {
        match (behaviour, message) {
            (Behaviour::Silent, _) => {}
            (Behaviour::Burst, Message::Text(_)) => {
                for n in 0..5 {
                    let _ = ws.send(Message::text(format!("noise {n}"))).await;
                }
                let _ = ws.send(Message::text("target")).await;
                let _ = ws.send(Message::text("x".repeat(2048))).await;
            }
            (Behaviour::Echo, Message::Text(text)) if text.as_str() == "whoami" => {
                let who = authorization.lock().unwrap().clone();
                let _ = ws.send(Message::text(who)).await;
            }
            (Behaviour::Echo | Behaviour::CloseAfterEcho(_), Message::Text(text)) => {
                let _ = ws.send(Message::Text(text)).await;
                if let Behaviour::CloseAfterEcho(code) = behaviour {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from("boom") };
                    let _ = ws.close(Some(frame)).await;
                }
            }
            (_, Message::Close(_)) => {}
            _ => {}
        }
    }
}

/// Loads a one-check config and runs it once.
async fn run(yaml: &str) -> Outcome {
    let config = load_str("test.yaml", yaml).unwrap_or_else(|errors| panic!("invalid test config: {errors:?}"));
    let outcome = run_once(&config.checks[0], "local").await;
    println!(
        "{}",
        serde_json::to_string(&serde_json::json!({"kind": "websocket", "details": outcome.details})).unwrap()
    );
    println!("{}", serde_json::to_string_pretty(&outcome).unwrap());
    outcome
}

fn phases(outcome: &Outcome) -> Vec<&str> {
    outcome.phases.iter().map(|phase| phase.name.as_str()).collect()
}

#[tokio::test]
async fn echoed_text_regex_and_json_pass_and_the_close_is_normal() {
    let server = Server::start(Behaviour::Echo, None).await;
    let outcome = run(&format!(
        r#"
checks:
  - name: echo
    timeout: 5s
    websocket:
      url: "ws://{}/socket?room=1"
      subprotocols: [chat, superchat]
      steps:
        - send: hello
        - expect: {{text: hello, within: 2s}}
        - send: tick 42
        - expect: {{regex: "^tick \\d+$"}}
        - send: '{{"type": "status", "items": [{{"id": 7}}, {{"id": 42}}]}}'
        - expect: {{json: {{path: "$.items[*].id", equals: 42}}}}
        - send: '{{"type": "status"}}'
        - expect: {{json: {{path: "$.type", matches: "^stat"}}}}
"#,
        server.addr
    ))
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    let names: Vec<(&str, bool)> = outcome.assertions.iter().map(|a| (a.name.as_str(), a.passed)).collect();
    assert_eq!(
        names,
        [
            ("steps[1].expect", true),
            ("steps[3].expect", true),
            ("steps[5].expect", true),
            ("steps[7].expect", true),
            ("close", true)
        ]
    );
    assert_eq!(outcome.assertions[1].observed, "\"tick 42\"");
    assert_eq!(outcome.assertions[4].expected, "code 1000");
    let details = &outcome.details;
    assert_eq!(details["remote_address"], server.addr.to_string());
    assert_eq!(details["status_code"], 101);
    assert_eq!(details["subprotocol"], "chat");
    assert_eq!(details["messages_sent"], 4);
    assert_eq!(details["messages_received"], 4);
    assert_eq!(details["steps_run"], 8);
    assert_eq!(details["close_code"], 1000);
    assert_eq!(details["closed_by"], "client");
    assert_eq!(details["failed_step"], serde_json::Value::Null);
    assert_eq!(phases(&outcome), ["resolve", "connect", "handshake", "messages", "close"]);
    assert_eq!(server.header("sec-websocket-protocol").as_deref(), Some("chat, superchat"));
    assert!(server.header("user-agent").unwrap().starts_with("probenet/"));
    assert_eq!(server.header("host"), Some(server.addr.to_string()));
}

#[tokio::test]
async fn a_wrong_message_is_down_with_the_step_and_the_text_received() {
    let server = Server::start(Behaviour::Echo, None).await;
    let outcome = run(&format!(
        r#"
checks:
  - name: echo
    timeout: 5s
    websocket:
      url: "ws://{}/"
      steps:
        - send: hello
        - expect: {{text: goodbye}}
        - send: again
        - expect: {{regex: again}}
"#,
        server.addr
    ))
    .await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    let error = outcome.error.clone().unwrap();
    assert_eq!(error, "steps[1].expect: another message came; received \"hello\"");
    assert_eq!(outcome.details["failed_step"], "steps[1].expect");
    assert_eq!(outcome.details["step_failure"], "unexpected_message");
    assert_eq!(outcome.details["received"], "hello");
    assert_eq!(outcome.details["steps_run"], 1);
    assert_eq!(outcome.assertions[0].observed, "\"hello\"");
    assert_eq!(outcome.assertions[0].expected, "\"goodbye\"");
    assert_eq!(outcome.assertions[1].observed, "not reached: an earlier step failed");
    assert!(!outcome.assertions[1].passed);
}

#[tokio::test]
async fn an_expect_times_out_within_its_time_not_later() {
    let server = Server::start(Behaviour::Silent, None).await;
    let started = Instant::now();
    let outcome = run(&format!(
        r#"
checks:
  - name: silent
    timeout: 5s
    websocket:
      url: "ws://{}/"
      steps:
        - send: anyone?
        - expect: {{text: here, within: 300ms}}
      close: {{within: 300ms}}
"#,
        server.addr
    ))
    .await;
    let took = started.elapsed();
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert_eq!(outcome.details["step_failure"], "expect_timeout");
    assert_eq!(outcome.error.as_deref(), Some("steps[1].expect: no matching message within 300ms"));
    let messages = outcome.phases.iter().find(|phase| phase.name == "messages").unwrap().seconds;
    assert!((0.3..0.6).contains(&messages), "the messages phase took {messages}s");
    assert!(took < Duration::from_millis(1500), "the run took {took:?}");
}

#[tokio::test]
async fn an_expect_without_within_gives_up_just_before_the_checks_timeout() {
    let server = Server::start(Behaviour::Silent, None).await;
    let outcome = run(&format!(
        "checks:\n  - name: silent\n    timeout: 1s\n    websocket: {{url: \"ws://{}/\", steps: [{{expect: {{text: here}}}}]}}\n",
        server.addr
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::Assertion), "{:?}", outcome.error);
    assert_eq!(outcome.error.as_deref(), Some("steps[0].expect: no matching message before the check's timeout of 1s"));
    assert_eq!(outcome.details["step_failure"], "expect_timeout");
    assert!(outcome.duration_seconds < 1.0, "{}", outcome.duration_seconds);
}

#[tokio::test]
async fn a_server_closing_with_1011_is_down_naming_the_code() {
    let server = Server::start(Behaviour::CloseAfterEcho(1011), None).await;
    let outcome = run(&format!(
        r#"
checks:
  - name: closing
    timeout: 5s
    websocket:
      url: "ws://{}/"
      steps:
        - send: hi
        - expect: {{text: hi}}
"#,
        server.addr
    ))
    .await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    let error = outcome.error.clone().unwrap();
    assert!(error.starts_with("close: expected code 1000, got code 1011 (\"boom\")"), "{error}");
    assert_eq!(outcome.details["close_code"], 1011);
    assert_eq!(outcome.details["close_reason"], "boom");
    assert_eq!(outcome.details["steps_run"], 2);

    // Expecting 1011 makes the same server pass.
    let outcome = run(&format!(
        r#"
checks:
  - name: closing
    timeout: 5s
    websocket: {{url: "ws://{}/", steps: [{{send: hi}}, {{expect: {{text: hi}}}}], close: {{code: 1011}}}}
"#,
        server.addr
    ))
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
}

#[tokio::test]
async fn a_server_closing_during_an_expect_fails_that_step() {
    let server = Server::start(Behaviour::CloseAfterEcho(1011), None).await;
    let outcome = run(&format!(
        r#"
checks:
  - name: closing
    timeout: 5s
    websocket:
      url: "ws://{}/"
      steps: [{{send: hi}}, {{expect: {{text: hi}}}}, {{expect: {{text: more}}}}]
"#,
        server.addr
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert_eq!(
        outcome.error.as_deref(),
        Some("steps[2].expect: the server closed the connection with code 1011 (\"boom\")")
    );
    assert_eq!(outcome.details["step_failure"], "closed");
    assert_eq!(outcome.details["closed_by"], "server");
}

#[tokio::test]
async fn other_messages_are_skipped_within_max_frames_and_a_large_message_is_refused() {
    let server = Server::start(Behaviour::Burst, None).await;
    let check = |options: &str| {
        format!(
            "checks:\n  - name: burst\n    timeout: 5s\n    websocket: {{url: \"ws://{}/\", {options}}}\n",
            server.addr
        )
    };
    let outcome = run(&check(
        "max_message_size: 1KiB, steps: [{send: go}, {expect: {text: target, skip_others: true}}, {expect: {regex: x}}]",
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::Protocol), "{:?}", outcome.error);
    assert!(outcome.assertions[0].passed, "{:?}", outcome.assertions);
    assert_eq!(outcome.details["step_failure"], "message_too_large");
    assert_eq!(outcome.details["failed_step"], "steps[2].expect");
    assert_eq!(outcome.details["messages_received"], 6);
    assert_eq!(
        outcome.error.as_deref(),
        Some("steps[2].expect: a message is larger than max_message_size (1024 bytes)")
    );

    let outcome = run(&check("max_frames: 3, steps: [{send: go}, {expect: {text: target, skip_others: true}}]")).await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert_eq!(outcome.details["step_failure"], "frame_limit");
    assert_eq!(outcome.details["received"], "noise 2");
    assert_eq!(
        outcome.error.as_deref(),
        Some("steps[1].expect: 3 frames read without a matching message; received \"noise 2\"")
    );
}

#[tokio::test]
async fn a_refused_handshake_is_down_with_its_status() {
    let server = Server::start(Behaviour::Refuse, None).await;
    let outcome = run(&format!(
        "checks:\n  - name: refused\n    timeout: 5s\n    websocket: {{url: \"ws://{}/\", steps: [{{send: hi}}]}}\n",
        server.addr
    ))
    .await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Status));
    assert_eq!(outcome.error.as_deref(), Some("handshake: expected 101 Switching Protocols, got 403 Forbidden"));
    assert_eq!(outcome.details["status_code"], 403);
    assert!(outcome.details.get("messages_sent").is_none(), "{}", outcome.details);
    assert_eq!(phases(&outcome), ["resolve", "connect", "handshake"]);
}

#[tokio::test]
async fn nothing_listening_is_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outcome =
        run(&format!("checks:\n  - name: nobody\n    timeout: 5s\n    websocket: {{url: \"ws://{addr}/\"}}\n")).await;
    assert_eq!(outcome.reason, Some(Reason::Connect));
    assert_eq!(outcome.details["remote_address"], addr.to_string());
}

/// A CA and a leaf for `localhost` and 127.0.0.1 signed by it: the acceptor and the CA's PEM.
fn pki() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let at = |days: i64| epoch + Duration::from_secs((now.as_secs() as i64 + days * 86_400) as u64);
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (ca_params.not_before, ca_params.not_after) = (at(-1), at(30));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    (params.not_before, params.not_after) = (at(-1), at(30));
    let leaf = params.signed_by(&key, &Issuer::from_params(&ca_params, &ca_key)).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem())
}

#[tokio::test]
async fn wss_with_a_trusted_certificate_passes_and_reports_the_session() {
    let (acceptor, ca) = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let server = Server::start(Behaviour::Echo, Some(acceptor)).await;
    let outcome = run(&format!(
        r#"
checks:
  - name: secure
    timeout: 5s
    websocket:
      url: "wss://localhost:{}/"
      ip_version: ipv4
      tls: {{ca_file: "{}"}}
      steps: [{{send: hello}}, {{expect: {{text: hello}}}}]
"#,
        server.addr.port(),
        ca_file.display()
    ))
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert!(outcome.details["tls_version"].as_str().unwrap().starts_with("TLSv1."), "{}", outcome.details);
    assert_eq!(outcome.details["certificate"]["verdict"], "ok");
    assert_eq!(phases(&outcome), ["resolve", "connect", "tls", "handshake", "messages", "close"]);

    // Without the CA the certificate is untrusted, and nothing is sent.
    let outcome = run(&format!(
        "checks:\n  - name: secure\n    timeout: 5s\n    websocket: {{url: \"wss://localhost:{}/\", ip_version: ipv4}}\n",
        server.addr.port()
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::CertUntrusted), "{:?}", outcome.error);
    assert!(outcome.details.get("status_code").is_none());
    assert_eq!(outcome.details["remote_address"], server.addr.to_string());
}

#[tokio::test]
async fn a_header_secret_reaches_the_server_but_never_the_result() {
    const SECRET: &str = "s3cr3t-t0ken-5f1e";
    let server = Server::start(Behaviour::Echo, None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let outcome = run(&format!(
        r#"
checks:
  - name: authed
    timeout: 5s
    websocket:
      url: "ws://{}/"
      headers: {{Authorization: "Bearer ${{file:{}}}"}}
      steps:
        - send: whoami
        - expect: {{text: nobody}}
"#,
        server.addr,
        file.display()
    ))
    .await;
    assert_eq!(server.header("authorization"), Some(format!("Bearer {SECRET}")));
    // The server said the secret back: the failure shows it redacted everywhere.
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert_eq!(outcome.details["received"], "Bearer [redacted]");
    let text = serde_json::to_string(&outcome).unwrap();
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
}

#[test]
fn the_example_file_validates() {
    let config = probenet_checks::load_paths(&["../examples/websocket.yaml".into()])
        .unwrap_or_else(|errors| panic!("{errors:?}"));
    assert!(config.checks.iter().all(|check| check.kind.key() == "websocket"));
    assert!(!config.checks.is_empty());
}
