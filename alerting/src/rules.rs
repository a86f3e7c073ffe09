//! What the engine evaluates, taken from a validated config: every check (with its regions, interval, labels
//! and SLO), the alert rules over them, and the probe-health settings.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use probenet_checks::config::alerting::{AlertRule, ProbeHealth, Slo};
use probenet_checks::config::maintenance::Maintenance;
use probenet_checks::config::{Config, Schedule};

/// One check as the engine sees it.
#[derive(Debug, Clone)]
pub struct CheckInfo {
    /// Its name.
    pub name: String,
    /// The regions it runs from.
    pub regions: Vec<String>,
    /// How often it runs (cron: the average gap), in milliseconds.
    pub interval_ms: i64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// What it probes.
    pub target: String,
    /// Its SLO.
    pub slo: Option<Slo>,
    /// Where its SLO burn alerts go.
    pub slo_notify: Vec<String>,
    /// The checks it needs (`depends_on`).
    pub depends_on: Vec<String>,
}

/// Everything the engine evaluates.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Every check, by name.
    pub checks: BTreeMap<String, CheckInfo>,
    /// The alert rules.
    pub alerts: Vec<AlertRule>,
    /// Every region.
    pub regions: Vec<String>,
    /// The probe-health settings.
    pub probe_health: ProbeHealth,
    /// Where `region-impaired` alerts go.
    pub probe_health_notify: Vec<String>,
    /// Maintenance windows: while one is in force for a check, its alerts notify nobody and its runs stay out of
    /// its SLO; a `pause` window also makes its results no data.
    pub maintenance: Vec<Maintenance>,
}

impl Rules {
    /// The rules of a validated config.
    pub fn from_config(config: &Config) -> Self {
        let every_notifier: Vec<String> = config
            .alerts
            .iter()
            .flat_map(|rule| rule.notify.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let checks = config
            .checks
            .iter()
            .map(|check| {
                let interval = match &check.schedule {
                    Schedule::Every(interval) => *interval,
                    Schedule::Cron(_) => Duration::from_secs_f64(86_400.0 / check.schedule.runs_per_day().max(1.0)),
                };
                let slo_notify = match check.slo.as_ref().and_then(|slo| slo.notify.clone()) {
                    Some(notify) => notify,
                    None => config
                        .alerts
                        .iter()
                        .filter(|rule| rule.checks.contains(&check.name))
                        .flat_map(|rule| rule.notify.iter().cloned())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                };
                let info = CheckInfo {
                    name: check.name.clone(),
                    regions: check.regions.clone(),
                    interval_ms: i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).max(1),
                    labels: check.labels.clone(),
                    target: check.kind.target(),
                    slo: check.slo.clone(),
                    slo_notify,
                    depends_on: check.depends_on.clone(),
                };
                (check.name.clone(), info)
            })
            .collect();
        Self {
            checks,
            alerts: config.alerts.clone(),
            regions: config.regions.keys().cloned().collect(),
            probe_health: config.probe_health.clone(),
            probe_health_notify: config.probe_health.notify.clone().unwrap_or(every_notifier),
            maintenance: config.maintenance.clone(),
        }
    }
}
