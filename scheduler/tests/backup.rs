//! Backups of the embedded store to the bucket: a copy taken while a thread ingests restores to whole batches
//! only, equal to what the store held (a directory bucket, `file://`); on a real S3 server (Garage), the newest
//! `keep` are kept and older ones deleted, a bucket that is down counts a failure and the next round succeeds,
//! and a corrupted backup is refused with nothing restored.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use probenet_checks::config::objects::{Objects, Provider};
use probenet_checks::outcome::{Outcome, Phase, State};
use probenet_checks::wire::RunResult;
use probenet_exporters::store::{ResultQuery, SqliteStore, Store, StoreOptions, UptimeQuery};
use probenet_objects::Bucket;
use probenet_scheduler::backup::{self, Schedule, Status, restore};
use probenet_testkit::garage::Garage;

/// Results per batch: 5 checks x 20 planned times.
const PER_BATCH: i64 = 100;
const CHECKS: i64 = 5;
const BASE_MS: i64 = 1_780_000_000_000;

fn result(batch: i64, index: i64) -> RunResult {
    let planned_at_ms = BASE_MS + (batch * (PER_BATCH / CHECKS) + index / CHECKS) * 1000;
    let state = if (batch + index) % 17 == 0 { State::Down } else { State::Up };
    let seconds = 0.01 + (index % 13) as f64 / 100.0;
    RunResult {
        check: format!("check-{}", index % CHECKS),
        region: "eu".to_owned(),
        planned_at_ms,
        started_at_ms: planned_at_ms + 2,
        prober: "eu-1".to_owned(),
        outcome: Outcome {
            state,
            duration_seconds: seconds,
            phases: vec![Phase { name: "connect".into(), seconds: seconds / 2.0 }],
            reason: None,
            error: (state == State::Down).then(|| format!("refused in batch {batch}")),
            assertions: Vec::new(),
            details: serde_json::json!({"status_code": 200, "batch": batch}),
            log: Vec::new(),
            artifacts: Vec::new(),
        },
    }
}

fn batch(batch: i64) -> Vec<RunResult> {
    (0..PER_BATCH).map(|index| result(batch, index)).collect()
}

/// The batch a result belongs to.
fn batch_of(result: &RunResult) -> i64 {
    (result.planned_at_ms - BASE_MS) / 1000 / (PER_BATCH / CHECKS)
}

fn all_results(store: &dyn Store) -> Vec<RunResult> {
    store.results(&ResultQuery { limit: 10_000_000, ..ResultQuery::default() }).unwrap()
}

fn directory_bucket(dir: &Path) -> Bucket {
    let spec = Objects {
        url: format!("file://{}", dir.display()),
        provider: Provider::File,
        bucket: dir.display().to_string(),
        prefix: String::new(),
        endpoint: None,
        region: None,
        path_style: false,
        access_key_id: None,
        secret_access_key: None,
        session_token: None,
        service_account_key: None,
        account: None,
        access_key: None,
        ca_file: None,
        archive_after: None,
        backup_every: Some(Duration::from_secs(3600)),
        backup_keep: 7,
    };
    Bucket::open(&spec, &mut Vec::new()).unwrap()
}

/// The bucket of a Garage node, through the config's `objects` section (keys by `${file:...}`).
fn garage_bucket(garage: &Garage, dir: &Path, prefix: &str) -> Bucket {
    let yaml = format!(
        "{}regions:\n  eu: {{}}\nchecks:\n  - name: web\n    http: {{url: \"http://127.0.0.1:9/\"}}\n",
        garage.objects_yaml(dir, prefix)
    );
    let file = dir.join("probenet.yaml");
    std::fs::write(&file, yaml).unwrap();
    let loaded = probenet_scheduler::config::Loaded::load(&[file]).unwrap_or_else(|errors| panic!("{errors:?}"));
    let config = loaded.config;
    let mut secrets = Vec::new();
    Bucket::open(config.objects.as_ref().unwrap(), &mut secrets).unwrap()
}

fn schedule(work: &Path, keep: u32, every: Duration) -> Schedule {
    Schedule { every, keep, work: work.to_owned() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_ingesting_restores_whole_batches_equal_to_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    // Enough to make the copy take many steps (the database is several MiB), then ingest goes on during it.
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, acked, stop) = (store.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut next = 0_i64;
            // Bounded: stops when told, and after 20,000 batches in any case.
            while !stop.load(Ordering::SeqCst) && next < 20_000 {
                let (ingested, _) = Store::ingest(&store, batch(next)).unwrap();
                assert_eq!(ingested.accepted, PER_BATCH as usize);
                next += 1;
                acked.store(next as u64, Ordering::SeqCst);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.load(Ordering::SeqCst) < 600 {
        assert!(Instant::now() < deadline, "the writer is too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bucket = directory_bucket(&dir.path().join("bucket"));
    let status = Status::default();
    let acked_before = acked.load(Ordering::SeqCst);
    let manifest =
        backup::backup_once(&shared, &bucket, &schedule(&dir.path().join("work"), 7, Duration::ZERO), &status)
            .await
            .unwrap();
    let acked_after = acked.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(acked_after > acked_before, "ingest went on during the backup ({acked_before} -> {acked_after})");
    assert_eq!(status.failures(), 0);
    assert_eq!(status.last_success_s(), Some(manifest.taken_at_ms / 1000));
    assert!(manifest.db_bytes > 4 << 20, "the copy took several steps: {} bytes", manifest.db_bytes);
    assert!(manifest.object_bytes < manifest.db_bytes, "compressed: {manifest:?}");
    assert!(!dir.path().join("work").exists(), "the scratch directory is removed");

    let listed = restore::list(&bucket).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].manifest.as_ref(), Some(&manifest));
    let into = dir.path().join("restored");
    let restored = restore::restore(&bucket, None, &into).await.unwrap();
    assert_eq!(restored.name, listed[0].name);
    let copy = SqliteStore::open(&into, StoreOptions::default()).unwrap();
    assert!(copy.integrity_check().unwrap().is_empty());

    // Whole batches only, a prefix of what was acknowledged, between the acks before and after the copy.
    let copied = all_results(&copy);
    let mut per_batch = std::collections::BTreeMap::<i64, i64>::new();
    for result in &copied {
        *per_batch.entry(batch_of(result)).or_default() += 1;
    }
    let batches = per_batch.len() as i64;
    assert!(per_batch.values().all(|&count| count == PER_BATCH), "a torn batch: {per_batch:?}");
    assert_eq!(per_batch.keys().copied().collect::<Vec<_>>(), (0..batches).collect::<Vec<_>>());
    assert!(
        (acked_before as i64..=acked_after as i64).contains(&batches),
        "{batches} batches in the copy, acked {acked_before} before and {acked_after} after"
    );
    // Equal to the store's results of those batches, and its rollups agree with its raw rows.
    let cut = BASE_MS + batches * (PER_BATCH / CHECKS) * 1000;
    let original =
        store.results(&ResultQuery { until_ms: Some(cut), limit: 10_000_000, ..ResultQuery::default() }).unwrap();
    assert_eq!(copied, original);
    let uptime =
        Store::uptime(&copy, &UptimeQuery { from_ms: 0, to_ms: i64::MAX / 2, ..UptimeQuery::default() }).unwrap();
    assert_eq!(uptime.iter().map(|pair| pair.runs).sum::<i64>(), batches * PER_BATCH);
    let at_cut = Store::uptime(&store, &UptimeQuery { from_ms: 0, to_ms: cut, ..UptimeQuery::default() }).unwrap();
    assert_eq!(uptime, at_cut, "uptime of the copy equals the store's up to the copy's last batch");

    // A second restore into the same directory is refused, and leaves the store as it is.
    let error = restore::restore(&bucket, None, &into).await.unwrap_err();
    assert!(error.to_string().contains("holds a store already"), "{error}");
    drop(copy);
    assert_eq!(all_results(&SqliteStore::open(&into, StoreOptions::default()).unwrap()).len(), copied.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_backup_is_refused_and_nothing_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("store"), StoreOptions::default()).unwrap());
    store.ingest(batch(0)).unwrap();
    let bucket_dir = dir.path().join("bucket");
    let bucket = directory_bucket(&bucket_dir);
    let manifest = backup::backup_once(
        &store,
        &bucket,
        &schedule(&dir.path().join("work"), 7, Duration::ZERO),
        &Status::default(),
    )
    .await
    .unwrap();
    let name = backup::name_at(manifest.taken_at_ms);
    let object = bucket_dir.join(backup::FOLDER).join(&name).join(backup::OBJECT);
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&object, bytes).unwrap();
    let into = dir.path().join("restored");
    let error = restore::restore(&bucket, Some(&name), &into).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("SHA-256") && text.contains("nothing was restored"), "{text}");
    assert!(!into.join("probenet.db").exists());
    assert_eq!(std::fs::read_dir(&into).unwrap().count(), 0, "nothing is left behind");
    let error = restore::restore(&bucket, Some("2020-01-01T000000Z"), &into).await.unwrap_err();
    assert!(error.to_string().contains("no backup 2020-01-01T000000Z"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_backups_are_kept_and_older_ones_deleted() {
    let Some(garage) = Garage::start_or_skip("the_newest_backups_are_kept_and_older_ones_deleted", "backups") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket = garage_bucket(&garage, dir.path(), "site-a");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("store"), StoreOptions::default()).unwrap());
    // An upload that never finished, older than every backup: cleaned up with the old ones.
    bucket.put(&format!("{}/2020-01-01T000000Z/{}", backup::FOLDER, backup::OBJECT), "partial".into()).await.unwrap();
    let schedule = schedule(&dir.path().join("work"), 2, Duration::ZERO);
    let status = Status::default();
    let mut names = Vec::new();
    for round in 0..4 {
        store.ingest(batch(round)).unwrap();
        let manifest = backup::backup_once(&store, &bucket, &schedule, &status).await.unwrap();
        names.push(backup::name_at(manifest.taken_at_ms));
        // Names are per second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let listed = restore::list(&bucket).await.unwrap();
    let kept: Vec<&str> = listed.iter().map(|backup| backup.name.as_str()).collect();
    assert_eq!(kept, [names[2].as_str(), names[3].as_str()], "the newest 2 are kept");
    assert!(listed.iter().all(|backup| backup.manifest.is_some()));
    assert!(bucket.list(&format!("{}/2020-01-01T000000Z", backup::FOLDER)).await.unwrap().is_empty());
    // The newest holds the four batches; an older one can be chosen by name.
    let newest = restore::restore(&bucket, None, &dir.path().join("newest")).await.unwrap();
    assert_eq!(newest.name, names[3]);
    let copy = SqliteStore::open(&dir.path().join("newest"), StoreOptions::default()).unwrap();
    assert_eq!(all_results(&copy).len(), 4 * PER_BATCH as usize);
    restore::restore(&bucket, Some(&names[2]), &dir.path().join("older")).await.unwrap();
    let copy = SqliteStore::open(&dir.path().join("older"), StoreOptions::default()).unwrap();
    assert_eq!(all_results(&copy).len(), 3 * PER_BATCH as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_is_down_counts_a_failure_and_the_next_round_succeeds() {
    let Some(mut garage) =
        Garage::start_or_skip("a_bucket_that_is_down_counts_a_failure_and_the_next_round_succeeds", "backups")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket = garage_bucket(&garage, dir.path(), "");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("store"), StoreOptions::default()).unwrap());
    store.ingest(batch(0)).unwrap();
    garage.down();
    let status = Arc::new(Status::default());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(backup::run(
        store.clone(),
        Some(bucket.clone()),
        schedule(&dir.path().join("work"), 3, Duration::from_secs(2)),
        status.clone(),
        stopping,
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    while status.failures() == 0 {
        assert!(Instant::now() < deadline, "no failure counted while the bucket is down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status.last_success_s(), None);
    let metrics = probenet_exporters::exposition::text(&status.families());
    assert!(metrics.contains("probenet_backup_failures_total 1\n"), "{metrics}");
    assert!(metrics.contains("probenet_backup_last_success_timestamp_seconds 0\n"), "{metrics}");
    assert!(!metrics.contains(&garage.secret), "no secret in the metrics");
    garage.up();
    while status.last_success_s().is_none() {
        assert!(Instant::now() < deadline, "no backup once the bucket is back: {}", garage.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(60), task).await.unwrap().unwrap();
    let listed = restore::list(&bucket).await.unwrap();
    assert!(!listed.is_empty() && listed.iter().all(|backup| backup.manifest.is_some()), "{listed:?}");
    let metrics = probenet_exporters::exposition::text(&status.families());
    let last = status.last_success_s().unwrap();
    assert!(metrics.contains(&format!("probenet_backup_last_success_timestamp_seconds {last}\n")), "{metrics}");
}
