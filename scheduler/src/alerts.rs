//! The alert engine inside the scheduler: every stored result is observed, rules are evaluated after each
//! batch and every few seconds, and notifications go to the configured notifiers through a retrying
//! dispatcher. A config reload reopens the engine on the same state, which (like a restart) neither re-sends
//! nor forgets a firing alert.
//!
//! Replicated schedulers keep the state in PostgreSQL and only the leader runs the engine: it opens it when it
//! takes the lease (resuming what the previous leader recorded but did not deliver), feeds it every replica's
//! results, and publishes the view followers serve. Every write of the state is fenced by the lease.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use probenet_alerting::notify::{self, Dispatcher, DispatcherOptions};
use probenet_alerting::state::FenceSource;
use probenet_alerting::{AlertError, Engine, Options, PostgresState, Rules, Silence, SystemClock};
use probenet_checks::wire::RunResult;
use serde_json::{Value, json};

use crate::config::Loaded;

/// Where the engine's state lives.
#[derive(Clone)]
pub enum Home {
    /// `alerts.db` of a single scheduler.
    Sqlite(PathBuf),
    /// The database of replicated schedulers; writes under the fence the source gives (the leader's).
    Postgres(Box<probenet_pg::Database>, FenceSource),
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(database, _) => f.debug_tuple("Postgres").field(&database.shown).finish(),
        }
    }
}

/// The engine, its notifiers, and what they were built from.
pub struct Alerting {
    home: Mutex<Home>,
    dashboard_url: Option<String>,
    /// The running engine: always for a single scheduler; on the leader only when replicated.
    inner: Mutex<Option<Inner>>,
    /// Replicated followers: the view the leader published last.
    published: Mutex<Option<Value>>,
}

struct Inner {
    engine: Engine,
    dispatcher: Arc<Dispatcher>,
    /// When the rules were last evaluated.
    evaluated: Option<std::time::Instant>,
}

/// Results evaluate the rules at most this often (each evaluation looks at every check's regions); results in
/// between wait for the next batch or the timer ([`EVALUATE_TIMER`]).
const EVALUATE_AFTER_RESULTS: Duration = Duration::from_millis(500);

/// How often the rules are evaluated without new results (pending alerts fire, recoveries resolve).
pub const EVALUATE_TIMER: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting")
            .field("home", &*self.home.lock().unwrap_or_else(PoisonError::into_inner))
            .finish_non_exhaustive()
    }
}

/// Why alerting could not start.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    /// A notifier could not be built (a secret missing, a bad URL).
    #[error("{0}")]
    Notifier(String),
    /// The alert state could not be opened.
    #[error("alert state: {0}")]
    State(#[from] AlertError),
}

impl Alerting {
    /// Opens the engine with its state in `dir/alerts.db` (inside a Tokio runtime).
    pub fn start(loaded: &Loaded, dir: &Path, dashboard_url: Option<String>) -> Result<Self, AlertingError> {
        let home = Home::Sqlite(dir.join("alerts.db"));
        let inner = open(loaded, &home, dashboard_url.clone())?;
        Ok(Self { home: Mutex::new(home), dashboard_url, inner: Mutex::new(Some(inner)), published: Mutex::new(None) })
    }

    /// Replicated: the state is in `database` from now on, and the engine runs only between
    /// [`Alerting::lead`] and [`Alerting::follow`]. The engine opened on `alerts.db` is closed.
    pub fn replicate(&self, database: probenet_pg::Database, fence: FenceSource) {
        *self.home.lock().unwrap_or_else(PoisonError::into_inner) = Home::Postgres(Box::new(database), fence);
        if let Some(old) = self.lock().take() {
            tokio::spawn(async move { old.dispatcher.close(Duration::from_secs(1)).await });
        }
    }

    /// Replicated: this replica took the lease. Opens the engine on the shared state (blocking: call it from a
    /// blocking thread) and hands what the previous leader recorded but did not deliver to the dispatcher.
    pub fn lead(&self, loaded: &Loaded) -> Result<(), AlertingError> {
        let home = self.home.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut fresh = open(loaded, &home, self.dashboard_url.clone())?;
        let resumed = fresh.engine.take_outbox();
        if !resumed.is_empty() {
            tracing::info!(notifications = resumed.len(), "resuming notifications recorded but not delivered");
        }
        fresh.dispatcher.send_recorded(&fresh.engine.state(), resumed);
        if let Some(old) = self.lock().replace(fresh) {
            tokio::spawn(async move { old.dispatcher.close(Duration::from_secs(1)).await });
        }
        Ok(())
    }

    /// Replicated: this replica lost the lease. The engine stops; its writes would be refused anyway.
    pub fn follow(&self) {
        if let Some(old) = self.lock().take() {
            tokio::spawn(async move { old.dispatcher.close(Duration::from_millis(100)).await });
        }
    }

    /// Whether the engine runs here.
    pub fn running(&self) -> bool {
        self.lock().is_some()
    }

    /// Replicated followers: the view the leader published.
    pub fn set_published(&self, view: Value) {
        *self.published.lock().unwrap_or_else(PoisonError::into_inner) = Some(view);
    }

    fn lock(&self) -> MutexGuard<'_, Option<Inner>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Observes newly stored results, then evaluates and sends what changed, unless the rules were evaluated
    /// within [`EVALUATE_AFTER_RESULTS`] (at thousands of results a second, batches come faster than that).
    pub fn observe(&self, results: &[RunResult]) {
        let mut guard = self.lock();
        let Some(inner) = guard.as_mut() else { return };
        for result in results {
            inner.engine.observe(result);
        }
        if inner.evaluated.is_none_or(|at| at.elapsed() >= EVALUATE_AFTER_RESULTS) {
            send(inner);
        }
    }

    /// Evaluates (time passing resolves, fires pending alerts, repeats).
    pub fn tick(&self) {
        if let Some(inner) = self.lock().as_mut() {
            send(inner);
        }
    }

    /// Reopens the engine with the new config's rules and notifiers; on error the running ones stay.
    pub fn reconfigure(&self, loaded: &Loaded) {
        let home = self.home.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut guard = self.lock();
        let Some(inner) = guard.as_mut() else { return };
        inner.engine.flush();
        match open(loaded, &home, self.dashboard_url.clone()) {
            Ok(mut fresh) => {
                // The reopened engine resumes the undelivered notifications; those the old dispatcher still
                // delivers stay with it.
                let held = inner.dispatcher.recorded_in_flight();
                let resumed = fresh.engine.take_outbox().into_iter().filter(|row| !held.contains(&row.id)).collect();
                fresh.dispatcher.send_recorded(&fresh.engine.state(), resumed);
                let old = std::mem::replace(inner, fresh);
                tokio::spawn(async move { old.dispatcher.close(Duration::from_secs(30)).await });
            }
            Err(error) => tracing::warn!(%error, "alerting keeps the previous rules"),
        }
    }

    /// Open alerts, recent history, impaired regions, SLOs and silences, as the API shows them (on a replicated
    /// follower: as the leader published them).
    pub fn view(&self) -> Value {
        let guard = self.lock();
        let Some(inner) = guard.as_ref() else {
            let published = self.published.lock().unwrap_or_else(PoisonError::into_inner).clone();
            return published.unwrap_or_else(
                || json!({"alerts": [], "history": [], "impaired_regions": [], "slos": [], "silences": []}),
            );
        };
        json!({
            "alerts": inner.engine.alerts(),
            "history": inner.engine.history(200).unwrap_or_default(),
            "impaired_regions": inner.engine.impaired_regions(),
            "slos": inner.engine.slo_status(),
            "silences": inner.engine.silences(),
        })
    }

    /// When regions were impaired, from the alert history (the newest 10 000 entries): the uptime ledger's
    /// `unknown` time. An impairment still open ends at `until_ms`. None on a follower replica.
    pub fn impaired_spans(&self, until_ms: i64) -> Vec<probenet_alerting::ledger::ImpairedSpan> {
        let guard = self.lock();
        let Some(inner) = guard.as_ref() else { return Vec::new() };
        let history = inner.engine.history(10_000).unwrap_or_default();
        probenet_alerting::ledger::render::impaired_spans(&history, until_ms)
    }

    /// Recent deliveries and counters per notifier.
    pub fn notifications(&self) -> Value {
        let Some(dispatcher) = self.lock().as_ref().map(|inner| inner.dispatcher.clone()) else {
            return json!({"deliveries": [], "counters": {}});
        };
        json!({"deliveries": dispatcher.deliveries(), "counters": dispatcher.counters()})
    }

    /// Recent deliveries (newest first) and counters per notifier; none on a follower replica.
    pub fn deliveries(
        &self,
    ) -> (Vec<notify::DeliveryRecord>, std::collections::BTreeMap<String, notify::NotifierCounters>) {
        match self.lock().as_ref() {
            Some(inner) => (inner.dispatcher.deliveries(), inner.dispatcher.counters()),
            None => (Vec::new(), std::collections::BTreeMap::new()),
        }
    }

    /// Counters per notifier (sent, retried, failed, pending) and alerts firing now, for `/metrics`.
    pub fn counters(&self) -> (std::collections::BTreeMap<String, notify::NotifierCounters>, usize) {
        let guard = self.lock();
        let Some(inner) = guard.as_ref() else { return (std::collections::BTreeMap::new(), 0) };
        let firing =
            inner.engine.alerts().iter().filter(|alert| alert.state == probenet_alerting::Phase::Firing).count();
        (inner.dispatcher.counters(), firing)
    }

    /// Adds a silence (or maintenance window); returns its id.
    pub fn add_silence(&self, silence: Silence) -> Result<u64, AlertError> {
        match self.lock().as_mut() {
            Some(inner) => inner.engine.add_silence(silence),
            None => Err(AlertError::NoFence),
        }
    }

    /// Ends a silence now; false when there is none with that id.
    pub fn expire_silence(&self, id: u64) -> Result<bool, AlertError> {
        match self.lock().as_mut() {
            Some(inner) => inner.engine.expire_silence(id),
            None => Err(AlertError::NoFence),
        }
    }

    /// Writes the SLO buckets and lets queued notifications go out, for at most `grace`.
    pub async fn close(&self, grace: Duration) {
        let dispatcher = {
            let mut guard = self.lock();
            let Some(inner) = guard.as_mut() else { return };
            inner.engine.flush();
            inner.dispatcher.clone()
        };
        dispatcher.close(grace).await;
    }
}

fn open(loaded: &Loaded, home: &Home, dashboard_url: Option<String>) -> Result<Inner, AlertingError> {
    let notifiers = notify::notifiers(&loaded.config.notifiers).map_err(AlertingError::Notifier)?;
    let dispatcher = Arc::new(Dispatcher::new(notifiers, DispatcherOptions::default()));
    let options = Options { dashboard_url, ..Options::default() };
    let rules = Rules::from_config(&loaded.config);
    let engine = match home {
        Home::Sqlite(path) => Engine::open(rules, path, Arc::new(SystemClock), options)?,
        Home::Postgres(database, fence) => {
            let state = PostgresState::open_database(database, 4, fence.clone())?;
            Engine::with_state(rules, Arc::new(state), Arc::new(SystemClock), options)?
        }
    };
    Ok(Inner { engine, dispatcher, evaluated: None })
}

/// Evaluates, then hands what was recorded in the outbox (and, after a start, what was resumed) to the dispatcher.
fn send(inner: &mut Inner) {
    inner.evaluated = Some(std::time::Instant::now());
    for (names, notification) in inner.engine.evaluate() {
        tracing::info!(
            alert = notification.alert,
            status = ?notification.status,
            check = notification.check.as_deref().unwrap_or(""),
            regions = notification.regions.join(","),
            notifiers = names.join(","),
            "alert"
        );
    }
    let recorded = inner.engine.take_outbox();
    inner.dispatcher.send_recorded(&inner.engine.state(), recorded);
}
