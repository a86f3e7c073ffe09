//! The scheduler's shared state: the running config, the registry, the assignment of the current
//! generation (computed on demand, once per generation), the result store, and the background duties
//! (lease expiry, config reload) that change them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use probenet_checks::ConfigError;
use probenet_checks::wire::RunResult;
use tokio::sync::watch;

use crate::alerts::Alerting;
use crate::assign::{self, CheckInput, ProberInput, Table};
use crate::cluster::Cluster;
use crate::cluster::db::{ProberRow, Published};
use crate::config::{Loaded, Stamps};
use crate::outputs::Outputs;
use crate::ownership::{Owner, Ownership, Refusal};
use crate::registry::{Prober, Registry};
use crate::store::Store;
use crate::tokens::Tokens;

/// How old a result may be when it arrives (a prober's spool replays runs of up to this long ago).
pub const INGEST_HORIZON_MS: i64 = 7 * 86_400_000;
/// How far in the future a result may be planned (clocks of probers and schedulers differ a little).
pub const INGEST_SKEW_MS: i64 = 60_000;

/// Where ingested results go: the store first, then the exporters and the alert engine.
#[derive(Debug)]
pub struct Destinations {
    /// The result store.
    pub store: Arc<dyn Store>,
    /// The exporters.
    pub outputs: Outputs,
    /// The alert engine.
    pub alerting: Alerting,
    /// The object store for artifacts, when the config sets one.
    pub artifacts: Option<Arc<crate::artifacts::Artifacts>>,
}

/// Everything request handlers and background tasks share.
#[derive(Debug)]
pub struct Shared {
    /// The config paths, as given.
    pub paths: Vec<PathBuf>,
    /// What changes together: config, registry, the cached plan.
    inner: Mutex<Inner>,
    /// Serialises plan computations so a burst of requests computes a new generation's plan once.
    plan_lock: Mutex<()>,
    /// Where results go.
    pub store: Arc<dyn Store>,
    /// Where stored results go next: the exporters.
    pub outputs: Outputs,
    /// The alert engine and notifiers.
    pub alerting: Alerting,
    /// The object store for artifacts, when the config sets one.
    pub artifacts: Option<Arc<crate::artifacts::Artifacts>>,
    /// Accepted tokens.
    pub tokens: Tokens,
    /// The maintenance windows added through the API (part of the running config).
    pub maintenance: crate::maintenance::Windows,
    /// Reloads that applied a config.
    pub reloads_ok: AtomicU64,
    /// Reloads that rejected a config.
    pub reloads_error: AtomicU64,
    /// Results for pairs not in the running config: acknowledged, not stored.
    pub results_dropped: AtomicU64,
    /// How each prober is doing: its heartbeats' reports and how late its results arrive.
    pub health: crate::health::Health,
    /// Whether `/metrics` has the per-check series too (`Options::per_check_metrics`).
    pub per_check_metrics: std::sync::atomic::AtomicBool,
    /// The archive's counters (days written, pending), for `/metrics`.
    pub archive: Arc<probenet_exporters::archive::Status>,
    /// Bumped whenever results are stored: the dashboard's pages refetch when it changes.
    pub ui_version: AtomicU64,
    /// The planned time of each pair's latest stored result, handed to a pair's new owner.
    last_planned: Mutex<HashMap<String, i64>>,
    /// The dashboard's read token as the running config resolves it (a reload may change it).
    dashboard_token: Mutex<Option<String>>,
    /// Who owned each pair when.
    ownership: Mutex<Ownership>,
    /// Results refused at ingest, by reason.
    pub results_refused: [AtomicU64; Refusal::ALL.len()],
    /// How long reading one request body may take.
    pub body_timeout: Duration,
    /// True once the scheduler is stopping (long-polls return at once).
    pub stopping: watch::Receiver<bool>,
    /// The cluster this scheduler is a replica of, when its store is PostgreSQL.
    cluster: OnceLock<Arc<Cluster>>,
    /// When the owners were last recorded, unix ms.
    owners_since_ms: AtomicI64,
    /// The embedded store's backups to the bucket (their series in `/metrics`).
    pub backups: Arc<crate::backup::Status>,
    /// The ledger hours closed and those to compute again (`hours.rs`).
    pub hours: crate::hours::Marks,
    /// The last config reload (none yet after the start): the terminal prints each, the API and the
    /// dashboard show the last.
    reloads: watch::Sender<Option<Arc<Reload>>>,
}

/// One config reload: when, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    /// When it was tried, unix ms.
    pub at_ms: i64,
    /// What came of it.
    pub outcome: ReloadOutcome,
}

/// What came of a config reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new config runs.
    Applied {
        /// Its number of checks.
        checks: usize,
        /// Checks it adds, by name.
        added: Vec<String>,
        /// Checks it removes, by name.
        removed: Vec<String>,
    },
    /// The files were touched but hold the running config.
    Unchanged {
        /// The running config's number of checks.
        checks: usize,
    },
    /// The new config was refused, for these errors; the previous one still runs.
    Rejected {
        /// Every error, located as `probenet validate` prints them.
        errors: Vec<ConfigError>,
    },
}

impl Reload {
    /// Whether the config was refused.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, ReloadOutcome::Rejected { .. })
    }
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    config: Arc<Loaded>,
    /// Errors of the last rejected reload; empty once a reload succeeds.
    rejected: Vec<ConfigError>,
    stamps: Stamps,
    /// The version of the API's maintenance windows the running config was built with.
    api_version: u64,
    plan: Option<Arc<Plan>>,
    /// Replicated: what the leader published last (the probers the current generation covers).
    published: Option<Published>,
}

/// The assignment of one generation.
#[derive(Debug)]
pub struct Plan {
    /// The generation it was computed for.
    pub generation: u64,
    /// The config it covers.
    pub config: Arc<Loaded>,
    /// The live probers it covers, by name; [`Table`] indices point here.
    pub probers: Vec<Prober>,
    /// Prober index by (region, name).
    pub index: HashMap<(String, String), usize>,
    /// The assignment.
    pub table: Table,
}

/// A snapshot of the config as the API shows it.
#[derive(Debug, Clone)]
pub struct ConfigView {
    /// The running config.
    pub loaded: Arc<Loaded>,
    /// The current generation.
    pub generation: u64,
    /// Errors of the last rejected reload.
    pub rejected: Vec<ConfigError>,
}

impl Shared {
    /// Shared state around a loaded config.
    pub fn new(
        paths: Vec<PathBuf>,
        loaded: Loaded,
        stamps: Stamps,
        destinations: Destinations,
        tokens: Tokens,
        body_timeout: Duration,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        let Destinations { store, outputs, alerting, artifacts } = destinations;
        // What probers resume after, from the store: a scheduler restart does not forget it.
        let last_planned: HashMap<String, i64> = store
            .latest_runs()
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read the latest runs");
                Vec::new()
            })
            .into_iter()
            .map(|run| (pair_key(&run.check, &run.region), run.planned_at_ms))
            .collect();
        let registry = Registry::new(loaded.config.scheduling.lease);
        let maintenance = crate::maintenance::Windows::new(loaded.api.clone());
        Self {
            paths,
            inner: Mutex::new(Inner {
                registry,
                config: Arc::new(loaded),
                rejected: Vec::new(),
                stamps,
                api_version: maintenance.snapshot().1,
                plan: None,
                published: None,
            }),
            plan_lock: Mutex::new(()),
            store,
            outputs,
            alerting,
            artifacts,
            tokens,
            maintenance,
            reloads_ok: AtomicU64::new(0),
            reloads_error: AtomicU64::new(0),
            results_dropped: AtomicU64::new(0),
            health: crate::health::Health::default(),
            per_check_metrics: std::sync::atomic::AtomicBool::new(false),
            archive: Arc::default(),
            ui_version: AtomicU64::new(0),
            last_planned: Mutex::new(last_planned),
            dashboard_token: Mutex::new(None),
            ownership: Mutex::new(Ownership::new(crate::time::now_ms(), INGEST_HORIZON_MS)),
            results_refused: Default::default(),
            body_timeout,
            stopping,
            cluster: OnceLock::new(),
            owners_since_ms: AtomicI64::new(i64::MIN),
            backups: Arc::default(),
            hours: crate::hours::Marks::default(),
            reloads: watch::Sender::new(None),
        }
    }

    /// Makes this scheduler a replica of `cluster`: the generation follows what its leader publishes.
    pub fn set_cluster(&self, cluster: Arc<Cluster>) {
        if self.cluster.set(cluster).is_ok() {
            self.lock().registry.follow();
        }
    }

    /// The cluster, when replicated.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// Replicated: the live probers of every replica, from the database.
    pub fn mirror(&self, live: &[ProberRow]) {
        let now = Instant::now();
        let probers = live.iter().map(|row| prober_of(row, now + row.remaining)).collect();
        self.lock().registry.mirror(probers, crate::time::now_ms());
    }

    /// Replicated: the assignment the leader published becomes the current generation.
    pub fn follow(&self, published: Published) {
        let mut inner = self.lock();
        if published.config_hash != inner.config.hash {
            tracing::warn!(
                generation = published.generation,
                "the leader runs another config than this replica; every replica must read the same config files"
            );
        }
        let generation = published.generation;
        inner.published = Some(published);
        inner.registry.set_generation(generation);
    }

    /// Notes the planned times of stored results.
    pub fn note_stored(&self, results: &[RunResult]) {
        self.hours.note(results);
        let mut last = self.last_planned.lock().unwrap_or_else(PoisonError::into_inner);
        for result in results {
            let at = last.entry(pair_key(&result.check, &result.region)).or_insert(result.planned_at_ms);
            *at = (*at).max(result.planned_at_ms);
        }
    }

    /// Replicated: notes the latest run of every pair as the shared store holds it (results other replicas
    /// stored), so a pair's new owner resumes after the run really last stored.
    pub fn note_latest(&self, runs: &[probenet_exporters::store::LatestRun]) {
        let mut last = self.last_planned.lock().unwrap_or_else(PoisonError::into_inner);
        for run in runs {
            let at = last.entry(pair_key(&run.check, &run.region)).or_insert(run.planned_at_ms);
            *at = (*at).max(run.planned_at_ms);
        }
    }

    /// Runs `f` with a lookup of the planned time of the latest result stored for (check, region) (one lock for
    /// many lookups).
    pub fn with_last_planned<T>(&self, f: impl FnOnce(&dyn Fn(&str, &str) -> Option<i64>) -> T) -> T {
        let last = self.last_planned.lock().unwrap_or_else(PoisonError::into_inner);
        f(&|check, region| last.get(&pair_key(check, region)).copied())
    }

    /// The dashboard's read token now.
    pub fn dashboard_token(&self) -> Option<String> {
        self.dashboard_token.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Resolves `loaded`'s `dashboard.token` and makes it the one the dashboard asks for. A token that does not
    /// resolve, or a removed one, leaves the running token (the dashboard is never opened by a reload).
    pub fn set_dashboard_token(&self, loaded: &Loaded) -> Result<Option<String>, String> {
        let mut current = self.dashboard_token.lock().unwrap_or_else(PoisonError::into_inner);
        match &loaded.config.dashboard.token {
            Some(template) => {
                let token =
                    template.resolve(&mut Vec::new()).map_err(|error| format!("dashboard.token: {}", error.0))?;
                *current = Some(token.clone());
                Ok(Some(token))
            }
            None if current.is_some() => {
                tracing::warn!("dashboard.token removed from the config: the running token stays until a restart");
                Ok(current.clone())
            }
            None => Ok(None),
        }
    }

    /// The last config reload, if there was one since the start.
    pub fn last_reload(&self) -> Option<Arc<Reload>> {
        self.reloads.borrow().clone()
    }

    /// A receiver of config reloads (it sees the last one as changed only when a new one happens).
    pub fn subscribe_reloads(&self) -> watch::Receiver<Option<Arc<Reload>>> {
        self.reloads.subscribe()
    }

    /// Records a reload and tells the pages to refetch (a banner may come or go).
    fn record_reload(&self, outcome: ReloadOutcome) {
        self.reloads.send_replace(Some(Arc::new(Reload { at_ms: crate::time::now_ms(), outcome })));
        self.ui_version.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the registry (registration, heartbeat...).
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.lock().registry)
    }

    /// The running config.
    pub fn config(&self) -> Arc<Loaded> {
        self.lock().config.clone()
    }

    /// The config as the API shows it.
    pub fn config_view(&self) -> ConfigView {
        let inner = self.lock();
        ConfigView {
            loaded: inner.config.clone(),
            generation: inner.registry.generation(),
            rejected: inner.rejected.clone(),
        }
    }

    /// The plan of the current generation, computed if needed (off the async threads for big configs).
    pub async fn plan(self: &Arc<Self>) -> Arc<Plan> {
        if let Some(plan) = self.cached_plan() {
            return plan;
        }
        let state = self.clone();
        match tokio::task::spawn_blocking(move || state.plan_now()).await {
            Ok(plan) => plan,
            Err(_) => self.plan_now(),
        }
    }

    fn cached_plan(&self) -> Option<Arc<Plan>> {
        let inner = self.lock();
        inner.plan.clone().filter(|plan| plan.generation == inner.registry.generation())
    }

    /// Computes the current generation's plan unless another thread just did.
    pub fn plan_now(&self) -> Arc<Plan> {
        let _computing = self.plan_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (generation, config, mut probers, since) = {
            let inner = self.lock();
            if let Some(plan) = inner.plan.clone().filter(|plan| plan.generation == inner.registry.generation()) {
                return plan;
            }
            let probers = match &inner.published {
                // Replicated: the probers the leader published for this generation, never this replica's view.
                Some(published) if inner.registry.following() => {
                    published.probers.iter().map(|row| prober_of(row, Instant::now())).collect::<Vec<_>>()
                }
                _ if inner.registry.following() => Vec::new(),
                _ => inner.registry.probers().cloned().collect::<Vec<_>>(),
            };
            let since = inner.published.as_ref().map(|published| published.published_at_ms);
            (inner.registry.generation(), inner.config.clone(), probers, since)
        };
        probers.sort_by(|a, b| (&a.region, &a.name).cmp(&(&b.region, &b.name)));
        let checks: Vec<CheckInput<'_>> = config.config.checks.iter().map(CheckInput::of).collect();
        let inputs: Vec<ProberInput<'_>> = probers
            .iter()
            .map(|prober| ProberInput { name: &prober.name, region: &prober.region, kinds: &prober.kinds })
            .collect();
        let table = assign::assign(&checks, &inputs, config.config.scheduling.probers_per_region);
        drop(checks);
        drop(inputs);
        let index =
            probers.iter().enumerate().map(|(i, prober)| ((prober.region.clone(), prober.name.clone()), i)).collect();
        let plan = Arc::new(Plan { generation, config, probers, index, table });
        let mut inner = self.lock();
        if inner.registry.generation() == generation {
            inner.plan = Some(plan.clone());
            drop(inner);
            self.record_owners(&plan, since.unwrap_or_else(crate::time::now_ms));
        }
        plan
    }

    /// Notes who owns each pair from now on (result ingest checks results against it).
    fn record_owners(&self, plan: &Plan, since_ms: i64) {
        // Records only move forward (a plan recomputed for a known generation after a reload is not earlier).
        let since_ms = since_ms.max(self.owners_since_ms.fetch_max(since_ms, Ordering::AcqRel));
        let checks = &plan.config.config.checks;
        let owners = (0..plan.table.len()).map(|pair| {
            let (c, r) = plan.table.pair(pair);
            let probers = plan
                .table
                .slots(pair)
                .filter_map(|(prober, offset_ms)| {
                    let prober = &plan.probers[prober?];
                    Some(Owner { prober: &prober.name, token: &prober.token, offset_ms })
                })
                .collect();
            ((checks[c].name.as_str(), checks[c].regions[r].as_str()), &checks[c].schedule, probers)
        });
        self.ownership.lock().unwrap_or_else(PoisonError::into_inner).record(since_ms, owners);
    }

    /// Runs `f` with the record of who held each pair when (one lock for a whole batch).
    pub fn with_ownership<T>(&self, f: impl FnOnce(&Ownership) -> T) -> T {
        f(&self.ownership.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A receiver of generation changes, and the generation now.
    pub fn subscribe(&self) -> (watch::Receiver<u64>, u64) {
        let inner = self.lock();
        (inner.registry.subscribe(), inner.registry.generation())
    }

    /// Removes probers whose lease ended.
    pub fn expire(&self) {
        if self.cluster().is_some() {
            // Replicated: leases end in the database; the mirror drops them.
            return;
        }
        let expired = self.lock().registry.expire(Instant::now());
        for prober in expired {
            tracing::warn!(
                prober = prober.name,
                region = prober.region,
                "lease expired; its checks move to other probers"
            );
        }
    }

    /// Reloads the config when its files changed (or always, when `forced`). A config with errors is
    /// rejected and the running one stays; either way the outcome is recorded (see [`Shared::last_reload`]).
    ///
    /// The API's maintenance windows are part of the config: when only they changed, the running config files
    /// are validated again with them (a file broken on disk since does not hold them up).
    pub fn reload(&self, forced: bool) {
        let stamps = Stamps::take(&self.paths);
        let (api, api_version) = self.maintenance.snapshot();
        let mut inner = self.lock();
        let files_changed = forced || inner.stamps != stamps;
        if !files_changed && inner.api_version == api_version {
            return;
        }
        if !files_changed {
            let result = Loaded::build(inner.config.config_files(), &api);
            inner.api_version = api_version;
            match result {
                // Only windows left out changed (what the API lists of them).
                Ok(loaded) if loaded.hash == inner.config.hash => inner.config = Arc::new(loaded),
                Ok(loaded) => {
                    let checks = loaded.config.checks.len();
                    self.apply(&mut inner, loaded);
                    tracing::info!(generation = inner.registry.generation(), "maintenance windows of the API applied");
                    drop(inner);
                    self.record_reload(ReloadOutcome::Applied { checks, added: Vec::new(), removed: Vec::new() });
                }
                Err(errors) => tracing::error!(%errors, "the API's maintenance windows were not applied"),
            }
            return;
        }
        let result = Loaded::load_with(&self.paths, &api).and_then(|loaded| {
            let running = inner.config.config.checks.len();
            if loaded.config.checks.is_empty() && running > 0 && !loaded.config.checks_written {
                return Err(probenet_checks::ConfigErrors(vec![probenet_checks::config::ConfigError {
                    file: self.paths.first().map(|path| path.display().to_string()).unwrap_or_default(),
                    line: 0,
                    col: 0,
                    path: String::new(),
                    message: format!(
                        "the new config has no checks and no `checks` key, while {running} run now (a file cut short?); \
                         write `checks: []` to stop every check"
                    ),
                }]));
            }
            Ok(loaded)
        });
        inner.stamps = stamps;
        let outcome = match result {
            Ok(loaded) if loaded.hash == inner.config.hash => {
                inner.api_version = api_version;
                inner.rejected.clear();
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(hash = loaded.hash, "config files touched; nothing changed");
                ReloadOutcome::Unchanged { checks: loaded.config.checks.len() }
            }
            Ok(loaded) => {
                inner.api_version = api_version;
                inner.rejected.clear();
                let checks = loaded.config.checks.len();
                let names = |config: &probenet_checks::Config| -> Vec<String> {
                    config.checks.iter().map(|check| check.name.clone()).collect()
                };
                let (before, after) = (names(&inner.config.config), names(&loaded.config));
                let added = after.iter().filter(|name| !before.contains(name)).cloned().collect();
                let removed = before.iter().filter(|name| !after.contains(name)).cloned().collect();
                self.apply(&mut inner, loaded);
                tracing::info!(checks, generation = inner.registry.generation(), "config reloaded");
                ReloadOutcome::Applied { checks, added, removed }
            }
            Err(errors) => {
                self.reloads_error.fetch_add(1, Ordering::Relaxed);
                // The errors themselves reach the terminal through `subscribe_reloads` (the binary prints
                // them as `probenet validate` does), the admin API and the dashboard.
                tracing::warn!(errors = errors.0.len(), "config rejected; the running config stays");
                inner.rejected = errors.0.clone();
                ReloadOutcome::Rejected { errors: errors.0 }
            }
        };
        drop(inner);
        self.record_reload(outcome);
    }

    /// Makes `loaded` the running config: exporters, alerts and the dashboard token follow, and a new generation
    /// hands the probers their new views.
    fn apply(&self, inner: &mut Inner, loaded: Loaded) {
        inner.registry.set_lease(loaded.config.scheduling.lease);
        self.outputs.reconfigure(&inner.config, &loaded);
        self.alerting.reconfigure(&loaded);
        if let Err(error) = self.set_dashboard_token(&loaded) {
            tracing::warn!("{error}; the dashboard keeps its running token");
        }
        inner.config = Arc::new(loaded);
        inner.registry.bump();
        // Replicated, the generation moves when the leader publishes; until then the plan follows the new config.
        inner.plan = None;
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs lease expiry and config reload (every 2 s, and on SIGHUP) until the scheduler stops.
    pub async fn duties(self: Arc<Self>) {
        let mut stopping = self.stopping.clone();
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::warn!(%error, "no SIGHUP handler; the config still reloads when its files change");
                None
            }
        };
        let mut expiry = tokio::time::interval(Duration::from_millis(250));
        let mut poll = tokio::time::interval(Duration::from_secs(2));
        let mut alerts = tokio::time::interval(crate::alerts::EVALUATE_TIMER);
        alerts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            let forced = tokio::select! {
                () = crate::server::stopped(&mut stopping) => return,
                _ = expiry.tick() => {
                    self.expire();
                    continue;
                }
                _ = alerts.tick() => {
                    let state = self.clone();
                    let _ = tokio::task::spawn_blocking(move || state.alerting.tick()).await;
                    continue;
                }
                _ = poll.tick() => false,
                Some(()) = async { match hangup.as_mut() { Some(signal) => signal.recv().await, None => std::future::pending().await } } => {
                    tracing::info!("SIGHUP: reloading the config");
                    true
                }
            };
            let state = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                state.reload(forced);
                crate::maintenance::prune(&state);
                if let Err(error) = state.tokens.refresh() {
                    tracing::warn!(%error, "tokens file not re-read; keeping the tokens read before");
                }
            })
            .await;
        }
    }
}

/// A prober of the database as the registry holds it.
fn prober_of(row: &ProberRow, expires: Instant) -> Prober {
    Prober {
        name: row.name.clone(),
        region: row.region.clone(),
        version: row.version.clone(),
        kinds: row.kinds.clone(),
        token: row.token.clone(),
        registered_at_ms: row.registered_at_ms,
        last_heartbeat_ms: row.last_heartbeat_ms,
        expires,
    }
}

/// One map key for a (check, region) pair.
fn pair_key(check: &str, region: &str) -> String {
    format!("{check}\u{0}{region}")
}
