//! The control plane: prober registry, assignment of (check, region) pairs, the HTTPS API and result ingest.
//!
//! Not built yet: see the scheduler issue. Nothing here is wired into the `probenet` binary until it works.
