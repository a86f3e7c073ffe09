//! The control plane: prober registry and leases, assignment of (check, region) pairs, the HTTPS API and
//! result ingest. Embeddable: [`start`] returns a handle, nothing global, no process exit.

pub mod alerts;
pub mod api;
pub mod artifacts;
pub mod assign;
pub mod backup;
pub mod cluster;
pub mod config;
pub mod files;
pub mod ha;
pub mod health;
pub mod hours;
pub mod ledger;
pub mod maintenance;
pub mod metrics;
pub mod outputs;
pub mod ownership;
pub mod pki;
pub mod protocol;
pub mod registry;
pub mod state;
pub mod store;
pub use probenet_checks::time;
pub mod tokens;
pub use probenet_serve as server;
pub mod ui;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use probenet_checks::ConfigErrors;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Loaded, Stamps};
use crate::outputs::Outputs;
use crate::pki::{PkiError, ServerTls};
use crate::state::Shared;
use crate::store::Store;
use crate::tokens::{TokenError, Tokens};

/// How the scheduler serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Its own CA and server certificate, made in the data directory on first start.
    Auto,
    /// A given certificate chain and key (PEM files).
    Files {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// Plain HTTP: only on a loopback address.
    PlainHttp,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Config files and directories.
    pub config: Vec<PathBuf>,
    /// The address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The data directory: CA, certificates, tokens.
    pub data: PathBuf,
    /// How to serve.
    pub tls: TlsMode,
    /// Extra names for the server certificate (`TlsMode::Auto`).
    pub sans: Vec<String>,
    /// The dashboard's public base URL, for links in notifications.
    pub dashboard_url: Option<String>,
    /// Where to serve `/metrics` (and `/healthz`) in plain HTTP without a token, for a scraper; on the API port
    /// `/metrics` needs an admin token.
    pub metrics_listen: Option<SocketAddr>,
    /// What the server allows its clients (connections, idle time, body read time).
    pub limits: server::Limits,
    /// Replicated: the PostgreSQL database the replicas share, and who this replica is. `None`: a single
    /// scheduler on its embedded store.
    pub cluster: Option<ClusterOptions>,
    /// The embedded store's directory (default `DATA/store`).
    pub store_dir: Option<PathBuf>,
    /// Replicated without a bucket: keep artifacts (screenshots) in the database. Without it, replicated
    /// schedulers refuse to start unless the config sets `objects`.
    pub artifacts_in_database: bool,
    /// Adds the per-check series (`probe_success`...) of every pair's latest result to `/metrics`. Off by
    /// default: they grow with the checks (hundreds of MB at 60,000 checks), and remote write carries them.
    pub per_check_metrics: bool,
}

/// A replica's database and identity.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The database (its password never shown).
    pub database: probenet_pg::Database,
    /// Connections this replica keeps at most.
    pub pool_size: usize,
    /// Who this replica is.
    pub replica: cluster::ReplicaOptions,
}

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config has errors.
    #[error("the config has {} error{}", .0.0.len(), if .0.0.len() == 1 { "" } else { "s" })]
    Config(ConfigErrors),
    /// Plain HTTP was asked for on an address other than loopback.
    #[error("plain HTTP is only allowed on a loopback address, not {0}; drop --plain-http to serve HTTPS")]
    PlainHttpNotLoopback(SocketAddr),
    /// The data directory could not be made.
    #[error("{path}: {source}")]
    Data {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Certificates could not be made or loaded.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The tokens file could not be read.
    #[error(transparent)]
    Tokens(#[from] TokenError),
    /// The API's maintenance windows (`DATA/maintenance.json`) could not be read.
    #[error(transparent)]
    Maintenance(#[from] maintenance::MaintenanceError),
    /// The embedded store could not be opened.
    #[error("the result store: {0}")]
    Store(#[from] probenet_exporters::store::StoreError),
    /// Alerting could not start.
    #[error(transparent)]
    Alerting(#[from] crate::alerts::AlertingError),
    /// An exporter could not start.
    #[error(transparent)]
    Exporter(#[from] probenet_exporters::build::BuildError),
    /// The PostgreSQL database of a replicated scheduler could not be reached or migrated.
    #[error("the database: {0}")]
    Database(String),
    /// The object store refused the keys, does not exist, or the settings cannot make a client.
    #[error("{0}")]
    Objects(String),
    /// A start-up task failed to run.
    #[error("start-up failed: {0}")]
    Internal(String),
}

/// A running scheduler.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    tls: Option<ServerTls>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    cluster: Option<Arc<cluster::Cluster>>,
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address of `--metrics-listen`, if it was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The base URL probers and clients use (`https://` unless in plain-HTTP mode).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM of the CA probers should trust, when the scheduler made its own (None with given files or in
    /// plain-HTTP mode).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().and_then(|tls| tls.ca_pem.as_deref())
    }

    /// SHA-256 (lowercase hex) of the CA it made, or of the given server certificate; None in plain HTTP.
    pub fn fingerprint(&self) -> Option<&str> {
        self.tls.as_ref().map(|tls| tls.fingerprint.as_str())
    }

    /// The result store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The cluster, when replicated.
    pub fn cluster(&self) -> Option<&Arc<cluster::Cluster>> {
        self.cluster.as_ref()
    }

    /// Config reloads as they happen (applied, unchanged or rejected with their errors), for the terminal.
    pub fn reloads(&self) -> watch::Receiver<Option<Arc<state::Reload>>> {
        self.shared.subscribe_reloads()
    }

    /// Ends like a killed process as far as the others can tell: the lease is neither released nor renewed (it
    /// runs out by itself), every task and connection ends at once, nothing is flushed. For failover tests.
    pub fn crash(mut self) {
        if let Some(cluster) = &self.cluster {
            cluster.crash();
        }
        self.stop.send_replace(true);
        self.tasks.abort_all();
    }

    /// Stops accepting, ends long-polls, lets open requests finish (bounded), and waits for every task. A
    /// leader steps down and releases its lease first, so another replica takes over at once.
    pub async fn shutdown(mut self) {
        if let Some(cluster) = &self.cluster {
            cluster.stop().await;
        }
        self.stop.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
        self.shared.outputs.close(std::time::Duration::from_secs(5)).await;
        self.shared.alerting.close(std::time::Duration::from_secs(5)).await;
    }
}

/// Loads the config, prepares TLS and tokens, binds the listen address and starts serving.
pub async fn start(options: Options) -> Result<Running, Error> {
    if options.tls == TlsMode::PlainHttp && !options.listen.ip().is_loopback() {
        return Err(Error::PlainHttpNotLoopback(options.listen));
    }
    let prepared = {
        let options = options.clone();
        tokio::task::spawn_blocking(move || prepare(&options))
            .await
            .map_err(|error| Error::Internal(error.to_string()))??
    };
    let (loaded, stamps, tls, tokens, store) = prepared;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| Error::Listen { addr: options.listen, source })?;
    let addr = listener.local_addr().map_err(|source| Error::Listen { addr: options.listen, source })?;
    let (stop, stopping) = watch::channel(false);
    let checks = loaded.config.checks.len();
    let artifacts = open_objects(&options, &loaded).await?;
    // Sinks deliver from the store: always when alone; replicated, on the leader only.
    let (delivering, may_deliver) = watch::channel(options.cluster.is_none());
    let outputs = Outputs::start(&loaded, probenet_exporters::fed::Feed::new(store.clone(), may_deliver))?;
    let alerting = crate::alerts::Alerting::start(&loaded, &options.data, options.dashboard_url.clone())?;
    let shared = Arc::new(Shared::new(
        options.config.clone(),
        loaded,
        stamps,
        crate::state::Destinations { store: store.clone(), outputs, alerting, artifacts: artifacts.clone() },
        tokens,
        options.limits.body,
        stopping.clone(),
    ));
    if options.cluster.is_none() {
        shared.maintenance.keep_in(options.data.clone());
    }
    shared.per_check_metrics.store(options.per_check_metrics, std::sync::atomic::Ordering::Relaxed);
    let cluster = match &options.cluster {
        Some(cluster) => {
            let pool = cluster.database.pool(cluster.pool_size).map_err(|error| Error::Database(error.to_string()))?;
            let mut replica = cluster.replica.clone();
            if replica.url.is_empty() {
                let scheme = if tls.is_some() { "https" } else { "http" };
                replica.url = format!("{scheme}://{addr}");
            }
            let joined = cluster::Cluster::join(pool, replica).await.map_err(Error::Database)?;
            joined.adopt_tokens(&shared, &options.data).await.map_err(Error::Database)?;
            joined.refresh_maintenance(&shared).await.map_err(Error::Database)?;
            let fence_of = joined.clone();
            shared.alerting.replicate(cluster.database.clone(), Arc::new(move || fence_of.fence()));
            shared.set_cluster(joined.clone());
            Some(joined)
        }
        None => None,
    };
    let router = api::router(shared.clone());
    let router = match dashboard_router(&shared, &store, options.listen, tls.is_some()) {
        // API paths keep JSON errors; every other path is the dashboard's.
        Ok(Some(dashboard)) => router.route("/api/v1/{*rest}", axum::routing::any(api::not_found)).merge(dashboard),
        Ok(None) => router.route("/", axum::routing::get(dashboard_off)).fallback(api::not_found),
        Err(message) => return Err(Error::Internal(message)),
    };
    let acceptor = tls.as_ref().map(|tls| tokio_rustls::TlsAcceptor::from(tls.config.clone()));
    let mut tasks = JoinSet::new();
    let mut metrics_addr = None;
    if let Some(metrics_listen) = options.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(metrics_listen)
            .await
            .map_err(|source| Error::Listen { addr: metrics_listen, source })?;
        metrics_addr = metrics.local_addr().ok();
        tasks.spawn(server::serve(
            metrics,
            None,
            api::metrics_router(shared.clone()),
            options.limits,
            stopping.clone(),
        ));
    }
    tasks.spawn(server::serve(listener, acceptor, router, options.limits, stopping.clone()));
    tasks.spawn(shared.clone().duties());
    if let Some(cluster) = &cluster {
        let mut leadership = cluster.leadership();
        let mut stopped = stopping.clone();
        tasks.spawn(async move {
            loop {
                delivering.send_replace(leadership.borrow_and_update().is_some());
                tokio::select! {
                    () = server::stopped(&mut stopped) => return,
                    changed = leadership.changed() => if changed.is_err() { return },
                }
            }
        });
        tasks.spawn(cluster::run(shared.clone(), cluster.clone()));
        tasks.spawn(cluster::feed::run(shared.clone(), cluster.options.lease * 2));
    }
    let leads = cluster.clone();
    let duty = move || leads.as_ref().is_none_or(|cluster| cluster.leading().is_some());
    if let Some(artifacts) = &artifacts {
        tasks.spawn(artifacts.clone().upload(stopping.clone()));
    }
    let bucket = artifacts.as_ref().map(|artifacts| artifacts.bucket().clone());
    let objects = shared.config().config.objects.clone();
    let backups = backup::task(
        store.clone(),
        bucket.clone(),
        objects.as_ref(),
        cluster.is_some(),
        &options.data,
        shared.backups.clone(),
        stopping.clone(),
    );
    if let Some(backups) = backups {
        tasks.spawn(backups);
    }
    let archive =
        crate::store::archiver(&shared.config().config, bucket, shared.archive.clone()).map_err(Error::Objects)?;
    let retention = crate::store::Retention { store: store.clone(), artifacts: artifacts.clone(), archive };
    let leads = cluster.clone();
    let ledger_duty = move || leads.as_ref().is_none_or(|cluster| cluster.leading().is_some());
    tasks.spawn(crate::hours::run(shared.clone(), ledger_duty, stopping.clone()));
    tasks.spawn(crate::store::prune_every(retention, std::time::Duration::from_secs(3600), duty, stopping.clone()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let fingerprint = tls.as_ref().map(|tls| format!("sha256:{}", tls.fingerprint)).unwrap_or_default();
    tracing::info!(url = format!("{scheme}://{addr}"), checks, fingerprint, "scheduler listening");
    Ok(Running { addr, metrics_addr, tls, stop, tasks, shared, store, cluster })
}

/// Opens the config's object store for artifacts, checking that it takes the keys: refused keys, a missing
/// bucket or unusable settings stop the start with the reason; a bucket that does not answer only delays
/// uploads (artifacts wait on disk). Replicated schedulers without a bucket need `artifacts_in_database`.
async fn open_objects(options: &Options, loaded: &Loaded) -> Result<Option<Arc<crate::artifacts::Artifacts>>, Error> {
    let Some(spec) = &loaded.config.objects else {
        if options.cluster.is_some() && !options.artifacts_in_database {
            return Err(Error::Objects(
                "replicated schedulers keep artifacts (screenshots) where every replica reads them: set `objects` in \
                 the config (a bucket), or pass --artifacts-in-database to keep them in PostgreSQL"
                    .to_owned(),
            ));
        }
        return Ok(None);
    };
    let bucket =
        probenet_objects::Bucket::open(spec, &mut Vec::new()).map_err(|error| Error::Objects(error.to_string()))?;
    // A bucket that does not answer must not hold the start up (its requests retry for up to 20 s).
    match tokio::time::timeout(std::time::Duration::from_secs(5), bucket.verify()).await {
        Ok(Ok(())) => {}
        Ok(Err(error @ probenet_objects::BucketError::Failed { .. })) => {
            tracing::warn!(%error, "the bucket does not answer; artifacts wait on this scheduler's disk until it does");
        }
        Err(_) => tracing::warn!(
            bucket = bucket.url(),
            "the bucket did not answer within 5 s; artifacts wait on this scheduler's disk until it does"
        ),
        Ok(Err(error)) => return Err(Error::Objects(error.to_string())),
    }
    let artifacts = crate::artifacts::Artifacts::new(bucket, &options.data)
        .map_err(|source| Error::Data { path: options.data.join("objects-spool"), source })?;
    Ok(Some(artifacts))
}

/// The dashboard's routes, with its read token from the config; none (and a log line) when the config sets no
/// token and the scheduler listens beyond loopback.
fn dashboard_router(
    shared: &Arc<Shared>,
    store: &Arc<dyn Store>,
    listen: SocketAddr,
    secure: bool,
) -> Result<Option<axum::Router>, String> {
    let config = shared.config();
    let dashboard = &config.config.dashboard;
    let auth = match shared.set_dashboard_token(&config)? {
        Some(token) => Some(probenet_dashboard::Auth::Token(token)),
        None if listen.ip().is_loopback() => None,
        None => {
            tracing::warn!(
                "the dashboard is off: set `dashboard.token` in the config to serve it beyond loopback; / says how"
            );
            return Ok(None);
        }
    };
    let options = probenet_dashboard::DashboardOptions {
        auth,
        status_page_public: dashboard.status_page.as_ref().is_none_or(|page| page.public),
        base_path: String::new(),
        title: dashboard.title.clone(),
        secure,
    };
    let source = Arc::new(crate::ui::UiSource::new(shared.clone(), store.clone()));
    probenet_dashboard::router(source, options).map(Some).map_err(|error| error.to_string())
}

/// What `/` answers when the dashboard is off (beyond loopback without `dashboard.token`): a page saying so and
/// how to turn it on, rather than a bare 404. Status 503: the dashboard is not available here.
async fn dashboard_off() -> (axum::http::StatusCode, [(axum::http::header::HeaderName, &'static str); 2], &'static str)
{
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        DASHBOARD_OFF_PAGE,
    )
}

/// The page of [`dashboard_off`].
pub const DASHBOARD_OFF_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Dashboard off · probenet</title>\
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem}\
pre{background:#f0f0f0;color:#111;padding:.8rem;overflow:auto}</style></head><body>\
<h1>The dashboard is off</h1>\
<p>This probenet scheduler listens beyond loopback, and its config sets no <code>dashboard.token</code>, so it \
does not serve its dashboard to anyone.</p>\
<p>To turn it on, give the dashboard a read token in the config, kept in a secret:</p>\
<pre>dashboard:\n  token: \"${env:DASHBOARD_TOKEN}\"     # or \"${file:/etc/probenet/dashboard.token}\"</pre>\
<p>set that variable (for example <code>export DASHBOARD_TOKEN=$(tr -dc a-z0-9 &lt; /dev/urandom | head -c 32)</code>), \
restart probenet, and open this address once with <code>?token=YOUR_TOKEN</code>. \
<code>probenet install local</code> makes a token and prints where it is.</p>\
<p>The API (<code>/api/v1/</code>) and the probers are not affected.</p></body></html>\n";

type Prepared = (Loaded, Stamps, Option<ServerTls>, Tokens, Arc<dyn Store>);

fn prepare(options: &Options) -> Result<Prepared, Error> {
    let stamps = Stamps::take(&options.config);
    // Replicated, the API's maintenance windows come from the database once the replica joins.
    let windows = match &options.cluster {
        Some(_) => Vec::new(),
        None => maintenance::read(&options.data)?,
    };
    let loaded = Loaded::load_with(&options.config, &windows).map_err(Error::Config)?;
    files::create_private_dir(&options.data).map_err(|source| Error::Data { path: options.data.clone(), source })?;
    let tls = match &options.tls {
        TlsMode::Auto => Some(pki::auto(&options.data, &pki::wanted_sans(options.listen, &options.sans))?),
        TlsMode::Files { cert, key } => Some(pki::from_files(cert, key)?),
        TlsMode::PlainHttp => None,
    };
    let tokens = Tokens::open(&options.data)?;
    let store: Arc<dyn Store> = match &options.cluster {
        Some(cluster) => Arc::new(probenet_exporters::store::PostgresStore::open_database(
            &cluster.database,
            probenet_exporters::store::StoreOptions::default(),
        )?),
        None => crate::store::open(&options.store_dir.clone().unwrap_or_else(|| options.data.join("store")))?,
    };
    Ok((loaded, stamps, tls, tokens, store))
}

/// Runs until `shutdown` completes, then stops cleanly.
pub async fn run(options: Options, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let running = start(options).await?;
    shutdown.await;
    running.shutdown().await;
    Ok(())
}
