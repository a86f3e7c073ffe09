//! The Loki sink against a capturing HTTP server: the exact push body, headers, retries, refusals, redaction.

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

#[path = "common/tls.rs"]
mod tls;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use probenet_checks::outcome::{Assertion, Outcome, Phase, Reason, State};
use probenet_checks::wire::RunResult;
use probenet_exporters::loki::{LokiOptions, LokiSink};
use probenet_exporters::{CheckMeta, Event, QueueOptions, SendError, Sink, SinkHandle};
use serde_json::json;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Request {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Default)]
struct Script {
    /// Answers to give, in order; 204 once they run out.
    answers: VecDeque<(u16, &'static str)>,
    seen: Vec<Request>,
}

struct Server {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(answers: &[(u16, &'static str)]) -> Self {
        let script = Arc::new(Mutex::new(Script { answers: answers.iter().copied().collect(), seen: Vec::new() }));
        let app = Router::new().fallback(capture).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, script, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Request> {
        self.script.lock().unwrap().seen.clone()
    }
}

async fn capture(
    Shared(script): Shared<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let mut script = script.lock().unwrap();
    script.seen.push(Request { method, path: uri.path().to_owned(), headers, body: body.to_vec() });
    let (status, text) = script.answers.pop_front().unwrap_or((204, ""));
    (StatusCode::from_u16(status).unwrap(), text)
}

fn check() -> Arc<CheckMeta> {
    Arc::new(CheckMeta {
        name: "api".into(),
        kind: probenet_checks::Kind::Http,
        target: "http://t/".into(),
        labels: BTreeMap::new(),
    })
}

/// A result of `api` from `region`, planned at 2026-11-18T12:00:`second`Z and started 250 ms later.
fn result(region: &str, prober: &str, second: i64, up: bool) -> Event {
    let planned = 1_795_003_200_000 + second * 1_000;
    let mut outcome = Outcome {
        state: State::Up,
        duration_seconds: 0.25,
        phases: vec![Phase { name: "connect".into(), seconds: 0.125 }],
        reason: None,
        error: None,
        assertions: Vec::new(),
        details: json!({"status_code": 200}),
        log: vec!["not in the line".into()],
        artifacts: Vec::new(),
    };
    if !up {
        outcome.state = State::Down;
        outcome.reason = Some(Reason::Status);
        outcome.error = Some("status: expected 200, got 503".into());
        outcome.assertions =
            vec![Assertion { name: "status".into(), expected: "200".into(), observed: "503".into(), passed: false }];
        outcome.details = json!({"status_code": 503});
    }
    let result = RunResult {
        check: "api".into(),
        region: region.into(),
        planned_at_ms: planned,
        started_at_ms: planned + 250,
        prober: prober.into(),
        outcome,
    };
    Event::Result { check: check(), result: Arc::new(result) }
}

fn options(server: &Server) -> LokiOptions {
    LokiOptions { url: server.url(), timeout: Duration::from_secs(5), ..LokiOptions::default() }
}

fn fast() -> QueueOptions {
    QueueOptions {
        linger: Duration::from_millis(2),
        min_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        ..QueueOptions::default()
    }
}

/// The body Loki's documented JSON push format gives for the batch of `the_body_is_lokis_push_format_byte_for_byte`,
/// written out by hand: one stream per label set in order of first appearance, entries oldest first,
/// timestamps as strings of unix nanoseconds, each line the record without `ts`, `check`, `region`, `success`,
/// `region_labels`; the region's labels are stream labels, and one of them wins over the sink's label of the
/// same name.
const EXPECTED: &str = concat!(
    r#"{"streams":["#,
    r#"{"stream":{"job":"api","probe":"eu","success":"true","source":"probenet"},"values":["#,
    r#"["1795003200250000000","{\"kind\":\"http\",\"target\":\"http://t/\",\"prober\":\"p1\","#,
    r#"\"planned_at\":\"2026-11-18T12:00:00.000Z\",\"started_at\":\"2026-11-18T12:00:00.250Z\",\"lateness_ms\":250,"#,
    r#"\"state\":\"up\",\"reason\":null,\"error\":null,\"duration_seconds\":0.25,\"phases\":{\"connect\":0.125},"#,
    r#"\"assertions\":[],\"labels\":{},\"artifacts\":[],\"details\":{\"status_code\":200}}"],"#,
    r#"["1795003210250000000","{\"kind\":\"http\",\"target\":\"http://t/\",\"prober\":\"p1\","#,
    r#"\"planned_at\":\"2026-11-18T12:00:10.000Z\",\"started_at\":\"2026-11-18T12:00:10.250Z\",\"lateness_ms\":250,"#,
    r#"\"state\":\"up\",\"reason\":null,\"error\":null,\"duration_seconds\":0.25,\"phases\":{\"connect\":0.125},"#,
    r#"\"assertions\":[],\"labels\":{},\"artifacts\":[],\"details\":{\"status_code\":200}}"]]},"#,
    r#"{"stream":{"job":"api","probe":"us","success":"false","provider":"gcp","source":"edge"},"values":["#,
    r#"["1795003200250000000","{\"kind\":\"http\",\"target\":\"http://t/\",\"prober\":\"p2\","#,
    r#"\"planned_at\":\"2026-11-18T12:00:00.000Z\",\"started_at\":\"2026-11-18T12:00:00.250Z\",\"lateness_ms\":250,"#,
    r#"\"state\":\"down\",\"reason\":\"status\",\"error\":\"status: expected 200, got 503\",\"duration_seconds\":0.25,"#,
    r#"\"phases\":{\"connect\":0.125},\"assertions\":[{\"name\":\"status\",\"expected\":\"200\",\"observed\":\"503\","#,
    r#"\"passed\":false}],\"labels\":{},\"artifacts\":[],\"details\":{\"status_code\":503}}"]]}"#,
    r#"]}"#,
);

#[tokio::test]
async fn the_body_is_lokis_push_format_byte_for_byte() {
    let server = Server::start(&[]).await;
    let sink = LokiSink::new(LokiOptions {
        tenant: Some("team-a".into()),
        bearer_token: Some("tok-123".into()),
        labels: BTreeMap::from([("source".to_owned(), "probenet".to_owned())]),
        region_labels: BTreeMap::from([(
            "us".to_owned(),
            BTreeMap::from([("provider".to_owned(), "gcp".to_owned()), ("source".to_owned(), "edge".to_owned())]),
        )]),
        ..options(&server)
    })
    .unwrap();
    let removed = Event::Removed { check: check(), region: "eu".into(), at_ms: 1 };
    let batch = [result("eu", "p1", 10, true), result("us", "p2", 0, false), removed, result("eu", "p1", 0, true)];
    sink.send(&batch).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/loki/api/v1/push");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["x-scope-orgid"], "team-a");
    assert_eq!(request.headers["authorization"], "Bearer tok-123");
    assert!(request.headers.get("content-encoding").is_none());
    if request.body != EXPECTED.as_bytes() {
        panic!("body differs:\n got: {}\nwant: {EXPECTED}", String::from_utf8_lossy(&request.body));
    }
    // The literal itself is valid JSON whose lines are valid JSON.
    let parsed: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    let line: serde_json::Value = serde_json::from_str(parsed["streams"][1]["values"][0][1].as_str().unwrap()).unwrap();
    assert_eq!(line["reason"], "status");

    // A batch of removals only sends nothing.
    let removed = Event::Removed { check: check(), region: "eu".into(), at_ms: 1 };
    sink.send(&[removed]).await.unwrap();
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn basic_auth_and_a_full_push_url_are_used_as_given() {
    let server = Server::start(&[]).await;
    let sink = LokiSink::new(LokiOptions {
        url: format!("{}/prefix/loki/api/v1/push", server.url()),
        basic_auth: Some(("user".into(), "pa55".into())),
        ..options(&server)
    })
    .unwrap();
    sink.send(&[result("eu", "p1", 0, true)]).await.unwrap();
    let request = &server.seen()[0];
    assert_eq!(request.path, "/prefix/loki/api/v1/push");
    assert_eq!(request.headers["authorization"], "Basic dXNlcjpwYTU1");
    assert!(request.headers.get("x-scope-orgid").is_none());
}

#[tokio::test]
async fn too_many_requests_is_retried_and_counted() {
    let server = Server::start(&[(429, "slow down")]).await;
    let handle = SinkHandle::spawn("loki", Arc::new(LokiSink::new(options(&server)).unwrap()), fast());
    for second in 0..3 {
        handle.offer(result("eu", "p1", second, true));
    }
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.retried, counters.dropped), (3, 1, 0), "{counters:?}");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body, "the retry sends the same batch");
    let body: serde_json::Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(body["streams"][0]["values"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_and_bad_requests_dropped() {
    let server = Server::start(&[(503, "ingester unavailable"), (400, "entry too far behind\nfor stream")]).await;
    let handle = SinkHandle::spawn(
        "loki",
        Arc::new(LokiSink::new(LokiOptions { bearer_token: Some("tok-9".into()), ..options(&server) }).unwrap()),
        fast(),
    );
    handle.offer(result("eu", "p1", 0, true));
    handle.offer(result("eu", "p1", 1, false));
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.retried, counters.dropped), (0, 1, 2), "{counters:?}");
    let message = counters.last_error.unwrap();
    assert_eq!(message, "loki: 400 Bad Request: entry too far behind for stream");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn connection_failures_are_retried_and_never_name_credentials() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let sink = LokiSink::new(LokiOptions {
        url: format!("http://{closed}"),
        basic_auth: Some(("user".into(), "pw-Z9x".into())),
        timeout: Duration::from_secs(5),
        ..LokiOptions::default()
    })
    .unwrap();
    let error = sink.send(&[result("eu", "p1", 0, true)]).await.unwrap_err();
    let SendError::Retry(message) = error else { panic!("{error:?}") };
    assert!(message.starts_with("loki: cannot connect (127.0.0.1)"), "{message}");
    assert!(!message.contains("pw-Z9x") && !message.contains("dXNlcjpwdy1aOXg"), "{message}");
}

#[tokio::test]
async fn secrets_never_reach_the_body_or_the_errors() {
    let server = Server::start(&[(500, "bad token tok-S3CRET")]).await;
    let sink = LokiSink::new(LokiOptions {
        bearer_token: Some("tok-S3CRET".into()),
        secrets: probenet_exporters::Secrets::new(["pw-XYZ"]),
        ..options(&server)
    })
    .unwrap();
    let Event::Result { result, .. } = result("eu", "p1", 0, false) else { unreachable!() };
    let mut leaky = (*result).clone();
    leaky.outcome.error = Some("login with pw-XYZ and tok-S3CRET refused".into());
    leaky.outcome.assertions[0].observed = "pw-XYZ".into();
    let mut meta = (*check()).clone();
    meta.labels.insert("k".into(), "pw-XYZ".into());
    let batch = [Event::Result { check: Arc::new(meta), result: Arc::new(leaky) }];
    let error = sink.send(&batch).await.unwrap_err();
    assert_eq!(error, SendError::Retry("loki: 500 Internal Server Error: bad token [redacted]".into()));
    sink.send(&batch).await.unwrap();
    for request in server.seen() {
        let body = String::from_utf8(request.body).unwrap();
        assert!(!body.contains("pw-XYZ") && !body.contains("tok-S3CRET"), "{body}");
        assert!(body.contains(r#"login with [redacted] and [redacted] refused"#), "{body}");
        assert!(body.contains(r#"\"labels\":{\"k\":\"[redacted]\"}"#), "{body}");
    }
    assert!(!format!("{sink:?}").contains("tok-S3CRET"));
}

#[tokio::test]
async fn over_tls_only_the_configured_ca_is_trusted_and_the_token_never_leaves_otherwise() {
    let (ca_pem, config) = tls::config();
    let script = Arc::new(Mutex::new(Script::default()));
    let app = Router::new().fallback(capture).with_state(script.clone());
    let (addr, refused) = tls::serve(app, config).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let options = |ca_file: Option<std::path::PathBuf>| LokiOptions {
        url: format!("https://{addr}"),
        bearer_token: Some("loki-tls-token".into()),
        ca_file,
        timeout: Duration::from_secs(5),
        ..LokiOptions::default()
    };

    // Trusting the CA: pushed over TLS, with the token, in Loki's format.
    let sink = LokiSink::new(options(Some(ca_file))).unwrap();
    sink.send(&[result("eu", "p1", 0, true)]).await.unwrap();
    let seen = script.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/loki/api/v1/push");
    assert_eq!(seen[0].headers["authorization"], "Bearer loki-tls-token");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["streams"][0]["stream"]["probe"], "eu");

    // Without it: the handshake fails, the error says so without the token, nothing arrives.
    let sink = LokiSink::new(options(None)).unwrap();
    let error = sink.send(&[result("eu", "p1", 1, true)]).await.unwrap_err();
    let message = format!("{error:?}");
    assert!(!message.contains("loki-tls-token"), "{message}");
    // The server notices the aborted handshake a moment after the client gave up.
    for _ in 0..100 {
        if *refused.lock().unwrap() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(*refused.lock().unwrap() >= 1, "the client refused the server's certificate");
    assert_eq!(script.lock().unwrap().seen.len(), 1, "nothing reached the server without the CA");
}
