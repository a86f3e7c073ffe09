//! High availability on a real PostgreSQL (Debian's, started per test by `probenet_testkit::postgres`; each test
//! prints a `skip:` line and returns when it is not installed).
//!
//! - `schema`: migrations, concurrent first starts, a newer schema refused.
//! - `lease`: one leader among contenders, takeover after a crash, fencing, release, database crash and hang.
//! - `replicas`: three schedulers on one database serve one assignment and outlive their leader.
//! - `objects`: artifacts in a real S3 bucket (Garage), served by every replica, kept through an outage.

#![allow(clippy::unwrap_used)]

mod lease;
mod objects;
mod replicas;
mod schema;
mod util;
