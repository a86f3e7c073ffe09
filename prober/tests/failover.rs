//! A prober with several scheduler replicas (one result store, as one database behind them): it moves to the
//! next replica when the one in use refuses connections or answers 503, registers again there, and every
//! planned run is stored exactly once across the moves; with every replica down it spools, and delivers
//! everything once one is back; a name with several addresses is one replica per address over TLS; a
//! refused token stays fatal.
#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Scheduler, Setup, Store, Target, config, http_check, start, tls_acceptor, wait_until};
use probenet_checks::wire::Assignment;
use probenet_prober::{Error, Options, Stats};

const TOKEN: &str = "pn_test_0123456789";
const PROBER: &str = "prober-1";

/// `alpha` at :000 and `beta` at :500 of every second, against `target`; heartbeats every 0.2 s.
fn setup(target: &Target) -> Setup {
    let checks = [("alpha", 0), ("beta", 500)];
    let yaml: Vec<String> =
        checks.iter().map(|(name, _)| http_check(name, "1s", "900ms", &target.url(5, name))).collect();
    Setup {
        token: TOKEN.to_owned(),
        region: "eu-west".to_owned(),
        heartbeat_seconds: 0.2,
        config: vec![config(&yaml)],
        config_hash: "hash-1".to_owned(),
        assigned: checks
            .iter()
            .map(|(name, offset)| Assignment {
                check: (*name).to_owned(),
                region: "eu-west".to_owned(),
                offset_ms: *offset,
                resume_after_ms: None,
            })
            .collect(),
    }
}

/// Three replicas sharing one store.
async fn replicas(target: &Target) -> [Scheduler; 3] {
    let store: Arc<Mutex<Store>> = Arc::default();
    [
        Scheduler::start_replica(setup(target), store.clone()).await,
        Scheduler::start_replica(setup(target), store.clone()).await,
        Scheduler::start_replica(setup(target), store).await,
    ]
}

fn options(schedulers: &str, spool: &Path) -> Options {
    let mut options = Options::new(schedulers, "eu-west", TOKEN);
    options.name = PROBER.to_owned();
    options.spool = spool.to_owned();
    options
}

/// Every result in `store` once, and for each check every planned time of its window present exactly once
/// (one a second, no gap, no repeat). Returns how many results. (A batch received twice, when a replica died
/// between storing it and answering, is stored once: the store is idempotent on the run, as the database.)
fn assert_every_planned_run_once(store: &Store, stats: &Stats) -> usize {
    let ids: HashSet<_> = store.results.iter().map(|r| (r.check.clone(), r.planned_at_ms)).collect();
    assert_eq!(ids.len(), store.results.len(), "a result was stored twice");
    assert_eq!(stats.runs as usize, store.results.len(), "every run arrived exactly once: {stats:?}");
    assert_eq!(stats.results_sent, stats.runs, "{stats:?}");
    assert_eq!((stats.spool_dropped, stats.results_dropped, stats.results_rejected), (0, 0, 0), "{stats:?}");
    for check in ["alpha", "beta"] {
        let mut planned: Vec<i64> =
            store.results.iter().filter(|r| r.check == check).map(|r| r.planned_at_ms).collect();
        planned.sort_unstable();
        assert!(planned.len() >= 5, "{check}: {planned:?}");
        assert!(planned.windows(2).all(|pair| pair[1] - pair[0] == 1000), "{check}: a gap or a repeat: {planned:?}");
    }
    store.results.len()
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn metrics(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap()
}

/// The value of the series `name` (with its labels, as written) in a `/metrics` page.
fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_drops_the_oldest_and_says_so_in_metrics() {
    let target = Target::start().await;
    let [mut a, _b, _c] = replicas(&target).await;
    let spool = tempfile::tempdir().unwrap();
    let mut options = options(&a.url, spool.path());
    options.spool_max_bytes = 2048;
    let metrics_addr = free_port();
    options.metrics_listen = Some(metrics_addr);
    let prober = start(options);
    assert!(wait_until(Duration::from_secs(10), || a.acknowledged_batches() >= 1).await, "results through a");
    a.stop().await;
    assert!(
        wait_until(Duration::from_secs(20), || prober.stats.snapshot().spool_dropped > 0).await,
        "a spool of 2 KiB fills within seconds: {:?}",
        prober.stats.snapshot()
    );
    let text = metrics(metrics_addr).await;
    let dropped = value(&text, "probenet_prober_results_dropped_total{reason=\"spool\"}");
    assert!(dropped >= 1.0, "{text}");
    assert!(value(&text, "probenet_prober_spool_bytes") <= 2048.0, "{text}");
    assert_eq!(value(&text, "probenet_prober_scheduler_up"), 0.0, "{text}");
    for reason in ["overrun", "busy", "late", "abandoned"] {
        value(&text, &format!("probenet_prober_runs_skipped_total{{reason=\"{reason}\"}}"));
    }
    assert!(value(&text, "probenet_prober_start_lateness_seconds{quantile=\"0.99\"}") >= 0.0, "{text}");
    let stats = prober.shutdown().await.unwrap();
    assert!(stats.spool_dropped as f64 >= dropped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_to_the_next_replica_when_one_is_gone_then_when_one_answers_503() {
    let target = Target::start().await;
    let [mut a, b, c] = replicas(&target).await;
    let spool = tempfile::tempdir().unwrap();
    let mut options = options(&format!("{}, {},{}", a.url, b.url, c.url), spool.path());
    let metrics_addr = free_port();
    options.metrics_listen = Some(metrics_addr);
    let prober = start(options);

    // On the first replica, sticking to it while it answers.
    assert!(wait_until(Duration::from_secs(10), || a.acknowledged_batches() >= 2).await, "results through a");
    assert!(a.knows(PROBER) && !b.knows(PROBER) && !c.knows(PROBER));
    assert!(b.calls().is_empty() && c.calls().is_empty(), "no round robin while a answers");

    // The first dies (connections refused from then on): on to the second.
    let stopped = Instant::now();
    a.kill().await;
    assert!(wait_until(Duration::from_secs(10), || b.knows(PROBER)).await, "registered with b");
    let to_b = stopped.elapsed();
    assert!(wait_until(Duration::from_secs(10), || b.acknowledged_batches() >= 2).await, "results through b");
    assert!(c.calls().is_empty(), "no move while b answers: {:?}", c.calls());

    // The second answers 503 to everything: on to the third.
    let down = Instant::now();
    b.set_down(true);
    assert!(wait_until(Duration::from_secs(10), || c.knows(PROBER)).await, "registered with c");
    let to_c = down.elapsed();
    assert!(wait_until(Duration::from_secs(10), || c.acknowledged_batches() >= 2).await, "results through c");
    eprintln!("switch a→b (connection refused) took {to_b:?}; b→c (503) took {to_c:?}");
    assert!(to_b < Duration::from_secs(5) && to_c < Duration::from_secs(5), "{to_b:?} {to_c:?}");

    let text = metrics(metrics_addr).await;
    let current = format!("probenet_prober_scheduler_current{{url=\"{}\",address=\"\"}} 1", c.url);
    assert!(text.contains(&current), "{text}");
    for other in [&a.url, &b.url] {
        assert!(text.contains(&format!("probenet_prober_scheduler_current{{url=\"{other}\",address=\"\"}} 0")));
    }
    assert!(!text.contains(TOKEN));
    let switches = prober.stats.snapshot().scheduler_switches;
    assert!((2..=4).contains(&switches), "a→b, b→c (and at most a stray extra): {switches}");
    assert!(text.contains(&format!("probenet_prober_scheduler_switches_total {switches}")), "{text}");

    let stats = prober.shutdown().await.unwrap();
    assert_eq!(c.registry().deregistered, [PROBER], "deregistered from the replica in use");
    let store = c.store();
    let results = assert_every_planned_run_once(&store, &stats);
    assert!(store.duplicates <= 1, "at most the batch in flight when a died is received twice: {}", store.duplicates);
    eprintln!("{results} results, {} batches, {switches} switches", store.batches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_replica_down_results_are_spooled_then_delivered_once() {
    let target = Target::start().await;
    let [mut a, mut b, mut c] = replicas(&target).await;
    let spool = tempfile::tempdir().unwrap();
    let mut options = options(&format!("{},{},{}", a.url, b.url, c.url), spool.path());
    let metrics_addr = free_port();
    options.metrics_listen = Some(metrics_addr);
    let prober = start(options);
    assert!(wait_until(Duration::from_secs(10), || a.acknowledged_batches() >= 2).await, "results through a");
    assert_eq!(value(&metrics(metrics_addr).await, "probenet_prober_scheduler_up"), 1.0);

    tokio::join!(a.stop(), b.stop(), c.stop());
    assert!(
        wait_until(Duration::from_secs(15), || prober.stats.snapshot().results_spooled >= 6).await,
        "results go to the spool while every replica is down: {:?}",
        prober.stats.snapshot()
    );
    // `/metrics` says so: the scheduler is down, and what waits (spooled and in memory) is pending.
    let text = metrics(metrics_addr).await;
    assert_eq!(value(&text, "probenet_prober_scheduler_up"), 0.0, "{text}");
    let stats = prober.stats.snapshot();
    assert!(value(&text, "probenet_prober_results_pending") >= 6.0, "{text}");
    assert!(value(&text, "probenet_prober_spool_bytes") > 0.0, "{text}");
    assert!(stats.results_spooled >= 6);
    // Attempts stay bounded while everything is down: each call tries each replica once, then backs off.
    let switches = prober.stats.snapshot().scheduler_switches;
    assert!(switches < 200, "{switches} moves in a few seconds");

    // The second comes back (with no memory of the prober): it registers there and the spool is replayed.
    let back = Instant::now();
    b.restart().await;
    assert!(
        wait_until(Duration::from_secs(15), || {
            let stats = prober.stats.snapshot();
            b.knows(PROBER) && stats.results_replayed >= stats.results_spooled && stats.spool_bytes == 0
        })
        .await,
        "the spool is replayed: {:?}",
        prober.stats.snapshot()
    );
    eprintln!("back on b and the spool replayed {:?} after it came back", back.elapsed());
    let text = metrics(metrics_addr).await;
    assert_eq!(value(&text, "probenet_prober_scheduler_up"), 1.0, "{text}");
    assert_eq!(value(&text, "probenet_prober_spool_bytes"), 0.0, "{text}");
    assert!(value(&text, "probenet_prober_results_replayed_total") >= 6.0, "{text}");
    assert_eq!(value(&text, "probenet_prober_results_dropped_total{reason=\"spool\"}"), 0.0, "{text}");
    let stats = prober.shutdown().await.unwrap();
    assert_eq!(stats.results_replayed, stats.results_spooled);
    let store = b.store();
    assert_every_planned_run_once(&store, &stats);
    assert_eq!(store.duplicates, 0, "nothing was received twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_several_addresses_is_one_replica_per_address_over_tls() {
    let target = Target::start().await;
    let ca = tempfile::tempdir().unwrap();
    let ca_path = ca.path().join("ca.pem");
    let tls = tls_acceptor(&ca_path);
    let store: Arc<Mutex<Store>> = Arc::default();
    // Two replicas on one port, on two loopback addresses; the certificate names `localhost`.
    let first = free_port();
    let second = SocketAddr::new("127.0.0.2".parse().unwrap(), first.port());
    let mut a = Scheduler::start_replica_tls(first, setup(&target), store.clone(), tls.clone()).await;
    let b = Scheduler::start_replica_tls(second, setup(&target), store, tls).await;
    let spool = tempfile::tempdir().unwrap();
    let url = format!("https://localhost:{}", first.port());
    let mut options = options(&url, spool.path());
    options.ca = Some(ca_path);
    options.addresses = HashMap::from([("localhost".to_owned(), vec![first, second])]);
    let prober = start(options);

    assert!(wait_until(Duration::from_secs(10), || a.acknowledged_batches() >= 2).await, "results through a");
    assert!(b.calls().is_empty());
    a.stop().await;
    assert!(wait_until(Duration::from_secs(10), || b.knows(PROBER)).await, "registered with b");
    assert!(wait_until(Duration::from_secs(10), || b.acknowledged_batches() >= 2).await, "results through b");
    let stats = prober.shutdown().await.unwrap();
    assert!(stats.scheduler_switches >= 1);
    let store = b.store();
    assert_every_planned_run_once(&store, &stats);
    assert_eq!(store.duplicates, 0, "nothing was received twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_fatal_not_a_reason_to_move() {
    let target = Target::start().await;
    let [a, b, c] = replicas(&target).await;
    a.set_down(true);
    let spool = tempfile::tempdir().unwrap();
    let mut options = options(&format!("{},{},{}", a.url, b.url, c.url), spool.path());
    options.token = "pn_wrong".to_owned();
    let result = tokio::time::timeout(Duration::from_secs(10), probenet_prober::run(options, std::future::pending()))
        .await
        .expect("a refused token ends the prober");
    assert!(matches!(&result, Err(Error::Unauthorized(error)) if error.to_string().contains("401")), "{result:?}");
    assert!(a.calls().iter().all(|call| call.status == 503));
    assert!(!b.calls().is_empty(), "moved past the replica answering 503");
    assert!(c.calls().is_empty(), "a 401 is not a replica problem: no move to c");
}
