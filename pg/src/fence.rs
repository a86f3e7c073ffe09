//! Writes fenced by the lease generation: a leader-only write runs in a transaction that first locks the lease
//! row and checks it is still ours under that generation and unexpired, so a paused or cut-off old leader's
//! write is refused once a newer generation exists, and a takeover waits for a fenced write in flight.

use std::future::Future;
use std::pin::Pin;

use deadpool_postgres::Pool;
use tokio_postgres::Transaction;

use crate::lease::{Lease, from_sql};

/// Why a fenced write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FencedError {
    /// The lease moved on: another holder or a newer generation. The write was not made; this replica is no
    /// longer leader under `generation` and must not retry it.
    #[error("fenced: generation {generation} is no longer the lease's (now {current:?} held by {holder:?})")]
    Fenced {
        /// The generation the write was made under.
        generation: u64,
        /// The lease's generation now (`None`: no lease row).
        current: Option<u64>,
        /// The lease's holder now.
        holder: Option<String>,
    },
    /// The lease is still ours under this generation but ran out by the database clock: the write was not
    /// made (another replica may take over at any moment).
    #[error("fenced: the lease of generation {generation} has expired")]
    Expired {
        /// The generation the write was made under.
        generation: u64,
    },
    /// No connection could be had.
    #[error("database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed (the write's own, or the check); the transaction was rolled back.
    #[error("database: {}", crate::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}

impl FencedError {
    /// True when the lease refused the write (as opposed to a database failure that may be retried).
    pub fn is_fenced(&self) -> bool {
        match self {
            Self::Fenced { .. } | Self::Expired { .. } => true,
            Self::Pool(_) | Self::Database(_) => false,
        }
    }
}

/// A leader's right to write: the lease it holds and the generation it leads under. Stores that keep
/// leader-only state (the alert engine's) take one and check it in every write's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease.
    pub lease: std::sync::Arc<Lease>,
    /// The generation the writes are made under.
    pub generation: u64,
}

impl Fence {
    /// [`Lease::check`] under this generation, inside the caller's transaction.
    pub async fn check(&self, tx: &Transaction<'_>) -> Result<(), FencedError> {
        self.lease.check(tx, self.generation).await
    }
}

/// What a fenced write gets: the transaction to write in, after the lease check.
pub type FencedFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 't>>;

const CHECK: &str = "\
SELECT holder, generation, expires_at > now() FROM scheduler_lease WHERE name = $1 FOR UPDATE";

impl Lease {
    /// Runs `write` in one transaction that commits only if, when it started, the lease row was ours under
    /// `generation` and unexpired. The row stays locked until the commit, so a takeover (which bumps the
    /// generation) is ordered after this write, never beside it. `write` returns a boxed future:
    /// `|tx| Box::pin(async move { tx.execute(...).await?; Ok(()) })`.
    pub async fn fenced<T, F>(&self, pool: &Pool, generation: u64, write: F) -> Result<T, FencedError>
    where
        F: for<'t> FnOnce(&'t Transaction<'t>) -> FencedFuture<'t, T>,
    {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        self.check(&tx, generation).await?;
        let value = write(&tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// The check alone, inside a caller's transaction: locks the lease row until that transaction ends.
    pub async fn check(&self, tx: &Transaction<'_>, generation: u64) -> Result<(), FencedError> {
        let row = tx.query_opt(CHECK, &[&self.name]).await?;
        let Some(row) = row else {
            return Err(FencedError::Fenced { generation, current: None, holder: None });
        };
        let holder: String = row.try_get(0)?;
        let current = from_sql(row.try_get(1)?);
        let unexpired: bool = row.try_get(2)?;
        if holder != self.holder || current != generation {
            return Err(FencedError::Fenced { generation, current: Some(current), holder: Some(holder) });
        }
        if !unexpired {
            return Err(FencedError::Expired { generation });
        }
        Ok(())
    }
}
