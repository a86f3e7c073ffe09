//! The harness: a real scheduler in-process on 127.0.0.1:0 with TLS from its own CA, tokens, and a client
//! that trusts only that CA.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use probenet_checks::wire::{Assignments, Heartbeat, PROTOCOL_VERSION, Register, Registered, RunResult};
use probenet_checks::{Outcome, State};
use probenet_scheduler::server::Limits;
use probenet_scheduler::tokens::{self, Scope};
use probenet_scheduler::{Options, Running, TlsMode};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Two regions, three checks (one only in eu).
pub const CONFIG: &str = "\
regions:
  eu: {}
  us: {}
defaults:
  interval: 30s
  timeout: 5s
  regions: [eu, us]
checks:
  - name: home
    http: {url: 'http://127.0.0.1:9/'}
  - name: api
    interval: 10s
    http: {url: 'http://127.0.0.1:9/api'}
  - name: eu-only
    regions: [eu]
    tcp: {target: '127.0.0.1:9'}
";

/// A running scheduler and what a test needs to talk to it.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub running: Option<Running>,
    pub client: reqwest::Client,
    pub base: String,
    pub admin: String,
    pub eu: String,
    pub us: String,
    /// Plain HTTP with these limits, or TLS with the defaults.
    pub plain: Option<Limits>,
}

pub fn options(dir: &std::path::Path, config: PathBuf) -> Options {
    options_with(dir, config, None)
}

fn options_with(dir: &std::path::Path, config: PathBuf, plain: Option<Limits>) -> Options {
    let options = Options {
        config: vec![config],
        listen: "127.0.0.1:0".parse().unwrap(),
        data: dir.join("data"),
        tls: TlsMode::Auto,
        sans: Vec::new(),
        dashboard_url: None,
        metrics_listen: None,
        limits: probenet_scheduler::server::Limits::for_this_process(),
        cluster: None,
        store_dir: None,
        artifacts_in_database: false,
        per_check_metrics: false,
    };
    match plain {
        Some(limits) => Options { tls: TlsMode::PlainHttp, limits, ..options },
        None => options,
    }
}

/// A client trusting only `ca_pem`.
pub fn client(ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(90)).build().unwrap()
}

/// A client for `running` and its base URL (the certificate names localhost, so the client can use either).
fn connect(running: &Running) -> (reqwest::Client, String) {
    match running.ca_pem() {
        Some(ca) => (client(ca), format!("https://localhost:{}", running.addr().port())),
        None => (
            reqwest::Client::builder().timeout(Duration::from_secs(90)).build().unwrap(),
            format!("http://127.0.0.1:{}", running.addr().port()),
        ),
    }
}

impl Net {
    /// Starts a scheduler on `config` (YAML) with a token for eu, one for us, and an admin token.
    pub async fn start(config: &str) -> Self {
        Self::start_with(config, None, false).await
    }

    /// Starts a scheduler whose `/metrics` has the per-check series too.
    pub async fn start_per_check_metrics(config: &str) -> Self {
        Self::start_with(config, None, true).await
    }

    /// Starts a scheduler serving plain HTTP on loopback with these server limits.
    pub async fn start_plain(config: &str, limits: Limits) -> Self {
        Self::start_with(config, Some(limits), false).await
    }

    async fn start_with(config: &str, plain: Option<Limits>, per_check_metrics: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checks.yaml");
        std::fs::write(&path, config).unwrap();
        let data = dir.path().join("data");
        let eu = tokens::create(&data, &Scope::Region("eu".into())).unwrap();
        let us = tokens::create(&data, &Scope::Region("us".into())).unwrap();
        let admin = tokens::create(&data, &Scope::Admin).unwrap();
        let options = Options { per_check_metrics, ..options_with(dir.path(), path.clone(), plain) };
        let running = probenet_scheduler::start(options).await.unwrap();
        let (client, base) = connect(&running);
        Self { dir, config: path, running: Some(running), client, base, admin, eu, us, plain }
    }

    pub fn token(&self, region: &str) -> &str {
        match region {
            "eu" => &self.eu,
            "us" => &self.us,
            _ => panic!("no token for {region}"),
        }
    }

    /// Starts a long-poll of `name`'s assignments (waiting on the current generation), then hangs up after
    /// `after`, as a crashed prober's connection closes.
    pub async fn poll_then_hang_up(&self, name: &str, region: &str, after: Duration) {
        let generation = self.assignments(name, region, 0, 0).await.generation;
        let url = format!("{}/v1/assignments?prober={name}&generation={generation}&wait_seconds=30", self.base);
        let request = self.client.get(url).bearer_auth(self.token(region)).send();
        let held = tokio::spawn(request);
        tokio::time::sleep(after).await;
        assert!(!held.is_finished(), "the long-poll is held");
        held.abort();
    }

    /// A request with an optional bearer token; the status and the JSON body (Null when there is none).
    pub async fn call(
        &self,
        method: &str,
        token: Option<&str>,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "GET" => self.client.get(url),
            "POST" => self.client.post(url),
            "DELETE" => self.client.delete(url),
            other => panic!("method {other}"),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    /// The scheduler's `/metrics` text, read with the admin token.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.base);
        let response = self.client.get(url).bearer_auth(&self.admin).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// Another token for `region`.
    pub fn new_token(&self, region: &str) -> String {
        tokens::create(&self.dir.path().join("data"), &Scope::Region(region.into())).unwrap()
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", Some(&self.admin), path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    pub async fn register(&self, name: &str, region: &str) -> Registered {
        let body = serde_json::to_value(Register {
            name: name.into(),
            region: region.into(),
            version: "0.1.0".into(),
            protocol: PROTOCOL_VERSION,
            kinds: Vec::new(),
        })
        .unwrap();
        let (status, body) = self.call("POST", Some(self.token(region)), "/v1/register", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn heartbeat(&self, name: &str, region: &str) -> StatusCode {
        let body = serde_json::to_value(Heartbeat { name: name.into(), region: region.into(), report: None }).unwrap();
        self.call("POST", Some(self.token(region)), "/v1/heartbeat", Some(body)).await.0
    }

    pub async fn deregister(&self, name: &str, region: &str) -> StatusCode {
        let body = serde_json::to_value(Heartbeat { name: name.into(), region: region.into(), report: None }).unwrap();
        self.call("POST", Some(self.token(region)), "/v1/deregister", Some(body)).await.0
    }

    pub async fn assignments(&self, name: &str, region: &str, generation: u64, wait_seconds: u64) -> Assignments {
        let path = format!("/v1/assignments?prober={name}&generation={generation}&wait_seconds={wait_seconds}");
        let (status, body) = self.call("GET", Some(self.token(region)), &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// The (check, region) pairs a prober holds, sorted.
    pub async fn pairs_of(&self, name: &str, region: &str) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .assignments(name, region, 0, 0)
            .await
            .assigned
            .into_iter()
            .map(|assignment| (assignment.check, assignment.region))
            .collect();
        pairs.sort();
        pairs
    }

    pub async fn post_results(&self, region: &str, results: &[RunResult]) -> (StatusCode, Value) {
        let batch = json!({ "prober": "p1", "results": results });
        self.call("POST", Some(self.token(region)), "/v1/results", Some(batch)).await
    }

    pub fn write_config(&self, text: &str) {
        // A rename, so the scheduler never reads half a file.
        let temporary = self.dir.path().join(".checks.yaml.tmp");
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, &self.config).unwrap();
    }

    /// Stops the scheduler and starts it again on the same data (a new port).
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        let running =
            probenet_scheduler::start(options_with(self.dir.path(), self.config.clone(), self.plain)).await.unwrap();
        (self.client, self.base) = connect(&running);
        self.running = Some(running);
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// Polls `probe` every 100 ms until it returns Some, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(start.elapsed() < limit, "condition not met within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The latest planned time at or before `at_ms` of `check` in `region` running every `interval_s` seconds.
pub fn on_grid(check: &str, region: &str, interval_s: u64, at_ms: i64) -> i64 {
    let schedule = probenet_checks::Schedule::Every(Duration::from_secs(interval_s));
    let offset = schedule.offset_ms(check, region);
    let interval_ms = i64::try_from(interval_s * 1000).unwrap();
    schedule.planned_at_or_after(offset, at_ms - interval_ms + 1).unwrap()
}

/// This process's resident memory, in bytes (the scheduler runs in it).
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// The current time, unix ms.
pub fn now_ms() -> i64 {
    probenet_scheduler::time::now_ms()
}

/// A result of a run planned at `planned_at_ms`.
pub fn result(check: &str, region: &str, planned_at_ms: i64, state: State) -> RunResult {
    let mut outcome = Outcome::failed(probenet_checks::Reason::Connect, "connection refused".to_owned());
    outcome.state = state;
    if state != State::Down {
        outcome.reason = None;
        outcome.error = None;
    }
    RunResult {
        check: check.into(),
        region: region.into(),
        planned_at_ms,
        started_at_ms: planned_at_ms.saturating_add(2),
        prober: "p1".into(),
        outcome,
    }
}
