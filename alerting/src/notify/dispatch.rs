//! The dispatcher: one queue per notifier, delivered in order in the background with retries and backoff,
//! with a bounded record of recent deliveries and per-notifier counters for the API and metrics.
//!
//! Notifications recorded in the alert state's outbox ([`Dispatcher::send_recorded`]) are claimed in the state
//! before each attempt (a deposed leader's claim is refused: it sends nothing) and settled after the last one
//! (delivered, or given up); those left undelivered at shutdown stay pending in the state, for the next start or
//! the next leader to resume.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use probenet_checks::time::now_ms;

use crate::state::{AlertState, Claim, Pending, Settled};
use crate::{DeliveryError, Notification, Notifier, Status};

/// How the dispatcher retries and how much it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatcherOptions {
    /// Attempts per notification and notifier (the first included) before it is given up.
    pub max_attempts: u32,
    /// The delay before the first retry; doubled after each failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// Notifications waiting per notifier at most; beyond it the oldest waiting one fails (`queue full`).
    pub capacity: usize,
    /// Delivery records kept (the most recent).
    pub history: usize,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            capacity: 1000,
            history: 500,
        }
    }
}

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its turn.
    Queued,
    /// An attempt failed and another one is due.
    Retrying,
    /// The notifier accepted it.
    Delivered,
    /// Given up: refused, out of attempts, pushed out of a full queue or left at shutdown.
    Failed,
}

/// One notification to one notifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// Increasing per dispatcher.
    pub id: u64,
    /// The notifier's name.
    pub notifier: String,
    /// The notifier's kind (`webhook`, `email`, ...); empty for an unknown name.
    pub kind: String,
    /// The alert's name.
    pub alert: String,
    /// The alert's key.
    pub key: String,
    /// Whether the notification told of a firing or a resolved alert.
    pub alert_status: Status,
    /// Where the delivery stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last failure's message (never holds a secret).
    pub last_error: Option<String>,
    /// When it was queued, unix ms.
    pub queued_at_ms: i64,
    /// When it was delivered, unix ms.
    pub delivered_at_ms: Option<i64>,
    /// When it was given up, unix ms.
    pub failed_at_ms: Option<i64>,
    /// Its row in the alert state's outbox, when it was recorded there.
    pub outbox_id: Option<u64>,
}

/// What one notifier's queue has done since the dispatcher started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotifierCounters {
    /// The notifier's kind.
    pub kind: String,
    /// Notifications delivered.
    pub sent: u64,
    /// Failed attempts that were retried.
    pub retried: u64,
    /// Notifications given up.
    pub failed: u64,
    /// Notifications waiting or being delivered now.
    pub pending: u64,
}

#[derive(Debug, Default)]
struct Book {
    records: VecDeque<DeliveryRecord>,
    next_id: u64,
    counters: BTreeMap<String, NotifierCounters>,
}

impl Book {
    fn record(&mut self, id: u64) -> Option<&mut DeliveryRecord> {
        let index = self.records.binary_search_by_key(&id, |record| record.id).ok()?;
        self.records.get_mut(index)
    }

    fn counters(&mut self, notifier: &str) -> &mut NotifierCounters {
        self.counters.entry(notifier.to_owned()).or_default()
    }

    /// Marks a delivery failed and counts it.
    fn fail(&mut self, notifier: &str, id: u64, error: &str) {
        let counters = self.counters(notifier);
        counters.failed += 1;
        counters.pending = counters.pending.saturating_sub(1);
        if let Some(record) = self.record(id) {
            record.status = DeliveryStatus::Failed;
            record.last_error = Some(error.to_owned());
            record.failed_at_ms = Some(now_ms());
        }
    }
}

/// An outbox row being delivered: where to claim and settle it.
#[derive(Debug, Clone)]
struct Recorded {
    state: Arc<dyn AlertState>,
    id: u64,
}

/// One queued delivery: its record's id, the notification, and its outbox row if any.
type Item = (u64, Arc<Notification>, Option<Recorded>);

#[derive(Debug, Default)]
struct LaneQueue {
    items: VecDeque<Item>,
    closed: bool,
}

#[derive(Debug)]
struct Lane {
    name: String,
    queue: Mutex<LaneQueue>,
    /// Signalled when a notification is queued.
    notify: Notify,
    /// Signalled when the dispatcher closes (cuts a backoff short).
    closing: Notify,
}

/// Queues notifications per notifier and delivers them in the background: [`send`](Self::send) never
/// blocks. Each notifier gets its notifications in the order sent, one at a time; a transient failure
/// ([`DeliveryError::Retry`]) is retried after a doubling backoff, a refusal fails at once.
#[derive(Debug)]
pub struct Dispatcher {
    lanes: BTreeMap<String, Arc<Lane>>,
    book: Arc<Mutex<Book>>,
    options: DispatcherOptions,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Dispatcher {
    /// Starts one delivery task per notifier (inside a Tokio runtime).
    pub fn new(notifiers: BTreeMap<String, Arc<dyn Notifier>>, options: DispatcherOptions) -> Self {
        let book = Arc::new(Mutex::new(Book::default()));
        let mut lanes = BTreeMap::new();
        let mut tasks = Vec::new();
        for (name, notifier) in notifiers {
            lock(&book).counters(&name).kind = notifier.kind().to_owned();
            let lane = Arc::new(Lane {
                name: name.clone(),
                queue: Mutex::default(),
                notify: Notify::new(),
                closing: Notify::new(),
            });
            tasks.push(tokio::spawn(run(lane.clone(), notifier, book.clone(), options)));
            lanes.insert(name, lane);
        }
        Self { lanes, book, options, tasks: Mutex::new(tasks) }
    }

    /// The notifiers' names.
    pub fn notifiers(&self) -> impl Iterator<Item = &str> {
        self.lanes.keys().map(String::as_str)
    }

    /// Queues a notification for each named notifier. An unknown name gets a failed record (and a warning).
    pub fn send(&self, names: &[String], notification: Notification) {
        let notification = Arc::new(notification);
        for name in names {
            let lane = self.lanes.get(name);
            let id = self.open_record(name, lane.is_some(), &notification, None);
            let Some(lane) = lane else {
                tracing::warn!(notifier = %name, alert = %notification.alert, "notification for an unknown notifier");
                continue;
            };
            self.enqueue(lane, (id, notification.clone(), None));
        }
    }

    /// Queues notifications recorded in `state`'s outbox (from [`Engine::take_outbox`](crate::Engine::take_outbox)).
    /// Each attempt is claimed in `state` first, and the row is settled after the last one; a row for an unknown
    /// notifier is given up at once. Rows pushed out of a full queue or left at [`close`](Self::close) stay
    /// pending in `state`.
    pub fn send_recorded(&self, state: &Arc<dyn AlertState>, pending: Vec<Pending>) {
        for row in pending {
            let notification = Arc::new(row.notification);
            let lane = self.lanes.get(&row.notifier);
            let id = self.open_record(&row.notifier, lane.is_some(), &notification, Some(row.id));
            let Some(lane) = lane else {
                tracing::warn!(
                    notifier = %row.notifier, alert = %notification.alert, "notification for an unknown notifier"
                );
                if let Err(error) = state.settle(row.id, &Settled::Failed("unknown notifier".to_owned())) {
                    tracing::warn!(%error, outbox = row.id, "notification for an unknown notifier not given up");
                }
                continue;
            };
            self.enqueue(lane, (id, notification, Some(Recorded { state: state.clone(), id: row.id })));
        }
    }

    /// The outbox rows queued or being delivered now (not yet delivered or given up).
    pub fn recorded_in_flight(&self) -> BTreeSet<u64> {
        lock(&self.book)
            .records
            .iter()
            .filter(|record| matches!(record.status, DeliveryStatus::Queued | DeliveryStatus::Retrying))
            .filter_map(|record| record.outbox_id)
            .collect()
    }

    fn enqueue(&self, lane: &Lane, item: Item) {
        let (id, name) = (item.0, lane.name.as_str());
        let (closed, pushed_out) = {
            let mut queue = lock(&lane.queue);
            if queue.closed {
                (true, None)
            } else {
                queue.items.push_back(item);
                let over = queue.items.len() > self.options.capacity.max(1);
                (false, if over { queue.items.pop_front() } else { None })
            }
        };
        let mut book = lock(&self.book);
        book.counters(name).pending += 1;
        if closed {
            book.fail(name, id, "dispatcher closed");
            return;
        }
        if let Some((old, _, _)) = pushed_out {
            tracing::warn!(notifier = %name, "notification queue full; the oldest waiting notification is dropped");
            book.fail(name, old, "queue full");
        }
        drop(book);
        lane.notify.notify_one();
    }

    fn open_record(&self, name: &str, known: bool, notification: &Notification, outbox_id: Option<u64>) -> u64 {
        let mut book = lock(&self.book);
        let id = book.next_id;
        book.next_id += 1;
        let kind = if known { book.counters(name).kind.clone() } else { String::new() };
        book.records.push_back(DeliveryRecord {
            id,
            notifier: name.to_owned(),
            kind,
            alert: notification.alert.clone(),
            key: notification.key.clone(),
            alert_status: notification.status,
            status: if known { DeliveryStatus::Queued } else { DeliveryStatus::Failed },
            attempts: 0,
            last_error: (!known).then(|| "unknown notifier".to_owned()),
            queued_at_ms: now_ms(),
            delivered_at_ms: None,
            failed_at_ms: (!known).then(now_ms),
            outbox_id,
        });
        while book.records.len() > self.options.history.max(1) {
            book.records.pop_front();
        }
        id
    }

    /// The recent deliveries, newest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.book).records.iter().rev().cloned().collect()
    }

    /// The counters of every notifier, by name.
    pub fn counters(&self) -> BTreeMap<String, NotifierCounters> {
        lock(&self.book).counters.clone()
    }

    /// Stops taking notifications and delivers what is queued for at most `grace` (retrying without
    /// waiting); what is left then fails with `dispatcher closed`.
    pub async fn close(&self, grace: Duration) {
        for lane in self.lanes.values() {
            lock(&lane.queue).closed = true;
            lane.notify.notify_one();
            lane.closing.notify_one();
        }
        let tasks: Vec<JoinHandle<()>> = lock(&self.tasks).drain(..).collect();
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(grace, futures::future::join_all(tasks)).await.is_err() {
            for abort in aborts {
                abort.abort();
            }
        }
        let mut book = lock(&self.book);
        let unfinished: Vec<(String, u64)> = book
            .records
            .iter()
            .filter(|record| matches!(record.status, DeliveryStatus::Queued | DeliveryStatus::Retrying))
            .map(|record| (record.notifier.clone(), record.id))
            .collect();
        for (notifier, id) in unfinished {
            book.fail(&notifier, id, "dispatcher closed");
        }
        for counters in book.counters.values_mut() {
            counters.pending = 0;
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

/// One notifier's delivery loop.
async fn run(lane: Arc<Lane>, notifier: Arc<dyn Notifier>, book: Arc<Mutex<Book>>, options: DispatcherOptions) {
    loop {
        let next = {
            let mut queue = lock(&lane.queue);
            match queue.items.pop_front() {
                Some(item) => Some(item),
                None if queue.closed => return,
                None => None,
            }
        };
        let Some((id, notification, recorded)) = next else {
            lane.notify.notified().await;
            continue;
        };
        deliver(&lane, notifier.as_ref(), &book, options, id, &notification, recorded.as_ref()).await;
    }
}

/// Why a call to the alert state failed: refused for want of leadership (`true`), or another failure.
type StateFailure = (bool, String);

/// Runs a call to the alert state on a blocking thread.
async fn on_state<T: Send + 'static>(
    recorded: &Recorded,
    call: impl FnOnce(&dyn AlertState, u64) -> Result<T, crate::AlertError> + Send + 'static,
) -> Result<T, StateFailure> {
    let (state, id) = (recorded.state.clone(), recorded.id);
    match tokio::task::spawn_blocking(move || call(state.as_ref(), id)).await {
        Ok(result) => result.map_err(|error| (error.is_fenced(), error.to_string())),
        Err(error) => Err((false, format!("alert state call: {error}"))),
    }
}

/// Settles an outbox row, logging a failure (the row then stays pending and is sent again by the next leader or
/// start: the duplicate window).
async fn settle(recorded: Option<&Recorded>, outcome: Settled) {
    let Some(recorded) = recorded else { return };
    if let Err((_, error)) = on_state(recorded, move |state, id| state.settle(id, &outcome)).await {
        tracing::warn!(outbox = recorded.id, %error, "notification outcome not recorded");
    }
}

async fn deliver(
    lane: &Lane,
    notifier: &dyn Notifier,
    book: &Mutex<Book>,
    options: DispatcherOptions,
    id: u64,
    notification: &Notification,
    recorded: Option<&Recorded>,
) {
    let name = lane.name.as_str();
    let mut backoff = options.min_backoff;
    let mut attempt = 1;
    let max_attempts = options.max_attempts.max(1);
    loop {
        if let Some(record) = lock(book).record(id) {
            record.attempts = attempt;
        }
        let result = match recorded {
            Some(recorded) => match on_state(recorded, move |state, id| state.claim(id, max_attempts)).await {
                Ok(Claim::Send(_)) => notifier.deliver(notification).await,
                Ok(Claim::Settled) => {
                    lock(book).fail(name, id, "already delivered or given up");
                    return;
                }
                Ok(Claim::GaveUp) => {
                    tracing::warn!(notifier = name, alert = %notification.alert, "notification out of attempts");
                    lock(book).fail(name, id, "out of attempts");
                    return;
                }
                // Not leading: nothing is sent; the row stays for whoever leads.
                Err((true, error)) => {
                    tracing::warn!(notifier = name, alert = %notification.alert, %error, "notification not claimed");
                    lock(book).fail(name, id, &format!("not sent: {error}"));
                    return;
                }
                // The state failed: retried like a failed delivery (the row stays pending if it never passes).
                Err((false, error)) => Err(DeliveryError::Retry(format!("not claimed: {error}"))),
            },
            None => notifier.deliver(notification).await,
        };
        let retry = {
            let mut book = lock(book);
            match result {
                Ok(()) => {
                    let counters = book.counters(name);
                    counters.sent += 1;
                    counters.pending = counters.pending.saturating_sub(1);
                    if let Some(record) = book.record(id) {
                        record.status = DeliveryStatus::Delivered;
                        record.delivered_at_ms = Some(now_ms());
                    }
                    tracing::debug!(notifier = name, alert = %notification.alert, attempt, "notification delivered");
                    Some(Ok(()))
                }
                Err(DeliveryError::Retry(message)) if attempt < max_attempts => {
                    book.counters(name).retried += 1;
                    if let Some(record) = book.record(id) {
                        record.status = DeliveryStatus::Retrying;
                        record.last_error = Some(message);
                    }
                    None
                }
                Err(error) => {
                    tracing::warn!(
                        notifier = name,
                        alert = %notification.alert,
                        attempt,
                        %error,
                        "notification failed; given up"
                    );
                    book.fail(name, id, &error.to_string());
                    Some(Err(error.to_string()))
                }
            }
        };
        match retry {
            Some(Ok(())) => return settle(recorded, Settled::Delivered).await,
            Some(Err(error)) => return settle(recorded, Settled::Failed(error)).await,
            None => {}
        }
        let message = lock(book).record(id).and_then(|record| record.last_error.clone()).unwrap_or_default();
        // The first failure is worth a warning (the receiver may be down for good); the retries that follow
        // are not, until the last one gives up ("notification failed").
        if attempt == 1 {
            tracing::warn!(
                notifier = name,
                alert = %notification.alert,
                error = %message,
                retry_in = ?backoff,
                "notification not delivered; retrying"
            );
        } else {
            tracing::debug!(notifier = name, attempt, error = %message, "notification not delivered; retrying");
        }
        attempt += 1;
        // While closing, retry at once: the grace period bounds it.
        if !lock(&lane.queue).closed {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = lane.closing.notified() => {}
            }
        }
        backoff = (backoff * 2).min(options.max_backoff.max(options.min_backoff));
    }
}
