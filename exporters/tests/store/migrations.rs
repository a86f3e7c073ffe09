//! Filling a database at an earlier schema version the way that version's ingest did: raw rows, minute
//! rollups (version 1 on), hour rollups and artifact rows (version 2 on), with the legacy encodings (Snappy JSON
//! bodies, phase sums with inline names).

use std::collections::HashMap;

use probenet_checks::outcome::State;
use probenet_checks::wire::RunResult;
use probenet_exporters::store::codec::{encode_legacy_body, encode_legacy_phases};
use probenet_exporters::store::rollup::{Agg, Level};
use rusqlite::{Connection, params};

fn name_id(conn: &Connection, table: &str, name: &str) -> i64 {
    conn.execute(&format!("INSERT OR IGNORE INTO {table} (name) VALUES (?1)"), [name]).unwrap();
    conn.query_row(&format!("SELECT id FROM {table} WHERE name = ?1"), [name], |row| row.get(0)).unwrap()
}

/// Writes `results` into a database at `version` (1, 2 or 3; version 3 adds day rollups, pairs and incidents).
pub fn fill(conn: &mut Connection, version: i64, results: &[RunResult]) {
    let tx = conn.transaction().unwrap();
    let mut aggs: HashMap<(Level, i64, i64, i64), Agg> = HashMap::new();
    for result in results {
        let check = name_id(&tx, "checks", &result.check);
        let region = name_id(&tx, "regions", &result.region);
        let state = match result.outcome.state {
            State::Up => 0,
            State::Degraded => 1,
            State::Down => 2,
        };
        let body = encode_legacy_body(result.started_at_ms, &result.prober, &result.outcome).unwrap();
        tx.execute(
            "INSERT INTO results (check_id, region_id, planned_at_ms, state, duration, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![check, region, result.planned_at_ms, state, result.outcome.duration_seconds, body],
        )
        .unwrap();
        let levels: &[Level] = match version {
            1 => &[Level::Minute],
            2 => &[Level::Minute, Level::Hour],
            _ => &Level::ALL,
        };
        for level in levels {
            let phases = result.outcome.phases.iter().map(|phase| (phase.name.as_str(), phase.seconds));
            aggs.entry((*level, check, region, level.start(result.planned_at_ms))).or_default().record(
                state,
                result.outcome.duration_seconds,
                phases,
            );
        }
        if version >= 2 {
            tx.execute(
                "INSERT INTO artifacts (path, check_id, region_id, planned_at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![
                    format!("0/{check}-{region}-{}-0-x.png", result.planned_at_ms),
                    check,
                    region,
                    result.planned_at_ms
                ],
            )
            .unwrap();
        }
    }
    for ((level, check, region, start), agg) in aggs {
        // As versions 1 to 3 wrote them: legacy phase sums.
        tx.execute(
            &format!(
                "INSERT INTO {} (check_id, region_id, start_ms, runs, up, degraded, down, seconds, hist, phases) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                level.table()
            ),
            params![
                check,
                region,
                start,
                agg.runs,
                agg.up,
                agg.degraded,
                agg.down,
                agg.seconds,
                agg.hist.encode(),
                encode_legacy_phases(&agg.phases)
            ],
        )
        .unwrap();
    }
    if version >= 3 {
        fill_pairs_and_incidents(&tx, results);
    }
    tx.commit().unwrap();
}

/// Version 3's `pairs` and `incidents` rows: spans of consecutive failed runs per pair.
fn fill_pairs_and_incidents(tx: &Connection, results: &[RunResult]) {
    let mut by_pair: HashMap<(i64, i64), Vec<&RunResult>> = HashMap::new();
    for result in results {
        let check = name_id(tx, "checks", &result.check);
        let region = name_id(tx, "regions", &result.region);
        by_pair.entry((check, region)).or_default().push(result);
    }
    for ((check, region), mut runs) in by_pair {
        runs.sort_by_key(|run| run.planned_at_ms);
        let last = runs.last().unwrap().planned_at_ms;
        tx.execute(
            "INSERT INTO pairs (check_id, region_id, last_planned_ms) VALUES (?1, ?2, ?3)",
            params![check, region, last],
        )
        .unwrap();
        let mut open: Option<(&RunResult, i64, i64)> = None;
        let close = |first: &RunResult, count: i64, last_ms: i64, end: Option<i64>| {
            tx.execute(
                "INSERT INTO incidents (check_id, region_id, start_ms, end_ms, last_ms, runs, reason, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    check,
                    region,
                    first.planned_at_ms,
                    end,
                    last_ms,
                    count,
                    first.outcome.reason.map(|reason| reason.as_str()),
                    first.outcome.error
                ],
            )
            .unwrap();
        };
        for run in runs {
            let failed = run.outcome.state == State::Down;
            open = match (open, failed) {
                (Some((first, count, _)), true) => Some((first, count + 1, run.planned_at_ms)),
                (None, true) => Some((run, 1, run.planned_at_ms)),
                (Some((first, count, last_ms)), false) => {
                    close(first, count, last_ms, Some(run.planned_at_ms));
                    None
                }
                (None, false) => None,
            };
        }
        if let Some((first, count, last_ms)) = open {
            close(first, count, last_ms, None);
        }
    }
}
