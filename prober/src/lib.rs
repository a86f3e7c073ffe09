//! probenet's prober: registers with the scheduler, keeps its assignments in sync, runs each assigned
//! (check, region) pair at its planned time under per-kind concurrency limits, and ships the results in
//! acknowledged batches, spooling them to disk while the scheduler is unreachable.
//!
//! Embeddable: [`run`] owns no global state and never exits the process; `probenet up` runs one prober per
//! region in-process, each with its own spool directory.

pub mod client;
pub mod evidence;
mod metrics;
pub mod outputs;
pub mod plan;
mod replicas;
pub mod runner;
mod sender;
pub mod spool;
pub mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

pub use client::{CallError, Client, ClientError};
pub use plan::{Pair, Plan, Planner};
pub use runner::{Limits, Runner};
pub use spool::Spool;
pub use stats::{Stats, StatsHandle};

use crate::client::Backoff;
use crate::stats::{Counters, add};

/// How long a long poll asks the scheduler to hold.
const POLL_WAIT: Duration = Duration::from_secs(30);
/// How long runs in flight may go on at shutdown before they are cancelled.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(5);
/// How long the final flush of results to the scheduler may take before the rest goes to the spool.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the deregistration may take at shutdown.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(3);
/// The spool's default bound: 256 MiB.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 << 20;

/// How to run a prober.
#[derive(Clone)]
pub struct Options {
    /// The scheduler replicas' base URLs, in the order to try them: each `https://host:port` (or `http://`
    /// to a loopback address). The prober sticks to one while it answers and moves to the next on a
    /// connection error, a timeout or a 5xx. A host name that resolves to several addresses counts as one
    /// replica per address.
    pub scheduler: Vec<String>,
    /// Addresses to use for a scheduler host name instead of asking DNS (as curl's `--resolve`); empty by
    /// default.
    pub addresses: HashMap<String, Vec<std::net::SocketAddr>>,
    /// The region this prober probes from; its token must be bound to it.
    pub region: String,
    /// The bearer token (the content of the token file, trimmed). Never logged.
    pub token: String,
    /// A PEM file of the CA certificates to trust for the scheduler (default: the system's roots).
    pub ca: Option<PathBuf>,
    /// The prober's name, unique in the network.
    pub name: String,
    /// The spool directory.
    pub spool: PathBuf,
    /// The spool's bound in bytes.
    pub spool_max_bytes: u64,
    /// Concurrency limits per check kind, overriding the defaults.
    pub limits: HashMap<probenet_checks::Kind, usize>,
    /// Where to serve `/metrics` (the latest result of each assigned pair and the prober's health) and
    /// `/healthz`; none by default.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Evidence of failed runs (a traceroute from this prober to the target's address): by default at most
    /// once per (check, region) pair per 10 minutes; [`evidence::Policy::disabled`] turns it off.
    pub evidence: evidence::Policy,
}

impl Options {
    /// Options with the defaults: the host name and process id as name, `./probenet-spool` bounded to
    /// 256 MiB, default limits, system roots. `scheduler` is one URL or a comma-separated list of them.
    pub fn new(scheduler: impl Into<String>, region: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            scheduler: split_list(&scheduler.into()),
            addresses: HashMap::new(),
            region: region.into(),
            token: token.into(),
            ca: None,
            name: default_name(),
            spool: PathBuf::from("probenet-spool"),
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            limits: HashMap::new(),
            metrics_listen: None,
            evidence: evidence::Policy::default(),
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("scheduler", &self.scheduler)
            .field("addresses", &self.addresses)
            .field("region", &self.region)
            .field("token", &"<redacted>")
            .field("ca", &self.ca)
            .field("name", &self.name)
            .field("spool", &self.spool)
            .field("spool_max_bytes", &self.spool_max_bytes)
            .field("limits", &self.limits)
            .field("metrics_listen", &self.metrics_listen)
            .field("evidence", &self.evidence)
            .finish()
    }
}

/// The URLs of a comma-separated list, trimmed, blanks skipped.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|url| !url.is_empty()).map(str::to_owned).collect()
}

/// The default prober name: the host name and the process id, as `web-1-4242`.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|host| !host.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|host| !host.trim().is_empty()))
        .unwrap_or_else(|| "prober".to_owned());
    format!("{}-{}", host.trim(), std::process::id())
}

/// Why a prober stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The options are not usable.
    #[error("{0}")]
    Options(String),
    /// The scheduler client could not be built (URL, CA, token).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The spool directory is held by another prober.
    #[error(transparent)]
    Spool(#[from] spool::OpenError),
    /// The scheduler refused the token (401/403).
    #[error(transparent)]
    Unauthorized(CallError),
    /// The scheduler refused the registration (wrong URL, protocol version, name).
    #[error("the scheduler refused the registration: {0}")]
    Rejected(CallError),
}

/// Runs a prober until `shutdown` completes, then deregisters (handing its work back at once), lets runs in
/// flight finish for a few seconds and flushes every result to the scheduler or the spool. Returns the final
/// counters; a refused token is an error.
pub async fn run(options: Options, shutdown: impl Future<Output = ()>) -> Result<Stats, Error> {
    run_with_stats(options, StatsHandle::default(), shutdown).await
}

/// [`run`], updating `stats` as it goes so the caller can read the counters while the prober runs.
pub async fn run_with_stats(
    options: Options,
    stats: StatsHandle,
    shutdown: impl Future<Output = ()>,
) -> Result<Stats, Error> {
    if options.name.trim().is_empty() {
        return Err(Error::Options("the prober's name is empty".to_owned()));
    }
    if options.region.trim().is_empty() {
        return Err(Error::Options("the region is empty".to_owned()));
    }
    let limits = Limits::with_overrides(&options.limits).map_err(Error::Options)?;
    let counters = stats.counters.clone();
    let client = Arc::new(
        Client::resolving(
            &options.scheduler,
            &options.addresses,
            &options.token,
            options.ca.as_deref(),
            (&options.name, &options.region),
            counters.scheduler_switches.clone(),
        )
        .await?,
    );
    let spool = match Spool::open(&options.spool, options.spool_max_bytes) {
        Ok(spool) => {
            counters.spool_bytes.store(spool.bytes(), Ordering::Relaxed);
            if spool.results() > 0 {
                tracing::info!(
                    results = spool.results(),
                    bytes = spool.bytes(),
                    "results in the spool will be replayed"
                );
            }
            Some(Arc::new(Mutex::new(spool)))
        }
        Err(error @ spool::OpenError::Locked(_)) => return Err(error.into()),
        Err(error) => {
            tracing::error!("{error}; results are kept in memory only while the scheduler is unreachable");
            None
        }
    };
    tracing::info!(
        name = %options.name,
        region = %options.region,
        scheduler = %options.scheduler.join(","),
        "prober starting"
    );

    let outputs = Arc::new(outputs::Outputs::default());
    let metrics_server = match options.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| Error::Options(format!("cannot serve metrics on {addr}: {error}")))?;
            let state = metrics::State {
                outputs: outputs.clone(),
                client: client.clone(),
                stats: stats.clone(),
                name: options.name.clone(),
                region: options.region.clone(),
                started: std::time::SystemTime::now(),
            };
            tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "serving /metrics");
            Some(tokio::spawn(metrics::serve(listener, state)))
        }
        None => None,
    };
    let (results_tx, results_rx) = mpsc::channel(sender::QUEUE_CAPACITY);
    let (registered_tx, registered_rx) = watch::channel(false);
    let (fatal_tx, mut fatal_rx) = mpsc::channel(1);
    let (finish_tx, finish_rx) = oneshot::channel();
    let sender = tokio::spawn(
        sender::Sender::new(sender::Parts {
            client: client.clone(),
            spool,
            counters: counters.clone(),
            results: results_rx,
            registered: registered_rx,
            finish: finish_rx,
            fatal: fatal_tx,
            outputs: outputs.clone(),
        })
        .run(),
    );
    let runner = Runner::with_evidence(&options.name, &limits, options.evidence, results_tx, &stats);
    let session = Session {
        client: client.clone(),
        runner: &runner,
        counters: counters.clone(),
        registered: registered_tx,
        outputs: outputs.clone(),
        assigned: Mutex::new(Vec::new()),
        epoch: AtomicU64::new(0),
        reregistering: tokio::sync::Mutex::new(()),
        heartbeat_ms: AtomicU64::new(5_000),
    };
    let stopped = tokio::select! {
        () = shutdown => Ok(()),
        result = session.run() => result,
        Some(error) = fatal_rx.recv() => Err(Error::Unauthorized(error)),
    };
    let was_registered = *session.registered.borrow();
    session.set_registered(false);
    drop(session);
    if let Err(error) = &stopped {
        tracing::error!("{error}");
    } else if was_registered {
        match client.deregister(DEREGISTER_TIMEOUT).await {
            Ok(()) => tracing::info!("deregistered: the scheduler hands this prober's work to others"),
            Err(error) => tracing::warn!("cannot deregister ({error}); the lease will expire instead"),
        }
    }
    let abandoned = runner.stop(IN_FLIGHT_GRACE).await;
    if abandoned > 0 {
        tracing::warn!(runs = abandoned, "runs still going at shutdown were cancelled");
    }
    let _ = finish_tx.send(FLUSH_TIMEOUT);
    if let Err(error) = sender.await {
        tracing::error!("the result sender failed: {error}");
    }
    outputs.close(FLUSH_TIMEOUT).await;
    if let Some(server) = metrics_server {
        server.abort();
    }
    let snapshot = stats.snapshot();
    tracing::info!(
        runs = snapshot.runs,
        results_sent = snapshot.results_sent,
        results_spooled = snapshot.results_spooled,
        spool_dropped = snapshot.spool_dropped,
        results_dropped = snapshot.results_dropped,
        skipped_overrun = snapshot.skipped_overrun,
        skipped_busy = snapshot.skipped_busy,
        "prober stopped"
    );
    stopped.map(|()| snapshot)
}

/// Registration, heartbeats and the assignment long poll.
struct Session<'a> {
    client: Arc<Client>,
    runner: &'a Runner,
    counters: Arc<Counters>,
    registered: watch::Sender<bool>,
    outputs: Arc<outputs::Outputs>,
    /// The pairs last applied.
    assigned: Mutex<Vec<(String, String)>>,
    /// Bumped at each (re-)registration, so two loops that both find the prober unknown register once.
    epoch: AtomicU64,
    reregistering: tokio::sync::Mutex<()>,
    heartbeat_ms: AtomicU64,
}

impl Session<'_> {
    /// Registers, then heartbeats and polls until a fatal error.
    async fn run(&self) -> Result<(), Error> {
        self.register().await?;
        tokio::select! {
            result = self.heartbeats() => result,
            result = self.poll() => result,
        }
    }

    fn set_registered(&self, registered: bool) {
        self.registered.send_replace(registered);
        self.counters.registered.store(registered, Ordering::Relaxed);
    }

    fn set_heartbeat(&self, registered: &probenet_checks::wire::Registered) {
        let seconds = if registered.heartbeat_seconds.is_finite() { registered.heartbeat_seconds } else { 5.0 };
        let ms = (seconds * 1000.0).clamp(100.0, 300_000.0) as u64;
        self.heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    /// Registers, retrying transient failures with backoff.
    async fn register(&self) -> Result<(), Error> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut warned = false;
        loop {
            match self.client.register().await {
                Ok(registered) => {
                    self.set_heartbeat(&registered);
                    self.set_registered(true);
                    tracing::info!(
                        scheduler = %self.client.current(),
                        lease_seconds = registered.lease_seconds,
                        heartbeat_seconds = registered.heartbeat_seconds,
                        "registered with the scheduler"
                    );
                    return Ok(());
                }
                Err(error @ CallError::Unauthorized(_)) => return Err(Error::Unauthorized(error)),
                Err(error @ (CallError::Rejected { .. } | CallError::Unknown(_))) => {
                    return Err(Error::Rejected(error));
                }
                Err(CallError::Transient(message)) => {
                    if !warned {
                        tracing::warn!("cannot register yet ({message}); retrying");
                        warned = true;
                    } else {
                        tracing::debug!("cannot register yet ({message}); retrying");
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Registers again after the scheduler forgot this prober, unless another loop already did since `seen`.
    async fn reregister(&self, seen: u64) -> Result<(), Error> {
        let _guard = self.reregistering.lock().await;
        if self.epoch.load(Ordering::Acquire) == seen {
            self.set_registered(false);
            tracing::info!(
                "the scheduler does not know this prober (it restarted, or the lease expired); registering again"
            );
            self.register().await?;
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    async fn heartbeats(&self) -> Result<(), Error> {
        let mut failing = false;
        loop {
            tokio::time::sleep(Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed))).await;
            let seen = self.epoch.load(Ordering::Acquire);
            let report = StatsHandle { counters: self.counters.clone() }.report();
            match self.client.heartbeat(report).await {
                Ok(registered) => {
                    self.set_heartbeat(&registered);
                    if failing {
                        tracing::info!("heartbeats go through again");
                        failing = false;
                    }
                }
                Err(error @ CallError::Unauthorized(_)) => return Err(Error::Unauthorized(error)),
                Err(CallError::Unknown(_)) => self.reregister(seen).await?,
                Err(error) => {
                    if !failing {
                        tracing::warn!("heartbeat failed ({error}); checks keep running and results are spooled");
                        failing = true;
                    }
                }
            }
        }
    }

    async fn poll(&self) -> Result<(), Error> {
        let mut planner = Planner::new();
        let mut generation: Option<u64> = None;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            let seen = self.epoch.load(Ordering::Acquire);
            // Without assignments yet (or after an error) ask for them at once; then hold until a change.
            let (asked, wait) = generation.map_or((0, Duration::ZERO), |generation| (generation, POLL_WAIT));
            let started = tokio::time::Instant::now();
            match self.client.assignments(asked, wait).await {
                Ok(assignments) => {
                    backoff.reset();
                    if generation != Some(assignments.generation) {
                        self.apply(&mut planner, &assignments);
                        generation = Some(assignments.generation);
                    } else if started.elapsed() < Duration::from_secs(1) {
                        // A scheduler that answers at once without a change: do not spin.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                Err(error @ CallError::Unauthorized(_)) => return Err(Error::Unauthorized(error)),
                Err(CallError::Unknown(_)) => {
                    self.reregister(seen).await?;
                    generation = None;
                }
                Err(error) => {
                    tracing::warn!("cannot get assignments ({error}); the current ones keep running");
                    generation = None;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    fn apply(&self, planner: &mut Planner, assignments: &probenet_checks::wire::Assignments) {
        let mut plan = planner.update(assignments);
        if let Some(config) = plan.new_config.take() {
            let assigned: Vec<(String, String)> =
                self.assigned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            self.outputs.configure(&config, &assigned);
        }
        if !plan.config_errors.is_empty() {
            add(&self.counters.config_errors, 1);
            tracing::error!(
                errors = plan.config_errors.len(),
                "the config from the scheduler does not validate here; the previous one keeps running"
            );
            for error in plan.config_errors.iter().take(20) {
                tracing::error!("{error}");
            }
        }
        if !plan.unknown.is_empty() {
            let first: Vec<&str> = plan.unknown.iter().take(5).map(String::as_str).collect();
            tracing::warn!(count = plan.unknown.len(), first = ?first, "assigned checks the config does not define; skipped");
        }
        tracing::info!(generation = assignments.generation, pairs = plan.pairs.len(), "assignments applied");
        self.counters.generation.store(assignments.generation, Ordering::Relaxed);
        let assigned: Vec<(String, String)> =
            plan.pairs.iter().map(|pair| (pair.check.name.clone(), pair.region.to_string())).collect();
        self.outputs.retain(&assigned);
        *self.assigned.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = assigned;
        self.runner.apply(plan.pairs);
    }
}
