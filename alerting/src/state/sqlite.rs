//! The state in SQLite (tables prefixed `alert_`, in a file it may share), for a single scheduler. Version 1 files
//! (before the outbox) open unchanged: version 2 only adds the `alert_outbox` table. No fence: one scheduler
//! owns the file.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AlertState, Batch, BucketKey, BucketRow, Claim, DELIVERED, FAILED, HISTORY_KEPT, HistoryEntry, PENDING, Pending,
    RESUME_LIMIT, SETTLED_KEPT, Settled, from_sql_id, to_sql_count, to_sql_id,
};
use crate::error::AlertError;
use crate::silence::Silence;
use crate::slo::{Counts, Resolution};

/// The schema this build writes.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alert_instances (key TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_silences (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_slo_buckets (
    check_name TEXT NOT NULL,
    resolution TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    total INTEGER NOT NULL,
    bad INTEGER NOT NULL,
    PRIMARY KEY (check_name, resolution, start_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    notifier TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_outbox_status ON alert_outbox (status, id);
";

/// The SQLite state.
#[derive(Debug)]
pub struct SqliteState {
    conn: Mutex<Connection>,
}

impl SqliteState {
    /// Opens (or creates, or upgrades from version 1) the state in `path`.
    pub fn open(path: &Path) -> Result<Self, AlertError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<i64> =
            conn.query_row("SELECT MAX(version) FROM alert_schema_version", [], |row| row.get(0)).optional()?.flatten();
        match version {
            Some(version) if version > SCHEMA_VERSION => return Err(AlertError::NewerSchema(version)),
            Some(SCHEMA_VERSION) => {}
            // New, or version 1: the tables above are all it takes.
            _ => {
                conn.execute("INSERT INTO alert_schema_version (version) VALUES (?1)", [SCHEMA_VERSION])?;
            }
        }
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AlertState for SqliteState {
    fn instances(&self) -> Result<Vec<String>, AlertError> {
        let conn = self.conn();
        let mut statement = conn.prepare("SELECT body FROM alert_instances ORDER BY key")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    fn commit(&self, batch: &Batch) -> Result<Vec<u64>, AlertError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut ids = Vec::with_capacity(batch.notify.len());
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO alert_instances (key, body) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET body = ?2",
            )?;
            for (key, body) in &batch.put {
                put.execute(params![key, body])?;
            }
            let mut delete = tx.prepare_cached("DELETE FROM alert_instances WHERE key = ?1")?;
            for key in &batch.delete {
                delete.execute([key])?;
            }
            let mut history = tx.prepare_cached("INSERT INTO alert_history (at_ms, key, body) VALUES (?1, ?2, ?3)")?;
            for entry in &batch.history {
                history.execute(params![entry.at_ms, entry.key, serde_json::to_string(entry)?])?;
            }
            let mut outbox = tx.prepare_cached(
                "INSERT INTO alert_outbox (created_ms, notifier, key, status, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (notifier, notification) in &batch.notify {
                let body = serde_json::to_string(notification)?;
                outbox.execute(params![batch.at_ms, notifier, notification.key, PENDING, body])?;
                ids.push(from_sql_id(tx.last_insert_rowid()));
            }
        }
        if !batch.history.is_empty() {
            tx.execute(
                "DELETE FROM alert_history WHERE id <= (SELECT MAX(id) FROM alert_history) - ?1",
                [HISTORY_KEPT],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, AlertError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut statement = conn.prepare("SELECT body FROM alert_history ORDER BY id DESC LIMIT ?1")?;
        let rows = statement.query_map([limit], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    fn add_silence(&self, silence: &Silence) -> Result<u64, AlertError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("INSERT INTO alert_silences (body) VALUES ('{}')", [])?;
        let id = from_sql_id(tx.last_insert_rowid());
        let body = serde_json::to_string(&Silence { id, ..silence.clone() })?;
        tx.execute("UPDATE alert_silences SET body = ?2 WHERE id = ?1", params![to_sql_id(id), body])?;
        tx.commit()?;
        Ok(id)
    }

    fn put_silence(&self, silence: &Silence) -> Result<(), AlertError> {
        let body = serde_json::to_string(silence)?;
        self.conn()
            .execute("UPDATE alert_silences SET body = ?2 WHERE id = ?1", params![to_sql_id(silence.id), body])?;
        Ok(())
    }

    fn delete_silence(&self, id: u64) -> Result<(), AlertError> {
        self.conn().execute("DELETE FROM alert_silences WHERE id = ?1", [to_sql_id(id)])?;
        Ok(())
    }

    fn silences(&self) -> Result<Vec<(u64, Silence)>, AlertError> {
        let conn = self.conn();
        let mut statement = conn.prepare("SELECT id, body FROM alert_silences ORDER BY id")?;
        let rows = statement.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            out.push((from_sql_id(id), serde_json::from_str(&body)?));
        }
        Ok(out)
    }

    fn buckets(&self) -> Result<Vec<BucketRow>, AlertError> {
        let conn = self.conn();
        let mut statement =
            conn.prepare("SELECT check_name, resolution, start_ms, total, bad FROM alert_slo_buckets")?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?, row.get(3)?, row.get(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (check, tag, start, total, bad): (String, String, i64, i64, i64) = row?;
            if let Some(resolution) = Resolution::from_tag(&tag) {
                let counts = Counts { total: u64::try_from(total).unwrap_or(0), bad: u64::try_from(bad).unwrap_or(0) };
                out.push((check, resolution, start, counts));
            }
        }
        Ok(out)
    }

    fn write_buckets(&self, changed: &[BucketRow], dropped: &[BucketKey]) -> Result<(), AlertError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO alert_slo_buckets (check_name, resolution, start_ms, total, bad) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(check_name, resolution, start_ms) DO UPDATE SET total = ?4, bad = ?5",
            )?;
            for (check, resolution, start, counts) in changed {
                let (total, bad) = (to_sql_count(counts.total), to_sql_count(counts.bad));
                upsert.execute(params![check, resolution.tag(), start, total, bad])?;
            }
            let mut delete = tx.prepare_cached(
                "DELETE FROM alert_slo_buckets WHERE check_name = ?1 AND resolution = ?2 AND start_ms = ?3",
            )?;
            for (check, resolution, start) in dropped {
                delete.execute(params![check, resolution.tag(), start])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn undelivered(&self) -> Result<Vec<Pending>, AlertError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, notifier, attempts, created_ms, body FROM alert_outbox WHERE status = ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = statement.query_map(params![PENDING, RESUME_LIMIT], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, notifier, attempts, created_ms, body) = row?;
            out.push(Pending {
                id: from_sql_id(id),
                notifier,
                notification: serde_json::from_str(&body)?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                created_ms,
            });
        }
        Ok(out)
    }

    fn claim(&self, id: u64, max_attempts: u32) -> Result<Claim, AlertError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let row: Option<(String, i64)> = tx
            .query_row("SELECT status, attempts FROM alert_outbox WHERE id = ?1", [to_sql_id(id)], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let claim = match row {
            Some((status, attempts)) if status == PENDING => {
                let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                if attempts >= max_attempts.max(1) {
                    tx.execute(
                        "UPDATE alert_outbox SET status = ?2, last_error = ?3 WHERE id = ?1",
                        params![to_sql_id(id), FAILED, "out of attempts"],
                    )?;
                    Claim::GaveUp
                } else {
                    tx.execute("UPDATE alert_outbox SET attempts = attempts + 1 WHERE id = ?1", [to_sql_id(id)])?;
                    Claim::Send(attempts + 1)
                }
            }
            _ => Claim::Settled,
        };
        tx.commit()?;
        Ok(claim)
    }

    fn settle(&self, id: u64, outcome: &Settled) -> Result<(), AlertError> {
        let (status, error) = match outcome {
            Settled::Delivered => (DELIVERED, None),
            Settled::Failed(error) => (FAILED, Some(error.as_str())),
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE alert_outbox SET status = ?2, last_error = COALESCE(?3, last_error) WHERE id = ?1 AND status = ?4",
            params![to_sql_id(id), status, error, PENDING],
        )?;
        tx.execute(
            "DELETE FROM alert_outbox WHERE status <> ?1 AND id <= (SELECT MAX(id) FROM alert_outbox) - ?2",
            params![PENDING, SETTLED_KEPT],
        )?;
        tx.commit()?;
        Ok(())
    }
}
