//! The embedded store's figures: ingest throughput (batches of 500), the 30-day uptime of 1,000 checks x 5
//! regions, and bytes per million results. Prints `figure NAME VALUE UNIT` lines, then runs criterion.

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "common/results.rs"]
mod results;

use criterion::{Criterion, Throughput};
use probenet_checks::wire::RunResult;
use probenet_exporters::store::codec::Histogram;
use probenet_exporters::store::rollup::{Agg, DAY_MS, HOUR_MS, Level, MINUTE_MS, counts, write_row};
use probenet_exporters::store::{SqliteStore, Store, StoreOptions, UptimeQuery};
use rusqlite::{Connection, params};

const CHECKS: i64 = 1000;
const REGIONS: i64 = 5;
const BATCH: usize = 500;
/// A UTC midnight.
const T0: i64 = 1_750_032_000_000;

/// Batches of the next results: every pair once a minute, `BATCH` at a time.
struct Feed {
    next: i64,
}

impl Feed {
    fn batch(&mut self) -> Vec<RunResult> {
        let pairs = CHECKS * REGIONS;
        let batch = (0..BATCH as i64)
            .map(|i| {
                results::http_result(T0, MINUTE_MS, CHECKS, REGIONS, (self.next + i) % pairs, (self.next + i) / pairs)
            })
            .collect();
        self.next += BATCH as i64;
        batch
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        total += if path.is_dir() { dir_bytes(&path) } else { entry.metadata().map_or(0, |m| m.len()) };
    }
    total
}

/// Ingests `count` results into a fresh store: results per second and bytes per million results.
fn ingest_figures(count: usize, durable: bool) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path(), StoreOptions { durable, ..StoreOptions::default() }).expect("open");
    let mut feed = Feed { next: 0 };
    let keep = std::env::var_os("STORE_BENCH_KEEP").filter(|_| durable);
    let mut busy = Duration::ZERO;
    for _ in 0..count / BATCH {
        let batch = feed.batch();
        let started = Instant::now();
        store.ingest(batch).expect("ingest");
        busy += started.elapsed();
    }
    drop(store);
    let conn = Connection::open(dir.path().join("probenet.db")).expect("reopen");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
    drop(conn);
    let bytes = dir_bytes(dir.path()) as f64;
    if let Some(keep) = keep {
        // For a look at what takes the space (sqlite3 DB "SELECT name, sum(pgsize) FROM dbstat GROUP BY 1").
        std::fs::copy(dir.path().join("probenet.db"), keep).expect("keeping the database");
    }
    (count as f64 / busy.as_secs_f64(), bytes / count as f64 * 1e6)
}

/// A rollup row of `runs` runs with realistic histogram and phases.
fn seeded(runs: i64, salt: i64) -> Agg {
    let mut agg = Agg::default();
    for i in 0..runs.min(60) {
        let seconds = 0.05 + ((salt * 31 + i * 17) % 200) as f64 / 1000.0;
        let phases = [("resolve", 0.05), ("connect", 0.15), ("tls", 0.3), ("processing", 0.4), ("transfer", 0.1)];
        agg.record(if (salt + i) % 97 == 0 { 2 } else { 0 }, seconds, phases.map(|(n, s)| (n, seconds * s)));
    }
    let scale = runs / runs.clamp(1, 60);
    let mut scaled = Agg::default();
    for _ in 0..scale {
        scaled.combine(&agg, 1);
    }
    scaled.hist = Histogram::decode(&scaled.hist.encode()).unwrap_or_default();
    scaled
}

/// A store with what a 30-day uptime query at `now` reads: 31 days of day rows for every pair, hour rows of the
/// day holding `now - 30 d` and minute rows of its hour (raw results that old are pruned), with the running
/// counts ingest keeps.
fn seed_uptime_store(dir: &Path, now: i64) -> SqliteStore {
    drop(SqliteStore::open(dir, StoreOptions::default()).expect("create"));
    let mut conn = Connection::open(dir.join("probenet.db")).expect("open");
    let tx = conn.transaction().expect("tx");
    for check in 0..CHECKS {
        tx.execute("INSERT INTO checks (id, name) VALUES (?1, ?2)", params![check + 1, format!("check-{check:04}")])
            .expect("checks");
    }
    for region in 0..REGIONS {
        tx.execute("INSERT INTO regions (id, name) VALUES (?1, ?2)", params![region + 1, format!("region-{region}")])
            .expect("regions");
    }
    let from = now - 30 * DAY_MS;
    let (from_day, from_hour) = (Level::Day.start(from), Level::Hour.start(from));
    for check in 1..=CHECKS {
        for region in 1..=REGIONS {
            let salt = check * 5 + region;
            let mut before = [0i64; 4];
            for day in 0..=31 {
                let agg = seeded(1440, salt + day);
                write_row(&tx, Level::Day, check, region, from_day + day * DAY_MS, &agg, before).expect("day");
                for (total, value) in before.iter_mut().zip(counts(&agg)) {
                    *total += value;
                }
            }
            tx.execute(
                "INSERT INTO pairs (check_id, region_id, last_planned_ms, runs, up, degraded, down) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![check, region, now - 30_000, before[0], before[1], before[2], before[3]],
            )
            .expect("pairs");
            let mut in_day = [0i64; 4];
            for hour in 0..24 {
                let agg = seeded(60, salt + hour);
                for (total, value) in in_day.iter_mut().zip(counts(&agg)) {
                    *total += value;
                }
                write_row(&tx, Level::Hour, check, region, from_day + hour * HOUR_MS, &agg, in_day).expect("hour");
            }
            // Minute rows of the hour holding `from`, with the day's running counts of the hours before it.
            let hours_before = (from_hour - from_day) / HOUR_MS;
            let mut in_day = [0i64; 4];
            for hour in 0..hours_before {
                for (total, value) in in_day.iter_mut().zip(counts(&seeded(60, salt + hour))) {
                    *total += value;
                }
            }
            for minute in 0..60 {
                let agg = seeded(1, salt + minute);
                for (total, value) in in_day.iter_mut().zip(counts(&agg)) {
                    *total += value;
                }
                write_row(&tx, Level::Minute, check, region, from_hour + minute * MINUTE_MS, &agg, in_day)
                    .expect("minute");
            }
        }
    }
    tx.commit().expect("commit");
    drop(conn);
    SqliteStore::open(dir, StoreOptions::default()).expect("reopen")
}

fn median_query_ms(store: &SqliteStore, query: &UptimeQuery, rounds: usize) -> f64 {
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            let rows = store.uptime(query).expect("uptime");
            assert_eq!(rows.len() as i64, CHECKS * REGIONS);
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The overview's ledger figures: 31 days of ledger hours of 1,000 checks x 5 regions (and each check as a whole)
/// written a day at a time; then the time to write one more hour (6,000 rows and its day row rebuilt) and to sum
/// the last 24 hours, 7 and 30 days of every pair, as the overview does.
fn ledger_figures() {
    use probenet_exporters::store::{LedgerHour, LedgerMs};
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path(), StoreOptions::default()).expect("open");
    let hour_rows = |start_ms: i64| -> Vec<LedgerHour> {
        let mut rows = Vec::with_capacity((CHECKS * (REGIONS + 1)) as usize);
        for check in 0..CHECKS {
            for region in 0..=REGIONS {
                let down = (check + region + start_ms / HOUR_MS) % 97;
                rows.push(LedgerHour {
                    check: format!("check-{check:04}"),
                    region: (region < REGIONS).then(|| format!("region-{region}")),
                    start_ms,
                    policy: 1,
                    ms: LedgerMs { up_ms: HOUR_MS - down * 1000, down_ms: down * 1000, ..LedgerMs::default() },
                });
            }
        }
        rows
    };
    let days = 31;
    let started = Instant::now();
    for day in 0..days {
        let rows: Vec<LedgerHour> = (0..24).flat_map(|hour| hour_rows(T0 + day * DAY_MS + hour * HOUR_MS)).collect();
        store.write_ledger_hours(&rows).expect("write");
    }
    eprintln!("wrote {days} days of ledger hours in {:.1} s", started.elapsed().as_secs_f64());
    let as_of = T0 + days * DAY_MS + 13 * HOUR_MS;
    let mut writes: Vec<f64> = (0..13)
        .map(|hour| {
            let rows = hour_rows(T0 + days * DAY_MS + hour * HOUR_MS);
            let started = Instant::now();
            store.write_ledger_hours(&rows).expect("write");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    writes.sort_by(f64::total_cmp);
    println!("figure ledger_hour_write_ms {:.1} ms (6,000 rows and their day rows)", writes[writes.len() / 2]);
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let started = Instant::now();
            for window in [DAY_MS, 7 * DAY_MS, 30 * DAY_MS] {
                let sums = store.ledger_sums(None, as_of - window, as_of).expect("sums");
                assert_eq!(sums.len() as i64, CHECKS * (REGIONS + 1));
            }
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "figure ledger_overview_sums_ms {:.1} ms (24 h, 7 d and 30 d of 1,000 checks x 5 regions and each check; \
         median of 7, worst {:.1})",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

fn main() {
    if std::env::var("STORE_BENCH_ONLY").is_ok_and(|only| only == "ledger") {
        ledger_figures();
        return;
    }
    ledger_figures();
    let quick = std::env::var("STORE_BENCH_RESULTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000usize);
    let (rate, bytes) = ingest_figures(quick, true);
    println!("figure ingest_results_per_second {rate:.0} results/s (synchronous=FULL, batches of {BATCH})");
    println!("figure bytes_per_million_results {bytes:.0} bytes");
    let (rate_normal, _) = ingest_figures(quick / 2, false);
    println!("figure ingest_results_per_second_normal {rate_normal:.0} results/s (synchronous=NORMAL)");

    let dir = tempfile::tempdir().expect("temp dir");
    let now = T0 + 40 * DAY_MS + 13 * HOUR_MS + 27 * MINUTE_MS + 13_456;
    let started = Instant::now();
    let store = seed_uptime_store(dir.path(), now);
    eprintln!("seeded the uptime store in {:.1} s", started.elapsed().as_secs_f64());
    let last_30 = UptimeQuery { from_ms: now - 30 * DAY_MS, to_ms: now, ..UptimeQuery::default() };
    let whole_days = UptimeQuery {
        from_ms: Level::Day.start(now) - 30 * DAY_MS,
        to_ms: Level::Day.start(now),
        ..UptimeQuery::default()
    };
    println!(
        "figure uptime_30d_query_ms {:.1} ms (now - 30 d .. now, 1,000 checks x 5 regions)",
        median_query_ms(&store, &last_30, 15)
    );
    println!("figure uptime_30_whole_days_query_ms {:.1} ms", median_query_ms(&store, &whole_days, 15));

    let mut criterion =
        Criterion::default().configure_from_args().sample_size(10).measurement_time(Duration::from_secs(5));
    {
        let mut group = criterion.benchmark_group("store");
        group.throughput(Throughput::Elements(1));
        group.bench_function("uptime_30d_1000x5", |b| b.iter(|| store.uptime(&last_30).expect("uptime")));
        let ingest_dir = tempfile::tempdir().expect("temp dir");
        let ingest_store = SqliteStore::open(ingest_dir.path(), StoreOptions::default()).expect("open");
        let mut feed = Feed { next: 0 };
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function("ingest_batch_500", |b| {
            b.iter_batched(
                || feed.batch(),
                |batch| ingest_store.ingest(batch).expect("ingest"),
                criterion::BatchSize::PerIteration,
            )
        });
        group.finish();
    }
    criterion.final_summary();
}
