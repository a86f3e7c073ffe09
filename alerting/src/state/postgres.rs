//! The state in PostgreSQL, for replicated schedulers: the same tables as SQLite (prefixed `alert_`, migrated as
//! component `alerts`), and every write in a transaction that first checks the leader fence
//! ([`probenet_pg::Fence::check`]: it locks the lease row until the commit), so a deposed leader can neither
//! change alert state nor record, claim or settle a notification. Reads are not fenced. Portable SQL only.

use std::future::Future;
use std::sync::Arc;

use deadpool_postgres::Pool;
use probenet_pg::{Blocking, Elector, Fence, Migrations, Tls};
use tokio::sync::watch;
use tokio_postgres::Transaction;

use super::{
    AlertState, Batch, BucketKey, BucketRow, Claim, DELIVERED, FAILED, HISTORY_KEPT, HistoryEntry, PENDING, Pending,
    RESUME_LIMIT, SETTLED_KEPT, Settled, from_sql_id, to_sql_count, to_sql_id,
};
use crate::error::AlertError;
use crate::silence::Silence;
use crate::slo::{Counts, Resolution};

/// The alert state's tables. Released steps are never edited: add a new one.
pub const MIGRATIONS: Migrations = Migrations {
    component: "alerts",
    steps: &[(
        1,
        "CREATE TABLE alert_instances (key TEXT PRIMARY KEY, body TEXT NOT NULL);
         CREATE TABLE alert_history (
             id BIGSERIAL PRIMARY KEY,
             at_ms BIGINT NOT NULL,
             key TEXT NOT NULL,
             body TEXT NOT NULL
         );
         CREATE TABLE alert_silences (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL);
         CREATE TABLE alert_slo_buckets (
             check_name TEXT NOT NULL,
             resolution TEXT NOT NULL,
             start_ms BIGINT NOT NULL,
             total BIGINT NOT NULL,
             bad BIGINT NOT NULL,
             PRIMARY KEY (check_name, resolution, start_ms)
         );
         CREATE TABLE alert_outbox (
             id BIGSERIAL PRIMARY KEY,
             created_ms BIGINT NOT NULL,
             notifier TEXT NOT NULL,
             key TEXT NOT NULL,
             status TEXT NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0,
             last_error TEXT,
             body TEXT NOT NULL
         );
         CREATE INDEX alert_outbox_status ON alert_outbox (status, id);",
    )],
};

/// Where the state gets the fence to write under: called at the start of every write; `None` (this replica does
/// not lead) refuses the write. Build one from an elector with [`fence_source`].
pub type FenceSource = Arc<dyn Fn() -> Option<Fence> + Send + Sync>;

/// The fence of whatever generation `elector`'s task publishes now (`generation`: [`probenet_pg::LeaderHandle::
/// subscribe`]); `None` while this replica follows.
pub fn fence_source(elector: &Elector, generation: watch::Receiver<Option<u64>>) -> FenceSource {
    let elector = elector.clone();
    Arc::new(move || generation.borrow().map(|generation| elector.fence(generation)))
}

/// The PostgreSQL state. Its calls block the calling thread on a small runtime of its own.
pub struct PostgresState {
    pool: Pool,
    fence: FenceSource,
    runtime: Blocking,
}

impl std::fmt::Debug for PostgresState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresState").field("fence", &(self.fence)()).finish_non_exhaustive()
    }
}

fn database(error: tokio_postgres::Error) -> AlertError {
    AlertError::Database(probenet_pg::describe(&error))
}

fn pool_error(error: deadpool_postgres::PoolError) -> AlertError {
    AlertError::Database(format!("no connection: {error}"))
}

impl PostgresState {
    /// Connects to `url` (a pool of at most `max_connections`), brings the `alerts` tables up to date, and
    /// writes under the fence `fence` gives at each write.
    pub fn open(url: &str, tls: Tls, max_connections: usize, fence: FenceSource) -> Result<Self, AlertError> {
        Self::open_with(|| probenet_pg::connect(url, tls, max_connections.max(1)), fence)
    }

    /// [`PostgresState::open`] on a parsed database (its password from a file or the environment).
    pub fn open_database(
        database: &probenet_pg::Database,
        max_connections: usize,
        fence: FenceSource,
    ) -> Result<Self, AlertError> {
        Self::open_with(|| database.pool(max_connections.max(1)), fence)
    }

    fn open_with(
        make: impl FnOnce() -> Result<Pool, probenet_pg::PoolError>,
        fence: FenceSource,
    ) -> Result<Self, AlertError> {
        let runtime = Blocking::new("alert-state", 1).map_err(|error| AlertError::Database(error.to_string()))?;
        // The pool's connections run on this runtime: build it there.
        let pool = {
            let _entered = runtime.handle().enter();
            make().map_err(|error| AlertError::Database(error.to_string()))?
        };
        let migrating = pool.clone();
        runtime.run(async move {
            let mut client = migrating.get().await.map_err(pool_error)?;
            probenet_pg::migrate(&mut client, &MIGRATIONS)
                .await
                .map_err(|error| AlertError::Database(error.to_string()))
        })?;
        Ok(Self { pool, fence, runtime })
    }

    /// Runs a read on a connection of the pool.
    fn read<T, F, Fut>(&self, read: F) -> Result<T, AlertError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, AlertError>> + Send,
    {
        let pool = self.pool.clone();
        self.runtime.run(async move {
            let client = pool.get().await.map_err(pool_error)?;
            read(client).await
        })
    }

    /// Runs `write` in a transaction that first checks the fence, and commits it.
    fn write<T, F>(&self, write: F) -> Result<T, AlertError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t Transaction<'t>) -> WriteFuture<'t, T> + Send + 'static,
    {
        let Some(fence) = (self.fence)() else { return Err(AlertError::NoFence) };
        let pool = self.pool.clone();
        self.runtime.run(async move {
            let mut client = pool.get().await.map_err(pool_error)?;
            let tx = client.transaction().await.map_err(database)?;
            fence.check(&tx).await?;
            let value = write(&tx).await?;
            tx.commit().await.map_err(database)?;
            Ok(value)
        })
    }
}

/// What a fenced write runs, in the transaction after the check.
type WriteFuture<'t, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, AlertError>> + Send + 't>>;

impl AlertState for PostgresState {
    fn instances(&self) -> Result<Vec<String>, AlertError> {
        self.read(|client| async move {
            let rows = client.query("SELECT body FROM alert_instances ORDER BY key", &[]).await.map_err(database)?;
            rows.iter().map(|row| row.try_get(0).map_err(database)).collect()
        })
    }

    fn commit(&self, batch: &Batch) -> Result<Vec<u64>, AlertError> {
        let batch = batch.clone();
        self.write(move |tx| {
            Box::pin(async move {
                for (key, body) in &batch.put {
                    tx.execute(
                        "INSERT INTO alert_instances (key, body) VALUES ($1, $2)
                         ON CONFLICT (key) DO UPDATE SET body = EXCLUDED.body",
                        &[key, body],
                    )
                    .await
                    .map_err(database)?;
                }
                for key in &batch.delete {
                    tx.execute("DELETE FROM alert_instances WHERE key = $1", &[key]).await.map_err(database)?;
                }
                for entry in &batch.history {
                    let body = serde_json::to_string(entry)?;
                    tx.execute(
                        "INSERT INTO alert_history (at_ms, key, body) VALUES ($1, $2, $3)",
                        &[&entry.at_ms, &entry.key, &body],
                    )
                    .await
                    .map_err(database)?;
                }
                if !batch.history.is_empty() {
                    tx.execute(
                        "DELETE FROM alert_history WHERE id <= (SELECT MAX(id) FROM alert_history) - $1",
                        &[&HISTORY_KEPT],
                    )
                    .await
                    .map_err(database)?;
                }
                let mut ids = Vec::with_capacity(batch.notify.len());
                for (notifier, notification) in &batch.notify {
                    let body = serde_json::to_string(notification)?;
                    let row = tx
                        .query_one(
                            "INSERT INTO alert_outbox (created_ms, notifier, key, status, body)
                             VALUES ($1, $2, $3, $4, $5) RETURNING id",
                            &[&batch.at_ms, notifier, &notification.key, &PENDING, &body],
                        )
                        .await
                        .map_err(database)?;
                    ids.push(from_sql_id(row.try_get(0).map_err(database)?));
                }
                Ok(ids)
            })
        })
    }

    fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, AlertError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |client| async move {
            let rows = client
                .query("SELECT body FROM alert_history ORDER BY id DESC LIMIT $1", &[&limit])
                .await
                .map_err(database)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let body: String = row.try_get(0).map_err(database)?;
                out.push(serde_json::from_str(&body)?);
            }
            Ok(out)
        })
    }

    fn add_silence(&self, silence: &Silence) -> Result<u64, AlertError> {
        let silence = silence.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_one("INSERT INTO alert_silences (body) VALUES ('{}') RETURNING id", &[])
                    .await
                    .map_err(database)?;
                let id: i64 = row.try_get(0).map_err(database)?;
                let body = serde_json::to_string(&Silence { id: from_sql_id(id), ..silence })?;
                tx.execute("UPDATE alert_silences SET body = $2 WHERE id = $1", &[&id, &body])
                    .await
                    .map_err(database)?;
                Ok(from_sql_id(id))
            })
        })
    }

    fn put_silence(&self, silence: &Silence) -> Result<(), AlertError> {
        let body = serde_json::to_string(silence)?;
        let id = to_sql_id(silence.id);
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute("UPDATE alert_silences SET body = $2 WHERE id = $1", &[&id, &body])
                    .await
                    .map_err(database)?;
                Ok(())
            })
        })
    }

    fn delete_silence(&self, id: u64) -> Result<(), AlertError> {
        let id = to_sql_id(id);
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute("DELETE FROM alert_silences WHERE id = $1", &[&id]).await.map_err(database)?;
                Ok(())
            })
        })
    }

    fn silences(&self) -> Result<Vec<(u64, Silence)>, AlertError> {
        self.read(|client| async move {
            let rows = client.query("SELECT id, body FROM alert_silences ORDER BY id", &[]).await.map_err(database)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.try_get(0).map_err(database)?;
                let body: String = row.try_get(1).map_err(database)?;
                out.push((from_sql_id(id), serde_json::from_str(&body)?));
            }
            Ok(out)
        })
    }

    fn buckets(&self) -> Result<Vec<BucketRow>, AlertError> {
        self.read(|client| async move {
            let rows = client
                .query("SELECT check_name, resolution, start_ms, total, bad FROM alert_slo_buckets", &[])
                .await
                .map_err(database)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let tag: String = row.try_get(1).map_err(database)?;
                let Some(resolution) = Resolution::from_tag(&tag) else { continue };
                let total: i64 = row.try_get(3).map_err(database)?;
                let bad: i64 = row.try_get(4).map_err(database)?;
                let counts = Counts { total: u64::try_from(total).unwrap_or(0), bad: u64::try_from(bad).unwrap_or(0) };
                out.push((row.try_get(0).map_err(database)?, resolution, row.try_get(2).map_err(database)?, counts));
            }
            Ok(out)
        })
    }

    fn write_buckets(&self, changed: &[BucketRow], dropped: &[BucketKey]) -> Result<(), AlertError> {
        let (changed, dropped) = (changed.to_vec(), dropped.to_vec());
        self.write(move |tx| {
            Box::pin(async move {
                for (check, resolution, start, counts) in &changed {
                    let (total, bad) = (to_sql_count(counts.total), to_sql_count(counts.bad));
                    tx.execute(
                        "INSERT INTO alert_slo_buckets (check_name, resolution, start_ms, total, bad)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (check_name, resolution, start_ms)
                         DO UPDATE SET total = EXCLUDED.total, bad = EXCLUDED.bad",
                        &[check, &resolution.tag(), start, &total, &bad],
                    )
                    .await
                    .map_err(database)?;
                }
                for (check, resolution, start) in &dropped {
                    tx.execute(
                        "DELETE FROM alert_slo_buckets WHERE check_name = $1 AND resolution = $2 AND start_ms = $3",
                        &[check, &resolution.tag(), start],
                    )
                    .await
                    .map_err(database)?;
                }
                Ok(())
            })
        })
    }

    fn undelivered(&self) -> Result<Vec<Pending>, AlertError> {
        self.read(|client| async move {
            let rows = client
                .query(
                    "SELECT id, notifier, attempts, created_ms, body FROM alert_outbox
                     WHERE status = $1 ORDER BY id LIMIT $2",
                    &[&PENDING, &RESUME_LIMIT],
                )
                .await
                .map_err(database)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.try_get(0).map_err(database)?;
                let attempts: i32 = row.try_get(2).map_err(database)?;
                let body: String = row.try_get(4).map_err(database)?;
                out.push(Pending {
                    id: from_sql_id(id),
                    notifier: row.try_get(1).map_err(database)?,
                    notification: serde_json::from_str(&body)?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    created_ms: row.try_get(3).map_err(database)?,
                });
            }
            Ok(out)
        })
    }

    fn claim(&self, id: u64, max_attempts: u32) -> Result<Claim, AlertError> {
        let id = to_sql_id(id);
        let max = i32::try_from(max_attempts.max(1)).unwrap_or(i32::MAX);
        self.write(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt("SELECT status, attempts FROM alert_outbox WHERE id = $1 FOR UPDATE", &[&id])
                    .await
                    .map_err(database)?;
                let Some(row) = row else { return Ok(Claim::Settled) };
                let status: String = row.try_get(0).map_err(database)?;
                let attempts: i32 = row.try_get(1).map_err(database)?;
                if status != PENDING {
                    return Ok(Claim::Settled);
                }
                if attempts >= max {
                    tx.execute(
                        "UPDATE alert_outbox SET status = $2, last_error = $3 WHERE id = $1",
                        &[&id, &FAILED, &"out of attempts"],
                    )
                    .await
                    .map_err(database)?;
                    return Ok(Claim::GaveUp);
                }
                tx.execute("UPDATE alert_outbox SET attempts = attempts + 1 WHERE id = $1", &[&id])
                    .await
                    .map_err(database)?;
                Ok(Claim::Send(u32::try_from(attempts).unwrap_or(0) + 1))
            })
        })
    }

    fn settle(&self, id: u64, outcome: &Settled) -> Result<(), AlertError> {
        let id = to_sql_id(id);
        let (status, error) = match outcome {
            Settled::Delivered => (DELIVERED, None),
            Settled::Failed(error) => (FAILED, Some(error.clone())),
        };
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE alert_outbox SET status = $2, last_error = COALESCE($3, last_error)
                     WHERE id = $1 AND status = $4",
                    &[&id, &status, &error, &PENDING],
                )
                .await
                .map_err(database)?;
                tx.execute(
                    "DELETE FROM alert_outbox WHERE status <> $1 AND id <= (SELECT MAX(id) FROM alert_outbox) - $2",
                    &[&PENDING, &SETTLED_KEPT],
                )
                .await
                .map_err(database)?;
                Ok(())
            })
        })
    }
}
