//! How each prober is doing, as this scheduler sees it: what its heartbeats report (backlog, drops, skips,
//! start lateness) and how late its results arrive here. A prober whose results arrive more than
//! [`LATE_AFTER`] after their run ended, within the last [`WINDOW`], is late: `/metrics` and the dashboard's
//! Probers page say so.
//!
//! Replicated, each replica knows the probers that talk to it (a prober heartbeats and sends to one replica
//! at a time); the page of another replica shows their heartbeat, not these figures.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use probenet_checks::wire::{ProberReport, RunResult};
use probenet_exporters::{FamilySamples, MetricType};

/// Results arriving later than this after their run ended make their prober late.
pub const LATE_AFTER: Duration = Duration::from_secs(15);
/// How far back the arrival delays count.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The most delay samples kept per prober (one per batch).
const SAMPLES: usize = 600;
/// A prober not heard of for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// What this scheduler knows of one prober.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Its last heartbeat's report.
    pub report: Option<ProberReport>,
    /// The latest arrival of its results after their run ended, over the last [`WINDOW`], in seconds.
    pub worst_delay_seconds: Option<f64>,
}

impl Seen {
    /// Why the prober counts as late, if it does.
    pub fn late(&self) -> Option<String> {
        let delay = self.worst_delay_seconds?;
        (delay > LATE_AFTER.as_secs_f64()).then(|| format!("results arrive up to {delay:.0} s after their run"))
    }
}

#[derive(Debug)]
struct Entry {
    report: Option<ProberReport>,
    /// (when a batch arrived, its latest result's delay in ms).
    delays: VecDeque<(Instant, i64)>,
    heard: Instant,
}

/// Every prober's figures.
#[derive(Debug, Default)]
pub struct Health {
    probers: Mutex<HashMap<(String, String), Entry>>,
}

impl Health {
    fn with<T>(&self, region: &str, name: &str, now: Instant, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut probers = self.probers.lock().unwrap_or_else(PoisonError::into_inner);
        probers.retain(|_, entry| now.duration_since(entry.heard) < FORGET_AFTER);
        let entry = probers.entry((region.to_owned(), name.to_owned())).or_insert_with(|| Entry {
            report: None,
            delays: VecDeque::new(),
            heard: now,
        });
        entry.heard = now;
        f(entry)
    }

    /// Takes a heartbeat's report.
    pub fn heartbeat(&self, region: &str, name: &str, report: Option<ProberReport>, now: Instant) {
        self.with(region, name, now, |entry| entry.report = report);
    }

    /// Takes a batch of results accepted from a prober at `now_ms` (wall clock) and `now`.
    pub fn results(&self, region: &str, name: &str, results: &[RunResult], now_ms: i64, now: Instant) {
        let ended = |result: &RunResult| {
            result.started_at_ms.saturating_add((result.outcome.duration_seconds.max(0.0) * 1000.0) as i64)
        };
        let Some(worst) = results.iter().map(|result| now_ms.saturating_sub(ended(result)).max(0)).max() else {
            return;
        };
        self.with(region, name, now, |entry| {
            entry.delays.push_back((now, worst));
            while entry.delays.len() > SAMPLES
                || entry.delays.front().is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
            {
                entry.delays.pop_front();
            }
        });
    }

    /// What is known of a prober at `now`.
    pub fn seen(&self, region: &str, name: &str, now: Instant) -> Seen {
        let probers = self.probers.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = probers.get(&(region.to_owned(), name.to_owned())) else { return Seen::default() };
        let worst =
            entry.delays.iter().filter(|(at, _)| now.duration_since(*at) <= WINDOW).map(|(_, delay)| *delay).max();
        Seen { report: entry.report.clone(), worst_delay_seconds: worst.map(|ms| ms as f64 / 1000.0) }
    }

    /// The series of the live probers `probers` (region, name).
    pub fn families<'a>(&self, probers: impl Iterator<Item = (&'a str, &'a str)>, now: Instant) -> Vec<FamilySamples> {
        type Read = fn(&Seen) -> Option<f64>;
        let read: [(&str, &str, MetricType, Read); 6] = [
            (
                "probenet_scheduler_prober_result_delay_seconds",
                "The latest arrival of a prober's results after their run ended, over the last minute.",
                MetricType::Gauge,
                |seen| seen.worst_delay_seconds,
            ),
            (
                "probenet_scheduler_prober_late",
                "1 when a prober's results arrived more than 15 s after their run in the last minute.",
                MetricType::Gauge,
                |seen| Some(if seen.late().is_some() { 1.0 } else { 0.0 }),
            ),
            (
                "probenet_scheduler_prober_results_pending",
                "Results a prober holds unacknowledged (memory and spool), as its last heartbeat said.",
                MetricType::Gauge,
                |seen| seen.report.as_ref().map(|report| report.results_pending as f64),
            ),
            (
                "probenet_scheduler_prober_results_dropped_total",
                "Results a prober lost (memory or spool full, refused), as its last heartbeat said.",
                MetricType::Counter,
                |seen| seen.report.as_ref().map(|report| report.results_dropped_total as f64),
            ),
            (
                "probenet_scheduler_prober_runs_skipped_total",
                "Planned runs a prober did not make (overrun, busy, behind), as its last heartbeat said.",
                MetricType::Counter,
                |seen| seen.report.as_ref().map(|report| report.runs_skipped_total as f64),
            ),
            (
                "probenet_scheduler_prober_start_lateness_p99_seconds",
                "The 99th percentile of how late a prober's runs start, as its last heartbeat said.",
                MetricType::Gauge,
                |seen| seen.report.as_ref().and_then(|report| report.start_lateness_p99_ms).map(|ms| ms / 1000.0),
            ),
        ];
        let seen: Vec<((String, String), Seen)> = probers
            .map(|(region, name)| ((region.to_owned(), name.to_owned()), self.seen(region, name, now)))
            .collect();
        read.iter()
            .map(|(name, help, kind, value)| FamilySamples {
                name: (*name).to_owned(),
                help: (*help).to_owned(),
                kind: *kind,
                series: seen
                    .iter()
                    .filter_map(|((region, prober), seen)| {
                        let labels = vec![("prober".to_owned(), prober.clone()), ("region".to_owned(), region.clone())];
                        value(seen).map(|value| (labels, value))
                    })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(started_at_ms: i64, seconds: f64) -> RunResult {
        let mut outcome = probenet_checks::Outcome::representative(&[], serde_json::Value::Null);
        outcome.duration_seconds = seconds;
        RunResult {
            check: "c".into(),
            region: "eu".into(),
            planned_at_ms: started_at_ms,
            started_at_ms,
            prober: "p".into(),
            outcome,
        }
    }

    #[test]
    fn a_prober_is_late_while_its_results_arrived_late_within_the_window() {
        let health = Health::default();
        let start = Instant::now();
        health.results("eu", "p", &[result(100_000, 0.5)], 101_000, start);
        assert_eq!(health.seen("eu", "p", start).worst_delay_seconds, Some(0.5));
        assert_eq!(health.seen("eu", "p", start).late(), None);
        // A replay of the spool: results of runs that ended 40 s ago.
        health.results("eu", "p", &[result(60_000, 1.0), result(100_500, 0.1)], 101_000, start);
        let seen = health.seen("eu", "p", start);
        assert_eq!(seen.worst_delay_seconds, Some(40.0));
        assert_eq!(seen.late().as_deref(), Some("results arrive up to 40 s after their run"));
        // A minute later, with fresh results only, it is on time again.
        let later = start + WINDOW + Duration::from_secs(1);
        health.results("eu", "p", &[result(160_000, 0.2)], 160_400, later);
        assert_eq!(health.seen("eu", "p", later).late(), None);
        assert!(health.seen("eu", "other", later).worst_delay_seconds.is_none());
    }

    #[test]
    fn reports_show_per_live_prober_and_silent_probers_are_forgotten() {
        let health = Health::default();
        let start = Instant::now();
        let report = ProberReport { results_pending: 7, results_dropped_total: 3, ..ProberReport::default() };
        health.heartbeat("eu", "p", Some(report), start);
        let families = health.families([("eu", "p"), ("us", "q")].into_iter(), start);
        let pending = families.iter().find(|f| f.name == "probenet_scheduler_prober_results_pending").unwrap();
        assert_eq!(pending.series.len(), 1, "a prober without a report has no such series: {pending:?}");
        assert_eq!(pending.series[0].1, 7.0);
        let late = families.iter().find(|f| f.name == "probenet_scheduler_prober_late").unwrap();
        assert_eq!(late.series.len(), 2);
        // Ten minutes of silence: forgotten at the next news of any prober.
        health.heartbeat("us", "q", None, start + FORGET_AFTER + Duration::from_secs(1));
        assert_eq!(health.seen("eu", "p", start + FORGET_AFTER).report, None);
    }
}
