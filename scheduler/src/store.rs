//! The scheduler's result store: the one [`Store`] interface (from `probenet_exporters::store`), the embedded
//! backend opened in the data directory, and retention applied in the background.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// What retention applies to: the store, and the artifacts in the object store when there is one.
#[derive(Debug, Clone)]
pub struct Retention {
    /// The result store.
    pub store: Arc<dyn Store>,
    /// Artifacts in the bucket.
    pub artifacts: Option<Arc<crate::artifacts::Artifacts>>,
}

/// Applies retention now and every `every` after, until `stopping` turns true; only while `duty` says so
/// (replicated schedulers: the leader's duty). Artifacts in the bucket go with the raw results they belong
/// to.
pub async fn prune_every(
    retention: Retention,
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
        let store = retention.store.clone();
        let now_ms = crate::time::now_ms();
        match tokio::task::spawn_blocking(move || store.prune(now_ms)).await {
            Ok(Ok(pruned)) => tracing::debug!(?pruned, "retention applied"),
            Ok(Err(error)) => tracing::warn!(%error, "retention not applied; trying again later"),
            Err(error) => tracing::warn!(%error, "retention task failed"),
        }
        if let Some(artifacts) = &retention.artifacts {
            let raw = i64::try_from(StoreOptions::default().raw_retention.as_millis()).unwrap_or(i64::MAX);
            match artifacts.prune(now_ms.saturating_sub(raw)).await {
                Ok(deleted) => tracing::debug!(deleted, "retention applied to the bucket's artifacts"),
                Err(error) => {
                    tracing::warn!(%error, "retention not applied to the bucket's artifacts; trying again later")
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = crate::server::stopped(&mut stopping) => return,
        }
    }
}
