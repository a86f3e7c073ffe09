//! The result store: the [`Store`] trait every backend implements, and its backends: the embedded
//! [`SqliteStore`] (SQLite in WAL mode with versioned migrations, raw results, per-minute, per-hour and per-day
//! rollups per (check, region), incidents, and artifact files on disk) and [`PostgresStore`] (the same in a
//! PostgreSQL database that replicated schedulers share). Design: `docs/store.md`, `docs/design.md`.
//!
//! [`SqliteStore`] is synchronous, `Send + Sync` and cheap to clone: one writer connection behind a mutex and a
//! small pool of reader connections, so dashboard queries never wait for a write. From async code, call it
//! through `tokio::task::spawn_blocking`.

pub mod artifacts;
mod backup;
pub mod body;
pub mod codec;
pub mod incidents;
mod ingest;
mod interface;
pub mod ledger;
mod merge;
mod overview;
pub mod postgres;
mod query;
mod retention;
pub mod rollup;
pub mod schema;
mod sqlite;
mod types;
mod uptime;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub use backup::Snapshot;
pub use interface::Store;
pub use ledger::{LedgerHour, LedgerMs, LedgerSum};
pub use overview::{HourLatency, LatestRun};
pub use postgres::PostgresStore;
pub use types::{
    Bucket, Incident, Ingested, Latency, LatencyPoint, Pair, Position, Pruned, ResultQuery, StoredPage, Uptime,
    UptimeQuery,
};

/// The database file inside the store directory.
pub const DB_FILE: &str = "probenet.db";
/// The artifact directory inside the store directory.
pub const ARTIFACT_DIR: &str = "artifacts";

/// How long things are kept, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOptions {
    /// Raw results and their artifact files (default 7 days).
    pub raw_retention: Duration,
    /// Per-minute rollups (default 400 days, as the hourly and daily ones; lower it to save space).
    pub minute_retention: Duration,
    /// Per-hour and per-day rollups and closed incidents (default 400 days).
    pub rollup_retention: Duration,
    /// Reader connections (default 4).
    pub readers: usize,
    /// `true` (default): `synchronous=FULL`, an acknowledged batch survives power loss. `false`:
    /// `synchronous=NORMAL`, which survives a killed process but may lose the last commits on power loss.
    pub durable: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        let day = Duration::from_secs(86_400);
        Self {
            raw_retention: day * 7,
            minute_retention: day * 400,
            rollup_retention: day * 400,
            readers: 4,
            durable: true,
        }
    }
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A database operation failed.
    #[error("{what}: {source}")]
    Sqlite {
        /// What was being done.
        what: String,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The database was written by a newer build.
    #[error(
        "the database has schema version {found}, newer than this build knows ({known}): it was written by a newer \
         probenet; refusing to downgrade; run a newer probenet, or restore the backup taken before the upgrade"
    )]
    NewerSchema {
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A migration step failed (and was rolled back).
    #[error("migrating to schema version {version}: {source}")]
    Migration {
        /// The step's version.
        version: i64,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A PostgreSQL operation failed (the PostgreSQL backend): the server's message and SQLSTATE, or why no
    /// connection could be had.
    #[error("{what}: {message}")]
    Postgres {
        /// What was being done.
        what: String,
        /// The cause, as [`probenet_pg::describe`] words it.
        message: String,
    },
    /// A stored result could not be encoded or decoded.
    #[error("{0}")]
    Codec(String),
    /// A thread panicked while holding one of the store's locks.
    #[error("a store lock is poisoned")]
    Poisoned,
    /// This backend does not offer the call.
    #[error("this store does not offer {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// A mapper for `map_err` that names what was being done.
    pub(crate) fn sqlite(what: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let what = what.into();
        move |source| StoreError::Sqlite { what, source }
    }

    /// A mapper for `map_err` that names what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
        let what = what.into();
        move |source| StoreError::Io { what, source }
    }
}

/// Interned names, shared by the writer and readers.
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub(crate) checks: HashMap<String, i64>,
    pub(crate) regions: HashMap<String, i64>,
    pub(crate) check_names: HashMap<i64, String>,
    pub(crate) region_names: HashMap<i64, String>,
}

/// What the writer remembers per pair.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PairState {
    pub(crate) last_planned_ms: i64,
    /// Runs, up, degraded, down of every result stored (the day rows' running counts end there).
    pub(crate) totals: rollup::Counts,
    pub(crate) open: Option<incidents::Open>,
}

pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) pairs: HashMap<(i64, i64), PairState>,
    /// The latest rollup rows written (committed), so ingest need not read them back.
    pub(crate) rollups: rollup::RowCache,
    /// The id the next stored result gets: above every id ever stored, pruned ones too (`meta`'s
    /// `results_max_id` keeps it across a prune of every row).
    pub(crate) next_id: i64,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) artifacts: PathBuf,
    pub(crate) options: StoreOptions,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) readers: Vec<Mutex<Connection>>,
    pub(crate) next_reader: AtomicUsize,
    pub(crate) names: RwLock<Names>,
    pub(crate) accepted: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    /// The latest `planned_at_ms` stored, over every pair.
    pub(crate) max_planned_ms: AtomicI64,
    /// Raw results planned before this were pruned (the cutoff of the last prune).
    pub(crate) raw_pruned_before_ms: AtomicI64,
    /// Minute rollups starting before this were pruned.
    pub(crate) minute_pruned_before_ms: AtomicI64,
}

/// The embedded store, SQLite: the [`Store`] backend of `probenet up` and small installs. Clones share the same
/// database.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("dir", &self.inner.dir).field("options", &self.inner.options).finish()
    }
}

fn configure(conn: &Connection, durable: bool, path: &Path) -> Result<(), StoreError> {
    let what = format!("opening {}", path.display());
    conn.busy_timeout(Duration::from_secs(10)).map_err(StoreError::sqlite(what.clone()))?;
    let mode: String =
        conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(StoreError::sqlite(what.clone()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Codec(format!("{what}: the database refused WAL mode (journal mode {mode})")));
    }
    let synchronous = if durable { "FULL" } else { "NORMAL" };
    conn.pragma_update(None, "synchronous", synchronous).map_err(StoreError::sqlite(what.clone()))?;
    for (pragma, value) in [
        ("cache_size", -32_000),
        ("journal_size_limit", 64 << 20),
        ("mmap_size", 256 << 20),
        ("temp_store", 2),
        ("wal_autocheckpoint", 4_000),
    ] {
        conn.pragma_update(None, pragma, value).map_err(StoreError::sqlite(what.clone()))?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating or migrating) the store in `dir`: `dir/probenet.db` and `dir/artifacts/`.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<SqliteStore, StoreError> {
        // Results and screenshots are the owner's alone.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(StoreError::io(format!("creating the store directory {}", dir.display())))?;
        let artifacts = dir.join(ARTIFACT_DIR);
        std::fs::create_dir_all(&artifacts)
            .map_err(StoreError::io(format!("creating the artifact directory {}", artifacts.display())))?;
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open(&path).map_err(StoreError::sqlite(format!("opening {}", path.display())))?;
        configure(&conn, options.durable, &path)?;
        schema::migrate(&mut conn, schema::CURRENT_VERSION)?;

        let names = load_names(&conn)?;
        let pairs = load_pairs(&conn)?;
        let setting = |key: &str| {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get::<_, i64>(0))
                .optional()
                .map_err(StoreError::sqlite("loading settings"))
                .map(|value| value.unwrap_or(i64::MIN))
        };
        let raw_pruned_before = setting("raw_pruned_before_ms")?;
        let max_id: Option<i64> = conn
            .query_row("SELECT MAX(id) FROM results", [], |row| row.get(0))
            .map_err(StoreError::sqlite("loading settings"))?;
        let next_id = max_id.unwrap_or(0).max(setting("results_max_id")?).max(0) + 1;
        let minute_pruned_before = setting("minute_pruned_before_ms")?;
        let max_planned = pairs.values().map(|pair| pair.last_planned_ms).max().unwrap_or(i64::MIN);
        let mut readers = Vec::new();
        for _ in 0..options.readers.max(1) {
            let reader =
                Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(StoreError::sqlite(format!("opening {}", path.display())))?;
            reader.busy_timeout(Duration::from_secs(10)).map_err(StoreError::sqlite("configuring a reader"))?;
            reader.pragma_update(None, "query_only", true).map_err(StoreError::sqlite("configuring a reader"))?;
            for (pragma, value) in [("cache_size", -16_000), ("mmap_size", 256 << 20), ("temp_store", 2)] {
                reader.pragma_update(None, pragma, value).map_err(StoreError::sqlite("configuring a reader"))?;
            }
            readers.push(Mutex::new(reader));
        }
        let inner = Inner {
            dir: dir.to_path_buf(),
            artifacts,
            options,
            writer: Mutex::new(Writer { conn, pairs, rollups: rollup::RowCache::new(), next_id }),
            readers,
            next_reader: AtomicUsize::new(0),
            names: RwLock::new(names),
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            max_planned_ms: AtomicI64::new(max_planned),
            raw_pruned_before_ms: AtomicI64::new(raw_pruned_before),
            minute_pruned_before_ms: AtomicI64::new(minute_pruned_before),
        };
        Ok(SqliteStore { inner: Arc::new(inner) })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// Results accepted and duplicates seen since open.
    pub(crate) fn totals(&self) -> Ingested {
        let load = |counter: &AtomicU64| usize::try_from(counter.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        Ingested { accepted: load(&self.inner.accepted), duplicates: load(&self.inner.duplicates) }
    }

    /// `PRAGMA integrity_check`: the problems SQLite lists, empty when the database is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.reader()?;
        let mut statement = conn.prepare("PRAGMA integrity_check").map_err(StoreError::sqlite("checking integrity"))?;
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(StoreError::sqlite("checking integrity"))?;
        Ok(rows.into_iter().filter(|row| row != "ok").collect())
    }

    pub(crate) fn reader(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        let readers = &self.inner.readers;
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..readers.len() {
            if let Ok(guard) = readers[(start + i) % readers.len()].try_lock() {
                return Ok(guard);
            }
        }
        readers[start % readers.len()].lock().map_err(|_| StoreError::Poisoned)
    }

    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Writer>, StoreError> {
        self.inner.writer.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The id of a check name, if it was ever stored.
    pub(crate) fn check_id(&self, conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
        self.name_id(conn, name, true)
    }

    /// The id of a region name, if it was ever stored.
    pub(crate) fn region_id(&self, conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
        self.name_id(conn, name, false)
    }

    fn name_id(&self, conn: &Connection, name: &str, check: bool) -> Result<Option<i64>, StoreError> {
        {
            let names = self.inner.names.read().map_err(|_| StoreError::Poisoned)?;
            let map = if check { &names.checks } else { &names.regions };
            if let Some(id) = map.get(name) {
                return Ok(Some(*id));
            }
        }
        let sql =
            if check { "SELECT id FROM checks WHERE name = ?1" } else { "SELECT id FROM regions WHERE name = ?1" };
        conn.prepare_cached(sql)
            .and_then(|mut statement| statement.query_row([name], |row| row.get(0)).optional())
            .map_err(StoreError::sqlite("looking up a name"))
    }

    /// The check and region names of a pair of ids.
    pub(crate) fn pair_names(
        &self,
        conn: &Connection,
        check: i64,
        region: i64,
    ) -> Result<(String, String), StoreError> {
        {
            let names = self.inner.names.read().map_err(|_| StoreError::Poisoned)?;
            if let (Some(c), Some(r)) = (names.check_names.get(&check), names.region_names.get(&region)) {
                return Ok((c.clone(), r.clone()));
            }
        }
        let fresh = load_names(conn)?;
        let found = (fresh.check_names.get(&check).cloned(), fresh.region_names.get(&region).cloned());
        *self.inner.names.write().map_err(|_| StoreError::Poisoned)? = fresh;
        match found {
            (Some(c), Some(r)) => Ok((c, r)),
            _ => Err(StoreError::Codec(format!("unknown check or region id {check}/{region}"))),
        }
    }

    /// What is still stored.
    pub(crate) fn kept(&self) -> rollup::Kept {
        rollup::Kept {
            raw_since_ms: self.inner.raw_pruned_before_ms.load(Ordering::Relaxed),
            minute_since_ms: self.inner.minute_pruned_before_ms.load(Ordering::Relaxed),
        }
    }
}

pub(crate) fn load_names(conn: &Connection) -> Result<Names, StoreError> {
    let mut names = Names::default();
    for (table, check) in [("checks", true), ("regions", false)] {
        let mut statement =
            conn.prepare(&format!("SELECT id, name FROM {table}")).map_err(StoreError::sqlite("loading names"))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(StoreError::sqlite("loading names"))?;
        for (id, name) in rows {
            if check {
                names.checks.insert(name.clone(), id);
                names.check_names.insert(id, name);
            } else {
                names.regions.insert(name.clone(), id);
                names.region_names.insert(id, name);
            }
        }
    }
    Ok(names)
}

fn load_pairs(conn: &Connection) -> Result<HashMap<(i64, i64), PairState>, StoreError> {
    let mut statement = conn
        .prepare(
            "SELECT p.check_id, p.region_id, p.last_planned_ms, i.id, i.runs, i.last_ms, p.runs, p.up, p.degraded, \
             p.down FROM pairs p \
             LEFT JOIN incidents i ON i.check_id = p.check_id AND i.region_id = p.region_id AND i.end_ms IS NULL",
        )
        .map_err(StoreError::sqlite("loading pairs"))?;
    let rows = statement
        .query_map([], |row| {
            let open = match row.get::<_, Option<i64>>(3)? {
                Some(id) => Some(incidents::Open { id, runs: row.get(4)?, last_ms: row.get(5)? }),
                None => None,
            };
            let totals = rollup::row_counts(row, 6)?;
            Ok(((row.get(0)?, row.get(1)?), PairState { last_planned_ms: row.get(2)?, totals, open }))
        })
        .and_then(|rows| rows.collect::<Result<HashMap<_, _>, _>>())
        .map_err(StoreError::sqlite("loading pairs"))?;
    Ok(rows)
}
