//! Helpers of the store tests: result builders, a pseudo-random source, brute-force uptime, ingest through the
//! trait, and the writer child process the crash test kills.

use std::io::Write;
use std::path::Path;

use probenet_checks::outcome::{Artifact, Outcome, Phase, Reason, State};
use probenet_checks::wire::RunResult;
use probenet_exporters::store::{Ingested, SqliteStore, Store, StoreOptions};

/// A UTC midnight.
pub const T0: i64 = 1_750_000_000_000 - 1_750_000_000_000 % 86_400_000;
/// A minute.
pub const MIN: i64 = 60_000;
/// A day.
pub const DAY: i64 = 86_400_000;

/// The environment variable that turns `crash_writer_child` into the writer.
pub const CHILD_DIR: &str = "PROBENET_STORE_CRASH_DIR";
/// The first batch id the child writes.
pub const CHILD_START: &str = "PROBENET_STORE_CRASH_START";
/// Results per child batch.
pub const CHILD_BATCH: i64 = 200;
/// The planned time of the child's batch 0.
pub const CHILD_BASE_MS: i64 = 1_700_000_000_000;

/// A small deterministic pseudo-random source.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// Three days at one run a minute for two checks in two regions, with a deterministic mix of states.
pub fn three_days() -> Vec<RunResult> {
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

/// Ingests a batch through the trait; the results stored now are as many as it says were accepted.
pub fn ingest(store: &dyn Store, results: &[RunResult]) -> Result<Ingested, probenet_exporters::store::StoreError> {
    let (ingested, fresh) = store.ingest(results.to_vec())?;
    assert_eq!(fresh.len(), ingested.accepted, "the results stored now are the accepted ones");
    Ok(ingested)
}

/// A result with the given state and duration, two phases, and a log.
pub fn result(check: &str, region: &str, planned_at_ms: i64, state: State, seconds: f64) -> RunResult {
    let failed = state == State::Down;
    RunResult {
        check: check.to_owned(),
        region: region.to_owned(),
        planned_at_ms,
        started_at_ms: planned_at_ms + 3,
        prober: format!("prober-{region}"),
        outcome: Outcome {
            state,
            duration_seconds: seconds,
            phases: vec![
                Phase { name: "connect".into(), seconds: seconds / 4.0 },
                Phase { name: "processing".into(), seconds: seconds / 2.0 },
            ],
            reason: failed.then_some(Reason::Status),
            error: failed.then(|| format!("status: expected 200, got 503 at {planned_at_ms}")),
            assertions: Vec::new(),
            details: serde_json::json!({"status": if failed { 503 } else { 200 }}),
            log: vec![format!("GET https://example.test/ at {planned_at_ms}")],
            artifacts: Vec::new(),
        },
    }
}

/// Adds a screenshot artifact with bytes derived from the planned time.
pub fn with_artifact(mut result: RunResult) -> RunResult {
    result.outcome.artifacts.push(Artifact {
        name: "failure.png".into(),
        media_type: "image/png".into(),
        data: artifact_bytes(result.planned_at_ms),
        path: None,
    });
    result
}

/// The bytes [`with_artifact`] stores for a run.
pub fn artifact_bytes(planned_at_ms: i64) -> Vec<u8> {
    format!("PNG-{planned_at_ms}-").repeat(20).into_bytes()
}

/// The state of the child's `i`th result of batch `batch`.
pub fn child_result(batch: i64, i: i64) -> RunResult {
    let planned = CHILD_BASE_MS + batch * 1000 + i;
    let state = if (batch + i) % 7 == 0 { State::Down } else { State::Up };
    let result = result(&format!("c{}", i % 40), &format!("r{}", i % 5), planned, state, 0.01 * (i % 13) as f64);
    if i % 50 == 0 { with_artifact(result) } else { result }
}

/// The writer child: ingests batches from `CHILD_START` on, printing `ack N` after each commit, until killed.
pub fn run_child(dir: &Path, start: i64) {
    let store = SqliteStore::open(dir, StoreOptions::default()).unwrap();
    let mut stdout = std::io::stdout();
    for batch in start..start + 100_000 {
        let results: Vec<RunResult> = (0..CHILD_BATCH).map(|i| child_result(batch, i)).collect();
        store.ingest(results).unwrap();
        writeln!(stdout, "ack {batch}").unwrap();
        stdout.flush().unwrap();
    }
}

/// Brute-force counts (runs, up, degraded, down) of the results in `[from, to)`.
pub fn brute_uptime(results: &[RunResult], check: &str, region: &str, from: i64, to: i64) -> (i64, i64, i64, i64) {
    let mut counts = (0, 0, 0, 0);
    for result in results {
        if result.check == check && result.region == region && result.planned_at_ms >= from && result.planned_at_ms < to
        {
            counts.0 += 1;
            match result.outcome.state {
                State::Up => counts.1 += 1,
                State::Degraded => counts.2 += 1,
                State::Down => counts.3 += 1,
            }
        }
    }
    counts
}
