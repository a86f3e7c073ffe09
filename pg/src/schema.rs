//! Versioned migrations: each part of probenet that keeps tables in the database (the lease, the scheduler's
//! replicas, the result store, the alert state) is a *component* with its own numbered steps, recorded in
//! `schema_migrations (component, version)`. Safe to run from several replicas at once; a database migrated by a
//! newer build is refused.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

/// One component's steps since version 1, in order. Released steps are never edited: add a new one.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// The component's name in `schema_migrations`.
    pub component: &'static str,
    /// `(version, DDL)`, versions 1, 2, 3, ...
    pub steps: &'static [(i64, &'static str)],
}

impl Migrations {
    /// The schema version this build writes.
    pub fn latest(&self) -> i64 {
        self.steps.last().map_or(0, |(version, _)| *version)
    }
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The database was migrated by a newer build; running this one could corrupt it.
    #[error(
        "the database schema of the {component} is version {found}, newer than this build knows ({known}): \
         refusing to downgrade; run a newer probenet"
    )]
    NewerSchema {
        /// The component.
        component: &'static str,
        /// The version in `schema_migrations`.
        found: i64,
        /// The latest version this build knows.
        known: i64,
    },
    /// A statement failed.
    #[error("migrating the database: {}", crate::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}

/// Brings `migrations`' component to its latest version. Each step runs in its own transaction that first
/// records its version: two replicas migrating at once serialise on that row, and the second skips the step (no
/// lock statements, so the SQL stays portable). Returns the version reached.
pub async fn migrate(client: &mut Client, migrations: &Migrations) -> Result<i64, SchemaError> {
    create_table(client).await?;
    let component = migrations.component;
    let found = current(client, component).await?;
    if found > migrations.latest() {
        return Err(SchemaError::NewerSchema { component, found, known: migrations.latest() });
    }
    for (version, ddl) in migrations.steps.iter().filter(|(version, _)| *version > found) {
        let tx = client.transaction().await?;
        match tx
            .execute("INSERT INTO schema_migrations (component, version) VALUES ($1, $2)", &[&component, version])
            .await
        {
            Ok(_) => {}
            // Another replica applied this step while we waited for its row.
            Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => continue,
            Err(error) => return Err(error.into()),
        }
        tx.batch_execute(ddl).await?;
        tx.commit().await?;
        tracing::info!(component, version, "database schema migrated");
    }
    Ok(current(client, component).await?)
}

/// The version of `component` recorded in `schema_migrations` (0 for a new database).
pub async fn current(client: &Client, component: &str) -> Result<i64, tokio_postgres::Error> {
    create_table(client).await?;
    let row = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = $1", &[&component])
        .await?;
    row.try_get(0)
}

async fn create_table(client: &Client) -> Result<(), tokio_postgres::Error> {
    const CREATE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
        component TEXT NOT NULL,
        version BIGINT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (component, version)
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
