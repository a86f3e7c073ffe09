//! The scheduler's result store: the one [`Store`] interface (from `probenet_exporters::store`), the embedded
//! backend opened in the data directory, and retention applied in the background.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use probenet_exporters::archive::{self, Archiver, Bucket};
pub use probenet_exporters::store::{Ingested, ResultQuery, Store, StoreError};
use probenet_exporters::store::{SqliteStore, StoreOptions};

/// Where the scheduler keeps its state.
#[derive(Debug, Clone)]
pub enum Location {
    /// The embedded SQLite store in this directory (a single scheduler).
    Embedded(PathBuf),
    /// PostgreSQL, shared by replicated schedulers.
    Postgres(Box<probenet_pg::Database>),
}

impl Location {
    /// Parses `--store`: `sqlite:PATH` or `postgres://USER@HOST:PORT/DB?sslmode=...` (`postgresql://` too).
    /// The PostgreSQL password comes from `password_file` or `PGPASSWORD`, never from the URL.
    pub fn parse(text: &str, password_file: Option<&Path>, ca_file: Option<&Path>) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("--store sqlite:PATH needs a directory".to_owned());
            }
            return Ok(Self::Embedded(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let password = match password_file {
                Some(path) => {
                    Some(std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?)
                }
                None => None,
            };
            return probenet_pg::Database::parse(text, password, ca_file)
                .map(|database| Self::Postgres(Box::new(database)));
        }
        Err("--store takes sqlite:PATH or postgres://USER@HOST:PORT/DB".to_owned())
    }
}

/// Opens (creating or migrating) the embedded store in `dir`: results survive a restart and duplicates are
/// recognised across restarts.
pub fn open(dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqliteStore::open(dir, StoreOptions::default())?))
}

/// The archive pass of a config: `None` when it sets no `objects.archive_after`. `bucket` is the bucket opened
/// at start, if any; without one it is opened here from the config (no I/O but reading secret files). Counts
/// go to `status` (the scheduler's `/metrics`).
pub fn archiver(
    config: &probenet_checks::config::Config,
    bucket: Option<Bucket>,
    status: Arc<archive::Status>,
) -> Result<Option<Archiver>, String> {
    let Some(objects) = &config.objects else { return Ok(None) };
    let Some(after) = objects.archive_after else { return Ok(None) };
    let bucket = match bucket {
        Some(bucket) => bucket,
        None => Bucket::open(objects, &mut Vec::new()).map_err(|error| error.to_string())?,
    };
    Ok(Some(Archiver::new(bucket, after, status)))
}

/// What retention applies to: the store, the artifacts in the object store when there is one, and the archive
/// that must have the raw results before they go.
#[derive(Debug, Clone)]
pub struct Retention {
    /// The result store.
    pub store: Arc<dyn Store>,
    /// Artifacts in the bucket.
    pub artifacts: Option<Arc<crate::artifacts::Artifacts>>,
    /// The archive of raw results (`objects.archive_after`).
    pub archive: Option<Archiver>,
}

/// Applies retention now and every `every` after, until `stopping` turns true; only while `duty` says so
/// (replicated schedulers: the leader's duty). Artifacts in the bucket go with the raw results they belong
/// to. With an archive, each round first archives the days due and prunes raw results (and artifacts) only
/// below the first day not archived: when the bucket is down, raw results stay (and
/// `probenet_archive_pending_days` grows) instead of being lost; when even the store cannot say what it holds,
/// nothing is pruned that round.
pub async fn prune_every(
    mut retention: Retention,
    every: Duration,
    duty: impl Fn() -> bool + Send + 'static,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if !duty() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                () = crate::server::stopped(&mut stopping) => return,
            }
        }
        let now_ms = crate::time::now_ms();
        let floor = match retention.archive.as_mut() {
            None => Ok(None),
            // The pass logs and counts its own failures.
            Some(archiver) => archiver.run(&retention.store, now_ms).await.map(|pass| Some(pass.floor_ms)),
        };
        if let Ok(floor) = floor {
            let store = retention.store.clone();
            match tokio::task::spawn_blocking(move || store.prune_keeping(now_ms, floor)).await {
                Ok(Ok(pruned)) => tracing::debug!(?pruned, "retention applied"),
                Ok(Err(error)) => tracing::warn!(%error, "retention not applied; trying again later"),
                Err(error) => tracing::warn!(%error, "retention task failed"),
            }
            if let Some(artifacts) = &retention.artifacts {
                let raw = i64::try_from(StoreOptions::default().raw_retention.as_millis()).unwrap_or(i64::MAX);
                let cut = now_ms.saturating_sub(raw);
                match artifacts.prune(floor.map_or(cut, |floor| cut.min(floor))).await {
                    Ok(deleted) => tracing::debug!(deleted, "retention applied to the bucket's artifacts"),
                    Err(error) => {
                        tracing::warn!(%error, "retention not applied to the bucket's artifacts; trying again later")
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = crate::server::stopped(&mut stopping) => return,
        }
    }
}
