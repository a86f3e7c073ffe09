//! Queries over every pair at once, for an overview of the whole network: each pair's latest state, and its
//! hourly median latency (a few statements, not one query per pair).

use super::codec::Histogram;
use super::{SqliteStore, StoreError};

/// The latest run of one pair.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestRun {
    /// The check.
    pub check: String,
    /// The region.
    pub region: String,
    /// When it was planned.
    pub planned_at_ms: i64,
    /// 0 up, 1 degraded, 2 down.
    pub state: u8,
    /// How long it took, in seconds.
    pub seconds: f64,
}

/// One hour of one pair.
#[derive(Debug, Clone, PartialEq)]
pub struct HourLatency {
    /// The check.
    pub check: String,
    /// The region.
    pub region: String,
    /// The hour's start.
    pub start_ms: i64,
    /// Runs in the hour.
    pub runs: i64,
    /// The median duration (from the hour's histogram, within 4.4%).
    pub p50: Option<f64>,
}

impl SqliteStore {
    /// The latest run of every pair that has one (while its raw result is kept).
    pub(crate) fn latest_runs(&self) -> Result<Vec<LatestRun>, StoreError> {
        let conn = self.reader()?;
        let rows: Vec<(i64, i64, i64, i64, f64)> = conn
            .prepare_cached(
                "SELECT p.check_id, p.region_id, r.planned_at_ms, r.state, r.duration FROM pairs p \
                 JOIN results r ON r.check_id = p.check_id AND r.region_id = p.region_id \
                 AND r.planned_at_ms = p.last_planned_ms",
            )
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))?
                    .collect()
            })
            .map_err(StoreError::sqlite("reading the latest runs"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (check_id, region_id, planned_at_ms, state, seconds) in rows {
            let (check, region) = self.pair_names(&conn, check_id, region_id)?;
            let state = u8::try_from(state.clamp(0, 2)).unwrap_or(2);
            out.push(LatestRun { check, region, planned_at_ms, state, seconds });
        }
        Ok(out)
    }

    /// Every pair's hours starting in `[from_ms, to_ms)` that had runs, with their median duration.
    pub(crate) fn hourly_latency(&self, from_ms: i64, to_ms: i64) -> Result<Vec<HourLatency>, StoreError> {
        let conn = self.reader()?;
        let rows: Vec<(i64, i64, i64, i64, Vec<u8>)> = conn
            .prepare_cached(
                // Pair by pair through the primary key (check, region, start), never a scan of every hour kept.
                "SELECT h.check_id, h.region_id, h.start_ms, h.runs, h.hist FROM pairs p CROSS JOIN rollup_hour h \
                 WHERE h.check_id = p.check_id AND h.region_id = p.region_id \
                 AND h.start_ms >= ?1 AND h.start_ms < ?2 AND h.runs > 0",
            )
            .and_then(|mut statement| {
                statement
                    .query_map([from_ms, to_ms], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                    })?
                    .collect()
            })
            .map_err(StoreError::sqlite("reading hourly latency"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (check_id, region_id, start_ms, runs, hist) in rows {
            let (check, region) = self.pair_names(&conn, check_id, region_id)?;
            let p50 = Histogram::decode(&hist).and_then(|hist| hist.quantile(0.5));
            out.push(HourLatency { check, region, start_ms, runs, p50 });
        }
        Ok(out)
    }
}
