//! End-to-end tests of the `probenet` binary against local servers.
#![allow(clippy::unwrap_used)]
