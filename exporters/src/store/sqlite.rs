//! [`SqliteStore`] behind the [`Store`] trait: each method is the embedded store's own query.

use std::path::Path;

use probenet_checks::wire::RunResult;

use super::{
    Bucket, HourLatency, Incident, Ingested, Latency, LatencyPoint, LatestRun, LedgerHour, LedgerSum, Pair, Position,
    Pruned, ResultQuery, Snapshot, SqliteStore, Store, StoreError, StoredPage, Uptime, UptimeQuery,
};

impl Store for SqliteStore {
    fn ingest(&self, results: Vec<RunResult>) -> Result<(Ingested, Vec<RunResult>), StoreError> {
        let (done, fresh) = self.ingest_marked(&results)?;
        let mut results: Vec<Option<RunResult>> = results.into_iter().map(Some).collect();
        let fresh = fresh.into_iter().filter_map(|index| results.get_mut(index).and_then(Option::take)).collect();
        Ok((done, fresh))
    }

    fn totals(&self) -> Ingested {
        SqliteStore::totals(self)
    }

    fn latest_runs(&self) -> Result<Vec<LatestRun>, StoreError> {
        SqliteStore::latest_runs(self)
    }

    fn results(&self, query: &ResultQuery) -> Result<Vec<RunResult>, StoreError> {
        SqliteStore::results(self, query)
    }

    fn stored_after(&self, after: Position, limit: usize) -> Result<StoredPage, StoreError> {
        SqliteStore::stored_after(self, after, limit)
    }

    fn stored_end(&self) -> Result<Position, StoreError> {
        SqliteStore::stored_end(self)
    }

    fn cursor(&self, name: &str) -> Result<Option<Position>, StoreError> {
        SqliteStore::cursor(self, name)
    }

    fn save_cursor(&self, name: &str, at: Position) -> Result<(), StoreError> {
        SqliteStore::save_cursor(self, name, at)
    }

    fn pairs(&self) -> Result<Vec<Pair>, StoreError> {
        SqliteStore::pairs(self)
    }

    fn uptime(&self, query: &UptimeQuery) -> Result<Vec<Uptime>, StoreError> {
        SqliteStore::uptime(self, query)
    }

    fn uptime_buckets(
        &self,
        check: &str,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        SqliteStore::uptime_buckets(self, check, region, from_ms, to_ms, bucket_ms)
    }

    fn latency(&self, check: &str, region: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<Latency>, StoreError> {
        SqliteStore::latency(self, check, region, from_ms, to_ms)
    }

    fn latency_series(
        &self,
        check: &str,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<LatencyPoint>, StoreError> {
        SqliteStore::latency_series(self, check, region, from_ms, to_ms, step_ms)
    }

    fn hourly_latency(&self, from_ms: i64, to_ms: i64) -> Result<Vec<HourLatency>, StoreError> {
        SqliteStore::hourly_latency(self, from_ms, to_ms)
    }

    fn incidents(
        &self,
        check: Option<&str>,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Incident>, StoreError> {
        SqliteStore::incidents(self, check, region, from_ms, to_ms)
    }

    fn artifact(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(file) = self.artifact_file(path) else { return Ok(None) };
        match std::fs::read(&file) {
            Ok(data) => Ok(Some(data)),
            // Removed by retention since it was found.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StoreError::Io { what: format!("reading the artifact {path}"), source: error }),
        }
    }

    fn backup_into(&self, file: &Path) -> Result<Snapshot, StoreError> {
        SqliteStore::backup_into(self, file)
    }

    fn write_ledger_hours(&self, hours: &[LedgerHour]) -> Result<(), StoreError> {
        SqliteStore::write_ledger_hours(self, hours)
    }

    fn ledger_sums(&self, check: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<LedgerSum>, StoreError> {
        SqliteStore::ledger_sums(self, check, from_ms, to_ms)
    }

    fn ledger_days(&self, check: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<LedgerSum>, StoreError> {
        SqliteStore::ledger_days(self, check, from_ms, to_ms)
    }

    fn ledger_last_hour(&self) -> Result<Option<i64>, StoreError> {
        SqliteStore::ledger_last_hour(self)
    }

    fn prune_keeping(&self, now_ms: i64, raw_floor_ms: Option<i64>) -> Result<Pruned, StoreError> {
        SqliteStore::prune(self, now_ms, raw_floor_ms)
    }
}
