//! SLO bookkeeping: good and bad runs per check in minute buckets (for the burn-rate windows, up to 6h) and
//! hour buckets (for the objective's window), error budget remaining and multiwindow burn rates.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
/// How far back minute buckets are kept: the longest burn-rate window, plus one bucket.
const MINUTES_KEPT_MS: i64 = 6 * HOUR_MS + MINUTE_MS;

/// A burn-rate alert: it fires when the burn rate over both windows is at least `factor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnAlert {
    /// The alert's name.
    pub name: &'static str,
    /// Its severity.
    pub severity: &'static str,
    /// The long window, ms.
    pub long_ms: i64,
    /// The short window, ms.
    pub short_ms: i64,
    /// The burn rate both windows must reach.
    pub factor: f64,
}

/// The two burn-rate alerts: fast (2% of a 30-day budget in 1h) and slow (5% in 6h).
pub const BURN_ALERTS: [BurnAlert; 2] = [
    BurnAlert { name: "slo-fast-burn", severity: "page", long_ms: HOUR_MS, short_ms: 5 * MINUTE_MS, factor: 14.4 },
    BurnAlert {
        name: "slo-slow-burn",
        severity: "ticket",
        long_ms: 6 * HOUR_MS,
        short_ms: 30 * MINUTE_MS,
        factor: 6.0,
    },
];

/// The windows burn rates are reported over, with their names.
pub const BURN_WINDOWS: [(&str, i64); 4] =
    [("5m", 5 * MINUTE_MS), ("30m", 30 * MINUTE_MS), ("1h", HOUR_MS), ("6h", 6 * HOUR_MS)];

/// Runs counted in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Every run.
    pub total: u64,
    /// Failed runs.
    pub bad: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.total += other.total;
        self.bad += other.bad;
    }
}

/// Bucket resolution, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resolution {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
}

impl Resolution {
    /// The stored tag.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Minute => "m",
            Self::Hour => "h",
        }
    }

    /// The resolution of a stored tag.
    pub fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "m" => Some(Self::Minute),
            "h" => Some(Self::Hour),
            _ => None,
        }
    }
}

/// The buckets of one check.
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    /// Minute buckets by start, oldest first (contiguous: the burn windows walk it from the back).
    minutes: VecDeque<(i64, Counts)>,
    hours: BTreeMap<i64, Counts>,
    /// Buckets changed since the last flush.
    pub dirty: BTreeSet<(Resolution, i64)>,
}

impl Buckets {
    /// Counts one run at `at_ms`; `now_ms` decides whether it is recent enough for the minute buckets.
    pub fn record(&mut self, at_ms: i64, bad: bool, now_ms: i64) {
        let one = Counts { total: 1, bad: u64::from(bad) };
        if at_ms > now_ms - MINUTES_KEPT_MS {
            let start = at_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
            self.minute_mut(start).add(one);
            self.dirty.insert((Resolution::Minute, start));
        }
        let start = at_ms.div_euclid(HOUR_MS) * HOUR_MS;
        self.hours.entry(start).or_default().add(one);
        self.dirty.insert((Resolution::Hour, start));
    }

    /// The minute bucket starting at `start`, created in its place when missing.
    fn minute_mut(&mut self, start: i64) -> &mut Counts {
        let at = match self.minutes.back() {
            Some((last, _)) if *last < start => self.minutes.len(),
            None => 0,
            Some(_) => self.minutes.partition_point(|(known, _)| *known < start),
        };
        if self.minutes.get(at).is_none_or(|(known, _)| *known != start) {
            self.minutes.insert(at, (start, Counts::default()));
        }
        &mut self.minutes[at].1
    }

    /// Restores a stored bucket.
    pub fn load(&mut self, resolution: Resolution, start_ms: i64, counts: Counts) {
        match resolution {
            Resolution::Minute => *self.minute_mut(start_ms) = counts,
            Resolution::Hour => {
                self.hours.insert(start_ms, counts);
            }
        }
    }

    /// The counts of a bucket, for flushing.
    pub fn get(&self, resolution: Resolution, start_ms: i64) -> Option<Counts> {
        match resolution {
            Resolution::Minute => {
                let at = self.minutes.partition_point(|(known, _)| *known < start_ms);
                self.minutes.get(at).filter(|(known, _)| *known == start_ms).map(|(_, counts)| *counts)
            }
            Resolution::Hour => self.hours.get(&start_ms).copied(),
        }
    }

    /// Drops buckets older than the minute horizon and the SLO window; returns the dropped ones.
    pub fn prune(&mut self, now_ms: i64, window_ms: i64) -> Vec<(Resolution, i64)> {
        let mut dropped = Vec::new();
        let minute_floor = now_ms - MINUTES_KEPT_MS;
        let hour_floor = (now_ms - window_ms - HOUR_MS).div_euclid(HOUR_MS) * HOUR_MS;
        while let Some((start, _)) = self.minutes.front().filter(|(start, _)| *start < minute_floor) {
            dropped.push((Resolution::Minute, *start));
            self.minutes.pop_front();
        }
        while let Some((&start, _)) = self.hours.first_key_value().filter(|(start, _)| **start < hour_floor) {
            self.hours.remove(&start);
            dropped.push((Resolution::Hour, start));
        }
        dropped
    }

    /// The runs of the last `window_ms` (at most 6h), to the minute: the minute buckets that start after
    /// `now - window`, the current one included.
    pub fn recent(&self, now_ms: i64, window_ms: i64) -> Counts {
        let mut sum = Counts::default();
        for (start, counts) in self.minutes.iter().rev() {
            if *start <= now_ms - window_ms {
                break;
            }
            if *start <= now_ms {
                sum.add(*counts);
            }
        }
        sum
    }

    /// The runs of the hour buckets that overlap the last `window_ms` (the SLO window, rounded out to hours).
    pub fn window(&self, now_ms: i64, window_ms: i64) -> Counts {
        let from = (now_ms - window_ms).div_euclid(HOUR_MS) * HOUR_MS;
        let mut sum = Counts::default();
        for counts in self.hours.range(from..=now_ms).map(|(_, counts)| *counts) {
            sum.add(counts);
        }
        sum
    }
}

/// The burn rate of `counts` against `budget` (the allowed share of bad runs): 1.0 spends the budget exactly
/// over the window. No runs: 0.
pub fn burn_rate(counts: Counts, budget: f64) -> f64 {
    if counts.total == 0 || budget <= 0.0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let bad_share = counts.bad as f64 / counts.total as f64;
    bad_share / budget
}

/// The share of the error budget left: `1 - (bad/total) / budget` (negative once overspent; 1 with no runs).
pub fn budget_remaining(counts: Counts, budget: f64) -> f64 {
    1.0 - burn_rate(counts, budget)
}

/// One check's SLO, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloView {
    /// The check.
    pub check: String,
    /// The objective, in percent.
    pub objective: f64,
    /// The window, ms.
    pub window_ms: i64,
    /// The runs over the window.
    pub window_counts: Counts,
    /// The share of the error budget left (negative when overspent).
    pub budget_remaining: f64,
    /// Burn rates by window name (`5m`, `30m`, `1h`, `6h`).
    pub burn_rates: BTreeMap<String, f64>,
    /// The burn alerts firing now.
    pub alerts_firing: Vec<String>,
}
