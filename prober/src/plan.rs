//! From the scheduler's assignments to runnable pairs: the config parsed once per hash, each assignment
//! matched to its check, and the planned times of each pair (interval grid or cron in its time zone).

use std::collections::HashMap;
use std::sync::Arc;

use probenet_checks::config::maintenance::{Maintenance, MaintenanceMode};
use probenet_checks::config::{Check, Schedule, load_sources};
use probenet_checks::wire::Assignments;

/// One (check, region) pair this prober runs.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The check, validated.
    pub check: Arc<Check>,
    /// The region it runs for.
    pub region: Arc<str>,
    /// Its offset on the interval grid, in milliseconds (0 for cron checks).
    pub offset_ms: u64,
    /// The planned time of its latest stored result, when the scheduler says (see [`wire::Assignment`]).
    pub resume_after_ms: Option<i64>,
    /// The `pause` maintenance windows of its check: its planned runs inside one are not made.
    pub pauses: Arc<[Maintenance]>,
}

impl Pair {
    /// Whether a planned run at `planned_ms` falls in a pause window of its check.
    pub fn paused(&self, planned_ms: i64) -> bool {
        self.pauses.iter().any(|window| window.active(planned_ms))
    }

    /// The first planned run at or after `at_ms` (milliseconds since the Unix epoch).
    pub fn next_at(&self, at_ms: i64) -> Option<i64> {
        next_planned_ms(&self.check.schedule, self.offset_ms, at_ms)
    }
}

/// The first planned time at or after `at_ms` of a schedule (see [`Schedule::planned_at_or_after`]).
pub fn next_planned_ms(schedule: &Schedule, offset_ms: u64, at_ms: i64) -> Option<i64> {
    schedule.planned_at_or_after(offset_ms, at_ms)
}

/// The current time in milliseconds since the Unix epoch (the one clock: [`probenet_checks::time::now_ms`]).
pub use probenet_checks::time::now_ms;

/// The current time in microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// What one set of assignments turned into.
#[derive(Debug, Default)]
pub struct Plan {
    /// The pairs to run.
    pub pairs: Vec<Pair>,
    /// Assigned checks the config does not define (skipped).
    pub unknown: Vec<String>,
    /// Errors of a new config that did not validate (the previous one is kept); empty otherwise.
    pub config_errors: Vec<String>,
    /// Whether a new config was parsed for this plan.
    pub config_changed: bool,
    /// The new config, when one was parsed for this plan.
    pub new_config: Option<Arc<probenet_checks::Config>>,
}

/// Keeps the validated config between assignment updates, re-parsing it only when its hash changes.
#[derive(Debug, Default)]
pub struct Planner {
    hash: Option<String>,
    rejected_hash: Option<String>,
    checks: HashMap<String, Arc<Check>>,
    pauses: HashMap<String, Arc<[Maintenance]>>,
    regions: HashMap<String, Arc<str>>,
    parses: usize,
}

impl Planner {
    /// A planner with no config yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times a config was parsed (for tests and logs).
    pub fn parses(&self) -> usize {
        self.parses
    }

    /// The pairs of `assignments`. A config with a new hash is parsed; if it does not validate, the previous
    /// one stays in use and the errors are returned (once per bad hash).
    pub fn update(&mut self, assignments: &Assignments) -> Plan {
        let mut plan = Plan::default();
        let known = self.hash.as_deref() == Some(assignments.config_hash.as_str());
        let rejected = self.rejected_hash.as_deref() == Some(assignments.config_hash.as_str());
        if !known && !rejected {
            self.parses += 1;
            match load_sources(&assignments.config) {
                Ok(config) => {
                    self.checks =
                        config.checks.iter().map(|check| (check.name.clone(), Arc::new(check.clone()))).collect();
                    self.pauses = config
                        .checks
                        .iter()
                        .map(|check| {
                            let pauses: Vec<Maintenance> = config
                                .maintenance
                                .iter()
                                .filter(|window| {
                                    window.mode == MaintenanceMode::Pause && window.applies_to(&check.name)
                                })
                                .cloned()
                                .collect();
                            (check.name.clone(), Arc::from(pauses))
                        })
                        .collect();
                    plan.new_config = Some(Arc::new(config));
                    self.hash = Some(assignments.config_hash.clone());
                    self.rejected_hash = None;
                    plan.config_changed = true;
                }
                Err(errors) => {
                    self.rejected_hash = Some(assignments.config_hash.clone());
                    plan.config_errors = errors.0.iter().map(ToString::to_string).collect();
                }
            }
        }
        for assignment in &assignments.assigned {
            let Some(check) = self.checks.get(&assignment.check) else {
                plan.unknown.push(assignment.check.clone());
                continue;
            };
            let region = match self.regions.get(&assignment.region) {
                Some(region) => region.clone(),
                None => {
                    let region: Arc<str> = Arc::from(assignment.region.as_str());
                    self.regions.insert(assignment.region.clone(), region.clone());
                    region
                }
            };
            plan.pairs.push(Pair {
                check: check.clone(),
                region,
                offset_ms: assignment.offset_ms,
                resume_after_ms: assignment.resume_after_ms,
                pauses: self.pauses.get(&assignment.check).cloned().unwrap_or_else(|| Arc::from(Vec::new())),
            });
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use probenet_checks::load_str;

    fn schedule(yaml: &str) -> Schedule {
        let config = load_str("t.yaml", yaml).unwrap_or_else(|errors| panic!("{errors:?}"));
        config.checks[0].schedule.clone()
    }

    #[test]
    fn interval_times_are_on_the_grid() {
        let every = schedule("checks:\n  - name: a\n    interval: 10s\n    tcp: {target: \"127.0.0.1:1\"}\n");
        assert_eq!(next_planned_ms(&every, 2_500, 1_000_000), Some(1_002_500));
        assert_eq!(next_planned_ms(&every, 2_500, 1_002_500), Some(1_002_500));
        assert_eq!(next_planned_ms(&every, 2_500, 1_002_501), Some(1_012_500));
    }

    #[test]
    fn cron_times_follow_the_time_zone() {
        let cron = schedule(
            "checks:\n  - name: a\n    schedule: \"30 9 * * *\"\n    timezone: Asia/Kolkata\n    tcp: {target: \"127.0.0.1:1\"}\n",
        );
        // 2026-01-05T00:00:00Z; 09:30 in Kolkata (UTC+05:30) is 04:00 UTC.
        let midnight = 1_767_571_200_000;
        let first = next_planned_ms(&cron, 0, midnight).unwrap();
        assert_eq!(first, midnight + 4 * 3_600_000);
        assert_eq!(next_planned_ms(&cron, 0, first), Some(first));
        assert_eq!(next_planned_ms(&cron, 0, first + 1), Some(first + 86_400_000));
    }
}
