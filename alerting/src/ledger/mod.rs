//! The uptime ledger: uptime by time, not by count of runs, under one written, versioned policy
//! (`docs/uptime.md`), per check (the quorum view) and per region, with the downtime and maintenance intervals
//! behind every figure. Pure: results, checks and windows in, figures out.

use std::collections::{BTreeMap, BTreeSet};

use probenet_checks::config::alerting::{FailingState, Hold, RegionQuorum};
use probenet_checks::config::maintenance::{Maintenance, MaintenanceMode};
use probenet_checks::outcome::State;
use probenet_checks::wire::RunResult;
use serde::Serialize;

pub mod render;

use crate::quorum::most_common;
use crate::rules::Rules;

/// The version of the policy this module applies; printed in every report. Raise it whenever a figure for the
/// same results would change.
pub const POLICY_VERSION: u32 = 1;

/// The default region quorum of a check that no `state: down` alert rule watches (the alert rules' default).
pub const DEFAULT_QUORUM: RegionQuorum = RegionQuorum::Percent(50.0);

/// At most this many spans of one maintenance window are looked at in a report's window.
const MAX_SPANS: usize = 100_000;

/// One stored result, as the ledger reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The check.
    pub check: String,
    /// The region.
    pub region: String,
    /// When the run was planned, unix ms.
    pub planned_ms: i64,
    /// How it went.
    pub state: State,
    /// Its failure reason (`status`, `timeout`...).
    pub reason: Option<String>,
    /// Its failure message.
    pub error: Option<String>,
}

impl From<&RunResult> for Sample {
    fn from(result: &RunResult) -> Self {
        Self {
            check: result.check.clone(),
            region: result.region.clone(),
            planned_ms: result.planned_at_ms,
            state: result.outcome.state,
            reason: result.outcome.reason.map(|reason| reason.as_str().to_owned()),
            error: result.outcome.error.clone(),
        }
    }
}

/// What the ledger needs to know of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckPolicy {
    /// Its name.
    pub name: String,
    /// Its regions.
    pub regions: Vec<String>,
    /// Its interval, ms: a result covers at most this long.
    pub interval_ms: i64,
    /// How many regions must be down for the check to be down.
    pub quorum: RegionQuorum,
    /// Failed runs in a row that a passing run after them forgives (a retry).
    pub retries: u32,
}

impl CheckPolicy {
    /// The policy of every check of `rules`: quorum and retries from the first alert rule (in config order) that
    /// watches the check with `state: down`; `consecutive: K` allows K-1 retries, `for: D` the runs that fit
    /// in D less one. No such rule: the default quorum (50%) and no retry.
    pub fn from_rules(rules: &Rules) -> Vec<Self> {
        rules
            .checks
            .values()
            .map(|check| {
                let rule = rules
                    .alerts
                    .iter()
                    .find(|rule| rule.state == FailingState::Down && rule.checks.contains(&check.name));
                let interval_ms = check.interval_ms.max(1);
                let retries = match rule.map(|rule| rule.hold) {
                    Some(Hold::Consecutive(count)) => count.saturating_sub(1),
                    Some(Hold::For(hold)) => {
                        let hold_ms = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX);
                        let runs = hold_ms.div_euclid(interval_ms) + i64::from(hold_ms.rem_euclid(interval_ms) != 0);
                        u32::try_from((runs - 1).max(0)).unwrap_or(u32::MAX)
                    }
                    None => 0,
                };
                Self {
                    name: check.name.clone(),
                    regions: check.regions.clone(),
                    interval_ms,
                    quorum: rule.map_or(DEFAULT_QUORUM, |rule| rule.failed_regions),
                    retries,
                }
            })
            .collect()
    }
}

/// A span during which a region was impaired (its probers failed while other regions passed): its time is
/// `unknown` there and the region is left out of quorums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpairedSpan {
    /// The region.
    pub region: String,
    /// From, unix ms.
    pub start_ms: i64,
    /// To (excluded), unix ms.
    pub end_ms: i64,
}

/// Everything a ledger is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The checks to report on, in the order wanted.
    pub checks: &'a [CheckPolicy],
    /// Their results, in any order: give those of `[from - (retries + 2) × interval, to + (retries + 1) ×
    /// interval)` so the edges are exact (see [`fetch_window`]).
    pub samples: &'a [Sample],
    /// The maintenance windows of the config.
    pub maintenance: &'a [Maintenance],
    /// When regions were impaired.
    pub impaired: &'a [ImpairedSpan],
    /// Start of the window, unix ms.
    pub from_ms: i64,
    /// End of the window (excluded), unix ms.
    pub to_ms: i64,
}

/// The results to read for a ledger of `checks` over `[from_ms, to_ms)`: one interval before (a result covers
/// until the next run) and the retries before that (a streak of failed runs that began before the window is
/// then seen long enough not to be forgiven), and enough after for the retries of the last runs. So the
/// figures of adjacent windows add up to those of the whole (the ledger hours rely on it).
pub fn fetch_window(checks: &[CheckPolicy], from_ms: i64, to_ms: i64) -> (i64, i64) {
    let before =
        checks.iter().map(|check| check.interval_ms.saturating_mul(i64::from(check.retries) + 2)).max().unwrap_or(0);
    let after =
        checks.iter().map(|check| check.interval_ms.saturating_mul(i64::from(check.retries) + 1)).max().unwrap_or(0);
    (from_ms.saturating_sub(before), to_ms.saturating_add(after))
}

/// A ledger: the policy version, the window and a report per check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ledger {
    /// [`POLICY_VERSION`].
    pub policy: u32,
    /// Start of the window, unix ms.
    pub from_ms: i64,
    /// End of the window (excluded), unix ms.
    pub to_ms: i64,
    /// One per check, in the order asked.
    pub checks: Vec<CheckLedger>,
}

/// One check: its quorum view, each region, and its maintenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckLedger {
    /// The check.
    pub check: String,
    /// How many regions had to be down, as written (`2`, `50%`).
    pub quorum: String,
    /// Failed runs in a row forgiven by a passing run after them.
    pub retries: u32,
    /// The check as a whole: down when its quorum of regions is down.
    pub overall: Figures,
    /// Each region alone.
    pub regions: Vec<RegionLedger>,
    /// The maintenance windows in force during the window, clipped to it.
    pub maintenance: Vec<MaintenanceInterval>,
}

/// One region of a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionLedger {
    /// The region.
    pub region: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// Time by state over the window, and the downtime.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// `up / (up + down)`; `None` when neither.
    pub uptime: Option<f64>,
    /// The same without the time in `mute` windows (what SLOs count).
    pub slo_uptime: Option<f64>,
    /// Seconds up (degraded counts as up).
    pub up_seconds: f64,
    /// Seconds down.
    pub down_seconds: f64,
    /// Seconds without data: no result, or the region impaired.
    pub unknown_seconds: f64,
    /// Seconds in `pause` windows: neither up nor down.
    pub maintenance_seconds: f64,
    /// Seconds of the up and down time that were in `mute` windows.
    pub muted_seconds: f64,
    /// When it was down, and why.
    pub downtime: Vec<Downtime>,
    #[serde(skip)]
    muted_up_ms: i64,
    #[serde(skip)]
    muted_down_ms: i64,
}

impl Figures {
    /// Milliseconds of the up time inside `mute` windows.
    pub fn muted_up_ms(&self) -> i64 {
        self.muted_up_ms
    }

    /// Milliseconds of the down time inside `mute` windows.
    pub fn muted_down_ms(&self) -> i64 {
        self.muted_down_ms
    }

    /// Takes the figures of a part of the window out (`part`, computed over it) and puts others in for it:
    /// `[up, down, unknown, maintenance, muted_up, muted_down]` in ms (stored ledger hours, when the raw
    /// results of that part are gone). The downtime spans stay as they are.
    pub fn swap_part(&mut self, part: &Figures, ms: [i64; 6]) {
        let [up, down, unknown, maintenance, muted_up, muted_down] = ms;
        self.up_seconds += seconds(up) - part.up_seconds;
        self.down_seconds += seconds(down) - part.down_seconds;
        self.unknown_seconds += seconds(unknown) - part.unknown_seconds;
        self.maintenance_seconds += seconds(maintenance) - part.maintenance_seconds;
        self.muted_up_ms += muted_up - part.muted_up_ms;
        self.muted_down_ms += muted_down - part.muted_down_ms;
        self.ratios();
    }

    /// The uptimes and muted seconds from the other figures.
    fn ratios(&mut self) {
        let ratio = |up: f64, down: f64| (up + down > 0.0).then(|| up / (up + down));
        self.uptime = ratio(self.up_seconds, self.down_seconds);
        self.muted_seconds = seconds(self.muted_up_ms + self.muted_down_ms);
        self.slo_uptime =
            ratio(self.up_seconds - seconds(self.muted_up_ms), self.down_seconds - seconds(self.muted_down_ms));
    }
}

/// A span of downtime.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Downtime {
    /// From, unix ms.
    pub start_ms: i64,
    /// To (excluded), unix ms.
    pub end_ms: i64,
    /// Its length, seconds.
    pub seconds: f64,
    /// The regions down during it.
    pub regions: Vec<String>,
    /// The most common failure reason of its failed runs.
    pub reason: Option<String>,
    /// One failure message with that reason.
    pub error: Option<String>,
    /// Whether it was (partly) inside a `mute` window.
    pub muted: bool,
}

/// A maintenance window's span within the report's window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaintenanceInterval {
    /// The window's name.
    pub window: String,
    /// `mute` or `pause`.
    pub mode: &'static str,
    /// From, unix ms.
    pub start_ms: i64,
    /// To (excluded), unix ms.
    pub end_ms: i64,
}

/// The state of a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    Up,
    Down,
    Unknown,
    Maintenance,
}

/// What one region's result says over a span: `[start, end)`, down or not, and the sample.
#[derive(Debug, Clone, Copy)]
struct Cover {
    start_ms: i64,
    end_ms: i64,
    down: bool,
    sample: usize,
}

/// A region of a check: its name, its covers and when it was impaired.
type RegionInput<'a> = (&'a str, Vec<Cover>, Vec<(i64, i64)>);

/// Computes the ledger.
pub fn compute(input: &Input<'_>) -> Ledger {
    let (from, to) = (input.from_ms, input.to_ms.max(input.from_ms));
    let mut by_pair: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (index, sample) in input.samples.iter().enumerate() {
        by_pair.entry((sample.check.as_str(), sample.region.as_str())).or_default().push(index);
    }
    let checks = input.checks.iter().map(|check| check_ledger(input, check, &by_pair, from, to)).collect();
    Ledger { policy: POLICY_VERSION, from_ms: from, to_ms: to, checks }
}

/// The spans of the windows of `check` in `[from, to)`, clipped, by window.
fn maintenance_spans(windows: &[Maintenance], check: &str, from: i64, to: i64) -> Vec<MaintenanceInterval> {
    let mut out = Vec::new();
    for window in windows.iter().filter(|window| window.applies_to(check)) {
        let mut at = from;
        for _ in 0..MAX_SPANS {
            let Some(span) = window.next_span(at) else { break };
            if span.start_ms >= to || span.end_ms <= at {
                break;
            }
            out.push(MaintenanceInterval {
                window: window.name.clone(),
                mode: window.mode.as_str(),
                start_ms: span.start_ms.max(from),
                end_ms: span.end_ms.min(to),
            });
            at = span.end_ms;
        }
    }
    out.sort_by_key(|span| (span.start_ms, span.end_ms));
    out
}

fn inside(spans: &[(i64, i64)], at: i64) -> bool {
    spans.iter().any(|(start, end)| *start <= at && at < *end)
}

/// One region's covers: each result (outside pause windows) covers until the next run, at most one interval;
/// failed runs forgiven by a retry count as passing.
fn covers(input: &Input<'_>, check: &CheckPolicy, indexes: &[usize], paused: &[(i64, i64)]) -> Vec<Cover> {
    let mut runs: Vec<usize> =
        indexes.iter().copied().filter(|index| !inside(paused, input.samples[*index].planned_ms)).collect();
    runs.sort_by_key(|index| input.samples[*index].planned_ms);
    runs.dedup_by_key(|index| input.samples[*index].planned_ms);
    let down: Vec<bool> = runs.iter().map(|index| input.samples[*index].state == State::Down).collect();
    // A streak of at most `retries` failed runs followed by a passing run is forgiven.
    let mut judged = down.clone();
    let mut at = 0;
    while at < down.len() {
        if !down[at] {
            at += 1;
            continue;
        }
        let end = (at..down.len()).find(|next| !down[*next]).unwrap_or(down.len());
        if end < down.len() && end - at <= check.retries as usize {
            judged[at..end].iter_mut().for_each(|run| *run = false);
        }
        at = end;
    }
    runs.iter()
        .enumerate()
        .map(|(position, index)| {
            let start_ms = input.samples[*index].planned_ms;
            let limit = start_ms.saturating_add(check.interval_ms);
            let end_ms = runs.get(position + 1).map_or(limit, |next| input.samples[*next].planned_ms.min(limit));
            Cover { start_ms, end_ms, down: judged[position], sample: *index }
        })
        .collect()
}

/// Adds `[start, end)` in `state` to `figures`, extending its last downtime when contiguous.
struct Tally<'s> {
    samples: &'s [Sample],
    figures: Figures,
    /// The samples behind the downtime being extended.
    reasons: Vec<usize>,
}

impl<'s> Tally<'s> {
    fn new(samples: &'s [Sample]) -> Self {
        Self { samples, figures: Figures::default(), reasons: Vec::new() }
    }

    fn add(&mut self, start: i64, end: i64, moment: Moment, muted: bool, down: &[(&str, usize)]) {
        let length = end - start;
        let figures = &mut self.figures;
        match moment {
            Moment::Up => {
                figures.up_seconds += seconds(length);
                if muted {
                    figures.muted_up_ms += length;
                }
            }
            Moment::Down => {
                figures.down_seconds += seconds(length);
                if muted {
                    figures.muted_down_ms += length;
                }
                let contiguous = figures.downtime.last().is_some_and(|last| last.end_ms == start);
                if !contiguous {
                    self.close();
                    self.figures.downtime.push(Downtime {
                        start_ms: start,
                        end_ms: end,
                        seconds: 0.0,
                        regions: Vec::new(),
                        reason: None,
                        error: None,
                        muted: false,
                    });
                }
                let last = self.figures.downtime.last_mut().expect("pushed above");
                last.end_ms = end;
                last.muted |= muted;
                for (region, sample) in down {
                    if !last.regions.iter().any(|known| known == region) {
                        last.regions.push((*region).to_owned());
                    }
                    if !self.reasons.contains(sample) {
                        self.reasons.push(*sample);
                    }
                }
            }
            Moment::Unknown => figures.unknown_seconds += seconds(length),
            Moment::Maintenance => figures.maintenance_seconds += seconds(length),
        }
    }

    /// Words the downtime being extended: its length and most common reason.
    fn close(&mut self) {
        if let Some(last) = self.figures.downtime.last_mut() {
            last.seconds = seconds(last.end_ms - last.start_ms);
            let reasons: Vec<(Option<String>, Option<String>)> = self
                .reasons
                .iter()
                .map(|index| (self.samples[*index].reason.clone(), self.samples[*index].error.clone()))
                .collect();
            (last.reason, last.error) = most_common(&reasons);
        }
        self.reasons.clear();
    }

    fn finish(mut self) -> Figures {
        self.close();
        let mut figures = self.figures;
        figures.ratios();
        figures
    }
}

#[allow(clippy::cast_precision_loss)]
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn check_ledger(
    input: &Input<'_>,
    check: &CheckPolicy,
    by_pair: &BTreeMap<(&str, &str), Vec<usize>>,
    from: i64,
    to: i64,
) -> CheckLedger {
    let maintenance = maintenance_spans(input.maintenance, &check.name, from, to);
    let spans_of = |mode: MaintenanceMode| -> Vec<(i64, i64)> {
        maintenance.iter().filter(|span| span.mode == mode.as_str()).map(|span| (span.start_ms, span.end_ms)).collect()
    };
    let (paused, muted) = (spans_of(MaintenanceMode::Pause), spans_of(MaintenanceMode::Mute));
    // Results planned in a pause window, even just before it, are left out: read them from the whole window.
    let paused_all: Vec<(i64, i64)> = input
        .maintenance
        .iter()
        .filter(|window| window.applies_to(&check.name) && window.mode == MaintenanceMode::Pause)
        .flat_map(|window| {
            let (lo, hi) = fetch_window(std::slice::from_ref(check), from, to);
            maintenance_spans(std::slice::from_ref(window), &check.name, lo, hi)
        })
        .map(|span| (span.start_ms, span.end_ms))
        .collect();
    let empty = Vec::new();
    let regions: Vec<RegionInput<'_>> = check
        .regions
        .iter()
        .map(|region| {
            let indexes = by_pair.get(&(check.name.as_str(), region.as_str())).unwrap_or(&empty);
            let impaired = input
                .impaired
                .iter()
                .filter(|span| &span.region == region)
                .map(|span| (span.start_ms, span.end_ms))
                .collect();
            (region.as_str(), covers(input, check, indexes, &paused_all), impaired)
        })
        .collect();
    // Every instant where some state may change.
    let mut edges: BTreeSet<i64> = [from, to].into();
    let mut add = |at: i64| {
        if from < at && at < to {
            edges.insert(at);
        }
    };
    for (start, end) in paused.iter().chain(&muted) {
        add(*start);
        add(*end);
    }
    for (_, covers, impaired) in &regions {
        for cover in covers {
            add(cover.start_ms);
            add(cover.end_ms);
        }
        for (start, end) in impaired {
            add(*start);
            add(*end);
        }
    }
    let mut overall = Tally::new(input.samples);
    let mut tallies: Vec<Tally<'_>> = regions.iter().map(|_| Tally::new(input.samples)).collect();
    let mut cursors = vec![0usize; regions.len()];
    let edges: Vec<i64> = edges.into_iter().collect();
    for pair in edges.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let is_muted = inside(&muted, start);
        if inside(&paused, start) {
            overall.add(start, end, Moment::Maintenance, false, &[]);
            for tally in &mut tallies {
                tally.add(start, end, Moment::Maintenance, false, &[]);
            }
            continue;
        }
        let mut counted = 0usize;
        let mut unknown = 0usize;
        let mut failing: Vec<(&str, usize)> = Vec::new();
        for (position, (region, covers, impaired)) in regions.iter().enumerate() {
            let cursor = &mut cursors[position];
            while covers.get(*cursor).is_some_and(|cover| cover.end_ms <= start) {
                *cursor += 1;
            }
            let cover = covers.get(*cursor).filter(|cover| cover.start_ms <= start);
            let moment = if inside(impaired, start) {
                Moment::Unknown
            } else {
                counted += 1;
                match cover {
                    None => {
                        unknown += 1;
                        Moment::Unknown
                    }
                    Some(cover) if cover.down => {
                        failing.push((region, cover.sample));
                        Moment::Down
                    }
                    Some(_) => Moment::Up,
                }
            };
            let down: Vec<(&str, usize)> =
                cover.filter(|_| moment == Moment::Down).map(|c| (*region, c.sample)).into_iter().collect();
            tallies[position].add(start, end, moment, is_muted, &down);
        }
        let needed = check.quorum.needed(counted);
        let moment = if counted == 0 || unknown == counted {
            Moment::Unknown
        } else if needed <= counted && failing.len() >= needed {
            Moment::Down
        } else if needed <= counted && failing.len() + unknown >= needed {
            Moment::Unknown
        } else {
            Moment::Up
        };
        let down = if moment == Moment::Down { failing } else { Vec::new() };
        overall.add(start, end, moment, is_muted, &down);
    }
    CheckLedger {
        check: check.name.clone(),
        quorum: check.quorum.to_string(),
        retries: check.retries,
        overall: overall.finish(),
        regions: regions
            .iter()
            .zip(tallies)
            .map(|((region, _, _), tally)| RegionLedger { region: (*region).to_owned(), figures: tally.finish() })
            .collect(),
        maintenance,
    }
}

#[cfg(test)]
mod tests;
