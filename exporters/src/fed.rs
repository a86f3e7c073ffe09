//! Sinks fed by the store: on a scheduler, every result is in the store before it is acknowledged, so a sink
//! reads the store in stored order from a cursor of its own (saved in the store) instead of keeping results in
//! memory. An outage of the receiver, a restart of the scheduler or, replicated, a failover only delays
//! delivery: nothing is dropped while the store holds the results (raw retention). Batches go out on several
//! concurrent shards (a pair's results always on the same shard, in order); transient failures are retried
//! without end, with backoff; a batch the receiver refuses for good is dropped and counted.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::sink::{CheckMeta, Event, QueueOptions, SendError, Sink, SinkCounters};
use crate::store::{Position, Store, StoreError};

/// Results read per page.
const PAGE: usize = 5_000;
/// How often a caught-up reader looks for new results when nothing wakes it (results a replica stored).
const IDLE: Duration = Duration::from_millis(250);
/// The cursor is saved at most this often while delivering (and when stopping): a crash resends at most this
/// much, which receivers take as the same samples again.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// The wait before reading again after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// The labelling facts of the config's checks, by name, shared with the sinks fed by the store (a reload
/// replaces them).
pub type Checks = Arc<RwLock<Arc<HashMap<String, Arc<CheckMeta>>>>>;

/// The name a sink's position is saved under: its kind and a digest of where it delivers (so reordering the
/// config's exporters keeps each one's place, and no URL is written in the store).
pub fn cursor_name(sink: &dyn Sink) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, sink.destination().as_bytes());
    let hex: String = digest.as_ref()[..8].iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}:{hex}", sink.kind())
}

/// Where a scheduler's sinks read results, and whether this process delivers now.
#[derive(Clone)]
pub struct Feed {
    store: Arc<dyn Store>,
    delivering: watch::Receiver<bool>,
    /// One reader per cursor at a time: a sink rebuilt by a reload starts once the one it replaces has saved
    /// its position.
    readers: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Feed {
    /// Sinks read `store`; they deliver while `delivering` is true: always when this process runs alone, while
    /// it leads when replicated (every replica reads the same shared store and cursors, one at a time).
    pub fn new(store: Arc<dyn Store>, delivering: watch::Receiver<bool>) -> Self {
        Self { store, delivering, readers: Arc::default() }
    }

    fn reader(&self, cursor: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut readers = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        readers.entry(cursor.to_owned()).or_default().clone()
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("delivering", &*self.delivering.borrow()).finish_non_exhaustive()
    }
}

/// What the fed delivery shares with its handle.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) counters: Mutex<SinkCounters>,
    /// Events that are not results (a pair's series ending), delivered with the next page.
    pub(crate) events: Mutex<Vec<Event>>,
    pub(crate) wake: Notify,
    pub(crate) closed: AtomicBool,
    /// The planned time of the oldest result read and not yet delivered (`i64::MIN`: none).
    pub(crate) oldest_pending_ms: AtomicI64,
}

impl State {
    pub(crate) fn new() -> Self {
        Self { oldest_pending_ms: AtomicI64::new(i64::MIN), ..Self::default() }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, SinkCounters> {
        self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stopping(&self, delivering: &watch::Receiver<bool>) -> bool {
        self.closed.load(Ordering::Relaxed) || !*delivering.borrow()
    }
}

/// Delivers from the store to `sink` until the handle closes.
pub(crate) async fn deliver(
    sink: Arc<dyn Sink>,
    cursor: String,
    state: Arc<State>,
    options: QueueOptions,
    feed: Feed,
    checks: Checks,
) {
    let reader = feed.reader(&cursor);
    let _reading = tokio::select! {
        guard = reader.lock() => guard,
        () = async { while !state.closed.load(Ordering::Relaxed) { state.wake.notified().await } } => return,
    };
    let mut delivering = feed.delivering.clone();
    // Whether the sender of `delivering` is still there (alone, the scheduler may let it go: it stays true).
    let mut watched = true;
    loop {
        // Wait until this process delivers.
        while !*delivering.borrow_and_update() {
            if state.closed.load(Ordering::Relaxed) {
                return;
            }
            tokio::select! {
                changed = delivering.changed() => if changed.is_err() { return },
                () = state.wake.notified() => {}
            }
        }
        let store = feed.store.clone();
        let name = cursor.clone();
        let start = blocking(move || match store.cursor(&name)? {
            Some(at) => Ok((at, true)),
            None => store.stored_end().map(|at| (at, false)),
        })
        .await;
        let (mut at, saved_before) = match start {
            Ok(start) => start,
            Err(error) => {
                note_store_error(&state, &sink, &error);
                if state.closed.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(STORE_RETRY).await;
                continue;
            }
        };
        if !saved_before {
            tracing::info!(sink = sink.kind(), "a new sink starts with the results stored from now on");
        }
        let mut saved = saved_before.then_some(at);
        let mut last_save = Instant::now();
        // Closing, the reader goes on until it is caught up (the handle's grace bounds it).
        loop {
            if !*delivering.borrow() {
                break;
            }
            let store = feed.store.clone();
            let page = match blocking(move || store.stored_after(at, PAGE)).await {
                Ok(page) => page,
                Err(error) => {
                    note_store_error(&state, &sink, &error);
                    if state.closed.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
            };
            let full = page.results.len() >= PAGE;
            let mut events = {
                let checks = checks.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                // Results of checks no longer configured are not delivered: their series have ended.
                page.results
                    .into_iter()
                    .filter_map(|result| {
                        let check = checks.get(&result.check)?.clone();
                        Some(Event::Result { check, result: Arc::new(result) })
                    })
                    .collect::<Vec<_>>()
            };
            let ended = std::mem::take(&mut *state.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            events.extend(ended.iter().cloned());
            let oldest = events
                .iter()
                .filter_map(|event| match event {
                    Event::Result { result, .. } => Some(result.planned_at_ms),
                    Event::Removed { .. } => None,
                })
                .min()
                .unwrap_or(i64::MIN);
            state.oldest_pending_ms.store(oldest, Ordering::Relaxed);
            state.counters().queued = events.len() as u64;
            if !events.is_empty() && !deliver_page(&sink, events, &state, options, &delivering).await {
                // Stopped part way: the page is read again from `at` next time (receivers take samples sent
                // twice as one), and the series that ended wait for it.
                state.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).splice(0..0, ended);
                break;
            }
            state.counters().queued = 0;
            state.oldest_pending_ms.store(i64::MIN, Ordering::Relaxed);
            at = page.next;
            if saved != Some(at) && last_save.elapsed() >= SAVE_EVERY {
                save(&feed, &cursor, at, &state, &sink).await;
                saved = Some(at);
                last_save = Instant::now();
            }
            if !full {
                if state.closed.load(Ordering::Relaxed) {
                    break;
                }
                tokio::select! {
                    () = state.wake.notified() => {}
                    () = tokio::time::sleep(IDLE) => {}
                    changed = delivering.changed(), if watched => watched = changed.is_ok(),
                }
            }
        }
        if saved != Some(at) {
            save(&feed, &cursor, at, &state, &sink).await;
        }
        if state.closed.load(Ordering::Relaxed) {
            sink.flush().await;
            return;
        }
    }
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|error| Err(StoreError::Codec(error.to_string())))
}

async fn save(feed: &Feed, cursor: &str, at: Position, state: &State, sink: &Arc<dyn Sink>) {
    let store = feed.store.clone();
    let name = cursor.to_owned();
    if let Err(error) = blocking(move || store.save_cursor(&name, at)).await {
        note_store_error(state, sink, &error);
    }
}

fn note_store_error(state: &State, sink: &Arc<dyn Sink>, error: &StoreError) {
    let message = format!("reading the store: {error}");
    let mut counters = state.counters();
    if counters.last_error.as_deref() != Some(message.as_str()) {
        tracing::warn!(sink = sink.kind(), error = %message, "the sink cannot read the store; retrying");
    }
    counters.last_error = Some(message);
}

/// The shard of an event: a pair's events always go to the same one, so its samples stay in order.
fn shard(event: &Event, shards: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match event {
        Event::Result { check, result } => (&check.name, &result.region).hash(&mut hasher),
        Event::Removed { check, region, .. } => (&check.name, region).hash(&mut hasher),
    }
    usize::try_from(hasher.finish() % shards as u64).unwrap_or(0)
}

/// Delivers a page's events on the sink's shards at once; false when stopped before all were delivered.
async fn deliver_page(
    sink: &Arc<dyn Sink>,
    events: Vec<Event>,
    state: &State,
    options: QueueOptions,
    delivering: &watch::Receiver<bool>,
) -> bool {
    let shards = sink.shards().max(1);
    let mut parts: Vec<Vec<Event>> = (0..shards).map(|_| Vec::new()).collect();
    for event in events {
        parts[shard(&event, shards)].push(event);
    }
    let max_batch = options.max_batch.max(1);
    let sends = parts.iter().filter(|part| !part.is_empty()).map(|part| async move {
        for batch in part.chunks(max_batch) {
            if !send_until_done(sink, batch, state, options, delivering).await {
                return false;
            }
        }
        true
    });
    futures::future::join_all(sends).await.into_iter().all(|done| done)
}

/// Sends one batch until it is delivered or refused for good; false when stopped first.
async fn send_until_done(
    sink: &Arc<dyn Sink>,
    batch: &[Event],
    state: &State,
    options: QueueOptions,
    delivering: &watch::Receiver<bool>,
) -> bool {
    let mut backoff = options.min_backoff;
    loop {
        match sink.send(batch).await {
            Ok(()) => {
                let mut counters = state.counters();
                counters.sent += batch.len() as u64;
                counters.last_error = None;
                return true;
            }
            Err(SendError::Retry(message)) => {
                {
                    let mut counters = state.counters();
                    if counters.last_error.is_none() {
                        tracing::warn!(sink = sink.kind(), error = %message, "delivery failed; retrying until it works");
                    }
                    counters.retried += 1;
                    counters.last_error = Some(message);
                }
                // Sleep in short steps, so stopping is not held up by a long backoff.
                let until = Instant::now() + backoff;
                while Instant::now() < until {
                    if state.stopping(delivering) {
                        return false;
                    }
                    tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100))).await;
                }
                backoff = (backoff * 2).min(options.max_backoff);
            }
            Err(error @ SendError::Reject(_)) => {
                tracing::warn!(sink = sink.kind(), events = batch.len(), %error, "the receiver refused a batch; dropped");
                let mut counters = state.counters();
                counters.dropped += batch.len() as u64;
                counters.last_error = Some(error.to_string());
                return true;
            }
        }
    }
}
