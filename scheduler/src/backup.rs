//! Backups of the embedded store to the bucket: every `objects.backup_every`, a consistent online copy of the
//! database (`Store::backup_into`), zstd-compressed, uploaded to `backups/store/NAME/probenet.db.zst` with a
//! JSON manifest (`manifest.json`, written last: a folder without one is an unfinished upload); the newest
//! `objects.backup_keep` are kept. A failed round (the bucket down) is counted and retried after a short wait.
//! `restore` lists backups and brings one back into a new store directory (`probenet store restore`).

pub mod restore;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use probenet_checks::config::objects::Objects;
use probenet_objects::{Bucket, BucketError};
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// The folder of the store's backups in the bucket.
pub const FOLDER: &str = "backups/store";
/// The compressed database inside a backup's folder.
pub const OBJECT: &str = "probenet.db.zst";
/// The manifest inside a backup's folder, written once the database is uploaded.
pub const MANIFEST: &str = "manifest.json";
/// The manifest's format version.
pub const FORMAT: u32 = 1;
/// The zstd level (3 is zstd's default: fast, and SQLite pages compress about 3 to 1 at it).
const LEVEL: i32 = 3;
/// The longest wait before a failed round is tried again (at most `backup_every`).
pub const RETRY: Duration = Duration::from_secs(300);

/// What a backup holds, stored beside it as `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest's format ([`FORMAT`]).
    pub format: u32,
    /// When the copy was taken (RFC 3339, UTC).
    pub taken_at: String,
    /// The same in unix milliseconds.
    pub taken_at_ms: i64,
    /// The probenet version that took it.
    pub probenet_version: String,
    /// The store's schema version in the copy.
    pub schema_version: i64,
    /// The database's size in bytes, uncompressed.
    pub db_bytes: u64,
    /// SHA-256 of the uncompressed database (lowercase hex).
    pub db_sha256: String,
    /// The compressed object's name in the folder ([`OBJECT`]).
    pub object: String,
    /// The compressed object's size in bytes.
    pub object_bytes: u64,
    /// SHA-256 of the compressed object (lowercase hex).
    pub object_sha256: String,
}

/// The backup task's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct Status {
    /// Whether backups are configured (the series are shown only then).
    configured: AtomicBool,
    /// When the last backup that completed was taken, unix seconds (0: none yet).
    last_success_s: AtomicI64,
    /// Rounds that failed.
    failures: AtomicU64,
    /// The compressed size of the last backup uploaded.
    last_bytes: AtomicU64,
}

impl Status {
    /// Rounds that failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// When the last good backup was taken (unix seconds), if any.
    pub fn last_success_s(&self) -> Option<i64> {
        Some(self.last_success_s.load(Ordering::Relaxed)).filter(|&s| s > 0)
    }

    /// The backup series, when backups are configured.
    pub fn families(&self) -> Vec<probenet_exporters::FamilySamples> {
        use probenet_exporters::{FamilySamples, MetricType};
        if !self.configured.load(Ordering::Relaxed) {
            return Vec::new();
        }
        vec![
            FamilySamples::single(
                "probenet_backup_last_success_timestamp_seconds",
                "When the last backup of the embedded store to the bucket that completed was taken (0: none yet).",
                MetricType::Gauge,
                self.last_success_s.load(Ordering::Relaxed) as f64,
            ),
            FamilySamples::single(
                "probenet_backup_failures_total",
                "Backups of the embedded store that failed (retried at the next round).",
                MetricType::Counter,
                self.failures() as f64,
            ),
            FamilySamples::single(
                "probenet_backup_last_size_bytes",
                "The compressed size of the last backup uploaded.",
                MetricType::Gauge,
                self.last_bytes.load(Ordering::Relaxed) as f64,
            ),
        ]
    }
}

/// What went wrong in a round.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The bucket failed (its message names the bucket, never a key).
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// The store could not copy itself.
    #[error("copying the store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A local file could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A task did not finish.
    #[error("the backup task failed: {0}")]
    Task(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// A backup's folder name for a time: `2026-12-06T171500Z` (sorts by time).
pub fn name_at(unix_ms: i64) -> String {
    let (year, month, day) = crate::time::civil_from_days(unix_ms.div_euclid(86_400_000));
    let in_day = unix_ms.rem_euclid(86_400_000) / 1000;
    let (hour, minute, second) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}{minute:02}{second:02}Z")
}

/// When and what to keep.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// A round every this long.
    pub every: Duration,
    /// Backups kept.
    pub keep: u32,
    /// A private scratch directory for the copy and its compressed form (removed after each round).
    pub work: PathBuf,
}

/// The backup task of a single scheduler on its embedded store, when the config sets `objects` with backups
/// on; `None` otherwise (no bucket, `backup_every: 0s`, or replicated schedulers, whose PostgreSQL is backed up
/// by its own tools). `data` is the scheduler's data directory (the scratch space goes below it).
pub fn task(
    store: Arc<dyn Store>,
    bucket: Option<Bucket>,
    objects: Option<&Objects>,
    replicated: bool,
    data: &Path,
    status: Arc<Status>,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    let (bucket, objects) = (bucket?, objects?);
    let every = objects.backup_every?;
    if replicated {
        return None;
    }
    let schedule = Schedule { every, keep: objects.backup_keep, work: data.join("backup-work") };
    Some(run(store, Some(bucket), schedule, status, stopping))
}

/// Backs the store up every `schedule.every` (the first round when the newest backup in the bucket is that
/// old, or at once when there is none) until `stopping`; a failed round is counted and tried again after
/// [`RETRY`] (or `every`, if shorter). Without a bucket it does nothing.
pub async fn run(
    store: Arc<dyn Store>,
    bucket: Option<Bucket>,
    schedule: Schedule,
    status: Arc<Status>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let Some(bucket) = bucket else { return };
    status.configured.store(true, Ordering::Relaxed);
    let every_ms = i64::try_from(schedule.every.as_millis()).unwrap_or(i64::MAX);
    let retry = RETRY.min(schedule.every);
    let mut wait = match restore::list(&bucket).await {
        Ok(backups) => match backups.iter().rev().find_map(|backup| backup.manifest.as_ref()) {
            Some(newest) => {
                status.last_success_s.store(newest.taken_at_ms / 1000, Ordering::Relaxed);
                let due_in = newest.taken_at_ms.saturating_add(every_ms).saturating_sub(crate::time::now_ms());
                Duration::from_millis(u64::try_from(due_in).unwrap_or(0))
            }
            None => Duration::ZERO,
        },
        Err(error) => {
            tracing::warn!(%error, "cannot list the backups in the bucket; backing up now");
            Duration::ZERO
        }
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = crate::server::stopped(&mut stopping) => return,
        }
        wait = match backup_once(&store, &bucket, &schedule, &status).await {
            Ok(manifest) => {
                tracing::info!(
                    taken_at = manifest.taken_at,
                    bytes = manifest.object_bytes,
                    db_bytes = manifest.db_bytes,
                    "store backed up to the bucket"
                );
                schedule.every
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_s = retry.as_secs(), "store backup failed; trying again later");
                retry
            }
        };
    }
}

/// One round: copies the store, compresses it, uploads it with its manifest, deletes backups beyond
/// `schedule.keep`. Counts the round in `status`.
pub async fn backup_once(
    store: &Arc<dyn Store>,
    bucket: &Bucket,
    schedule: &Schedule,
    status: &Status,
) -> Result<Manifest, BackupError> {
    let result = round(store, bucket, schedule).await;
    let _ = std::fs::remove_dir_all(&schedule.work);
    match &result {
        Ok(manifest) => {
            status.last_success_s.store(manifest.taken_at_ms / 1000, Ordering::Relaxed);
            status.last_bytes.store(manifest.object_bytes, Ordering::Relaxed);
            if let Err(error) = prune(bucket, schedule.keep).await {
                tracing::warn!(%error, "old backups not deleted; trying again after the next backup");
            }
        }
        Err(_) => {
            status.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
    result
}

async fn round(store: &Arc<dyn Store>, bucket: &Bucket, schedule: &Schedule) -> Result<Manifest, BackupError> {
    let work = schedule.work.clone();
    // Leftovers of a round that was interrupted.
    let _ = std::fs::remove_dir_all(&work);
    crate::files::create_private_dir(&work).map_err(io(format!("creating {}", work.display())))?;
    let taken_at_ms = crate::time::now_ms();
    let (db, object) = (work.join("probenet.db"), work.join(OBJECT));
    let manifest = {
        let (store, db, object) = (store.clone(), db.clone(), object.clone());
        tokio::task::spawn_blocking(move || -> Result<Manifest, BackupError> {
            let snapshot = store.backup_into(&db)?;
            let (db_sha256, object_sha256, object_bytes) = compress(&db, &object)?;
            Ok(Manifest {
                format: FORMAT,
                taken_at: crate::time::rfc3339_ms(taken_at_ms),
                taken_at_ms,
                probenet_version: env!("CARGO_PKG_VERSION").to_owned(),
                schema_version: snapshot.schema_version,
                db_bytes: snapshot.bytes,
                db_sha256,
                object: OBJECT.to_owned(),
                object_bytes,
                object_sha256,
            })
        })
        .await
        .map_err(|error| BackupError::Task(error.to_string()))??
    };
    let folder = format!("{FOLDER}/{}", name_at(taken_at_ms));
    bucket.put_file(&format!("{folder}/{OBJECT}"), &object).await?;
    let body = serde_json::to_vec_pretty(&manifest).map_err(|error| BackupError::Task(error.to_string()))?;
    bucket.put(&format!("{folder}/{MANIFEST}"), body.into()).await?;
    Ok(manifest)
}

/// Deletes complete backups beyond the newest `keep`, and unfinished uploads older than the newest complete
/// backup. Returns the names deleted.
pub async fn prune(bucket: &Bucket, keep: u32) -> Result<Vec<String>, BucketError> {
    let backups = restore::list(bucket).await?;
    let complete: Vec<&restore::Listed> = backups.iter().filter(|backup| backup.manifest.is_some()).collect();
    let keep = usize::try_from(keep).unwrap_or(usize::MAX).max(1);
    let newest_complete = complete.last().map(|backup| backup.name.clone());
    let mut doomed: Vec<String> =
        complete.iter().rev().skip(keep).map(|backup| backup.name.clone()).collect::<Vec<_>>();
    if let Some(newest) = &newest_complete {
        doomed.extend(
            backups
                .iter()
                .filter(|backup| backup.manifest.is_none() && backup.name < *newest)
                .map(|backup| backup.name.clone()),
        );
    }
    doomed.sort();
    for name in &doomed {
        // The manifest first: a folder half deleted is an unfinished one, never a broken "complete" backup.
        bucket.delete(&format!("{FOLDER}/{name}/{MANIFEST}")).await?;
        bucket.delete_folder(&format!("{FOLDER}/{name}")).await?;
    }
    Ok(doomed)
}

/// Compresses `db` into `object`; returns the SHA-256 of both and the object's size.
fn compress(db: &Path, object: &Path) -> Result<(String, String, u64), BackupError> {
    let input = std::fs::File::open(db).map_err(io(format!("reading {}", db.display())))?;
    let output = std::fs::File::create(object).map_err(io(format!("writing {}", object.display())))?;
    let mut reader = Hashing::new(std::io::BufReader::new(input));
    let mut writer = Hashing::new(std::io::BufWriter::new(output));
    zstd::stream::copy_encode(&mut reader, &mut writer, LEVEL)
        .map_err(io(format!("compressing into {}", object.display())))?;
    writer.inner.flush().map_err(io(format!("writing {}", object.display())))?;
    let bytes = writer.bytes;
    let (db_sha, object_sha) = (reader.hex(), writer.hex());
    Ok((db_sha, object_sha, bytes))
}

/// A reader or writer that hashes what passes through it.
pub(crate) struct Hashing<T> {
    pub(crate) inner: T,
    digest: aws_lc_rs::digest::Context,
    pub(crate) bytes: u64,
}

impl<T> Hashing<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self { inner, digest: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256), bytes: 0 }
    }

    /// The SHA-256 of what passed, in lowercase hex.
    pub(crate) fn hex(self) -> String {
        hex(self.digest.finish().as_ref())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.digest.update(&buf[..count]);
        self.bytes += count as u64;
        Ok(count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let count = self.inner.write(buf)?;
        self.digest.update(&buf[..count]);
        self.bytes += count as u64;
        Ok(count)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_sort_by_time() {
        assert_eq!(super::name_at(1_796_750_100_000), "2026-12-08T171500Z");
        assert!(super::name_at(1_796_750_100_000) < super::name_at(1_796_750_101_000));
    }
}
