//! A secret through the whole network: a real scheduler and prober, a target that sends the secret back
//! percent-encoded in a redirect, JSON-escaped in a body and base64 in a header. No encoding of it is in the
//! results API, the store's files, the spool, or either process's log.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use crate::util::processes::{Kill, free_port, plain_prober, plain_scheduler, token, wait_for};

/// Every character an encoding changes: space, quote, backslash, ampersand, plus, slash, equals, non-ASCII.
const SECRET: &str = "s3cr3t \"quo\\te\" & a+b/c=d é<x>";

fn percent(text: &str, upper: bool) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(byte).to_string(),
            _ if upper => format!("%{byte:02X}"),
            _ => format!("%{byte:02x}"),
        })
        .collect()
}

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// The forms the secret can take, each long enough to be unmistakable.
fn encodings() -> Vec<(&'static str, String)> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let json = serde_json::to_string(SECRET).unwrap();
    let html = SECRET.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let b64 = base64(SECRET.as_bytes(), STD);
    let b64_url = base64(SECRET.as_bytes(), URL);
    vec![
        ("plain", SECRET.to_owned()),
        ("percent", percent(SECRET, true)),
        ("percent, lower hex", percent(SECRET, false)),
        ("form", percent(SECRET, true).replace("%20", "+")),
        ("JSON", json[1..json.len() - 1].to_owned()),
        ("HTML", html),
        ("base64", b64[..b64.len() - 2].to_owned()),
        ("base64url", b64_url[..b64_url.len() - 2].to_owned()),
    ]
}

/// The target: `/start` redirects to `/landing?key=SECRET` (percent-encoded); `/landing` answers the secret
/// JSON-escaped in its body and base64 in a header.
fn target(listener: TcpListener) {
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10_000) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let read = stream.read(&mut buffer).unwrap_or(0);
            let request = String::from_utf8_lossy(&buffer[..read]).into_owned();
            let answer = if request.starts_with("GET /start") {
                let location = format!("/landing?key={}", percent(SECRET, true));
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            } else {
                let body = serde_json::json!({ "echo": SECRET }).to_string();
                let header =
                    base64(SECRET.as_bytes(), b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
                format!(
                    "HTTP/1.1 200 OK\r\nX-Echo: {header}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
}

/// Every file below `dir`, as bytes, with its path.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path.display().to_string(), bytes));
            }
        }
    }
    out
}

#[test]
fn no_encoding_of_a_secret_reaches_results_the_store_the_spool_or_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/start", listener.local_addr().unwrap().port());
    target(listener);
    let checks = dir.path().join("checks.yaml");
    std::fs::write(
        &checks,
        format!(
            "regions: {{r1: {{}}}}\ndefaults: {{interval: 1s, timeout: 900ms}}\nchecks:\n  - name: leaky\n    http:\n      \
             url: \"{url}\"\n      headers: {{X-Token: \"${{env:LEAKY_SECRET}}\"}}\n      \
             expect: {{headers: {{X-Echo: \"^nothing$\"}}, body_regex: \"^nothing$\"}}\n"
        ),
    )
    .unwrap();
    let admin = token(&data, &["--admin"]);
    let port = free_port();
    let mut scheduler = plain_scheduler(dir.path(), &checks, &data, port);
    let _scheduler = Kill(scheduler.env("LEAKY_SECRET", SECRET).env("RUST_LOG", "debug").spawn().unwrap());
    let mut prober = plain_prober(dir.path(), &data, port, "r1");
    let _prober = Kill(prober.env("LEAKY_SECRET", SECRET).env("RUST_LOG", "debug").spawn().unwrap());

    let results = || {
        reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/v1/results?check=leaky&limit=100"))
            .bearer_auth(&admin)
            .send()
            .and_then(|response| response.text())
            .unwrap_or_default()
    };
    wait_for("three results of the leaky check", Duration::from_secs(40), dir.path(), || {
        serde_json::from_str::<serde_json::Value>(&results())
            .is_ok_and(|all| all.as_array().is_some_and(|a| a.len() >= 3))
    });
    let api = results();
    // The run did see what it saw: the redirect and the failed assertions are there, redacted.
    assert!(api.contains("final_url") || api.contains("landing"), "{api}");
    assert!(api.contains("\"down\""), "{api}");

    let mut places: Vec<(String, Vec<u8>)> = vec![("the results API".into(), api.into_bytes())];
    places.extend(files(dir.path()));
    let mut leaks = Vec::new();
    for (place, bytes) in &places {
        let text = String::from_utf8_lossy(bytes);
        for (encoding, form) in encodings() {
            if text.contains(&form) && !place.ends_with("checks.yaml") {
                leaks.push(format!("{encoding} in {place}"));
            }
        }
    }
    assert!(leaks.is_empty(), "the secret leaked:\n{}", leaks.join("\n"));
}
