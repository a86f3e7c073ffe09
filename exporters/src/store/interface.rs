//! The store interface: what the scheduler, its API and its dashboard source ask of a result store, whatever
//! the backend (SQLite embedded, PostgreSQL for replicated schedulers). Why it looks like this:
//! `docs/design.md`, "The store interface".

use std::fmt;
use std::path::Path;

use probenet_checks::wire::RunResult;

use super::{
    Bucket, HourLatency, Incident, Ingested, Latency, LatencyPoint, LatestRun, LedgerHour, LedgerSum, Pair, Position,
    Pruned, ResultQuery, Snapshot, StoreError, StoredPage, Uptime, UptimeQuery,
};

/// A result store: raw results, rollups, incidents and artifacts of every (check, region) pair.
///
/// Synchronous and object-safe (`Arc<dyn Store>`): every call may block on I/O, so async code calls it through
/// `tokio::task::spawn_blocking`. Times are unix milliseconds; windows are `[from_ms, to_ms)` of
/// `planned_at_ms`. A result's identity is (check, region, `planned_at_ms`): its run id.
pub trait Store: Send + Sync + fmt::Debug {
    /// Stores a batch in one transaction: all of it or, on error, nothing (and the prober sends it again).
    /// Results whose run id is stored already count as duplicates and are not stored or counted again. Returns
    /// the counts and the results stored now, in batch order (for the exporters and the alert engine). Artifact
    /// bytes are stored with the batch; the stored result carries the artifact's `path` instead.
    fn ingest(&self, results: Vec<RunResult>) -> Result<(Ingested, Vec<RunResult>), StoreError>;

    /// Results accepted and duplicates seen by this process since the store was opened.
    fn totals(&self) -> Ingested;

    /// The latest result (by `planned_at_ms`) of a pair, while its raw result is kept.
    fn latest(&self, check: &str, region: &str) -> Result<Option<RunResult>, StoreError> {
        let query = ResultQuery {
            check: Some(check.to_owned()),
            region: Some(region.to_owned()),
            limit: 1,
            ..ResultQuery::default()
        };
        Ok(self.results(&query)?.into_iter().next())
    }

    /// The latest run of every pair that has one (while its raw result is kept): where probers resume, and the
    /// overview's cells.
    fn latest_runs(&self) -> Result<Vec<LatestRun>, StoreError>;

    /// Raw results matching the query, newest first (ties by check, then region).
    fn results(&self, query: &ResultQuery) -> Result<Vec<RunResult>, StoreError>;

    /// Every pair that ever had a result, by check then region.
    fn pairs(&self) -> Result<Vec<Pair>, StoreError>;

    /// Uptime of every matching pair over a window: exact while raw results cover its edges, to the minute (then
    /// the hour) where they (then the minute rollups) are pruned. Pairs without runs in it are left out.
    fn uptime(&self, query: &UptimeQuery) -> Result<Vec<Uptime>, StoreError>;

    /// Uptime of a check (one region or all together) in buckets of `bucket_ms` from `from_ms`; buckets without
    /// runs are included with zero runs.
    fn uptime_buckets(
        &self,
        check: &str,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<Bucket>, StoreError>;

    /// Latency percentiles and phase means of a check per region over a window.
    fn latency(&self, check: &str, region: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<Latency>, StoreError>;

    /// A check's latency (one region or all together) in steps of `step_ms` from `from_ms`; steps without runs
    /// are left out.
    fn latency_series(
        &self,
        check: &str,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<LatencyPoint>, StoreError>;

    /// Every pair's hours starting in `[from_ms, to_ms)` that had runs, with their median duration (the
    /// overview's sparklines, for every pair at once).
    fn hourly_latency(&self, from_ms: i64, to_ms: i64) -> Result<Vec<HourLatency>, StoreError>;

    /// Incidents (spans of consecutive failed runs) overlapping a window, newest first.
    fn incidents(
        &self,
        check: Option<&str>,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Incident>, StoreError>;

    /// The bytes of a stored artifact, by the `path` a stored result carries; `None` when there is no such
    /// artifact (or the path is not one the store hands out).
    fn artifact(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Results in the order they were stored, from `from_ms` on (the store's clock when their batch was
    /// written), at most `limit`, each with that time: how the leader of replicated schedulers sees every
    /// replica's results. A batch may become visible a little after the time it carries (its transaction was
    /// still open), so a reader goes back a few seconds each time and skips the runs it saw. Only stores shared
    /// by replicas have it; the embedded store answers [`StoreError::Unsupported`].
    fn stored_since(&self, from_ms: i64, limit: usize) -> Result<Vec<(i64, RunResult)>, StoreError> {
        let _ = (from_ms, limit);
        Err(StoreError::Unsupported("results by arrival"))
    }

    /// Results in the order they were stored, after `after`, at most `limit`: how a sink reads the store as its
    /// write-ahead log. A result is returned only once no result still being written can come before it, so a
    /// reader that goes on from a page's `next` misses none and sees none twice (PostgreSQL, where replicas
    /// write at once, holds back the last few seconds; the embedded store, one writer, holds back nothing).
    fn stored_after(&self, after: Position, limit: usize) -> Result<StoredPage, StoreError>;

    /// The position after every result stored now: where a reader that wants only new results starts.
    fn stored_end(&self) -> Result<Position, StoreError>;

    /// A reader's saved position (see [`Store::save_cursor`]), if it saved one.
    fn cursor(&self, name: &str) -> Result<Option<Position>, StoreError>;

    /// Saves a reader's position under `name` (a sink's name), in the store, so it goes on from there after a
    /// restart or, replicated, on another replica.
    fn save_cursor(&self, name: &str, at: Position) -> Result<(), StoreError>;

    /// Copies the database into `file` (which must not exist), consistent as of one commit, while ingest goes
    /// on: the embedded store's online backup (the scheduler uploads it to the bucket). Stores that keep their
    /// data in a server of their own (PostgreSQL, backed up by its tools) answer [`StoreError::Unsupported`].
    fn backup_into(&self, file: &Path) -> Result<Snapshot, StoreError> {
        let _ = file;
        Err(StoreError::Unsupported("online backup"))
    }

    /// Stores closed ledger hours (`docs/uptime.md`), replacing the rows of the same check, region and hour, and
    /// brings the day rows of their days up to date: all in one transaction.
    fn write_ledger_hours(&self, hours: &[LedgerHour]) -> Result<(), StoreError>;

    /// The sums of the ledger hours starting in `[from_ms, to_ms)` (whole hours), per check and region and per
    /// check as a whole (`region: None`), of one check or all; pairs without a written hour there are left out.
    /// Whole days in the window are read from day rows.
    fn ledger_sums(&self, check: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<LedgerSum>, StoreError>;

    /// The day rows (sums of a UTC day's written hours) of the days starting in `[from_ms, to_ms)`, per check and
    /// region and per check as a whole, of one check or all, by check, region and day.
    fn ledger_days(&self, check: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<LedgerSum>, StoreError>;

    /// The start of the newest ledger hour written, if any.
    fn ledger_last_hour(&self) -> Result<Option<i64>, StoreError>;

    /// Applies retention as of `now_ms`: raw results and their artifacts, rollups, closed incidents.
    fn prune(&self, now_ms: i64) -> Result<Pruned, StoreError> {
        self.prune_keeping(now_ms, None)
    }

    /// Applies retention as [`Store::prune`] does, except that raw results (and their artifacts) planned at or
    /// after `raw_floor_ms` are kept whatever their age: the archive's floor, the oldest day it has not
    /// written yet, so a bucket that is down keeps raw results longer instead of losing them.
    fn prune_keeping(&self, now_ms: i64, raw_floor_ms: Option<i64>) -> Result<Pruned, StoreError>;
}
