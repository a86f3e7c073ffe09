//! The store: the backend-neutral suite (`store/suite.rs`) run against every backend (SQLite, and PostgreSQL
//! started by the testkit), what is SQLite's own: retention options, orphan artifact files, migrations from every
//! earlier schema version, a newer schema, bad directories, a failed artifact write and a writer killed
//! mid-batch; and what is PostgreSQL's own (`store/postgres.rs`): replicas ingesting overlapping batches at
//! once, a newer schema, the database going away and coming back.

#![allow(clippy::unwrap_used)]

#[path = "store/helpers.rs"]
mod helpers;
#[path = "store/migrations.rs"]
mod migrations;
#[path = "store/postgres.rs"]
mod pg;
#[path = "store/suite.rs"]
mod suite;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use helpers::{
    CHILD_BASE_MS, CHILD_BATCH, CHILD_DIR, CHILD_START, DAY, MIN, T0, artifact_bytes, brute_uptime, ingest, result,
    three_days, with_artifact,
};
use probenet_checks::outcome::State;
use probenet_checks::wire::RunResult;
use probenet_exporters::store::schema::{CURRENT_VERSION, migrate};
use probenet_exporters::store::{
    LedgerHour, LedgerMs, ResultQuery, SqliteStore, Store, StoreError, StoreOptions, UptimeQuery,
};
use rusqlite::Connection;

fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(dir, StoreOptions::default()).unwrap()
}

/// The suite against SQLite, in a temporary directory.
mod sqlite {
    use super::suite::{Backend, store_suite};
    use super::{SqliteStore, Store};

    struct Sqlite {
        dir: tempfile::TempDir,
        store: Option<SqliteStore>,
    }

    impl Backend for Sqlite {
        fn store(&self) -> &dyn Store {
            self.store.as_ref().unwrap()
        }

        fn reopen(&mut self) {
            self.store = None; // closed before it opens again
            self.store = Some(super::open(self.dir.path()));
        }
    }

    fn sqlite() -> Option<Sqlite> {
        let dir = tempfile::tempdir().unwrap();
        let store = Some(super::open(dir.path()));
        Some(Sqlite { dir, store })
    }

    store_suite!(sqlite);
}

/// The suite against PostgreSQL: a server of its own per test (testkit), a store on a fresh database;
/// `reopen` opens a new store on the same database, as a restarted replica does.
mod postgres {
    use probenet_exporters::store::{PostgresStore, StoreOptions};
    use probenet_pg::Tls;
    use probenet_testkit::postgres::Postgres;

    use super::Store;
    use super::suite::{Backend, store_suite};

    struct Pg {
        // Dropped first: the store closes before its server stops.
        store: Option<PostgresStore>,
        url: String,
        _server: Postgres,
    }

    impl Backend for Pg {
        fn store(&self) -> &dyn Store {
            self.store.as_ref().unwrap()
        }

        fn reopen(&mut self) {
            self.store = None;
            self.store = Some(PostgresStore::open(&self.url, Tls::Disabled, StoreOptions::default()).unwrap());
        }
    }

    fn postgres() -> Option<Pg> {
        let server = Postgres::start_or_skip("the store suite against PostgreSQL")?;
        let url = server.create_database("store_suite");
        let store = Some(PostgresStore::open(&url, Tls::Disabled, StoreOptions::default()).unwrap());
        Some(Pg { store, url, _server: server })
    }

    store_suite!(postgres);
}

#[test]
fn without_minute_rollups_hour_aligned_windows_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { minute_retention: Duration::from_secs(86_400), ..StoreOptions::default() };
    let store = SqliteStore::open(dir.path(), options).unwrap();
    let results = three_days();
    for chunk in results.chunks(1000) {
        ingest(&store, chunk).unwrap();
    }
    let pruned = store.prune(T0 + 10 * DAY).unwrap();
    assert_eq!(pruned.results, results.len());
    assert!(pruned.rollups >= results.len(), "every minute row went: {pruned:?}");
    let hour = 3_600_000;
    for (from, to) in [(T0 + 5 * hour, T0 + 2 * DAY + 7 * hour), (T0 + 17 * hour + 5, T0 + 40 * hour - 3)] {
        let got = store.uptime(&UptimeQuery { from_ms: from, to_ms: to, ..UptimeQuery::default() }).unwrap();
        // A partial hour counts whole when it starts inside the window.
        let ceil = |at: i64| (at + hour - 1) / hour * hour;
        let (from, to) = (ceil(from), ceil(to));
        for u in got {
            let brute = brute_uptime(&results, &u.check, &u.region, from, to);
            assert_eq!((u.runs, u.down), (brute.0, brute.3), "{}/{} over {from}..{to}", u.check, u.region);
        }
    }
}

#[test]
fn prune_removes_orphan_artifact_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = with_artifact(result("api", "eu", T0, State::Down, 0.1));
    let new = with_artifact(result("api", "eu", T0 + 8 * DAY, State::Up, 0.1));
    ingest(&store, &[old, new]).unwrap();
    let orphan_dir = store.artifact_dir().join("99999");
    std::fs::create_dir_all(&orphan_dir).unwrap();
    std::fs::write(orphan_dir.join("1-1-1-0-x.png"), b"left by a crash").unwrap();

    let pruned = store.prune(T0 + 8 * DAY).unwrap();
    assert_eq!((pruned.results, pruned.artifacts, pruned.orphans), (1, 1, 1));
    assert!(!orphan_dir.exists());
    let left = store.results(&ResultQuery::default()).unwrap();
    assert!(store.artifact(left[0].outcome.artifacts[0].path.as_deref().unwrap()).unwrap().is_some());
}

#[test]
fn migrations_run_from_every_earlier_version() {
    let results = three_days().into_iter().filter(|r| r.planned_at_ms < T0 + DAY + 3_600_000).collect::<Vec<_>>();
    for version in 0..CURRENT_VERSION {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut conn = Connection::open(dir.path().join("probenet.db")).unwrap();
            // `fill` writes as versions 1 to 3 did; version 4's rows are what its migration made of version 3's.
            let filled = version.min(3);
            assert_eq!(migrate(&mut conn, filled).unwrap(), 0);
            if version >= 1 {
                migrations::fill(&mut conn, filled, &results);
            }
            migrate(&mut conn, version).unwrap();
        }
        let store = open(dir.path());
        let conn = Connection::open(dir.path().join("probenet.db")).unwrap();
        let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(found, CURRENT_VERSION);
        let expected = if version >= 1 { results.as_slice() } else { &[] };
        for (from, to) in [(T0, T0 + 2 * DAY), (T0 + 7 * MIN + 1, T0 + DAY + 59 * MIN)] {
            let got = store.uptime(&UptimeQuery { from_ms: from, to_ms: to, ..UptimeQuery::default() }).unwrap();
            let runs: i64 = got.iter().map(|u| u.runs).sum();
            let downs: i64 = got.iter().map(|u| u.down).sum();
            let brute: Vec<_> = ["api", "web"]
                .iter()
                .flat_map(|c| ["eu", "us"].map(|r| brute_uptime(expected, c, r, from, to)))
                .collect();
            assert_eq!(runs, brute.iter().map(|b| b.0).sum::<i64>(), "from version {version}");
            assert_eq!(downs, brute.iter().map(|b| b.3).sum::<i64>(), "from version {version}");
        }
        if version >= 1 {
            let latest = expected.iter().rfind(|r| r.check == "web" && r.region == "us").unwrap();
            assert_eq!(&store.latest("web", "us").unwrap().unwrap(), latest);
            let failures = expected.iter().filter(|r| r.outcome.state == State::Down).count();
            let incident_runs: i64 =
                store.incidents(None, None, T0, T0 + 2 * DAY).unwrap().iter().map(|i| i.runs).sum();
            assert_eq!(incident_runs as usize, failures, "incidents rebuilt from raw results");
            assert_eq!(store.pairs().unwrap().len(), 4);
        }
        // The migrated store keeps ingesting.
        let next = result("api", "eu", T0 + 2 * DAY, State::Up, 0.1);
        assert_eq!(ingest(&store, &[next]).unwrap().accepted, 1);
        // ... and keeps ledger hours (version 5).
        let hour = LedgerHour {
            check: "api".into(),
            region: Some("eu".into()),
            start_ms: T0,
            policy: 1,
            ms: LedgerMs { up_ms: 3_600_000, ..LedgerMs::default() },
        };
        store.write_ledger_hours(std::slice::from_ref(&hour)).unwrap();
        let sums = store.ledger_sums(None, T0, T0 + DAY).unwrap();
        assert_eq!((sums.len(), sums[0].ms), (1, hour.ms), "from version {version}");
        assert!(store.integrity_check().unwrap().is_empty());
    }
}

#[test]
fn a_newer_schema_and_bad_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    Connection::open(dir.path().join("probenet.db")).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let error = SqliteStore::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::NewerSchema { found: 99, known: CURRENT_VERSION }), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "the database has schema version 99, newer than this build knows ({CURRENT_VERSION}): it was written by \
             a newer probenet; refusing to downgrade; run a newer probenet, or restore the backup taken before the \
             upgrade"
        )
    );
    // Refused before anything is written: the newer build still finds its schema.
    let conn = Connection::open(dir.path().join("probenet.db")).unwrap();
    assert_eq!(conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0)).unwrap(), 99);
    drop(conn);

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let error = SqliteStore::open(&file, StoreOptions::default()).unwrap_err();
    assert!(error.to_string().starts_with("creating the store directory"), "{error}");

    let garbage = dir.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join("probenet.db"), vec![0x5a; 8192]).unwrap();
    let error = SqliteStore::open(&garbage, StoreOptions::default()).unwrap_err();
    assert!(error.to_string().contains("not a database"), "{error}");
}

#[test]
fn a_failed_ingest_stores_nothing_and_says_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let good = result("api", "eu", T0, State::Up, 0.1);
    ingest(&store, std::slice::from_ref(&good)).unwrap();
    // The artifact's day directory is a file: the write fails after the batch's first rows are in.
    std::fs::write(store.artifact_dir().join((T0 / DAY + 1).to_string()), b"in the way").unwrap();
    let batch = vec![
        result("api", "eu", T0 + MIN, State::Up, 0.1),
        with_artifact(result("api", "us", T0 + DAY, State::Down, 0.1)),
    ];
    let error = ingest(&store, &batch).unwrap_err();
    assert!(error.to_string().starts_with("writing artifact"), "{error}");
    let mut stored = good.clone();
    stored.outcome.log.clear(); // a run that was up is stored without its log lines
    assert_eq!(store.results(&ResultQuery::default()).unwrap(), std::slice::from_ref(&stored));
    let uptime = store.uptime(&UptimeQuery { from_ms: 0, to_ms: T0 + 2 * DAY, ..UptimeQuery::default() }).unwrap();
    assert_eq!(uptime.iter().map(|u| u.runs).sum::<i64>(), 1);
    assert!(store.incidents(None, None, 0, T0 + 2 * DAY).unwrap().is_empty());
    // Once the obstacle is gone, the same batch goes in whole.
    std::fs::remove_file(store.artifact_dir().join((T0 / DAY + 1).to_string())).unwrap();
    assert_eq!(ingest(&store, &batch).unwrap().accepted, 2);
    assert_eq!(store.totals().accepted, 3);
}

/// Not a test on its own: the writer process of `a_killed_writer_loses_no_acknowledged_result`.
#[test]
fn crash_writer_child() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let start = std::env::var(CHILD_START).unwrap().parse().unwrap();
        helpers::run_child(std::path::Path::new(&dir), start);
    }
}

#[test]
fn a_killed_writer_loses_no_acknowledged_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    let mut next = 0;
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_writer_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_START, next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(id) = line.strip_prefix("ack ").and_then(|id| id.parse::<i64>().ok()) {
                    let _ = send.send(id);
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut this_round = 0;
        while this_round < 4 + round {
            let left = deadline.saturating_duration_since(Instant::now());
            let id =
                receive.recv_timeout(left).unwrap_or_else(|_| panic!("the writer acknowledged {this_round} batches"));
            acked.push(id);
            this_round += 1;
        }
        std::thread::sleep(Duration::from_millis(3 * round as u64));
        child.kill().unwrap(); // SIGKILL, mid-batch: the child ingests without pause
        child.wait().unwrap();
        acked.extend(receive.try_iter());
        next = acked.iter().max().unwrap() + 1 + 1000;

        let conn = Connection::open(dir.path().join("probenet.db")).unwrap();
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(integrity, "ok");
        for batch in &acked {
            let from = CHILD_BASE_MS + batch * 1000;
            let count: i64 = conn
                .query_row(
                    "SELECT count(*) FROM results WHERE planned_at_ms >= ?1 AND planned_at_ms < ?2",
                    [from, from + 1000],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(count, CHILD_BATCH, "batch {batch} was acknowledged");
        }
        let raw: i64 = conn.query_row("SELECT count(*) FROM results", [], |row| row.get(0)).unwrap();
        assert_eq!(raw % CHILD_BATCH, 0, "only whole batches");
        for table in ["rollup_minute", "rollup_hour", "rollup_day", "pairs"] {
            let runs: i64 = conn.query_row(&format!("SELECT sum(runs) FROM {table}"), [], |row| row.get(0)).unwrap();
            assert_eq!(runs, raw, "{table} agrees with the raw rows");
        }
        let paths: Vec<String> = conn
            .prepare("SELECT path FROM artifacts")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let store = open(dir.path());
        for path in &paths {
            let planned: i64 = path.split('-').nth(2).unwrap().parse().unwrap();
            assert_eq!(store.artifact(path).unwrap(), Some(artifact_bytes(planned)));
        }
        // Ingest continues; a replay of an acknowledged batch is all duplicates.
        let last = *acked.iter().max().unwrap();
        let replay: Vec<RunResult> = (0..CHILD_BATCH).map(|i| helpers::child_result(last, i)).collect();
        assert_eq!(ingest(&store, &replay).unwrap().duplicates, CHILD_BATCH as usize);
        store.prune(CHILD_BASE_MS).unwrap();
        assert!(store.integrity_check().unwrap().is_empty());
    }
}
