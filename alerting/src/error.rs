//! The engine's errors.

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The state database failed.
    #[error("alert state store: {0}")]
    Store(#[from] rusqlite::Error),
    /// The PostgreSQL state failed (connection, statement, migration).
    #[error("alert state store (PostgreSQL): {0}")]
    Database(String),
    /// A write to the PostgreSQL state was refused because this replica does not hold the leader fence (any
    /// more): nothing was written, and nothing may be sent on its strength.
    #[error("alert state store: write refused: {0}")]
    Fenced(String),
    /// A write to the PostgreSQL state was refused because this replica has no fence (it does not lead).
    #[error("alert state store: write refused: this replica does not lead (no leader fence)")]
    NoFence,
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

impl AlertError {
    /// True when the write was refused for want of leadership (no fence, or a fence the lease no longer
    /// honours), as opposed to a failure that may pass.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Self::Fenced(_) | Self::NoFence)
    }
}

impl From<probenet_pg::FencedError> for AlertError {
    fn from(error: probenet_pg::FencedError) -> Self {
        if error.is_fenced() { Self::Fenced(error.to_string()) } else { Self::Database(error.to_string()) }
    }
}
