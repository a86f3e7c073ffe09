//! Silences and maintenance windows: matchers over alerts, checks, regions and labels, for a span of time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a silence applies to. Every matcher set must match; an empty set of matchers matches every alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matchers {
    /// The alert's name (`site-down`, `region-impaired`, `slo-fast-burn`).
    #[serde(default)]
    pub alert: Option<String>,
    /// The check.
    #[serde(default)]
    pub check: Option<String>,
    /// A region: matches alerts naming it among their regions.
    #[serde(default)]
    pub region: Option<String>,
    /// Labels the alert must have, with these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A silence: matching alerts still change state, but notifiers are not told. A maintenance window is a
/// silence that also leaves the runs of matching checks (and regions) out of SLO budgets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id, set by the engine.
    #[serde(default)]
    pub id: u64,
    /// What it applies to.
    pub matchers: Matchers,
    /// When it starts, unix ms.
    pub starts_ms: i64,
    /// When it ends, unix ms.
    pub ends_ms: i64,
    /// Why.
    #[serde(default)]
    pub comment: String,
    /// Who set it.
    #[serde(default)]
    pub created_by: String,
    /// A maintenance window: runs of matching checks do not count against SLOs while it lasts.
    #[serde(default)]
    pub maintenance: bool,
}

/// What a silence is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The alert's name.
    pub alert: &'a str,
    /// The check, if any.
    pub check: Option<&'a str>,
    /// The regions involved.
    pub regions: &'a [String],
    /// The alert's labels.
    pub labels: &'a BTreeMap<String, String>,
}

impl Silence {
    /// Whether it is in force at `now_ms`.
    pub fn active(&self, now_ms: i64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }

    /// Whether it applies to `subject` (at any time).
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        let m = &self.matchers;
        m.alert.as_deref().is_none_or(|alert| alert == subject.alert)
            && m.check.as_deref().is_none_or(|check| Some(check) == subject.check)
            && m.region.as_deref().is_none_or(|region| subject.regions.iter().any(|known| known == region))
            && m.labels.iter().all(|(name, value)| subject.labels.get(name) == Some(value))
    }

    /// Whether it is a maintenance window in force for runs of `check` in `region`.
    pub fn covers_run(&self, check: &str, region: &str, labels: &BTreeMap<String, String>, at_ms: i64) -> bool {
        let m = &self.matchers;
        self.maintenance
            && self.active(at_ms)
            && m.alert.is_none()
            && m.check.as_deref().is_none_or(|known| known == check)
            && m.region.as_deref().is_none_or(|known| known == region)
            && m.labels.iter().all(|(name, value)| labels.get(name) == Some(value))
    }

    /// Checks the span.
    pub fn validate(&self) -> Result<(), String> {
        if self.ends_ms <= self.starts_ms {
            return Err("it must end after it starts".to_owned());
        }
        Ok(())
    }
}
