//! The latest result of every (check, region), failure streaks, and whether a rule's region quorum holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use probenet_checks::config::alerting::{AlertRule, FailingState, Hold};
use probenet_checks::outcome::State;
use probenet_checks::wire::RunResult;

use crate::rules::CheckInfo;

/// A result older than this many intervals is no data (neither failing nor passing).
pub const STALE_INTERVALS: f64 = 2.5;

/// The latest run of one check in one region, and how many runs in a row failed.
#[derive(Debug, Clone)]
pub struct RegionResult {
    /// When the latest run was planned.
    pub planned_ms: i64,
    /// When it started.
    pub started_ms: i64,
    /// How it went.
    pub state: State,
    /// Its failure reason.
    pub reason: Option<String>,
    /// Its failure message.
    pub error: Option<String>,
    /// Down runs in a row, up to the latest.
    pub down_streak: u32,
    /// Degraded or down runs in a row, up to the latest.
    pub not_up_streak: u32,
}

impl RegionResult {
    /// Whether this result counts as failing for `state`, with `hold`'s streak.
    fn failing(&self, state: FailingState, hold: Hold) -> bool {
        let (now_failing, streak) = match state {
            FailingState::Down => (self.state == State::Down, self.down_streak),
            FailingState::Degraded => (self.state != State::Up, self.not_up_streak),
        };
        match hold {
            Hold::Consecutive(count) => now_failing && streak >= count,
            Hold::For(_) => now_failing,
        }
    }
}

/// The latest result of every (check, region) pair.
#[derive(Debug, Default)]
pub struct Latest {
    /// By check, then region: looked up with borrowed names, since every evaluation reads every pair.
    by_check: HashMap<String, HashMap<String, RegionResult>>,
}

impl Latest {
    /// Records a run; an older or repeated run than the latest one known is ignored.
    pub fn observe(&mut self, result: &RunResult) {
        let state = result.outcome.state;
        let previous = self.by_check.get(&result.check).and_then(|regions| regions.get(&result.region));
        if previous.is_some_and(|known| known.planned_ms >= result.planned_at_ms) {
            return;
        }
        let (down, not_up) = previous.map(|known| (known.down_streak, known.not_up_streak)).unwrap_or((0, 0));
        let entry = RegionResult {
            planned_ms: result.planned_at_ms,
            started_ms: result.started_at_ms,
            state,
            reason: result.outcome.reason.map(|reason| reason.as_str().to_owned()),
            error: result.outcome.error.clone(),
            down_streak: if state == State::Down { down.saturating_add(1) } else { 0 },
            not_up_streak: if state == State::Up { 0 } else { not_up.saturating_add(1) },
        };
        let regions = match self.by_check.get_mut(&result.check) {
            Some(regions) => regions,
            None => self.by_check.entry(result.check.clone()).or_default(),
        };
        match regions.get_mut(&result.region) {
            Some(known) => *known = entry,
            None => {
                regions.insert(result.region.clone(), entry);
            }
        }
    }

    /// The latest result of `check` in `region`, unless it is stale at `now_ms`.
    pub fn fresh(&self, check: &CheckInfo, region: &str, now_ms: i64) -> Option<&RegionResult> {
        let result = self.by_check.get(&check.name)?.get(region)?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let stale_ms = (check.interval_ms as f64 * STALE_INTERVALS) as i64;
        let at = result.started_ms.max(result.planned_ms);
        (now_ms - at <= stale_ms).then_some(result)
    }
}

/// Whether a condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It holds.
    True,
    /// It does not hold.
    False,
    /// Too few regions have fresh data to tell.
    Unknown,
}

/// The check whose failure explains `check`'s in `region` at `now_ms`: one of its dependencies that is down
/// there, followed down to the one that is down for a reason of its own (the root); `None` when no dependency
/// is down in that region.
pub fn held_by<'a>(
    checks: &'a BTreeMap<String, CheckInfo>,
    check: &CheckInfo,
    latest: &Latest,
    region: &str,
    now_ms: i64,
) -> Option<&'a str> {
    let down = |name: &String| {
        let info = checks.get(name)?;
        let result = latest.fresh(info, region, now_ms)?;
        (result.state == State::Down).then_some(info)
    };
    let mut root: Option<&'a CheckInfo> = None;
    // Dependencies have no cycle (the config refuses one); the bound is for safety only.
    for _ in 0..checks.len() {
        let at = root.map_or(&check.depends_on, |info| &info.depends_on);
        match at.iter().find_map(down) {
            Some(next) => root = Some(next),
            None => break,
        }
    }
    root.map(|info| info.name.as_str())
}

/// A rule's condition for one check.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Whether it holds.
    pub verdict: Verdict,
    /// The failing regions.
    pub failing: Vec<String>,
    /// The regions counted (the check's regions less impaired ones).
    pub counted: usize,
    /// The most common failure reason among the failing regions.
    pub reason: Option<String>,
    /// One failing region's message.
    pub error: Option<String>,
    /// Regions where the check fails while a check it depends on is down there, with that root check: they
    /// count as no data, so they neither fire nor resolve the alert.
    pub held: Vec<(String, String)>,
}

/// Evaluates `rule` for `check` (one of `checks`) at `now_ms`, leaving out `impaired` regions and holding back
/// regions where a dependency of the check is down.
pub fn evaluate(
    rule: &AlertRule,
    check: &CheckInfo,
    checks: &BTreeMap<String, CheckInfo>,
    latest: &Latest,
    impaired: &BTreeSet<String>,
    now_ms: i64,
) -> Evaluation {
    let counted: Vec<&String> = check.regions.iter().filter(|region| !impaired.contains(*region)).collect();
    let needed = rule.failed_regions.needed(counted.len());
    let mut failing = Vec::new();
    let mut no_data = 0;
    let mut reasons: Vec<(Option<String>, Option<String>)> = Vec::new();
    let mut held = Vec::new();
    for region in &counted {
        match latest.fresh(check, region, now_ms) {
            None => no_data += 1,
            Some(result) if result.failing(rule.state, rule.hold) => {
                if let Some(root) = held_by(checks, check, latest, region, now_ms) {
                    held.push(((*region).clone(), root.to_owned()));
                    no_data += 1;
                    continue;
                }
                failing.push((*region).clone());
                reasons.push((result.reason.clone(), result.error.clone()));
            }
            Some(_) => {}
        }
    }
    let verdict = if counted.is_empty() || needed > counted.len() {
        Verdict::False
    } else if failing.len() >= needed {
        Verdict::True
    } else if failing.len() + no_data >= needed {
        Verdict::Unknown
    } else {
        Verdict::False
    };
    let (reason, error) = most_common(&reasons);
    Evaluation { verdict, failing, counted: counted.len(), reason, error, held }
}

/// The most common reason and a message that goes with it.
pub fn most_common(reasons: &[(Option<String>, Option<String>)]) -> (Option<String>, Option<String>) {
    let mut counts: Vec<(&Option<String>, usize, &Option<String>)> = Vec::new();
    for (reason, error) in reasons {
        match counts.iter_mut().find(|(known, _, _)| *known == reason) {
            Some(entry) => entry.1 += 1,
            None => counts.push((reason, 1, error)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, count, _)| *count)
        .map(|(reason, _, error)| (reason.clone(), error.clone()))
        .unwrap_or((None, None))
}
