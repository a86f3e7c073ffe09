//! The embedded SQLite store behind the scheduler's [`Store`] trait: results survive a restart, duplicates are
//! recognised across restarts, and retention runs in the background.

use std::path::Path;
use std::time::Duration;

use probenet_checks::wire::RunResult;
use probenet_exporters::store::{self, ResultQuery, StoreError as DbError, StoreOptions};

use crate::store::{Ingested, Query, Store, StoreError};

/// The embedded store, shared by handlers (cheap to clone).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: store::Store,
}

impl SqliteStore {
    /// Opens (creating or migrating) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, DbError> {
        Ok(Self { db: store::Store::open(dir, StoreOptions::default())? })
    }

    /// The database, for the dashboard and alert queries.
    pub fn db(&self) -> &store::Store {
        &self.db
    }

    /// Applies retention now and every `every` after, until `stopping` turns true.
    pub async fn prune_every(self, every: Duration, mut stopping: tokio::sync::watch::Receiver<bool>) {
        loop {
            let db = self.db.clone();
            match tokio::task::spawn_blocking(move || db.prune(crate::time::now_ms())).await {
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
}

impl Store for SqliteStore {
    fn ingest(&self, results: Vec<RunResult>) -> Result<(Ingested, Vec<RunResult>), StoreError> {
        let (done, fresh) = self.db.ingest_marked(&results).map_err(|error| StoreError(error.to_string()))?;
        let mut results: Vec<Option<RunResult>> = results.into_iter().map(Some).collect();
        let fresh = fresh.into_iter().filter_map(|index| results.get_mut(index).and_then(Option::take)).collect();
        Ok((Ingested { accepted: done.accepted, duplicates: done.duplicates }, fresh))
    }

    fn latest(&self, check: &str, region: &str) -> Option<RunResult> {
        self.db.latest(check, region).unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the latest result");
            None
        })
    }

    fn last_planned(&self) -> Vec<(String, String, i64)> {
        match self.db.latest_runs() {
            Ok(runs) => runs.into_iter().map(|run| (run.check, run.region, run.planned_at_ms)).collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the latest runs");
                Vec::new()
            }
        }
    }

    fn query(&self, query: &Query) -> Vec<RunResult> {
        let query = ResultQuery {
            check: query.check.clone(),
            region: query.region.clone(),
            since_ms: query.since_ms,
            until_ms: None,
            only_failures: false,
            limit: query.limit,
        };
        self.db.results(&query).unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read results");
            Vec::new()
        })
    }

    fn totals(&self) -> Ingested {
        let totals = self.db.totals();
        Ingested {
            accepted: usize::try_from(totals.accepted).unwrap_or(usize::MAX),
            duplicates: usize::try_from(totals.duplicates).unwrap_or(usize::MAX),
        }
    }

    fn set_pairs(&self, _pairs: &[(&str, &str)]) {
        // History of checks that left the config stays until retention removes it.
    }
}
