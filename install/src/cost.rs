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

/// The embedded store's footprint per result while raw results are kept, in bytes: 287 MB per million results
/// measured in docs/store.md with the compact bodies of schema version 4 (database and WAL after checkpoint,
/// rollups included, no artifacts).
pub const STORE_BYTES_PER_RESULT: f64 = 287.0;

/// Bytes of one result in the bucket's archive (zstd NDJSON, by day and check): realistic HTTPS results take
/// ~45 bytes at level 9, as the archive writes them (55 at level 3), measured by the test
/// `archived_results_take_less_than_the_figure` (install/tests/backups.rs); rounded up with a margin for
/// results with errors and logs.
pub const ARCHIVE_BYTES_PER_RESULT: f64 = 120.0;
/// A browser check's screenshot of a failed run (a PNG of the viewport).
pub const SCREENSHOT_BYTES: f64 = 300_000.0;
/// The share of runs assumed to fail, for artifacts (conservative: most checks fail far less).
pub const FAILURE_SHARE: f64 = 0.05;
/// The embedded store's rollups per result once raw results are pruned (docs/store.md: ~91 MB per million).
pub const ROLLUP_BYTES_PER_RESULT: f64 = 91.0;
/// The days raw results (and their artifacts) are kept by default.
pub const RAW_RETENTION_DAYS: f64 = 7.0;
/// Days in a month, for monthly figures.
pub const MONTH_DAYS: f64 = 30.0;

/// What the bucket (`objects`) holds after a month.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketCost {
    /// Screenshots of failed browser runs, kept as long as raw results ([`SCREENSHOT_BYTES`] each,
    /// [`FAILURE_SHARE`] of runs).
    pub artifacts_bytes: f64,
    /// The archive's growth a month (results older than `archive_after`, [`ARCHIVE_BYTES_PER_RESULT`] each);
    /// 0 without an archive.
    pub archive_bytes_per_month: f64,
    /// The embedded store's backups: `backup_keep` copies of a month-old store (uncompressed size, so an upper
    /// bound: zstd makes them 2 to 4 times smaller); 0 for replicated schedulers or without backups.
    pub store_backups_bytes: f64,
    /// The VictoriaMetrics backup (one incremental copy of its data after a month); 0 when not scheduled.
    pub victoria_metrics_backup_bytes: f64,
}

impl BucketCost {
    /// Everything after a month.
    pub fn total(&self) -> f64 {
        self.artifacts_bytes
            + self.archive_bytes_per_month
            + self.store_backups_bytes
            + self.victoria_metrics_backup_bytes
    }
}

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
    /// The bucket's expected size, when the config sets `objects`.
    pub bucket: Option<BucketCost>,
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
    cost.bucket = config.objects.as_ref().map(|objects| {
        let browser_runs = cost.by_kind.get("browser").map_or(0.0, |kind| kind.runs_per_day);
        let archive_bytes_per_month = match objects.archive_after {
            Some(_) => cost.runs_per_day * MONTH_DAYS * ARCHIVE_BYTES_PER_RESULT,
            None => 0.0,
        };
        let store_after_a_month = cost.runs_per_day
            * (RAW_RETENTION_DAYS * STORE_BYTES_PER_RESULT
                + (MONTH_DAYS - RAW_RETENTION_DAYS) * ROLLUP_BYTES_PER_RESULT);
        let store_backups_bytes = match objects.backup_every {
            Some(_) => f64::from(objects.backup_keep) * store_after_a_month,
            None => 0.0,
        };
        BucketCost {
            artifacts_bytes: browser_runs * FAILURE_SHARE * SCREENSHOT_BYTES * RAW_RETENTION_DAYS,
            archive_bytes_per_month,
            store_backups_bytes,
            victoria_metrics_backup_bytes: 0.0,
        }
    });
    cost
}

/// The cost of a stack: [`estimate`] of its checks config, with the bucket as the stack uses it (no store
/// backups for replicated schedulers, whose state is in PostgreSQL; the VictoriaMetrics backup when
/// `install local` schedules it: its data after a month, or its retention if shorter).
pub fn estimate_stack(loaded: &crate::stack::Loaded) -> Cost {
    let mut cost = estimate(&loaded.config);
    let replicated = loaded.stack.scheduler.replicated();
    let vm_backup = crate::vmbackup::scheduled(loaded).is_some();
    let retention_days = loaded.stack.store.retention_days() as f64;
    let vm_bytes_per_day = cost.victoria_metrics_bytes_per_day;
    if let Some(bucket) = &mut cost.bucket {
        if replicated {
            bucket.store_backups_bytes = 0.0;
        }
        if vm_backup {
            bucket.victoria_metrics_backup_bytes = vm_bytes_per_day * MONTH_DAYS.min(retention_days);
        }
    }
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
        if let Some(bucket) = &self.bucket {
            writeln!(f, "  bucket after a month: {} (objects)", human_bytes(bucket.total()))?;
            writeln!(
                f,
                "    artifacts:        {} (screenshots of failed browser runs: ~{:.0}% of runs, ~{} each, kept {RAW_RETENTION_DAYS} days)",
                human_bytes(bucket.artifacts_bytes),
                FAILURE_SHARE * 100.0,
                human_bytes(SCREENSHOT_BYTES)
            )?;
            writeln!(
                f,
                "    archive:          {} a month (~{ARCHIVE_BYTES_PER_RESULT} bytes/result, zstd NDJSON; 0 without archive_after)",
                human_bytes(bucket.archive_bytes_per_month)
            )?;
            writeln!(
                f,
                "    store backups:    {} (backup_keep x the embedded store after a month, uncompressed)",
                human_bytes(bucket.store_backups_bytes)
            )?;
            writeln!(
                f,
                "    VictoriaMetrics backup: {} (one incremental copy of its data)",
                human_bytes(bucket.victoria_metrics_backup_bytes)
            )?;
        }
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
