//! The PostgreSQL backend of the [`Store`] trait: the tables of the embedded store in a database that
//! several scheduler replicas share, each replica with its own [`PostgresStore`]. Ingest is one transaction
//! per batch that locks the batch's pairs (rows of `store_pairs`, in sorted order), so overlapping batches
//! from several replicas store each result once and keep rollups and incidents exact; windows are answered
//! from the rollups by the same plan as SQLite's. Design: `docs/store.md`, "The PostgreSQL backend".

mod ingest;
mod ledger;
mod query;
mod retention;
pub mod schema;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use deadpool_postgres::{Object, Pool};
use probenet_checks::wire::RunResult;
use probenet_pg::{Blocking, Tls};
use tokio_postgres::error::SqlState;

use super::{
    Bucket, HourLatency, Incident, Ingested, Latency, LatencyPoint, LatestRun, LedgerHour, LedgerSum, Names, Pair,
    Position, Pruned, ResultQuery, Store, StoreError, StoreOptions, StoredPage, Uptime, UptimeQuery,
};

/// Worker threads of a store's own runtime (the calls block their caller; the runtime only drives sockets).
const RUNTIME_THREADS: usize = 2;

/// A failed database step: what was being done and the driver's error, kept whole until the caller knows
/// whether it is worth a retry.
#[derive(Debug)]
pub(crate) struct Failure {
    what: String,
    error: FailureKind,
}

#[derive(Debug)]
enum FailureKind {
    Db(tokio_postgres::Error),
    Pool(String),
    Store(StoreError),
}

impl Failure {
    /// A mapper for `map_err` naming what was being done.
    pub(crate) fn db(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Failure {
        let what = what.into();
        move |error| Failure { what, error: FailureKind::Db(error) }
    }

    /// Whether the whole transaction may simply run again: a serialization failure or a deadlock.
    fn retryable(&self) -> bool {
        match &self.error {
            FailureKind::Db(error) => matches!(
                error.code(),
                Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
            ),
            _ => false,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure { what: String::new(), error: FailureKind::Store(error) }
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure.error {
            FailureKind::Db(error) => {
                StoreError::Postgres { what: failure.what, message: probenet_pg::describe(&error) }
            }
            FailureKind::Pool(message) => StoreError::Postgres { what: failure.what, message },
            FailureKind::Store(error) => error,
        }
    }
}

/// What the store's calls share (moved into the futures its runtime runs).
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) options: StoreOptions,
    /// Interned names: ids never change once given, so a hit is always right; a miss asks the database
    /// (another replica may have interned the name).
    pub(crate) names: RwLock<Names>,
    pub(crate) accepted: AtomicU64,
    pub(crate) duplicates: AtomicU64,
}

impl Shared {
    /// A pooled connection (the pool drops connections the server closed and makes new ones).
    pub(crate) async fn client(&self) -> Result<Object, Failure> {
        self.pool.get().await.map_err(|error| Failure {
            what: "connecting to PostgreSQL".into(),
            error: FailureKind::Pool(match &error {
                deadpool_postgres::PoolError::Backend(db) => probenet_pg::describe(db),
                other => other.to_string(),
            }),
        })
    }

    /// A known name's id from the cache.
    pub(crate) fn cached_id(&self, name: &str, check: bool) -> Result<Option<i64>, StoreError> {
        let names = self.names.read().map_err(|_| StoreError::Poisoned)?;
        Ok((if check { &names.checks } else { &names.regions }).get(name).copied())
    }

    /// Remembers interned names.
    pub(crate) fn remember(
        &self,
        check: bool,
        found: impl IntoIterator<Item = (String, i64)>,
    ) -> Result<(), StoreError> {
        let mut names = self.names.write().map_err(|_| StoreError::Poisoned)?;
        for (name, id) in found {
            if check {
                names.check_names.insert(id, name.clone());
                names.checks.insert(name, id);
            } else {
                names.region_names.insert(id, name.clone());
                names.regions.insert(name, id);
            }
        }
        Ok(())
    }
}

/// The result store in PostgreSQL, for schedulers that share one database (`docs/ha.md`). Each replica opens
/// its own; clones share the connection pool. Synchronous like every [`Store`]: each call runs its queries on
/// the store's own small runtime and waits, so it may be called from any thread (async code goes through
/// `spawn_blocking`, as for SQLite).
#[derive(Clone)]
pub struct PostgresStore {
    runtime: Arc<Blocking>,
    shared: Arc<Shared>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore").field("options", &self.shared.options).finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`), brings the store's tables to this build's
    /// schema (component `store` in `schema_migrations`) and returns the store. A database whose store schema is
    /// newer than this build is refused ([`StoreError::NewerSchema`]) before anything is written. The pool holds
    /// at most `options.readers + 2` connections.
    pub fn open(url: &str, tls: Tls, options: StoreOptions) -> Result<PostgresStore, StoreError> {
        let size = options.readers.max(1) + 2;
        Self::open_with(|| probenet_pg::connect(url, tls, size), options)
    }

    /// [`PostgresStore::open`] on a parsed database (its password from a file or the environment).
    pub fn open_database(database: &probenet_pg::Database, options: StoreOptions) -> Result<PostgresStore, StoreError> {
        let size = options.readers.max(1) + 2;
        Self::open_with(|| database.pool(size), options)
    }

    fn open_with(
        make: impl FnOnce() -> Result<deadpool_postgres::Pool, probenet_pg::PoolError>,
        options: StoreOptions,
    ) -> Result<PostgresStore, StoreError> {
        let runtime = Blocking::new("probenet-store-pg", RUNTIME_THREADS)
            .map_err(StoreError::io("starting the PostgreSQL store's runtime"))?;
        let pool = {
            let _entered = runtime.handle().enter();
            make().map_err(|error| StoreError::Postgres {
                what: "opening the PostgreSQL store".into(),
                message: error.to_string(),
            })?
        };
        let shared = Arc::new(Shared {
            pool,
            options,
            names: RwLock::new(Names::default()),
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        });
        let store = PostgresStore { runtime: Arc::new(runtime), shared };
        store.run(|shared| async move {
            let mut client = shared.client().await?;
            schema::migrate(&mut client).await
        })?;
        Ok(store)
    }

    /// The options it was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.shared.options
    }

    /// Runs `work` on the store's runtime and waits for it.
    fn run<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
        T: Send + 'static,
    {
        self.runtime.run(work(self.shared.clone())).map_err(StoreError::from)
    }
}

/// Converts a count kept as `u64` for the caller.
fn load(counter: &AtomicU64) -> usize {
    usize::try_from(counter.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
}

impl Store for PostgresStore {
    fn ingest(&self, results: Vec<RunResult>) -> Result<(Ingested, Vec<RunResult>), StoreError> {
        if results.is_empty() {
            return Ok((Ingested::default(), Vec::new()));
        }
        let (done, fresh, results) = self.run(move |shared| async move {
            let (done, fresh) = ingest::ingest(&shared, &results).await?;
            Ok((done, fresh, results))
        })?;
        self.shared.accepted.fetch_add(done.accepted as u64, Ordering::Relaxed);
        self.shared.duplicates.fetch_add(done.duplicates as u64, Ordering::Relaxed);
        let mut results: Vec<Option<RunResult>> = results.into_iter().map(Some).collect();
        let fresh = fresh.into_iter().filter_map(|index| results.get_mut(index).and_then(Option::take)).collect();
        Ok((done, fresh))
    }

    fn totals(&self) -> Ingested {
        Ingested { accepted: load(&self.shared.accepted), duplicates: load(&self.shared.duplicates) }
    }

    fn latest_runs(&self) -> Result<Vec<LatestRun>, StoreError> {
        self.run(|shared| async move { query::latest_runs(&shared).await })
    }

    fn results(&self, query: &ResultQuery) -> Result<Vec<RunResult>, StoreError> {
        let query = query.clone();
        self.run(|shared| async move { query::results(&shared, &query).await })
    }

    fn pairs(&self) -> Result<Vec<Pair>, StoreError> {
        self.run(|shared| async move { query::pairs(&shared).await })
    }

    fn uptime(&self, query: &UptimeQuery) -> Result<Vec<Uptime>, StoreError> {
        let query = query.clone();
        self.run(|shared| async move { query::uptime(&shared, &query).await })
    }

    fn uptime_buckets(
        &self,
        check: &str,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let (check, region) = (check.to_owned(), region.map(str::to_owned));
        self.run(move |shared| async move {
            query::uptime_buckets(&shared, &check, region.as_deref(), from_ms, to_ms, bucket_ms).await
        })
    }

    fn latency(&self, check: &str, region: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<Latency>, StoreError> {
        let (check, region) = (check.to_owned(), region.map(str::to_owned));
        self.run(move |shared| async move { query::latency(&shared, &check, region.as_deref(), from_ms, to_ms).await })
    }

    fn latency_series(
        &self,
        check: &str,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<LatencyPoint>, StoreError> {
        let (check, region) = (check.to_owned(), region.map(str::to_owned));
        self.run(move |shared| async move {
            query::latency_series(&shared, &check, region.as_deref(), from_ms, to_ms, step_ms).await
        })
    }

    fn hourly_latency(&self, from_ms: i64, to_ms: i64) -> Result<Vec<HourLatency>, StoreError> {
        self.run(move |shared| async move { query::hourly_latency(&shared, from_ms, to_ms).await })
    }

    fn incidents(
        &self,
        check: Option<&str>,
        region: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Incident>, StoreError> {
        let (check, region) = (check.map(str::to_owned), region.map(str::to_owned));
        self.run(move |shared| async move {
            query::incidents(&shared, check.as_deref(), region.as_deref(), from_ms, to_ms).await
        })
    }

    fn artifact(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !super::artifacts::is_plain(path) {
            return Ok(None);
        }
        let path = path.to_owned();
        self.run(move |shared| async move { query::artifact(&shared, &path).await })
    }

    fn write_ledger_hours(&self, hours: &[LedgerHour]) -> Result<(), StoreError> {
        let hours = hours.to_vec();
        self.run(move |shared| async move { ledger::write(&shared, &hours).await })
    }

    fn ledger_sums(&self, check: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<LedgerSum>, StoreError> {
        let check = check.map(str::to_owned);
        self.run(move |shared| async move { ledger::sums(&shared, check.as_deref(), from_ms, to_ms).await })
    }

    fn ledger_days(&self, check: Option<&str>, from_ms: i64, to_ms: i64) -> Result<Vec<LedgerSum>, StoreError> {
        let check = check.map(str::to_owned);
        self.run(move |shared| async move { ledger::days(&shared, check.as_deref(), from_ms, to_ms).await })
    }

    fn ledger_last_hour(&self) -> Result<Option<i64>, StoreError> {
        self.run(|shared| async move { ledger::last_hour(&shared).await })
    }

    fn prune_keeping(&self, now_ms: i64, raw_floor_ms: Option<i64>) -> Result<Pruned, StoreError> {
        self.run(move |shared| async move { retention::prune(&shared, now_ms, raw_floor_ms).await })
    }

    fn stored_since(&self, from_ms: i64, limit: usize) -> Result<Vec<(i64, RunResult)>, StoreError> {
        self.run(move |shared| async move { query::stored_since(&shared, from_ms, limit).await })
    }

    fn stored_after(&self, after: Position, limit: usize) -> Result<StoredPage, StoreError> {
        self.run(move |shared| async move { query::stored_after(&shared, after, limit).await })
    }

    fn stored_end(&self) -> Result<Position, StoreError> {
        self.run(|shared| async move { query::stored_end(&shared).await })
    }

    fn cursor(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let name = name.to_owned();
        self.run(move |shared| async move { query::cursor(&shared, &name).await })
    }

    fn save_cursor(&self, name: &str, at: Position) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.run(move |shared| async move { query::save_cursor(&shared, &name, at).await })
    }
}

/// Waits a little before the `failed`th retry of a transaction that hit a serialization failure or a deadlock,
/// so the other transaction can finish.
pub(crate) async fn pause(failure: &Failure, failed: usize) {
    tracing::debug!(what = %failure.what, failed, "store transaction retried");
    tokio::time::sleep(std::time::Duration::from_millis(5 * failed as u64)).await;
}
