//! Region impairment: a region whose probers fail most of their checks while the other regions pass the same
//! checks is a problem of the probe network, not of the targets. It is left out of every quorum.

use std::collections::BTreeMap;

use probenet_checks::outcome::State;

use crate::quorum::{Latest, most_common};
use crate::rules::Rules;

/// Why a region looks impaired.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Impairment {
    /// The region.
    pub region: String,
    /// Its checks that fail there while most other regions pass them.
    pub failing_checks: Vec<String>,
    /// Its checks with fresh results.
    pub fresh_checks: usize,
    /// The most common failure reason.
    pub reason: Option<String>,
    /// One failure message.
    pub error: Option<String>,
}

/// The regions impaired now, by name. Regions with no fresh result at all are not in the map.
///
/// A region is a candidate when at least `min_failing_checks` of its checks, and at least
/// `min_failing_share` of those with fresh results, fail there while at least `min_passing_elsewhere` of the
/// other regions with fresh results pass them. When half the regions or more are candidates, the targets
/// are the likelier culprit, and no region is marked.
pub fn candidates(rules: &Rules, latest: &Latest, now_ms: i64) -> (BTreeMap<String, Impairment>, Vec<String>) {
    let settings = &rules.probe_health;
    let mut found = BTreeMap::new();
    let mut with_data = Vec::new();
    for region in &rules.regions {
        let mut fresh = 0usize;
        let mut failing = Vec::new();
        let mut reasons = Vec::new();
        for check in rules.checks.values().filter(|check| check.regions.contains(region)) {
            let Some(result) = latest.fresh(check, region, now_ms) else { continue };
            fresh += 1;
            if result.state != State::Down {
                continue;
            }
            let others: Vec<bool> = check
                .regions
                .iter()
                .filter(|other| *other != region)
                .filter_map(|other| latest.fresh(check, other, now_ms))
                .map(|other| other.state != State::Down)
                .collect();
            let passing = others.iter().filter(|passed| **passed).count();
            #[allow(clippy::cast_precision_loss)]
            let share = if others.is_empty() { 0.0 } else { passing as f64 / others.len() as f64 };
            if !others.is_empty() && share >= settings.min_passing_elsewhere {
                failing.push(check.name.clone());
                reasons.push((result.reason.clone(), result.error.clone()));
            }
        }
        if fresh == 0 {
            continue;
        }
        with_data.push(region.clone());
        #[allow(clippy::cast_precision_loss)]
        let share = failing.len() as f64 / fresh as f64;
        if failing.len() >= settings.min_failing_checks && share >= settings.min_failing_share {
            let (reason, error) = most_common(&reasons);
            let impairment =
                Impairment { region: region.clone(), failing_checks: failing, fresh_checks: fresh, reason, error };
            found.insert(region.clone(), impairment);
        }
    }
    if found.len() * 2 > with_data.len().max(rules.regions.len()) {
        found.clear();
    }
    (found, with_data)
}
