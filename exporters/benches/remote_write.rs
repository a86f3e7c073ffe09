//! Remote-write throughput into a real VictoriaMetrics, side by side in one run:
//! - `probenet_store`: the scheduler's path, a sink reading the embedded store from its cursor, 4 requests at once;
//! - `probenet_queue`: the same sink behind the in-memory queue a prober uses (one request at a time);
//! - `vm_import` (the peer, the receiver's own ceiling): the same samples in Prometheus text to VictoriaMetrics'
//!   `/api/v1/import/prometheus`, 4 streams at once.
//!
//! Each runs against a VictoriaMetrics of its own, for two shapes of result: realistic HTTPS results (58 samples
//! each) and TCP results (a connect: far fewer samples), of 200 checks x 5 regions, every 10 s, ending now: many
//! runs of each series, as after an outage (the first run of a series costs the receiver far more, to index it,
//! than the next ones; sent first, untimed, in each case). Prints `figure NAME VALUE UNIT` lines and the ratios.

#[path = "common/results.rs"]
mod results;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use probenet_checks::wire::RunResult;
use probenet_exporters::fed::{Checks, Feed, cursor_name};
use probenet_exporters::samples::{SeriesOptions, Totals, samples};
use probenet_exporters::store::{Position, SqliteStore, Store, StoreOptions};
use probenet_exporters::{CheckMeta, Event, QueueOptions, RemoteWriteOptions, RemoteWriteSink, Sink, SinkHandle};
use probenet_testkit::stores;

const CHECKS: i64 = 200;
const REGIONS: i64 = 5;
const EVERY_MS: i64 = 10_000;

/// The shape of the results sent.
#[derive(Clone, Copy)]
enum Shape {
    Https,
    Tcp,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Tcp => "tcp",
        }
    }
}

fn generate(shape: Shape, count: usize) -> Vec<RunResult> {
    let pairs = CHECKS * REGIONS;
    let runs = (count as i64 + pairs - 1) / pairs;
    let now = (stores::now_seconds() * 1000.0) as i64;
    let t0 = now - (runs + 1) * EVERY_MS;
    let make = match shape {
        Shape::Https => results::http_result,
        Shape::Tcp => results::tcp_result,
    };
    (0..count as i64).map(|i| make(t0, EVERY_MS, CHECKS, REGIONS, i % pairs, i / pairs)).collect()
}

fn metas(shape: Shape) -> HashMap<String, Arc<CheckMeta>> {
    let kind = match shape {
        Shape::Https => "http",
        Shape::Tcp => "tcp",
    };
    let kind = kind.parse().expect("kind");
    (0..CHECKS)
        .map(|check| {
            let name = format!("check-{check:04}");
            let target = match shape {
                Shape::Https => format!("https://check-{check:04}.example.net/"),
                Shape::Tcp => format!("check-{check:04}.example.net:443"),
            };
            (name.clone(), Arc::new(CheckMeta { name, kind, target, labels: BTreeMap::new() }))
        })
        .collect()
}

fn sink(vm: &str) -> Arc<dyn Sink> {
    let options = RemoteWriteOptions { url: format!("{vm}/api/v1/write"), ..RemoteWriteOptions::default() };
    Arc::new(RemoteWriteSink::new(options).expect("sink"))
}

async fn wait_sent(handle: &SinkHandle, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        let counters = handle.counters();
        assert_eq!(counters.dropped, 0, "{counters:?}");
        if counters.sent >= count {
            return;
        }
        assert!(Instant::now() < deadline, "not delivered in time: {counters:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The samples VictoriaMetrics holds for `probe_success` (a check that the run delivered everything).
async fn stored_samples(vm: &str) -> usize {
    let _ = reqwest::get(format!("{vm}/internal/force_flush")).await;
    let body = reqwest::get(format!("{vm}/api/v1/export?match[]=probe_success"))
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("export")
        .text()
        .await
        .expect("export");
    body.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|row| row["timestamps"].as_array().map_or(0, Vec::len))
        .sum()
}

/// The first run of every pair, sent untimed so the receiver has indexed each series.
fn warm_up(results: &[RunResult]) -> (&[RunResult], &[RunResult]) {
    results.split_at(usize::try_from(CHECKS * REGIONS).unwrap_or(0).min(results.len()))
}

async fn through_the_store(results: &[RunResult], checks: &Checks) -> f64 {
    let vm = stores::victoria_metrics().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path(), StoreOptions { durable: false, ..StoreOptions::default() }).expect("store"),
    );
    let (warm, timed) = warm_up(results);
    let (_delivering, may_deliver) = tokio::sync::watch::channel(true);
    let feed = Feed::new(store.clone(), may_deliver);
    let first = sink(&vm.base);
    let cursor = cursor_name(first.as_ref());
    store.save_cursor(&cursor, Position::default()).expect("cursor");
    for batch in warm.chunks(500) {
        store.ingest(batch.to_vec()).expect("ingest");
    }
    let handle = SinkHandle::spawn_fed("warm", &cursor, first, QueueOptions::default(), feed.clone(), checks.clone());
    wait_sent(&handle, warm.len() as u64).await;
    handle.close(Duration::from_secs(5)).await;
    // The rest waits in the store, as after an outage; a sink started again goes on from its saved position.
    for batch in timed.chunks(500) {
        store.ingest(batch.to_vec()).expect("ingest");
    }
    let started = Instant::now();
    let handle = SinkHandle::spawn_fed("bench", cursor, sink(&vm.base), QueueOptions::default(), feed, checks.clone());
    wait_sent(&handle, timed.len() as u64).await;
    let seconds = started.elapsed().as_secs_f64();
    handle.close(Duration::from_secs(5)).await;
    assert_eq!(stored_samples(&vm.base).await, results.len(), "every result reached VictoriaMetrics");
    timed.len() as f64 / seconds
}

async fn through_the_queue(results: &[RunResult], checks: &Checks) -> f64 {
    let vm = stores::victoria_metrics().await;
    let metas = checks.read().expect("checks").clone();
    let event =
        |result: &RunResult| Event::Result { check: metas[&result.check].clone(), result: Arc::new(result.clone()) };
    let (warm, timed) = warm_up(results);
    let queue = QueueOptions { capacity: results.len() + 1, ..QueueOptions::default() };
    let handle = SinkHandle::spawn("bench", sink(&vm.base), queue);
    warm.iter().for_each(|result| handle.offer(event(result)));
    wait_sent(&handle, warm.len() as u64).await;
    let events: Vec<Event> = timed.iter().map(event).collect();
    let started = Instant::now();
    for event in events {
        handle.offer(event);
    }
    wait_sent(&handle, results.len() as u64).await;
    let seconds = started.elapsed().as_secs_f64();
    handle.close(Duration::from_secs(5)).await;
    assert_eq!(stored_samples(&vm.base).await, results.len(), "every result reached VictoriaMetrics");
    timed.len() as f64 / seconds
}

/// The peer: the same samples as Prometheus text into VictoriaMetrics' own import API (text made beforehand).
async fn vm_import(results: &[RunResult], checks: &Checks) -> (f64, usize) {
    let vm = stores::victoria_metrics().await;
    let metas = checks.read().expect("checks").clone();
    let options = SeriesOptions::default();
    let mut totals: HashMap<(String, String), Totals> = HashMap::new();
    let (warm, timed) = warm_up(results);
    let mut text = |results: &[RunResult], streams: usize| {
        let mut bodies = vec![String::new(); streams];
        let mut count = 0;
        for (index, result) in results.iter().enumerate() {
            let pair = totals.entry((result.check.clone(), result.region.clone())).or_default();
            pair.observe(result);
            let body = &mut bodies[index % streams];
            for sample in samples(&metas[&result.check], result, pair, &options) {
                count += 1;
                body.push_str(sample.name);
                body.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    let _ = write!(body, "{name}={value:?}");
                }
                let _ = writeln!(body, "}} {} {}", sample.value, sample.timestamp_ms);
            }
        }
        (bodies, count)
    };
    let (warm_bodies, warm_count) = text(warm, 1);
    let (bodies, count) = text(timed, 4);
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/import/prometheus", vm.base);
    let send = |body: String| {
        let request = client.post(&url).body(body);
        async move { request.send().await.and_then(reqwest::Response::error_for_status).expect("import") }
    };
    futures::future::join_all(warm_bodies.into_iter().map(send)).await;
    let started = Instant::now();
    futures::future::join_all(bodies.into_iter().map(send)).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(stored_samples(&vm.base).await, results.len(), "every result reached VictoriaMetrics");
    (timed.len() as f64 / seconds, warm_count + count)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count = std::env::var("RW_BENCH_RESULTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000usize);
    for shape in [Shape::Https, Shape::Tcp] {
        let results = generate(shape, count);
        let checks: Checks = Arc::new(RwLock::new(Arc::new(metas(shape))));
        let store = through_the_store(&results, &checks).await;
        let queue = through_the_queue(&results, &checks).await;
        let (import, samples) = vm_import(&results, &checks).await;
        let per_result = samples as f64 / count as f64;
        let name = shape.name();
        println!("figure {name}_results {count} results ({per_result:.1} samples each)");
        println!("figure {name}_probenet_store {store:.0} results/s ({:.0} samples/s)", store * per_result);
        println!("figure {name}_probenet_queue {queue:.0} results/s ({:.0} samples/s)", queue * per_result);
        println!("figure {name}_vm_import {import:.0} results/s ({:.0} samples/s)", import * per_result);
        println!("ratio {name}_probenet_store/vm_import {:.2}", store / import);
        println!("ratio {name}_probenet_store/probenet_queue {:.2}", store / queue);
    }
}
