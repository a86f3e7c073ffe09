//! Queries: latest and recent results, uptime over any window, uptime and latency series, latency percentiles,
//! incidents, known pairs. Windows are covered by a [`plan`] of rollup and raw terms.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use probenet_checks::wire::RunResult;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::codec::{decode_body, decode_result};
use super::rollup::{Agg, Buckets, DAY_MS, Level, Source, Term, plan, row_agg_at};
use super::{
    Bucket, Incident, Latency, LatencyPoint, Pair, Position, ResultQuery, SqliteStore, StoreError, StoredPage,
};

/// Which pairs a query covers: `None` (a name never stored) matches nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filter {
    pub(crate) check: Option<i64>,
    pub(crate) region: Option<i64>,
}

/// Rows of a term: (check, region, timestamp, aggregate).
type Row = (i64, i64, i64, Agg);

impl SqliteStore {
    pub(crate) fn filter(
        &self,
        conn: &Connection,
        check: Option<&str>,
        region: Option<&str>,
    ) -> Result<Option<Filter>, StoreError> {
        let check = match check {
            Some(name) => match self.check_id(conn, name)? {
                Some(id) => Some(id),
                None => return Ok(None),
            },
            None => None,
        };
        let region = match region {
            Some(name) => match self.region_id(conn, name)? {
                Some(id) => Some(id),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some(Filter { check, region }))
    }

    /// The plan of a window. When nothing is stored at or after `to_ms`, the window is widened to the next day
    /// boundary, which changes no count but saves reading the partial day at the right edge.
    fn window_plan(&self, from_ms: i64, to_ms: i64, complement: bool) -> Vec<Term> {
        let max_planned = self.inner.max_planned_ms.load(Ordering::Relaxed);
        let to = if max_planned < to_ms { Level::Day.start(to_ms - 1) + DAY_MS } else { to_ms };
        plan(from_ms, to.max(to_ms), self.kept(), complement)
    }

    /// Raw results, newest first (by `planned_at_ms`).
    pub(crate) fn results(&self, query: &ResultQuery) -> Result<Vec<RunResult>, StoreError> {
        let conn = self.reader()?;
        let Some(filter) = self.filter(&conn, query.check.as_deref(), query.region.as_deref())? else {
            return Ok(Vec::new());
        };
        let mut sql = String::from(
            "SELECT r.check_id, r.region_id, r.planned_at_ms, r.body, r.state, r.duration FROM results r \
             WHERE r.planned_at_ms >= ?1 \
             AND r.planned_at_ms < ?2",
        );
        let mut values =
            vec![Value::from(query.since_ms.unwrap_or(i64::MIN)), Value::from(query.until_ms.unwrap_or(i64::MAX))];
        if let Some(check) = filter.check {
            values.push(Value::from(check));
            sql.push_str(&format!(" AND r.check_id = ?{}", values.len()));
        }
        if let Some(region) = filter.region {
            values.push(Value::from(region));
            sql.push_str(&format!(" AND r.region_id = ?{}", values.len()));
        }
        if query.only_failures {
            sql.push_str(" AND r.state = 2");
        }
        let limit = if query.limit == 0 { 100 } else { query.limit };
        let order = if query.oldest_first { "ASC" } else { "DESC" };
        sql.push_str(&format!(" ORDER BY r.planned_at_ms {order} LIMIT {limit}"));
        type ResultRow = (i64, i64, i64, Vec<u8>, i64, f64);
        let rows: Vec<ResultRow> = conn
            .prepare_cached(&sql)
            .and_then(|mut statement| {
                statement
                    .query_map(params_from_iter(values), |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
                    })?
                    .collect()
            })
            .map_err(StoreError::sqlite("reading results"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (check_id, region_id, planned_at_ms, body, state, duration) in rows {
            let (check, region) = self.pair_names(&conn, check_id, region_id)?;
            out.push(decode_result(check, region, planned_at_ms, &body, state, duration)?);
        }
        Ok(out)
    }

    /// Results stored after `after` (by id: the writer numbers them in commit order), at most `limit`.
    pub(crate) fn stored_after(&self, after: Position, limit: usize) -> Result<StoredPage, StoreError> {
        let conn = self.reader()?;
        let limit = i64::try_from(limit.clamp(1, 100_000)).unwrap_or(100_000);
        type StoredRow = (i64, i64, i64, i64, Vec<u8>, i64, f64);
        let rows: Vec<StoredRow> = conn
            .prepare_cached(
                "SELECT r.id, r.check_id, r.region_id, r.planned_at_ms, r.body, r.state, r.duration FROM results r \
                 WHERE r.id > ?1 ORDER BY r.id LIMIT ?2",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(params![after.0[0], limit], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
                    })?
                    .collect()
            })
            .map_err(StoreError::sqlite("reading results in stored order"))?;
        let mut page = StoredPage { results: Vec::with_capacity(rows.len()), next: after };
        for (id, check_id, region_id, planned_at_ms, body, state, duration) in rows {
            let (check, region) = self.pair_names(&conn, check_id, region_id)?;
            page.results.push(decode_result(check, region, planned_at_ms, &body, state, duration)?);
            page.next = Position([id, 0, 0, 0]);
        }
        Ok(page)
    }

    /// The position after the last result committed now.
    pub(crate) fn stored_end(&self) -> Result<Position, StoreError> {
        let conn = self.reader()?;
        let last: Option<i64> = conn
            .query_row("SELECT MAX(id) FROM results", [], |row| row.get(0))
            .map_err(StoreError::sqlite("reading the last result's id"))?;
        let pruned: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE key = 'results_max_id'", [], |row| row.get(0))
            .optional()
            .map_err(StoreError::sqlite("reading the last result's id"))?;
        Ok(Position([last.unwrap_or(0).max(pruned.unwrap_or(0)), 0, 0, 0]))
    }

    /// A reader's saved position.
    pub(crate) fn cursor(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let conn = self.reader()?;
        let id: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [format!("cursor:{name}")], |row| row.get(0))
            .optional()
            .map_err(StoreError::sqlite("reading a cursor"))?;
        Ok(id.map(|id| Position([id, 0, 0, 0])))
    }

    /// Saves a reader's position.
    pub(crate) fn save_cursor(&self, name: &str, at: Position) -> Result<(), StoreError> {
        let writer = self.writer()?;
        writer
            .conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![format!("cursor:{name}"), at.0[0]],
            )
            .map_err(StoreError::sqlite("saving a cursor"))?;
        Ok(())
    }

    /// Rows of many terms, terms of the same sign and source merged where their ranges touch.
    fn scan(
        &self,
        conn: &Connection,
        terms: Vec<Term>,
        filter: &Filter,
        mut each: impl FnMut(i64, Row),
    ) -> Result<(), StoreError> {
        let mut merged: Vec<Term> = Vec::new();
        let mut terms = terms;
        terms.sort_by_key(|term| (term.sign, source_key(term.source), term.from_ms));
        for term in terms {
            match merged.last_mut() {
                Some(last) if last.sign == term.sign && last.source == term.source && last.to_ms >= term.from_ms => {
                    last.to_ms = last.to_ms.max(term.to_ms);
                }
                _ => merged.push(term),
            }
        }
        let failed = || StoreError::sqlite("reading rollups");
        for term in merged {
            let (filter_sql, values) = pair_filter(filter, term);
            let sql = match term.source {
                Source::Raw => format!(
                    "SELECT p.check_id, p.region_id, r.planned_at_ms, r.state, r.duration, r.body FROM pairs p \
                     CROSS JOIN results r ON r.check_id = p.check_id AND r.region_id = p.region_id \
                     AND r.planned_at_ms >= ?1 AND r.planned_at_ms < ?2 {filter_sql}"
                ),
                Source::Rollup(level) => format!(
                    "SELECT p.check_id, p.region_id, r.start_ms, r.runs, r.up, r.degraded, r.down, r.seconds, r.hist, \
                     r.phases FROM pairs p CROSS JOIN {} r ON r.check_id = p.check_id AND r.region_id = p.region_id \
                     AND r.start_ms >= ?1 AND r.start_ms < ?2 {filter_sql}",
                    level.table()
                ),
            };
            let mut statement = conn.prepare_cached(&sql).map_err(failed())?;
            let mut rows = statement.query(params_from_iter(values)).map_err(failed())?;
            while let Some(row) = rows.next().map_err(failed())? {
                let (check, region, at): (i64, i64, i64) =
                    (row.get(0).map_err(failed())?, row.get(1).map_err(failed())?, row.get(2).map_err(failed())?);
                let agg = match term.source {
                    Source::Raw => {
                        let state: i64 = row.get(3).map_err(failed())?;
                        let seconds: f64 = row.get(4).map_err(failed())?;
                        let body: Vec<u8> = row.get(5).map_err(failed())?;
                        let phases =
                            decode_body(&body, at, state, seconds).map(|body| body.outcome.phases).unwrap_or_default();
                        let mut agg = Agg::default();
                        agg.record(state, seconds, phases.iter().map(|phase| (phase.name.as_str(), phase.seconds)));
                        agg
                    }
                    Source::Rollup(_) => row_agg_at(row, 3).map_err(failed())?,
                };
                each(term.sign, (check, region, at, agg));
            }
        }
        Ok(())
    }

    /// Per-bucket aggregates of `[from_ms, to_ms)` cut in `bucket_ms` steps, keyed by (bucket index, region id
    /// when `per_region`).
    fn series(
        &self,
        conn: &Connection,
        filter: &Filter,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
        per_region: bool,
    ) -> Result<BTreeMap<(i64, i64), Agg>, StoreError> {
        let buckets = Buckets { from_ms, to_ms, bucket_ms: bucket_ms.max(1), per_region };
        let terms = buckets.terms(|start, end| self.window_plan(start, end, false));
        let mut out: BTreeMap<(i64, i64), Agg> = BTreeMap::new();
        self.scan(conn, terms, filter, |sign, (_, region, at, agg)| buckets.add(&mut out, sign, region, at, &agg))?;
        Ok(out)
    }

    /// Uptime per bucket of `bucket_ms` over `[from_ms, to_ms)` for a check (one region or all together);
    /// buckets without runs are included with zero runs.
    pub(crate) fn uptime_buckets(
        &self,
        check: &str,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let conn = self.reader()?;
        let bucket_ms = bucket_ms.max(1);
        let series = match self.filter(&conn, Some(check), region)? {
            Some(filter) => self.series(&conn, &filter, from_ms, to_ms, bucket_ms, false)?,
            None => BTreeMap::new(),
        };
        Ok(super::rollup::buckets(&series, from_ms, to_ms, bucket_ms))
    }

    /// Latency per region of a check over `[from_ms, to_ms)`: percentiles from the log-scale histograms
    /// (within 4.4%), exact means.
    pub(crate) fn latency(
        &self,
        check: &str,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Latency>, StoreError> {
        let conn = self.reader()?;
        let Some(filter) = self.filter(&conn, Some(check), region)? else { return Ok(Vec::new()) };
        let series = self.series(&conn, &filter, from_ms, to_ms, (to_ms - from_ms).max(1), true)?;
        let mut out = Vec::new();
        for ((_, region_id), agg) in series {
            if agg.runs <= 0 {
                continue;
            }
            let check_id = filter.check.unwrap_or_default();
            let (_, region) = self.pair_names(&conn, check_id, region_id)?;
            out.extend(agg.latency(region));
        }
        Ok(out)
    }

    /// Latency per step of `step_ms` over `[from_ms, to_ms)` for a check (one region or all together); steps
    /// without runs are left out.
    pub(crate) fn latency_series(
        &self,
        check: &str,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<LatencyPoint>, StoreError> {
        let conn = self.reader()?;
        let Some(filter) = self.filter(&conn, Some(check), region)? else { return Ok(Vec::new()) };
        let step_ms = step_ms.max(1);
        let series = self.series(&conn, &filter, from_ms, to_ms, step_ms, false)?;
        Ok(super::rollup::points(series, from_ms, step_ms))
    }

    /// Incidents overlapping `[from_ms, to_ms)`, newest first.
    pub(crate) fn incidents(
        &self,
        check: Option<&str>,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Incident>, StoreError> {
        let conn = self.reader()?;
        let Some(filter) = self.filter(&conn, check, region)? else { return Ok(Vec::new()) };
        let mut sql = String::from(
            "SELECT check_id, region_id, start_ms, end_ms, runs, reason, error FROM incidents \
             WHERE start_ms < ?2 AND (end_ms IS NULL OR end_ms > ?1)",
        );
        let mut values = vec![Value::from(from_ms), Value::from(to_ms)];
        if let Some(check) = filter.check {
            values.push(Value::from(check));
            sql.push_str(&format!(" AND check_id = ?{}", values.len()));
        }
        if let Some(region) = filter.region {
            values.push(Value::from(region));
            sql.push_str(&format!(" AND region_id = ?{}", values.len()));
        }
        sql.push_str(" ORDER BY start_ms DESC, check_id, region_id");
        type IncidentRow = (i64, i64, i64, Option<i64>, i64, Option<String>, Option<String>);
        let rows: Vec<IncidentRow> = conn
            .prepare_cached(&sql)
            .and_then(|mut statement| {
                statement
                    .query_map(params_from_iter(values), |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
                    })?
                    .collect()
            })
            .map_err(StoreError::sqlite("reading incidents"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (check_id, region_id, start_ms, end_ms, runs, reason, error) in rows {
            let (check, region) = self.pair_names(&conn, check_id, region_id)?;
            out.push(Incident { check, region, start_ms, end_ms, runs, reason, error });
        }
        Ok(out)
    }

    /// Every (check, region) pair with results, by check then region.
    pub(crate) fn pairs(&self) -> Result<Vec<Pair>, StoreError> {
        let conn = self.reader()?;
        let rows: Vec<(i64, i64, i64)> = conn
            .prepare_cached("SELECT check_id, region_id, last_planned_ms FROM pairs")
            .and_then(|mut statement| {
                statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect()
            })
            .map_err(StoreError::sqlite("reading pairs"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (check_id, region_id, last_planned_ms) in rows {
            let (check, region) = self.pair_names(&conn, check_id, region_id)?;
            out.push(Pair { check, region, last_planned_ms });
        }
        out.sort_by(|a, b| (&a.check, &a.region).cmp(&(&b.check, &b.region)));
        Ok(out)
    }
}

fn source_key(source: Source) -> u8 {
    match source {
        Source::Raw => 0,
        Source::Rollup(Level::Minute) => 1,
        Source::Rollup(Level::Hour) => 2,
        Source::Rollup(Level::Day) => 3,
    }
}

/// The `WHERE` on pairs and the parameters (`?1`, `?2` the term's range).
fn pair_filter(filter: &Filter, term: Term) -> (String, Vec<Value>) {
    let mut values = vec![Value::from(term.from_ms), Value::from(term.to_ms)];
    let mut clauses = Vec::new();
    if let Some(check) = filter.check {
        values.push(Value::from(check));
        clauses.push(format!("p.check_id = ?{}", values.len()));
    }
    if let Some(region) = filter.region {
        values.push(Value::from(region));
        clauses.push(format!("p.region_id = ?{}", values.len()));
    }
    let sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    (sql, values)
}
