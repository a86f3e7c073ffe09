//! The alerting part of the config as written in YAML: notifiers, alert rules, SLOs and probe health.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

pub use super::notifiers::RawNotifier;

/// One alert rule: which checks, how many of their regions must fail, for how long, and who is told.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Alert")]
pub struct RawAlert {
    /// A unique name: lowercase letters, digits, `-` and `_`. `region-impaired`, `slo-fast-burn` and
    /// `slo-slow-burn` are reserved.
    pub name: String,
    /// The checks the rule watches, by name. Exclusive with `match`; one of them is required.
    pub checks: Option<crate::config::OneOrMany<String>>,
    /// Selects the checks the rule watches by their labels. Exclusive with `checks`.
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    /// How many of a check's regions must fail: a count such as `2`, or a share such as `"50%"` (default
    /// `"50%"`: at least half, and at least one). Regions marked impaired are left out of the count.
    pub failed_regions: Option<RegionCount>,
    /// How long the condition must hold before the alert fires, such as `2m` (default `0s`: at once).
    /// Exclusive with `consecutive`.
    #[serde(rename = "for")]
    pub hold: Option<String>,
    /// Fire when at least `failed_regions` regions each failed this many runs in a row. Exclusive with `for`.
    pub consecutive: Option<u32>,
    /// How long the condition must stay false before the alert resolves (default: two intervals of the
    /// slowest check watched, at least `1m`).
    pub resolve_after: Option<String>,
    /// Which runs count as failing: `down` (default) or `degraded` (a degraded or down run).
    pub state: Option<String>,
    /// The severity passed to notifiers, such as `page`, `ticket` or `warning` (default `warning`).
    pub severity: Option<String>,
    /// Labels added to the alert (the check's labels are added too).
    pub labels: Option<BTreeMap<String, String>>,
    /// The notifiers told when the alert fires and resolves, by name.
    pub notify: Option<crate::config::OneOrMany<String>>,
}

/// A label selector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AlertMatch")]
pub struct RawMatch {
    /// Every label listed must be set on the check, with this value.
    pub labels: BTreeMap<String, String>,
}

/// A service level objective for one check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Slo")]
pub struct RawSlo {
    /// The share of runs, over every region, that must succeed, in percent, such as `99.9`.
    pub objective: f64,
    /// The window the objective is measured over, `1d` to `90d` (default `30d`).
    pub window: Option<String>,
    /// The notifiers told of burn-rate alerts (`slo-fast-burn`, `slo-slow-burn`); default: the notifiers of
    /// every alert rule that watches this check.
    pub notify: Option<crate::config::OneOrMany<String>>,
}

/// The probe-health alert raised when one region fails most of its checks while the others pass them.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ProbeHealth")]
pub struct RawProbeHealth {
    /// The notifiers told of a `region-impaired` alert (default: every notifier some alert rule uses).
    pub notify: Option<crate::config::OneOrMany<String>>,
    /// The alert's severity (default `warning`).
    pub severity: Option<String>,
    /// The fewest failing checks that can make a region impaired (default 3).
    pub min_failing_checks: Option<u32>,
    /// The share of a region's checks that must fail, such as `"50%"` (default `"50%"`).
    pub min_failing_share: Option<String>,
    /// The share of the other regions that must pass each of those checks (default `"50%"`).
    pub min_passing_elsewhere: Option<String>,
}

/// A count of regions (`2`) or a share of them (`"50%"`).
#[derive(Debug, Clone, PartialEq)]
pub enum RegionCount {
    /// A count.
    Count(u64),
    /// Text, expected to be a percentage.
    Text(String),
}

impl<'de> Deserialize<'de> for RegionCount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RegionCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a count of regions such as 2 or a share such as \"50%\"")
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<RegionCount, E> {
                Ok(RegionCount::Count(value))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<RegionCount, E> {
                Ok(RegionCount::Text(value.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<RegionCount, E> {
                Ok(RegionCount::Text(value.to_string()))
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RegionCount, E> {
                Ok(RegionCount::Text(value.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for RegionCount {
    fn schema_name() -> Cow<'static, str> {
        "RegionCount".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A count of regions such as 2, or a share such as \"50%\".",
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?%$"}
            ]
        })
    }
}
