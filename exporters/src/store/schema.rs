//! Versioned migrations: `PRAGMA user_version` is the schema version; each step runs in its own transaction.
//! Old steps stay in [`MIGRATIONS`] as they were, so a database of any earlier version upgrades step by step
//! (and tests can build a database at any version).

use rusqlite::{Connection, Transaction};

use super::StoreError;
use super::incidents;
use super::rollup::{self, Level};

/// One schema step.
#[derive(Debug)]
pub struct Migration {
    /// The version the database has after this step.
    pub version: i64,
    /// What the step does.
    pub description: &'static str,
    /// DDL run first.
    pub sql: &'static str,
    /// Data work after the DDL (backfills), in the same transaction.
    pub backfill: Option<fn(&Transaction<'_>) -> rusqlite::Result<()>>,
}

/// Every step, oldest first. Never edit a released step: add a new one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "names, raw results, per-minute rollups",
        sql: "
            CREATE TABLE checks (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
            CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
            CREATE TABLE results (
                id INTEGER PRIMARY KEY,
                check_id INTEGER NOT NULL,
                region_id INTEGER NOT NULL,
                planned_at_ms INTEGER NOT NULL,
                state INTEGER NOT NULL,
                duration REAL NOT NULL,
                body BLOB NOT NULL,
                UNIQUE (check_id, region_id, planned_at_ms)
            );
            CREATE TABLE rollup_minute (
                check_id INTEGER NOT NULL,
                region_id INTEGER NOT NULL,
                start_ms INTEGER NOT NULL,
                runs INTEGER NOT NULL,
                up INTEGER NOT NULL,
                degraded INTEGER NOT NULL,
                down INTEGER NOT NULL,
                seconds REAL NOT NULL,
                hist BLOB NOT NULL,
                phases BLOB NOT NULL,
                PRIMARY KEY (check_id, region_id, start_ms)
            ) WITHOUT ROWID;
        ",
        backfill: None,
    },
    Migration {
        version: 2,
        description: "per-hour rollups (from the minute rows), artifact files",
        sql: "
            CREATE TABLE rollup_hour (
                check_id INTEGER NOT NULL,
                region_id INTEGER NOT NULL,
                start_ms INTEGER NOT NULL,
                runs INTEGER NOT NULL,
                up INTEGER NOT NULL,
                degraded INTEGER NOT NULL,
                down INTEGER NOT NULL,
                seconds REAL NOT NULL,
                hist BLOB NOT NULL,
                phases BLOB NOT NULL,
                PRIMARY KEY (check_id, region_id, start_ms)
            ) WITHOUT ROWID;
            CREATE TABLE artifacts (
                path TEXT PRIMARY KEY,
                check_id INTEGER NOT NULL,
                region_id INTEGER NOT NULL,
                planned_at_ms INTEGER NOT NULL
            ) WITHOUT ROWID;
        ",
        backfill: Some(backfill_hours),
    },
    Migration {
        version: 3,
        description: "per-day rollups, known pairs, incidents, an index of failures, settings",
        sql: "
            CREATE TABLE rollup_day (
                check_id INTEGER NOT NULL,
                region_id INTEGER NOT NULL,
                start_ms INTEGER NOT NULL,
                runs INTEGER NOT NULL,
                up INTEGER NOT NULL,
                degraded INTEGER NOT NULL,
                down INTEGER NOT NULL,
                seconds REAL NOT NULL,
                hist BLOB NOT NULL,
                phases BLOB NOT NULL,
                PRIMARY KEY (check_id, region_id, start_ms)
            ) WITHOUT ROWID;
            CREATE TABLE pairs (
                check_id INTEGER NOT NULL,
                region_id INTEGER NOT NULL,
                last_planned_ms INTEGER NOT NULL,
                PRIMARY KEY (check_id, region_id)
            ) WITHOUT ROWID;
            CREATE TABLE incidents (
                id INTEGER PRIMARY KEY,
                check_id INTEGER NOT NULL,
                region_id INTEGER NOT NULL,
                start_ms INTEGER NOT NULL,
                end_ms INTEGER,
                last_ms INTEGER NOT NULL,
                runs INTEGER NOT NULL,
                reason TEXT,
                error TEXT
            );
            CREATE INDEX incidents_by_pair ON incidents (check_id, region_id, start_ms);
            CREATE INDEX incidents_by_start ON incidents (start_ms);
            CREATE INDEX results_failures ON results (planned_at_ms) WHERE state = 2;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
            INSERT INTO pairs (check_id, region_id, last_planned_ms)
                SELECT check_id, region_id, max(last) FROM (
                    SELECT check_id, region_id, max(planned_at_ms) AS last FROM results GROUP BY 1, 2
                    UNION ALL
                    SELECT check_id, region_id, max(start_ms) AS last FROM rollup_minute GROUP BY 1, 2
                ) GROUP BY 1, 2;
        ",
        backfill: Some(backfill_days_and_incidents),
    },
    Migration {
        version: 4,
        description: "compact result bodies and phase sums (older rows stay readable as they are), running counts \
                      in rollup rows and pairs",
        sql: "
            ALTER TABLE rollup_minute ADD COLUMN day_runs INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_minute ADD COLUMN day_up INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_minute ADD COLUMN day_degraded INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_minute ADD COLUMN day_down INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_hour ADD COLUMN day_runs INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_hour ADD COLUMN day_up INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_hour ADD COLUMN day_degraded INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_hour ADD COLUMN day_down INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_day ADD COLUMN before_runs INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_day ADD COLUMN before_up INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_day ADD COLUMN before_degraded INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE rollup_day ADD COLUMN before_down INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE pairs ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE pairs ADD COLUMN up INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE pairs ADD COLUMN degraded INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE pairs ADD COLUMN down INTEGER NOT NULL DEFAULT 0;
            UPDATE rollup_minute AS r SET day_runs = c.a, day_up = c.b, day_degraded = c.c, day_down = c.d FROM (
                SELECT check_id, region_id, start_ms, sum(runs) OVER w AS a, sum(up) OVER w AS b,
                    sum(degraded) OVER w AS c, sum(down) OVER w AS d FROM rollup_minute
                WINDOW w AS (PARTITION BY check_id, region_id, start_ms / 86400000 ORDER BY start_ms)
            ) AS c WHERE r.check_id = c.check_id AND r.region_id = c.region_id AND r.start_ms = c.start_ms;
            UPDATE rollup_hour AS r SET day_runs = c.a, day_up = c.b, day_degraded = c.c, day_down = c.d FROM (
                SELECT check_id, region_id, start_ms, sum(runs) OVER w AS a, sum(up) OVER w AS b,
                    sum(degraded) OVER w AS c, sum(down) OVER w AS d FROM rollup_hour
                WINDOW w AS (PARTITION BY check_id, region_id, start_ms / 86400000 ORDER BY start_ms)
            ) AS c WHERE r.check_id = c.check_id AND r.region_id = c.region_id AND r.start_ms = c.start_ms;
            UPDATE rollup_day AS r SET before_runs = c.a - r.runs, before_up = c.b - r.up,
                before_degraded = c.c - r.degraded, before_down = c.d - r.down FROM (
                SELECT check_id, region_id, start_ms, sum(runs) OVER w AS a, sum(up) OVER w AS b,
                    sum(degraded) OVER w AS c, sum(down) OVER w AS d FROM rollup_day
                WINDOW w AS (PARTITION BY check_id, region_id ORDER BY start_ms)
            ) AS c WHERE r.check_id = c.check_id AND r.region_id = c.region_id AND r.start_ms = c.start_ms;
            UPDATE pairs AS p SET runs = c.a, up = c.b, degraded = c.c, down = c.d FROM (
                SELECT check_id, region_id, sum(runs) AS a, sum(up) AS b, sum(degraded) AS c, sum(down) AS d
                FROM rollup_day GROUP BY check_id, region_id
            ) AS c WHERE p.check_id = c.check_id AND p.region_id = c.region_id;
        ",
        backfill: None,
    },
    Migration {
        version: 5,
        description: "ledger hours and days: the uptime ledger's milliseconds per check, region and hour",
        sql: "
            CREATE TABLE ledger_hour (
                start_ms INTEGER NOT NULL,
                check_name TEXT NOT NULL,
                region TEXT NOT NULL,
                policy INTEGER NOT NULL,
                up_ms INTEGER NOT NULL,
                down_ms INTEGER NOT NULL,
                unknown_ms INTEGER NOT NULL,
                maintenance_ms INTEGER NOT NULL,
                muted_up_ms INTEGER NOT NULL,
                muted_down_ms INTEGER NOT NULL,
                PRIMARY KEY (start_ms, check_name, region)
            ) WITHOUT ROWID;
            CREATE INDEX ledger_hour_by_check ON ledger_hour (check_name, start_ms);
            CREATE TABLE ledger_day (
                start_ms INTEGER NOT NULL,
                check_name TEXT NOT NULL,
                region TEXT NOT NULL,
                policy INTEGER NOT NULL,
                up_ms INTEGER NOT NULL,
                down_ms INTEGER NOT NULL,
                unknown_ms INTEGER NOT NULL,
                maintenance_ms INTEGER NOT NULL,
                muted_up_ms INTEGER NOT NULL,
                muted_down_ms INTEGER NOT NULL,
                PRIMARY KEY (start_ms, check_name, region)
            ) WITHOUT ROWID;
            CREATE INDEX ledger_day_by_check ON ledger_day (check_name, start_ms);
        ",
        backfill: None,
    },
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = 5;

fn backfill_hours(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    rollup::backfill(tx, Level::Minute, Level::Hour)
}

fn backfill_days_and_incidents(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    rollup::backfill(tx, Level::Hour, Level::Day)?;
    let pairs: Vec<(i64, i64)> = tx
        .prepare("SELECT check_id, region_id FROM pairs")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (check, region) in pairs {
        incidents::rebuild(tx, check, region, i64::MIN)?;
    }
    Ok(())
}

/// The database's schema version.
pub fn version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(StoreError::sqlite("reading the schema version"))
}

/// Brings the database to `target` (at most [`CURRENT_VERSION`]) one step at a time, each step in a
/// transaction that also sets `user_version`; returns the version found. A database newer than this build
/// is an error, never downgraded.
pub fn migrate(conn: &mut Connection, target: i64) -> Result<i64, StoreError> {
    let found = version(conn)?;
    if found > CURRENT_VERSION {
        return Err(StoreError::NewerSchema { found, known: CURRENT_VERSION });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found && m.version <= target) {
        let failed = |source| StoreError::Migration { version: migration.version, source };
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(failed)?;
        tx.execute_batch(migration.sql).map_err(failed)?;
        if let Some(backfill) = migration.backfill {
            backfill(&tx).map_err(failed)?;
        }
        tx.pragma_update(None, "user_version", migration.version).map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
    Ok(found)
}
