//! Result sinks: Prometheus exposition, remote write, result logs and the embedded store.
//!
//! Not built yet: see the exporters issue.
