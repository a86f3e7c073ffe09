//! PostgreSQL for probenet's replicated control plane: the connection pool (plain or over rustls), versioned
//! migrations per component, the leader lease, the task that keeps it, writes fenced by its generation, and a
//! bridge for synchronous callers. The design: `docs/ha.md`.

pub mod blocking;
pub mod elector;
pub mod fence;
pub mod lease;
pub mod pool;
pub mod schema;

pub use blocking::Blocking;
pub use elector::{Elector, LeaderHandle};
pub use fence::{Fence, FencedError, FencedFuture};
pub use lease::{Leadership, Lease, LeaseState};
pub use pool::{Database, PoolError, Tls, connect, connect_config};
pub use schema::{Migrations, SchemaError, migrate};

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
