//! High availability on PostgreSQL, the foundation: the connection pool, the schema, the leader lease, the task
//! that keeps it, and writes fenced by its generation. Nothing here is wired into the running scheduler yet; see
//! `docs/ha.md`.

pub mod elector;
pub mod fence;
pub mod lease;
pub mod members;
pub mod pool;
pub mod schema;

pub use elector::{Elector, LeaderHandle};
pub use fence::{FencedError, FencedFuture};
pub use lease::{Leadership, Lease, LeaseState};
pub use pool::{PoolError, Tls, connect};
pub use schema::{SchemaError, migrate};

/// A database error with the server's message, code and detail (tokio-postgres' own `Display` says only
/// "db error").
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; {detail}"));
            }
            text
        }
        None => error.to_string(),
    }
}
