//! Sinks fed by the store (a scheduler's): remote write into a real VictoriaMetrics that goes away for minutes
//! while results keep coming, and a sink restarted in the middle of it; every result reaches VictoriaMetrics,
//! counted there per minute, and nothing is dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use probenet_checks::outcome::Outcome;
use probenet_checks::wire::RunResult;
use probenet_exporters::fed::{Checks, Feed};
use probenet_exporters::store::{SqliteStore, Store, StoreOptions};
use probenet_exporters::{CheckMeta, QueueOptions, RemoteWriteOptions, RemoteWriteSink, SinkHandle};
use probenet_testkit::stores;

const MINUTE_MS: i64 = 60_000;

fn now_ms() -> i64 {
    (stores::now_seconds() * 1000.0) as i64
}

fn checks(count: usize) -> Checks {
    let kind = "http".parse().unwrap_or_else(|error| panic!("{error}"));
    let map: HashMap<String, Arc<CheckMeta>> = (0..count)
        .map(|i| {
            let name = format!("c{i:04}");
            let meta = CheckMeta { name: name.clone(), kind, target: format!("http://t{i}/"), labels: BTreeMap::new() };
            (name, Arc::new(meta))
        })
        .collect();
    Arc::new(RwLock::new(Arc::new(map)))
}

fn sink(handle_name: &str, port: u16, feed: &Feed, checks: &Checks) -> SinkHandle {
    let options = RemoteWriteOptions { url: format!("http://127.0.0.1:{port}/api/v1/write"), ..Default::default() };
    let sink = RemoteWriteSink::new(options).unwrap_or_else(|error| panic!("{error}"));
    let queue = QueueOptions { max_backoff: Duration::from_secs(5), ..QueueOptions::default() };
    let sink: Arc<dyn probenet_exporters::Sink> = Arc::new(sink);
    let cursor = probenet_exporters::fed::cursor_name(sink.as_ref());
    SinkHandle::spawn_fed(handle_name, cursor, sink, queue, feed.clone(), checks.clone())
}

/// Every `probe_success` sample VictoriaMetrics holds: (check, region) -> timestamps, and how many samples in
/// all (a timestamp stored twice counts twice there).
async fn exported(base: &str) -> (HashMap<(String, String), BTreeSet<i64>>, usize) {
    let body = reqwest::Client::new()
        .get(format!("{base}/api/v1/export?match[]=probe_success"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|error| panic!("export: {error}"))
        .text()
        .await
        .unwrap_or_else(|error| panic!("export: {error}"));
    let mut series: HashMap<(String, String), BTreeSet<i64>> = HashMap::new();
    let mut samples = 0;
    for line in body.lines().filter(|line| !line.is_empty()) {
        let row: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"));
        let label = |name: &str| row["metric"][name].as_str().unwrap_or_default().to_owned();
        let stamps = row["timestamps"].as_array().cloned().unwrap_or_default();
        samples += stamps.len();
        series.entry((label("job"), label("probe"))).or_default().extend(stamps.iter().filter_map(|t| t.as_i64()));
    }
    (series, samples)
}

/// Runs `pairs` pairs once a second (`pairs` results a second) into the store, with a remote-write sink fed by
/// it, for `before` + `outage` + `after`; VictoriaMetrics is down for `outage`, and the sink is closed and
/// started again half way through it (a scheduler restart). Then every stored result must be in
/// VictoriaMetrics, minute by minute, and nothing counted as dropped.
async fn outage_loses_nothing(pairs: usize, before: Duration, outage: Duration, after: Duration) {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let vm_data = dir.path().join("vm");
    let port = stores::free_port();
    let mut vm = Some(stores::victoria_metrics_at(Some(&vm_data), port).await);
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("store"), StoreOptions { durable: false, ..StoreOptions::default() })
            .unwrap_or_else(|error| panic!("{error}")),
    );
    let (_delivering, may_deliver) = tokio::sync::watch::channel(true);
    let feed = Feed::new(store.clone(), may_deliver);
    let checks = checks(pairs / 2);
    let mut handle = Some(sink("rw", port, &feed, &checks));
    let first_check = checks.read().unwrap_or_else(std::sync::PoisonError::into_inner)["c0000"].clone();

    let start = Instant::now();
    let down_at = before;
    let restart_at = before + outage / 2;
    let up_at = before + outage;
    let end = before + outage + after;
    let mut expected: HashMap<(String, String), BTreeSet<i64>> = HashMap::new();
    let mut per_minute: BTreeMap<i64, usize> = BTreeMap::new();
    let mut second = 0i64;
    let (mut stopped, mut restarted) = (false, false);
    let first_ms = (now_ms() / 1000 + 1) * 1000;
    while start.elapsed() < end {
        // One result of every pair, planned half way into this second (never on a minute's edge).
        let at_ms = first_ms + second * 1000 + 500;
        let batch: Vec<RunResult> = (0..pairs)
            .map(|i| RunResult {
                check: format!("c{:04}", i / 2),
                region: if i % 2 == 0 { "eu" } else { "us" }.to_owned(),
                planned_at_ms: at_ms,
                started_at_ms: at_ms,
                prober: "p1".to_owned(),
                outcome: if i % 7 == 0 {
                    Outcome::failed(probenet_checks::Reason::Status, "503")
                } else {
                    Outcome::up(0.1)
                },
            })
            .collect();
        let first = Arc::new(batch[0].clone());
        for result in &batch {
            expected.entry((result.check.clone(), result.region.clone())).or_default().insert(at_ms);
        }
        *per_minute.entry(at_ms.div_euclid(MINUTE_MS)).or_default() += batch.len();
        let writer = store.clone();
        let (ingested, _) = tokio::task::spawn_blocking(move || writer.ingest(batch))
            .await
            .unwrap_or_else(|error| panic!("{error}"))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(ingested.accepted, pairs);
        if let Some(handle) = &handle {
            // What a scheduler does after storing a batch: offer the results, which only wakes a fed sink.
            handle.offer(probenet_exporters::Event::Result { check: first_check.clone(), result: first.clone() });
        }
        let elapsed = start.elapsed();
        if !stopped && elapsed >= down_at {
            stopped = true;
            if let Some(vm) = vm.take() {
                vm.stop();
            }
            eprintln!("victoria-metrics stopped at {elapsed:?}");
        }
        if !restarted && elapsed >= restart_at {
            restarted = true;
            let old = handle.take().unwrap_or_else(|| panic!("a sink"));
            old.close(Duration::from_secs(5)).await;
            let counters = old.counters();
            assert_eq!(counters.dropped, 0, "{counters:?}");
            assert!(counters.retried > 0, "the sink retried through the outage: {counters:?}");
            handle = Some(sink("rw", port, &feed, &checks));
            eprintln!("sink restarted at {elapsed:?}: {counters:?}");
        }
        if stopped && vm.is_none() && elapsed >= up_at {
            vm = Some(stores::victoria_metrics_at(Some(&vm_data), port).await);
            eprintln!("victoria-metrics started again at {:?}", start.elapsed());
        }
        second += 1;
        let next = Duration::from_secs(u64::try_from(second).unwrap_or(0));
        if let Some(wait) = next.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let total: usize = per_minute.values().sum();
    let handle = handle.unwrap_or_else(|| panic!("a sink"));
    let vm = vm.unwrap_or_else(|| panic!("victoria-metrics runs"));

    // Everything reaches VictoriaMetrics (bounded wait: the five minutes' backlog drains in about a minute on
    // 2 cores, more while other tests run).
    let deadline = Instant::now() + Duration::from_secs(300);
    let (got, samples) = loop {
        let (got, samples) = exported(&vm.base).await;
        let have: usize = got.values().map(BTreeSet::len).sum();
        if have >= total || Instant::now() > deadline {
            break (got, samples);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let counters = handle.counters();
    let mut missing_per_minute: BTreeMap<i64, usize> = BTreeMap::new();
    let mut got_per_minute: BTreeMap<i64, usize> = BTreeMap::new();
    for (pair, stamps) in &expected {
        let have = got.get(pair).cloned().unwrap_or_default();
        for at in stamps {
            if have.contains(at) {
                *got_per_minute.entry(at.div_euclid(MINUTE_MS)).or_default() += 1;
            } else {
                *missing_per_minute.entry(at.div_euclid(MINUTE_MS)).or_default() += 1;
            }
        }
    }
    eprintln!(
        "{total} results stored, {samples} probe_success samples in VictoriaMetrics; per minute stored {per_minute:?}, \
         in VictoriaMetrics {got_per_minute:?}; sink {counters:?}"
    );
    assert!(missing_per_minute.is_empty(), "results missing in VictoriaMetrics, per minute: {missing_per_minute:?}");
    assert_eq!(got_per_minute, per_minute, "every minute's results are in VictoriaMetrics");
    assert_eq!(counters.dropped, 0, "nothing dropped: {counters:?}");
    handle.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_receiver_outage_and_a_sink_restart_lose_no_result() {
    outage_loses_nothing(200, Duration::from_secs(5), Duration::from_secs(16), Duration::from_secs(5)).await;
}

/// The case the operators met: VictoriaMetrics away for five minutes while 1,000 results a second come in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_minute_victoria_metrics_outage_at_1000_results_a_second_loses_no_sample() {
    outage_loses_nothing(1_000, Duration::from_secs(30), Duration::from_secs(300), Duration::from_secs(30)).await;
}
