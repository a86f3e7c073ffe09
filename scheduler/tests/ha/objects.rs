//! Artifacts in a real S3 bucket (Garage) shared by two replicas on one PostgreSQL: a screenshot taken in by one
//! replica is served by the other; while the bucket is down for a minute, results are still taken in at once,
//! their screenshots wait on the receiving replica's disk (and `/metrics` says so), and once it is back every
//! one of them reaches the bucket and every replica serves it, byte for byte.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use probenet_checks::outcome::{Artifact, Outcome, Reason};
use probenet_checks::wire::RunResult;
use probenet_objects::Bucket;
use probenet_testkit::garage::Garage;
use serde_json::json;

use crate::replicas::{Cluster, within};
use crate::util::database;

/// A PNG of `seed`: the magic number, then bytes of its own.
fn png(seed: u32) -> Vec<u8> {
    let mut data = b"\x89PNG\r\n\x1a\n".to_vec();
    data.extend((0..2000_u32).map(|i| (i.wrapping_mul(seed + 7) % 251) as u8));
    data
}

fn failed_with_screenshot(check: &str, planned_at_ms: i64, data: Vec<u8>) -> RunResult {
    let mut outcome = Outcome::failed(Reason::Assertion, "the page says: out of stock".to_owned());
    outcome.artifacts.push(Artifact { name: "failure.png".into(), media_type: "image/png".into(), data, path: None });
    RunResult {
        check: check.into(),
        region: "eu".into(),
        planned_at_ms,
        started_at_ms: planned_at_ms + 2,
        prober: "eu-1".into(),
        outcome,
    }
}

/// The grid time of (check, eu) at or before now, for the 10 s interval of the cluster's config.
fn on_grid(check: &str) -> i64 {
    let schedule = probenet_checks::Schedule::Every(Duration::from_secs(10));
    let offset = schedule.offset_ms(check, "eu");
    schedule.planned_at_or_after(offset, probenet_scheduler::time::now_ms() - 10_000 + 1).unwrap()
}

/// One metric's value in a replica's `/metrics`.
async fn metric(cluster: &Cluster, replica: usize, name: &str) -> Option<f64> {
    let (status, text) = cluster.call(replica, "GET", &cluster.admin, "/metrics", None).await;
    assert_eq!(status, 200, "{text}");
    let text = text.as_str()?.to_owned();
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The path of the artifact of (check, planned), as the results API (of any replica) records it.
async fn artifact_path(cluster: &Cluster, replica: usize, check: &str, planned: i64) -> Option<String> {
    let path = format!("/api/v1/results?check={check}&region=eu&limit=100");
    let (status, results) = cluster.call(replica, "GET", &cluster.admin, &path, None).await;
    assert_eq!(status, 200, "{results}");
    let result = results.as_array()?.iter().find(|result| result["planned_at_ms"] == planned)?;
    result["outcome"]["artifacts"][0]["path"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn artifacts_go_to_the_bucket_and_outlive_its_outage() {
    let test = "artifacts_go_to_the_bucket_and_outlive_its_outage";
    let Some(pg) = database(test).await else { return };
    let Some(mut garage) = tokio::task::block_in_place(|| Garage::start_or_skip(test, "probenet")) else { return };
    let mut objects = String::new();
    let mut cluster = Cluster::start_with(&pg.url(), 2, |dir| {
        objects = garage.objects_yaml(dir, "prod");
        objects.clone()
    })
    .await;
    let spec = probenet_checks::config::load_str("objects.yaml", &objects).unwrap().objects.unwrap();
    let bucket = Bucket::open(&spec, &mut Vec::new()).unwrap();

    cluster.register(0, "eu", "eu-1").await;
    within("eu-1 holds every eu pair", Duration::from_secs(10), || async {
        let (_, by_prober) = cluster.agreed(&[("eu", "eu-1")]).await?;
        (by_prober["eu/eu-1"].len() == 4).then_some(())
    })
    .await;
    let post = async |result: RunResult| {
        let body = json!({"prober": "eu-1", "results": [result]});
        cluster.call(0, "POST", &cluster.tokens["eu"], "/v1/results", Some(body)).await
    };

    // Taken in by r0, served by r1 from the bucket.
    let planned = on_grid("home");
    let (status, ack) = post(failed_with_screenshot("home", planned, png(1))).await;
    assert_eq!(status, 200, "{ack}");
    let key =
        within("r1 lists the result", Duration::from_secs(5), || artifact_path(&cluster, 1, "home", planned)).await;
    assert!(key.starts_with("artifacts/") && key.contains("/home/eu/"), "{key}");
    let served = within("r1 serves the screenshot", Duration::from_secs(10), || async {
        let (status, body) = cluster.bytes(1, &format!("/api/ui/artifacts/{key}")).await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(served, png(1));
    assert_eq!(bucket.get(&key).await.unwrap().map(|data| data.to_vec()), Some(png(1)), "in the bucket itself");

    // The bucket down for a minute: every result is still taken in at once.
    garage.down();
    let down_at = Instant::now();
    let mut sent: BTreeMap<(String, i64), Vec<u8>> = BTreeMap::new();
    let mut seed = 10;
    while down_at.elapsed() < Duration::from_secs(60) {
        let beat = json!({"name": "eu-1", "region": "eu"});
        let (status, answer) = cluster.call(0, "POST", &cluster.tokens["eu"], "/v1/heartbeat", Some(beat)).await;
        assert!(status < 300, "heartbeat: {status} {answer}");
        for check in ["home", "api", "login"] {
            let planned = on_grid(check);
            if sent.contains_key(&(check.to_owned(), planned)) {
                continue;
            }
            seed += 1;
            let started = Instant::now();
            let (status, ack) = post(failed_with_screenshot(check, planned, png(seed))).await;
            assert_eq!(status, 200, "{check} at {planned} while the bucket is down: {ack}");
            assert!(started.elapsed() < Duration::from_secs(3), "ingest waited {:?} on the bucket", started.elapsed());
            sent.insert((check.to_owned(), planned), png(seed));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(sent.len() >= 15, "{} results sent during the outage", sent.len());
    let waiting = metric(&cluster, 0, "probenet_objects_pending_artifacts").await.unwrap();
    assert_eq!(waiting, sent.len() as f64, "every screenshot waits on r0's disk");
    assert_eq!(metric(&cluster, 0, "probenet_objects_up").await, Some(0.0));
    assert!(metric(&cluster, 0, "probenet_objects_upload_failures_total").await.unwrap() >= 1.0);
    // r0 serves them from its disk meanwhile.
    let ((check, planned), data) = sent.iter().next().unwrap();
    let key = artifact_path(&cluster, 0, check, *planned).await.unwrap();
    assert_eq!(cluster.bytes(0, &format!("/api/ui/artifacts/{key}")).await, (200, data.clone()));

    // Back: everything reaches the bucket (the uploader retries at most every 30 s), and r1 serves each.
    garage.up();
    let back = Instant::now();
    within("the spool drains", Duration::from_secs(45), || async {
        let pending = metric(&cluster, 0, "probenet_objects_pending_artifacts").await?;
        (pending == 0.0).then_some(())
    })
    .await;
    println!("{} screenshots of a 60 s outage uploaded {:?} after the bucket came back", sent.len(), back.elapsed());
    assert_eq!(metric(&cluster, 0, "probenet_objects_up").await, Some(1.0));
    for ((check, planned), data) in &sent {
        let key = artifact_path(&cluster, 1, check, *planned).await.unwrap_or_else(|| panic!("{check} {planned}"));
        assert_eq!(bucket.get(&key).await.unwrap().map(|body| body.to_vec()).as_ref(), Some(data), "{key}");
        let (status, body) = cluster.bytes(1, &format!("/api/ui/artifacts/{key}")).await;
        assert_eq!((status, &body), (200, data), "{key} from r1");
    }
    assert!(metric(&cluster, 0, "probenet_objects_uploaded_artifacts_total").await.unwrap() >= (sent.len() + 1) as f64);

    for replica in &mut cluster.replicas {
        if let Some(running) = replica.running.take() {
            running.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_stop_the_start_with_the_reason_and_no_bucket_needs_the_database() {
    let test = "wrong_keys_stop_the_start_with_the_reason_and_no_bucket_needs_the_database";
    let Some(pg) = database(test).await else { return };
    let Some(mut garage) = tokio::task::block_in_place(|| Garage::start_or_skip(test, "probenet")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let good = garage.objects_yaml(dir.path(), "prod");
    let mut objects = good.clone();
    std::fs::write(dir.path().join("s3-secret"), "wrong-secret-value-123456").unwrap();
    objects.push('\n');
    let config = dir.path().join("checks.yaml");
    std::fs::write(&config, format!("checks:\n  - name: home\n    http: {{url: 'http://127.0.0.1:9/'}}\n{objects}"))
        .unwrap();
    let options = |artifacts_in_database: bool, data: &str| probenet_scheduler::Options {
        config: vec![config.clone()],
        listen: "127.0.0.1:0".parse().unwrap(),
        data: dir.path().join(data),
        tls: probenet_scheduler::TlsMode::Auto,
        sans: Vec::new(),
        dashboard_url: None,
        metrics_listen: None,
        limits: probenet_scheduler::server::Limits::for_this_process(),
        cluster: Some(probenet_scheduler::ClusterOptions {
            database: probenet_scheduler::ha::Database::parse(&pg.url(), None, None).unwrap(),
            pool_size: 2,
            replica: probenet_scheduler::cluster::ReplicaOptions {
                name: "r0".into(),
                url: String::new(),
                lease: Duration::from_secs(2),
            },
        }),
        store_dir: None,
        artifacts_in_database,
        per_check_metrics: false,
    };
    let error = probenet_scheduler::start(options(false, "a")).await.unwrap_err().to_string();
    assert!(error.contains("the bucket refused the keys") && error.contains("s3://probenet/prod"), "{error}");
    assert!(!error.contains("wrong-secret-value") && !error.contains(&garage.secret), "{error}");

    // Replicated without a bucket: refused unless artifacts go to the database.
    std::fs::write(&config, "checks:\n  - name: home\n    http: {url: 'http://127.0.0.1:9/'}\n").unwrap();
    let error = probenet_scheduler::start(options(false, "b")).await.unwrap_err().to_string();
    assert!(error.contains("set `objects`") && error.contains("--artifacts-in-database"), "{error}");
    let running = probenet_scheduler::start(options(true, "c")).await.unwrap();
    running.shutdown().await;

    // Right keys, the bucket down: the start is not held up (artifacts wait on disk until it answers).
    std::fs::write(dir.path().join("s3-secret"), &garage.secret).unwrap();
    std::fs::write(&config, format!("checks:\n  - name: home\n    http: {{url: 'http://127.0.0.1:9/'}}\n{good}"))
        .unwrap();
    tokio::task::block_in_place(|| garage.down());
    let started = std::time::Instant::now();
    let running = probenet_scheduler::start(options(false, "d")).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(8), "the start waited {:?} on the bucket", started.elapsed());
    running.shutdown().await;
}
