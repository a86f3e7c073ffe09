//! The scheduler's own tables: the replicas that share the database, the live probers, the assignment the
//! leader published, the prober tokens and the maintenance windows added through the API. Migrations run per
//! component (`probenet_pg::schema`); [`migrate`] brings the lease's and the scheduler's up to date.

use probenet_pg::{Migrations, SchemaError};
use tokio_postgres::Client;

/// The replicas table.
pub const MIGRATIONS: Migrations = Migrations {
    component: "scheduler",
    steps: &[
        (
            1,
            "CREATE TABLE scheduler_members (
                 name TEXT PRIMARY KEY,
                 url TEXT NOT NULL,
                 version TEXT NOT NULL,
                 last_seen TIMESTAMPTZ NOT NULL
             );",
        ),
        (
            2,
            "CREATE TABLE scheduler_probers (
                 region TEXT NOT NULL,
                 name TEXT NOT NULL,
                 token TEXT NOT NULL,
                 version TEXT NOT NULL,
                 kinds TEXT NOT NULL,
                 registered_at_ms BIGINT NOT NULL,
                 last_heartbeat_ms BIGINT NOT NULL,
                 expires_at TIMESTAMPTZ NOT NULL,
                 PRIMARY KEY (region, name)
             );
             CREATE TABLE scheduler_assignments (
                 id INTEGER PRIMARY KEY,
                 generation BIGINT NOT NULL,
                 config_hash TEXT NOT NULL,
                 probers TEXT NOT NULL,
                 published_at_ms BIGINT NOT NULL
             );
             CREATE TABLE scheduler_views (
                 name TEXT PRIMARY KEY,
                 body TEXT NOT NULL,
                 at_ms BIGINT NOT NULL
             );
             CREATE TABLE scheduler_tokens (
                 sha256 TEXT PRIMARY KEY,
                 scope TEXT NOT NULL,
                 created_at TIMESTAMPTZ NOT NULL DEFAULT now()
             );",
        ),
        (
            3,
            "CREATE TABLE scheduler_maintenance (
                 name TEXT PRIMARY KEY,
                 body TEXT NOT NULL,
                 token TEXT NOT NULL,
                 created_at_ms BIGINT NOT NULL
             );",
        ),
    ],
};

/// Every component the scheduler's control plane needs, in order.
pub const ALL: [Migrations; 2] = [probenet_pg::lease::MIGRATIONS, MIGRATIONS];

/// Brings the lease's and the scheduler's tables to this build's version.
pub async fn migrate(client: &mut Client) -> Result<(), SchemaError> {
    for migrations in &ALL {
        probenet_pg::migrate(client, migrations).await?;
    }
    Ok(())
}
