//! The task that keeps the lease: renews it every lease/3, publishes the generation this replica leads under
//! (`None`: follower), steps down at once on an error, a loss or its local deadline (even while a database call
//! hangs), and releases the lease on a clean stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::Transaction;

use crate::fence::{FencedError, FencedFuture};
use crate::lease::{Leadership, Lease};

/// How long a clean stop waits for the release before giving up (the lease then runs out by itself).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);
/// A follower that saw the lease's remaining time wakes this much after it, to find it expired.
const AFTER_EXPIRY: Duration = Duration::from_millis(20);

/// Keeps a [`Lease`] on a pool, and runs the writes fenced by it.
#[derive(Debug, Clone)]
pub struct Elector {
    lease: Arc<Lease>,
    pool: Pool,
}

/// The running elector. [`stop`](Self::stop) steps down and releases; dropping it instead is a crash (the task
/// ends, the generation reads `None`, and the lease runs out in the database by itself).
#[derive(Debug)]
pub struct LeaderHandle {
    generation: watch::Receiver<Option<u64>>,
    publish: Arc<watch::Sender<Option<u64>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Elector {
    /// An elector for `lease` on `pool` (it takes one connection at a time from it).
    pub fn new(lease: Lease, pool: Pool) -> Self {
        Self { lease: Arc::new(lease), pool }
    }

    /// The lease it keeps.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The right to write under `generation` (from [`LeaderHandle::generation`]).
    pub fn fence(&self, generation: u64) -> crate::Fence {
        crate::Fence { lease: self.lease.clone(), generation }
    }

    /// The pool it renews on.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs a leader-only write under `generation` (from [`LeaderHandle::generation`]), fenced by this lease:
    /// see [`Lease::fenced`].
    pub async fn fenced<T, F>(&self, generation: u64, write: F) -> Result<T, FencedError>
    where
        F: for<'t> FnOnce(&'t Transaction<'t>) -> FencedFuture<'t, T>,
    {
        self.lease.fenced(&self.pool, generation, write).await
    }

    /// Starts the task on the current runtime.
    pub fn spawn(&self) -> LeaderHandle {
        let (publish, generation) = watch::channel(None);
        let publish = Arc::new(publish);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(self.clone().run(publish.clone(), stopped));
        LeaderHandle { generation, publish, stop: Some(stop), task: Some(task) }
    }

    async fn run(self, publish: Arc<watch::Sender<Option<u64>>>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
        let period = self.lease.renew_every();
        let mut held: Option<Leadership> = None;
        loop {
            let started = Instant::now();
            // A leader's attempt may last until its local deadline, a follower's one period.
            let limit = held.map_or(started + period, |leadership| leadership.valid_until);
            let attempt = tokio::select! {
                outcome = self.attempt(held.map(|leadership| leadership.generation), limit) => outcome,
                _ = &mut stopped => break,
            };
            let mut next = started + period;
            match attempt {
                Ok(Some(leadership)) => {
                    if held.map(|old| old.generation) != Some(leadership.generation) {
                        tracing::info!(
                            holder = %self.lease.holder, generation = leadership.generation,
                            "leader lease acquired: leading"
                        );
                    }
                    held = Some(leadership);
                    publish.send_if_modified(|current| {
                        let changed = *current != Some(leadership.generation);
                        *current = Some(leadership.generation);
                        changed
                    });
                }
                Ok(None) => {
                    step_down(&publish, &mut held, &self.lease, "the lease is held by another replica");
                    if let Some(remaining) = self.remaining(started + period).await {
                        next = next.min(Instant::now() + remaining + AFTER_EXPIRY);
                    }
                }
                Err(reason) => step_down(&publish, &mut held, &self.lease, &reason),
            }
            tokio::select! {
                () = tokio::time::sleep_until(next.into()) => {}
                _ = &mut stopped => break,
            }
        }
        if let Some(leadership) = held.take() {
            publish.send_replace(None);
            self.release(leadership.generation).await;
        }
    }

    /// One take-or-renew within `limit`; `Err` carries why it failed. A connection whose call timed out is
    /// taken out of the pool (its state is unknown).
    async fn attempt(&self, held: Option<u64>, limit: Instant) -> Result<Option<Leadership>, String> {
        let mut client = tokio::time::timeout_at(limit.into(), self.pool.get())
            .await
            .map_err(|_| "no database connection before the deadline".to_string())?
            .map_err(|error| format!("database connection: {error}"))?;
        match tokio::time::timeout_at(limit.into(), self.lease.try_acquire_or_renew(&mut client, held)).await {
            Ok(Ok(leadership)) => Ok(leadership),
            Ok(Err(error)) => Err(format!("renewing the lease: {}", crate::describe(&error))),
            Err(_) => {
                drop(Object::take(client));
                Err("the database did not answer before the deadline".to_string())
            }
        }
    }

    /// The lease's remaining time by the database clock, if it can be read before `limit`.
    async fn remaining(&self, limit: Instant) -> Option<Duration> {
        let read = async {
            let client = self.pool.get().await.ok()?;
            let state = self.lease.state(&client).await.ok()??;
            Some(state.remaining)
        };
        tokio::time::timeout_at(limit.into(), read).await.ok().flatten()
    }

    async fn release(&self, generation: u64) {
        let release = async {
            let client = self.pool.get().await.map_err(|error| error.to_string())?;
            self.lease.release(&client, generation).await.map_err(|error| crate::describe(&error))
        };
        match tokio::time::timeout(RELEASE_TIMEOUT, release).await {
            Ok(Ok(true)) => tracing::info!(holder = %self.lease.holder, generation, "leader lease released"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(generation, %error, "leader lease not released: it will run out"),
            Err(_) => tracing::warn!(generation, "leader lease not released in time: it will run out"),
        }
    }
}

fn step_down(publish: &watch::Sender<Option<u64>>, held: &mut Option<Leadership>, lease: &Lease, reason: &str) {
    if let Some(leadership) = held.take() {
        publish.send_replace(None);
        tracing::warn!(holder = %lease.holder, generation = leadership.generation, reason, "stepped down");
    }
}

impl LeaderHandle {
    /// The generation this replica leads under, `None` while it follows.
    pub fn generation(&self) -> Option<u64> {
        *self.generation.borrow()
    }

    /// True while this replica leads (for the `probenet_scheduler_leader` gauge).
    pub fn is_leader(&self) -> bool {
        self.generation().is_some()
    }

    /// A receiver of the generation, to wait for changes (`changed()`) in leader-only tasks.
    pub fn subscribe(&self) -> watch::Receiver<Option<u64>> {
        self.generation.clone()
    }

    /// Steps down and releases the lease (so another replica takes over at once), then ends the task.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.publish.send_replace(None);
    }
}

impl Drop for LeaderHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.publish.send_replace(None);
    }
}
