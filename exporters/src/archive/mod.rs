//! The long-term archive of raw results in the bucket: whole UTC days, one zstd-compressed NDJSON file per
//! (day, check) and a manifest per day written last; the pass that writes the days due and gives retention its
//! floor; listing and restoring a window into a store. Layout and format: `docs/storage.md#the-archive`.

mod day;
mod format;
mod pass;
mod restore;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub use day::{DAY_MS, Day};
pub use format::{CheckFile, FORMAT, Manifest, ROOT, VERSION, day_folder, file_key, manifest_key, sanitise};
pub use pass::{Archiver, Pass};
pub use probenet_objects::Bucket;
pub use restore::{Restored, Selection, list, restore};

use crate::store::StoreError;

/// What can go wrong while archiving or restoring.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The store failed.
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    /// The bucket failed (down, refused the keys, ...).
    #[error("{0}")]
    Bucket(#[from] probenet_objects::BucketError),
    /// A file or manifest in the bucket is not what it should be; nothing of it was used.
    #[error("{key}: {message}")]
    Damaged {
        /// Its key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A local file operation failed (temporary files).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A result could not be encoded.
    #[error("encoding a result: {0}")]
    Format(String),
    /// A background task died.
    #[error("an archive task failed: {0}")]
    Task(String),
}

impl ArchiveError {
    /// A mapper for `map_err` that names what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArchiveError {
        let what = what.into();
        move |source| ArchiveError::Io { what, source }
    }
}

/// The archive's counters, for `/metrics`: shared by the pass (which updates them) and the exposition.
#[derive(Debug)]
pub struct Status {
    /// Days written by this process.
    pub days: AtomicU64,
    /// Results written by this process.
    pub results: AtomicU64,
    /// Passes that stopped on an error (the bucket down, ...).
    pub failures: AtomicU64,
    /// Complete days due for the archive and not written yet, as of the last pass.
    pub pending_days: AtomicU64,
    /// The retention floor of the last pass: raw results planned from then on are kept (`i64::MIN`: none yet).
    pub floor_ms: AtomicI64,
    /// When the last pass ended without error (unix ms; 0: never).
    pub last_success_ms: AtomicI64,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            days: AtomicU64::new(0),
            results: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            pending_days: AtomicU64::new(0),
            floor_ms: AtomicI64::new(i64::MIN),
            last_success_ms: AtomicI64::new(0),
        }
    }
}

impl Status {
    /// The series, in the Prometheus text format.
    pub fn families(&self) -> Vec<crate::FamilySamples> {
        use crate::{FamilySamples, MetricType};
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64;
        vec![
            FamilySamples::single(
                "probenet_archive_days_total",
                "Days written to the archive.",
                MetricType::Counter,
                load(&self.days),
            ),
            FamilySamples::single(
                "probenet_archive_results_total",
                "Results written to the archive.",
                MetricType::Counter,
                load(&self.results),
            ),
            FamilySamples::single(
                "probenet_archive_failures_total",
                "Archive passes that stopped on an error (raw results are kept until they are archived).",
                MetricType::Counter,
                load(&self.failures),
            ),
            FamilySamples::single(
                "probenet_archive_pending_days",
                "Complete days due for the archive and not written yet; their raw results are kept.",
                MetricType::Gauge,
                load(&self.pending_days),
            ),
            FamilySamples::single(
                "probenet_archive_last_success_timestamp_seconds",
                "When the last archive pass ended without error (0: never).",
                MetricType::Gauge,
                self.last_success_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            ),
        ]
    }
}
