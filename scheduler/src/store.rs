//! The scheduler's result store: the one [`Store`] interface (from `probenet_exporters::store`), the embedded
//! backend opened in the data directory, and retention applied in the background.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use probenet_exporters::store::{Ingested, ResultQuery, Store, StoreError};
use probenet_exporters::store::{SqliteStore, StoreOptions};

/// Opens (creating or migrating) the embedded store in `dir`: results survive a restart and duplicates are
/// recognised across restarts.
pub fn open(dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqliteStore::open(dir, StoreOptions::default())?))
}

/// Applies retention now and every `every` after, until `stopping` turns true.
pub async fn prune_every(store: Arc<dyn Store>, every: Duration, mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.prune(crate::time::now_ms())).await {
            Ok(Ok(pruned)) => tracing::debug!(?pruned, "retention applied"),
            Ok(Err(error)) => tracing::warn!(%error, "retention not applied; trying again later"),
            Err(error) => tracing::warn!(%error, "retention task failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = crate::server::stopped(&mut stopping) => return,
        }
    }
}
