//! End-to-end tests: the real `probenet` binary against local HTTP(S) servers, one test binary.
#![allow(clippy::unwrap_used)]

// Modules:
// - util:     the harness (test servers, certificates, running the binary)
// - validate: `probenet validate` and `probenet schema` on the examples and on broken configs
// - run:      `probenet run`: the quick start, outputs, selection, exit codes, connection failures, results
//             streamed as checks finish, Ctrl-C
// - http:     the HTTP executor: redirects, timing, bodies, assertions, TLS, HTTP/2, secrets
// - regions:  probes from network namespaces behind delay lines measure each region's latency
// - up:       `probenet up --demo` from any directory: the built-in quick start, an alert firing and resolving,
//             SLOs, busy demo ports; the dashboard off beyond loopback without a token; the default title
// - first_minute: the first minute of `probenet up --demo` in headless Chromium: runs bars and latencies, the
//             firing alert and the notifier's delivery, SLO budgets, the reload banner
// - reload:   a refused config reload in the terminal and as a dashboard banner, until fixed
// - network:  a scheduler and six probers in three regions: exactly once per interval, failover, restarts
// - alerting: a signed webhook fires once, survives a scheduler restart, resolves once (loopback)
// - alerting_regions: alerts over probers in namespace regions (quorum, impairment); a real Alertmanager
// - exporters: remote write to VictoriaMetrics, result logs, Prometheus scraping a prober, stale markers
// - export:   `probenet export rules` (promtool) and `export grafana`
// - import:   `probenet import blackbox|gatus|uptime-kuma` on fixtures of each tool: exact checks, validation,
//             secrets as environment variables, what is not carried over at its place, bad input
// - install:  `probenet install local --yes` below a temp root, status, upgrade without a gap, uninstall; three
//             scheduler replicas on a local PostgreSQL upgraded one at a time (some replica always healthy);
//             the Debian package installed in a systemd-nspawn machine, `up --demo` there, removed
// - dashboard: `probenet up`'s dashboard over a seeded store, in headless Chromium
// - notify:   `probenet notify test NAME`: delivered, a 500 from the receiver, unknown and missing names
// - notifier_status: a delivery refused with 500 is logged as WARN and shown on the dashboard's Alerts page
// - token:    `probenet token create|list|revoke`; a revoked token stops working
// - maintenance: windows added through the API: a pause stops a check's runs on its prober until deleted; a
//             mute holds the page while the check runs, and `probenet report` counts the time muted
// - report:   `probenet report` on a seeded store (csv, json, html, selection, bad arguments)
// - uptime:   `probenet up` closes ledger hours over a seeded store; its overview, check and status pages show
//             the same uptimes as `probenet report`
// - archive:  `probenet archive list|restore`: days listed, a window restored identically, twice adds nothing
// - backup:   the scheduler backs its store up to the bucket; `probenet store backups|restore`; a scheduler on it
// - secrets:  no encoding of a secret reaches results, the store, the spool or the logs of a real network
// - ha:       three schedulers on PostgreSQL: SIGKILL of the leader or of a replica, the database down 30 s,
//             an alert paged and resolved once across a failover
// - grafana:  Grafana synthetic monitoring's and the blackbox mixin's queries and rules on probenet's series
// - container: the image (scripts/image, offline): a scheduler and probers in containers on a podman network

mod util;

mod alerting;
mod alerting_regions;
mod archive;
mod backup;
mod container;
mod dashboard;
mod export;
mod exporters;
mod first_minute;
mod grafana;
mod ha;
mod http;
mod import;
mod install;
mod maintenance;
mod network;
mod notifier_status;
mod notify;
mod regions;
mod reload;
mod report;
mod run;
mod secrets;
mod token;
mod up;
mod uptime;
mod validate;
