//! When the prober captures evidence of a failure: only for a failed (down) run, at most once per (check,
//! region) pair per interval, a few captures at a time, each within a time cap. What is captured (a traceroute
//! to the target's address) is `probenet_checks::evidence`'s; the runner calls [`Evidence::attach`] once a
//! run is over and its concurrency permit released, so the capture never holds up other checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use probenet_checks::evidence::{self as capture, Options as TraceOptions};
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
}

impl Evidence {
    pub(crate) fn new(policy: Policy) -> Self {
        Self { policy, last: Mutex::new(HashMap::new()), permits: Arc::new(Semaphore::new(MAX_CONCURRENT)) }
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

    /// Attaches a traceroute to a failed `outcome` when the rate limit and a free capture slot allow; up and
    /// degraded runs are left as they are. Bounded by the traceroute's time cap (plus a margin).
    pub(crate) async fn attach(&self, check: &Check, region: &str, outcome: &mut Outcome, counters: &Counters) {
        if outcome.state != State::Down || !self.take_turn(&check.name, region, counters) {
            return;
        }
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            add(&counters.evidence_busy, 1);
            return;
        };
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
}
