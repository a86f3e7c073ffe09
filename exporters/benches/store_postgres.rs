//! The PostgreSQL store's figures, side by side with SQLite's: results per second ingested through three
//! `PostgresStore`s at once (three replicas, one local database, batches of 500) and through one `SqliteStore`;
//! and the overview queries (`latest_runs`, `hourly_latency` over a day, a 30-day `uptime`) for 1,000 checks x 5
//! regions on PostgreSQL. Starts its own PostgreSQL with the testkit. Prints `figure NAME VALUE UNIT` lines.

#[path = "common/results.rs"]
mod results;

use std::time::Instant;

use probenet_checks::wire::RunResult;
use probenet_exporters::store::codec::{encode_body, encode_phases};
use probenet_exporters::store::rollup::{Agg, DAY_MS, HOUR_MS, Level, MINUTE_MS};
use probenet_exporters::store::{PostgresStore, SqliteStore, Store, StoreOptions, UptimeQuery};
use probenet_pg::Tls;
use probenet_testkit::postgres::Postgres;

const CHECKS: i64 = 1000;
const REGIONS: i64 = 5;
const BATCH: usize = 500;
const REPLICAS: usize = 3;
/// A UTC midnight.
const T0: i64 = 1_750_032_000_000;

/// Batch number `index`: the next `BATCH` results, every pair once a minute.
fn batch(index: usize) -> Vec<RunResult> {
    let pairs = CHECKS * REGIONS;
    let first = (index * BATCH) as i64;
    (first..first + BATCH as i64)
        .map(|n| results::http_result(T0, MINUTE_MS, CHECKS, REGIONS, n % pairs, n / pairs))
        .collect()
}

/// Ingests `batches` batches through `stores`, one thread per store, batch `i` to store `i % stores`; the
/// batches are built before the clock starts. Returns results per second (wall clock).
fn ingest_rate(stores: &[&dyn Store], batches: usize) -> f64 {
    let mut work: Vec<Vec<Vec<RunResult>>> = vec![Vec::new(); stores.len()];
    for index in 0..batches {
        work[index % stores.len()].push(batch(index));
    }
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (store, batches) in stores.iter().zip(work) {
            scope.spawn(move || {
                for batch in batches {
                    let (done, _) = store.ingest(batch).expect("ingest");
                    assert_eq!(done.accepted, BATCH);
                }
            });
        }
    });
    (batches * BATCH) as f64 / started.elapsed().as_secs_f64()
}

/// Fills `url`'s store tables with what the overview reads at `now` for 1,000 checks x 5 regions: 31 days of
/// day rows, the hour rows of the day holding `now - 30 d` and of the last day, the minute rows of the hour
/// holding `now - 30 d`, and each pair's latest raw result.
fn seed_overview(url: &str, now: i64) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(connection);
        let mut agg = Agg::default();
        for i in 0..60 {
            let seconds = 0.05 + (i * 17 % 200) as f64 / 1000.0;
            let phases = [("resolve", 0.05), ("connect", 0.15), ("tls", 0.3), ("processing", 0.4), ("transfer", 0.1)];
            agg.record(if i % 29 == 0 { 2 } else { 0 }, seconds, phases.map(|(n, s)| (n, seconds * s)));
        }
        let (hist, phases) = (agg.hist.encode(), encode_phases(&agg.phases));
        let sample = results::http_result(T0, MINUTE_MS, CHECKS, REGIONS, 0, 0);
        let body =
            encode_body(sample.planned_at_ms, sample.started_at_ms, &sample.prober, &sample.outcome).expect("body");
        let from = now - 30 * DAY_MS;
        let (from_day, from_hour, now_hour) = (Level::Day.start(from), Level::Hour.start(from), Level::Hour.start(now));
        let pairs = "FROM generate_series(1, 1000) c, generate_series(1, 5) r";
        let rollup = |table: &str, series: &str| {
            format!(
                "INSERT INTO store_{table} (check_id, region_id, start_ms, runs, up, degraded, down, seconds, hist, \
                 phases) SELECT c, r, s, 60, 58, 0, 2, 6.0, $1::bytea, $2::bytea {pairs}, {series} s"
            )
        };
        client
            .batch_execute(&format!(
                "INSERT INTO store_checks (id, name) SELECT g, 'check-' || lpad((g - 1)::text, 4, '0') \
                 FROM generate_series(1, 1000) g;
                 INSERT INTO store_regions (id, name) SELECT g, 'region-' || (g - 1) FROM generate_series(1, 5) g;
                 INSERT INTO store_pairs (check_id, region_id, last_planned_ms) SELECT c, r, {} {pairs};",
                now - 30_000
            ))
            .await
            .expect("names and pairs");
        let day_series = format!("generate_series({from_day}::bigint, {}::bigint, {DAY_MS})", from_day + 31 * DAY_MS);
        let hour_series = format!(
            "(SELECT generate_series({from_day}::bigint, {}::bigint, {HOUR_MS}) UNION ALL \
             SELECT generate_series({}::bigint, {now_hour}::bigint, {HOUR_MS}))",
            from_day + 23 * HOUR_MS,
            now_hour - 24 * HOUR_MS
        );
        let minute_series =
            format!("generate_series({from_hour}::bigint, {}::bigint, {MINUTE_MS})", from_hour + 59 * MINUTE_MS);
        for (table, series) in
            [("rollup_day", day_series), ("rollup_hour", hour_series), ("rollup_minute", minute_series)]
        {
            client.execute(&rollup(table, &series), &[&hist, &phases]).await.expect("rollups");
        }
        client
            .execute(
                &format!(
                    "INSERT INTO store_results (check_id, region_id, planned_at_ms, state, duration, body) \
                     SELECT c, r, {}, 0, 0.1, $1::bytea {pairs}",
                    now - 30_000
                ),
                &[&body],
            )
            .await
            .expect("results");
        client.batch_execute("ANALYZE").await.expect("analyze");
    });
}

/// The median time of `rounds` calls, in milliseconds.
fn median_ms(rounds: usize, mut call: impl FnMut() -> usize, expected: usize) -> f64 {
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            let rows = call();
            assert!(rows >= expected, "{rows} rows, expected {expected}");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let results: usize = std::env::var("STORE_PG_BENCH_RESULTS").ok().and_then(|v| v.parse().ok()).unwrap_or(60_000);
    let batches = (results / BATCH).max(REPLICAS);
    let Some(pg) = Postgres::start_or_skip("bench/store-postgres") else { return };

    let url = pg.create_database("ingest");
    let replicas: Vec<PostgresStore> = (0..REPLICAS)
        .map(|_| PostgresStore::open(&url, Tls::Disabled, StoreOptions::default()).expect("open"))
        .collect();
    // Names interned and connections made before the clock runs, as in a scheduler that has been up a while.
    let warm: Vec<&dyn Store> = replicas.iter().map(|store| store as &dyn Store).collect();
    ingest_rate(&warm, REPLICAS);
    let skip = REPLICAS;
    let mut work: Vec<Vec<Vec<RunResult>>> = vec![Vec::new(); REPLICAS];
    for index in skip..skip + batches {
        work[index % REPLICAS].push(batch(index));
    }
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (store, batches) in replicas.iter().zip(work) {
            scope.spawn(move || {
                for batch in batches {
                    let (done, _) = store.ingest(batch).expect("ingest");
                    assert_eq!(done.accepted, BATCH);
                }
            });
        }
    });
    let postgres_rate = (batches * BATCH) as f64 / started.elapsed().as_secs_f64();
    drop(replicas);

    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteStore::open(dir.path(), StoreOptions::default()).expect("open");
    ingest_rate(&[&sqlite], 1);
    let started = Instant::now();
    for index in 1..=batches {
        let (done, _) = sqlite.ingest(batch(index)).expect("ingest");
        assert_eq!(done.accepted, BATCH);
    }
    let sqlite_rate = (batches * BATCH) as f64 / started.elapsed().as_secs_f64();
    drop(sqlite);
    println!(
        "figure postgres_ingest_results_per_second {postgres_rate:.0} results/s ({REPLICAS} stores, {} results, batches of {BATCH})",
        batches * BATCH
    );
    println!("figure sqlite_ingest_results_per_second {sqlite_rate:.0} results/s (1 store, synchronous=FULL)");
    println!("figure postgres_to_sqlite_ingest_ratio {:.2}", postgres_rate / sqlite_rate);

    let url = pg.create_database("overview");
    let store = PostgresStore::open(&url, Tls::Disabled, StoreOptions::default()).expect("open");
    let now = T0 + 40 * DAY_MS + 13 * HOUR_MS + 27 * MINUTE_MS + 13_456;
    let started = Instant::now();
    seed_overview(&url, now);
    eprintln!("seeded the overview database in {:.1} s", started.elapsed().as_secs_f64());
    let pairs = (CHECKS * REGIONS) as usize;
    let latest = median_ms(5, || store.latest_runs().expect("latest runs").len(), pairs);
    let hourly = median_ms(5, || store.hourly_latency(now - DAY_MS, now).expect("hourly latency").len(), pairs * 24);
    let query = UptimeQuery { from_ms: now - 30 * DAY_MS, to_ms: now, ..UptimeQuery::default() };
    let uptime = median_ms(5, || store.uptime(&query).expect("uptime").len(), pairs);
    println!("figure postgres_latest_runs_ms {latest:.1} ms (1,000 checks x 5 regions, median of 5)");
    println!("figure postgres_hourly_latency_ms {hourly:.1} ms (24 hours of 5,000 pairs)");
    println!("figure postgres_uptime_30d_ms {uptime:.1} ms (now - 30 d .. now, 5,000 pairs)");
}
