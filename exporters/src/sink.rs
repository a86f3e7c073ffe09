//! The [`Sink`] trait and the queue that runs each sink: bounded, batched, retried with backoff, never blocking
//! the caller, with counters for what was sent, retried and dropped.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use probenet_checks::wire::RunResult;
use probenet_checks::{Check, Kind};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What a sink needs to know about a check to label its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckMeta {
    /// The check's name (the `job` label).
    pub name: String,
    /// Its kind (serialized as its key: `http`, `dns`, `tls`, `tcp`, `icmp`, `browser`).
    pub kind: Kind,
    /// What it probes (the `instance` label): a URL, a host name, `host:port`.
    pub target: String,
    /// The check's own labels.
    pub labels: BTreeMap<String, String>,
}

impl CheckMeta {
    /// The labelling facts of a configured check.
    pub fn of(check: &Check) -> Self {
        Self {
            name: check.name.clone(),
            kind: check.kind.kind(),
            target: check.kind.target(),
            labels: check.labels.clone(),
        }
    }
}

/// What flows into sinks.
#[derive(Debug, Clone)]
pub enum Event {
    /// One run's result.
    Result {
        /// The check it belongs to.
        check: Arc<CheckMeta>,
        /// The result.
        result: Arc<RunResult>,
    },
    /// A (check, region) pair left the config: its series end now (remote write sends stale markers).
    Removed {
        /// The check as it was.
        check: Arc<CheckMeta>,
        /// The region.
        region: String,
        /// When it was removed, unix ms.
        at_ms: i64,
    },
}

/// Why a batch was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A transient failure (connection refused, 5xx, 429): the batch is sent again after a backoff.
    #[error("{0}")]
    Retry(String),
    /// The receiver refused the batch for good (4xx other than 429, a bad path): it is dropped and counted.
    #[error("{0}")]
    Reject(String),
}

/// A destination for results. Implementations deliver a batch or say why not; the queue around them
/// ([`SinkHandle`]) owns batching, retries, backoff and counting. Error messages must never hold a secret.
pub trait Sink: Send + Sync + fmt::Debug + 'static {
    /// The sink's kind, for logs and metrics: `remote_write`, `logs`, `loki`, `store`.
    fn kind(&self) -> &'static str;
    /// Delivers one batch, in order.
    fn send<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, Result<(), SendError>>;
    /// Flushes buffered output (files); called when the queue stops.
    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// Batches it may be sent at once (each (check, region) pair's events stay on one, in order).
    fn shards(&self) -> usize {
        1
    }
    /// Where it delivers (a URL without credentials, a file), to tell its saved position apart from other
    /// sinks' in the store.
    fn destination(&self) -> String {
        String::new()
    }
}

/// How a sink's queue behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    /// Events held at most; beyond it the oldest are dropped (and counted).
    pub capacity: usize,
    /// Events per batch at most.
    pub max_batch: usize,
    /// How long the first event of a batch waits for more before the batch goes.
    pub linger: Duration,
    /// The first retry's delay; doubled after every failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// The longest delay between retries.
    pub max_backoff: Duration,
    /// Attempts per batch (the first included) before it is dropped.
    pub max_attempts: u32,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            max_batch: 2_000,
            linger: Duration::from_millis(200),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_attempts: 12,
        }
    }
}

/// What a sink's queue has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Events delivered.
    pub sent: u64,
    /// Failed attempts that were retried.
    pub retried: u64,
    /// Events given up: the queue was full, the receiver refused them, or every attempt failed.
    pub dropped: u64,
    /// Events waiting now.
    pub queued: u64,
    /// How old the oldest result read and not yet delivered is, in milliseconds (0: caught up).
    pub behind_ms: u64,
    /// The last failure's message, if the last attempt failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Event>,
    counters: SinkCounters,
    /// Events taken for the batch being delivered.
    in_flight: u64,
    closed: bool,
}

/// A running sink: [`offer`](Self::offer) never blocks; a task delivers in the background.
#[derive(Debug)]
pub struct SinkHandle {
    name: String,
    kind: &'static str,
    mode: Mode,
    capacity: usize,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Where a sink's results wait.
#[derive(Debug)]
enum Mode {
    /// In memory, offered one by one (probers, tests).
    Queued(Arc<(Mutex<Queue>, Notify)>),
    /// In the store, read from the sink's cursor (a scheduler's sinks); only other events are offered.
    Fed(Arc<crate::fed::State>),
}

impl SinkHandle {
    /// Starts delivering to `sink` (inside a Tokio runtime). `name` tells sinks of one kind apart in metrics.
    pub fn spawn(name: impl Into<String>, sink: Arc<dyn Sink>, options: QueueOptions) -> Self {
        let shared = Arc::new((Mutex::new(Queue::default()), Notify::new()));
        let kind = sink.kind();
        let task = tokio::spawn(deliver(sink, shared.clone(), options));
        Self {
            name: name.into(),
            kind,
            mode: Mode::Queued(shared),
            capacity: options.capacity.max(1),
            task: Mutex::new(Some(task)),
        }
    }

    /// Starts delivering to `sink` what `feed`'s store holds, from the position saved under `cursor` (inside a
    /// Tokio runtime): results offered are not queued, they only wake the reader. A sink never seen before starts
    /// with the results stored from now on.
    pub fn spawn_fed(
        name: impl Into<String>,
        cursor: impl Into<String>,
        sink: Arc<dyn Sink>,
        options: QueueOptions,
        feed: crate::fed::Feed,
        checks: crate::fed::Checks,
    ) -> Self {
        let state = Arc::new(crate::fed::State::new());
        let kind = sink.kind();
        let task = tokio::spawn(crate::fed::deliver(sink, cursor.into(), state.clone(), options, feed, checks));
        Self {
            name: name.into(),
            kind,
            mode: Mode::Fed(state),
            capacity: options.capacity.max(1),
            task: Mutex::new(Some(task)),
        }
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sink's kind.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Queues an event; when the queue is full the oldest event is dropped and counted. A sink fed by the store
    /// reads results there: offering one only wakes it.
    pub fn offer(&self, event: Event) {
        let shared = match &self.mode {
            Mode::Queued(shared) => shared,
            Mode::Fed(state) => {
                if let Event::Removed { .. } = event {
                    let mut events = lock(&state.events);
                    events.push(event);
                    if events.len() > self.capacity {
                        let over = events.len() - self.capacity;
                        events.drain(..over);
                        lock(&state.counters).dropped += over as u64;
                    }
                }
                state.wake.notify_one();
                return;
            }
        };
        let (queue, notify) = &**shared;
        {
            let mut queue = lock(queue);
            if queue.closed {
                queue.counters.dropped += 1;
                return;
            }
            queue.events.push_back(event);
            while queue.events.len() > self.capacity {
                queue.events.pop_front();
                queue.counters.dropped += 1;
            }
        }
        notify.notify_one();
    }

    /// The counters now.
    pub fn counters(&self) -> SinkCounters {
        match &self.mode {
            Mode::Queued(shared) => {
                let queue = lock(&shared.0);
                let mut counters = queue.counters.clone();
                counters.queued = queue.events.len() as u64;
                counters
            }
            Mode::Fed(state) => {
                let mut counters = lock(&state.counters).clone();
                counters.queued += lock(&state.events).len() as u64;
                let oldest = state.oldest_pending_ms.load(std::sync::atomic::Ordering::Relaxed);
                if oldest != i64::MIN {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
                    counters.behind_ms = u64::try_from(now - oldest).unwrap_or(0);
                }
                counters
            }
        }
    }

    /// Stops taking events and delivers what is queued, for at most `grace`; what is left is dropped. A sink fed
    /// by the store delivers until it is caught up, for at most `grace`, and saves its position: the rest waits
    /// in the store.
    pub async fn close(&self, grace: Duration) {
        let shared = match &self.mode {
            Mode::Queued(shared) => shared,
            Mode::Fed(state) => {
                state.closed.store(true, std::sync::atomic::Ordering::Relaxed);
                state.wake.notify_one();
                let task = lock(&self.task).take();
                if let Some(mut task) = task
                    && tokio::time::timeout(grace, &mut task).await.is_err()
                {
                    task.abort();
                }
                return;
            }
        };
        lock(&shared.0).closed = true;
        shared.1.notify_one();
        let task = lock(&self.task).take();
        if let Some(mut task) = task
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            task.abort();
            let mut queue = lock(&shared.0);
            let left = queue.events.len() as u64 + queue.in_flight;
            queue.events.clear();
            queue.in_flight = 0;
            queue.counters.dropped += left;
        }
    }
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn deliver(sink: Arc<dyn Sink>, shared: Arc<(Mutex<Queue>, Notify)>, options: QueueOptions) {
    let (queue, notify) = &*shared;
    let max_batch = options.max_batch.max(1);
    loop {
        // Wait for a first event, then linger for more unless the batch is full or the queue is closing.
        let closing = loop {
            let (len, closed) = {
                let queue = lock(queue);
                (queue.events.len(), queue.closed)
            };
            if len == 0 && closed {
                sink.flush().await;
                return;
            }
            if len > 0 {
                break closed;
            }
            notify.notified().await;
        };
        if !closing && lock(queue).events.len() < max_batch {
            let deadline = tokio::time::Instant::now() + options.linger;
            while lock(queue).events.len() < max_batch && !lock(queue).closed {
                if tokio::time::timeout_at(deadline, notify.notified()).await.is_err() {
                    break;
                }
            }
        }
        let batch: Vec<Event> = {
            let mut queue = lock(queue);
            let take = queue.events.len().min(max_batch);
            queue.in_flight = take as u64;
            queue.events.drain(..take).collect()
        };
        let mut backoff = options.min_backoff;
        let mut attempt = 1;
        loop {
            match sink.send(&batch).await {
                Ok(()) => {
                    let mut queue = lock(queue);
                    queue.counters.sent += batch.len() as u64;
                    queue.counters.last_error = None;
                    queue.in_flight = 0;
                    break;
                }
                Err(SendError::Retry(message)) if attempt < options.max_attempts.max(1) => {
                    tracing::debug!(sink = sink.kind(), attempt, error = %message, "delivery failed; retrying");
                    {
                        let mut queue = lock(queue);
                        queue.counters.retried += 1;
                        queue.counters.last_error = Some(message);
                    }
                    attempt += 1;
                    // While closing, retry at once: the grace period bounds it.
                    if !lock(queue).closed {
                        tokio::time::sleep(backoff).await;
                    }
                    backoff = (backoff * 2).min(options.max_backoff);
                }
                Err(error) => {
                    tracing::warn!(sink = sink.kind(), events = batch.len(), %error, "delivery failed; events dropped");
                    let mut queue = lock(queue);
                    queue.counters.dropped += batch.len() as u64;
                    queue.counters.last_error = Some(error.to_string());
                    queue.in_flight = 0;
                    break;
                }
            }
        }
    }
}

/// Every configured sink of a process.
#[derive(Debug, Default)]
pub struct Exporters {
    sinks: Vec<SinkHandle>,
}

impl Exporters {
    /// A set over these running sinks.
    pub fn new(sinks: Vec<SinkHandle>) -> Self {
        Self { sinks }
    }

    /// Offers an event to every sink.
    pub fn offer(&self, event: &Event) {
        for sink in &self.sinks {
            sink.offer(event.clone());
        }
    }

    /// The sinks.
    pub fn sinks(&self) -> &[SinkHandle] {
        &self.sinks
    }

    /// Closes every sink, each for at most `grace`.
    pub async fn close(&self, grace: Duration) {
        futures::future::join_all(self.sinks.iter().map(|sink| sink.close(grace))).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use probenet_checks::{Outcome, Reason};

    use super::*;

    #[derive(Debug, Default)]
    struct Flaky {
        fail_first: u32,
        reject: bool,
        calls: AtomicU32,
        got: Mutex<Vec<i64>>,
    }

    impl Sink for Flaky {
        fn kind(&self) -> &'static str {
            "test"
        }
        fn send<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, Result<(), SendError>> {
            Box::pin(async move {
                let call = self.calls.fetch_add(1, Ordering::SeqCst);
                if self.reject {
                    return Err(SendError::Reject("400 bad request".into()));
                }
                if call < self.fail_first {
                    return Err(SendError::Retry("503 unavailable".into()));
                }
                let mut got = lock(&self.got);
                for event in batch {
                    if let Event::Result { result, .. } = event {
                        got.push(result.planned_at_ms);
                    }
                }
                Ok(())
            })
        }
    }

    fn event(planned_at_ms: i64) -> Event {
        let meta = CheckMeta {
            name: "c".into(),
            kind: probenet_checks::Kind::Http,
            target: "t".into(),
            labels: BTreeMap::new(),
        };
        Event::Result {
            check: Arc::new(meta),
            result: Arc::new(RunResult {
                check: "c".into(),
                region: "r".into(),
                planned_at_ms,
                started_at_ms: planned_at_ms,
                prober: "p".into(),
                outcome: Outcome::failed(Reason::Connect, "refused"),
            }),
        }
    }

    fn fast() -> QueueOptions {
        QueueOptions {
            linger: Duration::from_millis(5),
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            ..QueueOptions::default()
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_in_order_and_counted() {
        let sink = Arc::new(Flaky { fail_first: 3, ..Flaky::default() });
        let handle = SinkHandle::spawn("t", sink.clone(), fast());
        for i in 0..10 {
            handle.offer(event(i));
        }
        handle.close(Duration::from_secs(10)).await;
        assert_eq!(*lock(&sink.got), (0..10).collect::<Vec<_>>());
        let counters = handle.counters();
        assert_eq!((counters.sent, counters.retried, counters.dropped, counters.queued), (10, 3, 0, 0));
        assert_eq!(counters.last_error, None);
    }

    #[tokio::test]
    async fn refused_batches_and_exhausted_retries_are_dropped_and_counted() {
        let refused = SinkHandle::spawn("t", Arc::new(Flaky { reject: true, ..Flaky::default() }), fast());
        refused.offer(event(1));
        refused.offer(event(2));
        refused.close(Duration::from_secs(10)).await;
        let counters = refused.counters();
        assert_eq!((counters.sent, counters.retried, counters.dropped), (0, 0, 2));
        assert_eq!(counters.last_error.as_deref(), Some("400 bad request"));

        let dead = SinkHandle::spawn(
            "t",
            Arc::new(Flaky { fail_first: u32::MAX, ..Flaky::default() }),
            QueueOptions { max_attempts: 3, ..fast() },
        );
        dead.offer(event(1));
        dead.close(Duration::from_secs(10)).await;
        let counters = dead.counters();
        assert_eq!((counters.sent, counters.retried, counters.dropped), (0, 2, 1));
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_without_blocking() {
        // A sink that never succeeds and backs off for long keeps the queue full.
        let sink = Arc::new(Flaky { fail_first: u32::MAX, ..Flaky::default() });
        let options = QueueOptions { capacity: 100, max_batch: 10, min_backoff: Duration::from_secs(60), ..fast() };
        let handle = SinkHandle::spawn("t", sink, options);
        for i in 0..1_000 {
            handle.offer(event(i));
        }
        let counters = handle.counters();
        assert!(counters.queued <= 100, "{counters:?}");
        assert!(counters.dropped >= 890, "{counters:?}");
        handle.close(Duration::from_millis(50)).await;
        // Everything offered is accounted for: nothing sent, all dropped, none left.
        let counters = handle.counters();
        assert_eq!((counters.sent, counters.dropped, counters.queued), (0, 1_000, 0));
    }
}
