//! The engine's read side and silences: open alerts, history, impaired regions, SLO status, for the API.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Engine, millis};
use crate::error::AlertError;
use crate::impairment::Impairment;
use crate::instance::Phase;
use crate::silence::Silence;
use crate::slo::{self, BURN_ALERTS, BURN_WINDOWS, SloView};
use crate::state::HistoryEntry;

/// An open alert, as the API and dashboard show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    /// The instance's identity.
    pub key: String,
    /// The alert's name.
    pub alert: String,
    /// The check, when about one.
    pub check: Option<String>,
    /// `pending` or `firing`.
    pub state: Phase,
    /// Its severity.
    pub severity: String,
    /// The regions involved.
    pub regions: Vec<String>,
    /// The regions the check runs in.
    pub total_regions: usize,
    /// When the condition started holding, unix ms.
    pub since_ms: i64,
    /// When it started firing.
    pub firing_since_ms: Option<i64>,
    /// Whether a silence applies now.
    pub silenced: bool,
    /// Whether notifiers were told.
    pub notified: bool,
    /// Times it recovered and failed again while firing.
    pub flaps: u32,
    /// The summary line.
    pub summary: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its notifiers.
    pub notify: Vec<String>,
}

impl Engine {
    /// Open alerts (pending and firing), most recent first.
    pub fn alerts(&self) -> Vec<AlertView> {
        let now = self.clock.now_ms();
        let mut views: Vec<AlertView> = self
            .instances
            .values()
            .map(|i| AlertView {
                key: i.key.clone(),
                alert: i.alert.clone(),
                check: i.check.clone(),
                state: i.phase,
                severity: i.severity.clone(),
                regions: i.regions.clone(),
                total_regions: i.total_regions,
                since_ms: i.active_since_ms,
                firing_since_ms: i.firing_since_ms,
                silenced: self.silenced(i, now),
                notified: i.notified,
                flaps: i.flaps,
                summary: i.summary(),
                labels: i.labels.clone(),
                notify: i.notify.clone(),
            })
            .collect();
        views.sort_by(|a, b| b.since_ms.cmp(&a.since_ms).then_with(|| a.key.cmp(&b.key)));
        views
    }

    /// The newest `limit` firing and resolved events, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, AlertError> {
        self.store.history(limit)
    }

    /// The regions left out of quorums now, with why (details only while they still fail).
    pub fn impaired_regions(&self) -> Vec<Impairment> {
        self.impaired_set()
            .into_iter()
            .map(|region| {
                self.impairments.get(&region).cloned().unwrap_or(Impairment {
                    region,
                    failing_checks: Vec::new(),
                    fresh_checks: 0,
                    reason: None,
                    error: None,
                })
            })
            .collect()
    }

    /// The SLO of every check that has one.
    pub fn slo_status(&self) -> Vec<SloView> {
        let now = self.clock.now_ms();
        self.rules
            .checks
            .values()
            .filter_map(|check| {
                let objective = check.slo.as_ref()?;
                let buckets = self.slo.get(&check.name)?;
                let budget = objective.budget();
                let window_counts = buckets.window(now, millis(objective.window));
                let burn_rates = BURN_WINDOWS
                    .iter()
                    .map(|(name, ms)| ((*name).to_owned(), slo::burn_rate(buckets.recent(now, *ms), budget)))
                    .collect();
                let alerts_firing = BURN_ALERTS
                    .iter()
                    .filter(|alert| {
                        self.instances
                            .get(&format!("{}/{}", alert.name, check.name))
                            .is_some_and(|i| i.phase == Phase::Firing)
                    })
                    .map(|alert| alert.name.to_owned())
                    .collect();
                Some(SloView {
                    check: check.name.clone(),
                    objective: objective.objective,
                    window_ms: millis(objective.window),
                    window_counts,
                    budget_remaining: slo::budget_remaining(window_counts, budget),
                    burn_rates,
                    alerts_firing,
                })
            })
            .collect()
    }

    /// Adds a silence (or maintenance window) and returns its id.
    pub fn add_silence(&mut self, silence: Silence) -> Result<u64, AlertError> {
        silence.validate().map_err(AlertError::InvalidSilence)?;
        let id = self.store.add_silence(&silence)?;
        self.silences.push(Silence { id, ..silence });
        Ok(id)
    }

    /// Silences that have not ended yet (in force or to come).
    pub fn silences(&self) -> Vec<Silence> {
        let now = self.clock.now_ms();
        self.silences.iter().filter(|silence| silence.ends_ms > now).cloned().collect()
    }

    /// Ends a silence now; false when no silence has this id or it already ended.
    pub fn expire_silence(&mut self, id: u64) -> Result<bool, AlertError> {
        let now = self.clock.now_ms();
        let Some(silence) = self.silences.iter_mut().find(|silence| silence.id == id && silence.ends_ms > now) else {
            return Ok(false);
        };
        let mut ended = silence.clone();
        ended.ends_ms = now;
        ended.starts_ms = ended.starts_ms.min(now);
        // Stored first: a refused write leaves the silence as it was.
        self.store.put_silence(&ended)?;
        *silence = ended;
        Ok(true)
    }
}
