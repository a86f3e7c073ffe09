//! The PostgreSQL store's tables, component `store` of `schema_migrations` (`probenet_pg::schema`): SQLite's
//! tables (`docs/store.md`) with a `store_` prefix, as they are at SQLite's schema version 4 minus the running
//! counts (windows are summed from the rollups instead, see `query.rs`), plus the artifacts' bytes; and, from
//! step 3, the ledger hours and days of SQLite's version 5.

use probenet_pg::{Migrations, SchemaError};
use tokio_postgres::Client;

use super::Failure;
use crate::store::StoreError;

/// Every step of the store's schema, oldest first. Never edit a released step: add a new one.
pub const MIGRATIONS: Migrations = Migrations {
    component: "store",
    steps: &[
        (
            1,
            "CREATE TABLE store_checks (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE);
         CREATE TABLE store_regions (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE);
         CREATE TABLE store_pairs (
             check_id BIGINT NOT NULL,
             region_id BIGINT NOT NULL,
             last_planned_ms BIGINT NOT NULL,
             PRIMARY KEY (check_id, region_id)
         );
         CREATE TABLE store_results (
             check_id BIGINT NOT NULL,
             region_id BIGINT NOT NULL,
             planned_at_ms BIGINT NOT NULL,
             state BIGINT NOT NULL,
             duration DOUBLE PRECISION NOT NULL,
             body BYTEA NOT NULL,
             stored_at_ms BIGINT NOT NULL DEFAULT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT),
             PRIMARY KEY (check_id, region_id, planned_at_ms)
         );
         CREATE INDEX store_results_by_time ON store_results (planned_at_ms);
         CREATE INDEX store_results_by_arrival ON store_results (stored_at_ms);
         CREATE INDEX store_results_failures ON store_results (planned_at_ms) WHERE state = 2;
         CREATE TABLE store_rollup_minute (
             check_id BIGINT NOT NULL,
             region_id BIGINT NOT NULL,
             start_ms BIGINT NOT NULL,
             runs BIGINT NOT NULL,
             up BIGINT NOT NULL,
             degraded BIGINT NOT NULL,
             down BIGINT NOT NULL,
             seconds DOUBLE PRECISION NOT NULL,
             hist BYTEA NOT NULL,
             phases BYTEA NOT NULL,
             PRIMARY KEY (check_id, region_id, start_ms)
         );
         CREATE TABLE store_rollup_hour (
             check_id BIGINT NOT NULL,
             region_id BIGINT NOT NULL,
             start_ms BIGINT NOT NULL,
             runs BIGINT NOT NULL,
             up BIGINT NOT NULL,
             degraded BIGINT NOT NULL,
             down BIGINT NOT NULL,
             seconds DOUBLE PRECISION NOT NULL,
             hist BYTEA NOT NULL,
             phases BYTEA NOT NULL,
             PRIMARY KEY (check_id, region_id, start_ms)
         );
         CREATE TABLE store_rollup_day (
             check_id BIGINT NOT NULL,
             region_id BIGINT NOT NULL,
             start_ms BIGINT NOT NULL,
             runs BIGINT NOT NULL,
             up BIGINT NOT NULL,
             degraded BIGINT NOT NULL,
             down BIGINT NOT NULL,
             seconds DOUBLE PRECISION NOT NULL,
             hist BYTEA NOT NULL,
             phases BYTEA NOT NULL,
             PRIMARY KEY (check_id, region_id, start_ms)
         );
         CREATE TABLE store_incidents (
             id BIGSERIAL PRIMARY KEY,
             check_id BIGINT NOT NULL,
             region_id BIGINT NOT NULL,
             start_ms BIGINT NOT NULL,
             end_ms BIGINT,
             last_ms BIGINT NOT NULL,
             runs BIGINT NOT NULL,
             reason TEXT,
             error TEXT
         );
         CREATE INDEX store_incidents_by_pair ON store_incidents (check_id, region_id, start_ms);
         CREATE INDEX store_incidents_by_start ON store_incidents (start_ms);
         CREATE TABLE store_artifacts (
             path TEXT PRIMARY KEY,
             check_id BIGINT NOT NULL,
             region_id BIGINT NOT NULL,
             planned_at_ms BIGINT NOT NULL,
             data BYTEA NOT NULL
         );
         CREATE INDEX store_artifacts_by_time ON store_artifacts (planned_at_ms);
         CREATE TABLE store_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);",
        ),
        (
            2,
            "CREATE TABLE store_cursors (
             name TEXT PRIMARY KEY,
             stored_at_ms BIGINT NOT NULL,
             check_id BIGINT NOT NULL,
             region_id BIGINT NOT NULL,
             planned_at_ms BIGINT NOT NULL
         );
         CREATE INDEX store_results_by_position ON store_results (stored_at_ms, check_id, region_id, planned_at_ms);
         DROP INDEX store_results_by_arrival;",
        ),
        (
            3,
            "CREATE TABLE store_ledger_hour (
             start_ms BIGINT NOT NULL,
             check_name TEXT NOT NULL,
             region TEXT NOT NULL,
             policy BIGINT NOT NULL,
             up_ms BIGINT NOT NULL,
             down_ms BIGINT NOT NULL,
             unknown_ms BIGINT NOT NULL,
             maintenance_ms BIGINT NOT NULL,
             muted_up_ms BIGINT NOT NULL,
             muted_down_ms BIGINT NOT NULL,
             PRIMARY KEY (start_ms, check_name, region)
         );
         CREATE INDEX store_ledger_hour_by_check ON store_ledger_hour (check_name, start_ms);
         CREATE TABLE store_ledger_day (
             start_ms BIGINT NOT NULL,
             check_name TEXT NOT NULL,
             region TEXT NOT NULL,
             policy BIGINT NOT NULL,
             up_ms BIGINT NOT NULL,
             down_ms BIGINT NOT NULL,
             unknown_ms BIGINT NOT NULL,
             maintenance_ms BIGINT NOT NULL,
             muted_up_ms BIGINT NOT NULL,
             muted_down_ms BIGINT NOT NULL,
             PRIMARY KEY (start_ms, check_name, region)
         );
         CREATE INDEX store_ledger_day_by_check ON store_ledger_day (check_name, start_ms);",
        ),
    ],
};

/// Brings the store's tables to this build's version; a newer schema is [`StoreError::NewerSchema`].
pub(crate) async fn migrate(client: &mut Client) -> Result<(), Failure> {
    match probenet_pg::migrate(client, &MIGRATIONS).await {
        Ok(_) => Ok(()),
        Err(SchemaError::NewerSchema { found, known, .. }) => Err(StoreError::NewerSchema { found, known }.into()),
        Err(SchemaError::Database(error)) => Err(Failure::db("migrating the store's tables")(error)),
    }
}
