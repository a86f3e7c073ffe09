//! The store's query and answer types.

use std::collections::BTreeMap;

use probenet_checks::wire::RunResult;
use serde::Serialize;

/// What one ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Ingested {
    /// Results stored now.
    pub accepted: usize,
    /// Results already stored (same check, region and `planned_at_ms`), not counted again.
    pub duplicates: usize,
}

/// A (check, region) pair with results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pair {
    /// The check.
    pub check: String,
    /// The region.
    pub region: String,
    /// Its latest run's `planned_at_ms`.
    pub last_planned_ms: i64,
}

/// Which raw results to list (newest first, or oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultQuery {
    /// One check, or every check.
    pub check: Option<String>,
    /// One region, or every region.
    pub region: Option<String>,
    /// `planned_at_ms` at or after this.
    pub since_ms: Option<i64>,
    /// `planned_at_ms` before this.
    pub until_ms: Option<i64>,
    /// Only runs that were down.
    pub only_failures: bool,
    /// At most this many (0: 100).
    pub limit: usize,
    /// Oldest first instead (reading a pair's results through in pages, as the archive does).
    pub oldest_first: bool,
}

/// Uptime over `[from_ms, to_ms)` of `planned_at_ms`, per (check, region).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UptimeQuery {
    /// One check, or every check.
    pub check: Option<String>,
    /// One region, or every region.
    pub region: Option<String>,
    /// Start, inclusive.
    pub from_ms: i64,
    /// End, exclusive.
    pub to_ms: i64,
}

/// Uptime of one pair over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uptime {
    /// The check.
    pub check: String,
    /// The region.
    pub region: String,
    /// Runs in the window.
    pub runs: i64,
    /// Of which up.
    pub up: i64,
    /// Of which degraded (they count as successes).
    pub degraded: i64,
    /// Of which down.
    pub down: i64,
    /// (up + degraded) / runs; `None` without runs.
    pub ratio: Option<f64>,
}

/// One bucket of a series (uptime bars, sparklines).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// The bucket's start; it spans `bucket_ms`.
    pub start_ms: i64,
    /// Runs.
    pub runs: i64,
    /// Of which up.
    pub up: i64,
    /// Of which degraded.
    pub degraded: i64,
    /// Of which down.
    pub down: i64,
    /// Mean duration of every run in seconds; `None` without runs.
    pub avg_seconds: Option<f64>,
}

/// Latency of one region over a window, from the rollups' histograms (within 4.4%; see
/// [`crate::store::codec::HISTOGRAM_RELATIVE_ERROR`]). Durations of every run count, failed ones included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// The region.
    pub region: String,
    /// Runs.
    pub runs: i64,
    /// Median seconds.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Exact mean.
    pub avg: Option<f64>,
    /// Exact mean seconds per phase, over the runs that had it.
    pub phases: BTreeMap<String, f64>,
}

/// One point of a latency series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyPoint {
    /// The step's start.
    pub start_ms: i64,
    /// Runs in the step.
    pub runs: i64,
    /// Median seconds.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// Exact mean.
    pub avg: Option<f64>,
    /// Exact mean seconds per phase.
    pub phases: BTreeMap<String, f64>,
}

/// A maximal span of consecutive failed runs of one pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// The check.
    pub check: String,
    /// The region.
    pub region: String,
    /// The first failed run's `planned_at_ms`.
    pub start_ms: i64,
    /// The first successful run's `planned_at_ms` after it; `None` while the latest run still fails.
    pub end_ms: Option<i64>,
    /// Failed runs in the span.
    pub runs: i64,
    /// The first failed run's reason label.
    pub reason: Option<String>,
    /// The first failed run's message.
    pub error: Option<String>,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Raw results.
    pub results: usize,
    /// Rollup rows of every level.
    pub rollups: usize,
    /// Ledger hour and day rows.
    pub ledger: usize,
    /// Closed incidents.
    pub incidents: usize,
    /// Artifact files of pruned results.
    pub artifacts: usize,
    /// Files in the artifact directory that no stored result refers to (a crash between write and commit).
    pub orphans: usize,
}

/// Where a reader of results in stored order stands: just after the result at this position. Positions are
/// the store's own (the embedded store counts results; PostgreSQL orders them by its clock, then by run id) and
/// compare in stored order; a reader keeps one between calls and saves it with [`Store::save_cursor`].
///
/// [`Store::save_cursor`]: super::Store::save_cursor
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position(pub [i64; 4]);

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}:{b}:{c}:{d}")
    }
}

/// A page of results in stored order.
#[derive(Debug, Clone, Default)]
pub struct StoredPage {
    /// The results, in the order they were stored.
    pub results: Vec<RunResult>,
    /// Where the next page starts (the position of the last result, or the one given when there is none).
    pub next: Position,
}
