//! The engine's errors.

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The state database failed.
    #[error("alert state store: {0}")]
    Store(#[from] rusqlite::Error),
    /// A stored row could not be read back.
    #[error("alert state store: unreadable row: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The database was written by a newer probenet.
    #[error("alert state store: schema version {0} is newer than this build knows")]
    NewerSchema(i64),
    /// A silence is not valid.
    #[error("invalid silence: {0}")]
    InvalidSilence(String),
}
