//! Queries of the PostgreSQL store. Windows are covered by SQLite's [`plan`] of rollup and raw terms (whole
//! days, hours and minutes from the rollups, partial minutes from raw results), all terms of a question in
//! one statement (`UNION ALL`) read in one `REPEATABLE READ` snapshot, so a window's edges and its rows agree
//! even while other replicas ingest. Uptime is summed in SQL; histograms and phase sums are merged here.

use std::collections::BTreeMap;

use deadpool_postgres::{Object, Transaction};
use probenet_checks::wire::RunResult;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use super::{Failure, Shared};
use crate::store::codec::{Histogram, decode_body, decode_phases, decode_result};
use crate::store::query::Filter;
use crate::store::rollup::{Agg, Buckets, DAY_MS, Kept, Level, Source, Term, plan};
use crate::store::{
    Bucket, HourLatency, Incident, Latency, LatencyPoint, LatestRun, Pair, Position, ResultQuery, StoreError,
    StoredPage, Uptime, UptimeQuery,
};

/// Parameters as the driver takes them.
fn refs(values: &[i64]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|value| value as &(dyn ToSql + Sync)).collect()
}

/// Pushes `value` and returns its placeholder.
fn param(values: &mut Vec<i64>, value: i64) -> String {
    values.push(value);
    format!("${}", values.len())
}

/// The `AND` clauses of a filter on `alias`'s pair columns.
fn pair_clauses(filter: &Filter, alias: &str, values: &mut Vec<i64>) -> String {
    let mut sql = String::new();
    if let Some(check) = filter.check {
        sql.push_str(&format!(" AND {alias}.check_id = {}", param(values, check)));
    }
    if let Some(region) = filter.region {
        sql.push_str(&format!(" AND {alias}.region_id = {}", param(values, region)));
    }
    sql
}

/// The id of a name, if it was ever stored.
async fn name_id(shared: &Shared, client: &Object, name: &str, check: bool) -> Result<Option<i64>, Failure> {
    if let Some(id) = shared.cached_id(name, check)? {
        return Ok(Some(id));
    }
    let sql = if check {
        "SELECT id FROM store_checks WHERE name = $1"
    } else {
        "SELECT id FROM store_regions WHERE name = $1"
    };
    let failed = || Failure::db("looking up a name");
    let statement = client.prepare_cached(sql).await.map_err(failed())?;
    let Some(row) = client.query_opt(&statement, &[&name]).await.map_err(failed())? else { return Ok(None) };
    let id: i64 = row.try_get(0).map_err(failed())?;
    shared.remember(check, [(name.to_owned(), id)])?;
    Ok(Some(id))
}

/// The pairs a query covers; `None` when a name was never stored (nothing matches).
async fn filter(
    shared: &Shared,
    client: &Object,
    check: Option<&str>,
    region: Option<&str>,
) -> Result<Option<Filter>, Failure> {
    let check = match check {
        Some(name) => match name_id(shared, client, name, true).await? {
            Some(id) => Some(id),
            None => return Ok(None),
        },
        None => None,
    };
    let region = match region {
        Some(name) => match name_id(shared, client, name, false).await? {
            Some(id) => Some(id),
            None => return Ok(None),
        },
        None => None,
    };
    Ok(Some(Filter { check, region }))
}

/// A region's name by id (from the cache, else every name read again: another replica may have added it).
async fn region_name(shared: &Shared, client: &Object, id: i64) -> Result<String, Failure> {
    let cached = shared.names.read().map_err(|_| StoreError::Poisoned)?.region_names.get(&id).cloned();
    if let Some(name) = cached {
        return Ok(name);
    }
    let failed = || Failure::db("loading region names");
    let statement = client.prepare_cached("SELECT name, id FROM store_regions").await.map_err(failed())?;
    let found: Vec<(String, i64)> = client
        .query(&statement, &[])
        .await
        .map_err(failed())?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(failed())?;
    let name = found.iter().find(|(_, known)| *known == id).map(|(name, _)| name.clone());
    shared.remember(false, found)?;
    name.ok_or_else(|| StoreError::Codec(format!("unknown region id {id}")).into())
}

/// What one snapshot says about the whole store: the latest run and what retention removed.
struct Snapshot {
    max_planned_ms: i64,
    kept: Kept,
}

/// A read-only `REPEATABLE READ` transaction and its [`Snapshot`].
async fn snapshot(client: &mut Object) -> Result<(Transaction<'_>, Snapshot), Failure> {
    let failed = || Failure::db("reading the store's state");
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(failed())?;
    let statement = tx
        .prepare_cached(
            "SELECT (SELECT max(last_planned_ms) FROM store_pairs), \
             (SELECT value FROM store_meta WHERE key = 'raw_pruned_before_ms'), \
             (SELECT value FROM store_meta WHERE key = 'minute_pruned_before_ms')",
        )
        .await
        .map_err(failed())?;
    let row = tx.query_one(&statement, &[]).await.map_err(failed())?;
    let get = |i: usize| row.try_get::<_, Option<i64>>(i).map(|value| value.unwrap_or(i64::MIN));
    let snapshot = Snapshot {
        max_planned_ms: get(0).map_err(failed())?,
        kept: Kept { raw_since_ms: get(1).map_err(failed())?, minute_since_ms: get(2).map_err(failed())? },
    };
    Ok((tx, snapshot))
}

/// The plan of a window. When nothing is stored at or after `to_ms`, the window is widened to the next day
/// boundary, which changes no count but saves reading the partial day at the right edge.
fn window_plan(snapshot: &Snapshot, from_ms: i64, to_ms: i64, complement: bool) -> Vec<Term> {
    let to = if snapshot.max_planned_ms < to_ms { Level::Day.start(to_ms - 1) + DAY_MS } else { to_ms };
    plan(from_ms, to.max(to_ms), snapshot.kept, complement)
}

/// Terms of the same sign and source merged where their ranges touch.
fn merge_terms(mut terms: Vec<Term>) -> Vec<Term> {
    let key = |source: Source| match source {
        Source::Raw => 0,
        Source::Rollup(Level::Minute) => 1,
        Source::Rollup(Level::Hour) => 2,
        Source::Rollup(Level::Day) => 3,
    };
    terms.sort_by_key(|term| (term.sign, key(term.source), term.from_ms));
    let mut merged: Vec<Term> = Vec::new();
    for term in terms {
        match merged.last_mut() {
            Some(last) if last.sign == term.sign && last.source == term.source && last.to_ms >= term.from_ms => {
                last.to_ms = last.to_ms.max(term.to_ms);
            }
            _ => merged.push(term),
        }
    }
    merged
}

/// The latest run of every pair that has one (while its raw result is kept).
pub(crate) async fn latest_runs(shared: &Shared) -> Result<Vec<LatestRun>, Failure> {
    let client = shared.client().await?;
    let failed = || Failure::db("reading the latest runs");
    let statement = client
        .prepare_cached(
            "SELECT c.name, g.name, r.planned_at_ms, r.state, r.duration FROM store_pairs p \
             JOIN store_results r ON r.check_id = p.check_id AND r.region_id = p.region_id \
             AND r.planned_at_ms = p.last_planned_ms \
             JOIN store_checks c ON c.id = p.check_id JOIN store_regions g ON g.id = p.region_id",
        )
        .await
        .map_err(failed())?;
    let rows = client.query(&statement, &[]).await.map_err(failed())?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let state: i64 = row.try_get(3).map_err(failed())?;
        out.push(LatestRun {
            check: row.try_get(0).map_err(failed())?,
            region: row.try_get(1).map_err(failed())?,
            planned_at_ms: row.try_get(2).map_err(failed())?,
            state: u8::try_from(state.clamp(0, 2)).unwrap_or(2),
            seconds: row.try_get(4).map_err(failed())?,
        });
    }
    Ok(out)
}

/// Raw results, newest first (ties by check, then region).
pub(crate) async fn results(shared: &Shared, query: &ResultQuery) -> Result<Vec<RunResult>, Failure> {
    let client = shared.client().await?;
    let Some(filter) = filter(shared, &client, query.check.as_deref(), query.region.as_deref()).await? else {
        return Ok(Vec::new());
    };
    let mut values = vec![query.since_ms.unwrap_or(i64::MIN), query.until_ms.unwrap_or(i64::MAX)];
    let mut sql = String::from(
        "SELECT c.name, g.name, r.planned_at_ms, r.body, r.state, r.duration FROM store_results r \
         JOIN store_checks c ON c.id = r.check_id JOIN store_regions g ON g.id = r.region_id \
         WHERE r.planned_at_ms >= $1 AND r.planned_at_ms < $2",
    );
    sql.push_str(&pair_clauses(&filter, "r", &mut values));
    if query.only_failures {
        sql.push_str(" AND r.state = 2");
    }
    let limit = if query.limit == 0 { 100 } else { query.limit };
    let order = if query.oldest_first { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY r.planned_at_ms {order}, c.name, g.name LIMIT {limit}"));
    let failed = || Failure::db("reading results");
    let statement = client.prepare_cached(&sql).await.map_err(failed())?;
    let rows = client.query(&statement, &refs(&values)).await.map_err(failed())?;
    rows.iter().map(|row| result_of(row, "reading results")).collect()
}

/// A result from the columns `check name, region name, planned_at_ms, body, state, duration` (in that order).
fn result_of(row: &tokio_postgres::Row, what: &'static str) -> Result<RunResult, Failure> {
    let failed = || Failure::db(what);
    let check: String = row.try_get(0).map_err(failed())?;
    let region: String = row.try_get(1).map_err(failed())?;
    let planned_at_ms: i64 = row.try_get(2).map_err(failed())?;
    let body: Vec<u8> = row.try_get(3).map_err(failed())?;
    let (state, duration) = (row.try_get(4).map_err(failed())?, row.try_get(5).map_err(failed())?);
    Ok(decode_result(check, region, planned_at_ms, &body, state, duration)?)
}

/// Results stored at or after `from_ms` (the database clock when their batch was written), oldest first, at
/// most `limit`: with each, when it was stored.
pub(crate) async fn stored_since(
    shared: &Shared,
    from_ms: i64,
    limit: usize,
) -> Result<Vec<(i64, RunResult)>, Failure> {
    let client = shared.client().await?;
    let failed = || Failure::db("reading results by arrival");
    let limit = i64::try_from(limit.clamp(1, 100_000)).unwrap_or(100_000);
    let statement = client
        .prepare_cached(
            "SELECT c.name, g.name, r.planned_at_ms, r.body, r.state, r.duration, r.stored_at_ms FROM store_results r \
             JOIN store_checks c ON c.id = r.check_id JOIN store_regions g ON g.id = r.region_id \
             WHERE r.stored_at_ms >= $1 ORDER BY r.stored_at_ms, c.name, g.name, r.planned_at_ms LIMIT $2",
        )
        .await
        .map_err(failed())?;
    let rows = client.query(&statement, &[&from_ms, &limit]).await.map_err(failed())?;
    rows.iter()
        .map(|row| {
            let stored_at_ms: i64 = row.try_get(6).map_err(failed())?;
            Ok((stored_at_ms, result_of(row, "reading results by arrival")?))
        })
        .collect()
}

/// How long a result's place in stored order stays open: its row carries the database clock when it was
/// inserted, and its transaction commits within this (ingest rolls back a transaction that would not, see
/// `ingest::MAX_OPEN`), so results stored before now minus this can no longer be preceded by another.
pub(crate) const SETTLE_MS: i64 = 10_000;

/// Results after `after` in stored order (the database clock, then the run id), settled ones only.
pub(crate) async fn stored_after(shared: &Shared, after: Position, limit: usize) -> Result<StoredPage, Failure> {
    let client = shared.client().await?;
    let failed = || Failure::db("reading results in stored order");
    let limit = i64::try_from(limit.clamp(1, 100_000)).unwrap_or(100_000);
    let statement = client
        .prepare_cached(
            "SELECT c.name, g.name, r.planned_at_ms, r.body, r.state, r.duration, r.stored_at_ms, r.check_id, \
             r.region_id FROM store_results r \
             JOIN store_checks c ON c.id = r.check_id JOIN store_regions g ON g.id = r.region_id \
             WHERE r.stored_at_ms >= $1 AND (r.stored_at_ms, r.check_id, r.region_id, r.planned_at_ms) > ($1, $2, $3, $4) \
             AND r.stored_at_ms < CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) - $5 \
             ORDER BY r.stored_at_ms, r.check_id, r.region_id, r.planned_at_ms LIMIT $6",
        )
        .await
        .map_err(failed())?;
    let [at, check, region, planned] = after.0;
    let rows =
        client.query(&statement, &[&at, &check, &region, &planned, &SETTLE_MS, &limit]).await.map_err(failed())?;
    let mut page = StoredPage { results: Vec::with_capacity(rows.len()), next: after };
    for row in &rows {
        page.results.push(result_of(row, "reading results in stored order")?);
        page.next = Position([
            row.try_get(6).map_err(failed())?,
            row.try_get(7).map_err(failed())?,
            row.try_get(8).map_err(failed())?,
            row.try_get(2).map_err(failed())?,
        ]);
    }
    Ok(page)
}

/// The position after every settled result: the database clock minus [`SETTLE_MS`].
pub(crate) async fn stored_end(shared: &Shared) -> Result<Position, Failure> {
    let client = shared.client().await?;
    let row = client
        .query_one("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) - $1", &[&SETTLE_MS])
        .await
        .map_err(Failure::db("reading the database clock"))?;
    let settled: i64 = row.try_get(0).map_err(Failure::db("reading the database clock"))?;
    Ok(Position([settled - 1, i64::MAX, i64::MAX, i64::MAX]))
}

/// A reader's saved position.
pub(crate) async fn cursor(shared: &Shared, name: &str) -> Result<Option<Position>, Failure> {
    let client = shared.client().await?;
    let failed = || Failure::db("reading a cursor");
    let row = client
        .query_opt(
            "SELECT stored_at_ms, check_id, region_id, planned_at_ms FROM store_cursors WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(failed())?;
    row.map(|row| {
        Ok(Position([
            row.try_get(0).map_err(failed())?,
            row.try_get(1).map_err(failed())?,
            row.try_get(2).map_err(failed())?,
            row.try_get(3).map_err(failed())?,
        ]))
    })
    .transpose()
}

/// Saves a reader's position.
pub(crate) async fn save_cursor(shared: &Shared, name: &str, at: Position) -> Result<(), Failure> {
    let client = shared.client().await?;
    let [a, b, c, d] = at.0;
    client
        .execute(
            "INSERT INTO store_cursors (name, stored_at_ms, check_id, region_id, planned_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET stored_at_ms = excluded.stored_at_ms, \
             check_id = excluded.check_id, region_id = excluded.region_id, planned_at_ms = excluded.planned_at_ms",
            &[&name, &a, &b, &c, &d],
        )
        .await
        .map_err(Failure::db("saving a cursor"))?;
    Ok(())
}

/// Every (check, region) pair with results, by check then region.
pub(crate) async fn pairs(shared: &Shared) -> Result<Vec<Pair>, Failure> {
    let client = shared.client().await?;
    let failed = || Failure::db("reading pairs");
    let statement = client
        .prepare_cached(
            "SELECT c.name, g.name, p.last_planned_ms FROM store_pairs p JOIN store_checks c ON c.id = p.check_id \
             JOIN store_regions g ON g.id = p.region_id WHERE p.last_planned_ms > $1 ORDER BY c.name, g.name",
        )
        .await
        .map_err(failed())?;
    client
        .query(&statement, &[&i64::MIN])
        .await
        .map_err(failed())?
        .iter()
        .map(|row| Ok(Pair { check: row.try_get(0)?, region: row.try_get(1)?, last_planned_ms: row.try_get(2)? }))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(failed())
}

/// Uptime per pair over `[from_ms, to_ms)`, summed in SQL over the window's plan.
pub(crate) async fn uptime(shared: &Shared, query: &UptimeQuery) -> Result<Vec<Uptime>, Failure> {
    let mut client = shared.client().await?;
    let Some(filter) = filter(shared, &client, query.check.as_deref(), query.region.as_deref()).await? else {
        return Ok(Vec::new());
    };
    let (tx, snapshot) = snapshot(&mut client).await?;
    let (from, to) = (query.from_ms, query.to_ms.max(query.from_ms));
    if from == to {
        return Ok(Vec::new());
    }
    let mut values = Vec::new();
    let mut parts = Vec::new();
    for term in merge_terms(window_plan(&snapshot, from, to, true)) {
        let sign = term.sign;
        let (a, b) = (param(&mut values, term.from_ms), param(&mut values, term.to_ms));
        parts.push(match term.source {
            Source::Raw => format!(
                "SELECT r.check_id, r.region_id, {sign}::bigint AS runs, \
                 {sign} * (CASE WHEN r.state = 0 THEN 1 ELSE 0 END)::bigint AS up, \
                 {sign} * (CASE WHEN r.state = 1 THEN 1 ELSE 0 END)::bigint AS degraded, \
                 {sign} * (CASE WHEN r.state = 2 THEN 1 ELSE 0 END)::bigint AS down \
                 FROM store_results r WHERE r.planned_at_ms >= {a} AND r.planned_at_ms < {b}{}",
                pair_clauses(&filter, "r", &mut values)
            ),
            Source::Rollup(level) => format!(
                "SELECT x.check_id, x.region_id, {sign} * x.runs AS runs, {sign} * x.up AS up, \
                 {sign} * x.degraded AS degraded, {sign} * x.down AS down FROM store_pairs p JOIN store_{} x ON x.check_id = p.check_id \
                 AND x.region_id = p.region_id AND x.start_ms >= {a} AND x.start_ms < {b} WHERE TRUE{}",
                level.table(),
                pair_clauses(&filter, "p", &mut values)
            ),
        });
    }
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT c.name, g.name, t.runs, t.up, t.degraded, t.down FROM (SELECT check_id, region_id, \
         sum(runs)::bigint AS runs, sum(up)::bigint AS up, sum(degraded)::bigint AS degraded, \
         sum(down)::bigint AS down FROM ({}) u GROUP BY check_id, region_id) t \
         JOIN store_checks c ON c.id = t.check_id JOIN store_regions g ON g.id = t.region_id \
         WHERE t.runs > 0 ORDER BY c.name, g.name",
        parts.join(" UNION ALL ")
    );
    let failed = || Failure::db("computing uptime");
    let rows = tx.query(sql.as_str(), &refs(&values)).await.map_err(failed())?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (runs, up, degraded, down): (i64, i64, i64, i64) = (
            row.try_get(2).map_err(failed())?,
            row.try_get(3).map_err(failed())?,
            row.try_get(4).map_err(failed())?,
            row.try_get(5).map_err(failed())?,
        );
        out.push(Uptime {
            check: row.try_get(0).map_err(failed())?,
            region: row.try_get(1).map_err(failed())?,
            runs,
            up,
            degraded,
            down,
            ratio: Some((up + degraded) as f64 / runs as f64),
        });
    }
    Ok(out)
}

/// The rows of some terms, one statement: per row its sign, region id, time and aggregate.
async fn scan(
    tx: &Transaction<'_>,
    terms: Vec<Term>,
    filter: &Filter,
    mut each: impl FnMut(i64, i64, i64, Agg),
) -> Result<(), Failure> {
    let mut values = Vec::new();
    let mut parts = Vec::new();
    for term in merge_terms(terms) {
        let sign = term.sign;
        let (a, b) = (param(&mut values, term.from_ms), param(&mut values, term.to_ms));
        parts.push(match term.source {
            Source::Raw => format!(
                "SELECT {sign}::bigint AS sign, r.region_id, r.planned_at_ms AS at, NULL::bigint AS runs, \
                 NULL::bigint AS up, NULL::bigint AS degraded, NULL::bigint AS down, r.duration AS seconds, \
                 NULL::bytea AS hist, NULL::bytea AS phases, r.state, r.body FROM store_results r \
                 WHERE r.planned_at_ms >= {a} AND r.planned_at_ms < {b}{}",
                pair_clauses(filter, "r", &mut values)
            ),
            Source::Rollup(level) => format!(
                "SELECT {sign}::bigint, x.region_id, x.start_ms, x.runs, x.up, x.degraded, x.down, x.seconds, \
                 x.hist, x.phases, NULL::bigint, NULL::bytea FROM store_pairs p JOIN store_{} x \
                 ON x.check_id = p.check_id AND x.region_id = p.region_id AND x.start_ms >= {a} AND x.start_ms < {b} \
                 WHERE TRUE{}",
                level.table(),
                pair_clauses(filter, "p", &mut values)
            ),
        });
    }
    if parts.is_empty() {
        return Ok(());
    }
    let failed = || Failure::db("reading rollups");
    let rows = tx.query(parts.join(" UNION ALL ").as_str(), &refs(&values)).await.map_err(failed())?;
    for row in rows {
        let sign: i64 = row.try_get(0).map_err(failed())?;
        let region: i64 = row.try_get(1).map_err(failed())?;
        let at: i64 = row.try_get(2).map_err(failed())?;
        let seconds: f64 = row.try_get(7).map_err(failed())?;
        let agg = match row.try_get::<_, Option<i64>>(10).map_err(failed())? {
            Some(state) => {
                let body: Vec<u8> = row.try_get(11).map_err(failed())?;
                let phases = decode_body(&body, at, state, seconds).map(|body| body.outcome.phases).unwrap_or_default();
                let mut agg = Agg::default();
                agg.record(state, seconds, phases.iter().map(|phase| (phase.name.as_str(), phase.seconds)));
                agg
            }
            None => {
                let hist: Vec<u8> = row.try_get(8).map_err(failed())?;
                let phases: Vec<u8> = row.try_get(9).map_err(failed())?;
                Agg {
                    runs: row.try_get(3).map_err(failed())?,
                    up: row.try_get(4).map_err(failed())?,
                    degraded: row.try_get(5).map_err(failed())?,
                    down: row.try_get(6).map_err(failed())?,
                    seconds,
                    hist: Histogram::decode(&hist).unwrap_or_default(),
                    phases: decode_phases(&phases).unwrap_or_default(),
                }
            }
        };
        each(sign, region, at, agg);
    }
    Ok(())
}

/// Per-bucket aggregates of `[from_ms, to_ms)` cut in `bucket_ms` steps, keyed by (bucket index, region id
/// when `per_region`).
async fn series(
    tx: &Transaction<'_>,
    snapshot: &Snapshot,
    filter: &Filter,
    (from_ms, to_ms, bucket_ms): (i64, i64, i64),
    per_region: bool,
) -> Result<BTreeMap<(i64, i64), Agg>, Failure> {
    let buckets = Buckets { from_ms, to_ms, bucket_ms: bucket_ms.max(1), per_region };
    let terms = buckets.terms(|start, end| window_plan(snapshot, start, end, false));
    let mut out: BTreeMap<(i64, i64), Agg> = BTreeMap::new();
    scan(tx, terms, filter, |sign, region, at, agg| buckets.add(&mut out, sign, region, at, &agg)).await?;
    Ok(out)
}

/// Uptime per bucket of `bucket_ms` over `[from_ms, to_ms)` for a check (one region or all together); buckets
/// without runs are included with zero runs.
pub(crate) async fn uptime_buckets(
    shared: &Shared,
    check: &str,
    region: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<Bucket>, Failure> {
    let bucket_ms = bucket_ms.max(1);
    let mut client = shared.client().await?;
    let series = match filter(shared, &client, Some(check), region).await? {
        Some(filter) => {
            let (tx, snapshot) = snapshot(&mut client).await?;
            series(&tx, &snapshot, &filter, (from_ms, to_ms, bucket_ms), false).await?
        }
        None => BTreeMap::new(),
    };
    Ok(crate::store::rollup::buckets(&series, from_ms, to_ms, bucket_ms))
}

/// Latency per region of a check over `[from_ms, to_ms)`.
pub(crate) async fn latency(
    shared: &Shared,
    check: &str,
    region: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Latency>, Failure> {
    let mut client = shared.client().await?;
    let Some(filter) = filter(shared, &client, Some(check), region).await? else { return Ok(Vec::new()) };
    let series = {
        let (tx, snapshot) = snapshot(&mut client).await?;
        series(&tx, &snapshot, &filter, (from_ms, to_ms, (to_ms - from_ms).max(1)), true).await?
    };
    let mut out = Vec::new();
    for ((_, region_id), agg) in series {
        if agg.runs <= 0 {
            continue;
        }
        out.extend(agg.latency(region_name(shared, &client, region_id).await?));
    }
    Ok(out)
}

/// Latency per step of `step_ms` over `[from_ms, to_ms)` for a check; steps without runs are left out.
pub(crate) async fn latency_series(
    shared: &Shared,
    check: &str,
    region: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
) -> Result<Vec<LatencyPoint>, Failure> {
    let step_ms = step_ms.max(1);
    let mut client = shared.client().await?;
    let Some(filter) = filter(shared, &client, Some(check), region).await? else { return Ok(Vec::new()) };
    let (tx, snapshot) = snapshot(&mut client).await?;
    let series = series(&tx, &snapshot, &filter, (from_ms, to_ms, step_ms), false).await?;
    Ok(crate::store::rollup::points(series, from_ms, step_ms))
}

/// Every pair's hours starting in `[from_ms, to_ms)` that had runs, with their median duration.
pub(crate) async fn hourly_latency(shared: &Shared, from_ms: i64, to_ms: i64) -> Result<Vec<HourLatency>, Failure> {
    let client = shared.client().await?;
    let failed = || Failure::db("reading hourly latency");
    let statement = client
        .prepare_cached(
            // Pair by pair through the primary key (check, region, start), never a scan of every hour kept.
            "SELECT c.name, g.name, h.start_ms, h.runs, h.hist FROM store_pairs p \
             JOIN store_rollup_hour h ON h.check_id = p.check_id AND h.region_id = p.region_id \
             AND h.start_ms >= $1 AND h.start_ms < $2 AND h.runs > 0 \
             JOIN store_checks c ON c.id = p.check_id JOIN store_regions g ON g.id = p.region_id",
        )
        .await
        .map_err(failed())?;
    let rows = client.query(&statement, &[&from_ms, &to_ms]).await.map_err(failed())?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let hist: Vec<u8> = row.try_get(4).map_err(failed())?;
        out.push(HourLatency {
            check: row.try_get(0).map_err(failed())?,
            region: row.try_get(1).map_err(failed())?,
            start_ms: row.try_get(2).map_err(failed())?,
            runs: row.try_get(3).map_err(failed())?,
            p50: Histogram::decode(&hist).and_then(|hist| hist.quantile(0.5)),
        });
    }
    Ok(out)
}

/// Incidents overlapping `[from_ms, to_ms)`, newest first.
pub(crate) async fn incidents(
    shared: &Shared,
    check: Option<&str>,
    region: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Incident>, Failure> {
    let client = shared.client().await?;
    let Some(filter) = filter(shared, &client, check, region).await? else { return Ok(Vec::new()) };
    let mut values = vec![from_ms, to_ms];
    let mut sql = String::from(
        "SELECT c.name, g.name, i.start_ms, i.end_ms, i.runs, i.reason, i.error FROM store_incidents i \
         JOIN store_checks c ON c.id = i.check_id JOIN store_regions g ON g.id = i.region_id \
         WHERE i.start_ms < $2 AND (i.end_ms IS NULL OR i.end_ms > $1)",
    );
    sql.push_str(&pair_clauses(&filter, "i", &mut values));
    sql.push_str(" ORDER BY i.start_ms DESC, c.name, g.name");
    let failed = || Failure::db("reading incidents");
    let statement = client.prepare_cached(&sql).await.map_err(failed())?;
    client
        .query(&statement, &refs(&values))
        .await
        .map_err(failed())?
        .iter()
        .map(|row| {
            Ok(Incident {
                check: row.try_get(0)?,
                region: row.try_get(1)?,
                start_ms: row.try_get(2)?,
                end_ms: row.try_get(3)?,
                runs: row.try_get(4)?,
                reason: row.try_get(5)?,
                error: row.try_get(6)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(failed())
}

/// A stored artifact's bytes.
pub(crate) async fn artifact(shared: &Shared, path: &str) -> Result<Option<Vec<u8>>, Failure> {
    let client = shared.client().await?;
    let failed = || Failure::db(format!("reading the artifact {path}"));
    let statement = client.prepare_cached("SELECT data FROM store_artifacts WHERE path = $1").await.map_err(failed())?;
    match client.query_opt(&statement, &[&path]).await.map_err(failed())? {
        Some(row) => Ok(Some(row.try_get(0).map_err(failed())?)),
        None => Ok(None),
    }
}
