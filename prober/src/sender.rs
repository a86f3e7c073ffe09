//! The result pipeline: results are batched (up to 500 or 1 s), posted to the scheduler one batch at a
//! time, and forgotten only once acknowledged. While the scheduler is unreachable, batches go to the spool,
//! which is replayed oldest first as soon as it is reachable again. Every result dropped anywhere is counted
//! and logged.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use probenet_checks::wire::{Ack, RunResult};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::{Backoff, CallError, Client, encode_batch};
use crate::spool::Spool;
use crate::stats::{Counters, add};

/// The most results in one batch.
pub const BATCH_MAX: usize = 500;
/// The longest a result waits for its batch to fill.
pub const BATCH_WAIT: Duration = Duration::from_secs(1);
/// Results held in memory when neither the scheduler nor the spool takes them; beyond, the oldest are
/// dropped and counted.
pub const MEMORY_MAX_RESULTS: usize = 20_000;
/// Capacity of the queue between the runs and the sender.
pub const QUEUE_CAPACITY: usize = 16_384;

/// What the sender needs.
pub(crate) struct Parts {
    pub client: Arc<Client>,
    pub spool: Option<Arc<Mutex<Spool>>>,
    pub counters: Arc<Counters>,
    pub results: mpsc::Receiver<RunResult>,
    pub registered: watch::Receiver<bool>,
    /// Sent once at shutdown with the time left to flush.
    pub finish: oneshot::Receiver<Duration>,
    /// Where a fatal answer (401/403) is reported.
    pub fatal: mpsc::Sender<CallError>,
    /// The prober's own outputs (exporters `on: probers`), offered every result as it comes.
    pub outputs: Arc<crate::outputs::Outputs>,
}

enum Source {
    Memory,
    Spool(u64),
}

struct Job {
    source: Source,
    results: Vec<RunResult>,
}

enum Event {
    Result(Option<Box<RunResult>>),
    BatchDue,
    PostDone(Result<Ack, CallError>),
    Wake,
    Registered,
    RegisteredClosed,
    Finish(Duration),
}

/// The default time to flush when the shutdown signal is lost.
const DEFAULT_FLUSH: Duration = Duration::from_secs(5);

pub(crate) struct Sender {
    parts: Parts,
    pending: Vec<RunResult>,
    pending_deadline: Option<Instant>,
    memory: VecDeque<Vec<RunResult>>,
    memory_results: usize,
    online: bool,
    retry_at: Instant,
    backoff: Backoff,
    in_flight: Option<(Job, JoinHandle<Result<Ack, CallError>>)>,
    fatal: bool,
    results_open: bool,
    registered_open: bool,
    spool_failing: bool,
}

impl Sender {
    /// Publishes how many results wait in memory (the batch being filled, the batch in flight when it came from
    /// memory, and the backlog), for `/metrics`.
    fn note_backlog(&self) {
        let in_flight = match &self.in_flight {
            Some((Job { source: Source::Memory, results }, _)) => results.len(),
            _ => 0,
        };
        let held = self.pending.len() + self.memory_results + in_flight;
        self.parts.counters.results_in_memory.store(u64::try_from(held).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn new(parts: Parts) -> Self {
        Self {
            parts,
            pending: Vec::new(),
            pending_deadline: None,
            memory: VecDeque::new(),
            memory_results: 0,
            online: true,
            retry_at: Instant::now(),
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
            in_flight: None,
            fatal: false,
            results_open: true,
            registered_open: true,
            spool_failing: false,
        }
    }

    /// Runs until the finish signal, then flushes.
    pub async fn run(mut self) {
        loop {
            self.maybe_start_post().await;
            self.note_backlog();
            let event = self.next_event().await;
            match event {
                Event::Result(Some(result)) => {
                    self.parts.outputs.publish(&result);
                    if self.pending.is_empty() {
                        self.pending_deadline = Some(Instant::now() + BATCH_WAIT);
                    }
                    self.pending.push(*result);
                    if self.pending.len() >= BATCH_MAX {
                        self.seal().await;
                    }
                }
                Event::Result(None) => self.results_open = false,
                Event::BatchDue => self.seal().await,
                Event::PostDone(result) => self.post_done(result).await,
                Event::Wake => {}
                Event::Registered => {
                    // Registered again: the scheduler is back, replay now rather than at the next backoff.
                    if *self.parts.registered.borrow() {
                        self.retry_at = Instant::now();
                        self.backoff.reset();
                    }
                }
                Event::RegisteredClosed => self.registered_open = false,
                Event::Finish(limit) => {
                    self.flush(limit).await;
                    return;
                }
            }
        }
    }

    async fn next_event(&mut self) -> Event {
        let waiting_retry = !self.online && self.in_flight.is_none() && !self.fatal;
        let registered = *self.parts.registered.borrow();
        let pending_deadline = self.pending_deadline;
        let in_flight = self.in_flight.as_mut().map(|(_, handle)| handle);
        tokio::select! {
            biased;
            limit = &mut self.parts.finish => Event::Finish(limit.unwrap_or(DEFAULT_FLUSH)),
            done = async {
                match in_flight {
                    Some(handle) => handle.await,
                    None => std::future::pending().await,
                }
            } => Event::PostDone(done.unwrap_or_else(|error| Err(CallError::Transient(format!("post task failed: {error}"))))),
            result = self.parts.results.recv(), if self.results_open => Event::Result(result.map(Box::new)),
            () = sleep_until_opt(pending_deadline), if pending_deadline.is_some() => Event::BatchDue,
            () = tokio::time::sleep_until(self.retry_at), if waiting_retry => Event::Wake,
            changed = self.parts.registered.changed(), if !registered && self.registered_open => {
                if changed.is_ok() { Event::Registered } else { Event::RegisteredClosed }
            }
        }
    }

    async fn maybe_start_post(&mut self) {
        if self.in_flight.is_some() || self.fatal || !*self.parts.registered.borrow() {
            return;
        }
        if !self.online && Instant::now() < self.retry_at {
            return;
        }
        if let Some(job) = self.next_job().await {
            self.post(job);
        }
    }

    fn post(&mut self, mut job: Job) {
        let body = encode_batch(self.parts.client.name(), &mut job.results);
        let client = self.parts.client.clone();
        let handle = tokio::spawn(async move { client.results(body).await });
        self.in_flight = Some((job, handle));
    }

    /// The next batch to send: the spool's oldest segment first (older results), then memory.
    async fn next_job(&mut self) -> Option<Job> {
        while let Some(spool) = self.parts.spool.clone() {
            let read = blocking(spool, |spool| {
                let segment = spool.oldest()?;
                spool.pin(Some(segment.seq));
                Some((segment, spool.read(segment.seq)))
            })
            .await
            .flatten();
            let Some((segment, read)) = read else { break };
            match read {
                Ok((results, bad)) => {
                    if bad > 0 {
                        add(&self.parts.counters.spool_dropped, bad);
                        tracing::error!(segment = segment.seq, bad, "spool segment holds unreadable results; dropped");
                    }
                    if !results.is_empty() {
                        return Some(Job { source: Source::Spool(segment.seq), results });
                    }
                    self.remove_segment(segment.seq).await;
                }
                Err(error) => {
                    add(&self.parts.counters.spool_dropped, segment.results);
                    tracing::error!(
                        segment = segment.seq,
                        results = segment.results,
                        "cannot read a spool segment ({error}); dropped"
                    );
                    self.remove_segment(segment.seq).await;
                }
            }
        }
        let results = self.memory.pop_front()?;
        self.memory_results -= results.len();
        Some(Job { source: Source::Memory, results })
    }

    async fn post_done(&mut self, result: Result<Ack, CallError>) {
        let Some((job, _)) = self.in_flight.take() else { return };
        let count = job.results.len();
        match result {
            Ok(ack) => {
                add(&self.parts.counters.results_sent, count);
                add(&self.parts.counters.results_duplicate, ack.duplicates);
                if ack.accepted + ack.duplicates != count {
                    tracing::warn!(
                        sent = count,
                        accepted = ack.accepted,
                        duplicates = ack.duplicates,
                        "the acknowledgement does not add up"
                    );
                }
                if let Source::Spool(seq) = job.source {
                    add(&self.parts.counters.results_replayed, count);
                    self.remove_segment(seq).await;
                }
                if !self.online {
                    tracing::info!("the scheduler takes results again; replaying the spool");
                }
                self.online = true;
                self.backoff.reset();
            }
            Err(error @ CallError::Unauthorized(_)) => {
                tracing::error!("{error}; results go to the spool");
                self.fatal = true;
                self.requeue(job).await;
                self.spill().await;
                let _ = self.parts.fatal.try_send(error);
            }
            Err(error @ CallError::Rejected { .. }) => {
                add(&self.parts.counters.results_rejected, count);
                tracing::error!(results = count, "{error}; batch dropped");
                if let Source::Spool(seq) = job.source {
                    self.remove_segment(seq).await;
                }
            }
            Err(error @ (CallError::Transient(_) | CallError::Unknown(_))) => {
                if self.online {
                    tracing::warn!("cannot send results ({error}); they go to the spool until the scheduler is back");
                }
                self.online = false;
                self.retry_at = Instant::now() + self.backoff.next_delay();
                self.requeue(job).await;
                self.spill().await;
            }
        }
    }

    /// Puts a batch that was not acknowledged back where it came from.
    async fn requeue(&mut self, job: Job) {
        match job.source {
            Source::Memory => {
                self.memory_results += job.results.len();
                self.memory.push_front(job.results);
            }
            Source::Spool(_) => {
                if let Some(spool) = self.parts.spool.clone() {
                    blocking(spool, |spool| spool.pin(None)).await;
                }
            }
        }
    }

    /// Closes the pending batch: to memory while the scheduler takes results, else to the spool.
    async fn seal(&mut self) {
        self.pending_deadline = None;
        let batch = std::mem::take(&mut self.pending);
        self.store(batch).await;
    }

    async fn store(&mut self, batch: Vec<RunResult>) {
        if batch.is_empty() {
            return;
        }
        if self.online && !self.fatal {
            self.memory_results += batch.len();
            self.memory.push_back(batch);
        } else if let Err(batch) = self.write_spool(batch).await {
            self.memory_results += batch.len();
            self.memory.push_back(batch);
        }
        self.bound_memory().await;
    }

    /// Keeps memory under its bound: the oldest batches go to the spool, or are dropped if it fails.
    async fn bound_memory(&mut self) {
        while self.memory_results > MEMORY_MAX_RESULTS {
            let Some(batch) = self.memory.pop_front() else { break };
            self.memory_results -= batch.len();
            if let Err(batch) = self.write_spool(batch).await {
                add(&self.parts.counters.results_dropped, batch.len());
                tracing::error!(
                    results = batch.len(),
                    "results dropped: the in-memory backlog is full and the spool cannot take them"
                );
            }
        }
    }

    /// Moves every batch held in memory to the spool, oldest first; what the spool refuses stays in memory.
    async fn spill(&mut self) {
        while let Some(batch) = self.memory.pop_front() {
            self.memory_results -= batch.len();
            if let Err(batch) = self.write_spool(batch).await {
                self.memory_results += batch.len();
                self.memory.push_front(batch);
                break;
            }
        }
    }

    /// Writes a batch to the spool; gives it back if there is no spool or the write fails.
    async fn write_spool(&mut self, batch: Vec<RunResult>) -> Result<(), Vec<RunResult>> {
        let Some(spool) = self.parts.spool.clone() else { return Err(batch) };
        let count = batch.len();
        let written = blocking(spool, move |spool| {
            let pushed = spool.push(&batch);
            (pushed, spool.bytes(), batch)
        })
        .await;
        let Some((pushed, bytes, batch)) = written else {
            add(&self.parts.counters.results_dropped, count);
            tracing::error!(results = count, "the spool task failed; results dropped");
            return Ok(());
        };
        self.parts.counters.spool_bytes.store(bytes, std::sync::atomic::Ordering::Relaxed);
        match pushed {
            Ok(pushed) => {
                add(&self.parts.counters.results_spooled, pushed.written);
                if pushed.dropped > 0 {
                    add(&self.parts.counters.spool_dropped, pushed.dropped);
                    tracing::warn!(
                        results = pushed.dropped,
                        segments = pushed.dropped_segments,
                        "the spool is full: its oldest results were dropped"
                    );
                }
                if self.spool_failing {
                    tracing::info!("the spool takes results again");
                    self.spool_failing = false;
                }
                Ok(())
            }
            Err(error) => {
                add(&self.parts.counters.spool_write_errors, 1);
                if !self.spool_failing {
                    tracing::error!(
                        "cannot write to the spool ({error}); results stay in memory (up to {MEMORY_MAX_RESULTS})"
                    );
                    self.spool_failing = true;
                }
                Err(batch)
            }
        }
    }

    async fn remove_segment(&mut self, seq: u64) {
        let Some(spool) = self.parts.spool.clone() else { return };
        let removed = blocking(spool, move |spool| (spool.remove(seq), spool.bytes())).await;
        if let Some((result, bytes)) = removed {
            self.parts.counters.spool_bytes.store(bytes, std::sync::atomic::Ordering::Relaxed);
            if let Err(error) = result {
                tracing::warn!(
                    segment = seq,
                    "cannot remove an acknowledged spool segment ({error}); it may be sent again"
                );
            }
        }
    }

    /// At shutdown: everything queued is sent within `limit` if the scheduler takes it, else spooled.
    async fn flush(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while let Ok(result) = self.parts.results.try_recv() {
            self.pending.push(result);
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_deadline = None;
        let mut pending = pending.into_iter().peekable();
        while pending.peek().is_some() {
            let batch: Vec<RunResult> = pending.by_ref().take(BATCH_MAX).collect();
            self.store(batch).await;
        }
        loop {
            if let Some((_, handle)) = self.in_flight.as_mut() {
                match tokio::time::timeout_at(deadline, handle).await {
                    Ok(done) => {
                        let done = done
                            .unwrap_or_else(|error| Err(CallError::Transient(format!("post task failed: {error}"))));
                        self.post_done(done).await;
                    }
                    Err(_) => {
                        if let Some((job, handle)) = self.in_flight.take() {
                            handle.abort();
                            self.requeue(job).await;
                        }
                        break;
                    }
                }
            }
            if self.fatal || self.memory.is_empty() || Instant::now() >= deadline {
                break;
            }
            // One more try even after a failure: the scheduler may be back.
            if let Some(results) = self.memory.pop_front() {
                self.memory_results -= results.len();
                self.post(Job { source: Source::Memory, results });
            }
        }
        self.spill().await;
        if self.memory_results > 0 {
            add(&self.parts.counters.results_dropped, self.memory_results);
            tracing::error!(
                results = self.memory_results,
                "results lost at shutdown: the scheduler and the spool could not take them"
            );
            self.memory.clear();
            self.memory_results = 0;
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Runs a spool operation on the blocking pool (writes fsync). `None` if the task failed.
async fn blocking<T: Send + 'static>(
    spool: Arc<Mutex<Spool>>,
    operation: impl FnOnce(&mut Spool) -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(move || operation(&mut lock(&spool))).await.ok()
}

fn lock(spool: &Mutex<Spool>) -> MutexGuard<'_, Spool> {
    spool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
