//! The alert engine inside the scheduler: every stored result is observed, rules are evaluated after each
//! batch and every few seconds, and notifications go to the configured notifiers through a retrying
//! dispatcher. A config reload reopens the engine on the same state, which (like a restart) neither re-sends
//! nor forgets a firing alert.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use probenet_alerting::notify::{self, Dispatcher, DispatcherOptions};
use probenet_alerting::{AlertError, Engine, Options, Rules, Silence, SystemClock};
use probenet_checks::wire::RunResult;
use serde_json::{Value, json};

use crate::config::Loaded;

/// The engine, its notifiers, and what they were built from.
pub struct Alerting {
    path: PathBuf,
    dashboard_url: Option<String>,
    inner: Mutex<Inner>,
}

struct Inner {
    engine: Engine,
    dispatcher: Arc<Dispatcher>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting").field("path", &self.path).finish_non_exhaustive()
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
        let path = dir.join("alerts.db");
        let inner = open(loaded, &path, dashboard_url.clone())?;
        Ok(Self { path, dashboard_url, inner: Mutex::new(inner) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Observes newly stored results, then evaluates and sends what changed.
    pub fn observe(&self, results: &[RunResult]) {
        let mut inner = self.lock();
        for result in results {
            inner.engine.observe(result);
        }
        send(&mut inner);
    }

    /// Evaluates (time passing resolves, fires pending alerts, repeats).
    pub fn tick(&self) {
        send(&mut self.lock());
    }

    /// Reopens the engine with the new config's rules and notifiers; on error the running ones stay.
    pub fn reconfigure(&self, loaded: &Loaded) {
        let mut inner = self.lock();
        inner.engine.flush();
        match open(loaded, &self.path, self.dashboard_url.clone()) {
            Ok(mut fresh) => {
                // The reopened engine resumes the undelivered notifications; those the old dispatcher still
                // delivers stay with it.
                let held = inner.dispatcher.recorded_in_flight();
                let resumed = fresh.engine.take_outbox().into_iter().filter(|row| !held.contains(&row.id)).collect();
                fresh.dispatcher.send_recorded(&fresh.engine.state(), resumed);
                let old = std::mem::replace(&mut *inner, fresh);
                tokio::spawn(async move { old.dispatcher.close(Duration::from_secs(30)).await });
            }
            Err(error) => tracing::warn!(%error, "alerting keeps the previous rules"),
        }
    }

    /// Open alerts, recent history, impaired regions, SLOs and silences, as the API shows them.
    pub fn view(&self) -> Value {
        let inner = self.lock();
        json!({
            "alerts": inner.engine.alerts(),
            "history": inner.engine.history(200).unwrap_or_default(),
            "impaired_regions": inner.engine.impaired_regions(),
            "slos": inner.engine.slo_status(),
            "silences": inner.engine.silences(),
        })
    }

    /// Recent deliveries and counters per notifier.
    pub fn notifications(&self) -> Value {
        let dispatcher = self.lock().dispatcher.clone();
        json!({"deliveries": dispatcher.deliveries(), "counters": dispatcher.counters()})
    }

    /// Counters per notifier (sent, retried, failed, pending) and alerts firing now, for `/metrics`.
    pub fn counters(&self) -> (std::collections::BTreeMap<String, notify::NotifierCounters>, usize) {
        let inner = self.lock();
        let firing =
            inner.engine.alerts().iter().filter(|alert| alert.state == probenet_alerting::Phase::Firing).count();
        (inner.dispatcher.counters(), firing)
    }

    /// Adds a silence (or maintenance window); returns its id.
    pub fn add_silence(&self, silence: Silence) -> Result<u64, AlertError> {
        self.lock().engine.add_silence(silence)
    }

    /// Ends a silence now; false when there is none with that id.
    pub fn expire_silence(&self, id: u64) -> Result<bool, AlertError> {
        self.lock().engine.expire_silence(id)
    }

    /// Writes the SLO buckets and lets queued notifications go out, for at most `grace`.
    pub async fn close(&self, grace: Duration) {
        let dispatcher = {
            let mut inner = self.lock();
            inner.engine.flush();
            inner.dispatcher.clone()
        };
        dispatcher.close(grace).await;
    }
}

fn open(loaded: &Loaded, path: &Path, dashboard_url: Option<String>) -> Result<Inner, AlertingError> {
    let notifiers = notify::notifiers(&loaded.config.notifiers).map_err(AlertingError::Notifier)?;
    let dispatcher = Arc::new(Dispatcher::new(notifiers, DispatcherOptions::default()));
    let options = Options { dashboard_url, ..Options::default() };
    let engine = Engine::open(Rules::from_config(&loaded.config), path, Arc::new(SystemClock), options)?;
    Ok(Inner { engine, dispatcher })
}

/// Evaluates, then hands what was recorded in the outbox (and, after a start, what was resumed) to the dispatcher.
fn send(inner: &mut Inner) {
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
