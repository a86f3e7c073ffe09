//! Filling a database at an earlier schema version the way that version's ingest did: raw rows, minute
//! rollups (version 1 on), hour rollups and artifact rows (version 2 on).

use std::collections::HashMap;

use probenet_checks::outcome::State;
use probenet_checks::wire::RunResult;
use probenet_exporters::store::codec::encode_body;
use probenet_exporters::store::rollup::{Agg, Level, write_row};
use rusqlite::{Connection, params};

fn name_id(conn: &Connection, table: &str, name: &str) -> i64 {
    conn.execute(&format!("INSERT OR IGNORE INTO {table} (name) VALUES (?1)"), [name]).unwrap();
    conn.query_row(&format!("SELECT id FROM {table} WHERE name = ?1"), [name], |row| row.get(0)).unwrap()
}

/// Writes `results` into a database at `version` (1 or 2).
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
        let body = encode_body(result.started_at_ms, &result.prober, &result.outcome).unwrap();
        tx.execute(
            "INSERT INTO results (check_id, region_id, planned_at_ms, state, duration, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![check, region, result.planned_at_ms, state, result.outcome.duration_seconds, body],
        )
        .unwrap();
        let levels: &[Level] = if version >= 2 { &[Level::Minute, Level::Hour] } else { &[Level::Minute] };
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
        write_row(&tx, level, check, region, start, &agg).unwrap();
    }
    tx.commit().unwrap();
}
