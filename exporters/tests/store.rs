//! The embedded store: round trips, exact uptime over any window, latency, incidents, retention, migrations
//! from every earlier schema version, bad directories, and a writer killed mid-batch.

#![allow(clippy::unwrap_used)]

#[path = "store/helpers.rs"]
mod helpers;
#[path = "store/migrations.rs"]
mod migrations;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use helpers::{
    CHILD_BASE_MS, CHILD_BATCH, CHILD_DIR, CHILD_START, Lcg, artifact_bytes, brute_uptime, result, with_artifact,
};
use probenet_checks::outcome::State;
use probenet_checks::wire::RunResult;
use probenet_exporters::store::codec::HISTOGRAM_RELATIVE_ERROR;
use probenet_exporters::store::schema::{CURRENT_VERSION, migrate};
use probenet_exporters::store::{ResultQuery, Store, StoreError, StoreOptions, UptimeQuery};
use rusqlite::Connection;

const T0: i64 = 1_750_000_000_000 - 1_750_000_000_000 % 86_400_000; // a UTC midnight
const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

/// Three days at one run a minute for two checks in two regions, with a deterministic mix of states.
fn three_days() -> Vec<RunResult> {
    let mut rng = Lcg(7);
    let mut out = Vec::new();
    for minute in 0..3 * 1440 {
        for (check, region) in [("api", "eu"), ("api", "us"), ("web", "eu"), ("web", "us")] {
            let state = match rng.below(20) {
                0 => State::Down,
                1 => State::Degraded,
                _ => State::Up,
            };
            let offset = rng.below(59_000) as i64;
            out.push(result(check, region, T0 + minute * MIN + offset, state, 0.01 + rng.below(500) as f64 / 1000.0));
        }
    }
    out
}

#[test]
fn results_round_trip_and_ingest_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let batch = vec![
        result("api", "eu", T0, State::Up, 0.1),
        with_artifact(result("api", "eu", T0 + MIN, State::Down, 0.2)),
        result("api", "us", T0, State::Degraded, 0.3),
    ];
    assert_eq!(store.ingest(&batch).unwrap().accepted, 3);
    let again = store.ingest(&batch).unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 3));
    assert_eq!((store.totals().accepted, store.totals().duplicates), (3, 3));

    let latest = store.latest("api", "eu").unwrap().unwrap();
    let path = latest.outcome.artifacts[0].path.clone().unwrap();
    let mut expected = batch[1].clone();
    expected.outcome.artifacts[0].data.clear();
    expected.outcome.artifacts[0].path = Some(path.clone());
    assert_eq!(latest, expected);
    let file = store.artifact(&path).unwrap();
    assert_eq!(std::fs::read(file).unwrap(), artifact_bytes(T0 + MIN));
    assert_eq!(store.artifact("../probenet.db"), None);
    assert_eq!(store.artifact(&format!("{path}/../../../probenet.db")), None);
    assert_eq!(store.latest("api", "nowhere").unwrap(), None);

    let failures = store.results(&ResultQuery { only_failures: true, limit: 10, ..ResultQuery::default() }).unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].planned_at_ms, T0 + MIN);
    let all = store.results(&ResultQuery { check: Some("api".into()), ..ResultQuery::default() }).unwrap();
    assert_eq!(all.iter().map(|r| r.planned_at_ms).collect::<Vec<_>>(), [T0 + MIN, T0, T0]);
    // A run that was up is stored without its log lines; degraded and failed runs keep theirs.
    let mut up = batch[0].clone();
    up.outcome.log.clear();
    assert!(all.contains(&up) && all.contains(&batch[2]), "{all:?}");
    let pairs = store.pairs().unwrap();
    assert_eq!(
        pairs.iter().map(|p| (p.check.as_str(), p.region.as_str())).collect::<Vec<_>>(),
        [("api", "eu"), ("api", "us")]
    );

    // Everything survives a reopen.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.latest("api", "eu").unwrap().unwrap(), expected);
    assert_eq!(store.ingest(&batch).unwrap().duplicates, 3);
}

#[test]
fn uptime_is_exact_over_any_window_and_buckets_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let results = three_days();
    for chunk in results.chunks(500) {
        store.ingest(chunk).unwrap();
    }
    let mut rng = Lcg(11);
    let mut windows = vec![(T0, T0 + 3 * DAY), (T0 - DAY, T0 + 10 * DAY), (T0 + 5, T0 + DAY + 7 * 3_600_000 + 123)];
    for _ in 0..40 {
        let from = T0 + rng.below(3 * DAY as u64) as i64;
        windows.push((from, from + rng.below(2 * DAY as u64) as i64 + 1));
    }
    let check_all = |store: &Store, windows: &[(i64, i64)], minute_aligned_only: bool| {
        for &(from, to) in windows {
            let (from, to) = if minute_aligned_only { (from - from % MIN, to - to % MIN) } else { (from, to) };
            let got = store.uptime(&UptimeQuery { from_ms: from, to_ms: to, ..UptimeQuery::default() }).unwrap();
            for (check, region) in [("api", "eu"), ("api", "us"), ("web", "eu"), ("web", "us")] {
                let (runs, up, degraded, down) = brute_uptime(&results, check, region, from, to);
                let row = got.iter().find(|u| u.check == check && u.region == region);
                let seen = row.map_or((0, 0, 0, 0), |u| (u.runs, u.up, u.degraded, u.down));
                assert_eq!(seen, (runs, up, degraded, down), "{check}/{region} over {from}..{to}");
            }
            let one = store
                .uptime(&UptimeQuery { check: Some("web".into()), region: Some("us".into()), from_ms: from, to_ms: to })
                .unwrap();
            assert!(one.len() <= 1 && one.iter().all(|u| u.check == "web" && u.region == "us"));
        }
    };
    check_all(&store, &windows, false);

    let buckets = store.uptime_buckets("api", None, T0, T0 + 3 * DAY, DAY).unwrap();
    assert_eq!(buckets.len(), 3);
    for (i, bucket) in buckets.iter().enumerate() {
        let start = T0 + i as i64 * DAY;
        let eu = brute_uptime(&results, "api", "eu", start, start + DAY);
        let us = brute_uptime(&results, "api", "us", start, start + DAY);
        assert_eq!((bucket.runs, bucket.down), (eu.0 + us.0, eu.3 + us.3));
        assert!(bucket.avg_seconds.unwrap() > 0.0);
    }
    let odd = store.uptime_buckets("web", Some("eu"), T0 + 17 * MIN + 5, T0 + DAY, 7 * MIN).unwrap();
    assert_eq!(
        odd.iter().map(|b| b.runs).sum::<i64>(),
        brute_uptime(&results, "web", "eu", T0 + 17 * MIN + 5, T0 + DAY).0
    );

    // Once raw results are pruned, minute-aligned windows are still exact.
    let pruned = store.prune(T0 + 3 * DAY + 7 * DAY).unwrap();
    assert_eq!(pruned.results, results.len());
    assert!(store.results(&ResultQuery::default()).unwrap().is_empty());
    check_all(&store, &windows, true);
}

#[test]
fn uptime_stays_exact_when_results_arrive_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Six hours across midnight, in a random order: late rows inside a day and across days.
    let mut results: Vec<RunResult> = three_days()
        .into_iter()
        .filter(|r| r.planned_at_ms >= T0 + 21 * 60 * MIN && r.planned_at_ms < T0 + 27 * 60 * MIN)
        .collect();
    let mut rng = Lcg(5);
    for i in (1..results.len()).rev() {
        results.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for chunk in results.chunks(97) {
        store.ingest(chunk).unwrap();
    }
    let mut windows = vec![(T0, T0 + 3 * DAY), (T0 + DAY, T0 + DAY + 1), (T0 + 23 * 60 * MIN + 7, T0 + DAY + 61 * MIN)];
    for _ in 0..30 {
        let from = T0 + 21 * 60 * MIN + rng.below(6 * 60 * MIN as u64) as i64;
        windows.push((from, from + rng.below(3 * 60 * MIN as u64) as i64 + 1));
    }
    for (from, to) in windows {
        let got = store.uptime(&UptimeQuery { from_ms: from, to_ms: to, ..UptimeQuery::default() }).unwrap();
        for (check, region) in [("api", "eu"), ("api", "us"), ("web", "eu"), ("web", "us")] {
            let (runs, up, degraded, down) = brute_uptime(&results, check, region, from, to);
            let row = got.iter().find(|u| u.check == check && u.region == region);
            let seen = row.map_or((0, 0, 0, 0), |u| (u.runs, u.up, u.degraded, u.down));
            assert_eq!(seen, (runs, up, degraded, down), "{check}/{region} over {from}..{to}");
        }
    }
    // A reopened store (no cached rows) agrees too.
    drop(store);
    let store = open(dir.path());
    let from = T0 + 22 * 60 * MIN + 30 * MIN + 17;
    let got = store.uptime(&UptimeQuery { from_ms: from, to_ms: T0 + 2 * DAY, ..UptimeQuery::default() }).unwrap();
    assert_eq!(
        got.iter().map(|u| u.runs).sum::<i64>(),
        results.iter().filter(|r| r.planned_at_ms >= from).count() as i64
    );
}

#[test]
fn without_minute_rollups_hour_aligned_windows_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { minute_retention: Duration::from_secs(86_400), ..StoreOptions::default() };
    let store = Store::open(dir.path(), options).unwrap();
    let results = three_days();
    for chunk in results.chunks(1000) {
        store.ingest(chunk).unwrap();
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
fn latency_percentiles_are_within_the_histogram_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let results: Vec<RunResult> =
        (0..1000).map(|i| result("api", "eu", T0 + i * 30_000, State::Up, (i + 1) as f64 / 1000.0)).collect();
    store.ingest(&results).unwrap();
    store.ingest(&[result("api", "us", T0, State::Up, 2.0)]).unwrap();
    let latency = store.latency("api", None, T0 + 1, T0 + 1000 * 30_000).unwrap();
    assert_eq!(latency.len(), 1, "the us run is outside the window");
    let eu = &latency[0];
    assert_eq!((eu.region.as_str(), eu.runs), ("eu", 999));
    for (estimate, exact) in [(eu.p50, 0.501), (eu.p90, 0.900), (eu.p95, 0.950), (eu.p99, 0.990)] {
        let estimate = estimate.unwrap();
        assert!((estimate - exact).abs() / exact <= HISTOGRAM_RELATIVE_ERROR + 0.002, "{estimate} vs {exact}");
    }
    let exact_avg = (2..=1000).sum::<i64>() as f64 / 1000.0 / 999.0;
    assert!((eu.avg.unwrap() - exact_avg).abs() < 1e-9);
    assert!((eu.phases["connect"] - exact_avg / 4.0).abs() < 1e-9);
    let series = store.latency_series("api", Some("eu"), T0, T0 + 1000 * 30_000, 3_600_000).unwrap();
    assert_eq!(series.iter().map(|p| p.runs).sum::<i64>(), 1000);
    assert!(series.windows(2).all(|w| w[0].p50 <= w[1].p50), "durations grow with time");
    assert!(store.latency("nothing", None, T0, T0 + DAY).unwrap().is_empty());
}

#[test]
fn incidents_follow_failures_in_and_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = |minute: i64, state| result("api", "eu", T0 + minute * MIN, state, 0.1);
    store.ingest(&[run(0, State::Up), run(1, State::Down), run(2, State::Down)]).unwrap();
    store.ingest(&[run(3, State::Degraded), run(4, State::Down)]).unwrap();
    store.ingest(&[run(5, State::Down)]).unwrap();
    let incidents = store.incidents(Some("api"), None, T0, T0 + DAY).unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert_eq!((incidents[0].start_ms, incidents[0].end_ms, incidents[0].runs), (T0 + 4 * MIN, None, 2));
    assert_eq!((incidents[1].start_ms, incidents[1].end_ms, incidents[1].runs), (T0 + MIN, Some(T0 + 3 * MIN), 2));
    assert_eq!(incidents[1].reason.as_deref(), Some("status"));
    assert!(incidents[1].error.as_deref().unwrap().contains("503"));

    // A late success splits the closed incident; a late failure joins the open one to an earlier failure.
    store.ingest(&[result("api", "eu", T0 + MIN + 30_000, State::Up, 0.1)]).unwrap();
    store.ingest(&[result("api", "eu", T0 + 3 * MIN + 30_000, State::Down, 0.1)]).unwrap();
    let incidents = store.incidents(None, Some("eu"), T0, T0 + DAY).unwrap();
    let spans: Vec<_> = incidents.iter().map(|i| (i.start_ms, i.end_ms, i.runs)).collect();
    assert_eq!(
        spans,
        [
            (T0 + 3 * MIN + 30_000, None, 3),
            (T0 + 2 * MIN, Some(T0 + 3 * MIN), 1),
            (T0 + MIN, Some(T0 + MIN + 30_000), 1)
        ]
    );
    // After a reopen the open incident is extended, then closed.
    drop(store);
    let store = open(dir.path());
    store.ingest(&[run(6, State::Down), run(7, State::Up)]).unwrap();
    let latest = &store.incidents(Some("api"), Some("eu"), T0 + 6 * MIN, T0 + DAY).unwrap()[0];
    assert_eq!((latest.start_ms, latest.end_ms, latest.runs), (T0 + 3 * MIN + 30_000, Some(T0 + 7 * MIN), 4));
    assert!(store.incidents(Some("api"), None, T0 + 8 * MIN, T0 + DAY).unwrap().is_empty());
}

#[test]
fn prune_removes_old_rows_artifacts_and_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = with_artifact(result("api", "eu", T0, State::Down, 0.1));
    let new = with_artifact(result("api", "eu", T0 + 8 * DAY, State::Up, 0.1));
    store.ingest(&[old, new]).unwrap();
    let orphan_dir = store.artifact_dir().join("99999");
    std::fs::create_dir_all(&orphan_dir).unwrap();
    std::fs::write(orphan_dir.join("1-1-1-0-x.png"), b"left by a crash").unwrap();

    let pruned = store.prune(T0 + 8 * DAY).unwrap();
    assert_eq!((pruned.results, pruned.artifacts, pruned.orphans), (1, 1, 1));
    assert!(!orphan_dir.exists());
    let left = store.results(&ResultQuery::default()).unwrap();
    assert_eq!(left.len(), 1);
    assert!(store.artifact(left[0].outcome.artifacts[0].path.as_deref().unwrap()).is_some());
    // Rollups outlive raw results: the old day still counts.
    let uptime = store.uptime(&UptimeQuery { from_ms: T0, to_ms: T0 + DAY, ..UptimeQuery::default() }).unwrap();
    assert_eq!((uptime[0].runs, uptime[0].down), (1, 1));
    // ... until the rollup retention passes (the closed-or-open incident with it only when closed).
    let pruned = store.prune(T0 + 402 * DAY).unwrap();
    assert!(pruned.rollups >= 3 && pruned.results == 1, "{pruned:?}");
    assert!(store.uptime(&UptimeQuery { from_ms: T0, to_ms: T0 + DAY, ..UptimeQuery::default() }).unwrap().is_empty());
}

#[test]
fn migrations_run_from_every_earlier_version() {
    let results = three_days().into_iter().filter(|r| r.planned_at_ms < T0 + DAY + 3_600_000).collect::<Vec<_>>();
    for version in 0..CURRENT_VERSION {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut conn = Connection::open(dir.path().join("probenet.db")).unwrap();
            assert_eq!(migrate(&mut conn, version).unwrap(), 0);
            if version >= 1 {
                migrations::fill(&mut conn, version, &results);
            }
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
        assert_eq!(store.ingest(&[next]).unwrap().accepted, 1);
        assert!(store.integrity_check().unwrap().is_empty());
    }
}

#[test]
fn a_newer_schema_and_bad_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    Connection::open(dir.path().join("probenet.db")).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let error = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::NewerSchema { found: 99, .. }), "{error}");
    assert!(error.to_string().contains("refusing to downgrade"), "{error}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let error = Store::open(&file, StoreOptions::default()).unwrap_err();
    assert!(error.to_string().starts_with("creating the store directory"), "{error}");

    let garbage = dir.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join("probenet.db"), vec![0x5a; 8192]).unwrap();
    let error = Store::open(&garbage, StoreOptions::default()).unwrap_err();
    assert!(error.to_string().contains("not a database"), "{error}");
}

#[test]
fn a_failed_ingest_stores_nothing_and_says_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let good = result("api", "eu", T0, State::Up, 0.1);
    store.ingest(std::slice::from_ref(&good)).unwrap();
    // The artifact's day directory is a file: the write fails after the batch's first rows are in.
    std::fs::write(store.artifact_dir().join((T0 / DAY + 1).to_string()), b"in the way").unwrap();
    let batch = vec![
        result("api", "eu", T0 + MIN, State::Up, 0.1),
        with_artifact(result("api", "us", T0 + DAY, State::Down, 0.1)),
    ];
    let error = store.ingest(&batch).unwrap_err();
    assert!(error.to_string().starts_with("writing artifact"), "{error}");
    let mut stored = good.clone();
    stored.outcome.log.clear(); // a run that was up is stored without its log lines
    assert_eq!(store.results(&ResultQuery::default()).unwrap(), std::slice::from_ref(&stored));
    let uptime = store.uptime(&UptimeQuery { from_ms: 0, to_ms: T0 + 2 * DAY, ..UptimeQuery::default() }).unwrap();
    assert_eq!(uptime.iter().map(|u| u.runs).sum::<i64>(), 1);
    assert!(store.incidents(None, None, 0, T0 + 2 * DAY).unwrap().is_empty());
    // Once the obstacle is gone, the same batch goes in whole.
    std::fs::remove_file(store.artifact_dir().join((T0 / DAY + 1).to_string())).unwrap();
    assert_eq!(store.ingest(&batch).unwrap().accepted, 2);
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
            assert_eq!(std::fs::read(store.artifact(path).unwrap()).unwrap(), artifact_bytes(planned));
        }
        // Ingest continues; a replay of an acknowledged batch is all duplicates.
        let last = *acked.iter().max().unwrap();
        let replay: Vec<RunResult> = (0..CHILD_BATCH).map(|i| helpers::child_result(last, i)).collect();
        assert_eq!(store.ingest(&replay).unwrap().duplicates, CHILD_BATCH as usize);
        store.prune(CHILD_BASE_MS).unwrap();
        assert!(store.integrity_check().unwrap().is_empty());
    }
}

#[test]
fn overview_queries_agree_with_the_per_pair_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let results = three_days();
    for chunk in results.chunks(500) {
        store.ingest(chunk).unwrap();
    }
    // The latest run of every pair, as `latest` answers it one pair at a time.
    let latest = store.latest_runs().unwrap();
    assert_eq!(latest.len(), 4);
    for run in &latest {
        let one = store.latest(&run.check, &run.region).unwrap().unwrap();
        assert_eq!(run.planned_at_ms, one.planned_at_ms);
        assert_eq!(run.seconds, one.outcome.duration_seconds);
        let state = match one.outcome.state {
            State::Up => 0,
            State::Degraded => 1,
            State::Down => 2,
        };
        assert_eq!(run.state, state, "{run:?}");
    }
    // Hourly medians of every pair over a day, as `latency_series` answers them one pair at a time.
    let (from, to) = (T0 + DAY + 7 * 60 * MIN, T0 + 2 * DAY + 7 * 60 * MIN);
    let hours = store.hourly_latency(from, to).unwrap();
    assert_eq!(hours.len(), 4 * 24);
    for (check, region) in [("api", "eu"), ("web", "us")] {
        let series = store.latency_series(check, Some(region), from, to, 60 * MIN).unwrap();
        let mine: Vec<(i64, i64, Option<f64>)> = hours
            .iter()
            .filter(|hour| hour.check == check && hour.region == region)
            .map(|hour| (hour.start_ms, hour.runs, hour.p50))
            .collect();
        let theirs: Vec<(i64, i64, Option<f64>)> =
            series.iter().map(|point| (point.start_ms, point.runs, point.p50)).collect();
        let mut mine = mine;
        mine.sort_by_key(|hour| hour.0);
        assert_eq!(mine, theirs, "{check}/{region}");
    }
}
