//! The cost of a config: runs per day, active series under the blackbox-compatible naming, and storage per day
//! in VictoriaMetrics and in the scheduler's embedded store.
//!
//! Series are counted by building one representative successful result per check (each kind builds its own:
//! `KindCheck::representative`, with the status code and TLS session for an `https://` URL, RTT statistics for
//! ICMP, ...) and counting the samples `probenet_exporters::samples` makes of it: exactly what remote write
//! sends for that check.

use std::collections::BTreeMap;
use std::fmt;

use probenet_checks::config::{Check, Config};
use probenet_checks::wire::RunResult;
use probenet_exporters::samples::{SeriesOptions, Totals, samples};
use probenet_exporters::sink::CheckMeta;

/// VictoriaMetrics' compressed size of one sample, in bytes. Its docs quote 0.4 to 1 byte per sample for
/// typical data; probe series change often (durations) so the upper end is assumed.
pub const VM_BYTES_PER_SAMPLE: f64 = 1.0;

/// The embedded store's footprint per result while raw results are kept, in bytes: 858 MB per million results
/// measured in docs/store.md (database and WAL after checkpoint, rollups included, no artifacts).
pub const STORE_BYTES_PER_RESULT: f64 = 858.0;

/// The cost of one check kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindCost {
    /// Checks of the kind.
    pub checks: usize,
    /// (check, region) pairs.
    pub pairs: usize,
    /// Runs a day over those pairs.
    pub runs_per_day: f64,
    /// Active series over those pairs.
    pub series: u64,
}

/// The cost of a config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cost {
    /// Runs a day over every check and region.
    pub runs_per_day: f64,
    /// Series one remote write receiver holds (each check x region x its series per result).
    pub active_series: u64,
    /// Samples written a day (each run writes one sample of each of its series).
    pub samples_per_day: f64,
    /// Estimated VictoriaMetrics bytes a day ([`VM_BYTES_PER_SAMPLE`]).
    pub victoria_metrics_bytes_per_day: f64,
    /// Estimated embedded store bytes a day ([`STORE_BYTES_PER_RESULT`]).
    pub store_bytes_per_day: f64,
    /// The same by kind key (`http`, `dns`, ...).
    pub by_kind: BTreeMap<&'static str, KindCost>,
}

/// Estimates the cost of `config`.
pub fn estimate(config: &Config) -> Cost {
    let mut cost = Cost::default();
    for check in &config.checks {
        let regions = check.regions.len();
        let runs = check.schedule.runs_per_day() * regions as f64;
        let series = series_per_result(check) as u64;
        let kind = cost.by_kind.entry(check.kind.key()).or_default();
        kind.checks += 1;
        kind.pairs += regions;
        kind.runs_per_day += runs;
        kind.series += series * regions as u64;
        cost.runs_per_day += runs;
        cost.active_series += series * regions as u64;
        cost.samples_per_day += runs * series as f64;
    }
    cost.victoria_metrics_bytes_per_day = cost.samples_per_day * VM_BYTES_PER_SAMPLE;
    cost.store_bytes_per_day = cost.runs_per_day * STORE_BYTES_PER_RESULT;
    cost
}

/// The series one result of `check` writes (in one region).
pub fn series_per_result(check: &Check) -> usize {
    let meta = CheckMeta::of(check);
    let result = RunResult {
        check: check.name.clone(),
        region: check.regions.first().cloned().unwrap_or_default(),
        planned_at_ms: 1_767_225_600_000,
        started_at_ms: 1_767_225_600_000,
        prober: "estimate".to_owned(),
        outcome: check.kind.representative(),
    };
    let mut totals = Totals::default();
    totals.observe(&result);
    samples(&meta, &result, &totals, &SeriesOptions::default()).len()
}

/// `1.2 KB`, `3.4 MB`, ... (powers of 1000, as disks are sold).
pub fn human_bytes(bytes: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{value:.0} B") } else { format!("{value:.1} {}", units[unit]) }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cost of the configured checks:")?;
        writeln!(f, "  runs per day:       {:.0}", self.runs_per_day)?;
        writeln!(f, "  active series:      {}", self.active_series)?;
        writeln!(f, "  samples per day:    {:.0}", self.samples_per_day)?;
        writeln!(
            f,
            "  storage per day:    {} in VictoriaMetrics (~{VM_BYTES_PER_SAMPLE} byte/sample), {} in the embedded \
             store (~{STORE_BYTES_PER_RESULT} bytes/result)",
            human_bytes(self.victoria_metrics_bytes_per_day),
            human_bytes(self.store_bytes_per_day)
        )?;
        for (kind, cost) in &self.by_kind {
            writeln!(
                f,
                "  {kind:<8} {} check(s), {} pair(s), {:.0} runs/day, {} series",
                cost.checks, cost.pairs, cost.runs_per_day, cost.series
            )?;
        }
        Ok(())
    }
}
