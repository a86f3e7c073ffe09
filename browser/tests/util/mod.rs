//! Helpers for the browser tests: a small web site served on 127.0.0.1, loading checks from YAML, running
//! them through the installed runner or a runner of the test's own, and skipping when Chromium is absent.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use probenet_browser::{ChromiumRunner, Options};
use probenet_checks::browser::BrowserCheck;
use probenet_checks::run::{BrowserRunner as _, RunContext};
use probenet_checks::{Check, CheckKind, Outcome};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Whether the browser tests can run here. Without Chromium they are skipped with a note, unless
/// `PROBENET_REQUIRE_CHROMIUM` is set, which makes a missing Chromium a failure.
pub fn chromium_present() -> bool {
    match probenet_browser::find_binary(|name| std::env::var_os(name)) {
        Ok(_) => true,
        Err(why) if std::env::var_os("PROBENET_REQUIRE_CHROMIUM").is_some() => {
            panic!("PROBENET_REQUIRE_CHROMIUM is set but {why}")
        }
        Err(why) => {
            println!("note: skipping a browser test: {why}");
            false
        }
    }
}

/// The process's installed runner (once per test binary), as `probenet` installs it, with room for every test
/// of a binary at once: a journey waiting for a slot would spend its timeout there (the limit has its own test).
pub fn installed() -> &'static ChromiumRunner {
    static RUNNER: OnceLock<ChromiumRunner> = OnceLock::new();
    RUNNER.get_or_init(|| {
        let runner = ChromiumRunner::new(Options { chromium: None, concurrency: 8 });
        probenet_checks::run::install_browser_runner(Arc::new(runner.clone()));
        runner
    })
}

/// Starts the installed runner's browser ahead of a journey, so that a journey with a short timeout does not
/// spend it starting Chromium on a busy machine.
pub async fn warm_up() {
    if let Err(why) = installed().start().await {
        panic!("Chromium does not start: {why}");
    }
}

/// Loads one check from YAML.
pub fn check(yaml: &str) -> Check {
    match probenet_checks::load_str("test.yaml", yaml) {
        Ok(config) => config.checks.into_iter().next().expect("one check"),
        Err(errors) => panic!("invalid test config: {errors:?}\n{yaml}"),
    }
}

/// The browser part of a check.
pub fn browser(check: &Check) -> &BrowserCheck {
    match &check.kind {
        CheckKind::Browser(browser) => browser,
        _ => panic!("not a browser check"),
    }
}

/// Runs a check once through the installed runner, as the runtime runs every check.
pub async fn run(check: &Check) -> Outcome {
    installed();
    probenet_checks::run_once(check, "local").await
}

/// Runs a check once with a given runner, within its timeout; returns the outcome and the run's context.
pub async fn run_with(runner: &ChromiumRunner, check: &Check) -> (Outcome, RunContext) {
    let cx = RunContext::new("local", check.timeout);
    let outcome = match tokio::time::timeout(check.timeout, runner.run(browser(check), &cx)).await {
        Ok(outcome) => outcome,
        Err(_) => panic!("the runner overran the check's timeout of {:?}", check.timeout),
    };
    (outcome, cx)
}

/// A check named `name` with this timeout and these steps (YAML list items, indented by 8).
pub fn journey(name: &str, timeout: &str, steps: &str, expect: &str) -> Check {
    let expect = if expect.is_empty() { String::new() } else { format!("      expect: {expect}\n") };
    check(&format!(
        "checks:\n  - name: {name}\n    timeout: {timeout}\n    interval: 1m\n    browser:\n      steps:\n{steps}{expect}"
    ))
}

/// The web site the journeys visit.
#[derive(Debug, Clone)]
pub struct Site {
    port: u16,
    /// Connections to `/never` that the browser has closed.
    pub never_closed: Arc<AtomicUsize>,
    /// Requests to `/never` received.
    pub never_opened: Arc<AtomicUsize>,
}

impl Site {
    /// Serves the site on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let site = Self { port, never_closed: Arc::default(), never_opened: Arc::default() };
        let served = site.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let site = served.clone();
                tokio::spawn(async move { site.serve(stream).await });
            }
        });
        site
    }

    /// The URL of `path` on the site.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// How many `/never` connections the browser closed, waiting up to `wait` for there to be `at_least`.
    pub async fn never_closed_within(&self, at_least: usize, wait: Duration) -> usize {
        let end = tokio::time::Instant::now() + wait;
        while self.never_closed.load(Ordering::SeqCst) < at_least && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.never_closed.load(Ordering::SeqCst)
    }

    async fn serve(&self, mut stream: TcpStream) {
        let Some(request) = Request::read(&mut stream).await else {
            return;
        };
        if request.path == "/never" {
            // Never answer; count when the browser gives up on the connection.
            self.never_opened.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 256];
            let _ = tokio::time::timeout(Duration::from_secs(60), async {
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            })
            .await;
            self.never_closed.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let response = route(&request).await;
        let _ = stream.write_all(&response.bytes()).await;
        let _ = stream.shutdown().await;
    }
}

/// One request, as far as the site needs it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub cookie: String,
    pub body: String,
}

impl Request {
    async fn read(stream: &mut TcpStream) -> Option<Self> {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = data.windows(4).position(|window| window == b"\r\n\r\n") {
                break at;
            }
            if data.len() > 64 * 1024 {
                return None;
            }
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            data.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&data[..head_end]).to_string();
        let mut lines = head.lines();
        let mut first = lines.next()?.split_whitespace();
        let method = first.next()?.to_owned();
        let target = first.next()?.to_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut length = 0usize;
        let mut cookie = String::new();
        for line in lines {
            let (name, value) = line.split_once(':')?;
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "cookie" => cookie = value.trim().to_owned(),
                _ => {}
            }
        }
        let mut body = data[head_end + 4..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        Some(Self {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            cookie,
            body: String::from_utf8_lossy(&body).to_string(),
        })
    }

    fn param(&self, text: &str, name: &str) -> Option<String> {
        text.split('&').find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn html(status: u16, body: String) -> Self {
        Self { status, headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())], body }
    }

    fn header(mut self, name: &str, value: String) -> Self {
        self.headers.push((name.to_owned(), value));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out =
            format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", self.status, self.body.len());
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        out.into_bytes()
    }
}

fn page(title: &str, body: &str) -> String {
    format!("<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head><body>{body}</body></html>")
}

async fn route(request: &Request) -> Response {
    let path = request.path.as_str();
    match (request.method.as_str(), path) {
        ("GET", "/login") => Response::html(
            200,
            page(
                "Login",
                r#"<h1>Sign in</h1>
<form method="post" action="/session">
  <input id="user" name="user"> <input id="password" name="password" type="password">
  <button id="login" type="submit">Sign in</button>
</form>"#,
            ),
        ),
        ("POST", "/session") => {
            let user = request.param(&request.body, "user").unwrap_or_default();
            let password = request.param(&request.body, "password").unwrap_or_default();
            if user == "alice" && password == "s3cret-pw" {
                Response::html(303, String::new())
                    .header("Location", "/account".to_owned())
                    .header("Set-Cookie", "session=alice; Path=/; HttpOnly".to_owned())
            } else {
                Response::html(200, page("Login failed", "<h1>Wrong password</h1><a href=/login>Try again</a>"))
            }
        }
        ("GET", "/account") if request.cookie.contains("session=alice") => {
            Response::html(200, page("Account", "<h1 id=hello>Welcome, alice</h1>"))
        }
        ("GET", "/account") => Response::html(303, String::new()).header("Location", "/login".to_owned()),
        ("GET", "/broken") => Response::html(
            200,
            page("Broken", "<h1>Broken page</h1><script>const missing = null; missing.boom();</script>"),
        ),
        ("GET", "/hang") => Response::html(200, page("Hanging", "<h1>Loading forever</h1><img src=\"/never\">")),
        ("GET", "/lcp") => {
            let delay: u64 = request.param(&request.query, "delay").and_then(|d| d.parse().ok()).unwrap_or(0);
            let body = format!(
                r#"<p>.</p><script>
setTimeout(() => {{
  const hero = document.createElement('div');
  hero.id = 'hero';
  hero.style.cssText = 'font-size: 64px; width: 1000px;';
  hero.textContent = 'The big late hero text that is the largest thing on this page by far.';
  document.body.appendChild(hero);
}}, {delay});
</script>"#
            );
            Response::html(200, page("Slow hero", &body))
        }
        ("GET", "/show") => {
            let cookies = if request.cookie.is_empty() { "none".to_owned() } else { request.cookie.clone() };
            Response::html(200, page("Show", &format!("<p id=cookies>cookies: {cookies}</p>")))
        }
        ("GET", _) if path.starts_with("/cookie/") => {
            let name = path.trim_start_matches("/cookie/");
            Response::html(200, page("Cookie", &format!("<p>set {name}</p>")))
                .header("Set-Cookie", format!("seen_{name}=1; Path=/"))
        }
        ("GET", "/steps") => Response::html(200, page("Steps", STEPS_PAGE)),
        ("GET", "/secret-form") => {
            // No caret and no focus ring, so that only the fields' text tells screenshots apart.
            let pw = request.param(&request.query, "pw").unwrap_or_default();
            let body = format!(
                r#"<style>input {{ caret-color: transparent; outline: none; font: 32px monospace; width: 600px; }}</style>
<p><input id="token"></p><p><input id="pw" type="password" value="{pw}"></p>"#
            );
            Response::html(200, page("Secret form", &body))
        }
        ("GET", "/gone") => Response::html(404, page("Not found", "<h1>Not here</h1>")),
        _ => Response::html(404, page("Not found", "")),
    }
}

/// A page for every kind of step: a search box that reacts to Enter, a select, a button that changes the
/// title, a list.
const STEPS_PAGE: &str = r#"<input id="q"> <p id="searched"></p>
<select id="size"><option value="s">Small</option><option value="m">Medium</option><option value="l">Large</option></select>
<p id="chosen"></p>
<button id="go" onclick="document.title = 'Clicked'; document.getElementById('result').hidden = false;">Go</button>
<div id="result" hidden>Done: <span class="item">a</span><span class="item">b</span><span class="item">c</span></div>
<script>
document.getElementById('q').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') document.getElementById('searched').textContent = 'searched: ' + e.target.value;
});
document.getElementById('size').addEventListener('change', (e) => {
  document.getElementById('chosen').textContent = 'size ' + e.target.value;
});
</script>"#;

/// A TCP port on 127.0.0.1 with nothing listening.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port
}

/// Whether a process exists (a zombie counts: it is not reaped yet).
pub fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Every process below `root` (children, their children...).
pub fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|pid| {
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                    let (_, rest) = stat.rsplit_once(')')?;
                    Some((pid, rest.split_whitespace().nth(1)?.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![root];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        at += 1;
    }
    found.remove(0);
    found
}

/// The open listening TCP sockets (state `0A`) of a network namespace, by inode, from `/proc/PID/net/tcp` and
/// `tcp6` of a process in it: inode and local address.
pub fn listening_sockets(pid: u32) -> Vec<(u64, String)> {
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 9
                && fields[3] == "0A"
                && let Ok(inode) = fields[9].parse()
            {
                found.push((inode, fields[1].to_owned()));
            }
        }
    }
    found
}

/// The inodes of the sockets a process has open, from `/proc/PID/fd`.
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.ok()?.path()).ok()?;
            target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// A process's command line, arguments separated by spaces.
pub fn command_line(pid: u32) -> String {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&bytes).split('\0').filter(|arg| !arg.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The PNG file signature.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
