//! SIGHUP reloads the config even when no file's time or size changed. A test binary of its own: the signal
//! reaches every scheduler of the process.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use probenet_scheduler::tokens::{self, Scope};
use probenet_scheduler::{Options, TlsMode};
use serde_json::Value;

const CONFIG: &str =
    "regions: {eu: {}}\nchecks:\n  - name: home\n    interval: 30s\n    tcp: {target: '127.0.0.1:9'}\n";

#[tokio::test]
async fn sighup_reloads_the_config() {
    // Our own handler first, so the signal can never end the test process.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checks.yaml");
    std::fs::write(&path, CONFIG).unwrap();
    let admin = tokens::create(&dir.path().join("data"), &Scope::Admin).unwrap();
    let options = Options {
        config: vec![path.clone()],
        listen: "127.0.0.1:0".parse().unwrap(),
        data: dir.path().join("data"),
        tls: TlsMode::PlainHttp,
        sans: Vec::new(),
        dashboard_url: None,
        metrics_listen: None,
        limits: probenet_scheduler::server::Limits::for_this_process(),
        cluster: None,
        store_dir: None,
        artifacts_in_database: false,
        per_check_metrics: false,
    };
    let running = probenet_scheduler::start(options).await.unwrap();
    let client = reqwest::Client::new();
    let config = || async {
        let url = format!("{}/api/v1/config", running.url());
        client.get(url).bearer_auth(&admin).send().await.unwrap().json::<Value>().await.unwrap()
    };
    let before = config().await;

    // Same size, same modification time: the 2 s poll sees nothing.
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, CONFIG.replace("30s", "60s")).unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(modified).unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(config().await["config_hash"], before["config_hash"]);

    let status = std::process::Command::new("kill").arg("-HUP").arg(std::process::id().to_string()).status().unwrap();
    assert!(status.success());
    let _ = tokio::time::timeout(Duration::from_secs(5), hangup.recv()).await;
    let start = Instant::now();
    loop {
        let now = config().await;
        if now["config_hash"] != before["config_hash"] {
            assert_eq!(now["generation"].as_u64().unwrap(), before["generation"].as_u64().unwrap() + 1);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "SIGHUP did not reload the config");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown().await;
}
