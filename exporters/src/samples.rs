//! One run's result as metric samples: blackbox_exporter's series, Grafana synthetic monitoring's, and ours.

use std::collections::BTreeMap;

use std::sync::LazyLock;

use probenet_checks::metrics::{self, SeriesWriter, flag, gauge};
use probenet_checks::wire::RunResult;
use probenet_checks::{Kind, Outcome, Reason, State};

use crate::sink::CheckMeta;

pub use probenet_checks::metrics::{Family, MetricType};

/// The families every result writes before its kind's own, in exposition order.
const HEAD: &[Family] = &[
    gauge("probe_success", "Displays whether or not the probe was a success"),
    gauge("probe_duration_seconds", "Returns how long the probe took to complete in seconds"),
];

/// The families every result writes after its kind's own, in exposition order.
const TAIL: &[Family] = &[
    gauge("sm_check_info", "Provides information about a single check configuration"),
    Family {
        name: "probe_all_success",
        help: "Displays whether or not the probe was a success (summary)",
        kind: MetricType::Summary,
    },
    Family {
        name: "probe_all_duration_seconds",
        help: "Returns how long the probe took to complete in seconds (histogram)",
        kind: MetricType::Histogram,
    },
    gauge("probenet_check_state", "State of the latest run: 0 up, 1 degraded, 2 down"),
    gauge("probenet_check_degraded", "Whether the latest run passed but was slower than degraded_after"),
    gauge("probenet_check_failure_reason", "Why the latest run failed (1 for its reason, 0 for the others)"),
    gauge("probenet_check_assertions", "Number of assertions the latest run evaluated"),
    gauge("probenet_check_assertions_failed", "Number of assertions of the latest run that failed"),
    gauge("probenet_check_last_run_timestamp_seconds", "When the latest run started, in unixtime"),
];

/// Every family [`samples`] produces, in exposition order: the head, the shared ones, each kind's own (in
/// [`Kind::ALL`] order), the TLS ones, then the tail.
pub static FAMILIES: LazyLock<Vec<Family>> = LazyLock::new(|| {
    let kinds = Kind::ALL.iter().flat_map(|kind| kind.families());
    HEAD.iter().chain(metrics::SHARED).chain(kinds).chain(metrics::TLS).chain(TAIL).copied().collect()
});

/// Every [`Reason`], in the order of the one-hot `probenet_check_failure_reason` series.
pub const REASONS: [Reason; 21] = [
    Reason::Timeout,
    Reason::Dns,
    Reason::Connect,
    Reason::Tls,
    Reason::CertExpired,
    Reason::CertNotYetValid,
    Reason::CertUntrusted,
    Reason::CertHostname,
    Reason::CertExpiring,
    Reason::Status,
    Reason::Body,
    Reason::Header,
    Reason::Duration,
    Reason::Redirects,
    Reason::Rcode,
    Reason::Loss,
    Reason::Assertion,
    Reason::Protocol,
    Reason::Secret,
    Reason::Unsupported,
    Reason::BrowserUnavailable,
];

/// The upper bounds of `probe_all_duration_seconds` (client_golang's defaults, as synthetic monitoring uses).
pub const DURATION_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The family a series name belongs to (`probe_all_success_sum` belongs to `probe_all_success`).
pub fn family(series: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|family| family.name == series).or_else(|| {
        ["_sum", "_count", "_bucket"].iter().find_map(|suffix| {
            let base = series.strip_suffix(suffix)?;
            FAMILIES.iter().find(|family| {
                family.name == base
                    && match family.kind {
                        MetricType::Summary => *suffix != "_bucket",
                        MetricType::Histogram => true,
                        MetricType::Gauge | MetricType::Counter => false,
                    }
            })
        })
    })
}

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name (`probe_all_success_sum` for a summary's sum).
    pub name: &'static str,
    /// Labels without `__name__`: `job`, `instance`, `probe`, `config_version` first, then the metric's own.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Unix milliseconds.
    pub timestamp_ms: i64,
}

/// Each region's labels (`regions.NAME.labels`), by region.
pub type RegionLabels = BTreeMap<String, BTreeMap<String, String>>;

/// Per-process facts that label series beyond the check and the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesOptions {
    /// The labels of each region, on every series of its results (a `geohash` one places it on Grafana's maps).
    pub region_labels: RegionLabels,
    /// Each check's interval in milliseconds, for `sm_check_info{frequency}`; omitted when unknown.
    pub frequency_ms: BTreeMap<String, u64>,
    /// Each check's alert sensitivity other than `none`, for `sm_check_info{alert_sensitivity}`.
    pub alert_sensitivity: BTreeMap<String, &'static str>,
}

/// The running totals of one (check, region) pair behind the cumulative `probe_all_*` series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Runs observed.
    pub runs: u64,
    /// Runs that succeeded (up or degraded).
    pub successes: u64,
    /// Sum of their durations, in seconds.
    pub duration_sum: f64,
    /// Runs per [`DURATION_BUCKETS`] bound (not cumulative).
    pub buckets: [u64; DURATION_BUCKETS.len()],
    /// The latest run observed (`planned_at_ms`), so a replayed or older result is not counted twice.
    pub last_planned_ms: Option<i64>,
}

impl Totals {
    /// Counts a result; returns false (and counts nothing) when it is not newer than the last one counted.
    pub fn observe(&mut self, result: &RunResult) -> bool {
        if self.last_planned_ms.is_some_and(|last| result.planned_at_ms <= last) {
            return false;
        }
        self.last_planned_ms = Some(result.planned_at_ms);
        self.runs += 1;
        self.successes += u64::from(result.outcome.success());
        let seconds = result.outcome.duration_seconds.max(0.0);
        self.duration_sum += seconds;
        if let Some(i) = DURATION_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i] += 1;
        }
        true
    }
}

/// A hash of what labels a check (kind, target, labels): the `config_version` label that synthetic
/// monitoring's dashboards join on. It changes when one of them changes.
pub fn config_version(check: &CheckMeta) -> String {
    let mut parts: Vec<&[u8]> = vec![check.kind.key().as_bytes(), b"\0", check.target.as_bytes()];
    for (name, value) in &check.labels {
        parts.extend([b"\0".as_slice(), name.as_bytes(), b"=", value.as_bytes()]);
    }
    format!("{:016x}", probenet_checks::wire::stable_hash(&parts))
}

/// What [`visit_samples`] calls for each sample: its series name, the labels every sample of the result has
/// (the same slice each time), the sample's own labels, its value.
pub type Visit<'a> = dyn FnMut(&'static str, &[(String, String)], &[(&str, &str)], f64) + 'a;

/// Hands each sample of a series set to a visitor, the result's labels built once.
struct Builder<'v, 'a> {
    base: Vec<(String, String)>,
    visit: &'v mut Visit<'a>,
}

impl SeriesWriter for Builder<'_, '_> {
    fn push(&mut self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        (self.visit)(name, &self.base, labels, value);
    }
}

/// The samples of one result, at its start time, given the pair's totals (already updated with it).
pub fn samples(check: &CheckMeta, result: &RunResult, totals: &Totals, options: &SeriesOptions) -> Vec<Sample> {
    let mut out = Vec::with_capacity(64);
    let at = result.started_at_ms;
    visit_samples(check, result, totals, options, &mut |name, base, own, value| {
        let mut labels = Vec::with_capacity(base.len() + own.len());
        labels.extend(base.iter().cloned());
        labels.extend(own.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
        out.push(Sample { name, labels, value, timestamp_ms: at });
    });
    out
}

/// [`samples`] without building them: each sample goes to `visit` with the labels all of them share (the
/// result's: job, instance, probe, config_version, the region's) apart from its own, so a sink that only needs
/// to find a series it knows copies no label.
pub fn visit_samples(
    check: &CheckMeta,
    result: &RunResult,
    totals: &Totals,
    options: &SeriesOptions,
    visit: &mut Visit<'_>,
) {
    let outcome = &result.outcome;
    let mut base = vec![
        ("job".to_owned(), check.name.clone()),
        ("instance".to_owned(), check.target.clone()),
        ("probe".to_owned(), result.region.clone()),
        ("config_version".to_owned(), config_version(check)),
    ];
    if let Some(labels) = options.region_labels.get(&result.region) {
        base.extend(labels.iter().map(|(name, value)| (name.clone(), value.clone())));
    }
    let mut b = Builder { base, visit };
    b.gauge("probe_success", flag(outcome.success()));
    b.gauge("probe_duration_seconds", outcome.duration_seconds);
    // The kind's own series, from its details type.
    check.kind.series(outcome, &mut b);
    check_info(&mut b, check, result, options);
    summaries(&mut b, totals);
    own(&mut b, outcome, result.started_at_ms);
}

/// `sm_check_info`: the check's kind as `check_name`, the region, and the check's labels as `label_NAME`.
fn check_info(b: &mut impl SeriesWriter, check: &CheckMeta, result: &RunResult, options: &SeriesOptions) {
    let mut labels: Vec<(String, String)> = vec![
        ("check_name".to_owned(), check.kind.sm_check_name().to_owned()),
        ("region".to_owned(), result.region.clone()),
    ];
    if let Some(frequency) = options.frequency_ms.get(&check.name) {
        labels.push(("frequency".to_owned(), frequency.to_string()));
    }
    if let Some(sensitivity) = options.alert_sensitivity.get(&check.name) {
        labels.push(("alert_sensitivity".to_owned(), (*sensitivity).to_owned()));
    }
    labels.extend(check.labels.iter().map(|(name, value)| (format!("label_{}", sanitize(name)), value.clone())));
    let refs: Vec<(&str, &str)> = labels.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    b.push("sm_check_info", &refs, 1.0);
}

/// A label name made of `[a-zA-Z0-9_]` only.
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn summaries(b: &mut impl SeriesWriter, totals: &Totals) {
    b.gauge("probe_all_success_sum", totals.successes as f64);
    b.gauge("probe_all_success_count", totals.runs as f64);
    let mut cumulative = 0;
    for (bound, count) in DURATION_BUCKETS.iter().zip(totals.buckets) {
        cumulative += count;
        b.push("probe_all_duration_seconds_bucket", &[("le", &bound.to_string())], cumulative as f64);
    }
    b.push("probe_all_duration_seconds_bucket", &[("le", "+Inf")], totals.runs as f64);
    b.gauge("probe_all_duration_seconds_sum", totals.duration_sum);
    b.gauge("probe_all_duration_seconds_count", totals.runs as f64);
}

fn own(b: &mut impl SeriesWriter, outcome: &Outcome, started_at_ms: i64) {
    let state = match outcome.state {
        State::Up => 0.0,
        State::Degraded => 1.0,
        State::Down => 2.0,
    };
    b.gauge("probenet_check_state", state);
    b.gauge("probenet_check_degraded", flag(outcome.state == State::Degraded));
    for reason in REASONS {
        b.push("probenet_check_failure_reason", &[("reason", reason.as_str())], flag(outcome.reason == Some(reason)));
    }
    b.gauge("probenet_check_assertions", outcome.assertions.len() as f64);
    let failed = outcome.assertions.iter().filter(|assertion| !assertion.passed).count();
    b.gauge("probenet_check_assertions_failed", failed as f64);
    b.gauge("probenet_check_last_run_timestamp_seconds", started_at_ms as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails to compile when a reason is added without being listed in [`REASONS`].
    fn listed(reason: Reason) -> bool {
        match reason {
            Reason::Timeout
            | Reason::Dns
            | Reason::Connect
            | Reason::Tls
            | Reason::CertExpired
            | Reason::CertNotYetValid
            | Reason::CertUntrusted
            | Reason::CertHostname
            | Reason::CertExpiring
            | Reason::Status
            | Reason::Body
            | Reason::Header
            | Reason::Duration
            | Reason::Redirects
            | Reason::Rcode
            | Reason::Loss
            | Reason::Assertion
            | Reason::Protocol
            | Reason::Secret
            | Reason::Unsupported
            | Reason::BrowserUnavailable => REASONS.contains(&reason),
        }
    }

    #[test]
    fn every_reason_is_listed_once() {
        assert!(REASONS.iter().all(|reason| listed(*reason)));
        let names: std::collections::BTreeSet<&str> = REASONS.iter().map(|reason| reason.as_str()).collect();
        assert_eq!(names.len(), REASONS.len());
    }

    #[test]
    fn series_names_find_their_family() {
        assert_eq!(family("probe_all_success_sum").map(|f| f.name), Some("probe_all_success"));
        assert_eq!(family("probe_all_success_bucket"), None);
        assert_eq!(family("probe_all_duration_seconds_bucket").map(|f| f.name), Some("probe_all_duration_seconds"));
        assert_eq!(family("probe_success_count"), None);
        assert_eq!(family("probe_http_ssl").map(|f| f.kind), Some(MetricType::Gauge));
    }

    #[test]
    fn config_version_follows_what_labels_the_check() {
        let mut check =
            CheckMeta { name: "a".into(), kind: Kind::Http, target: "http://x/".into(), labels: BTreeMap::new() };
        let first = config_version(&check);
        check.name = "b".into();
        assert_eq!(config_version(&check), first, "the name is the job label, not part of the version");
        check.labels.insert("team".into(), "web".into());
        assert_ne!(config_version(&check), first);
    }
}
