//! `probenet archive list|restore` through the binary: the days a pass archived are listed; a window restored
//! into a fresh `sqlite:` store gives back the same results, a second time adds nothing, and a damaged file
//! stops the restore with its key and a clear reason.

use std::sync::Arc;
use std::time::Duration;

use probenet_checks::outcome::{Outcome, State};
use probenet_checks::wire::RunResult;
use probenet_exporters::archive::{Archiver, Bucket, Day, Status, file_key};
use probenet_exporters::store::{ResultQuery, SqliteStore, Store, StoreOptions};

use crate::util::processes::command;

const DAY: i64 = 86_400_000;
/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;

fn all(store: &dyn Store) -> Vec<RunResult> {
    let mut out = Vec::new();
    for pair in store.pairs().unwrap() {
        let query = ResultQuery {
            check: Some(pair.check),
            region: Some(pair.region),
            limit: 100_000,
            oldest_first: true,
            ..ResultQuery::default()
        };
        out.extend(store.results(&query).unwrap());
    }
    out
}

fn run(args: &[&str], config: &std::path::Path) -> (i32, String, String) {
    let output = command().arg("archive").arg(args[0]).arg("--config").arg(config).args(&args[1..]).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

#[test]
fn archived_days_are_listed_and_restored_into_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let bucket_dir = dir.path().join("bucket");
    let config = dir.path().join("checks.yaml");
    std::fs::write(
        &config,
        format!(
            "regions: {{eu: {{}}, us: {{}}}}\nchecks:\n  - name: api\n    http: {{url: 'http://127.0.0.1:9/'}}\n\
             objects:\n  url: file://{}\n  archive_after: 1d\n",
            bucket_dir.display()
        ),
    )
    .unwrap();
    // Two days of `api` and `shop/cart` in two regions, every 5 minutes, every 7th run down.
    let source = SqliteStore::open(&dir.path().join("source"), StoreOptions::default()).unwrap();
    let mut results = Vec::new();
    for i in 0..2 * 288 {
        for (check, region) in [("api", "eu"), ("api", "us"), ("shop/cart", "eu")] {
            let mut outcome = Outcome::up(0.05 + (i % 10) as f64 / 1000.0);
            if i % 7 == 0 {
                outcome = Outcome::failed(probenet_checks::Reason::Status, format!("got 503 at run {i}"));
                outcome.state = State::Down;
            }
            let planned = T0 + i * 300_000 + 1234;
            let prober = format!("p-{region}");
            results.push(RunResult {
                check: check.into(),
                region: region.into(),
                planned_at_ms: planned,
                started_at_ms: planned + 2,
                prober,
                outcome,
            });
        }
    }
    source.ingest(results).unwrap();
    let source: Arc<dyn Store> = Arc::new(source);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let spec = probenet_checks::load_paths(std::slice::from_ref(&config)).unwrap().objects.unwrap();
    let bucket = Bucket::open(&spec, &mut Vec::new()).unwrap();
    let mut archiver = Archiver::new(bucket, Duration::from_secs(3600), Arc::new(Status::default()));
    let pass = runtime.block_on(archiver.run(&source, T0 + 2 * DAY + 3_600_000)).unwrap();
    assert_eq!(pass.written.len(), 2);

    let (code, listed, stderr) = run(&["list"], &config);
    assert_eq!(code, 0, "{stderr}");
    assert!(listed.contains("2026-12-01       2           864"), "{listed}");
    assert!(listed.contains("2026-12-02       2           864"), "{listed}");
    assert!(listed.contains("2 days, 1728 results"), "{listed}");
    let (_, one, _) = run(&["list", "--from", "2026-12-02"], &config);
    assert!(!one.contains("2026-12-01") && one.contains("1 days, 864 results"), "{one}");

    let into = format!("sqlite:{}", dir.path().join("restored").display());
    let window = ["restore", "--from", "2026-12-01", "--to", "2026-12-02", "--into", into.as_str()];
    let (code, out, stderr) = run(&window, &config);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("2 days, 4 files, 1728 results (1728 new, 0 already stored)"), "{out}");
    let (code, out, _) = run(&window, &config);
    assert_eq!(code, 0);
    assert!(out.contains("(0 new, 1728 already stored)"), "{out}");
    let restored = SqliteStore::open(&dir.path().join("restored"), StoreOptions::default()).unwrap();
    assert_eq!(all(&restored), all(source.as_ref()));
    drop(restored);

    // One check into another store; a day the archive does not have restores nothing.
    let other = format!("sqlite:{}", dir.path().join("other").display());
    let (code, out, stderr) = run(
        &["restore", "--from", "2026-12-01", "--to", "2026-12-01", "--checks", "shop/cart,gone", "--into", &other],
        &config,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("1 days, 1 files, 288 results (288 new"), "{out}");
    assert!(stderr.contains("no archived results of check \"gone\""), "{stderr}");

    // A damaged file: exit 1, its key and why; nothing stored.
    let key = file_key(Day::parse("2026-12-02").unwrap(), "api");
    let path = bucket_dir.join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let fresh = format!("sqlite:{}", dir.path().join("fresh").display());
    let (code, _, stderr) = run(&["restore", "--from", "2026-12-01", "--to", "2026-12-02", "--into", &fresh], &config);
    assert_eq!(code, 1);
    assert!(stderr.starts_with(&format!("probenet: {key}: its SHA-256 is ")), "{stderr}");
    let fresh = SqliteStore::open(&dir.path().join("fresh"), StoreOptions::default()).unwrap();
    assert!(all(&fresh).is_empty());

    // Usage errors: exit 2.
    let (code, _, stderr) =
        run(&["restore", "--from", "2026-12-03", "--to", "2026-12-01", "--into", &fresh_url(&dir)], &config);
    assert_eq!(code, 2);
    assert!(stderr.contains("--from 2026-12-03 is after --to 2026-12-01"), "{stderr}");
    let (code, _, stderr) =
        run(&["restore", "--from", "2026-02-30", "--to", "2026-12-01", "--into", &fresh_url(&dir)], &config);
    assert_eq!(code, 2);
    assert!(stderr.contains("that month has no day 30"), "{stderr}");
}

fn fresh_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("unused").display())
}
