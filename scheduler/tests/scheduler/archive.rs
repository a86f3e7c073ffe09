//! The archive in the scheduler's retention round: a scheduler whose config sets `objects.archive_after`
//! archives the complete days due of the store it opens, and says so in `/metrics`.

use std::time::Duration;

use probenet_checks::State;
use probenet_exporters::archive::{Day, manifest_key};
use probenet_exporters::store::{SqliteStore, Store, StoreOptions};
use probenet_scheduler::tokens::{self, Scope};

use crate::util::{CONFIG, client, eventually, now_ms, options, result};

#[tokio::test]
async fn the_retention_round_archives_the_days_due_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    // Results of the last three days and today, one an hour, in the store the scheduler will open.
    let now = now_ms();
    let today = Day::of_ms(now);
    let start = Day::of_ms(now - 3 * 86_400_000).start_ms();
    let store = SqliteStore::open(&dir.path().join("data").join("store"), StoreOptions::default()).unwrap();
    let results: Vec<_> = (0..)
        .map(|hour| start + hour * 3_600_000)
        .take_while(|at| *at < now)
        .map(|at| result("api", "eu", at, State::Up))
        .collect();
    store.ingest(results).unwrap();
    drop(store);

    let config = format!("{CONFIG}objects:\n  url: file://{}\n  archive_after: 1d\n", bucket.display());
    let path = dir.path().join("checks.yaml");
    std::fs::write(&path, config).unwrap();
    let admin = tokens::create(&dir.path().join("data"), &Scope::Admin).unwrap();
    let running = probenet_scheduler::start(options(dir.path(), path)).await.unwrap();
    // Three days back and two days back ended more than a day ago; yesterday did not.
    let due = [Day::of_ms(start), Day::of_ms(start).next()];
    eventually(Duration::from_secs(30), || async {
        due.iter().all(|day| bucket.join(manifest_key(*day)).is_file()).then_some(())
    })
    .await;
    assert!(!bucket.join(manifest_key(Day::of_ms(now - 86_400_000))).exists());
    assert!(!bucket.join(manifest_key(today)).exists());

    let http = client(running.ca_pem().unwrap());
    let url = format!("https://localhost:{}/metrics", running.addr().port());
    let text = eventually(Duration::from_secs(10), || async {
        let text = http.get(&url).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
        text.contains("probenet_archive_days_total 2\n").then_some(text)
    })
    .await;
    assert!(text.contains("probenet_archive_pending_days 0\n"), "{text}");
    assert!(text.contains("probenet_archive_failures_total 0\n"), "{text}");
    running.shutdown().await;
}
