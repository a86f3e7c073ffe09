//! Alerts end to end: a real scheduler and two real probers; the target goes down in both regions, one signed
//! webhook notification fires naming both regions; the scheduler restarts while it fires and does not page
//! again; the target comes back and one resolve follows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn probenet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_probenet"));
    command.env_remove("RUST_LOG");
    command
}

/// Requests a receiver got: headers (lowercase names) and body.
type Received = Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>;

/// A webhook receiver: records (headers, body) of every POST and answers 200. Bounded: 1,000 requests.
fn receiver() -> (u16, Arc<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1_000) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.trim().split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(name, _)| name == "content-length")
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            seen.lock().unwrap().push((headers, body));
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

/// Answers 200 on `port` until the process ends (bounded: 100,000 connections).
fn serve_target(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100_000) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
}

const SECRET: &str = "hook-secret-for-the-test";

fn notifications(got: &Received) -> Vec<serde_json::Value> {
    got.lock()
        .unwrap()
        .iter()
        .map(|(headers, body)| {
            let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            let timestamp: i64 = header("x-probenet-timestamp").and_then(|t| t.parse().ok()).unwrap_or_default();
            let expected = probenet_alerting::notify::sign(SECRET.as_bytes(), timestamp, body);
            assert_eq!(header("x-probenet-signature"), Some(expected), "the signature verifies");
            let text = String::from_utf8_lossy(body);
            assert!(!text.contains(SECRET), "the secret never travels: {text}");
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_target_down_in_every_region_fires_once_survives_a_restart_and_resolves_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let target_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (hook_port, got) = receiver();
    let checks = dir.path().join("checks.yaml");
    std::fs::write(
        &checks,
        format!(
            "regions: {{r1: {{}}, r2: {{}}}}\ndefaults: {{interval: 1s, timeout: 500ms}}\n\
             notifiers:\n  oncall: {{webhook: {{url: \"http://127.0.0.1:{hook_port}/hook\", secret: \"${{env:HOOK_SECRET}}\"}}}}\n\
             checks:\n  - name: site\n    http: {{url: \"http://127.0.0.1:{target_port}/\"}}\n\
             alerts:\n  - name: site-down\n    checks: [site]\n    failed_regions: 2\n    for: 2s\n    \
             resolve_after: 3s\n    severity: page\n    notify: [oncall]\n"
        ),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let scheduler = || {
        Kill(
            probenet()
                .env("HOOK_SECRET", SECRET)
                .args(["scheduler", "--plain-http", "-c"])
                .arg(&checks)
                .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
                .arg(&data)
                .args(["--dashboard-url", "http://probenet.test"])
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(dir.path().join("scheduler.log")).unwrap()))
                .spawn()
                .unwrap(),
        )
    };
    let mut running = scheduler();
    let mut probers = Vec::new();
    for region in ["r1", "r2"] {
        let output = probenet().args(["token", "create", "--data"]).arg(&data).args(["--region", region]).output();
        let output = output.unwrap();
        let token = String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().trim().to_owned();
        let token_file = dir.path().join(format!("{region}.token"));
        std::fs::write(&token_file, token).unwrap();
        probers.push(Kill(
            probenet()
                .args(["prober", "--scheduler", &format!("http://127.0.0.1:{port}"), "--region", region])
                .arg("--token-file")
                .arg(&token_file)
                .args(["--name", &format!("p-{region}"), "--spool"])
                .arg(dir.path().join(format!("spool-{region}")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
    }

    // Down everywhere (nothing listens): one firing notification naming both regions.
    wait_for("the firing notification", Duration::from_secs(40), || !got.lock().unwrap().is_empty());
    let fired = notifications(&got);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["status"], "firing");
    assert_eq!(fired[0]["alert"], "site-down");
    assert_eq!(fired[0]["check"], "site");
    assert_eq!(fired[0]["regions"], serde_json::json!(["r1", "r2"]));
    assert_eq!(fired[0]["reason"], "connect");
    assert!(fired[0]["dashboard_url"].as_str().unwrap_or_default().starts_with("http://probenet.test"));

    // A scheduler restart while it fires does not page again.
    drop(running);
    running = scheduler();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(notifications(&got).len(), 1, "no second firing after the restart");

    // The target comes back: one resolve, and nothing more.
    serve_target(target_port);
    wait_for("the resolve", Duration::from_secs(40), || got.lock().unwrap().len() >= 2);
    std::thread::sleep(Duration::from_secs(3));
    let all = notifications(&got);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["status"], "resolved");
    assert_eq!(all[1]["key"], all[0]["key"]);
    drop(probers);
    drop(running);
    let log = std::fs::read_to_string(dir.path().join("scheduler.log")).unwrap_or_default();
    assert!(!log.contains(SECRET), "the secret is not logged");
}
