//! The engine's state in SQLite (tables prefixed `alert_`, in a file it may share): open alerts, history,
//! silences and SLO buckets, so a restart neither re-pages nor forgets a firing alert.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::AlertError;
use crate::slo::{Counts, Resolution};

/// The schema this build writes.
const SCHEMA_VERSION: i64 = 1;

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
";

/// How many history entries are kept.
const HISTORY_KEPT: i64 = 10_000;

/// The store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

/// One SLO bucket as stored.
pub type BucketRow = (String, Resolution, i64, Counts);

impl Store {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, AlertError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<i64> =
            conn.query_row("SELECT MAX(version) FROM alert_schema_version", [], |row| row.get(0)).optional()?.flatten();
        match version {
            None => {
                conn.execute("INSERT INTO alert_schema_version (version) VALUES (?1)", [SCHEMA_VERSION])?;
            }
            Some(version) if version > SCHEMA_VERSION => return Err(AlertError::NewerSchema(version)),
            Some(_) => {}
        }
        Ok(Self { conn })
    }

    /// Every stored open alert.
    pub fn instances<T: DeserializeOwned>(&self) -> Result<Vec<T>, AlertError> {
        self.bodies("SELECT body FROM alert_instances ORDER BY key", [])
    }

    /// Stores (or replaces) an open alert.
    pub fn put_instance<T: Serialize>(&self, key: &str, body: &T) -> Result<(), AlertError> {
        let body = serde_json::to_string(body)?;
        self.conn.execute(
            "INSERT INTO alert_instances (key, body) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET body = ?2",
            params![key, body],
        )?;
        Ok(())
    }

    /// Forgets an open alert.
    pub fn delete_instance(&self, key: &str) -> Result<(), AlertError> {
        self.conn.execute("DELETE FROM alert_instances WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Appends to the history, keeping the newest entries only.
    pub fn push_history<T: Serialize>(&self, at_ms: i64, key: &str, body: &T) -> Result<(), AlertError> {
        let body = serde_json::to_string(body)?;
        self.conn
            .execute("INSERT INTO alert_history (at_ms, key, body) VALUES (?1, ?2, ?3)", params![at_ms, key, body])?;
        self.conn.execute(
            "DELETE FROM alert_history WHERE id <= (SELECT MAX(id) FROM alert_history) - ?1",
            [HISTORY_KEPT],
        )?;
        Ok(())
    }

    /// The newest `limit` history entries, newest first.
    pub fn history<T: DeserializeOwned>(&self, limit: usize) -> Result<Vec<T>, AlertError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.bodies("SELECT body FROM alert_history ORDER BY id DESC LIMIT ?1", [limit])
    }

    /// Stores a new silence and returns its id.
    pub fn add_silence<T: Serialize>(&self, body: &T) -> Result<u64, AlertError> {
        let body = serde_json::to_string(body)?;
        self.conn.execute("INSERT INTO alert_silences (body) VALUES (?1)", [body])?;
        Ok(u64::try_from(self.conn.last_insert_rowid()).unwrap_or(0))
    }

    /// Replaces a silence.
    pub fn put_silence<T: Serialize>(&self, id: u64, body: &T) -> Result<(), AlertError> {
        let body = serde_json::to_string(body)?;
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.conn.execute("UPDATE alert_silences SET body = ?2 WHERE id = ?1", params![id, body])?;
        Ok(())
    }

    /// Forgets a silence.
    pub fn delete_silence(&self, id: u64) -> Result<(), AlertError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.conn.execute("DELETE FROM alert_silences WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Every stored silence with its id.
    pub fn silences<T: DeserializeOwned>(&self) -> Result<Vec<(u64, T)>, AlertError> {
        let mut statement = self.conn.prepare("SELECT id, body FROM alert_silences ORDER BY id")?;
        let rows = statement.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            out.push((u64::try_from(id).unwrap_or(0), serde_json::from_str(&body)?));
        }
        Ok(out)
    }

    /// Every stored SLO bucket.
    pub fn buckets(&self) -> Result<Vec<BucketRow>, AlertError> {
        let mut statement =
            self.conn.prepare("SELECT check_name, resolution, start_ms, total, bad FROM alert_slo_buckets")?;
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

    /// Writes changed buckets and deletes dropped ones, in one transaction.
    pub fn write_buckets(
        &mut self,
        changed: &[BucketRow],
        dropped: &[(String, Resolution, i64)],
    ) -> Result<(), AlertError> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO alert_slo_buckets (check_name, resolution, start_ms, total, bad) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(check_name, resolution, start_ms) DO UPDATE SET total = ?4, bad = ?5",
            )?;
            for (check, resolution, start, counts) in changed {
                let total = i64::try_from(counts.total).unwrap_or(i64::MAX);
                let bad = i64::try_from(counts.bad).unwrap_or(i64::MAX);
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

    fn bodies<T: DeserializeOwned, P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Vec<T>, AlertError> {
        let mut statement = self.conn.prepare(sql)?;
        let rows = statement.query_map(params, |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }
}

/// A stored history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it happened, unix ms.
    pub at_ms: i64,
    /// The alert instance.
    pub key: String,
    /// The alert's name.
    pub alert: String,
    /// The check, when about one.
    pub check: Option<String>,
    /// `firing` or `resolved`.
    pub status: crate::Status,
    /// The regions failing.
    pub regions: Vec<String>,
    /// The summary line.
    pub summary: String,
    /// Whether notifiers were told (false when silenced).
    pub notified: bool,
}
