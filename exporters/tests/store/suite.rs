//! The store test-suite, written once against the [`Store`] trait and run against every backend: each backend
//! instantiates it with [`store_suite!`] and a [`Backend`] that opens an empty store of its kind.

use probenet_checks::outcome::State;
use probenet_checks::wire::RunResult;
use probenet_exporters::store::codec::HISTOGRAM_RELATIVE_ERROR;
use probenet_exporters::store::{
    Ingested, LedgerHour, LedgerMs, LedgerSum, Position, ResultQuery, Store, StoredPage, UptimeQuery,
};

use super::helpers::{DAY, Lcg, MIN, T0, artifact_bytes, brute_uptime, ingest, result, three_days, with_artifact};

/// A backend under test: an empty store of its own, which it can close and open again.
pub trait Backend {
    /// The store.
    fn store(&self) -> &dyn Store;
    /// Closes the store and opens the same data again, as a restart does.
    fn reopen(&mut self);
}

/// One `#[test]` per suite test, each with a fresh backend from `$make` (a `fn() -> Option<impl Backend>`;
/// `None` skips, as when PostgreSQL is not installed and the maker printed why).
macro_rules! store_suite {
    ($make:expr) => {
        store_suite!(@tests $make;
            ingest_is_idempotent_on_the_run_id,
            queries_are_newest_first_filtered_and_limited,
            results_round_trip_and_ingest_is_idempotent,
            uptime_is_exact_over_any_window_and_buckets_add_up,
            uptime_stays_exact_when_results_arrive_out_of_order,
            latency_percentiles_are_within_the_histogram_bound,
            incidents_follow_failures_in_and_out_of_order,
            prune_removes_old_rows_and_artifacts_and_rollups_outlive_them,
            a_raw_floor_keeps_what_retention_would_delete,
            overview_queries_agree_with_the_per_pair_ones,
            results_in_stored_order_are_read_once_from_a_saved_cursor,
            ledger_hours_sum_over_hours_and_days_and_are_pruned,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let Some(mut backend) = $make() else { return };
                crate::suite::$name(&mut backend);
            }
        )*
    };
}
pub(crate) use store_suite;

fn run(check: &str, region: &str, planned_at_ms: i64) -> RunResult {
    result(check, region, planned_at_ms, State::Up, 0.1)
}

fn planned(results: &[RunResult]) -> Vec<i64> {
    results.iter().map(|r| r.planned_at_ms).collect()
}

pub fn ingest_is_idempotent_on_the_run_id(backend: &mut dyn Backend) {
    let store = backend.store();
    let batch: Vec<RunResult> = (0..5).map(|i| run("a", "eu", T0 + i * 1000)).collect();
    assert_eq!(ingest(store, &batch).unwrap(), Ingested { accepted: 5, duplicates: 0 });
    let (again, fresh) = store.ingest(batch).unwrap();
    assert_eq!((again, fresh.len()), (Ingested { accepted: 0, duplicates: 5 }, 0));
    // Same planned time from another region or check is another run.
    assert_eq!(ingest(store, &[run("a", "us", T0), run("b", "eu", T0)]).unwrap().accepted, 2);
    // A duplicate inside one batch is stored once.
    assert_eq!(
        ingest(store, &[run("c", "eu", T0), run("c", "eu", T0)]).unwrap(),
        Ingested { accepted: 1, duplicates: 1 }
    );
    assert_eq!(store.totals(), Ingested { accepted: 8, duplicates: 6 });
    assert_eq!(store.latest("a", "eu").unwrap().map(|r| r.planned_at_ms), Some(T0 + 4000));
    assert_eq!(store.latest("a", "nowhere").unwrap(), None);
    // Every pair's last planned run, where probers resume.
    let mut last: Vec<(String, String, i64)> =
        store.latest_runs().unwrap().into_iter().map(|run| (run.check, run.region, run.planned_at_ms)).collect();
    last.sort();
    let expected = [("a", "eu", T0 + 4000), ("a", "us", T0), ("b", "eu", T0), ("c", "eu", T0)];
    assert_eq!(last, expected.map(|(c, r, p)| (c.to_owned(), r.to_owned(), p)));
    // An older run arriving late does not move the last planned one back.
    ingest(store, &[run("b", "eu", T0 - 1000)]).unwrap();
    assert!(store.latest_runs().unwrap().iter().any(|run| run.check == "b" && run.planned_at_ms == T0));
}

pub fn queries_are_newest_first_filtered_and_limited(backend: &mut dyn Backend) {
    let store = backend.store();
    // Out of order, as replays arrive.
    ingest(store, &[3, 1, 4, 0, 2].map(|i| run("a", "eu", T0 + i * 1000))).unwrap();
    ingest(store, &[run("b", "eu", T0 + 2500), run("a", "us", T0 + 2600)]).unwrap();
    ingest(store, &[result("a", "eu", T0 + 1500, State::Down, 0.1)]).unwrap();
    let query = |check: Option<&str>, since_ms: Option<i64>, until_ms: Option<i64>, limit| {
        let query = ResultQuery {
            check: check.map(Into::into),
            region: Some("eu".into()),
            since_ms,
            until_ms,
            only_failures: false,
            limit,
            oldest_first: false,
        };
        planned(&store.results(&query).unwrap()).into_iter().map(|at| at - T0).collect::<Vec<_>>()
    };
    assert_eq!(query(Some("a"), None, None, 10), [4000, 3000, 2000, 1500, 1000, 0]);
    assert_eq!(query(Some("a"), Some(T0 + 2000), None, 10), [4000, 3000, 2000]);
    assert_eq!(query(Some("a"), None, Some(T0 + 2000), 10), [1500, 1000, 0]);
    assert_eq!(query(Some("a"), None, None, 2), [4000, 3000]);
    assert_eq!(query(None, Some(T0 + 2000), None, 10), [4000, 3000, 2500, 2000]);
    assert_eq!(query(Some("nothing"), None, None, 10), Vec::<i64>::new());
    // Oldest first: a pair read through in pages, each starting after the last one's latest run.
    let oldest_first = |since_ms: i64, limit| {
        let query = ResultQuery {
            check: Some("a".into()),
            region: Some("eu".into()),
            since_ms: Some(since_ms),
            until_ms: Some(T0 + 4000),
            limit,
            oldest_first: true,
            ..ResultQuery::default()
        };
        planned(&store.results(&query).unwrap()).into_iter().map(|at| at - T0).collect::<Vec<_>>()
    };
    assert_eq!(oldest_first(T0, 10), [0, 1000, 1500, 2000, 3000]);
    assert_eq!(oldest_first(T0, 2), [0, 1000]);
    assert_eq!(oldest_first(T0 + 1001, 2), [1500, 2000]);
    assert_eq!(oldest_first(T0 + 2001, 2), [3000]);
    let failures = store.results(&ResultQuery { only_failures: true, ..ResultQuery::default() }).unwrap();
    assert_eq!(planned(&failures), [T0 + 1500]);
    let everywhere = store.results(&ResultQuery { check: Some("a".into()), ..ResultQuery::default() }).unwrap();
    assert_eq!(everywhere.len(), 7);
    // A limit of 0 means the default of 100.
    let many: Vec<RunResult> = (0..150).map(|i| run("m", "eu", T0 + DAY + i)).collect();
    ingest(store, &many).unwrap();
    assert_eq!(store.results(&ResultQuery { check: Some("m".into()), ..ResultQuery::default() }).unwrap().len(), 100);
}

pub fn results_round_trip_and_ingest_is_idempotent(backend: &mut dyn Backend) {
    let batch = vec![
        result("api", "eu", T0, State::Up, 0.1),
        with_artifact(result("api", "eu", T0 + MIN, State::Down, 0.2)),
        result("api", "us", T0, State::Degraded, 0.3),
    ];
    let store = backend.store();
    let (done, fresh) = store.ingest(batch.clone()).unwrap();
    assert_eq!((done.accepted, fresh), (3, batch.clone()), "the results stored now, as they came");
    let again = ingest(store, &batch).unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 3));
    assert_eq!((store.totals().accepted, store.totals().duplicates), (3, 3));

    let latest = store.latest("api", "eu").unwrap().unwrap();
    let path = latest.outcome.artifacts[0].path.clone().unwrap();
    let mut expected = batch[1].clone();
    expected.outcome.artifacts[0].data.clear();
    expected.outcome.artifacts[0].path = Some(path.clone());
    assert_eq!(latest, expected);
    assert_eq!(store.artifact(&path).unwrap(), Some(artifact_bytes(T0 + MIN)));
    assert_eq!(store.artifact("../probenet.db").unwrap(), None);
    assert_eq!(store.artifact(&format!("{path}/../../../probenet.db")).unwrap(), None);
    assert_eq!(store.artifact("no/such-artifact.png").unwrap(), None);
    assert_eq!(store.latest("api", "nowhere").unwrap(), None);

    let failures = store.results(&ResultQuery { only_failures: true, limit: 10, ..ResultQuery::default() }).unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].planned_at_ms, T0 + MIN);
    let all = store.results(&ResultQuery { check: Some("api".into()), ..ResultQuery::default() }).unwrap();
    assert_eq!(planned(&all), [T0 + MIN, T0, T0]);
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
    backend.reopen();
    let store = backend.store();
    assert_eq!(store.latest("api", "eu").unwrap().unwrap(), expected);
    assert_eq!(store.artifact(&path).unwrap(), Some(artifact_bytes(T0 + MIN)));
    assert_eq!(ingest(store, &batch).unwrap().duplicates, 3);
}

pub fn uptime_is_exact_over_any_window_and_buckets_add_up(backend: &mut dyn Backend) {
    let store = backend.store();
    let results = three_days();
    for chunk in results.chunks(500) {
        ingest(store, chunk).unwrap();
    }
    let mut rng = Lcg(11);
    let mut windows = vec![(T0, T0 + 3 * DAY), (T0 - DAY, T0 + 10 * DAY), (T0 + 5, T0 + DAY + 7 * 3_600_000 + 123)];
    for _ in 0..40 {
        let from = T0 + rng.below(3 * DAY as u64) as i64;
        windows.push((from, from + rng.below(2 * DAY as u64) as i64 + 1));
    }
    let check_all = |store: &dyn Store, windows: &[(i64, i64)], minute_aligned_only: bool| {
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
    check_all(store, &windows, false);

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
    check_all(store, &windows, true);
}

pub fn uptime_stays_exact_when_results_arrive_out_of_order(backend: &mut dyn Backend) {
    let store = backend.store();
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
        ingest(store, chunk).unwrap();
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
    backend.reopen();
    let store = backend.store();
    let from = T0 + 22 * 60 * MIN + 30 * MIN + 17;
    let got = store.uptime(&UptimeQuery { from_ms: from, to_ms: T0 + 2 * DAY, ..UptimeQuery::default() }).unwrap();
    assert_eq!(
        got.iter().map(|u| u.runs).sum::<i64>(),
        results.iter().filter(|r| r.planned_at_ms >= from).count() as i64
    );
}

pub fn latency_percentiles_are_within_the_histogram_bound(backend: &mut dyn Backend) {
    let store = backend.store();
    let results: Vec<RunResult> =
        (0..1000).map(|i| result("api", "eu", T0 + i * 30_000, State::Up, (i + 1) as f64 / 1000.0)).collect();
    ingest(store, &results).unwrap();
    ingest(store, &[result("api", "us", T0, State::Up, 2.0)]).unwrap();
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

pub fn incidents_follow_failures_in_and_out_of_order(backend: &mut dyn Backend) {
    let store = backend.store();
    let run = |minute: i64, state| result("api", "eu", T0 + minute * MIN, state, 0.1);
    ingest(store, &[run(0, State::Up), run(1, State::Down), run(2, State::Down)]).unwrap();
    ingest(store, &[run(3, State::Degraded), run(4, State::Down)]).unwrap();
    ingest(store, &[run(5, State::Down)]).unwrap();
    let incidents = store.incidents(Some("api"), None, T0, T0 + DAY).unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert_eq!((incidents[0].start_ms, incidents[0].end_ms, incidents[0].runs), (T0 + 4 * MIN, None, 2));
    assert_eq!((incidents[1].start_ms, incidents[1].end_ms, incidents[1].runs), (T0 + MIN, Some(T0 + 3 * MIN), 2));
    assert_eq!(incidents[1].reason.as_deref(), Some("status"));
    assert!(incidents[1].error.as_deref().unwrap().contains("503"));

    // A late success splits the closed incident; a late failure joins the open one to an earlier failure.
    ingest(store, &[result("api", "eu", T0 + MIN + 30_000, State::Up, 0.1)]).unwrap();
    ingest(store, &[result("api", "eu", T0 + 3 * MIN + 30_000, State::Down, 0.1)]).unwrap();
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
    backend.reopen();
    let store = backend.store();
    ingest(store, &[run(6, State::Down), run(7, State::Up)]).unwrap();
    let latest = &store.incidents(Some("api"), Some("eu"), T0 + 6 * MIN, T0 + DAY).unwrap()[0];
    assert_eq!((latest.start_ms, latest.end_ms, latest.runs), (T0 + 3 * MIN + 30_000, Some(T0 + 7 * MIN), 4));
    assert!(store.incidents(Some("api"), None, T0 + 8 * MIN, T0 + DAY).unwrap().is_empty());
}

pub fn prune_removes_old_rows_and_artifacts_and_rollups_outlive_them(backend: &mut dyn Backend) {
    let store = backend.store();
    let old = with_artifact(result("api", "eu", T0, State::Down, 0.1));
    let new = with_artifact(result("api", "eu", T0 + 8 * DAY, State::Up, 0.1));
    ingest(store, &[old]).unwrap();
    let old_path = store.latest("api", "eu").unwrap().unwrap().outcome.artifacts[0].path.clone().unwrap();
    ingest(store, &[new]).unwrap();

    let pruned = store.prune(T0 + 8 * DAY).unwrap();
    assert_eq!((pruned.results, pruned.artifacts), (1, 1));
    assert_eq!(store.artifact(&old_path).unwrap(), None, "the pruned result's artifact went with it");
    let left = store.results(&ResultQuery::default()).unwrap();
    assert_eq!(left.len(), 1);
    let kept = left[0].outcome.artifacts[0].path.as_deref().unwrap();
    assert_eq!(store.artifact(kept).unwrap(), Some(artifact_bytes(T0 + 8 * DAY)));
    // Rollups outlive raw results: the old day still counts, and so does its incident.
    let uptime = store.uptime(&UptimeQuery { from_ms: T0, to_ms: T0 + DAY, ..UptimeQuery::default() }).unwrap();
    assert_eq!((uptime[0].runs, uptime[0].down), (1, 1));
    assert_eq!(store.incidents(None, None, T0, T0 + DAY).unwrap().len(), 1);
    // ... until the rollup retention passes (the closed-or-open incident with it only when closed).
    let pruned = store.prune(T0 + 402 * DAY).unwrap();
    assert!(pruned.rollups >= 3 && pruned.results == 1, "{pruned:?}");
    assert!(store.uptime(&UptimeQuery { from_ms: T0, to_ms: T0 + DAY, ..UptimeQuery::default() }).unwrap().is_empty());
    assert!(store.results(&ResultQuery::default()).unwrap().is_empty());
}

pub fn a_raw_floor_keeps_what_retention_would_delete(backend: &mut dyn Backend) {
    let store = backend.store();
    let results = [T0, T0 + DAY, T0 + 8 * DAY].map(|at| with_artifact(result("api", "eu", at, State::Down, 0.1)));
    ingest(store, &results).unwrap();
    let path_of = |at: i64| {
        let query = ResultQuery { since_ms: Some(at), until_ms: Some(at + 1), ..ResultQuery::default() };
        store.results(&query).unwrap()[0].outcome.artifacts[0].path.clone().unwrap()
    };
    let kept = path_of(T0 + DAY);
    // Retention (7 days) would delete both old days; the floor (the archive's first day not written) keeps
    // the second, with its artifact.
    let pruned = store.prune_keeping(T0 + 9 * DAY, Some(T0 + DAY)).unwrap();
    assert_eq!((pruned.results, pruned.artifacts), (1, 1));
    assert_eq!(planned(&store.results(&ResultQuery::default()).unwrap()), [T0 + 8 * DAY, T0 + DAY]);
    assert_eq!(store.artifact(&kept).unwrap(), Some(artifact_bytes(T0 + DAY)));
    // A floor later than the retention changes nothing; without one, retention applies.
    assert_eq!(store.prune_keeping(T0 + 9 * DAY, Some(T0 + 9 * DAY)).unwrap().results, 1);
    assert_eq!(planned(&store.results(&ResultQuery::default()).unwrap()), [T0 + 8 * DAY]);
    assert_eq!(store.artifact(&kept).unwrap(), None);
}

pub fn overview_queries_agree_with_the_per_pair_ones(backend: &mut dyn Backend) {
    let store = backend.store();
    let results = three_days();
    for chunk in results.chunks(500) {
        ingest(store, chunk).unwrap();
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

/// Every result stored after `after`, read in pages of `page` until a bounded wait finds `count` (PostgreSQL
/// returns a result only once it is settled, some seconds after it was stored).
fn read_stored(store: &dyn Store, after: Position, page: usize, count: usize) -> StoredPage {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut all = StoredPage { results: Vec::new(), next: after };
    loop {
        let got = store.stored_after(all.next, page).unwrap();
        assert!(got.results.len() <= page, "a page holds at most its limit");
        if got.results.is_empty() {
            if all.results.len() >= count || std::time::Instant::now() > deadline {
                return all;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
            continue;
        }
        assert!(got.next > all.next, "a page moves the position on");
        all.results.extend(got.results);
        all.next = got.next;
    }
}

fn ids(results: &[RunResult]) -> Vec<(String, i64)> {
    results.iter().map(|r| (r.check.clone(), r.planned_at_ms - T0)).collect()
}

pub fn results_in_stored_order_are_read_once_from_a_saved_cursor(backend: &mut dyn Backend) {
    let start = backend.store().stored_end().unwrap();
    assert_eq!(backend.store().cursor("remote_write:abc").unwrap(), None);
    let store = backend.store();
    ingest(store, &[run("b", "eu", T0 + 1000), run("a", "eu", T0)]).unwrap();
    // A duplicate is not stored again, so it is not read again.
    ingest(store, &[run("a", "eu", T0), run("c", "eu", T0 + 5000)]).unwrap();
    ingest(store, &[run("a", "eu", T0 - 9000)]).unwrap();
    let read = read_stored(store, start, 2, 4);
    let mut got = ids(&read.results);
    assert_eq!(got.len(), 4, "each stored result once: {got:?}");
    // Batches in the order they were stored (inside one batch, PostgreSQL orders by run id).
    let first_batch: std::collections::BTreeSet<_> = got.drain(..2).collect();
    assert_eq!(first_batch, [("a".to_owned(), 0), ("b".to_owned(), 1000)].into_iter().collect());
    assert_eq!(got, [("c".to_owned(), 5000), ("a".to_owned(), -9000)]);

    // A saved position outlives a restart; reading from it finds only what came after.
    store.save_cursor("remote_write:abc", read.next).unwrap();
    backend.reopen();
    let store = backend.store();
    let saved = store.cursor("remote_write:abc").unwrap();
    assert_eq!(saved, Some(read.next));
    assert_eq!(store.cursor("loki:abc").unwrap(), None, "cursors are by name");
    ingest(store, &[run("d", "eu", T0 + 7000)]).unwrap();
    let after = read_stored(store, read.next, 100, 1);
    assert_eq!(ids(&after.results), [("d".to_owned(), 7000)]);
    assert!(store.stored_end().unwrap() >= after.next);

    // Pruning every result does not make later results come before a saved position.
    let pruned = store.prune(T0 + 30 * DAY).unwrap();
    assert_eq!(pruned.results, 5);
    assert!(store.stored_end().unwrap() >= after.next, "the end never goes back");
    ingest(store, &[run("e", "eu", T0 + 30 * DAY)]).unwrap();
    let later = read_stored(store, after.next, 100, 1);
    assert_eq!(ids(&later.results), [("e".to_owned(), 30 * DAY)]);
}

const HOUR: i64 = 60 * MIN;

/// One hour of `check` in `region` (`None`: the check as a whole): `up` and `down` seconds, the rest unknown.
fn ledger_hour(check: &str, region: Option<&str>, start_ms: i64, up: i64, down: i64) -> LedgerHour {
    LedgerHour {
        check: check.into(),
        region: region.map(str::to_owned),
        start_ms,
        policy: 1,
        ms: LedgerMs {
            up_ms: up * 1000,
            down_ms: down * 1000,
            unknown_ms: HOUR - (up + down) * 1000,
            maintenance_ms: 0,
            muted_up_ms: 0,
            muted_down_ms: down * 500,
        },
    }
}

fn sums(rows: &[LedgerSum]) -> Vec<(String, Option<String>, i64, i64, i64)> {
    rows.iter()
        .map(|row| (row.check.clone(), row.region.clone(), row.start_ms, row.ms.up_ms / 1000, row.ms.down_ms / 1000))
        .collect()
}

pub fn ledger_hours_sum_over_hours_and_days_and_are_pruned(backend: &mut dyn Backend) {
    let store = backend.store();
    assert_eq!(store.ledger_last_hour().unwrap(), None);
    // Three days of hours for `web` (eu, and the check as a whole) and one hour for `api`: hour h of the day
    // is up h seconds and down 1.
    let mut hours = Vec::new();
    for hour in 0..72 {
        let start = T0 + hour * HOUR;
        let up = hour % 24;
        hours.push(ledger_hour("web", Some("eu"), start, up, 1));
        hours.push(ledger_hour("web", None, start, up, 2));
    }
    hours.push(ledger_hour("api", Some("eu"), T0 + 5 * HOUR, 3600, 0));
    store.write_ledger_hours(&hours).unwrap();
    assert_eq!(store.ledger_last_hour().unwrap(), Some(T0 + 71 * HOUR));
    let day_up: i64 = (0..24).sum();
    // From 05:00 on day 0 to 07:00 on day 2: hours, one whole day, hours.
    let (from, to) = (T0 + 5 * HOUR, T0 + 2 * DAY + 7 * HOUR);
    let head: i64 = (5..24).sum();
    let tail: i64 = (0..7).sum();
    let expected = [
        ("api".to_owned(), Some("eu".to_owned()), from, 3600, 0),
        ("web".to_owned(), None, from, head + day_up + tail, 2 * (19 + 24 + 7)),
        ("web".to_owned(), Some("eu".to_owned()), from, head + day_up + tail, 19 + 24 + 7),
    ];
    assert_eq!(sums(&store.ledger_sums(None, from, to).unwrap()), expected);
    assert_eq!(sums(&store.ledger_sums(Some("web"), from, to).unwrap()), expected[1..]);
    // Within one day: hours only; whole days: days only.
    assert_eq!(
        sums(&store.ledger_sums(Some("web"), T0 + DAY + 2 * HOUR, T0 + DAY + 4 * HOUR).unwrap())[1],
        ("web".to_owned(), Some("eu".to_owned()), T0 + DAY + 2 * HOUR, 2 + 3, 2)
    );
    let all = store.ledger_sums(None, T0, T0 + 3 * DAY).unwrap();
    assert_eq!(all[1].ms.muted_down_ms, 72 * 1000, "every column is summed");
    assert_eq!(all[1].ms.up_ms + all[1].ms.down_ms + all[1].ms.unknown_ms, 3 * DAY);
    // An hour written again replaces the old one, and its day follows.
    store.write_ledger_hours(&[ledger_hour("web", Some("eu"), T0 + DAY + 3 * HOUR, 0, 3600)]).unwrap();
    let days = store.ledger_days(Some("web"), T0, T0 + 3 * DAY).unwrap();
    let eu: Vec<(i64, i64, i64)> = days
        .iter()
        .filter(|day| day.region.as_deref() == Some("eu"))
        .map(|day| (day.start_ms, day.ms.up_ms / 1000, day.ms.down_ms / 1000))
        .collect();
    assert_eq!(eu, [(T0, day_up, 24), (T0 + DAY, day_up - 3, 24 - 1 + 3600), (T0 + 2 * DAY, day_up, 24)]);
    assert_eq!(days.iter().filter(|day| day.region.is_none()).count(), 3);
    // Hours and days go with the hour and day rollups (400 days).
    let pruned = store.prune(T0 + DAY + 400 * DAY).unwrap();
    assert_eq!(pruned.ledger, 2 * 24 + 1 + 3, "day 0's hours and day rows (web in eu and as a whole, api)");
    assert_eq!(store.ledger_days(None, T0, T0 + 3 * DAY).unwrap().len(), 4, "days 1 and 2 of web, both views");
    assert_eq!(sums(&store.ledger_sums(Some("web"), T0, T0 + DAY).unwrap()), []);
    backend.reopen();
    assert_eq!(backend.store().ledger_last_hour().unwrap(), Some(T0 + 71 * HOUR));
}
