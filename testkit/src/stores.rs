//! Prometheus, VictoriaMetrics and Alertmanager (Debian's packages) started by a test: own data dir, free port,
//! bounded readiness wait, killed on drop; and their query API.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound then released; the store binds it right after).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("bind: {error}"));
    listener.local_addr().unwrap_or_else(|error| panic!("local_addr: {error}")).port()
}

/// A running store process; killed (and its data dir removed) on drop.
#[derive(Debug)]
pub struct Store {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its data directory.
    pub data: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Store {
    /// Stops the process as an operator would (SIGTERM: it writes what it holds), waiting up to 30 s; the data
    /// directory stays when it was given.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(path: &str) -> &str {
    assert!(Path::new(path).exists(), "{path} is missing: install the Debian package (CI installs it)");
    path
}

async fn wait_ready(store: &mut Store, path: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = store.child.try_wait() {
            panic!("{} exited early: {status}", store.base);
        }
        if let Ok(response) = client.get(format!("{}{path}", store.base)).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{} not ready within 30 s", store.base);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prometheus with its remote-write receiver, scraping `scrape_target` (`host:port`) every second if given.
pub async fn prometheus(scrape_target: Option<&str>) -> Store {
    let bin = binary("/usr/bin/prometheus");
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("tempdir: {error}"));
    let mut config = String::from("global: {scrape_interval: 1s, evaluation_interval: 1m}\nscrape_configs:\n");
    if let Some(target) = scrape_target {
        config.push_str(&format!(
            "  - job_name: probenet\n    honor_labels: true\n    scrape_interval: 1s\n    \
             static_configs: [{{targets: [\"{target}\"]}}]\n"
        ));
    } else {
        config = String::from("global: {scrape_interval: 1m}\n");
    }
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap_or_else(|error| panic!("write config: {error}"));
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("starting prometheus: {error}"));
    let mut store = Store { child, base: format!("http://127.0.0.1:{port}"), data: dir.path().join("data"), _dir: dir };
    wait_ready(&mut store, "/-/ready").await;
    store
}

/// VictoriaMetrics (single node), queries answering up to the present (no latency offset).
pub async fn victoria_metrics() -> Store {
    victoria_metrics_on(None).await
}

/// VictoriaMetrics on a given data directory (such as one `vmrestore` filled), else on a new one.
pub async fn victoria_metrics_on(data: Option<&Path>) -> Store {
    victoria_metrics_at(data, free_port()).await
}

/// VictoriaMetrics on a given data directory and port: started again where it was, as after an outage.
pub async fn victoria_metrics_at(data: Option<&Path>, port: u16) -> Store {
    let bin = binary("/usr/bin/victoria-metrics");
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("tempdir: {error}"));
    let data = data.map_or_else(|| dir.path().join("data"), Path::to_owned);
    let child = Command::new(bin)
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-storageDataPath={}", data.display()))
        .arg("-search.latencyOffset=0s")
        .arg("-search.disableCache")
        .arg("-loggerLevel=ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("starting victoria-metrics: {error}"));
    let mut store = Store { child, base: format!("http://127.0.0.1:{port}"), data, _dir: dir };
    wait_ready(&mut store, "/health").await;
    store
}

/// vmalert evaluating the rules file `rules` every second against VictoriaMetrics at `vm` (its base URL), and
/// writing recorded series and `ALERTS` back into it. Notifications go nowhere (a closed port): the tests read
/// the alerts' state from `ALERTS`.
pub async fn vmalert(rules: &Path, vm: &str) -> Store {
    let bin = binary("/usr/bin/vmalert");
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("tempdir: {error}"));
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("-rule={}", rules.display()))
        .arg(format!("-datasource.url={vm}"))
        .arg(format!("-remoteWrite.url={vm}"))
        .arg("-remoteWrite.flushInterval=200ms")
        .arg("-evaluationInterval=1s")
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-notifier.url=http://127.0.0.1:{}", free_port()))
        .arg("-loggerLevel=ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("starting vmalert: {error}"));
    let data = dir.path().to_owned();
    let mut store = Store { child, base: format!("http://127.0.0.1:{port}"), data, _dir: dir };
    wait_ready(&mut store, "/health").await;
    store
}

/// The result vector of an instant query at `time` (unix seconds): each series' labels and value.
pub async fn query(base: &str, promql: &str, time: f64) -> Vec<(serde_json::Value, f64)> {
    let url = format!("{base}/api/v1/query");
    let time = format!("{time:.3}");
    let url = reqwest::Url::parse_with_params(&url, [("query", promql), ("time", time.as_str()), ("nocache", "1")])
        .unwrap_or_else(|error| panic!("query url: {error}"));
    let response =
        reqwest::Client::new().get(url).send().await.unwrap_or_else(|error| panic!("query {promql}: {error}"));
    let body: serde_json::Value = response.json().await.unwrap_or_else(|error| panic!("query {promql}: {error}"));
    assert_eq!(body["status"], "success", "query {promql}: {body}");
    let result = body["data"]["result"].as_array().cloned().unwrap_or_default();
    result
        .into_iter()
        .map(|series| {
            let value = series["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
            (series["metric"].clone(), value)
        })
        .collect()
}

/// Polls an instant query until it returns at least one series (at most `seconds`), then returns the result.
pub async fn query_until(base: &str, promql: &str, time: Option<f64>, seconds: u64) -> Vec<(serde_json::Value, f64)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let at = time.unwrap_or_else(now_seconds);
        let result = query(base, promql, at).await;
        if !result.is_empty() || Instant::now() >= deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Unix seconds now.
pub fn now_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Alertmanager (Debian's `prometheus-alertmanager`) with clustering disabled and a receiver that sends
/// nothing: its v2 API shows the alerts it is given. `base` is its URL.
pub async fn alertmanager() -> Store {
    alertmanager_with(
        "route:\n  receiver: quiet\n  group_wait: 100ms\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: quiet\n",
    )
    .await
}

/// Alertmanager with clustering disabled and this configuration (YAML).
pub async fn alertmanager_with(config: &str) -> Store {
    let bin = binary("/usr/bin/prometheus-alertmanager");
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("tempdir: {error}"));
    let config_path = dir.path().join("alertmanager.yml");
    std::fs::write(&config_path, config).unwrap_or_else(|error| panic!("write config: {error}"));
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("starting alertmanager: {error}"));
    let mut store = Store { child, base: format!("http://127.0.0.1:{port}"), data: dir.path().join("data"), _dir: dir };
    wait_ready(&mut store, "/-/ready").await;
    store
}
