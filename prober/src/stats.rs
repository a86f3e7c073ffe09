//! The prober's counters and its start-lateness histogram, shared by every task and readable while it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// A snapshot of the prober's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Runs that finished and produced a result.
    pub runs: u64,
    /// Runs skipped because the same pair's previous run was still running at its planned time.
    pub skipped_overrun: u64,
    /// Runs skipped because no concurrency permit of their kind came within the grace period.
    pub skipped_busy: u64,
    /// Planned runs skipped because the prober fell behind by more than one interval (a suspended machine,
    /// a clock jump).
    pub skipped_late: u64,
    /// Planned runs not made because a `pause` maintenance window of their check was in force (on purpose: not
    /// counted in `runs_skipped_total` of the health summary).
    pub skipped_maintenance: u64,
    /// Runs cancelled at shutdown because they did not finish within the grace period (no result).
    pub runs_abandoned: u64,
    /// Planned runs nobody made (their pair's previous prober crashed or left) made late, after taking the pair
    /// over (within the check's `catch_up`).
    pub runs_caught_up: u64,
    /// Results acknowledged by the scheduler.
    pub results_sent: u64,
    /// Of those, results the scheduler already had (a replay after a lost acknowledgement).
    pub results_duplicate: u64,
    /// Of those, results sent from the spool.
    pub results_replayed: u64,
    /// Results written to the spool.
    pub results_spooled: u64,
    /// Results dropped from the spool: the oldest segments when it was full, or unreadable segments.
    pub spool_dropped: u64,
    /// Spool writes that failed (full disk, no permission); their results stayed in memory.
    pub spool_write_errors: u64,
    /// Results dropped in memory: the result queue or the in-memory backlog was full.
    pub results_dropped: u64,
    /// Results the scheduler refused as invalid (a 4xx answer other than 401/403/404); dropped.
    pub results_rejected: u64,
    /// Bytes held in the spool now.
    pub spool_bytes: u64,
    /// Results held in memory now: batching, waiting for the scheduler, or kept when the spool failed.
    pub results_in_memory: u64,
    /// (check, region) pairs assigned now.
    pub assigned_pairs: u64,
    /// The assignments' generation last applied.
    pub generation: u64,
    /// Whether the prober is registered with the scheduler now.
    pub registered: bool,
    /// Configs received from the scheduler that did not validate (the previous one kept running).
    pub config_errors: u64,
    /// Traceroutes attached to failed runs as evidence.
    pub evidence_captured: u64,
    /// Failed runs without evidence because their pair had a capture within the interval.
    pub evidence_rate_limited: u64,
    /// Failed runs without evidence because every capture slot was taken.
    pub evidence_busy: u64,
    /// Captures given up at their time cap.
    pub evidence_timed_out: u64,
    /// Failed runs without evidence because there was no address to trace (the name did not resolve).
    pub evidence_no_address: u64,
    /// Moves to another scheduler replica (after a connection error, a timeout or a 5xx).
    pub scheduler_switches: u64,
    /// Runs whose start lateness was recorded.
    pub lateness_samples: u64,
    /// Median start lateness (started - planned), in milliseconds; the upper bound of its histogram bucket.
    pub lateness_p50_ms: Option<f64>,
    /// 99th percentile of the start lateness, in milliseconds.
    pub lateness_p99_ms: Option<f64>,
    /// Largest start lateness, in milliseconds.
    pub lateness_max_ms: Option<f64>,
}

impl Stats {
    /// Results not acknowledged yet: those in memory and those in the spool (spooled, not replayed or dropped).
    pub fn results_pending(&self) -> u64 {
        self.results_spooled
            .saturating_sub(self.results_replayed + self.spool_dropped)
            .saturating_add(self.results_in_memory)
    }
}

/// A shared handle on a prober's live counters; cheap to clone, readable from any thread.
#[derive(Debug, Clone, Default)]
pub struct StatsHandle {
    pub(crate) counters: Arc<Counters>,
}

impl StatsHandle {
    /// The counters as they are now.
    pub fn snapshot(&self) -> Stats {
        let c = &self.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let lateness = c.lateness.snapshot();
        Stats {
            runs: get(&c.runs),
            skipped_overrun: get(&c.skipped_overrun),
            skipped_busy: get(&c.skipped_busy),
            skipped_late: get(&c.skipped_late),
            skipped_maintenance: get(&c.skipped_maintenance),
            runs_abandoned: get(&c.runs_abandoned),
            runs_caught_up: get(&c.caught_up),
            results_sent: get(&c.results_sent),
            results_duplicate: get(&c.results_duplicate),
            results_replayed: get(&c.results_replayed),
            results_spooled: get(&c.results_spooled),
            spool_dropped: get(&c.spool_dropped),
            spool_write_errors: get(&c.spool_write_errors),
            results_dropped: get(&c.results_dropped),
            results_rejected: get(&c.results_rejected),
            spool_bytes: get(&c.spool_bytes),
            results_in_memory: get(&c.results_in_memory),
            assigned_pairs: get(&c.assigned_pairs),
            generation: get(&c.generation),
            registered: c.registered.load(Ordering::Relaxed),
            config_errors: get(&c.config_errors),
            evidence_captured: get(&c.evidence_captured),
            evidence_rate_limited: get(&c.evidence_rate_limited),
            evidence_busy: get(&c.evidence_busy),
            evidence_timed_out: get(&c.evidence_timed_out),
            evidence_no_address: get(&c.evidence_no_address),
            scheduler_switches: get(&c.scheduler_switches),
            lateness_samples: lateness.count,
            lateness_p50_ms: lateness.quantile_ms(0.50),
            lateness_p99_ms: lateness.quantile_ms(0.99),
            lateness_max_ms: (lateness.count > 0).then(|| lateness.max_us as f64 / 1000.0),
        }
    }

    /// What the heartbeat tells the scheduler (the same counts as `/metrics`).
    pub fn report(&self) -> probenet_checks::wire::ProberReport {
        let stats = self.snapshot();
        probenet_checks::wire::ProberReport {
            results_pending: stats.results_pending(),
            spool_bytes: stats.spool_bytes,
            results_dropped_total: stats.results_dropped + stats.spool_dropped + stats.results_rejected,
            runs_skipped_total: stats.skipped_overrun + stats.skipped_busy + stats.skipped_late,
            start_lateness_p99_ms: stats.lateness_p99_ms,
        }
    }

    /// Forgets the lateness recorded so far (a benchmark's warm-up, say).
    pub fn reset_lateness(&self) {
        self.counters.lateness.reset();
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub runs: AtomicU64,
    pub skipped_overrun: AtomicU64,
    pub skipped_busy: AtomicU64,
    pub skipped_late: AtomicU64,
    pub skipped_maintenance: AtomicU64,
    pub runs_abandoned: AtomicU64,
    pub caught_up: AtomicU64,
    pub results_sent: AtomicU64,
    pub results_duplicate: AtomicU64,
    pub results_replayed: AtomicU64,
    pub results_spooled: AtomicU64,
    pub spool_dropped: AtomicU64,
    pub spool_write_errors: AtomicU64,
    pub results_dropped: AtomicU64,
    pub results_rejected: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub results_in_memory: AtomicU64,
    pub assigned_pairs: AtomicU64,
    pub generation: AtomicU64,
    pub registered: AtomicBool,
    pub config_errors: AtomicU64,
    pub evidence_captured: AtomicU64,
    pub evidence_rate_limited: AtomicU64,
    pub evidence_busy: AtomicU64,
    pub evidence_timed_out: AtomicU64,
    pub evidence_no_address: AtomicU64,
    /// Shared with the client, which counts its moves between replicas.
    pub scheduler_switches: Arc<AtomicU64>,
    pub lateness: Histogram,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Width of the fine buckets, in microseconds.
const STEP_US: u64 = 10;
/// Fine buckets: 0 to 20 ms in steps of 10 µs.
const FINE: usize = 2000;
/// Coarse buckets above 20 ms: each twice as wide as the one before (up to about 12 hours).
const COARSE: usize = 32;

/// A fixed-size, lock-free histogram of start lateness in microseconds: 10 µs resolution up to 20 ms, then
/// powers of two. Bounded memory whatever the number of runs.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { buckets: (0..FINE + COARSE).map(|_| AtomicU64::new(0)).collect(), max_us: AtomicU64::new(0) }
    }
}

impl Histogram {
    /// Records one lateness; negative values (a run started a hair early) count as zero.
    pub fn record(&self, lateness_us: i64) {
        let us = u64::try_from(lateness_us).unwrap_or(0);
        if let Some(bucket) = self.buckets.get(bucket_of(us)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    fn reset(&self) {
        for bucket in self.buckets.iter() {
            bucket.store(0, Ordering::Relaxed);
        }
        self.max_us.store(0, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self.buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).collect();
        HistogramSnapshot { count: counts.iter().sum(), counts, max_us: self.max_us.load(Ordering::Relaxed) }
    }
}

fn bucket_of(us: u64) -> usize {
    let fine_limit = STEP_US * FINE as u64;
    if us < fine_limit {
        return usize::try_from(us / STEP_US).unwrap_or(FINE - 1);
    }
    // Coarse bucket k holds [fine_limit * 2^k, fine_limit * 2^(k+1)).
    let ratio = us / fine_limit;
    let k = (u64::BITS - 1 - ratio.leading_zeros()) as usize;
    FINE + k.min(COARSE - 1)
}

/// The upper bound of bucket `index`, in microseconds.
fn upper_bound_us(index: usize) -> u64 {
    let fine_limit = STEP_US * FINE as u64;
    if index < FINE {
        return (index as u64 + 1) * STEP_US;
    }
    fine_limit.saturating_mul(1u64 << (index - FINE + 1).min(62))
}

struct HistogramSnapshot {
    counts: Vec<u64>,
    count: u64,
    max_us: u64,
}

impl HistogramSnapshot {
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(upper_bound_us(index).min(self.max_us.max(STEP_US)) as f64 / 1000.0);
            }
        }
        Some(self.max_us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let histogram = Histogram::default();
        for us in 0..1000 {
            histogram.record(us * 10); // 0 to 9.99 ms, evenly
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 1000);
        let p50 = snapshot.quantile_ms(0.5).unwrap();
        let p99 = snapshot.quantile_ms(0.99).unwrap();
        assert!((4.98..=5.02).contains(&p50), "{p50}");
        assert!((9.88..=9.92).contains(&p99), "{p99}");
    }

    #[test]
    fn large_and_negative_values_are_bounded() {
        let histogram = Histogram::default();
        histogram.record(-5);
        histogram.record(3_600_000_000);
        histogram.record(i64::MAX);
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.quantile_ms(0.01), Some(0.01));
        assert!(snapshot.quantile_ms(0.99).unwrap() >= 3_600_000.0);
        assert_eq!(bucket_of(u64::MAX), FINE + COARSE - 1);
        assert_eq!(bucket_of(20_000), FINE);
        assert_eq!(bucket_of(39_999), FINE);
        assert_eq!(bucket_of(40_000), FINE + 1);
    }

    #[test]
    fn reset_forgets_everything() {
        let handle = StatsHandle::default();
        handle.counters.lateness.record(1500);
        assert_eq!(handle.snapshot().lateness_samples, 1);
        handle.reset_lateness();
        let stats = handle.snapshot();
        assert_eq!(stats.lateness_samples, 0);
        assert_eq!(stats.lateness_p99_ms, None);
    }
}
