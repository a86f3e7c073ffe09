//! `api` checks against a real HTTP server on 127.0.0.1 (hyper's HTTP/1.1 server): a login that hands out a
//! token, orders that need it (401 without), a failing step, a slow step, and captured values that never show.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use probenet_checks::{Outcome, Reason, State, load_str, run_once};
use tokio::net::TcpListener;

/// The token the login step gets: a captured value, so it must never show in a result.
const TOKEN: &str = "tok-7f3a9c1e-5b2d-4e8f-a6c0-d9e1b2c3f4a5";
/// The password the login step sends, from a `${file:..}` secret.
const PASSWORD: &str = "pw-0b8e2d7c-secret";

/// What the server saw: each request's method, path, `Authorization` header and body.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>, String)>>>;

/// The shop's API:
/// - `POST /login`: `{"token": TOKEN}` when the body holds the password, else 403,
/// - `GET /orders`: 401 without `Authorization: Bearer TOKEN`, else `{"items": [{"id": 42}]}` and an `ETag`,
/// - `GET /orders/42`: 200 with the same check, `GET /orders/other`: 404,
/// - `GET /echo`: the token back in the body (a server that leaks what it was given),
/// - `GET /broken`: 500, `GET /slow`: 200 after 5 s.
async fn handle(request: Request<hyper::body::Incoming>, seen: Seen) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let auth = request.headers().get("authorization").map(|value| value.to_str().unwrap_or("").to_owned());
    let body = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    seen.lock().unwrap().push((method.clone(), path.clone(), auth.clone(), body.clone()));
    let authorized = auth.as_deref() == Some(&format!("Bearer {TOKEN}"));
    let reply = |status: u16, text: String| {
        Response::builder()
            .status(status)
            .header("Content-Type", "application/json")
            .header("ETag", "\"v1\"")
            .body(Full::new(Bytes::from(text)))
            .unwrap()
    };
    let response = match (method.as_str(), path.as_str()) {
        ("POST", "/login") if body.contains(PASSWORD) => reply(200, format!("{{\"token\": \"{TOKEN}\"}}")),
        ("POST", "/login") => reply(403, "{\"error\": \"bad password\"}".to_owned()),
        (_, "/orders" | "/orders/42" | "/echo") if !authorized => {
            reply(401, "{\"error\": \"unauthorized\"}".to_owned())
        }
        ("GET", "/orders") => reply(200, "{\"items\": [{\"id\": 42}, {\"id\": 43}]}".to_owned()),
        ("GET", "/orders/42") => reply(200, "{\"id\": 42, \"state\": \"paid\"}".to_owned()),
        ("GET", "/echo") => reply(200, format!("{{\"you_sent\": \"{TOKEN}\"}}")),
        ("GET", "/broken") => reply(500, "{\"error\": \"database down\"}".to_owned()),
        ("GET", "/slow") => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            reply(200, "{}".to_owned())
        }
        _ => reply(404, "{}".to_owned()),
    };
    Ok(response)
}

/// The server on 127.0.0.1 and what it saw.
struct Server {
    addr: SocketAddr,
    seen: Seen,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        let shared = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = shared.clone();
                let service = hyper::service::service_fn(move |request| handle(request, seen.clone()));
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self { addr, seen }
    }

    fn requests(&self) -> Vec<(String, String, Option<String>, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// The password in a file, for `${file:..}`.
fn password_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("password");
    std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
    let shown = path.display().to_string();
    (dir, shown)
}

/// Loads a one-check config and runs it once.
async fn run(yaml: &str) -> Outcome {
    let config = load_str("test.yaml", yaml).unwrap_or_else(|errors| panic!("invalid test config: {errors}"));
    let outcome = run_once(&config.checks[0], "local").await;
    // The recorded form of `fixtures/details.jsonl`.
    println!("{}", serde_json::to_string(&serde_json::json!({"kind": "api", "details": outcome.details})).unwrap());
    println!("{}", serde_json::to_string_pretty(&outcome).unwrap());
    outcome
}

/// The login step, then `rest` (YAML list items indented for `steps:`).
fn shop(server: &Server, password: &str, timeout: &str, rest: &str) -> String {
    format!(
        r#"checks:
  - name: shop
    timeout: {timeout}
    api:
      steps:
        - name: login
          url: "http://{addr}/login"
          method: POST
          headers: {{Content-Type: application/json}}
          body: '{{"user": "probe", "password": "${{file:{password}}}"}}'
          expect: {{status: 200}}
          capture:
            token: {{json: "$.token"}}
{rest}"#,
        addr = server.addr
    )
}

fn names(outcome: &Outcome) -> Vec<String> {
    let steps = outcome.details["steps"].as_array().cloned().unwrap_or_default();
    steps.iter().map(|step| step["name"].as_str().unwrap_or("").to_owned()).collect()
}

#[tokio::test]
async fn a_login_token_captured_as_json_authorizes_the_next_steps() {
    let server = Server::start().await;
    let (_dir, password) = password_file();
    let rest = format!(
        r#"        - name: orders
          url: "http://{addr}/orders"
          headers: {{Authorization: "Bearer ${{steps.login.token}}"}}
          expect: {{status: 200, json: [{{path: "$.items[0].id", equals: 42}}]}}
          capture:
            first: {{json: "$.items[0].id"}}
            etag: {{header: ETag}}
            second: {{regex: '"id": ([0-9]+)\}}\]'}}
        - name: order
          url: "http://{addr}/orders/${{steps.orders.first}}"
          headers:
            Authorization: "Bearer ${{steps.login.token}}"
            If-None-Match: "${{steps.orders.etag}}"
          expect: {{status: 200, body_regex: "paid"}}
"#,
        addr = server.addr
    );
    let outcome = run(&shop(&server, &password, "5s", &rest)).await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert_eq!(names(&outcome), ["login", "orders", "order"]);

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[0].3.contains(PASSWORD), "the secret is sent: {:?}", requests[0]);
    assert_eq!(requests[1].2.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(requests[2].1, "/orders/42", "the captured id is in the URL");

    let steps = &outcome.details["steps"];
    assert_eq!(steps[0]["status_code"], 200);
    assert_eq!(steps[0]["captured"], serde_json::json!([{"name": "token", "length": TOKEN.len()}]));
    assert_eq!(steps[1]["captured"][2], serde_json::json!({"name": "second", "length": 2}));
    assert_eq!(steps[2]["url"], format!("http://{}/orders/${{steps.orders.first}}", server.addr));
    for step in steps.as_array().unwrap() {
        assert_eq!(step["passed"], true);
        assert!(step["phases"]["connect"].as_f64().unwrap() > 0.0, "{step}");
        assert!(step["phases"]["processing"].as_f64().unwrap() > 0.0, "{step}");
        let duration = step["duration_seconds"].as_f64().unwrap();
        assert!(duration > 0.0 && duration <= outcome.duration_seconds, "{step}");
    }
    assert_eq!(outcome.details["failed_step"], serde_json::Value::Null);
    // Assertions say which step they belong to.
    assert_eq!(outcome.assertions[0].name, "login: status");
    assert!(outcome.assertions.iter().any(|a| a.name == "order: body_regex" && a.passed));
    // The run's phases are the sum of the steps'.
    let connect: f64 = steps.as_array().unwrap().iter().map(|step| step["phases"]["connect"].as_f64().unwrap()).sum();
    assert!((outcome.phase("connect").unwrap() - connect).abs() < 1e-6);

    let text = serde_json::to_string(&outcome).unwrap();
    assert!(!text.contains(TOKEN) && !text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn without_the_token_the_server_says_401_and_the_error_names_the_step() {
    let server = Server::start().await;
    let (_dir, password) = password_file();
    let rest = format!(
        r#"        - name: orders
          url: "http://{addr}/orders"
          headers: {{Authorization: "Bearer not-${{steps.login.token}}"}}
          expect: {{status: 200}}
        - name: never
          url: "http://{addr}/orders/42"
"#,
        addr = server.addr
    );
    let outcome = run(&shop(&server, &password, "5s", &rest)).await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Status));
    assert_eq!(outcome.error.as_deref(), Some("step `orders`: status: expected 200, got 401"));
    assert_eq!(outcome.details["failed_step"], "orders");
    assert_eq!(names(&outcome), ["login", "orders"], "the step after the failure does not run");
    assert_eq!(outcome.details["steps"][0]["passed"], true);
    assert_eq!(outcome.details["steps"][1]["passed"], false);
    assert_eq!(outcome.details["steps"][1]["status_code"], 401);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_server_error_fails_its_step_by_name() {
    let server = Server::start().await;
    let (_dir, password) = password_file();
    let rest = format!(
        "        - name: report\n          url: \"http://{}/broken\"\n          expect: {{status: [200, 204]}}\n",
        server.addr
    );
    let outcome = run(&shop(&server, &password, "5s", &rest)).await;
    assert_eq!(outcome.reason, Some(Reason::Status));
    assert_eq!(outcome.error.as_deref(), Some("step `report`: status: expected 200, 204, got 500"));
    assert_eq!(outcome.details["failed_step"], "report");

    // A wrong password fails the first step, and its missing capture is not what is reported.
    let outcome = run(&shop(&server, "/nonexistent/password", "5s", &rest)).await;
    assert_eq!(outcome.reason, Some(Reason::Secret));
    assert!(outcome.error.as_deref().unwrap().starts_with("step `login`: secret ${file:/nonexistent/password}"));
    assert_eq!(outcome.details["failed_step"], "login");
}

#[tokio::test]
async fn a_capture_that_finds_nothing_fails_its_step() {
    let server = Server::start().await;
    let (_dir, password) = password_file();
    let rest = format!(
        "        - name: orders\n          url: \"http://{}/orders\"\n          headers: {{Authorization: \"Bearer ${{steps.login.token}}\"}}\n          capture: {{id: {{json: \"$.items[9].id\"}}}}\n",
        server.addr
    );
    let outcome = run(&shop(&server, &password, "5s", &rest)).await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert_eq!(outcome.error.as_deref(), Some("step `orders`: capture id: $.items[9].id matched nothing"));
    assert_eq!(outcome.details["steps"][1]["status_code"], 200);
}

#[tokio::test]
async fn a_captured_secret_echoed_back_never_shows_in_the_result() {
    let server = Server::start().await;
    let (_dir, password) = password_file();
    // The server echoes the token; the assertions fail on the body, so the run reports what it observed.
    let rest = format!(
        r#"        - name: echo
          url: "http://{addr}/echo?t=${{steps.login.token}}"
          headers: {{Authorization: "Bearer ${{steps.login.token}}"}}
          expect:
            status: 200
            body_regex: 'tok-[0-9a-f-]+'
            json: [{{path: "$.you_sent", equals: "something else"}}]
"#,
        addr = server.addr
    );
    let outcome = run(&shop(&server, &password, "5s", &rest)).await;
    assert_eq!(outcome.reason, Some(Reason::Body));
    assert_eq!(outcome.details["failed_step"], "echo");
    assert!(
        outcome.error.as_deref().unwrap().starts_with("step `echo`: json $.you_sent: expected"),
        "{:?}",
        outcome.error
    );
    let observed: Vec<&str> = outcome.assertions.iter().map(|a| a.observed.as_str()).collect();
    assert!(observed.contains(&"\"[redacted]\""), "{observed:?}");
    assert!(server.requests()[1].1.starts_with("/echo"), "the step ran");
    let text = serde_json::to_string(&outcome).unwrap();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!text.contains(&TOKEN[4..20]), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(outcome.log.iter().any(|line| line == &format!("step `login`: captured token ({} bytes)", TOKEN.len())));
}

#[tokio::test]
async fn the_checks_timeout_covers_every_step_and_names_the_slow_one() {
    let server = Server::start().await;
    let (_dir, password) = password_file();
    let rest = format!(
        "        - name: orders\n          url: \"http://{addr}/orders\"\n          headers: {{Authorization: \"Bearer ${{steps.login.token}}\"}}\n        - name: slow\n          url: \"http://{addr}/slow\"\n",
        addr = server.addr
    );
    let started = std::time::Instant::now();
    let outcome = run(&shop(&server, &password, "1s", &rest)).await;
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    assert_eq!(outcome.reason, Some(Reason::Timeout));
    assert_eq!(outcome.error.as_deref(), Some("step `slow`: no response within the check's timeout of 1s"));
    assert_eq!(names(&outcome), ["login", "orders", "slow"]);
}

#[test]
fn the_example_file_validates() {
    let config =
        probenet_checks::load_paths(&["../examples/api.yaml".into()]).unwrap_or_else(|errors| panic!("{errors:?}"));
    assert!(config.checks.iter().all(|check| check.kind.key() == "api"));
    let probenet_checks::CheckKind::Api(check) = &config.checks[0].kind else { panic!("not an api check") };
    assert_eq!(check.steps.len(), 3);
    // Its one secret is named, where it is written, when it is not set (`probenet validate examples/`).
    if std::env::var_os("ORDERS_API_KEY").is_none() {
        let errors = probenet_checks::config::load_paths_checking_secrets(&["../examples/api.yaml".into()])
            .err()
            .map(|errors| errors.to_string())
            .unwrap_or_default();
        assert_eq!(
            errors.trim(),
            "../examples/api.yaml:13:17: checks[0].api.steps[0].body: secret ${env:ORDERS_API_KEY}: \
             environment variable ORDERS_API_KEY is not set"
        );
    }
}

#[test]
fn more_than_twenty_steps_is_a_config_error() {
    let steps: String =
        (0..21).map(|i| format!("        - {{name: s{i}, url: \"http://127.0.0.1:9/{i}\"}}\n")).collect();
    let yaml = format!("checks:\n  - name: long\n    api:\n      steps:\n{steps}");
    let errors = load_str("long.yaml", &yaml).err().map(|errors| errors.to_string()).unwrap_or_default();
    assert_eq!(errors.trim(), "long.yaml:5:9: checks[0].api.steps: `steps` has 21 steps, more than the allowed 20");
    let twenty: String = steps.lines().take(20).map(|line| format!("{line}\n")).collect();
    assert!(load_str("ok.yaml", &format!("checks:\n  - name: long\n    api:\n      steps:\n{twenty}")).is_ok());
}
