//! The rule engine: it takes run results, evaluates alert rules, region impairment and SLO burn rates, keeps
//! alert state in an [`AlertState`] (SQLite or PostgreSQL), and says which notifications to send to which
//! notifiers. What one evaluation decides (alert states, history, notifications) is written in one transaction;
//! the notifications are outbox rows, handed out by [`Engine::take_outbox`] and settled by the dispatcher.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use probenet_checks::config::alerting::{FailingState, Hold};
use probenet_checks::config::maintenance::{self, MaintenanceMode};
use probenet_checks::wire::RunResult;

use crate::clock::Clock;
use crate::error::AlertError;
use crate::impairment::{self, Impairment};
use crate::instance::{Change, Instance, Observed, Phase, Timing};
use crate::notification::{Notification, Status};
use crate::quorum::{self, Latest, Verdict};
use crate::rules::{CheckInfo, Rules};
use crate::silence::{Silence, Subject};
use crate::slo::{self, BURN_ALERTS, Buckets};
use crate::state::{AlertState, Batch, BucketRow, HistoryEntry, Pending, Settled, SqliteState};

pub use self::views::AlertView;

mod views;

/// The name of the probe-health alert.
pub const REGION_IMPAIRED: &str = "region-impaired";

/// How long ended silences stay listed.
const SILENCES_KEPT_MS: i64 = 7 * 86_400_000;

/// Undelivered notifications older than this are given up instead of resumed at open.
pub const OUTBOX_MAX_AGE_MS: i64 = 86_400_000;

/// Engine settings that are not part of the config.
#[derive(Debug, Clone)]
pub struct Options {
    /// The dashboard's base URL, for links in notifications (`{base}/checks/{check}`, `{base}/regions/{region}`).
    pub dashboard_url: Option<String>,
    /// How often a firing alert is sent again while it lasts (default 4h).
    pub repeat_interval: Duration,
    /// How long a region must look healthy again before its impairment ends (default 2m).
    pub impairment_resolve_after: Duration,
    /// How often SLO buckets are written to the store (default 5m; also when the engine is dropped).
    pub flush_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dashboard_url: None,
            repeat_interval: Duration::from_secs(4 * 3600),
            impairment_resolve_after: Duration::from_secs(120),
            flush_interval: Duration::from_secs(300),
        }
    }
}

/// The rule engine. Not thread-safe by itself: wrap it in a mutex.
#[derive(Debug)]
pub struct Engine {
    rules: Rules,
    store: Arc<dyn AlertState>,
    /// What the evaluation in progress decided, written at its end.
    batch: Batch,
    /// Recorded notifications not yet handed out by [`Engine::take_outbox`].
    queue: Vec<Pending>,
    /// A write failed: the open alerts in memory may be ahead of the stored ones; reload before evaluating.
    stale: bool,
    clock: Arc<dyn Clock>,
    options: Options,
    latest: Latest,
    instances: BTreeMap<String, Instance>,
    silences: Vec<Silence>,
    slo: BTreeMap<String, Buckets>,
    impairments: BTreeMap<String, Impairment>,
    last_flush_ms: i64,
}

/// A notification and the notifiers it goes to.
pub type Outgoing = (Vec<String>, Notification);

impl Engine {
    /// Opens the engine over `rules`, with its state in the SQLite file `state_db` (created when missing).
    pub fn open(rules: Rules, state_db: &Path, clock: Arc<dyn Clock>, options: Options) -> Result<Self, AlertError> {
        Self::with_state(rules, Arc::new(SqliteState::open(state_db)?), clock, options)
    }

    /// Opens the engine over `rules` with its state in `store` (SQLite, or PostgreSQL for a leader): loads the
    /// open alerts, silences and SLO buckets, and queues the notifications recorded but not delivered (by this
    /// process before a restart, or by the previous leader) for [`take_outbox`](Self::take_outbox); those older
    /// than [`OUTBOX_MAX_AGE_MS`] are given up instead.
    pub fn with_state(
        rules: Rules,
        store: Arc<dyn AlertState>,
        clock: Arc<dyn Clock>,
        options: Options,
    ) -> Result<Self, AlertError> {
        let instances = load_instances(store.as_ref())?;
        let now = clock.now_ms();
        let mut silences = Vec::new();
        for (id, silence) in store.silences()? {
            // Silences that ended a week ago are only noise in the list.
            if silence.ends_ms < now - SILENCES_KEPT_MS {
                if let Err(error) = store.delete_silence(id) {
                    tracing::debug!(%error, id, "old silence not deleted");
                }
            } else {
                silences.push(Silence { id, ..silence });
            }
        }
        let mut queue = Vec::new();
        for pending in store.undelivered()? {
            if pending.created_ms < now - OUTBOX_MAX_AGE_MS {
                let given_up = store.settle(pending.id, &Settled::Failed("too old to resume".to_owned()));
                if let Err(error) = given_up {
                    tracing::debug!(%error, id = pending.id, "old notification not given up");
                }
            } else {
                queue.push(pending);
            }
        }
        if !queue.is_empty() {
            tracing::info!(count = queue.len(), "resuming notifications recorded but not delivered");
        }
        let mut slo: BTreeMap<String, Buckets> = rules
            .checks
            .values()
            .filter(|check| check.slo.is_some())
            .map(|check| (check.name.clone(), Buckets::default()))
            .collect();
        for (check, resolution, start, counts) in store.buckets()? {
            if let Some(buckets) = slo.get_mut(&check) {
                buckets.load(resolution, start, counts);
            }
        }
        Ok(Self {
            rules,
            store,
            batch: Batch::default(),
            queue,
            stale: false,
            clock,
            options,
            latest: Latest::default(),
            instances,
            silences,
            slo,
            impairments: BTreeMap::new(),
            last_flush_ms: now,
        })
    }

    /// Takes one run's result. Results of unknown checks or regions are ignored.
    pub fn observe(&mut self, result: &RunResult) {
        let Some(check) = self.rules.checks.get(&result.check) else { return };
        if !check.regions.contains(&result.region) {
            return;
        }
        let at = result.planned_at_ms;
        // A run planned inside a pause window is no data (a prober that made it anyway is not heard).
        if maintenance::in_mode(&self.rules.maintenance, &check.name, at, MaintenanceMode::Pause) {
            return;
        }
        self.latest.observe(result);
        let Some(buckets) = self.slo.get_mut(&result.check) else { return };
        let impaired = self.instances.contains_key(&format!("{REGION_IMPAIRED}/{}", result.region));
        let maintenance = maintenance::active_for(&self.rules.maintenance, &check.name, at).next().is_some()
            || self.silences.iter().any(|silence| silence.covers_run(&check.name, &result.region, &check.labels, at));
        if !impaired && !maintenance {
            buckets.record(at, !result.outcome.success(), self.clock.now_ms());
        }
    }

    /// Evaluates every rule now and returns the notifications to send (call after each batch of results and on
    /// a timer, so pending alerts fire and recoveries resolve without new results).
    ///
    /// What it decides is written in one transaction, notifications included (as outbox rows, then available from
    /// [`take_outbox`](Self::take_outbox)). When that write fails (on PostgreSQL: this replica does not lead), it
    /// returns nothing, queues nothing, and reloads the open alerts from the store before the next evaluation.
    pub fn evaluate(&mut self) -> Vec<Outgoing> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        if self.stale {
            match load_instances(self.store.as_ref()) {
                Ok(instances) => {
                    self.instances = instances;
                    self.stale = false;
                }
                Err(error) => {
                    tracing::warn!(%error, "alert state not reloaded: not evaluating");
                    return out;
                }
            }
        }
        self.batch = Batch::default();
        let mut seen = BTreeSet::new();
        self.evaluate_impairment(now, &mut out, &mut seen);
        let impaired: BTreeSet<String> = self.impaired_set();
        // Every rule's condition first: a check held back by a dependency (in any rule) is named in the alert of
        // the dependency that is down, the root.
        let evaluations: Vec<Vec<(&CheckInfo, quorum::Evaluation)>> = self
            .rules
            .alerts
            .iter()
            .map(|rule| {
                rule.checks
                    .iter()
                    .filter_map(|name| self.rules.checks.get(name))
                    .map(|check| {
                        let mut evaluation =
                            quorum::evaluate(rule, check, &self.rules.checks, &self.latest, &impaired, now);
                        // A paused check has no data: its alert neither fires nor resolves.
                        if maintenance::in_mode(&self.rules.maintenance, &check.name, now, MaintenanceMode::Pause) {
                            evaluation.verdict = Verdict::Unknown;
                        }
                        (check, evaluation)
                    })
                    .collect()
            })
            .collect();
        let mut held_back: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (check, evaluation) in evaluations.iter().flatten() {
            for (_, root) in &evaluation.held {
                held_back.entry(root.clone()).or_default().insert(check.name.clone());
            }
        }
        let mut all_steps = Vec::new();
        for (rule, evaluations) in self.rules.alerts.iter().zip(evaluations) {
            let timing = Timing {
                hold_ms: match rule.hold {
                    Hold::For(hold) => millis(hold),
                    Hold::Consecutive(_) => 0,
                },
                resolve_after_ms: millis(rule.resolve_after),
            };
            let mut steps = Vec::new();
            for (check, evaluation) in evaluations {
                let name = &check.name;
                let left_out: Vec<&String> = check.regions.iter().filter(|r| impaired.contains(*r)).collect();
                let word = match rule.state {
                    FailingState::Down => "down",
                    FailingState::Degraded => "degraded or down",
                };
                let mut what = format!(
                    "{name} is {word} in {} of {} regions ({})",
                    evaluation.failing.len(),
                    evaluation.counted,
                    evaluation.failing.join(", ")
                );
                if !left_out.is_empty() {
                    let names: Vec<&str> = left_out.iter().map(|r| r.as_str()).collect();
                    what.push_str(&format!("; impaired regions left out: {}", names.join(", ")));
                }
                if let Some(dependents) = held_back.get(name.as_str()) {
                    let count = dependents.len();
                    let names: Vec<&str> = dependents.iter().map(String::as_str).collect();
                    let word = if count == 1 { "check" } else { "checks" };
                    what.push_str(&format!("; {count} dependent {word} held back (not paged): {}", names.join(", ")));
                }
                let observed = Observed {
                    verdict: evaluation.verdict,
                    regions: evaluation.failing,
                    reason: evaluation.reason,
                    error: evaluation.error,
                    what,
                };
                let mut labels = check.labels.clone();
                labels.extend(rule.labels.clone());
                let template = self.template(&rule.name, Some(check), None, &rule.severity, labels, &rule.notify);
                steps.push((template, observed));
            }
            all_steps.push((timing, steps));
        }
        for (timing, steps) in all_steps {
            for (template, observed) in steps {
                seen.insert(template.key.clone());
                self.advance(template, observed, timing, now, &mut out);
            }
        }
        self.evaluate_slos(now, &mut out, &mut seen);
        // Alerts whose rule, check or region is gone from the config resolve.
        let gone: Vec<String> = self.instances.keys().filter(|key| !seen.contains(*key)).cloned().collect();
        for key in gone {
            if let Some(instance) = self.instances.get(&key).cloned() {
                let observed = Observed {
                    verdict: Verdict::False,
                    regions: instance.regions.clone(),
                    reason: instance.reason.clone(),
                    error: instance.error.clone(),
                    what: instance.what.clone(),
                };
                self.advance(instance, observed, Timing { hold_ms: 0, resolve_after_ms: 0 }, now, &mut out);
            }
        }
        self.repeat(now, &mut out);
        let out = self.commit(now, out);
        if now - self.last_flush_ms >= millis(self.options.flush_interval) {
            self.flush();
        }
        out
    }

    /// Writes the evaluation's batch; on success queues its outbox rows and returns `out`, on failure nothing.
    fn commit(&mut self, now: i64, out: Vec<Outgoing>) -> Vec<Outgoing> {
        let mut batch = std::mem::take(&mut self.batch);
        if batch.is_empty() {
            return out;
        }
        batch.at_ms = now;
        match self.store.commit(&batch) {
            Ok(ids) => {
                for ((notifier, notification), id) in batch.notify.into_iter().zip(ids) {
                    self.queue.push(Pending { id, notifier, notification, attempts: 0, created_ms: now });
                }
                out
            }
            Err(error) => {
                if error.is_fenced() {
                    tracing::warn!(%error, "alert state not written: not leading; nothing is sent");
                } else {
                    tracing::warn!(%error, "alert state not written; nothing is sent, it is decided again next time");
                }
                self.stale = true;
                Vec::new()
            }
        }
    }

    /// The notifications recorded since the last call (and, after opening, those resumed): hand them to
    /// [`Dispatcher::send_recorded`](crate::notify::Dispatcher::send_recorded), which claims, sends and settles
    /// each.
    pub fn take_outbox(&mut self) -> Vec<Pending> {
        std::mem::take(&mut self.queue)
    }

    /// The state the engine writes to (the dispatcher settles outbox rows in it).
    pub fn state(&self) -> Arc<dyn AlertState> {
        self.store.clone()
    }

    fn evaluate_impairment(&mut self, now: i64, out: &mut Vec<Outgoing>, seen: &mut BTreeSet<String>) {
        let (found, with_data) = impairment::candidates(&self.rules, &self.latest, now);
        let timing = Timing { hold_ms: 0, resolve_after_ms: millis(self.options.impairment_resolve_after) };
        let regions = self.rules.regions.clone();
        for region in &regions {
            let (verdict, what, reason, error) = match found.get(region) {
                Some(found) => (
                    Verdict::True,
                    format!(
                        "region {region} is impaired: {} of its {} checks fail there while other regions pass them \
                         ({}); it is left out of alert quorums",
                        found.failing_checks.len(),
                        found.fresh_checks,
                        found.failing_checks.join(", ")
                    ),
                    found.reason.clone(),
                    found.error.clone(),
                ),
                None if with_data.contains(region) => (Verdict::False, String::new(), None, None),
                None => (Verdict::Unknown, String::new(), None, None),
            };
            let observed = Observed { verdict, regions: vec![region.clone()], reason, error, what };
            let severity = self.rules.probe_health.severity.clone();
            let notify = self.rules.probe_health_notify.clone();
            let template = self.template(REGION_IMPAIRED, None, Some(region), &severity, BTreeMap::new(), &notify);
            seen.insert(template.key.clone());
            self.advance(template, observed, timing, now, out);
        }
        self.impairments = found;
    }

    fn evaluate_slos(&mut self, now: i64, out: &mut Vec<Outgoing>, seen: &mut BTreeSet<String>) {
        let names: Vec<String> =
            self.rules.checks.values().filter(|check| check.slo.is_some()).map(|check| check.name.clone()).collect();
        for name in names {
            let Some(check) = self.rules.checks.get(&name).cloned() else { continue };
            let (Some(objective), Some(buckets)) = (&check.slo, self.slo.get(&check.name)) else { continue };
            let budget = objective.budget();
            let burns: Vec<(f64, f64)> = BURN_ALERTS
                .iter()
                .map(|alert| {
                    let long = slo::burn_rate(buckets.recent(now, alert.long_ms), budget);
                    (long, slo::burn_rate(buckets.recent(now, alert.short_ms), budget))
                })
                .collect();
            let firing =
                |alert: &slo::BurnAlert, (long, short): (f64, f64)| long >= alert.factor && short >= alert.factor;
            let keys: Vec<String> = BURN_ALERTS.iter().map(|alert| format!("{}/{}", alert.name, check.name)).collect();
            let open = keys.iter().any(|key| self.instances.contains_key(key));
            if !open && !BURN_ALERTS.iter().zip(&burns).any(|(alert, burn)| firing(alert, *burn)) {
                // Nothing fires or resolves: skip the summaries (this runs at every evaluation).
                seen.extend(keys);
                continue;
            }
            let remaining = slo::budget_remaining(buckets.window(now, millis(objective.window)), budget);
            // As the dashboard says it: an overspent budget is exhausted, never a negative percentage.
            let left = match remaining > 0.0 {
                true => format!("{:.1}% of the budget left", remaining.min(1.0) * 100.0),
                false => format!("the budget exhausted: {:.1}× spent", 1.0 - remaining),
            };
            let mut steps = Vec::new();
            for (alert, (long, short)) in BURN_ALERTS.into_iter().zip(burns) {
                let verdict = if firing(&alert, (long, short)) { Verdict::True } else { Verdict::False };
                let what = format!(
                    "{} burns its error budget {long:.1}x over {} and {short:.1}x over {} (objective {}% over {}; \
                     {left})",
                    check.name,
                    window_name(alert.long_ms),
                    window_name(alert.short_ms),
                    objective.objective,
                    probenet_checks::duration::format(objective.window),
                );
                let observed = Observed { verdict, regions: Vec::new(), reason: None, error: None, what };
                let template = self.template(
                    alert.name,
                    Some(&check),
                    None,
                    alert.severity,
                    check.labels.clone(),
                    &check.slo_notify,
                );
                steps.push((template, observed));
            }
            for (template, observed) in steps {
                seen.insert(template.key.clone());
                self.advance(template, observed, Timing { hold_ms: 0, resolve_after_ms: 0 }, now, out);
            }
        }
    }

    /// A fresh pending instance (used only when none is open under its key).
    fn template(
        &self,
        alert: &str,
        check: Option<&CheckInfo>,
        region: Option<&String>,
        severity: &str,
        labels: BTreeMap<String, String>,
        notify: &[String],
    ) -> Instance {
        let subject = check.map(|check| check.name.clone()).or_else(|| region.cloned()).unwrap_or_default();
        let base = self.options.dashboard_url.as_deref().map(|base| base.trim_end_matches('/').to_owned());
        let dashboard_url = base.map(|base| match (check, region) {
            (Some(check), _) => format!("{base}/checks/{}", check.name),
            (None, Some(region)) => format!("{base}/regions/{region}"),
            (None, None) => base,
        });
        Instance {
            key: format!("{alert}/{subject}"),
            alert: alert.to_owned(),
            check: check.map(|check| check.name.clone()),
            target: check.map(|check| check.target.clone()),
            phase: Phase::Pending,
            active_since_ms: self.clock.now_ms(),
            firing_since_ms: None,
            clear_since_ms: None,
            notified: false,
            last_notified_ms: None,
            regions: Vec::new(),
            total_regions: check.map(|check| check.regions.len()).unwrap_or(self.rules.regions.len()),
            reason: None,
            error: None,
            what: String::new(),
            flaps: 0,
            severity: severity.to_owned(),
            labels,
            notify: notify.to_vec(),
            dashboard_url,
        }
    }

    /// Steps the open instance under `template.key` (or `template` itself, when none is open and the condition
    /// holds), stores the change and queues what to send.
    fn advance(&mut self, template: Instance, observed: Observed, timing: Timing, now: i64, out: &mut Vec<Outgoing>) {
        let key = template.key.clone();
        let existing = self.instances.get(&key).cloned();
        let is_new = existing.is_none();
        if is_new && observed.verdict != Verdict::True {
            return;
        }
        let mut instance = existing.clone().unwrap_or(template);
        let change = instance.step(observed, timing, now);
        match change {
            Change::Dropped => {
                self.instances.remove(&key);
                if !is_new {
                    self.forget(&key);
                }
            }
            Change::Resolved => {
                self.instances.remove(&key);
                if instance.notified {
                    self.notify(instance.notify.clone(), instance.notification(Status::Resolved, now), out);
                }
                self.record(&instance, Status::Resolved, instance.notified, now);
                self.forget(&key);
            }
            Change::Fired => {
                let silenced = self.silenced(&instance, now);
                if !silenced {
                    instance.notified = true;
                    instance.last_notified_ms = Some(now);
                    self.notify(instance.notify.clone(), instance.notification(Status::Firing, now), out);
                }
                self.record(&instance, Status::Firing, !silenced, now);
                self.keep(instance);
            }
            Change::None if existing.as_ref() != Some(&instance) => self.keep(instance),
            Change::None => {}
        }
    }

    /// Queues a notification to `notifiers`: returned by this evaluation and recorded with it.
    fn notify(&mut self, notifiers: Vec<String>, notification: Notification, out: &mut Vec<Outgoing>) {
        for notifier in &notifiers {
            self.batch.notify.push((notifier.clone(), notification.clone()));
        }
        out.push((notifiers, notification));
    }

    /// Keeps an open alert, in memory now and in the store with the evaluation's batch.
    fn keep(&mut self, instance: Instance) {
        match serde_json::to_string(&instance) {
            Ok(body) => {
                self.batch.delete.retain(|key| *key != instance.key);
                self.batch.put.retain(|(key, _)| *key != instance.key);
                self.batch.put.push((instance.key.clone(), body));
            }
            Err(error) => tracing::warn!(%error, alert = %instance.key, "could not store alert state"),
        }
        self.instances.insert(instance.key.clone(), instance);
    }

    /// Forgets an open alert in the store, with the evaluation's batch.
    fn forget(&mut self, key: &str) {
        self.batch.put.retain(|(put, _)| put != key);
        if !self.batch.delete.iter().any(|deleted| deleted == key) {
            self.batch.delete.push(key.to_owned());
        }
    }

    fn record(&mut self, instance: &Instance, status: Status, notified: bool, now: i64) {
        let entry = HistoryEntry {
            at_ms: now,
            key: instance.key.clone(),
            alert: instance.alert.clone(),
            check: instance.check.clone(),
            status,
            regions: instance.regions.clone(),
            summary: instance.summary(),
            notified,
        };
        self.batch.history.push(entry);
    }

    /// Sends firing alerts again after the repeat interval, and those whose silence ended.
    fn repeat(&mut self, now: i64, out: &mut Vec<Outgoing>) {
        let repeat = millis(self.options.repeat_interval);
        let due: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.phase == Phase::Firing)
            .filter(|i| !i.notified || i.last_notified_ms.is_none_or(|at| now - at >= repeat))
            .filter(|i| !self.silenced(i, now))
            .map(|i| i.key.clone())
            .collect();
        for key in due {
            let Some(mut instance) = self.instances.get(&key).cloned() else { continue };
            let first = !instance.notified;
            instance.notified = true;
            instance.last_notified_ms = Some(now);
            self.notify(instance.notify.clone(), instance.notification(Status::Firing, now), out);
            if first {
                self.record(&instance, Status::Firing, true, now);
            }
            self.keep(instance);
        }
    }

    fn silenced(&self, instance: &Instance, now: i64) -> bool {
        let subject = Subject {
            alert: &instance.alert,
            check: instance.check.as_deref(),
            regions: &instance.regions,
            labels: &instance.labels,
        };
        self.silences.iter().any(|silence| silence.active(now) && silence.matches(&subject))
            || instance.check.as_deref().is_some_and(|check| self.in_maintenance(check, now))
    }

    /// Whether a maintenance window of the config (mute or pause) is in force for `check` at `now`.
    fn in_maintenance(&self, check: &str, now: i64) -> bool {
        maintenance::active_for(&self.rules.maintenance, check, now).next().is_some()
    }

    fn impaired_set(&self) -> BTreeSet<String> {
        self.instances
            .values()
            .filter(|instance| instance.alert == REGION_IMPAIRED)
            .flat_map(|instance| instance.regions.iter().cloned())
            .collect()
    }

    /// Writes changed SLO buckets to the store and drops those past their window.
    pub fn flush(&mut self) {
        let now = self.clock.now_ms();
        self.last_flush_ms = now;
        let mut changed: Vec<BucketRow> = Vec::new();
        let mut dropped = Vec::new();
        for (check, buckets) in &mut self.slo {
            let window = self.rules.checks.get(check).and_then(|c| c.slo.as_ref()).map(|slo| millis(slo.window));
            for (resolution, start) in std::mem::take(&mut buckets.dirty) {
                if let Some(counts) = buckets.get(resolution, start) {
                    changed.push((check.clone(), resolution, start, counts));
                }
            }
            for (resolution, start) in buckets.prune(now, window.unwrap_or(0)) {
                changed.retain(|row| !(row.0 == *check && row.1 == resolution && row.2 == start));
                dropped.push((check.clone(), resolution, start));
            }
        }
        if changed.is_empty() && dropped.is_empty() {
            return;
        }
        if let Err(error) = self.store.write_buckets(&changed, &dropped) {
            tracing::warn!(%error, "could not store SLO buckets");
            // Written next time (by this engine, if it still may).
            for (check, resolution, start, _) in changed {
                if let Some(buckets) = self.slo.get_mut(&check) {
                    buckets.dirty.insert((resolution, start));
                }
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The stored open alerts, by key.
fn load_instances(store: &dyn AlertState) -> Result<BTreeMap<String, Instance>, AlertError> {
    let mut instances = BTreeMap::new();
    for body in store.instances()? {
        let instance: Instance = serde_json::from_str(&body)?;
        instances.insert(instance.key.clone(), instance);
    }
    Ok(instances)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn window_name(ms: i64) -> String {
    probenet_checks::duration::format(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}
