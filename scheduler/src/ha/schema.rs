//! The PostgreSQL schema: versioned migrations recorded in `schema_migrations`, safe to run from several
//! replicas at once, refusing a database newer than this build.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

/// Every step since version 1, in order. Released steps are never edited: add a new one.
pub const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE scheduler_lease (
         name TEXT PRIMARY KEY,
         holder TEXT NOT NULL,
         generation BIGINT NOT NULL,
         expires_at TIMESTAMPTZ NOT NULL
     );
     CREATE TABLE scheduler_members (
         name TEXT PRIMARY KEY,
         url TEXT NOT NULL,
         version TEXT NOT NULL,
         last_seen TIMESTAMPTZ NOT NULL
     );",
)];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The database was migrated by a newer build; running this one could corrupt it.
    #[error(
        "the database schema is version {found}, newer than this build knows ({known}): \
         refusing to downgrade; run a newer probenet"
    )]
    NewerSchema {
        /// The version in `schema_migrations`.
        found: i64,
        /// The latest version this build knows.
        known: i64,
    },
    /// A statement failed.
    #[error("migrating the database: {}", crate::ha::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}

/// Brings the schema to [`latest`]. Each step runs in its own transaction that first records its version: two
/// replicas migrating at once serialise on that row, and the second skips the step (no lock statements, so the
/// SQL stays portable). Returns the version reached.
pub async fn migrate(client: &mut Client) -> Result<i64, SchemaError> {
    create_table(client).await?;
    let found = current(client).await?;
    if found > latest() {
        return Err(SchemaError::NewerSchema { found, known: latest() });
    }
    for (version, ddl) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        let tx = client.transaction().await?;
        match tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version]).await {
            Ok(_) => {}
            // Another replica applied this step while we waited for its row.
            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => continue,
            Err(error) => return Err(error.into()),
        }
        tx.batch_execute(ddl).await?;
        tx.commit().await?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(current(client).await?)
}

/// The version recorded in `schema_migrations` (0 for a new database).
pub async fn current(client: &Client) -> Result<i64, tokio_postgres::Error> {
    let row = client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?;
    row.try_get(0)
}

async fn create_table(client: &Client) -> Result<(), tokio_postgres::Error> {
    const CREATE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
        version BIGINT PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )";
    // Two first starts at once can both pass IF NOT EXISTS in PostgreSQL; the loser sees a duplicate (table or
    // row type) and the table is there when it tries again.
    let mut attempts = 0;
    loop {
        match client.batch_execute(CREATE).await {
            Err(error) if is_duplicate(&error) && attempts < 3 => attempts += 1,
            other => return other,
        }
    }
}

fn is_duplicate(error: &tokio_postgres::Error) -> bool {
    matches!(error.code(), Some(code) if *code == SqlState::UNIQUE_VIOLATION
        || *code == SqlState::DUPLICATE_TABLE
        || *code == SqlState::DUPLICATE_OBJECT)
}
