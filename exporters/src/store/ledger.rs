//! Ledger hours: the uptime ledger's milliseconds (`docs/uptime.md`) per (check, region, hour) and per (check,
//! hour) for the check's quorum view, written by the scheduler once an hour is closed, with a day row per
//! (check, region, day) kept beside them so that sums over weeks read days, not hours. The types, the split of a
//! window into hours and days, and the SQLite backend; PostgreSQL's is `postgres/ledger.rs`.

use rusqlite::{TransactionBehavior, params};
use serde::Serialize;

use super::{SqliteStore, StoreError};

/// An hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// A UTC day, ms.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Milliseconds of a span by the ledger's states. `up + down + unknown + maintenance` is the span's length; the
/// muted parts are inside `up` and `down`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LedgerMs {
    /// Up (degraded counts as up).
    pub up_ms: i64,
    /// Down.
    pub down_ms: i64,
    /// Without data, or the region impaired.
    pub unknown_ms: i64,
    /// In `pause` windows.
    pub maintenance_ms: i64,
    /// The part of `up_ms` inside `mute` windows.
    pub muted_up_ms: i64,
    /// The part of `down_ms` inside `mute` windows.
    pub muted_down_ms: i64,
}

impl LedgerMs {
    /// Adds another span's milliseconds.
    pub fn add(&mut self, other: &LedgerMs) {
        self.up_ms += other.up_ms;
        self.down_ms += other.down_ms;
        self.unknown_ms += other.unknown_ms;
        self.maintenance_ms += other.maintenance_ms;
        self.muted_up_ms += other.muted_up_ms;
        self.muted_down_ms += other.muted_down_ms;
    }

    /// `up / (up + down)`, as the ledger defines it; `None` when both are 0.
    #[allow(clippy::cast_precision_loss)]
    pub fn uptime(&self) -> Option<f64> {
        let (up, down) = (self.up_ms as f64 / 1000.0, self.down_ms as f64 / 1000.0);
        (up + down > 0.0).then(|| up / (up + down))
    }
}

/// One closed hour of a check, in one region or (`region: None`) for the check's quorum view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerHour {
    /// The check.
    pub check: String,
    /// The region; `None` for the check as a whole.
    pub region: Option<String>,
    /// The hour's start, unix ms (a multiple of [`HOUR_MS`]).
    pub start_ms: i64,
    /// The ledger policy version the figures follow.
    pub policy: u32,
    /// The figures.
    pub ms: LedgerMs,
}

/// A sum of ledger hours of a check, in one region or (`region: None`) as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerSum {
    /// The check.
    pub check: String,
    /// The region; `None` for the check as a whole.
    pub region: Option<String>,
    /// The start of what was summed: the window's, or the day's for [`crate::store::Store::ledger_days`].
    pub start_ms: i64,
    /// The sums.
    pub ms: LedgerMs,
}

/// How a window `[from, to)` is read: hours `[from, a)`, days `[a, b)`, hours `[b, to)`, with `a` the first
/// midnight at or after `from` and `b` the last at or before `to` (hours when there is no whole day between).
pub(crate) fn split(from: i64, to: i64) -> (i64, i64) {
    let to = to.max(from);
    // The first midnight at or after `from` (`i64::div_ceil` is not stable).
    let a = (-(-from).div_euclid(DAY_MS)).saturating_mul(DAY_MS).min(to);
    let b = to.div_euclid(DAY_MS).saturating_mul(DAY_MS).max(a);
    (a, b)
}

/// The region column's value for the quorum view.
pub(crate) const WHOLE: &str = "";

pub(crate) fn region_of(column: String) -> Option<String> {
    (column != WHOLE).then_some(column)
}

/// The sum columns, in [`LedgerMs`] order.
pub(crate) const SUMS: &str =
    "sum(up_ms), sum(down_ms), sum(unknown_ms), sum(maintenance_ms), sum(muted_up_ms), sum(muted_down_ms)";

/// The columns, in [`LedgerMs`] order.
pub(crate) const COLUMNS: &str = "up_ms, down_ms, unknown_ms, maintenance_ms, muted_up_ms, muted_down_ms";

/// The days and checks whose day rows `hours` change.
pub(crate) fn days_of(hours: &[LedgerHour]) -> Vec<(i64, &str)> {
    let mut days: Vec<(i64, &str)> =
        hours.iter().map(|hour| (hour.start_ms.div_euclid(DAY_MS) * DAY_MS, hour.check.as_str())).collect();
    days.sort_unstable();
    days.dedup();
    days
}

impl SqliteStore {
    /// Upserts `hours` and rebuilds the day rows of their days and checks, in one transaction.
    pub(crate) fn write_ledger_hours(&self, hours: &[LedgerHour]) -> Result<(), StoreError> {
        if hours.is_empty() {
            return Ok(());
        }
        let failed = || StoreError::sqlite("writing ledger hours");
        let mut writer = self.writer()?;
        let tx = writer.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed())?;
        {
            let mut upsert = tx
                .prepare_cached(&format!(
                    "INSERT INTO ledger_hour (start_ms, check_name, region, policy, {COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                     ON CONFLICT (start_ms, check_name, region) DO UPDATE SET policy = excluded.policy, \
                     up_ms = excluded.up_ms, down_ms = excluded.down_ms, unknown_ms = excluded.unknown_ms, \
                     maintenance_ms = excluded.maintenance_ms, muted_up_ms = excluded.muted_up_ms, \
                     muted_down_ms = excluded.muted_down_ms"
                ))
                .map_err(failed())?;
            for hour in hours {
                let ms = &hour.ms;
                upsert
                    .execute(params![
                        hour.start_ms,
                        hour.check,
                        hour.region.as_deref().unwrap_or(WHOLE),
                        hour.policy,
                        ms.up_ms,
                        ms.down_ms,
                        ms.unknown_ms,
                        ms.maintenance_ms,
                        ms.muted_up_ms,
                        ms.muted_down_ms
                    ])
                    .map_err(failed())?;
            }
            let mut clear =
                tx.prepare_cached("DELETE FROM ledger_day WHERE start_ms = ?1 AND check_name = ?2").map_err(failed())?;
            let mut fill = tx
                .prepare_cached(&format!(
                    "INSERT INTO ledger_day (start_ms, check_name, region, policy, {COLUMNS}) \
                     SELECT ?1, check_name, region, max(policy), {SUMS} FROM ledger_hour \
                     WHERE check_name = ?2 AND start_ms >= ?1 AND start_ms < ?3 GROUP BY check_name, region"
                ))
                .map_err(failed())?;
            for (day, check) in days_of(hours) {
                clear.execute(params![day, check]).map_err(failed())?;
                fill.execute(params![day, check, day + DAY_MS]).map_err(failed())?;
            }
        }
        tx.commit().map_err(failed())
    }

    /// Sums of the hours starting in `[from_ms, to_ms)` per check and region (and per check as a whole).
    pub(crate) fn ledger_sums(
        &self,
        check: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<LedgerSum>, StoreError> {
        let (a, b) = split(from_ms, to_ms);
        let filter = if check.is_some() { "AND check_name = ?5" } else { "AND ?5 IS NULL" };
        let sql = format!(
            "SELECT check_name, region, {SUMS} FROM (\
             SELECT check_name, region, {COLUMNS} FROM ledger_hour WHERE start_ms >= ?1 AND start_ms < ?2 {filter} \
             UNION ALL \
             SELECT check_name, region, {COLUMNS} FROM ledger_day WHERE start_ms >= ?2 AND start_ms < ?3 {filter} \
             UNION ALL \
             SELECT check_name, region, {COLUMNS} FROM ledger_hour WHERE start_ms >= ?3 AND start_ms < ?4 {filter}\
             ) GROUP BY check_name, region ORDER BY check_name, region"
        );
        let conn = self.reader()?;
        let rows = conn
            .prepare_cached(&sql)
            .and_then(|mut statement| {
                statement
                    .query_map(params![from_ms, a, b, to_ms.max(from_ms), check], |row| {
                        Ok(LedgerSum {
                            check: row.get(0)?,
                            region: region_of(row.get(1)?),
                            start_ms: from_ms,
                            ms: ms_at(row, 2)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(StoreError::sqlite("summing ledger hours"))?;
        Ok(rows)
    }

    /// Day rows of the days starting in `[from_ms, to_ms)`.
    pub(crate) fn ledger_days(
        &self,
        check: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<LedgerSum>, StoreError> {
        let filter = if check.is_some() { "AND check_name = ?3" } else { "AND ?3 IS NULL" };
        let sql = format!(
            "SELECT check_name, region, start_ms, {COLUMNS} FROM ledger_day \
             WHERE start_ms >= ?1 AND start_ms < ?2 {filter} ORDER BY check_name, region, start_ms"
        );
        let conn = self.reader()?;
        conn.prepare_cached(&sql)
            .and_then(|mut statement| {
                statement
                    .query_map(params![from_ms, to_ms, check], |row| {
                        Ok(LedgerSum {
                            check: row.get(0)?,
                            region: region_of(row.get(1)?),
                            start_ms: row.get(2)?,
                            ms: ms_at(row, 3)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(StoreError::sqlite("reading ledger days"))
    }

    /// The start of the newest ledger hour written.
    pub(crate) fn ledger_last_hour(&self) -> Result<Option<i64>, StoreError> {
        let conn = self.reader()?;
        conn.query_row("SELECT max(start_ms) FROM ledger_hour", [], |row| row.get(0))
            .map_err(StoreError::sqlite("reading the last ledger hour"))
    }
}

fn ms_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<LedgerMs> {
    Ok(LedgerMs {
        up_ms: row.get(first)?,
        down_ms: row.get(first + 1)?,
        unknown_ms: row.get(first + 2)?,
        maintenance_ms: row.get(first + 3)?,
        muted_up_ms: row.get(first + 4)?,
        muted_down_ms: row.get(first + 5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_hours_then_days_then_hours() {
        let day = DAY_MS;
        assert_eq!(split(day + 5 * HOUR_MS, 3 * day + 2 * HOUR_MS), (2 * day, 3 * day));
        assert_eq!(split(day, 3 * day), (day, 3 * day), "whole days only");
        assert_eq!(split(day + HOUR_MS, day + 5 * HOUR_MS), (day + 5 * HOUR_MS, day + 5 * HOUR_MS), "hours only");
        assert_eq!(split(day + HOUR_MS, 2 * day), (2 * day, 2 * day));
    }
}
