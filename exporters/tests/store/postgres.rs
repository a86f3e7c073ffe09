//! What only the PostgreSQL store has: several replicas ingesting overlapping batches into one database at
//! once, a schema written by a newer build, one written by the previous build (upgraded), the database going
//! away and coming back under a live store, and results read in the order they were stored (what the leader's
//! alert engine reads).
//! Each test starts a server of its own (`probenet_testkit::postgres`) and uses its `postgres` database, so
//! `psql` can look at the tables directly.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use probenet_checks::outcome::State;
use probenet_checks::wire::RunResult;
use probenet_exporters::store::{
    LedgerHour, LedgerMs, PostgresStore, ResultQuery, Store, StoreError, StoreOptions, UptimeQuery,
};
use probenet_pg::Tls;
use probenet_testkit::postgres::Postgres;

use super::helpers::{DAY, Lcg, MIN, T0, brute_uptime, ingest, result};

fn open(url: &str) -> PostgresStore {
    PostgresStore::open(url, Tls::Disabled, StoreOptions::default()).unwrap()
}

/// One number out of `psql`.
fn number(pg: &Postgres, sql: &str) -> i64 {
    let text = pg.psql(sql);
    text.parse().unwrap_or_else(|_| panic!("{sql}: {text:?}"))
}

/// Incidents per pair: (start, end while closed, failed runs).
type IncidentsByPair = BTreeMap<(String, String), Vec<(i64, Option<i64>, i64)>>;
/// What one replica's thread saw: accepted, duplicates, and the run ids it stored.
type ReplicaTotals = (usize, usize, HashSet<(String, String, i64)>);

fn brute_incidents(results: &[RunResult]) -> IncidentsByPair {
    let mut by_pair: BTreeMap<(String, String), Vec<&RunResult>> = BTreeMap::new();
    for result in results {
        by_pair.entry((result.check.clone(), result.region.clone())).or_default().push(result);
    }
    let mut out = BTreeMap::new();
    for (pair, mut runs) in by_pair {
        runs.sort_by_key(|run| run.planned_at_ms);
        let mut spans: Vec<(i64, Option<i64>, i64)> = Vec::new();
        let mut open = false;
        for run in runs {
            match (open, run.outcome.state == State::Down) {
                (false, true) => {
                    spans.push((run.planned_at_ms, None, 1));
                    open = true;
                }
                (true, true) => spans.last_mut().unwrap().2 += 1,
                (true, false) => {
                    spans.last_mut().unwrap().1 = Some(run.planned_at_ms);
                    open = false;
                }
                (false, false) => {}
            }
        }
        out.insert(pair, spans);
    }
    out
}

/// Two days of runs of 12 checks in 3 regions, one every 10 minutes, failures in streaks.
fn workload() -> Vec<RunResult> {
    let mut rng = Lcg(11);
    let mut out = Vec::new();
    for step in 0..2 * 144 {
        for check in 0..12 {
            for region in ["eu", "us", "ap"] {
                let state = match rng.below(10) {
                    0..=1 => State::Down,
                    2 => State::Degraded,
                    _ => State::Up,
                };
                let at = T0 + step * 10 * MIN + rng.below(9 * MIN as u64) as i64;
                out.push(result(&format!("c{check}"), region, at, state, 0.01 + rng.below(900) as f64 / 1000.0));
            }
        }
    }
    out
}

#[test]
fn three_replicas_ingesting_overlapping_batches_store_each_result_once() {
    let Some(pg) = Postgres::start_or_skip("three_replicas_ingesting_overlapping_batches_store_each_result_once")
    else {
        return;
    };
    let url = pg.url();
    let stores: Vec<PostgresStore> = (0..3).map(|_| open(&url)).collect();
    let results = workload();
    // Batches of up to 150 in time order, with a few late results moved into later batches; every batch goes to
    // two of the three replicas (a prober re-sending to another one), each replica in its own order.
    let mut rng = Lcg(3);
    let mut batches: Vec<Vec<RunResult>> = results.chunks(150).map(<[RunResult]>::to_vec).collect();
    for _ in 0..batches.len() / 3 {
        let from = rng.below(batches.len() as u64 - 1) as usize;
        let to = (from + 1 + rng.below(3) as usize).min(batches.len() - 1);
        if let Some(late) = batches[from].pop() {
            batches[to].push(late);
        }
    }
    let mut plans: Vec<Vec<usize>> = vec![Vec::new(); 3];
    for index in 0..batches.len() {
        plans[index % 3].push(index);
        plans[(index + 1) % 3].push(index);
    }
    for (replica, plan) in plans.iter_mut().enumerate() {
        // Replica 1 works back to front now and then: far more overlap in time than a real re-send.
        if replica == 1 {
            for i in (1..plan.len()).step_by(4) {
                plan.swap(i - 1, i);
            }
        }
    }
    let barrier = Arc::new(Barrier::new(3));
    let sent: usize = plans.iter().map(|plan| plan.iter().map(|&i| batches[i].len()).sum::<usize>()).sum();
    let totals: Vec<ReplicaTotals> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .zip(&plans)
            .map(|(store, plan)| {
                let (barrier, batches) = (barrier.clone(), &batches);
                scope.spawn(move || {
                    barrier.wait();
                    let (mut accepted, mut duplicates, mut fresh_ids) = (0, 0, HashSet::new());
                    for &index in plan {
                        let (done, fresh) = store.ingest(batches[index].clone()).unwrap();
                        assert_eq!(fresh.len(), done.accepted);
                        accepted += done.accepted;
                        duplicates += done.duplicates;
                        fresh_ids.extend(fresh.into_iter().map(|r| (r.check, r.region, r.planned_at_ms)));
                    }
                    (accepted, duplicates, fresh_ids)
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });

    // Each result stored exactly once: the accepted counts add up to the distinct results, no result was
    // "stored now" by two replicas, and everything else was a duplicate.
    let accepted: usize = totals.iter().map(|t| t.0).sum();
    let duplicates: usize = totals.iter().map(|t| t.1).sum();
    assert_eq!(accepted, results.len());
    assert_eq!(accepted + duplicates, sent);
    let mut union = HashSet::new();
    for (_, _, fresh) in &totals {
        for id in fresh {
            assert!(union.insert(id.clone()), "{id:?} was stored now by two replicas");
        }
    }
    assert_eq!(union.len(), results.len());
    for (store, total) in stores.iter().zip(&totals) {
        assert_eq!((store.totals().accepted, store.totals().duplicates), (total.0, total.1), "totals of this store");
    }
    assert_eq!(number(&pg, "SELECT count(*) FROM store_results"), results.len() as i64);
    for table in ["store_rollup_minute", "store_rollup_hour", "store_rollup_day"] {
        let runs = number(&pg, &format!("SELECT sum(runs) FROM {table}"));
        assert_eq!(runs, results.len() as i64, "{table} counts every result once");
    }

    // Uptime (raw edges, whole hours and days from the rollups) and incidents agree with brute force, on every
    // replica and on a fresh one.
    let fresh = open(&url);
    let windows = [
        (T0, T0 + 2 * DAY),
        (T0 + 3 * 3_600_000, T0 + DAY + 5 * 3_600_000),
        (T0 + 17 * MIN + 5, T0 + DAY + 7 * MIN + 11),
        (T0 + DAY - 1, T0 + DAY + 1),
    ];
    for store in stores.iter().chain([&fresh]) {
        for (from, to) in windows {
            let got = store.uptime(&UptimeQuery { from_ms: from, to_ms: to, ..UptimeQuery::default() }).unwrap();
            assert!(got.iter().all(|u| u.runs > 0), "pairs without runs are left out");
            for check in (0..12).map(|c| format!("c{c}")) {
                for region in ["eu", "us", "ap"] {
                    let row = got.iter().find(|u| u.check == check && u.region == region);
                    let seen = row.map_or((0, 0, 0, 0), |u| (u.runs, u.up, u.degraded, u.down));
                    let brute = brute_uptime(&results, &check, region, from, to);
                    assert_eq!(seen, brute, "{check}/{region} over {from}..{to}");
                }
            }
        }
    }
    let expected = brute_incidents(&results);
    let incidents = fresh.incidents(None, None, T0 - DAY, T0 + 3 * DAY).unwrap();
    let mut got: IncidentsByPair = BTreeMap::new();
    for incident in incidents.iter().rev() {
        got.entry((incident.check.clone(), incident.region.clone())).or_default().push((
            incident.start_ms,
            incident.end_ms,
            incident.runs,
        ));
    }
    let expected: BTreeMap<_, _> = expected.into_iter().filter(|(_, spans)| !spans.is_empty()).collect();
    assert_eq!(got, expected, "incidents from concurrent, partly out-of-order batches");
    assert!(incidents.iter().all(|incident| incident.reason.as_deref() == Some("status")));
    let latency = fresh.latency("c3", None, T0, T0 + 2 * DAY).unwrap();
    assert_eq!(latency.iter().map(|l| l.runs).sum::<i64>(), 3 * 2 * 144);
}

#[test]
fn a_newer_schema_is_refused_with_its_message() {
    let Some(pg) = Postgres::start_or_skip("a_newer_schema_is_refused_with_its_message") else { return };
    let store = open(&pg.url());
    ingest(&store, &[result("api", "eu", T0, State::Up, 0.1)]).unwrap();
    drop(store);
    pg.psql("INSERT INTO schema_migrations (component, version) VALUES ('store', 99)");
    let error = PostgresStore::open(&pg.url(), Tls::Disabled, StoreOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::NewerSchema { found: 99, known: 3 }), "{error}");
    assert_eq!(
        error.to_string(),
        "the database has schema version 99, newer than this build knows (3): it was written by a newer probenet; \
         refusing to downgrade; run a newer probenet, or restore the backup taken before the upgrade"
    );
    // Refused before anything is written: the newer build still finds its schema and the data.
    assert_eq!(number(&pg, "SELECT max(version) FROM schema_migrations WHERE component = 'store'"), 99);
    assert_eq!(number(&pg, "SELECT count(*) FROM store_results"), 1);
}

#[test]
fn a_store_of_the_previous_schema_is_upgraded_and_keeps_ledger_hours() {
    let Some(pg) = Postgres::start_or_skip("a_store_of_the_previous_schema_is_upgraded_and_keeps_ledger_hours") else {
        return;
    };
    let store = open(&pg.url());
    ingest(&store, &[result("api", "eu", T0, State::Up, 0.1)]).unwrap();
    drop(store);
    // Back to step 2, as the previous build left it: no ledger tables.
    pg.psql(
        "DROP TABLE store_ledger_hour; DROP TABLE store_ledger_day; \
         DELETE FROM schema_migrations WHERE component = 'store' AND version = 3",
    );
    let store = open(&pg.url());
    assert_eq!(number(&pg, "SELECT max(version) FROM schema_migrations WHERE component = 'store'"), 3);
    assert_eq!(store.results(&ResultQuery::default()).unwrap().len(), 1);
    let hour = LedgerHour {
        check: "api".into(),
        region: None,
        start_ms: T0,
        policy: 1,
        ms: LedgerMs { up_ms: 3_000_000, down_ms: 600_000, ..LedgerMs::default() },
    };
    store.write_ledger_hours(std::slice::from_ref(&hour)).unwrap();
    let sums = store.ledger_sums(Some("api"), T0, T0 + DAY).unwrap();
    assert_eq!((sums.len(), sums[0].region.as_deref(), sums[0].ms), (1, None, hour.ms));
    assert_eq!(store.ledger_last_hour().unwrap(), Some(T0));
}

#[test]
fn ingest_fails_while_the_database_is_down_and_resumes_with_the_same_store() {
    let Some(pg) = Postgres::start_or_skip("ingest_fails_while_the_database_is_down_and_resumes_with_the_same_store")
    else {
        return;
    };
    const BATCH: i64 = 200;
    let batch = |id: i64| -> Vec<RunResult> {
        (0..BATCH)
            .map(|i| {
                let state = if (id + i) % 7 == 0 { State::Down } else { State::Up };
                result(&format!("c{}", i % 20), &format!("r{}", i % 4), T0 + id * 1000 + i * 3, state, 0.05)
            })
            .collect()
    };
    let store = open(&pg.url());
    // One writer without pause; the server is killed under it.
    let (acked, failed_at, error) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut acked = Vec::new();
            for id in 0..1_000_000 {
                match store.ingest(batch(id)) {
                    Ok((done, _)) => {
                        assert_eq!(done.accepted as i64, BATCH);
                        acked.push(id);
                    }
                    Err(error) => return (acked, id, error),
                }
            }
            panic!("the writer never failed")
        });
        std::thread::sleep(Duration::from_millis(1500));
        pg.stop_immediate();
        writer.join().unwrap()
    });
    assert!(acked.len() >= 2, "the writer ingested before the crash: {acked:?}");
    assert!(matches!(error, StoreError::Postgres { .. }), "{error}");
    // While it is down, ingest and reads fail with an error that says what was being done.
    let down = store.ingest(batch(failed_at)).unwrap_err();
    assert!(down.to_string().starts_with("connecting to PostgreSQL"), "{down}");
    assert!(store.uptime(&UptimeQuery { from_ms: T0, to_ms: T0 + DAY, ..UptimeQuery::default() }).is_err());

    pg.start();
    // Every acknowledged batch is whole; the failed one is either whole (committed, its answer lost) or absent.
    for id in acked.iter().copied().chain([failed_at]) {
        let from = T0 + id * 1000;
        let count = number(
            &pg,
            &format!(
                "SELECT count(*) FROM store_results WHERE planned_at_ms >= {from} AND planned_at_ms < {}",
                from + 1000
            ),
        );
        if id == failed_at {
            assert!(count == 0 || count == BATCH, "batch {id} is half-stored: {count}");
        } else {
            assert_eq!(count, BATCH, "acknowledged batch {id}");
        }
    }
    let raw = number(&pg, "SELECT count(*) FROM store_results");
    for table in ["store_rollup_minute", "store_rollup_hour", "store_rollup_day"] {
        assert_eq!(number(&pg, &format!("SELECT sum(runs) FROM {table}")), raw, "{table} agrees with the raw rows");
    }
    // The same store works again (its pool reconnects): the failed batch goes in (or is all duplicates).
    let again = ingest(&store, &batch(failed_at)).unwrap();
    assert_eq!(again.accepted + again.duplicates, BATCH as usize);
    let total = (acked.len() as i64 + 1) * BATCH;
    assert_eq!(number(&pg, "SELECT count(*) FROM store_results"), total);
    let uptime = store.uptime(&UptimeQuery { from_ms: T0, to_ms: T0 + 10 * DAY, ..UptimeQuery::default() }).unwrap();
    assert_eq!(uptime.iter().map(|u| u.runs).sum::<i64>(), total);
    let mut all = Vec::new();
    for id in acked.iter().copied().chain([failed_at]) {
        all.extend(batch(id));
    }
    let expected: usize = brute_incidents(&all).values().map(Vec::len).sum();
    assert_eq!(store.incidents(None, None, T0, T0 + 10 * DAY).unwrap().len(), expected);
    assert_eq!(store.results(&ResultQuery { limit: 5, ..ResultQuery::default() }).unwrap().len(), 5);
}

#[test]
fn results_come_back_in_the_order_they_were_stored_from_any_replica() {
    let Some(pg) = Postgres::start_or_skip("results_come_back_in_the_order_they_were_stored_from_any_replica") else {
        return;
    };
    let (a, b) = (open(&pg.url()), open(&pg.url()));
    let first: Vec<RunResult> = (0..3).map(|i| result("api", "eu", T0 + i * MIN, State::Up, 0.1)).collect();
    let second: Vec<RunResult> = (0..2).map(|i| result("web", "us", T0 + i * MIN, State::Down, 0.2)).collect();
    ingest(&a, &first).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    ingest(&b, &second).unwrap();
    // Both replicas' results, oldest stored first, each with when it was stored.
    let all = a.stored_since(0, 100).unwrap();
    let ids: Vec<(String, i64)> = all.iter().map(|(_, r)| (r.check.clone(), r.planned_at_ms)).collect();
    let expected: Vec<(String, i64)> =
        first.iter().chain(&second).map(|r| (r.check.clone(), r.planned_at_ms)).collect();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    assert_eq!(sorted_ids, sorted_expected, "every result once");
    assert!(all.windows(2).all(|pair| pair[0].0 <= pair[1].0), "in the order they were stored");
    let second_at = all.iter().filter(|(_, r)| r.check == "web").map(|(at, _)| *at).min().unwrap();
    let first_at = all.iter().filter(|(_, r)| r.check == "api").map(|(at, _)| *at).max().unwrap();
    assert!(first_at < second_at, "the later batch was stored later: {first_at} {second_at}");
    assert_eq!(all[4].1.outcome.state, State::Down, "whole results come back: {:?}", all[4].1);
    // From a time on, and at most a page.
    let later = b.stored_since(second_at, 100).unwrap();
    assert_eq!(later.iter().map(|(_, r)| r.check.as_str()).collect::<Vec<_>>(), ["web", "web"]);
    assert_eq!(a.stored_since(0, 2).unwrap().len(), 2);
    // The embedded store has no order of arrival to offer.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = probenet_exporters::store::SqliteStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(matches!(sqlite.stored_since(0, 10), Err(StoreError::Unsupported(_))));
}
