//! The archive of raw results, in a directory bucket (`file://`) and in a real S3-compatible server (Garage):
//! three days of results of two checks in two regions; a pass archives only the complete days older than
//! `archive_after`; retention keeps what is not archived (also while the bucket is down); a restore into a
//! fresh store gives back identical results, twice adds nothing, and a damaged file is refused before anything
//! is stored; a PostgreSQL store (replicated schedulers) is archived and restored into either backend.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "store/helpers.rs"]
mod helpers;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use helpers::{DAY, T0, three_days, with_artifact};
use probenet_checks::outcome::State;
use probenet_checks::wire::RunResult;
use probenet_exporters::archive::{self, Archiver, Bucket, Day, Selection, Status};
use probenet_exporters::store::{PostgresStore, ResultQuery, SqliteStore, Store, StoreOptions};
use probenet_pg::Tls;
use probenet_testkit::garage::Garage;
use probenet_testkit::postgres::Postgres;

const HOUR: i64 = 3_600_000;

fn bucket(yaml: &str) -> Bucket {
    let config = probenet_checks::config::load_str("objects.yaml", yaml).unwrap_or_else(|errors| panic!("{errors}"));
    Bucket::open(&config.objects.expect("objects is set"), &mut Vec::new()).unwrap()
}

/// A store keeping raw results one hour only, so that only the archive's floor keeps older ones.
fn store(dir: &std::path::Path) -> Arc<dyn Store> {
    let options = StoreOptions { raw_retention: Duration::from_secs(3600), ..StoreOptions::default() };
    Arc::new(SqliteStore::open(dir, options).unwrap())
}

/// Three days from `T0` (a UTC midnight) of `api` and `web/home` (a name that is no key segment as it is) in
/// `eu` and `us`, one run a minute; failed runs carry a screenshot.
fn seeded(store: &Arc<dyn Store>) {
    let results: Vec<RunResult> = three_days()
        .into_iter()
        .map(|mut result| {
            if result.check == "web" {
                result.check = "web/home".into();
            }
            if result.outcome.state == State::Down { with_artifact(result) } else { result }
        })
        .collect();
    for batch in results.chunks(2000) {
        store.ingest(batch.to_vec()).unwrap();
    }
}

/// Every raw result planned in `[from, to)`, by check, region, planned time.
fn stored(store: &Arc<dyn Store>, from: i64, to: i64) -> Vec<RunResult> {
    let mut out = Vec::new();
    for pair in store.pairs().unwrap() {
        out.extend(
            store
                .results(&ResultQuery {
                    check: Some(pair.check),
                    region: Some(pair.region),
                    since_ms: Some(from),
                    until_ms: Some(to),
                    limit: 1_000_000,
                    oldest_first: true,
                    ..ResultQuery::default()
                })
                .unwrap(),
        );
    }
    out
}

fn day(n: i64) -> Day {
    Day::of_ms(T0 + n * DAY)
}

/// The whole story against one bucket.
async fn archive_and_restore(bucket: Bucket) {
    let dir = tempfile::tempdir().unwrap();
    let original = store(&dir.path().join("store"));
    seeded(&original);
    let first_day = stored(&original, T0, T0 + DAY);
    assert_eq!(first_day.len(), 4 * 1440);
    assert!(first_day.iter().any(|result| result.outcome.artifacts.iter().any(|a| a.path.is_some())));

    // Noon of the third day, archive_after one day: the first day is due; the second ended only 12 hours ago,
    // the third is today.
    let status = Arc::new(Status::default());
    let mut archiver = Archiver::new(bucket.clone(), Duration::from_secs(86_400), status.clone());
    let now = T0 + 2 * DAY + 12 * HOUR;
    let pass = archiver.run(&original, now).await.unwrap();
    assert_eq!(pass.error, None);
    assert_eq!(pass.written, [day(0)]);
    assert_eq!(pass.results, 4 * 1440);
    assert!(pass.pending.is_empty());
    assert_eq!(pass.floor_ms, T0 + DAY, "what is not due yet is kept");
    assert_eq!(status.days.load(Ordering::Relaxed), 1);
    assert!(probenet_exporters::exposition::text(&status.families()).contains("probenet_archive_pending_days 0\n"));

    // The manifest describes the two files, under sanitised keys.
    let days = archive::list(&bucket, day(0), day(9)).await.unwrap();
    assert_eq!(days.len(), 1);
    let (listed, manifest) = &days[0];
    assert_eq!(*listed, day(0));
    assert_eq!(
        (manifest.format.as_str(), manifest.version, manifest.from_ms, manifest.to_ms),
        ("probenet-archive", 1, T0, T0 + DAY)
    );
    let names: Vec<&str> = manifest.checks.iter().map(|file| file.check.as_str()).collect();
    assert_eq!(names, ["api", "web/home"]);
    let web = &manifest.checks[1];
    assert_eq!(web.key, format!("archive/v1/day={}/check=web%2Fhome/results.ndjson.zst", day(0)));
    assert_eq!((web.results, web.regions.clone()), (2 * 1440, vec!["eu".to_owned(), "us".to_owned()]));
    let bytes = bucket.get(&web.key).await.unwrap().unwrap();
    assert_eq!(bytes.len() as u64, web.bytes);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    assert_eq!(web.sha256, digest.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>());
    let decompressed = zstd::decode_all(bytes.as_ref()).unwrap();
    let first_line: RunResult = serde_json::from_slice(decompressed.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!((first_line.check.as_str(), first_line.region.as_str()), ("web/home", "eu"));
    assert_eq!(first_line.planned_at_ms, web.first_planned_ms);
    assert!(web.first_planned_ms >= T0 && web.last_planned_ms < T0 + DAY);

    // Again, and from a fresh process: the bucket has the day, nothing is written twice.
    assert!(archiver.run(&original, now).await.unwrap().written.is_empty());
    let mut fresh = Archiver::new(bucket.clone(), Duration::from_secs(86_400), Arc::new(Status::default()));
    let again = fresh.run(&original, now).await.unwrap();
    assert!(again.written.is_empty() && again.pending.is_empty(), "{again:?}");

    // A late result of the first day (a spool replayed after a long outage): the day is written again.
    let mut late = helpers::result("web/home", "eu", T0 + 12 * HOUR + 1, State::Down, 0.5);
    late.outcome.log.push("replayed".into());
    original.ingest(vec![late.clone()]).unwrap();
    // A process that starts now sees it at once (its first look at the manifest compares the counts) ...
    let mut restarted = Archiver::new(bucket.clone(), Duration::from_secs(86_400), Arc::new(Status::default()));
    let pass = restarted.run(&original, now).await.unwrap();
    assert_eq!((pass.written.clone(), pass.results), (vec![day(0)], 4 * 1440 + 1));
    assert!(restarted.run(&original, now).await.unwrap().written.is_empty(), "written once");
    // ... and so does one that knew the day.
    assert_eq!(archiver.run(&original, now).await.unwrap().written, [day(0)]);
    assert!(archiver.run(&original, now).await.unwrap().written.is_empty(), "written once");
    let first_day = stored(&original, T0, T0 + DAY);
    assert!(first_day.contains(&late));
    let days = archive::list(&bucket, day(0), day(0)).await.unwrap();
    assert_eq!(days[0].1.results(), 4 * 1440 + 1);

    // Retention (raw results kept one hour) deletes the archived day only.
    original.prune_keeping(now, Some(pass.floor_ms)).unwrap();
    assert!(stored(&original, T0, T0 + DAY).is_empty());
    assert_eq!(stored(&original, T0 + DAY, T0 + 2 * DAY).len(), 4 * 1440, "the second day is not archived yet");

    // A restore into a fresh store gives the same results; twice adds nothing.
    let restored_store = store(&dir.path().join("restored"));
    let selection = Selection { from: day(0), to: day(1), checks: None };
    let restored = archive::restore(&bucket, restored_store.clone(), &selection).await.unwrap();
    assert_eq!((restored.days, restored.files, restored.results), (1, 2, 4 * 1440 + 1));
    assert_eq!((restored.accepted, restored.duplicates), (4 * 1440 + 1, 0));
    assert_eq!(stored(&restored_store, i64::MIN, i64::MAX), first_day);
    let twice = archive::restore(&bucket, restored_store.clone(), &selection).await.unwrap();
    assert_eq!((twice.accepted, twice.duplicates), (0, 4 * 1440 + 1));
    assert_eq!(stored(&restored_store, i64::MIN, i64::MAX).len(), 4 * 1440 + 1);

    // One check only; a check the archive does not have is named.
    let only = Selection { from: day(0), to: day(0), checks: Some(vec!["api".into(), "nope".into()]) };
    let other = store(&dir.path().join("only"));
    let restored = archive::restore(&bucket, other.clone(), &only).await.unwrap();
    assert_eq!((restored.files, restored.accepted, restored.unmatched.clone()), (1, 2 * 1440, vec!["nope".to_owned()]));
    assert!(stored(&other, i64::MIN, i64::MAX).iter().all(|result| result.check == "api"));

    // A day later the second day is due.
    let pass = archiver.run(&original, now + DAY).await.unwrap();
    assert_eq!((pass.written, pass.floor_ms), (vec![day(1)], T0 + 2 * DAY));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_bucket_archives_due_days_and_restores_them_identically() {
    let root = tempfile::tempdir().unwrap();
    archive_and_restore(bucket(&format!("objects: file://{}/bucket/x\n", root.path().display()))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garage_archives_due_days_and_restores_them_identically() {
    let Some(garage) = Garage::start_or_skip("garage_archives_due_days_and_restores_them_identically", "probenet")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    archive_and_restore(bucket(&garage.objects_yaml(dir.path(), "team/archive"))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn while_the_bucket_is_down_raw_results_are_kept_until_archived() {
    let test = "while_the_bucket_is_down_raw_results_are_kept_until_archived";
    let Some(mut garage) = Garage::start_or_skip(test, "probenet") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket = bucket(&garage.objects_yaml(dir.path(), "archive-down"));
    let original = store(&dir.path().join("store"));
    seeded(&original);
    let first_day = stored(&original, T0, T0 + DAY);
    let status = Arc::new(Status::default());
    let mut archiver = Archiver::new(bucket.clone(), Duration::from_secs(3600), status.clone());
    // Two days are due (archive_after one hour): with the bucket down, neither is written and both are kept.
    let now = T0 + 2 * DAY + 12 * HOUR;
    garage.down();
    let pass = archiver.run(&original, now).await.unwrap();
    assert!(pass.error.as_deref().is_some_and(|error| error.contains("objects s3://probenet/")), "{pass:?}");
    assert_eq!((pass.written.clone(), pass.pending.clone()), (vec![], vec![day(0), day(1)]));
    assert_eq!(pass.floor_ms, T0);
    assert_eq!((status.failures.load(Ordering::Relaxed), status.pending_days.load(Ordering::Relaxed)), (1, 2));
    assert!(probenet_exporters::exposition::text(&status.families()).contains("probenet_archive_pending_days 2\n"));
    let pruned = original.prune_keeping(now, Some(pass.floor_ms)).unwrap();
    assert_eq!(pruned.results, 0);
    assert_eq!(stored(&original, T0, T0 + 2 * DAY).len(), 2 * 4 * 1440);

    // Back up: the next pass catches up, then retention deletes what is archived.
    garage.up();
    let pass = archiver.run(&original, now + HOUR).await.unwrap();
    assert_eq!((pass.error, pass.written, pass.floor_ms), (None, vec![day(0), day(1)], T0 + 2 * DAY));
    assert_eq!(status.pending_days.load(Ordering::Relaxed), 0);
    original.prune_keeping(now + HOUR, Some(pass.floor_ms)).unwrap();
    assert!(stored(&original, T0, T0 + 2 * DAY).is_empty());
    let restored = store(&dir.path().join("restored"));
    let selection = Selection { from: day(0), to: day(0), checks: None };
    archive::restore(&bucket, restored.clone(), &selection).await.unwrap();
    assert_eq!(stored(&restored, i64::MIN, i64::MAX), first_day);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_file_is_refused_before_anything_is_restored() {
    let root = tempfile::tempdir().unwrap();
    let bucket = bucket(&format!("objects: file://{}/bucket\n", root.path().display()));
    let dir = tempfile::tempdir().unwrap();
    let original = store(&dir.path().join("store"));
    seeded(&original);
    let mut archiver = Archiver::new(bucket.clone(), Duration::from_secs(3600), Arc::new(Status::default()));
    let pass = archiver.run(&original, T0 + 2 * DAY + HOUR).await.unwrap();
    assert_eq!(pass.written, [day(0), day(1)]);

    // One byte of the second day's `web/home` file changes: its SHA-256 no longer matches the manifest.
    let key = archive::file_key(day(1), "web/home");
    let path = root.path().join("bucket").join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let fresh = store(&dir.path().join("restored"));
    let selection = Selection { from: day(0), to: day(1), checks: None };
    let error = archive::restore(&bucket, fresh.clone(), &selection).await.unwrap_err().to_string();
    assert!(error.starts_with(&format!("{key}: its SHA-256 is ")), "{error}");
    assert!(error.contains("the file is damaged or was replaced; nothing was restored"), "{error}");
    assert!(stored(&fresh, i64::MIN, i64::MAX).is_empty(), "nothing of the window was stored");

    // A file the manifest lists but the bucket lost is named too; the days before it restore alone.
    std::fs::remove_file(&path).unwrap();
    let error = archive::restore(&bucket, fresh.clone(), &selection).await.unwrap_err().to_string();
    assert!(error.contains("the bucket does not have it"), "{error}");
    let first = Selection { from: day(0), to: day(0), checks: None };
    assert_eq!(archive::restore(&bucket, fresh.clone(), &first).await.unwrap().accepted, 4 * 1440);
}

/// Replicated schedulers archive from PostgreSQL: the pass reads it a page at a time, and a window restores into
/// a fresh SQLite store and into another PostgreSQL database with the same results.
#[test]
fn a_postgresql_store_is_archived_and_restored_into_either_backend() {
    let Some(pg) = Postgres::start_or_skip("a_postgresql_store_is_archived_and_restored_into_either_backend") else {
        return;
    };
    let open = |name: &str| -> Arc<dyn Store> {
        Arc::new(PostgresStore::open(&pg.create_database(name), Tls::Disabled, StoreOptions::default()).unwrap())
    };
    let original = open("archive_source");
    seeded(&original);
    let root = tempfile::tempdir().unwrap();
    let bucket = bucket(&format!("objects: file://{}/bucket\n", root.path().display()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut archiver = Archiver::new(bucket.clone(), Duration::from_secs(3600), Arc::new(Status::default()));
    let pass = runtime.block_on(archiver.run(&original, T0 + 2 * DAY + HOUR)).unwrap();
    assert_eq!((pass.written, pass.results), (vec![day(0), day(1)], 2 * 4 * 1440));
    let window = stored(&original, T0, T0 + 2 * DAY);

    let selection = Selection { from: day(0), to: day(1), checks: None };
    let sqlite = store(&root.path().join("restored"));
    let restored = runtime.block_on(archive::restore(&bucket, sqlite.clone(), &selection)).unwrap();
    assert_eq!(restored.accepted, window.len());
    assert_eq!(stored(&sqlite, i64::MIN, i64::MAX), window);
    let postgres = open("archive_restored");
    runtime.block_on(archive::restore(&bucket, postgres.clone(), &selection)).unwrap();
    assert_eq!(stored(&postgres, i64::MIN, i64::MAX), window);
    let twice = runtime.block_on(archive::restore(&bucket, postgres.clone(), &selection)).unwrap();
    assert_eq!((twice.accepted, twice.duplicates), (0, window.len()));
}
