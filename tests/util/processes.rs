//! Helpers of the tests that run whole networks as processes: the binary as a plain command, tokens, a child
//! killed on drop, free ports, the namespace check, and a webhook receiver whose notifications are verified.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process killed (and reaped) when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `probenet` binary as a plain command, without the caller's `RUST_LOG`.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_probenet"));
    command.env_remove("RUST_LOG");
    command
}

/// `probenet token create --data DATA SCOPE...`, returning the token (the last line of its output).
pub fn token(data: &Path, scope: &[&str]) -> String {
    let output = command().args(["token", "create", "--data"]).arg(data).args(scope).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().trim().to_owned()
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The first of `count` consecutive loopback ports free for TCP and UDP (for `up --demo-port BASE`).
pub fn free_ports(count: u16) -> u16 {
    for _ in 0..100 {
        let base = free_port();
        let Some(end) = base.checked_add(count) else { continue };
        let free = (base..end).all(|port| {
            TcpListener::bind(("127.0.0.1", port)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no {count} consecutive free ports on 127.0.0.1");
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(0))
}

/// Whether this process may create network namespaces (root, `ip netns`, `/dev/net/tun`); says so when not.
pub fn can_create_namespaces() -> bool {
    let ok = Command::new("ip").args(["netns", "list"]).output().is_ok_and(|output| output.status.success())
        && Path::new("/dev/net/tun").exists();
    if !ok {
        eprintln!("skipped: this test needs root, `ip netns` and /dev/net/tun");
    }
    ok
}

/// Polls `done` every 200 ms until it holds, failing after `limit` with what it waited for and where logs are.
pub fn wait_for(what: &str, limit: Duration, logs: &Path, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}; logs in {}", logs.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Requests a receiver got: headers (lowercase names) and body.
pub type Received = Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>;

/// A webhook receiver on loopback: records (headers, body) of every request, answers 200. Bounded: 1,000.
pub fn receiver() -> (u16, Arc<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1_000) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut headers, mut line) = (Vec::new(), String::new());
            let _ = reader.read_line(&mut line);
            for _ in 0..100 {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.trim().split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
            let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok());
            let mut body = vec![0; length.unwrap_or(0)];
            let _ = reader.read_exact(&mut body);
            seen.lock().unwrap().push((headers, body));
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

/// Every notification received so far, each signature verified with `secret` and the secret absent.
pub fn notifications(got: &Received, secret: &str) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .map(|(headers, body)| {
            let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            let timestamp: i64 = header("x-probenet-timestamp").and_then(|t| t.parse().ok()).unwrap_or_default();
            let expected = probenet_alerting::notify::sign(secret.as_bytes(), timestamp, body);
            assert_eq!(header("x-probenet-signature"), Some(expected), "the signature verifies");
            let text = String::from_utf8_lossy(body);
            assert!(!text.contains(secret), "the secret never travels: {text}");
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

/// Answers `200 ok` to every request on `listener` from a thread; bounded to `limit` connections.
pub fn serve_ok(listener: TcpListener, limit: usize) {
    std::thread::spawn(move || {
        for stream in listener.incoming().take(limit) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
}

/// `probenet scheduler --plain-http -c CHECKS --listen 127.0.0.1:PORT --data DATA`, logging to
/// `DIR/scheduler.log`: add what a test needs, then spawn.
pub fn plain_scheduler(dir: &Path, checks: &Path, data: &Path, port: u16) -> Command {
    let mut command = command();
    command
        .args(["scheduler", "--plain-http", "-c"])
        .arg(checks)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("scheduler.log")).unwrap()));
    command
}

/// A prober `p-REGION` of the plain-HTTP scheduler on `port`, with a token of REGION made in `data` (written to
/// `DIR/REGION.token`), its spool in `DIR/spool-REGION` and its log in `DIR/prober-REGION.log`.
pub fn plain_prober(dir: &Path, data: &Path, port: u16, region: &str) -> Command {
    let token_file = dir.join(format!("{region}.token"));
    std::fs::write(&token_file, token(data, &["--region", region])).unwrap();
    let log = std::fs::File::create(dir.join(format!("prober-{region}.log"))).unwrap();
    let mut command = command();
    command
        .args(["prober", "--scheduler", &format!("http://127.0.0.1:{port}"), "--region", region])
        .arg("--token-file")
        .arg(&token_file)
        .args(["--name", &format!("p-{region}"), "--spool"])
        .arg(dir.join(format!("spool-{region}")))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    command
}

/// `probenet up --demo` as a new user starts it: in the empty directory `DIR/cwd`, the demo on `--demo-port
/// demo_port`, the scheduler on 127.0.0.1:`port`, its data in `DIR/data`, stopping by itself after `duration`;
/// its terminal (stdout and stderr) goes to `log`.
pub fn up_demo(dir: &Path, port: u16, demo_port: u16, duration: &str, log: &Path) -> Kill {
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let terminal = std::fs::File::create(log).unwrap();
    Kill(
        command()
            .current_dir(&cwd)
            .args(["up", "--demo", "--demo-port", &demo_port.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(dir.join("data"))
            .args(["--duration", duration])
            .stdout(Stdio::from(terminal.try_clone().unwrap()))
            .stderr(Stdio::from(terminal))
            .spawn()
            .unwrap(),
    )
}

/// Prints a log (a terminal of `probenet up`) when the test fails.
pub struct ShowOnFailure(pub std::path::PathBuf);

impl Drop for ShowOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {}\n{}", self.0.display(), std::fs::read_to_string(&self.0).unwrap_or_default());
        }
    }
}

/// `probenet up -c CONFIG` on 127.0.0.1:`port` with its data in `dir/data`, the dashboard token `token` in
/// `DASHBOARD_TOKEN`, stopping by itself after `duration`; its terminal (stderr) goes to `log`.
pub fn up_logged(config: &Path, dir: &Path, port: u16, token: &str, duration: &str, log: &Path) -> Kill {
    Kill(
        command()
            .env("DASHBOARD_TOKEN", token)
            .args(["up", "-c"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(dir.join("data"))
            .args(["--duration", duration])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .unwrap(),
    )
}
