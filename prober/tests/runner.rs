//! The run loop with real HTTP checks against a local server: each pair once per interval on its grid, runs
//! that would overrun skipped and counted, per-kind limits, and a new assignment set that keeps the pairs
//! that stay undisturbed.
#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use common::{Target, config, http_check};
use probenet_checks::Kind;
use probenet_checks::State;
use probenet_checks::wire::{Assignment, Assignments, RunResult};
use probenet_prober::plan::{Pair, Planner, now_ms};
use probenet_prober::{Limits, Runner, StatsHandle};
use tokio::sync::mpsc;

/// Pairs for `checks` (name, YAML) with the given offsets, region `eu-west`.
fn pairs(planner: &mut Planner, hash: &str, checks: &[(&str, String, u64)]) -> Vec<Pair> {
    let yaml: Vec<String> = checks.iter().map(|(_, yaml, _)| yaml.clone()).collect();
    let plan = planner.update(&Assignments {
        generation: 1,
        config_hash: hash.to_owned(),
        config: vec![config(&yaml)],
        assigned: checks
            .iter()
            .map(|(name, _, offset_ms)| Assignment {
                check: (*name).to_owned(),
                region: "eu-west".to_owned(),
                offset_ms: *offset_ms,
                resume_after_ms: None,
            })
            .collect(),
    });
    assert!(plan.config_errors.is_empty(), "{:?}", plan.config_errors);
    assert!(plan.unknown.is_empty());
    plan.pairs
}

fn by_check(results: &[RunResult]) -> BTreeMap<String, Vec<i64>> {
    let mut map: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for result in results {
        map.entry(result.check.clone()).or_default().push(result.planned_at_ms);
    }
    for planned in map.values_mut() {
        planned.sort_unstable();
    }
    map
}

async fn drain(mut rx: mpsc::Receiver<RunResult>) -> Vec<RunResult> {
    let mut results = Vec::new();
    while let Some(result) = rx.recv().await {
        results.push(result);
    }
    results
}

/// Sleeps until `offset_ms` past the next whole second.
async fn sleep_to_phase(offset_ms: i64) {
    sleep_to_grid_phase(1000, offset_ms).await;
}

/// Sleeps until `offset_ms` past the next multiple of `period_ms` (since the epoch, like the check grid).
async fn sleep_to_grid_phase(period_ms: i64, offset_ms: i64) {
    let now = now_ms();
    let mut target = (now / period_ms + 1) * period_ms + offset_ms;
    if target <= now {
        target += period_ms;
    }
    tokio::time::sleep(Duration::from_millis(u64::try_from(target - now).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pair_runs_once_per_interval_on_its_grid() {
    let target = Target::start().await;
    let mut planner = Planner::new();
    let offsets = [("a", 0), ("b", 250), ("c", 600)];
    let checks: Vec<(&str, String, u64)> = offsets
        .iter()
        .map(|(name, offset)| (*name, http_check(name, "1s", "900ms", &target.url(20, name)), *offset))
        .collect();
    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let runner = Runner::start("p1", &Limits::default(), tx, &stats);
    let collected = tokio::spawn(drain(rx));
    let applied_at = now_ms();
    runner.apply(pairs(&mut planner, "h1", &checks));
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let stopped_at = now_ms();
    assert_eq!(runner.stop(Duration::from_secs(2)).await, 0);
    let results = collected.await.unwrap();

    let planned = by_check(&results);
    for (name, offset) in offsets {
        let times = &planned[name];
        // Every grid point between the start and the stop, and nothing else.
        let expected: Vec<i64> = (applied_at / 1000 - 1..=stopped_at / 1000 + 1)
            .map(|second| second * 1000 + offset as i64)
            .filter(|at| *at >= applied_at && *at <= stopped_at)
            .collect();
        // The grid points at the very edges may fall between the clock reading and the command (or the stop).
        let trimmed = |from: usize, to: usize| expected.get(from..expected.len().saturating_sub(to));
        let matches = [(0, 0), (1, 0), (0, 1), (1, 1)].iter().any(|(from, to)| trimmed(*from, *to) == Some(times));
        assert!(matches, "{name}: ran at {times:?}, grid {expected:?}");
        assert!(times.len() >= 4, "{name}: {times:?}");
        assert!(times.windows(2).all(|pair| pair[1] - pair[0] == 1000), "{name}: consecutive, no gap, no duplicate");
    }
    for result in &results {
        assert_eq!(result.outcome.state, State::Up, "{:?}", result.outcome);
        assert_eq!(result.prober, "p1");
        assert_eq!(result.region, "eu-west");
        let lateness = result.started_at_ms - result.planned_at_ms;
        assert!((0..500).contains(&lateness), "started {lateness} ms after its planned time");
    }
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.runs, results.len() as u64);
    assert_eq!(snapshot.lateness_samples, results.len() as u64);
    assert_eq!((snapshot.skipped_overrun, snapshot.skipped_busy), (0, 0));
    assert!(snapshot.lateness_p99_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_would_overrun_is_skipped_and_counted() {
    let target = Target::start().await;
    let mut planner = Planner::new();
    // The server takes 1.5 s; the check may take 2.5 s (set past validation, which caps the timeout at the
    // interval, to make the overrun certain): each run still goes on at the next planned time.
    let mut long = pairs(&mut planner, "h1", &[("slow", http_check("slow", "1s", "1s", &target.url(1500, "slow")), 0)]);
    let mut check = (*long[0].check).clone();
    check.timeout = Duration::from_millis(2500);
    long[0].check = Arc::new(check);
    // And the case as configured: timeout = interval = 1 s against the same 1.5 s server.
    let mut other = Planner::new();
    let capped =
        pairs(&mut other, "h1", &[("capped", http_check("capped", "1s", "1s", &target.url(1500, "capped")), 500)]);

    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let runner = Runner::start("p1", &Limits::default(), tx, &stats);
    let collected = tokio::spawn(drain(rx));
    runner.apply(long.into_iter().chain(capped).collect());
    tokio::time::sleep(Duration::from_millis(4600)).await;
    runner.stop(Duration::from_secs(3)).await;
    let results = collected.await.unwrap();
    let planned = by_check(&results);

    let slow = &planned["slow"];
    assert!(slow.len() >= 2, "{slow:?}");
    assert!(slow.windows(2).all(|pair| pair[1] - pair[0] == 2000), "every other planned time was skipped: {slow:?}");
    assert!(results.iter().filter(|result| result.check == "slow").all(|result| result.outcome.state == State::Up));
    assert_eq!(target.max_in_flight_of("slow"), 1, "never two runs of the pair at once");

    // The capped check times out at its next planned time: whichever wins that race, runs never overlap and
    // every planned time is either run or counted as skipped.
    let capped = &planned["capped"];
    let capped_results: Vec<&RunResult> = results.iter().filter(|result| result.check == "capped").collect();
    assert!(capped_results.iter().all(|result| result.outcome.reason == Some(probenet_checks::Reason::Timeout)));
    let mut spans: Vec<(f64, f64)> = capped_results
        .iter()
        .map(|result| {
            let start = result.started_at_ms as f64;
            (start, start + result.outcome.duration_seconds * 1000.0)
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(spans.windows(2).all(|pair| pair[1].0 >= pair[0].1 - 1.0), "runs overlap: {spans:?}");
    let snapshot = stats.snapshot();
    let slow_skips = slow.windows(2).count() as u64;
    let capped_gaps: u64 = capped.windows(2).map(|pair| (pair[1] - pair[0]) as u64 / 1000 - 1).sum();
    let counted = snapshot.skipped_overrun;
    assert!(counted >= slow_skips + capped_gaps, "{counted} skips counted, {slow_skips} + {capped_gaps} seen");
    assert!(counted <= slow_skips + capped_gaps + 2, "{counted} skips counted, {slow_skips} + {capped_gaps} seen");
    assert_eq!(snapshot.skipped_busy, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_kind_limits_are_respected() {
    let target = Target::start().await;
    let mut planner = Planner::new();
    // With one http permit: `first` (600 ms) holds it when `second` is due 250 ms later; `second` waits the
    // grace (100 ms) and is skipped. `third`, due when `first` is done, runs. (`second` was due 50 ms after
    // `first`: on a loaded machine `first` could start late enough for `second` to take the permit.) The set is
    // applied 150 ms before `first`'s grid point, so the three come in that order: applied at a random phase,
    // `second` or `third` could come first and take the permit.
    let checks = [
        ("first", http_check("first", "2s", "1s", &target.url(600, "first")), 0),
        ("second", http_check("second", "2s", "1s", &target.url(600, "second")), 250),
        ("third", http_check("third", "2s", "1s", &target.url(10, "third")), 800),
    ];
    let limits = Limits::with_overrides(&HashMap::from([(Kind::Http, 1)])).unwrap();
    assert_eq!(limits.get(Kind::Http), 1);
    assert_eq!(limits.get(Kind::Tls), 128);
    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let runner = Runner::start("p1", &limits, tx, &stats);
    let collected = tokio::spawn(drain(rx));
    let pairs = pairs(&mut planner, "h1", &checks);
    sleep_to_grid_phase(2000, -150).await;
    runner.apply(pairs);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    runner.stop(Duration::from_secs(2)).await;
    let planned = by_check(&collected.await.unwrap());

    assert_eq!(target.max_in_flight(), 1, "at most one http check at a time");
    assert!(planned["first"].len() >= 2, "{planned:?}");
    assert!(planned["third"].len() >= 2, "{planned:?}");
    assert!(!planned.contains_key("second"), "{planned:?}");
    let snapshot = stats.snapshot();
    assert!(snapshot.skipped_busy >= 2, "{snapshot:?}");
    assert!(snapshot.skipped_busy.abs_diff(planned["first"].len() as u64) <= 1, "{snapshot:?}");
    assert_eq!(snapshot.skipped_overrun, 0);
    assert!(Limits::parse_override("smtp=1").is_err());
    assert!(Limits::parse_override("http=0").is_err());
    assert_eq!(Limits::parse_override(" http = 3"), Ok((Kind::Http, 3)));
    assert!(Limits::with_overrides(&HashMap::from([(Kind::Http, 0)])).is_err());
}

/// A WebSocket echo server on 127.0.0.1.
async fn websocket_echo() -> std::net::SocketAddr {
    use futures::StreamExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = async_tungstenite::tokio::accept_async(tcp).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() {
                        let _ = ws.send(message).await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_check_runs_through_the_kind_table_like_every_kind() {
    let addr = websocket_echo().await;
    let mut planner = Planner::new();
    let yaml = format!(
        "  - name: ws\n    interval: 1s\n    timeout: 900ms\n    websocket:\n      url: \"ws://{addr}/\"\n      \
         steps: [{{send: ping}}, {{expect: {{text: ping, within: 500ms}}}}]\n"
    );
    assert_eq!(Limits::default().get(Kind::Websocket), 256);
    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let runner = Runner::start("p1", &Limits::default(), tx, &stats);
    let collected = tokio::spawn(drain(rx));
    runner.apply(pairs(&mut planner, "h1", &[("ws", yaml, 0)]));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    runner.stop(Duration::from_secs(2)).await;
    let results = collected.await.unwrap();
    assert!(results.len() >= 2, "{results:?}");
    for result in &results {
        let outcome = &result.outcome;
        assert_eq!(outcome.state, State::Up, "{outcome:?}");
        assert_eq!(outcome.details["status_code"], 101, "{outcome:?}");
        assert_eq!(outcome.details["close_code"], 1000, "{outcome:?}");
        let phases: Vec<&str> = outcome.phases.iter().map(|phase| phase.name.as_str()).collect();
        assert_eq!(phases, ["resolve", "connect", "handshake", "messages", "close"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waits_briefly_for_a_permit() {
    let target = Target::start().await;
    let mut planner = Planner::new();
    // `second` is due while `first` (20 ms) holds the only permit: it gets it within the grace and runs.
    let checks = [
        ("first", http_check("first", "1s", "1s", &target.url(20, "first")), 0),
        ("second", http_check("second", "1s", "1s", &target.url(10, "second")), 5),
    ];
    let limits = Limits::with_overrides(&HashMap::from([(Kind::Http, 1)])).unwrap();
    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let runner = Runner::start("p1", &limits, tx, &stats);
    let collected = tokio::spawn(drain(rx));
    runner.apply(pairs(&mut planner, "h1", &checks));
    tokio::time::sleep(Duration::from_millis(2600)).await;
    runner.stop(Duration::from_secs(2)).await;
    let results = collected.await.unwrap();
    let planned = by_check(&results);
    assert!(planned["first"].len().abs_diff(planned["second"].len()) <= 1, "{planned:?}");
    assert!(planned["second"].len() >= 2, "{planned:?}");
    assert_eq!(stats.snapshot().skipped_busy, 0);
    // Each `second` run started only once the `first` run just before it was done.
    let mut waited = 0;
    for second in results.iter().filter(|result| result.check == "second") {
        let Some(first) = results.iter().find(|r| r.check == "first" && r.planned_at_ms == second.planned_at_ms - 5)
        else {
            continue;
        };
        let first_end = first.started_at_ms as f64 + first.outcome.duration_seconds * 1000.0;
        assert!(second.started_at_ms as f64 >= first_end - 1.0, "second started before first ended");
        waited += 1;
    }
    assert!(waited >= 2);
    assert_eq!(target.max_in_flight(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_assignment_set_keeps_the_pairs_that_stay() {
    let target = Target::start().await;
    let mut planner = Planner::new();
    let first_set = [
        ("stays", http_check("stays", "1s", "900ms", &target.url(10, "stays")), 100),
        ("leaves", http_check("leaves", "1s", "900ms", &target.url(400, "leaves")), 300),
    ];
    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let runner = Runner::start("p1", &Limits::default(), tx, &stats);
    let collected = tokio::spawn(drain(rx));
    runner.apply(pairs(&mut planner, "h1", &first_set));
    assert_eq!(wait_assigned(&stats, 2).await, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Change while `leaves` is in flight (due at .300, takes 400 ms); `stays` gets a new URL under a new
    // config hash but keeps its timing; `joins` is new.
    sleep_to_phase(400).await;
    let changed_at = now_ms();
    assert!(runner.in_flight() >= 1, "leaves is running");
    let second_set = [
        ("stays", http_check("stays", "1s", "900ms", &target.url(10, "stays-v2")), 100),
        ("joins", http_check("joins", "1s", "900ms", &target.url(10, "joins")), 700),
    ];
    runner.apply(pairs(&mut planner, "h2", &second_set));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    runner.stop(Duration::from_secs(2)).await;
    let planned = by_check(&collected.await.unwrap());

    let stays = &planned["stays"];
    assert!(stays.len() >= 4, "{stays:?}");
    assert!(stays.windows(2).all(|pair| pair[1] - pair[0] == 1000), "no gap and no double run: {stays:?}");
    let leaves = &planned["leaves"];
    assert_eq!(
        *leaves.last().unwrap(),
        changed_at / 1000 * 1000 + 300,
        "the run in flight still delivered: {leaves:?}"
    );
    let joins = &planned["joins"];
    assert!(joins[0] >= changed_at && joins[0] < changed_at + 1000, "starts at its next planned time: {joins:?}");
    assert!(joins.windows(2).all(|pair| pair[1] - pair[0] == 1000));
    let paths = target.paths();
    let last_old = paths.iter().rposition(|path| path.ends_with("/stays")).unwrap();
    let first_new = paths.iter().position(|path| path.ends_with("/stays-v2")).unwrap();
    assert!(last_old < first_new, "the new definition is used from the change on");
    assert_eq!(stats.snapshot().assigned_pairs, 0, "stopped");
}

async fn wait_assigned(stats: &StatsHandle, count: u64) -> u64 {
    common::wait_until(Duration::from_secs(2), || stats.snapshot().assigned_pairs == count).await;
    stats.snapshot().assigned_pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_owner_makes_the_planned_times_its_pair_missed_spread_over_an_interval() {
    let target = Target::start().await;
    let mut planner = Planner::new();
    let now = now_ms();
    // Interval 10 s. "missed": its latest stored result was 13 s ago, so the run planned 3 s ago was nobody's.
    // "current": its latest result is its last planned time, nothing missed. "stale" (catch_up 20s): its latest
    // stored result is 40 s before its next run (in 5 s), so it missed the runs 25, 15 and 5 s ago: the one 25 s
    // ago is past its catch_up, the other two are made, the first at once and the second 2.5 s later (spread
    // up to its next run). "none" (catch_up 0s) missed as much and makes up for nothing.
    // "imminent": it missed the run 9 s ago and its next is in 1 s; its target answers in 1.3 s, so the catch-up
    // is still going at the next planned time, which runs all the same (a catch-up never makes a run skip).
    let offset = |at: i64| u64::try_from(at.rem_euclid(10_000)).unwrap();
    let missed_at = now - 3_000;
    let ahead = now + 5_000;
    let soon = now + 1_000;
    let checks = [
        ("missed", offset(missed_at), ""),
        ("current", offset(ahead), ""),
        ("stale", offset(ahead), "    catch_up: 20s\n"),
        ("none", offset(ahead), "    catch_up: 0s\n"),
        ("imminent", offset(soon), ""),
    ];
    let checks: Vec<(&str, String, u64)> = checks
        .iter()
        .map(|(name, offset, extra)| {
            let delay = if *name == "imminent" { 1_300 } else { 0 };
            let check = http_check(name, "10s", "2s", &target.url(delay, name));
            (*name, check.replacen("    interval:", &format!("{extra}    interval:"), 1), *offset)
        })
        .collect();
    let mut assigned = pairs(&mut planner, "h1", &checks);
    for pair in &mut assigned {
        pair.resume_after_ms = match &*pair.check.name {
            "missed" => Some(missed_at - 10_000),
            "current" => Some(ahead - 10_000),
            "imminent" => Some(soon - 20_000),
            _ => Some(ahead - 40_000),
        };
    }
    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let runner = Runner::start("p1", &Limits::default(), tx, &stats);
    let collected = tokio::spawn(drain(rx));
    runner.apply(assigned);
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    runner.stop(Duration::from_secs(3)).await;
    let results = collected.await.unwrap();
    let planned = by_check(&results);
    assert_eq!(planned.get("missed"), Some(&vec![missed_at]), "the missed run, once: {planned:?}");
    assert_eq!(planned.get("current"), None, "nothing missed, nothing run early: {planned:?}");
    assert_eq!(
        planned.get("stale"),
        Some(&vec![ahead - 20_000, ahead - 10_000]),
        "every missed run within catch_up, not one missed longer ago: {planned:?}"
    );
    assert_eq!(planned.get("none"), None, "catch_up 0s makes up for nothing: {planned:?}");
    assert_eq!(
        planned.get("imminent"),
        Some(&vec![soon - 10_000, soon]),
        "the catch-up and the next run, not skipped as an overrun: {planned:?}"
    );
    let stats = stats.snapshot();
    assert_eq!(stats.skipped_overrun, 0);
    assert_eq!(stats.runs_caught_up, 4, "counted: {stats:?}");
    let missed_run = results.iter().find(|result| result.check == "missed").unwrap();
    assert!(missed_run.started_at_ms >= missed_at + 3_000, "the missed run ran late, now");
    let started = |at: i64| results.iter().find(|r| r.check == "stale" && r.planned_at_ms == at).unwrap().started_at_ms;
    let gap = started(ahead - 10_000) - started(ahead - 20_000);
    assert!((2_000..3_500).contains(&gap), "spread over the time to the next run (2.5 s apart), not at once: {gap} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_runs_inside_a_pause_window_are_skipped_and_counted() {
    let target = Target::start().await;
    let mut planner = Planner::new();
    let checks =
        [http_check("a", "1s", "900ms", &target.url(20, "a")), http_check("b", "1s", "900ms", &target.url(20, "b"))];
    // A pause of `a` for the two whole seconds starting two seconds from now.
    let start_ms = (now_ms() / 1000 + 2) * 1000;
    let start = chrono::DateTime::from_timestamp_millis(start_ms).unwrap().to_rfc3339();
    let mut file = config(&checks);
    file.text.push_str(&format!(
        "maintenance:\n  - {{name: deploy, checks: [a], start: \"{start}\", duration: 2s, mode: pause}}\n"
    ));
    let plan = planner.update(&Assignments {
        generation: 1,
        config_hash: "h1".to_owned(),
        config: vec![file],
        assigned: ["a", "b"]
            .iter()
            .map(|name| Assignment {
                check: (*name).to_owned(),
                region: "eu-west".to_owned(),
                offset_ms: 0,
                resume_after_ms: None,
            })
            .collect(),
    });
    assert!(plan.config_errors.is_empty(), "{:?}", plan.config_errors);
    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let runner = Runner::start("p1", &Limits::default(), tx, &stats);
    let collected = tokio::spawn(drain(rx));
    runner.apply(plan.pairs);
    let until = start_ms + 3500;
    tokio::time::sleep(Duration::from_millis(u64::try_from(until - now_ms()).unwrap())).await;
    assert_eq!(runner.stop(Duration::from_secs(2)).await, 0);
    let planned = by_check(&collected.await.unwrap());
    assert!(
        planned["a"].iter().all(|at| *at < start_ms || *at >= start_ms + 2000),
        "a ran while paused: {:?}",
        planned["a"]
    );
    assert!(planned["a"].contains(&(start_ms + 3000)), "a runs again after the window: {:?}", planned["a"]);
    assert!(planned["b"].contains(&start_ms) && planned["b"].contains(&(start_ms + 1000)), "b is not paused");
    assert_eq!(stats.snapshot().skipped_maintenance, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_gets_one_traceroute_within_the_rate_limit_and_a_passing_one_none() {
    let target = Target::start().await;
    // A port nobody listens on: every run of `down` fails at connect. Its URL holds a token (credentials in
    // a URL are refused by validation), which must never reach the evidence: only the address does.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down_url = format!("http://127.0.0.1:{port}/private/hunter2?token=s3cret");
    let mut planner = Planner::new();
    let checks = [
        ("down", http_check("down", "1s", "900ms", &down_url), 0),
        ("fine", http_check("fine", "1s", "900ms", &target.url(5, "fine")), 500),
    ];
    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let policy = probenet_prober::evidence::Policy::default();
    assert_eq!(policy.interval, Some(Duration::from_secs(600)), "the default: once per pair per 10 minutes");
    let runner = Runner::with_evidence("p1", &Limits::default(), policy, tx, &stats);
    let collected = tokio::spawn(drain(rx));
    runner.apply(pairs(&mut planner, "h1", &checks));
    tokio::time::sleep(Duration::from_millis(3600)).await;
    runner.stop(Duration::from_secs(2)).await;
    let results = collected.await.unwrap();

    let down: Vec<&RunResult> = results.iter().filter(|result| result.check == "down").collect();
    let fine: Vec<&RunResult> = results.iter().filter(|result| result.check == "fine").collect();
    assert!(down.len() >= 3 && fine.len() >= 3, "{} down, {} fine", down.len(), fine.len());
    assert!(down.iter().all(|result| result.outcome.state == State::Down));
    assert!(fine.iter().all(|result| result.outcome.state == State::Up && result.outcome.artifacts.is_empty()));
    let with_evidence: Vec<&&RunResult> = down.iter().filter(|result| !result.outcome.artifacts.is_empty()).collect();
    assert_eq!(with_evidence.len(), 1, "exactly one capture within the rate-limit window");
    let artifact = &with_evidence[0].outcome.artifacts[0];
    assert_eq!((artifact.name.as_str(), artifact.media_type.as_str()), ("traceroute.json", "application/json"));
    let text = String::from_utf8(artifact.data.clone()).unwrap();
    println!("{text}");
    for secret in ["hunter2", "s3cret", "private", "http"] {
        assert!(!text.contains(secret), "{secret} in the evidence");
    }
    let evidence: serde_json::Value = serde_json::from_str(&text).unwrap();
    let traceroute = &evidence["traceroute"];
    assert_eq!(traceroute["target"], "127.0.0.1");
    assert_eq!(traceroute["method"], "udp");
    assert_eq!(traceroute["reached"], true);
    assert_eq!(traceroute["hops"][0]["address"], "127.0.0.1");
    assert!(traceroute["summary"].as_str().unwrap().starts_with("reached 127.0.0.1 in 1 hop"));
    let log = &with_evidence[0].outcome.log;
    assert!(log.iter().any(|line| line.starts_with("traceroute from eu-west: reached 127.0.0.1 in 1 hop")), "{log:?}");
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.evidence_captured, 1);
    assert_eq!(snapshot.evidence_rate_limited, down.len() as u64 - 1);
    assert_eq!((snapshot.evidence_busy, snapshot.evidence_timed_out, snapshot.evidence_no_address), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_evidence_a_failing_check_gets_no_artifact() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut planner = Planner::new();
    let checks = [("down", http_check("down", "1s", "900ms", &format!("http://127.0.0.1:{port}/")), 0)];
    let (tx, rx) = mpsc::channel(1024);
    let stats = StatsHandle::default();
    let runner = Runner::start("p1", &Limits::default(), tx, &stats);
    let collected = tokio::spawn(drain(rx));
    runner.apply(pairs(&mut planner, "h1", &checks));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    runner.stop(Duration::from_secs(2)).await;
    let results = collected.await.unwrap();
    assert!(!results.is_empty());
    assert!(results.iter().all(|result| result.outcome.state == State::Down && result.outcome.artifacts.is_empty()));
    assert_eq!(stats.snapshot().evidence_captured + stats.snapshot().evidence_rate_limited, 0);
}
