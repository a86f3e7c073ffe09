//! Incidents: maximal spans of consecutive failed runs of one (check, region) pair, kept as rows updated at
//! ingest (in order: extend or close the open one; out of order: rebuild the pair's tail from raw results).

use rusqlite::{Connection, OptionalExtension, params};

use super::codec::decode_body;

/// A pair's open incident, as the writer remembers it between batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// Its row id.
    pub id: i64,
    /// Failed runs so far.
    pub runs: i64,
    /// The last failed run's `planned_at_ms`.
    pub last_ms: i64,
}

/// One run as incidents see it.
#[derive(Debug, Clone)]
pub struct Run {
    /// `planned_at_ms`.
    pub planned_at_ms: i64,
    /// Whether it failed.
    pub failed: bool,
    /// The failure reason label.
    pub reason: Option<String>,
    /// The failure message.
    pub error: Option<String>,
}

/// Applies runs newer than every stored run of the pair, oldest first; returns the open incident after them.
pub fn apply(
    conn: &Connection,
    check: i64,
    region: i64,
    mut open: Option<Open>,
    runs: &[Run],
) -> rusqlite::Result<Option<Open>> {
    let mut dirty = false;
    for run in runs {
        match (&mut open, run.failed) {
            (Some(incident), true) => {
                incident.runs += 1;
                incident.last_ms = run.planned_at_ms;
                dirty = true;
            }
            (None, true) => {
                conn.prepare_cached(
                    "INSERT INTO incidents (check_id, region_id, start_ms, end_ms, last_ms, runs, reason, error) \
                     VALUES (?1, ?2, ?3, NULL, ?3, 1, ?4, ?5)",
                )?
                .execute(params![check, region, run.planned_at_ms, run.reason, run.error])?;
                open = Some(Open { id: conn.last_insert_rowid(), runs: 1, last_ms: run.planned_at_ms });
                dirty = false;
            }
            (Some(incident), false) => {
                conn.prepare_cached("UPDATE incidents SET end_ms = ?2, runs = ?3, last_ms = ?4 WHERE id = ?1")?
                    .execute(params![incident.id, run.planned_at_ms, incident.runs, incident.last_ms])?;
                open = None;
                dirty = false;
            }
            (None, false) => {}
        }
    }
    if let (Some(incident), true) = (&open, dirty) {
        conn.prepare_cached("UPDATE incidents SET runs = ?2, last_ms = ?3 WHERE id = ?1")?.execute(params![
            incident.id,
            incident.runs,
            incident.last_ms
        ])?;
    }
    Ok(open)
}

/// Rebuilds the pair's incidents from raw results, from the earliest incident still open or ending at or after
/// `from_ms` (or `from_ms` itself) on; returns the open incident.
pub fn rebuild(conn: &Connection, check: i64, region: i64, from_ms: i64) -> rusqlite::Result<Option<Open>> {
    let earliest: Option<i64> = conn
        .prepare_cached(
            "SELECT min(start_ms) FROM incidents WHERE check_id = ?1 AND region_id = ?2 \
             AND (end_ms IS NULL OR end_ms >= ?3)",
        )?
        .query_row(params![check, region, from_ms], |row| row.get(0))
        .optional()?
        .flatten();
    let from = earliest.map_or(from_ms, |start| start.min(from_ms));
    conn.prepare_cached(
        "DELETE FROM incidents WHERE check_id = ?1 AND region_id = ?2 AND (end_ms IS NULL OR end_ms >= ?3)",
    )?
    .execute(params![check, region, from])?;
    let mut statement = conn.prepare_cached(
        "SELECT planned_at_ms, state, body, duration FROM results WHERE check_id = ?1 AND region_id = ?2 \
         AND planned_at_ms >= ?3 ORDER BY planned_at_ms",
    )?;
    let mut rows = statement.query(params![check, region, from])?;
    let mut runs = Vec::new();
    let mut in_incident = false;
    while let Some(row) = rows.next()? {
        let planned_at_ms: i64 = row.get(0)?;
        let failed = row.get::<_, i64>(1)? == 2;
        let (reason, error) = if failed && !in_incident {
            let body: Vec<u8> = row.get(2)?;
            match decode_body(&body, planned_at_ms, 2, row.get(3)?) {
                Ok(body) => (body.outcome.reason.map(|reason| reason.as_str().to_owned()), body.outcome.error),
                Err(_) => (None, None),
            }
        } else {
            (None, None)
        };
        in_incident = failed;
        runs.push(Run { planned_at_ms, failed, reason, error });
    }
    drop(rows);
    drop(statement);
    apply(conn, check, region, None, &runs)
}

/// The pair's open incident, read from the table (at open time).
pub fn open_of(conn: &Connection, check: i64, region: i64) -> rusqlite::Result<Option<Open>> {
    conn.prepare_cached(
        "SELECT id, runs, last_ms FROM incidents WHERE check_id = ?1 AND region_id = ?2 AND end_ms IS NULL \
         ORDER BY start_ms DESC LIMIT 1",
    )?
    .query_row(params![check, region], |row| Ok(Open { id: row.get(0)?, runs: row.get(1)?, last_ms: row.get(2)? }))
    .optional()
}
