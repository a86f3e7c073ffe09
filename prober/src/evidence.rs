//! When the prober captures evidence of a failure: only for a failed (down) run, at most once per (check,
//! region) pair per interval, a few captures at a time, each within a time cap. What is captured (a traceroute
//! to the target's address) is `probenet_checks::evidence`'s; the runner calls [`Evidence::begin`] once a
//! run is over and its concurrency permit released, so the capture never holds up other checks.
//!
//! The pair's next runs may finish while the capture goes on: their results wait behind the failed one
//! ([`Evidence::emit`]) and follow it as soon as it is sent, so the scheduler gets a pair's results in the order
//! they were planned (the alert engine ignores a run older than the latest one it knows).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use probenet_checks::evidence::{self as capture, Options as TraceOptions};
use probenet_checks::wire::RunResult;
use probenet_checks::{Check, Outcome, State};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::stats::{Counters, add};

/// The default least time between two captures of one pair: 10 minutes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
/// How many captures may run at once on one prober.
const MAX_CONCURRENT: usize = 8;
/// The most pairs remembered; past it, the entries older than the interval are forgotten first.
const MAX_REMEMBERED: usize = 100_000;
/// Added to the traceroute's own time cap before a capture is given up.
const CAP_MARGIN: Duration = Duration::from_secs(2);
/// At most this many results of one pair wait behind its capture; past it they go at once (out of order).
const MAX_HELD: usize = 64;

/// How evidence is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The least time between two captures of one (check, region) pair; `None` captures nothing.
    pub interval: Option<Duration>,
    /// The traceroute's bounds.
    pub traceroute: TraceOptions,
}

impl Default for Policy {
    /// One capture per pair per 10 minutes, the traceroute's defaults (30 hops, 3 probes, 8 s at most).
    fn default() -> Self {
        Self { interval: Some(DEFAULT_INTERVAL), traceroute: TraceOptions::default() }
    }
}

impl Policy {
    /// No capture at all.
    pub fn disabled() -> Self {
        Self { interval: None, ..Self::default() }
    }
}

/// The capture state of one prober: the policy, the last capture of each pair and the permits.
#[derive(Debug)]
pub(crate) struct Evidence {
    policy: Policy,
    last: Mutex<HashMap<(String, String), Instant>>,
    permits: Arc<Semaphore>,
    /// The results waiting behind each capture in progress, by pair.
    held: Mutex<HashMap<(String, String), Vec<RunResult>>>,
    /// How many captures are in progress: when none, [`Evidence::emit`] does not look at `held`.
    capturing: AtomicUsize,
}

/// A capture that [`Evidence::begin`] allowed: its pair's later results wait until [`Evidence::finish`].
#[derive(Debug)]
pub(crate) struct Turn {
    key: (String, String),
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Evidence {
    pub(crate) fn new(policy: Policy) -> Self {
        Self {
            policy,
            last: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
            held: Mutex::new(HashMap::new()),
            capturing: AtomicUsize::new(0),
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<(String, String), Vec<RunResult>>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether captures are on.
    pub(crate) fn enabled(&self) -> bool {
        self.policy.interval.is_some()
    }

    /// Whether `outcome` should get evidence now: a failed run whose pair had none within the interval (the
    /// pair's turn is taken at once, so two failures racing capture once).
    fn take_turn(&self, check: &str, region: &str, counters: &Counters) -> bool {
        let Some(interval) = self.policy.interval else { return false };
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (check.to_owned(), region.to_owned());
        if let Some(at) = last.get(&key)
            && now.duration_since(*at) < interval
        {
            add(&counters.evidence_rate_limited, 1);
            return false;
        }
        if last.len() >= MAX_REMEMBERED {
            last.retain(|_, at| now.duration_since(*at) < interval);
            if last.len() >= MAX_REMEMBERED {
                add(&counters.evidence_rate_limited, 1);
                return false;
            }
        }
        last.insert(key, now);
        true
    }

    /// Whether a failed `outcome` gets a capture, as the rate limit and a free capture slot allow (up and
    /// degraded runs get none). From now until [`Evidence::finish`], the pair's results wait behind this one.
    pub(crate) fn begin(&self, check: &Check, region: &str, outcome: &Outcome, counters: &Counters) -> Option<Turn> {
        if outcome.state != State::Down || !self.take_turn(&check.name, region, counters) {
            return None;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            add(&counters.evidence_busy, 1);
            return None;
        };
        Some(self.hold((check.name.clone(), region.to_owned()), permit))
    }

    /// Starts holding the results of the pair `key` back until the turn is finished.
    fn hold(&self, key: (String, String), permit: tokio::sync::OwnedSemaphorePermit) -> Turn {
        self.held().insert(key.clone(), Vec::new());
        self.capturing.fetch_add(1, Ordering::AcqRel);
        Turn { key, _permit: permit }
    }

    /// Captures a traceroute into the failed `outcome`, bounded by the traceroute's time cap (plus a margin).
    pub(crate) async fn capture(&self, check: &Check, region: &str, outcome: &mut Outcome, counters: &Counters) {
        let cap = self.policy.traceroute.total_timeout + CAP_MARGIN;
        match tokio::time::timeout(cap, capture::capture(check, outcome, self.policy.traceroute)).await {
            Ok(Some(artifact)) => {
                add(&counters.evidence_captured, 1);
                tracing::debug!(check = %check.name, region, "traceroute attached to the failed run");
                outcome.artifacts.push(artifact);
                // The summary line also goes to the run's log (and with it to the result's log record).
                if let Some(evidence) = capture::traceroute_of(outcome) {
                    outcome.log.push(format!("traceroute from {region}: {}", evidence.traceroute.summary));
                }
            }
            Ok(None) => {
                add(&counters.evidence_no_address, 1);
                tracing::debug!(check = %check.name, region, "no address to trace for the failed run");
            }
            Err(_) => add(&counters.evidence_timed_out, 1),
        }
    }

    /// Sends `result` with `send`, unless a capture of its pair is in progress: then it waits behind the
    /// capture's result (at most [`MAX_HELD`] of them; more go at once).
    pub(crate) fn emit(&self, result: RunResult, send: impl Fn(RunResult)) {
        if self.capturing.load(Ordering::Acquire) == 0 {
            return send(result);
        }
        let mut held = self.held();
        match held.get_mut(&(result.check.clone(), result.region.clone())) {
            Some(waiting) if waiting.len() < MAX_HELD => waiting.push(result),
            _ => {
                drop(held);
                send(result);
            }
        }
    }

    /// Ends `turn`: sends its failed `result`, then the pair's results that waited behind it, in order.
    pub(crate) fn finish(&self, turn: Turn, result: RunResult, send: impl Fn(RunResult)) {
        // Under the lock: a result of the pair finishing now waits for the lock and then goes after these.
        let mut held = self.held();
        let waiting = held.remove(&turn.key).unwrap_or_default();
        self.capturing.fetch_sub(1, Ordering::AcqRel);
        send(result);
        for result in waiting {
            send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use probenet_checks::Outcome;
    use probenet_checks::outcome::Reason;
    use probenet_checks::wire::RunResult;

    use super::{Evidence, MAX_HELD, Policy};

    fn result(check: &str, planned_at_ms: i64) -> RunResult {
        RunResult {
            check: check.to_owned(),
            region: "eu".to_owned(),
            planned_at_ms,
            started_at_ms: planned_at_ms,
            prober: "p1".to_owned(),
            outcome: Outcome::failed(Reason::Connect, "refused"),
        }
    }

    #[test]
    fn a_pairs_results_wait_behind_its_capture_and_follow_it_in_order() {
        let evidence = Evidence::new(Policy::default());
        let sent = Mutex::new(Vec::new());
        let send = |result: RunResult| sent.lock().unwrap().push((result.check, result.planned_at_ms));
        // No capture in progress: straight through.
        evidence.emit(result("a", 0), send);
        let permit = evidence.permits.clone().try_acquire_owned().unwrap();
        let turn = evidence.hold(("a".into(), "eu".into()), permit);
        evidence.emit(result("a", 2000), send);
        evidence.emit(result("b", 2000), send);
        evidence.emit(result("a", 3000), send);
        assert_eq!(*sent.lock().unwrap(), [("a".into(), 0), ("b".into(), 2000)], "another pair is not held");
        evidence.finish(turn, result("a", 1000), send);
        evidence.emit(result("a", 4000), send);
        let order: Vec<(String, i64)> = sent.lock().unwrap().clone();
        assert_eq!(
            order,
            [("a", 0), ("b", 2000), ("a", 1000), ("a", 2000), ("a", 3000), ("a", 4000)]
                .map(|(check, at)| (check.to_owned(), at))
        );
        assert!(evidence.held().is_empty());
    }

    #[test]
    fn past_its_bound_a_held_pair_sends_at_once_and_loses_nothing() {
        let evidence = Evidence::new(Policy::default());
        let sent = Mutex::new(Vec::new());
        let send = |result: RunResult| sent.lock().unwrap().push(result.planned_at_ms);
        let permit = evidence.permits.clone().try_acquire_owned().unwrap();
        let turn = evidence.hold(("a".into(), "eu".into()), permit);
        let extra = 3;
        for at in 1..=(MAX_HELD as i64 + extra) {
            evidence.emit(result("a", at), send);
        }
        assert_eq!(sent.lock().unwrap().len(), extra as usize, "the ones past the bound went at once");
        evidence.finish(turn, result("a", 0), send);
        assert_eq!(sent.lock().unwrap().len(), MAX_HELD + extra as usize + 1, "every result sent once");
    }
}
