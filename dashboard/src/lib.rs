//! The web dashboard: uptime and latency per check per region, and the read API it uses.
//!
//! Not built yet: see the dashboard issue.
