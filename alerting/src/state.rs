//! The engine's persistent state behind one interface, [`AlertState`], with two backends: SQLite
//! ([`SqliteState`], one scheduler, the embedded default) and PostgreSQL ([`PostgresState`], replicated schedulers,
//! every write fenced by the leader lease). The state is open alerts, history, silences, SLO buckets and the
//! notification **outbox**: a notification is a row recorded in the same transaction as the alert state that
//! decided it, claimed before each delivery attempt and settled (delivered or given up) after it, so a new leader
//! (or a restarted scheduler) resumes what was decided but not delivered. See `docs/ha.md`, "Alerts across a
//! failover".

use serde::{Deserialize, Serialize};

use crate::error::AlertError;
use crate::notification::Notification;
use crate::silence::Silence;
use crate::slo::{Counts, Resolution};

mod postgres;
mod sqlite;

pub use postgres::{FenceSource, PostgresState, fence_source};
pub use sqlite::SqliteState;

/// How many history entries are kept.
pub const HISTORY_KEPT: i64 = 10_000;
/// How many settled (delivered or given up) outbox rows are kept, the newest, for inspection.
pub const SETTLED_KEPT: i64 = 1_000;
/// How many undelivered outbox rows are resumed at once, the oldest first.
pub const RESUME_LIMIT: i64 = 1_000;

/// One SLO bucket as stored.
pub type BucketRow = (String, Resolution, i64, Counts);
/// The identity of one SLO bucket: check, resolution, start.
pub type BucketKey = (String, Resolution, i64);

/// What one evaluation decided, written in one transaction (fenced on PostgreSQL): the open alerts that changed
/// or ended, the history entries, and the notifications to send (one outbox row per notifier).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Open alerts stored or replaced: key and JSON body.
    pub put: Vec<(String, String)>,
    /// Open alerts that ended or were dropped, by key.
    pub delete: Vec<String>,
    /// History entries to append, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Notifications to record in the outbox: the notifier's name and what it is told.
    pub notify: Vec<(String, Notification)>,
    /// When the batch was decided (engine clock), unix ms; the outbox rows' creation time.
    pub at_ms: i64,
}

impl Batch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.delete.is_empty() && self.history.is_empty() && self.notify.is_empty()
    }
}

/// An undelivered outbox row: one notification to one notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The row's id.
    pub id: u64,
    /// The notifier's name.
    pub notifier: String,
    /// What it is told.
    pub notification: Notification,
    /// Delivery attempts claimed so far (by any replica, in any life).
    pub attempts: u32,
    /// When it was recorded (engine clock), unix ms.
    pub created_ms: i64,
}

/// The answer to a claim before a delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Attempt it: this is attempt number `.0` (counted in the row).
    Send(u32),
    /// The row is no longer pending (delivered, given up, or pruned): do not send.
    Settled,
    /// The row ran out of attempts; it is now marked given up: do not send.
    GaveUp,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The notifier accepted it.
    Delivered,
    /// Given up (refused, out of attempts, too old), with why.
    Failed(String),
}

/// The engine's persistent state. Object-safe; every method is a synchronous call (PostgreSQL runs its own small
/// runtime), so async code calls it through `spawn_blocking`. On PostgreSQL every write runs in a transaction
/// that first checks the leader fence, and fails with an error for which [`AlertError::is_fenced`] is true when
/// this replica does not lead (any more): nothing may be sent on the strength of a refused write.
pub trait AlertState: Send + Sync + std::fmt::Debug {
    /// Every stored open alert's JSON body, by key order.
    fn instances(&self) -> Result<Vec<String>, AlertError>;
    /// Writes what one evaluation decided, atomically, and returns the ids of the outbox rows it recorded, in the
    /// order of [`Batch::notify`].
    fn commit(&self, batch: &Batch) -> Result<Vec<u64>, AlertError>;
    /// The newest `limit` history entries, newest first.
    fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, AlertError>;
    /// Stores a new silence and returns its id (the stored body carries it).
    fn add_silence(&self, silence: &Silence) -> Result<u64, AlertError>;
    /// Replaces the silence with `silence.id`.
    fn put_silence(&self, silence: &Silence) -> Result<(), AlertError>;
    /// Forgets a silence.
    fn delete_silence(&self, id: u64) -> Result<(), AlertError>;
    /// Every stored silence with its id.
    fn silences(&self) -> Result<Vec<(u64, Silence)>, AlertError>;
    /// Every stored SLO bucket.
    fn buckets(&self) -> Result<Vec<BucketRow>, AlertError>;
    /// Writes changed buckets and deletes dropped ones, in one transaction.
    fn write_buckets(&self, changed: &[BucketRow], dropped: &[BucketKey]) -> Result<(), AlertError>;
    /// The undelivered outbox rows, oldest first, at most [`RESUME_LIMIT`].
    fn undelivered(&self) -> Result<Vec<Pending>, AlertError>;
    /// Claims outbox row `id` for one more delivery attempt, allowing at most `max_attempts` in all.
    fn claim(&self, id: u64, max_attempts: u32) -> Result<Claim, AlertError>;
    /// Marks outbox row `id` delivered or given up (if still pending), and prunes old settled rows.
    fn settle(&self, id: u64, outcome: &Settled) -> Result<(), AlertError>;
}

/// A stored history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it happened, unix ms.
    pub at_ms: i64,
    /// The alert instance.
    pub key: String,
    /// The alert's name.
    pub alert: String,
    /// The check, when about one.
    pub check: Option<String>,
    /// `firing` or `resolved`.
    pub status: crate::Status,
    /// The regions failing.
    pub regions: Vec<String>,
    /// The summary line.
    pub summary: String,
    /// Whether notifiers were told (false when silenced).
    pub notified: bool,
}

/// Row ids are BIGINT in both databases.
pub(crate) fn to_sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// A stored row id (always positive).
pub(crate) fn from_sql_id(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

/// A stored count.
pub(crate) fn to_sql_count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Outbox row statuses.
pub(crate) const PENDING: &str = "pending";
pub(crate) const DELIVERED: &str = "delivered";
pub(crate) const FAILED: &str = "failed";
