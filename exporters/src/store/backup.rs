//! Online backup of the embedded store: a consistent copy of the database taken while ingest goes on, through
//! SQLite's backup API, in steps.
//!
//! The copy reads one WAL snapshot: a dedicated connection opens a read transaction and every step of the
//! backup reads inside it, so the copy is the database as of one commit, never a mix of two (a reader never
//! blocks the writer in WAL mode, so ingest goes on). While it runs, checkpoints cannot move past that
//! snapshot, so the WAL grows by what is written meanwhile and is folded back afterwards.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{DB_FILE, SqliteStore, StoreError};

/// Pages copied per step (4 MiB with SQLite's default 4 KiB pages).
const PAGES_PER_STEP: std::os::raw::c_int = 1024;
/// The pause between steps, so a large copy yields the disk to ingest.
const PAUSE: Duration = Duration::from_millis(2);

/// What a backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The schema version of the copy (`PRAGMA user_version`).
    pub schema_version: i64,
    /// The copy's size in bytes.
    pub bytes: u64,
}

impl SqliteStore {
    /// Copies the database into `file` (which must not exist), consistent as of one commit, while the store
    /// keeps ingesting. The copy is a complete SQLite database in rollback-journal mode, synced to disk; open
    /// it as a store by naming it `probenet.db` in a store directory. Artifact files are not copied.
    pub fn backup_into(&self, file: &Path) -> Result<Snapshot, StoreError> {
        let what = |step: &str| format!("backing up the store into {}: {step}", file.display());
        if file.exists() {
            return Err(StoreError::Io {
                what: what("the file exists"),
                source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            });
        }
        let source_path = self.inner.dir.join(DB_FILE);
        let source = Connection::open_with_flags(
            &source_path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(StoreError::sqlite(what("opening the database")))?;
        source.busy_timeout(Duration::from_secs(10)).map_err(StoreError::sqlite(what("configuring")))?;
        source.pragma_update(None, "query_only", true).map_err(StoreError::sqlite(what("configuring")))?;
        // One read transaction for the whole copy: every step reads the same snapshot.
        source.execute_batch("BEGIN DEFERRED").map_err(StoreError::sqlite(what("starting the snapshot")))?;
        let schema_version: i64 = source
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(StoreError::sqlite(what("starting the snapshot")))?;
        // A read of the schema table pins the snapshot (a deferred transaction starts reading at its first read).
        let _: i64 = source
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .map_err(StoreError::sqlite(what("starting the snapshot")))?;
        let copied = (|| {
            let mut target = Connection::open(file).map_err(StoreError::sqlite(what("creating the copy")))?;
            {
                let backup = rusqlite::backup::Backup::new(&source, &mut target)
                    .map_err(StoreError::sqlite(what("starting the copy")))?;
                // Bounded: each step copies PAGES_PER_STEP pages of a database that does not change under the
                // snapshot, so at most pages / PAGES_PER_STEP + 1 steps (busy steps are retried a bounded time).
                let mut busy = 0_u32;
                loop {
                    match backup.step(PAGES_PER_STEP).map_err(StoreError::sqlite(what("copying")))? {
                        rusqlite::backup::StepResult::Done => break,
                        rusqlite::backup::StepResult::More => busy = 0,
                        rusqlite::backup::StepResult::Busy | rusqlite::backup::StepResult::Locked => {
                            busy += 1;
                            if busy > 5_000 {
                                return Err(StoreError::Codec(what("the database stayed locked for 10 s")));
                            }
                        }
                        _ => return Err(StoreError::Codec(what("unexpected step result"))),
                    }
                    std::thread::sleep(PAUSE);
                }
            }
            target.pragma_update(None, "journal_mode", "DELETE").map_err(StoreError::sqlite(what("finishing")))?;
            drop(target);
            let copy = std::fs::File::open(file).map_err(StoreError::io(what("syncing")))?;
            copy.sync_all().map_err(StoreError::io(what("syncing")))?;
            let bytes = copy.metadata().map_err(StoreError::io(what("syncing")))?.len();
            Ok(Snapshot { schema_version, bytes })
        })();
        let _ = source.execute_batch("COMMIT");
        if copied.is_err() {
            let _ = std::fs::remove_file(file);
        }
        copied
    }
}
