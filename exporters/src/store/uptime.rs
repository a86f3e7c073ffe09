//! Uptime over any window from running counts: per pair, the runs before an instant `t` are the day row's
//! count of everything before `t`'s day, plus the day's running count in the last minute row before `t`'s
//! minute, plus the raw results of the partial minute; uptime over `[from, to)` is the difference. A handful
//! of index seeks per pair, whatever the window's length.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::query::Filter;
use super::rollup::{Counts, HOUR_MS, Level, MINUTE_MS, row_counts};
use super::{SqliteStore, StoreError, Uptime, UptimeQuery};

/// Counts per (check, region).
type PerPair = HashMap<(i64, i64), Counts>;

fn ceil(t: i64, unit: i64) -> i64 {
    t.div_euclid(unit) * unit + if t.rem_euclid(unit) == 0 { 0 } else { unit }
}

/// The `WHERE` on pairs, its parameters numbered from `first`.
fn pair_where(filter: &Filter, first: usize) -> (String, Vec<Value>) {
    let mut values = Vec::new();
    let mut clauses = Vec::new();
    if let Some(check) = filter.check {
        values.push(Value::from(check));
        clauses.push(format!("p.check_id = ?{}", first + values.len() - 1));
    }
    if let Some(region) = filter.region {
        values.push(Value::from(region));
        clauses.push(format!("p.region_id = ?{}", first + values.len() - 1));
    }
    let sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    (sql, values)
}

/// Runs `sql` (pair ids, then four counts from column `at`) and adds the counts per pair into `into`.
fn add_rows(conn: &Connection, sql: &str, values: Vec<Value>, at: usize, into: &mut PerPair) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params_from_iter(values))?;
    while let Some(row) = rows.next()? {
        let counts = row_counts(row, at)?;
        let sum = into.entry((row.get(0)?, row.get(1)?)).or_default();
        for (total, value) in sum.iter_mut().zip(counts) {
            *total += value;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Uptime per (check, region) over `[from_ms, to_ms)`: exact while raw results exist at both edges, minute
    /// precision where they are pruned (a partial minute counts whole when it starts inside the window), hour
    /// precision where minute rollups are pruned.
    pub(crate) fn uptime(&self, query: &UptimeQuery) -> Result<Vec<Uptime>, StoreError> {
        let conn = self.reader()?;
        let Some(filter) = self.filter(&conn, query.check.as_deref(), query.region.as_deref())? else {
            return Ok(Vec::new());
        };
        let failed = StoreError::sqlite("computing uptime");
        let (from, to) = (query.from_ms, query.to_ms.max(query.from_ms));
        let computed = (|| {
            let before_to = if self.inner.max_planned_ms.load(Ordering::Relaxed) < to {
                // Nothing stored at or after `to`: everything stored is before it.
                let (filter_sql, values) = pair_where(&filter, 1);
                let mut totals = PerPair::new();
                let sql = format!(
                    "SELECT p.check_id, p.region_id, p.runs, p.up, p.degraded, p.down FROM pairs p {filter_sql}"
                );
                add_rows(&conn, &sql, values, 2, &mut totals)?;
                totals
            } else {
                self.runs_before(&conn, &filter, to)?
            };
            let before_from = self.runs_before(&conn, &filter, from)?;
            Ok::<_, rusqlite::Error>((before_to, before_from))
        })();
        let (before_to, before_from) = computed.map_err(failed)?;
        let mut sums: Vec<((i64, i64), Counts)> = before_to
            .into_iter()
            .map(|(pair, end)| {
                let start = before_from.get(&pair).copied().unwrap_or_default();
                (pair, [end[0] - start[0], end[1] - start[1], end[2] - start[2], end[3] - start[3]])
            })
            .filter(|(_, counts)| counts[0] > 0)
            .collect();
        sums.sort_unstable_by_key(|(pair, _)| *pair);
        let mut out = Vec::with_capacity(sums.len());
        for ((check_id, region_id), [runs, up, degraded, down]) in sums {
            let (check, region) = self.pair_names(&conn, check_id, region_id)?;
            let ratio = Some((up + degraded) as f64 / runs as f64);
            out.push(Uptime { check, region, runs, up, degraded, down, ratio });
        }
        Ok(out)
    }

    /// Per pair, the runs planned before `t` (counted from the pair's first stored day row), at the precision
    /// what is kept allows (see [`Store::uptime`](super::Store::uptime)).
    fn runs_before(&self, conn: &Connection, filter: &Filter, t: i64) -> rusqlite::Result<PerPair> {
        let kept = self.kept();
        let day = Level::Day.start(t);
        let mut out = PerPair::new();
        // Everything before the day: the day row's running count (one seek per pair).
        let (filter_sql, mut values) = pair_where(filter, 2);
        values.insert(0, Value::from(day));
        let sql = format!(
            "SELECT p.check_id, p.region_id, x.before_runs, x.before_up, x.before_degraded, x.before_down, x.start_ms \
             FROM pairs p LEFT JOIN rollup_day x ON x.check_id = p.check_id AND x.region_id = p.region_id \
             AND x.start_ms = ?1 {filter_sql}"
        );
        let mut missing = Vec::new();
        {
            let mut statement = conn.prepare_cached(&sql)?;
            let mut rows = statement.query(params_from_iter(values))?;
            while let Some(row) = rows.next()? {
                let pair = (row.get(0)?, row.get(1)?);
                if row.get::<_, Option<i64>>(6)?.is_some() {
                    out.insert(pair, row_counts(row, 2)?);
                } else {
                    missing.push(pair);
                }
            }
        }
        for (check, region) in missing {
            out.insert((check, region), self.runs_before_day(conn, check, region, day)?);
        }
        if t == day {
            return Ok(out);
        }
        // Within the day: the running count of the last minute (or hour) row before `t`'s bucket.
        let minutes_kept = day >= kept.minute_since_ms;
        let raw_kept = Level::Minute.start(t) >= kept.raw_since_ms;
        let (level, end) = match (minutes_kept, raw_kept) {
            (true, true) => (Level::Minute, Level::Minute.start(t)),
            (true, false) => (Level::Minute, ceil(t, MINUTE_MS)),
            (false, _) => (Level::Hour, ceil(t, HOUR_MS)),
        };
        if end > day {
            let table = level.table();
            let (filter_sql, mut values) = pair_where(filter, 3);
            values.splice(0..0, [Value::from(day), Value::from(end)]);
            let sql = format!(
                "SELECT p.check_id, p.region_id, x.day_runs, x.day_up, x.day_degraded, x.day_down FROM pairs p \
                 CROSS JOIN {table} x ON x.check_id = p.check_id AND x.region_id = p.region_id AND x.start_ms = \
                 (SELECT max(y.start_ms) FROM {table} y WHERE y.check_id = p.check_id AND y.region_id = p.region_id \
                 AND y.start_ms >= ?1 AND y.start_ms < ?2) {filter_sql}"
            );
            add_rows(conn, &sql, values, 2, &mut out)?;
        }
        if level == Level::Minute && raw_kept && end < t {
            let (filter_sql, mut values) = pair_where(filter, 3);
            values.splice(0..0, [Value::from(end), Value::from(t)]);
            let sql = format!(
                "SELECT p.check_id, p.region_id, count(*), sum(r.state = 0), sum(r.state = 1), sum(r.state = 2) \
                 FROM pairs p CROSS JOIN results r ON r.check_id = p.check_id AND r.region_id = p.region_id \
                 AND r.planned_at_ms >= ?1 AND r.planned_at_ms < ?2 {filter_sql} GROUP BY p.check_id, p.region_id"
            );
            add_rows(conn, &sql, values, 2, &mut out)?;
        }
        Ok(out)
    }

    /// A pair's runs before `day` when it has no row for that day: the next day row's running count, else the
    /// last one's plus its runs, else (no day row at all) the pair's totals.
    fn runs_before_day(&self, conn: &Connection, check: i64, region: i64, day: i64) -> rusqlite::Result<Counts> {
        let next = conn
            .prepare_cached(
                "SELECT before_runs, before_up, before_degraded, before_down FROM rollup_day \
                 WHERE check_id = ?1 AND region_id = ?2 AND start_ms > ?3 ORDER BY start_ms LIMIT 1",
            )?
            .query_row(params![check, region, day], |row| row_counts(row, 0))
            .optional()?;
        if let Some(counts) = next {
            return Ok(counts);
        }
        let last = conn
            .prepare_cached(
                "SELECT before_runs + runs, before_up + up, before_degraded + degraded, before_down + down \
                 FROM rollup_day WHERE check_id = ?1 AND region_id = ?2 ORDER BY start_ms DESC LIMIT 1",
            )?
            .query_row(params![check, region], |row| row_counts(row, 0))
            .optional()?;
        if let Some(counts) = last {
            return Ok(counts);
        }
        conn.prepare_cached("SELECT runs, up, degraded, down FROM pairs WHERE check_id = ?1 AND region_id = ?2")?
            .query_row(params![check, region], |row| row_counts(row, 0))
            .optional()
            .map(Option::unwrap_or_default)
    }
}
