//! The whole prober against a strict in-test scheduler: register, assignments, acknowledged results; an
//! outage spooled and replayed exactly once; a refused token is fatal; shutdown deregisters and flushes;
//! TLS with a private CA.
#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::{Scheduler, Setup, Target, config, http_check, start, wait_until};
use probenet_checks::Kind;
use probenet_checks::wire::{Assignment, PROTOCOL_VERSION};
use probenet_prober::plan::now_ms;
use probenet_prober::{Error, Options};

const TOKEN: &str = "pn_test_0123456789";

fn setup(target: &Target, checks: &[(&str, u64, u64)]) -> Setup {
    let yaml: Vec<String> =
        checks.iter().map(|(name, delay, _)| http_check(name, "1s", "900ms", &target.url(*delay, name))).collect();
    Setup {
        token: TOKEN.to_owned(),
        region: "eu-west".to_owned(),
        heartbeat_seconds: 0.2,
        config: vec![config(&yaml)],
        config_hash: "hash-1".to_owned(),
        assigned: checks
            .iter()
            .map(|(name, _, offset)| Assignment {
                check: (*name).to_owned(),
                region: "eu-west".to_owned(),
                offset_ms: *offset,
                resume_after_ms: None,
            })
            .collect(),
    }
}

fn options(url: &str, spool: &Path) -> Options {
    let mut options = Options::new(url, "eu-west", format!("  {TOKEN}\n"));
    options.name = "prober-1".to_owned();
    options.spool = spool.to_owned();
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_runs_its_assignments_and_gets_results_acknowledged() {
    let target = Target::start().await;
    let scheduler = Scheduler::start(setup(&target, &[("alpha", 10, 100), ("beta", 10, 600)])).await;
    let spool = tempfile::tempdir().unwrap();
    let prober = start(options(&scheduler.url, spool.path()));
    assert!(
        wait_until(Duration::from_secs(10), || {
            let store = scheduler.store();
            ["alpha", "beta"].iter().all(|check| store.results.iter().filter(|r| r.check == *check).count() >= 3)
        })
        .await,
        "results arrive"
    );
    // The scheduler stores before it acknowledges: the prober's count follows.
    assert!(wait_until(Duration::from_secs(3), || prober.stats.snapshot().results_sent >= 6).await);
    let live = prober.stats.snapshot();
    assert!(live.registered);
    assert_eq!(live.assigned_pairs, 2);
    let stats = prober.shutdown().await.unwrap();

    let registry = scheduler.registry();
    let store = scheduler.store();
    assert_eq!(registry.deregistered, ["prober-1"]);
    assert!(registry.heartbeats >= 2, "heartbeats every 0.2 s: {}", registry.heartbeats);
    // Each heartbeat tells the scheduler how the prober is doing: nothing lost, runs started on time.
    let report = registry.last_report.clone().expect("a heartbeat's report");
    assert_eq!((report.results_dropped_total, report.runs_skipped_total), (0, 0), "{report:?}");
    assert!(report.start_lateness_p99_ms.is_some_and(|ms| ms < 1000.0), "{report:?}");
    assert!(registry.calls.iter().all(|call| call.status < 400), "{:?}", registry.calls);
    assert_eq!(store.duplicates, 0);
    assert_eq!(stats.runs as usize, store.results.len(), "every run's result arrived");
    assert_eq!(stats.results_sent, stats.runs);
    assert_eq!((stats.results_spooled, stats.spool_dropped, stats.results_dropped), (0, 0, 0));
    for result in &store.results {
        assert_eq!(result.prober, "prober-1");
        assert_eq!(result.region, "eu-west");
        let offset = if result.check == "alpha" { 100 } else { 600 };
        assert_eq!(result.planned_at_ms.rem_euclid(1000), offset, "on the pair's grid");
    }
    drop(registry);
    drop(store);
    // The registration as the wire says.
    let calls = scheduler.calls();
    assert_eq!(calls[0].path, "/v1/register");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registration_carries_name_region_version_protocol_and_kinds() {
    // A scheduler that records the registration body: the strict server refuses anything else, so a
    // successful registration proves the shape; the kinds are checked here.
    let target = Target::start().await;
    let scheduler = Scheduler::start(setup(&target, &[])).await;
    let spool = tempfile::tempdir().unwrap();
    let prober = start(options(&scheduler.url, spool.path()));
    assert!(wait_until(Duration::from_secs(5), || prober.stats.snapshot().registered).await);
    {
        let registry = scheduler.registry();
        let register = &registry.probers["prober-1"];
        assert_eq!(register.region, "eu-west");
        assert_eq!(register.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(register.protocol, PROTOCOL_VERSION);
        assert_eq!(register.kinds, Kind::ALL);
    }
    prober.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_spooled_and_replayed_exactly_once() {
    let target = Target::start().await;
    let mut scheduler = Scheduler::start(setup(&target, &[("alpha", 5, 0), ("beta", 5, 500)])).await;
    let spool = tempfile::tempdir().unwrap();
    let prober = start(options(&scheduler.url, spool.path()));
    assert!(wait_until(Duration::from_secs(10), || scheduler.store().results.len() >= 2).await);
    scheduler.stop().await;
    let before = scheduler.store().results.len();
    assert!(
        wait_until(Duration::from_secs(15), || prober.stats.snapshot().results_spooled >= 6).await,
        "results go to the spool while the scheduler is down: {:?}",
        prober.stats.snapshot()
    );
    let spooled_files = std::fs::read_dir(spool.path()).unwrap().count();
    assert!(spooled_files >= 2, "segments on disk (and the lock file)");
    // The scheduler comes back with no memory of the prober: it registers again and replays the spool.
    scheduler.restart().await;
    assert!(
        wait_until(Duration::from_secs(20), || {
            let stats = prober.stats.snapshot();
            stats.results_replayed >= stats.results_spooled && stats.spool_bytes == 0
        })
        .await,
        "the spool is replayed: {:?}",
        prober.stats.snapshot()
    );
    let stats = prober.shutdown().await.unwrap();

    let store = scheduler.store();
    assert!(store.results.len() > before);
    assert_eq!(store.duplicates, 0, "no result was sent twice");
    let ids: HashSet<_> = store.results.iter().map(|r| (r.check.clone(), r.planned_at_ms)).collect();
    assert_eq!(ids.len(), store.results.len());
    assert_eq!(stats.runs as usize, store.results.len(), "every run arrived exactly once: {stats:?}");
    assert_eq!(stats.results_sent, stats.runs);
    assert_eq!(stats.results_replayed, stats.results_spooled);
    assert_eq!((stats.spool_dropped, stats.results_dropped, stats.results_rejected), (0, 0, 0));
    // No gap: each pair's planned times are consecutive across the outage.
    for check in ["alpha", "beta"] {
        let mut planned: Vec<i64> =
            store.results.iter().filter(|r| r.check == check).map(|r| r.planned_at_ms).collect();
        planned.sort_unstable();
        assert!(planned.windows(2).all(|pair| pair[1] - pair[0] == 1000), "{check}: {planned:?}");
    }
    let registry = scheduler.registry();
    assert!(registry.probers.is_empty() && registry.deregistered == ["prober-1"], "registered again, then left");
    let left: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".jsonl"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_results_from_an_earlier_run_are_replayed_at_start() {
    let target = Target::start().await;
    let spool = tempfile::tempdir().unwrap();
    // A first prober runs with no scheduler at all: everything goes to the spool at shutdown.
    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let first = start(options(&format!("http://{nowhere}"), spool.path()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = first.shutdown().await.unwrap();
    assert_eq!(stats.runs, 0, "not registered, so nothing assigned");

    // Write a segment as an earlier run would have left it, then start against a live scheduler.
    let scheduler = Scheduler::start(setup(&target, &[])).await;
    {
        let mut spool = probenet_prober::Spool::open(spool.path(), 1 << 20).unwrap();
        let results: Vec<_> = (0..7)
            .map(|i| probenet_checks::wire::RunResult {
                check: "alpha".to_owned(),
                region: "eu-west".to_owned(),
                planned_at_ms: now_ms() / 1000 * 1000 - i * 1000,
                started_at_ms: now_ms(),
                prober: "prober-old".to_owned(),
                outcome: probenet_checks::Outcome::failed(probenet_checks::Reason::Connect, "refused"),
            })
            .collect();
        spool.push(&results).unwrap();
    }
    let second = start(options(&scheduler.url, spool.path()));
    assert!(wait_until(Duration::from_secs(10), || scheduler.store().results.len() == 7).await);
    let stats = second.shutdown().await.unwrap();
    assert_eq!(stats.results_replayed, 7);
    assert_eq!(stats.spool_bytes, 0);
    assert!(scheduler.store().results.iter().all(|result| result.prober == "prober-old"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_fatal() {
    let target = Target::start().await;
    let scheduler = Scheduler::start(setup(&target, &[])).await;
    let spool = tempfile::tempdir().unwrap();
    let mut wrong = options(&scheduler.url, spool.path());
    wrong.token = "pn_wrong".to_owned();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), probenet_prober::run(wrong, std::future::pending()))
        .await
        .expect("a refused token ends the prober");
    assert!(matches!(result, Err(Error::Unauthorized(_))), "{result:?}");
    let message = result.unwrap_err().to_string();
    assert!(message.contains("401") && message.contains("token"), "{message}");
    assert!(!message.contains("pn_wrong"), "the token never shows");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A token of another region: 403, fatal too.
    let mut other_region = options(&scheduler.url, spool.path());
    other_region.region = "us-east".to_owned();
    let result =
        tokio::time::timeout(Duration::from_secs(10), probenet_prober::run(other_region, std::future::pending()))
            .await
            .expect("a refused region ends the prober");
    assert!(matches!(&result, Err(Error::Unauthorized(error)) if error.to_string().contains("403")), "{result:?}");
    assert!(scheduler.registry().probers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_held_by_another_registration_is_retried_until_it_frees() {
    let target = Target::start().await;
    let scheduler = Scheduler::start(setup(&target, &[("site", 0, 0)])).await;
    scheduler.registry().squatted.insert("prober-1".to_owned());
    let spool = tempfile::tempdir().unwrap();
    let running = start(options(&scheduler.url, spool.path()));
    let refused = || scheduler.calls().iter().filter(|call| call.path == "/v1/register" && call.status == 409).count();
    assert!(wait_until(Duration::from_secs(10), || refused() >= 3).await, "the prober stopped asking");
    assert!(!running.task.is_finished(), "a 409 ended the prober");
    // The squatter's lease ends: the prober registers and runs its checks.
    scheduler.registry().squatted.clear();
    assert!(
        wait_until(Duration::from_secs(15), || !scheduler.store().results.is_empty()).await,
        "no results after the name freed"
    );
    assert!(scheduler.registry().probers.contains_key("prober-1"));
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deregisters_first_and_flushes_the_runs_in_flight() {
    let target = Target::start().await;
    // `slow` takes 600 ms; shutdown comes 100 ms into one of its runs.
    let scheduler = Scheduler::start(setup(&target, &[("slow", 600, 0), ("quick", 5, 300)])).await;
    let spool = tempfile::tempdir().unwrap();
    let prober = start(options(&scheduler.url, spool.path()));
    assert!(wait_until(Duration::from_secs(10), || scheduler.store().results.len() >= 3).await);
    let now = now_ms();
    tokio::time::sleep(Duration::from_millis(u64::try_from((now / 1000 + 1) * 1000 + 100 - now).unwrap())).await;
    let in_flight_planned = now_ms() / 1000 * 1000;
    let stats = prober.shutdown().await.unwrap();

    let calls = scheduler.calls();
    let deregister = calls.iter().position(|call| call.path == "/v1/deregister").expect("deregistered");
    let last_results = calls.iter().rposition(|call| call.path == "/v1/results").unwrap();
    assert!(deregister < last_results, "deregister comes first, the flush after: {calls:?}");
    let store = scheduler.store();
    assert!(
        store.results.iter().any(|r| r.check == "slow" && r.planned_at_ms == in_flight_planned),
        "the run in flight at shutdown finished and was sent"
    );
    assert_eq!(stats.runs as usize, store.results.len());
    assert_eq!((stats.results_spooled, stats.runs_abandoned, stats.results_dropped), (0, 0, 0));
    assert!(!stats.registered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_the_scheduler_gone_spools_everything() {
    let target = Target::start().await;
    let mut scheduler = Scheduler::start(setup(&target, &[("alpha", 5, 0), ("beta", 5, 500)])).await;
    let spool = tempfile::tempdir().unwrap();
    let prober = start(options(&scheduler.url, spool.path()));
    assert!(wait_until(Duration::from_secs(10), || scheduler.store().results.len() >= 2).await);
    scheduler.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = prober.shutdown().await.unwrap();
    let sent = scheduler.store().results.len() as u64;
    assert_eq!(stats.results_sent, sent);
    assert!(stats.results_spooled >= 2);
    assert_eq!(stats.runs, sent + stats.results_spooled, "every result sent or spooled: {stats:?}");
    let spool = probenet_prober::Spool::open(spool.path(), 1 << 20).unwrap();
    assert_eq!(spool.results() as u64, stats.results_spooled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_that_cannot_be_used_keeps_results_in_memory() {
    let target = Target::start().await;
    let scheduler = Scheduler::start(setup(&target, &[("alpha", 5, 0)])).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let prober = start(options(&scheduler.url, &file.join("spool")));
    assert!(wait_until(Duration::from_secs(10), || scheduler.store().results.len() >= 2).await);
    let stats = prober.shutdown().await.unwrap();
    assert_eq!(stats.runs as usize, scheduler.store().results.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let scheduler = Scheduler::start_tls(setup(&target, &[("alpha", 5, 0)]), &ca).await;
    assert!(scheduler.url.starts_with("https://127.0.0.1:"));

    // Without the CA the certificate is not trusted: the prober keeps retrying, never registers.
    let untrusted = start(options(&scheduler.url, &dir.path().join("spool-a")));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!untrusted.stats.snapshot().registered);
    assert!(scheduler.registry().probers.is_empty());
    untrusted.shutdown().await.unwrap();

    let mut trusted = options(&scheduler.url, &dir.path().join("spool-b"));
    trusted.ca = Some(ca);
    let prober = start(trusted);
    assert!(wait_until(Duration::from_secs(10), || scheduler.store().results.len() >= 2).await);
    prober.shutdown().await.unwrap();

    // A CA file that does not exist is an error at once.
    let mut missing = options(&scheduler.url, &dir.path().join("spool-c"));
    missing.ca = Some(dir.path().join("nope.pem"));
    let result = probenet_prober::run(missing, std::future::pending()).await;
    assert!(matches!(result, Err(Error::Client(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_assignments_arrive_through_the_long_poll() {
    let target = Target::start().await;
    let scheduler = Scheduler::start(setup(&target, &[("alpha", 5, 0)])).await;
    let spool = tempfile::tempdir().unwrap();
    let prober = start(options(&scheduler.url, spool.path()));
    assert!(wait_until(Duration::from_secs(10), || prober.stats.snapshot().assigned_pairs == 1).await);
    // The long poll is held; a change answers it at once.
    let yaml = vec![
        http_check("alpha", "1s", "900ms", &target.url(5, "alpha")),
        http_check("gamma", "1s", "900ms", &target.url(5, "gamma")),
    ];
    scheduler.set_assigned(
        Some(vec![config(&yaml)]),
        Some("hash-2"),
        vec![
            Assignment {
                check: "gamma".to_owned(),
                region: "eu-west".to_owned(),
                offset_ms: 400,
                resume_after_ms: None,
            },
            Assignment { check: "ghost".to_owned(), region: "eu-west".to_owned(), offset_ms: 0, resume_after_ms: None },
        ],
    );
    assert!(
        wait_until(Duration::from_secs(3), || scheduler.store().results.iter().any(|r| r.check == "gamma")).await,
        "the new pair runs"
    );
    let changed_at = now_ms();
    let stats = prober.shutdown().await.unwrap();
    assert_eq!(stats.assigned_pairs, 0);
    let store = scheduler.store();
    assert!(store.results.iter().filter(|r| r.check == "alpha").all(|r| r.planned_at_ms < changed_at - 1000));
    assert!(!store.results.iter().any(|r| r.check == "ghost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_write_error_keeps_results_in_memory_until_the_scheduler_is_back() {
    let target = Target::start().await;
    let mut scheduler = Scheduler::start(setup(&target, &[("alpha", 5, 0), ("beta", 5, 500)])).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let prober = start(options(&scheduler.url, &spool));
    assert!(wait_until(Duration::from_secs(10), || scheduler.store().results.len() >= 2).await);
    // The spool's directory goes away (as a full or failing disk would refuse writes).
    std::fs::remove_dir_all(&spool).unwrap();
    scheduler.stop().await;
    assert!(
        wait_until(Duration::from_secs(15), || prober.stats.snapshot().spool_write_errors >= 2).await,
        "{:?}",
        prober.stats.snapshot()
    );
    let during = prober.stats.snapshot();
    assert_eq!(during.results_spooled, 0);
    assert!(during.runs > during.results_sent, "results wait in memory");
    scheduler.restart().await;
    assert!(
        wait_until(Duration::from_secs(20), || {
            let stats = prober.stats.snapshot();
            stats.results_sent > during.runs
        })
        .await,
        "{:?}",
        prober.stats.snapshot()
    );
    let stats = prober.shutdown().await.unwrap();
    let store = scheduler.store();
    assert_eq!(stats.runs as usize, store.results.len(), "nothing lost: {stats:?}");
    assert_eq!(store.duplicates, 0);
    assert_eq!((stats.results_spooled, stats.results_dropped, stats.spool_dropped), (0, 0, 0));
}
