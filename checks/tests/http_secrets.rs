//! A secret sent by an HTTP check and handed back by the server in other encodings (percent-encoded in a
//! redirect, form-encoded, JSON-escaped in a body, base64 in a header) never shows in the check's result.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use probenet_checks::{Outcome, load_str, run_once};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A secret with a space, `"`, `\`, `&`, `/`, `+`, `=` and non-ASCII: each encoding writes it differently.
const SECRET: &str = "s3 \"cr\\et&/+=é-9f2c";

/// Every byte but letters and digits as `%XX`, as JavaScript's `encodeURIComponent` does (roughly).
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// `application/x-www-form-urlencoded`: `+` for a space, lower-case hex for the rest.
fn form(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b if b.is_ascii_alphanumeric() => char::from(b).to_string(),
            b => format!("%{b:02x}"),
        })
        .collect()
}

/// JSON string content with every non-ASCII character as `\\uXXXX`, as many encoders write it.
fn ascii_json(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => format!("\\{c}"),
            c if c.is_ascii() => c.to_string(),
            c => format!("\\u{:04x}", u32::from(c)),
        })
        .collect()
}

/// Every form the server hands the secret back in, and the plain one.
fn encodings() -> Vec<String> {
    let json = serde_json::to_string(SECRET).unwrap();
    vec![
        SECRET.to_owned(),
        percent(SECRET),
        form(SECRET),
        json.trim_matches('"').to_owned(),
        ascii_json(SECRET),
        STANDARD.encode(format!("user:{SECRET}"))[8..24].to_owned(),
    ]
}

/// The server: reads the request with its body (the secret), then
/// - `POST /start`: 302 to `/landing` with the body percent-encoded and form-encoded in the query,
/// - `GET /landing?..`: a JSON body echoing the secret (escaped) and a header with `user:SECRET` in base64,
/// - `POST /loop`: 302 to `/loop2?key=..` with the body percent-encoded, which redirects to `/loop?key=..` and
///   back: a redirect loop whose error lists the URLs.
async fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line);
    }
    let length = head
        .iter()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().to_owned()))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).await.is_err() {
        return;
    }
    let sent = String::from_utf8_lossy(&body).into_owned();
    let target = head.first().and_then(|line| line.split(' ').nth(1)).unwrap_or("/").to_owned();
    let (status, headers, text) = if target == "/start" {
        let location = format!("/landing?key={}&form={}", percent(&sent), form(&sent));
        ("302 Found", format!("Location: {location}\r\n"), String::new())
    } else if target.starts_with("/landing") {
        let json = format!("{{\"echo\":{},\"ascii\":\"{}\"}}", serde_json::json!(SECRET), ascii_json(SECRET));
        ("200 OK", format!("X-Echo: Basic {}\r\n", STANDARD.encode(format!("user:{SECRET}"))), json)
    } else if target == "/loop" {
        ("302 Found", format!("Location: /loop2?key={}\r\n", percent(&sent)), String::new())
    } else if let Some(query) = target.strip_prefix("/loop?") {
        ("302 Found", format!("Location: /loop2?{query}\r\n"), String::new())
    } else if let Some(query) = target.strip_prefix("/loop2?") {
        ("302 Found", format!("Location: /loop?{query}\r\n"), String::new())
    } else {
        ("404 Not Found", String::new(), String::new())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let mut stream = reader.into_inner();
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn server() -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    addr
}

/// Runs one HTTP check whose body is the secret, read from a file, and returns its outcome as JSON text.
async fn run(http: &str) -> (Outcome, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let yaml = format!(
        "checks:\n  - name: echo\n    timeout: 5s\n    http: {}\n",
        http.replace("SECRET_FILE", &file.display().to_string())
    );
    let config = load_str("test.yaml", &yaml).unwrap_or_else(|errors| panic!("invalid test config: {errors:?}"));
    let outcome = run_once(&config.checks[0], "local").await;
    let text = serde_json::to_string_pretty(&outcome).unwrap();
    println!("{text}");
    (outcome, text)
}

fn assert_no_secret(text: &str) {
    let leaks: Vec<String> = encodings().into_iter().filter(|form| text.contains(form.as_str())).collect();
    assert!(leaks.is_empty(), "the result shows the secret as {leaks:?}:\n{text}");
}

#[tokio::test]
async fn a_secret_echoed_in_a_redirect_a_json_body_and_a_header_is_redacted_in_every_encoding() {
    let addr = server().await;
    let (outcome, text) = run(&format!(
        r#"{{url: "http://{addr}/start", method: POST, body: "${{file:SECRET_FILE}}",
      expect: {{body_regex: "echo.*", headers: {{x-echo: "^nothing$"}}, json: [{{path: "$.echo", equals: "x"}}]}}}}"#
    ))
    .await;
    assert_eq!(outcome.details["status_code"], 200, "{text}");
    assert_eq!(outcome.details["redirects"], 1, "{text}");
    assert_eq!(outcome.details["final_url"], format!("http://{addr}/landing?key=[redacted]&form=[redacted]"));
    assert!(outcome.log.iter().any(|line| line.contains("/landing?key=[redacted]&form=[redacted]")), "{text}");
    let observed = |name: &str| outcome.assertions.iter().find(|a| a.name.starts_with(name)).unwrap().observed.clone();
    assert_eq!(observed("json"), "\"[redacted]\"", "serde_json escapes the quote and the backslash");
    assert!(observed("body_regex").contains("echo\":\"[redacted]"), "{text}");
    // Only the characters that mix the secret's edge bits with `user:` or the padding are left.
    assert_eq!(observed("header"), "\"Basic dXNlcjp[redacted]w==\"");
    assert_no_secret(&text);
}

#[tokio::test]
async fn a_secret_in_redirect_urls_is_redacted_from_the_failure_and_the_log() {
    let addr = server().await;
    let (outcome, text) =
        run(&format!(r#"{{url: "http://{addr}/loop", method: POST, body: "${{file:SECRET_FILE}}"}}"#)).await;
    let error = outcome.error.clone().unwrap_or_default();
    assert!(error.starts_with("redirect loop: "), "{text}");
    assert!(error.contains("/loop2?key=[redacted]"), "{text}");
    assert_no_secret(&text);
}
