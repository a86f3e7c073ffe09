//! Alerting in the config: notifiers, alert rules over checks, SLOs and the probe-health alert, validated.
//!
//! The rule engine (crate `probenet-alerting`) evaluates these; this module only checks them.

pub mod notifiers;
pub mod spec;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

pub use notifiers::{HttpAuth, NOTIFIER_KINDS, NotifierSpec};
pub(crate) use validate::{select_checks, validate_alerting, validate_slo};

use super::Place;

/// The alert names the engine raises itself; a rule may not take them.
pub const RESERVED_ALERTS: [&str; 3] = ["region-impaired", "slo-fast-burn", "slo-slow-burn"];

/// The validated alerting sections of a config.
#[derive(Debug, Clone, Default)]
pub struct Alerting {
    /// Notifiers by name.
    pub notifiers: BTreeMap<String, NotifierSpec>,
    /// Alert rules, in file order.
    pub alerts: Vec<AlertRule>,
    /// The probe-health (region impairment) alert.
    pub probe_health: ProbeHealth,
}

/// How many regions must fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RegionQuorum {
    /// At least this many.
    Count(usize),
    /// At least this share, in percent (0 < p <= 100), and at least one.
    Percent(f64),
}

impl RegionQuorum {
    /// How many of `total` regions must fail.
    pub fn needed(self, total: usize) -> usize {
        match self {
            Self::Count(count) => count,
            Self::Percent(percent) => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
                let needed = (percent / 100.0 * total as f64 - 1e-9).ceil().max(1.0) as usize;
                needed
            }
        }
    }
}

impl std::fmt::Display for RegionQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(count) => write!(f, "{count}"),
            Self::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

/// How long the condition must hold before an alert fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Continuously for this long.
    For(Duration),
    /// Each failing region failed this many runs in a row.
    Consecutive(u32),
}

/// Which runs count as failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailingState {
    /// Down runs.
    Down,
    /// Degraded or down runs.
    Degraded,
}

/// A validated alert rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    /// Its unique name.
    pub name: String,
    /// The checks it watches (resolved from `checks` or `match`), in config order.
    pub checks: Vec<String>,
    /// How many regions must fail.
    pub failed_regions: RegionQuorum,
    /// How long the condition must hold.
    pub hold: Hold,
    /// How long the condition must stay false before the alert resolves.
    pub resolve_after: Duration,
    /// Which runs count as failing.
    pub state: FailingState,
    /// Its severity.
    pub severity: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The notifiers it tells.
    pub notify: Vec<String>,
    /// Where it is written.
    pub place: Place,
}

/// A service level objective of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The objective in percent, such as 99.9.
    pub objective: f64,
    /// The window it is measured over.
    pub window: Duration,
    /// The notifiers of its burn alerts; `None`: those of the rules that watch the check.
    pub notify: Option<Vec<String>>,
}

impl Slo {
    /// The error budget as a fraction of runs (0.001 for 99.9%).
    pub fn budget(&self) -> f64 {
        1.0 - self.objective / 100.0
    }
}

/// The probe-health alert and when a region counts as impaired.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeHealth {
    /// Its notifiers; `None`: every notifier some alert rule uses.
    pub notify: Option<Vec<String>>,
    /// Its severity.
    pub severity: String,
    /// The fewest failing checks that can make a region impaired.
    pub min_failing_checks: usize,
    /// The share (0..=1) of a region's checks that must fail.
    pub min_failing_share: f64,
    /// The share (0..=1) of the other regions that must pass each of those checks.
    pub min_passing_elsewhere: f64,
}

impl Default for ProbeHealth {
    fn default() -> Self {
        Self {
            notify: None,
            severity: "warning".to_owned(),
            min_failing_checks: 3,
            min_failing_share: 0.5,
            min_passing_elsewhere: 0.5,
        }
    }
}

/// Parses `"50%"` into 50.0 (0 < p <= 100).
pub fn parse_percent(text: &str) -> Option<f64> {
    let number: f64 = text.trim().strip_suffix('%')?.trim().parse().ok()?;
    (number > 0.0 && number <= 100.0).then_some(number)
}
