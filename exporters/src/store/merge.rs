//! Merging a batch's aggregates into the rollup rows while keeping their running counts right: the writer's
//! cache of each pair's latest row makes the usual (in-order) case write without reading; late results shift
//! the running counts of the rows after them.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::rollup::{
    Agg, Counts, DAY_MS, Level, add_counts, counts, prefix_columns, read_row, row_agg, row_counts, write_row,
};

/// A pair's latest row of a level, as the writer keeps it.
#[derive(Debug, Clone)]
pub struct Latest {
    /// Its bucket start.
    pub start: i64,
    /// Its aggregate.
    pub agg: Agg,
    /// Its running counts.
    pub prefix: Counts,
}

/// The latest rollup row of each (level, check, region), exactly as stored: ingest merges into it without
/// reading it back, and derives the running counts of the next row from it.
pub type RowCache = HashMap<(Level, i64, i64), Option<Latest>>;

fn read_latest(conn: &Connection, level: Level, check: i64, region: i64) -> rusqlite::Result<Option<Latest>> {
    let sql = format!(
        "SELECT runs, up, degraded, down, seconds, hist, phases, {}, start_ms FROM {} \
         WHERE check_id = ?1 AND region_id = ?2 ORDER BY start_ms DESC LIMIT 1",
        prefix_columns(level),
        level.table()
    );
    conn.prepare_cached(&sql)?
        .query_row(params![check, region], |row| {
            Ok(Latest { agg: row_agg(row)?, prefix: row_counts(row, 7)?, start: row.get(11)? })
        })
        .optional()
}

/// The end (exclusive) of the span a level's running counts cover from `start` on.
fn scope_end(level: Level, start: i64) -> i64 {
    match level {
        Level::Day => i64::MAX,
        _ => Level::Day.start(start) + DAY_MS,
    }
}

/// Adds aggregates to the rows of a level, per (check, region, start), keeping the running counts right.
/// `cache` holds the latest rows as committed; `written` collects the latest rows after this transaction
/// (to go into the cache once it commits). `before_all(check, region)` gives the pair's counts of everything
/// stored before this batch (the day rows' running counts start there when the pair has no day row).
pub fn merge_rows(
    conn: &Connection,
    level: Level,
    rows: &HashMap<(i64, i64, i64), Agg>,
    cache: &RowCache,
    written: &mut RowCache,
    before_all: impl Fn(i64, i64) -> Counts,
) -> rusqlite::Result<()> {
    let mut keys: Vec<_> = rows.keys().copied().collect();
    keys.sort_unstable();
    for key @ (check, region, start) in keys {
        let Some(add) = rows.get(&key) else { continue };
        let slot = (level, check, region);
        let latest = match written.get(&slot).or_else(|| cache.get(&slot)) {
            Some(latest) => latest.clone(),
            None => read_latest(conn, level, check, region)?,
        };
        let delta = counts(add);
        let latest = match latest {
            Some(mut latest) if latest.start == start => {
                latest.agg.combine(add, 1);
                if level != Level::Day {
                    latest.prefix = add_counts(latest.prefix, delta);
                }
                write_row(conn, level, check, region, start, &latest.agg, latest.prefix)?;
                Some(latest)
            }
            Some(latest) if latest.start > start => {
                late_row(conn, level, (check, region, start), add, &latest)?;
                let mut latest = latest;
                if latest.start < scope_end(level, start) {
                    latest.prefix = add_counts(latest.prefix, delta);
                }
                Some(latest)
            }
            previous => {
                let prefix = match (level, &previous) {
                    (Level::Day, Some(previous)) => add_counts(previous.prefix, counts(&previous.agg)),
                    (Level::Day, None) => before_all(check, region),
                    (_, Some(previous)) if Level::Day.start(previous.start) == Level::Day.start(start) => {
                        add_counts(previous.prefix, delta)
                    }
                    _ => delta,
                };
                write_row(conn, level, check, region, start, add, prefix)?;
                Some(Latest { start, agg: add.clone(), prefix })
            }
        };
        written.insert(slot, latest);
    }
    Ok(())
}

/// Adds to a row older than the pair's latest: the row itself, then the running counts of the rows after it.
fn late_row(conn: &Connection, level: Level, key: (i64, i64, i64), add: &Agg, latest: &Latest) -> rusqlite::Result<()> {
    let (check, region, start) = key;
    let delta = counts(add);
    let end = scope_end(level, start);
    match read_row(conn, level, check, region, start)? {
        Some((mut agg, prefix)) => {
            agg.combine(add, 1);
            let prefix = if level == Level::Day { prefix } else { add_counts(prefix, delta) };
            write_row(conn, level, check, region, start, &agg, prefix)?;
        }
        None => {
            let prefix = if level == Level::Day {
                // Everything before this day: the next day row's running counts (not yet shifted).
                let sql = "SELECT before_runs, before_up, before_degraded, before_down FROM rollup_day \
                           WHERE check_id = ?1 AND region_id = ?2 AND start_ms > ?3 ORDER BY start_ms LIMIT 1";
                conn.prepare_cached(sql)?
                    .query_row(params![check, region, start], |row| row_counts(row, 0))
                    .optional()?
                    .unwrap_or(latest.prefix)
            } else {
                let sql = format!(
                    "SELECT {} FROM {} WHERE check_id = ?1 AND region_id = ?2 AND start_ms >= ?3 AND start_ms < ?4 \
                     ORDER BY start_ms DESC LIMIT 1",
                    prefix_columns(level),
                    level.table()
                );
                let before = conn
                    .prepare_cached(&sql)?
                    .query_row(params![check, region, Level::Day.start(start), start], |row| row_counts(row, 0))
                    .optional()?
                    .unwrap_or_default();
                add_counts(before, delta)
            };
            write_row(conn, level, check, region, start, add, prefix)?;
        }
    }
    let columns: Vec<&str> = prefix_columns(level).split(", ").collect();
    let sql = format!(
        "UPDATE {} SET {c0} = {c0} + ?4, {c1} = {c1} + ?5, {c2} = {c2} + ?6, {c3} = {c3} + ?7 \
         WHERE check_id = ?1 AND region_id = ?2 AND start_ms > ?3 AND start_ms < ?8",
        level.table(),
        c0 = columns[0],
        c1 = columns[1],
        c2 = columns[2],
        c3 = columns[3]
    );
    conn.prepare_cached(&sql)?.execute(params![check, region, start, delta[0], delta[1], delta[2], delta[3], end])?;
    Ok(())
}
