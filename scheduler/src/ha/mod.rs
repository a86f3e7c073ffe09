//! High availability on PostgreSQL: the generic parts (pool, lease, elector, fencing, migrations) are
//! `probenet_pg`'s, re-exported here; the scheduler's own tables are [`schema`] and [`members`]. See `docs/ha.md`.

pub mod members;
pub mod schema;

pub use probenet_pg::{
    Database, Elector, Fence, FencedError, FencedFuture, LeaderHandle, Leadership, Lease, LeaseState, PoolError,
    SchemaError, Tls, connect, describe, elector, fence, lease, pool,
};
pub use schema::migrate;
