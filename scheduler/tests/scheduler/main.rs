//! The scheduler end to end, in-process: a real server on 127.0.0.1:0 over TLS from its own CA, and a client
//! that trusts only that CA.
#![allow(clippy::unwrap_used)]

// Modules:
// - util:     the harness (start a scheduler with tokens, call it, wait for a condition)
// - protocol: the prober protocol: register, heartbeat, assignments, long-poll, leases, results, auth
// - read_api: the admin API, /healthz and /metrics
// - reload:   config reload: a bad config is rejected and shown, a good one applied
// - serving:  TLS set-up (own CA reused, given files), plain HTTP only on loopback, HTTP/2
// - trust:    what a prober token, a stranger or a flood cannot do
// - fuzz:     hostile protocol bodies get a 4xx, never a 5xx or a crash
// - views:    what a prober receives: its region's view of the config, no scheduler secrets
// - maintenance: windows through the API: the config's messages for bad ones, admins only, in the probers'
//             views, kept across a restart and reloads; a window of the files is not deleted through the API
// - archive:  the retention round archives the days due (objects.archive_after) and counts them in /metrics

mod util;

mod archive;
mod fuzz;
mod maintenance;
mod protocol;
mod read_api;
mod reload;
mod serving;
mod trust;
mod views;
