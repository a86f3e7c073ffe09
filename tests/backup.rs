//! `probenet store backups|restore` around a real scheduler: the scheduler backs its store up to the config's
//! bucket at start (`/metrics` says when), the CLI lists and restores it into a new directory (and refuses to
//! restore over it), and a scheduler started with `--store sqlite:DIR` on it serves the same results, without
//! taking another backup before `backup_every`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use probenet_checks::outcome::{Outcome, State};
use probenet_checks::wire::RunResult;
use probenet_exporters::store::{SqliteStore, Store, StoreOptions};

use crate::util::processes::{Kill, command, free_port, now_ms, plain_scheduler, token, wait_for};

fn manifests(bucket: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(bucket.join("backups/store")) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("manifest.json"))
        .filter(|path| path.exists())
        .collect()
}

fn get(url: &str, token: Option<&str>) -> Option<String> {
    let mut request = reqwest::blocking::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().ok()?;
    response.status().is_success().then(|| response.text().ok()).flatten()
}

#[test]
fn a_backup_taken_by_the_scheduler_is_restored_by_the_cli_and_served_by_a_scheduler() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 100 results of the last 100 minutes, stored before the scheduler starts.
    let results: Vec<RunResult> = (0..100_i64)
        .map(|minute| {
            let planned_at_ms = now_ms() - (100 - minute) * 60_000;
            RunResult {
                check: "web".to_owned(),
                region: "eu".to_owned(),
                planned_at_ms,
                started_at_ms: planned_at_ms + 1,
                prober: "p-eu".to_owned(),
                outcome: Outcome {
                    state: if minute % 10 == 0 { State::Down } else { State::Up },
                    duration_seconds: 0.125,
                    phases: Vec::new(),
                    reason: None,
                    error: None,
                    assertions: Vec::new(),
                    details: serde_json::json!({"minute": minute}),
                    log: Vec::new(),
                    artifacts: Vec::new(),
                },
            }
        })
        .collect();
    {
        let store = SqliteStore::open(&data.join("store"), StoreOptions::default()).unwrap();
        store.ingest(results.clone()).unwrap();
    }
    let bucket = dir.path().join("bucket");
    let checks = dir.path().join("checks.yaml");
    std::fs::write(
        &checks,
        format!(
            "objects:\n  url: file://{}\n  backup_every: 1h\n  backup_keep: 3\nregions: {{eu: {{}}}}\nchecks:\n  \
             - name: web\n    http: {{url: 'http://127.0.0.1:9/'}}\n",
            bucket.display()
        ),
    )
    .unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut scheduler = plain_scheduler(dir.path(), &checks, &data, port);
    scheduler.args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]);
    let scheduler = Kill(scheduler.spawn().unwrap());
    wait_for("the first backup", Duration::from_secs(60), dir.path(), || manifests(&bucket).len() == 1);
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let mut metrics = String::new();
    wait_for("the backup series", Duration::from_secs(10), dir.path(), || {
        metrics = get(&metrics_url, None).unwrap_or_default();
        metrics.lines().any(|line| {
            line.strip_prefix("probenet_backup_last_success_timestamp_seconds ")
                .is_some_and(|value| value.parse::<i64>().is_ok_and(|seconds| seconds > 0))
        })
    });
    assert!(metrics.contains("probenet_backup_failures_total 0\n"), "{metrics}");
    drop(scheduler);

    let listed = command().args(["store", "backups", "-c"]).arg(&checks).output().unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let name = manifests(&bucket)[0].parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    assert!(listed.lines().any(|line| line.starts_with(&name)), "{listed}");

    let restored = dir.path().join("restored");
    let restore = || {
        command()
            .args(["store", "restore", "--from-bucket", "-c"])
            .arg(&checks)
            .arg("--into")
            .arg(&restored)
            .output()
            .unwrap()
    };
    let first = restore();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains(&format!("restored backup {name}")));
    let again = restore();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("holds a store already"), "{again:?}");

    // A scheduler on the restored store serves the same results, and takes no backup before an hour.
    let data2 = dir.path().join("data2");
    let admin = token(&data2, &["--admin"]);
    let port2 = free_port();
    let mut second = plain_scheduler(dir.path(), &checks, &data2, port2);
    second.arg("--store").arg(format!("sqlite:{}", restored.display()));
    let _second = Kill(second.spawn().unwrap());
    let url = format!("http://127.0.0.1:{port2}/api/v1/results?check=web&limit=1000");
    let mut served: Vec<RunResult> = Vec::new();
    wait_for("the restored scheduler", Duration::from_secs(30), dir.path(), || {
        served = get(&url, Some(&admin)).and_then(|body| serde_json::from_str(&body).ok()).unwrap_or_default();
        !served.is_empty()
    });
    let mut expected = results;
    expected.reverse();
    assert_eq!(served, expected, "newest first, exactly what was stored");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(manifests(&bucket).len(), 1, "no backup before backup_every");
}
