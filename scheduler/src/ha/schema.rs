//! The scheduler's own tables: the replicas that share the database. Migrations run per component
//! (`probenet_pg::schema`); [`migrate`] brings the lease's and the scheduler's up to date.

use probenet_pg::{Migrations, SchemaError};
use tokio_postgres::Client;

/// The replicas table.
pub const MIGRATIONS: Migrations = Migrations {
    component: "scheduler",
    steps: &[(
        1,
        "CREATE TABLE scheduler_members (
             name TEXT PRIMARY KEY,
             url TEXT NOT NULL,
             version TEXT NOT NULL,
             last_seen TIMESTAMPTZ NOT NULL
         );",
    )],
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
