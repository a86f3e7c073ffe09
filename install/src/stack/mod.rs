//! The stack file: what a deployment holds (scheduler, regions and their probers, the store, alerting), for
//! both targets (one Linux host, Kubernetes clusters), validated with located errors.

mod ports;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use probenet_checks::Config;
use probenet_checks::config::{ConfigError, ConfigErrors, Place};
use probenet_checks::wire::ConfigFile;

pub use validate::parse_str;

/// The scheduler's default listen address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7443";
/// The scheduler's default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/probenet";
/// VictoriaMetrics' default listen address (loopback: only local components reach it).
pub const DEFAULT_STORE_LISTEN: &str = "127.0.0.1:8428";
/// vmalert's default listen address.
pub const DEFAULT_VMALERT_LISTEN: &str = "127.0.0.1:8880";
/// The default address of the PostgreSQL server a local install runs itself (`scheduler.store: postgresql`):
/// loopback, and not Debian's 5432, which the package's own cluster may hold.
pub const DEFAULT_LOCAL_POSTGRES_LISTEN: &str = "127.0.0.1:7432";
/// Alertmanager's default listen address.
pub const DEFAULT_ALERTMANAGER_LISTEN: &str = "127.0.0.1:9093";
/// The first port of the probers' `/metrics` (on 127.0.0.1, or in their region's namespace) when their region
/// sets none.
pub const DEFAULT_PROBER_METRICS_PORT: u16 = 9470;
/// The default retention of the store.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// The Kubernetes namespace of the central cluster by default.
pub const DEFAULT_NAMESPACE: &str = "probenet";

/// A validated stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The deployment's name (labels, unit descriptions).
    pub name: String,
    /// The probenet config files and directories, resolved against the stack file's directory.
    pub checks: Vec<PathBuf>,
    /// Where each entry of `checks` is written (for a path that does not exist).
    pub checks_places: Vec<Place>,
    /// The scheduler.
    pub scheduler: SchedulerSpec,
    /// Regions by name, each with its probers.
    pub regions: BTreeMap<String, RegionSpec>,
    /// Where `regions` is written (for errors found against the checks config).
    pub regions_place: Place,
    /// The metrics store.
    pub store: StoreSpec,
    /// vmalert and Alertmanager; `None` when the store is `none`.
    pub alerting: Option<AlertingSpec>,
    /// The Kubernetes target.
    pub kubernetes: KubernetesSpec,
}

/// The scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerSpec {
    /// The name (or address) probers and browsers reach it by; in its server certificate.
    pub host: String,
    /// The address it listens on.
    pub listen: SocketAddr,
    /// Its data directory (embedded store, tokens); the local stack keeps its other data below it too.
    pub data_dir: PathBuf,
    /// The dashboard's public URL (default `https://HOST:PORT/`).
    pub dashboard_url: String,
    /// How many scheduler processes run (default 1); more than one needs [`SchedulerStore::Postgres`].
    pub replicas: u32,
    /// Where the scheduler keeps its state.
    pub store: SchedulerStore,
}

/// Where the scheduler keeps its state (`scheduler.store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedulerStore {
    /// The embedded SQLite store in the data directory (one scheduler).
    Embedded,
    /// A PostgreSQL database shared by every replica; the database is the user's.
    Postgres(PostgresStore),
    /// `postgresql`: a PostgreSQL server the local install runs itself (Debian's package), listening on this
    /// loopback address (`scheduler.store_listen`). Not for Kubernetes, where the database is the user's.
    Local {
        /// Where it listens.
        listen: SocketAddr,
    },
}

/// A PostgreSQL store: the URL without a password, and where the password (and the server's CA) come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresStore {
    /// `postgres://USER@HOST:PORT/DB?sslmode=...`, never with a password.
    pub url: String,
    /// The password: `store_password: ${file:PATH}` or `store_password_secret: NAME` (key `password`).
    pub password: SecretSource,
    /// The CA of the server's certificate: `store_ca: ${file:PATH}` or `store_ca_secret: NAME` (key `ca.crt`);
    /// `None`: the system's roots.
    pub ca: Option<SecretSource>,
}

/// Where a secret value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the machine that installs (resolved against the stack file's directory).
    File(PathBuf),
    /// A Kubernetes Secret of the central namespace, made by the user (or an operator such as CloudNativePG).
    KubernetesSecret(String),
}

impl SchedulerSpec {
    /// Whether the scheduler runs as replicas on PostgreSQL (named `probenet-scheduler-K`), rather than as the
    /// one scheduler on its embedded store.
    pub fn replicated(&self) -> bool {
        self.replicas > 1 || self.store != SchedulerStore::Embedded
    }

    /// Where each scheduler listens: `listen`, then the next ports up, one a replica.
    pub fn replica_listens(&self) -> Vec<SocketAddr> {
        (0..self.replicas.max(1))
            .map(|offset| {
                let port = u16::try_from(u32::from(self.listen.port()) + offset).unwrap_or(u16::MAX);
                SocketAddr::new(self.listen.ip(), port)
            })
            .collect()
    }

    /// The URLs the probers of `region` use, one a replica, comma-separated (`--scheduler`).
    pub fn urls_for(&self, region: &RegionSpec) -> String {
        let host = host_for_url(region.scheduler_host.as_deref().unwrap_or(&self.host));
        let urls: Vec<String> =
            self.replica_listens().iter().map(|listen| format!("https://{host}:{}", listen.port())).collect();
        urls.join(",")
    }

    /// The URL probers use.
    pub fn url(&self) -> String {
        format!("https://{}:{}", host_for_url(&self.host), self.listen.port())
    }

    /// The URL the probers of `region` use: through its `scheduler_host` when it has one.
    pub fn url_for(&self, region: &RegionSpec) -> String {
        let host = region.scheduler_host.as_deref().unwrap_or(&self.host);
        format!("https://{}:{}", host_for_url(host), self.listen.port())
    }
}

/// `[v6]` for an IPv6 literal, the host unchanged otherwise.
pub(crate) fn host_for_url(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_owned() }
}

/// One region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSpec {
    /// How many probers run there.
    pub probers: u32,
    /// Local target: the network namespace (`ip netns`) its probers run in.
    pub netns: Option<String>,
    /// The name or address this region's probers reach the scheduler by, when not the scheduler's `host` (a
    /// private address, another DNS view); the server certificate holds it too.
    pub scheduler_host: Option<String>,
    /// Local target: the port of its first prober's `/metrics` (the next ones count up).
    pub metrics_port: Option<u16>,
    /// Kubernetes target: the context (cluster) of kubeconfig; the central cluster's (`kubernetes.context`) when
    /// the stack file sets none, `None` only when that is `None` too (the current context).
    pub context: Option<String>,
    /// Kubernetes target: the namespace (default `probenet-REGION`).
    pub namespace: String,
    /// Where the region is written.
    pub place: Place,
}

/// What stores metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// VictoriaMetrics (single node locally, cluster on Kubernetes), fed by remote write.
    VictoriaMetrics,
    /// Only the scheduler's embedded store.
    None,
}

/// The metrics store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// Which.
    pub kind: StoreKind,
    /// How long samples are kept (whole days).
    pub retention: Duration,
    /// Local target: where VictoriaMetrics listens.
    pub listen: SocketAddr,
}

impl StoreSpec {
    /// The retention in whole days (at least one), as VictoriaMetrics' `-retentionPeriod=Nd` takes it.
    pub fn retention_days(&self) -> u64 {
        self.retention.as_secs().div_ceil(86_400).max(1)
    }
}

/// vmalert and Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertingSpec {
    /// Where vmalert listens (local target).
    pub vmalert_listen: SocketAddr,
    /// How often vmalert evaluates the rules.
    pub evaluation_interval: Duration,
    /// Where Alertmanager listens (local target).
    pub alertmanager_listen: SocketAddr,
    /// The receiver of alerts no route matches.
    pub receiver: String,
    /// Receivers by name.
    pub receivers: BTreeMap<String, Receiver>,
    /// Routes, tried in order.
    pub routes: Vec<Route>,
}

/// Where Alertmanager sends notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receiver {
    /// Nowhere (alerts show in Alertmanager only).
    Null,
    /// An HTTP POST of Alertmanager's webhook payload.
    Webhook {
        /// The URL (may hold a secret: the rendered config is private).
        url: String,
    },
    /// Mail through a relay.
    Email {
        /// The recipient.
        to: String,
        /// The sender.
        from: String,
        /// The relay, `host:port`.
        smarthost: String,
    },
}

/// One Alertmanager route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Label equalities an alert must have.
    pub matchers: BTreeMap<String, String>,
    /// The receiver.
    pub receiver: String,
    /// Whether later routes are tried too.
    pub continue_matching: bool,
}

/// The Kubernetes target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSpec {
    /// The central cluster's kubeconfig context (`None`: the current one).
    pub context: Option<String>,
    /// The central namespace.
    pub namespace: String,
    /// The probenet image (scheduler and probers).
    pub image: String,
    /// The storage class of every volume claim (`None`: the cluster's default).
    pub storage_class: Option<String>,
    /// Addresses (CIDR) allowed to reach the scheduler from outside the cluster: region clusters' egress, users.
    pub scheduler_ingress_cidrs: Vec<String>,
    /// Images of the store and alerting.
    pub images: Images,
    /// Volume sizes (Kubernetes quantities).
    pub storage: Storage,
    /// Replicas of the VictoriaMetrics cluster.
    pub replicas: Replicas,
    /// The user's Secrets given to the scheduler and probers, for the checks config's `${env:...}` and
    /// `${file:...}`.
    pub secrets: Vec<UserSecret>,
    /// Probers open raw sockets for ICMP (capability NET_RAW, Pod Security `privileged` in their namespaces)
    /// instead of unprivileged ping sockets.
    pub raw_sockets: bool,
}

/// A Kubernetes Secret of the user's (`kubernetes.secrets`), which must exist in each namespace it is used in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSecret {
    /// Its name.
    pub name: String,
    /// How it is given: every key an environment variable, or every key a file.
    pub mode: UserSecretMode,
    /// Given to the scheduler.
    pub scheduler: bool,
    /// Given to the probers of every region.
    pub probers: bool,
}

/// How a user's Secret reaches the processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSecretMode {
    /// `envFrom`: each key an environment variable (`${env:KEY}`).
    Env,
    /// A volume: each key a file, `/etc/probenet/user-secrets/NAME/KEY` (`${file:...}`).
    Files,
}

/// Where a user's Secret of the `files` kind is mounted.
pub fn user_secret_dir(name: &str) -> String {
    format!("/etc/probenet/user-secrets/{name}")
}

/// Images of the store and alerting components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// `vmstorage`.
    pub vmstorage: String,
    /// `vminsert`.
    pub vminsert: String,
    /// `vmselect`.
    pub vmselect: String,
    /// `vmalert`.
    pub vmalert: String,
    /// Alertmanager.
    pub alertmanager: String,
}

/// The VictoriaMetrics version of the default images.
pub const VICTORIA_METRICS_VERSION: &str = "v1.110.0";
/// The Alertmanager version of the default image.
pub const ALERTMANAGER_VERSION: &str = "v0.28.1";

impl Default for Images {
    fn default() -> Self {
        let v = VICTORIA_METRICS_VERSION;
        Self {
            vmstorage: format!("victoriametrics/vmstorage:{v}-cluster"),
            vminsert: format!("victoriametrics/vminsert:{v}-cluster"),
            vmselect: format!("victoriametrics/vmselect:{v}-cluster"),
            vmalert: format!("victoriametrics/vmalert:{v}"),
            alertmanager: format!("quay.io/prometheus/alertmanager:{ALERTMANAGER_VERSION}"),
        }
    }
}

/// Volume sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The scheduler's data volume.
    pub scheduler: String,
    /// Each vmstorage's volume.
    pub vmstorage: String,
    /// Alertmanager's volume.
    pub alertmanager: String,
}

impl Default for Storage {
    fn default() -> Self {
        Self { scheduler: "10Gi".into(), vmstorage: "50Gi".into(), alertmanager: "1Gi".into() }
    }
}

/// Replica counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas {
    /// vmstorage nodes.
    pub vmstorage: u32,
    /// vminsert pods.
    pub vminsert: u32,
    /// vmselect pods.
    pub vmselect: u32,
    /// Copies of each sample across vmstorage nodes (vminsert and vmselect `-replicationFactor`); default 2
    /// with two or more vmstorage nodes, else 1.
    pub replication_factor: u32,
}

impl Default for Replicas {
    fn default() -> Self {
        Self { vmstorage: 2, vminsert: 2, vmselect: 2, replication_factor: 2 }
    }
}

/// The default probenet image: this build's version.
pub fn default_image() -> String {
    format!("ghcr.io/probenet/probenet:{}", env!("CARGO_PKG_VERSION"))
}

/// A stack with the checks config it deploys.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The stack.
    pub stack: Stack,
    /// The validated checks config.
    pub config: Config,
    /// The checks config files as read (what gets deployed), in load order.
    pub sources: Vec<ConfigFile>,
}

/// Reads and validates a stack file, then the checks config it names, and checks they agree (regions,
/// probers per region). Every error of both, located.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        let message = match error.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
            _ => error.to_string(),
        };
        ConfigErrors(vec![ConfigError { file: name.clone(), line: 0, col: 0, path: String::new(), message }])
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let stack = parse_str(&name, &text, base)?;
    missing_checks(&stack, base)?;
    let sources = probenet_checks::config::read_sources(&stack.checks)?;
    let config = probenet_checks::config::load_sources(&sources)?;
    let errors = stack.check_config(&config);
    if errors.is_empty() { Ok(Loaded { stack, config, sources }) } else { Err(ConfigErrors(errors).sorted()) }
}

/// An error at each entry of the stack's `checks` that names no file or directory, saying that these paths
/// are relative to the stack file (`cp examples/stack.yaml .` leaves its `quickstart.yaml` behind).
fn missing_checks(stack: &Stack, base: &Path) -> Result<(), ConfigErrors> {
    let errors: Vec<ConfigError> = stack
        .checks
        .iter()
        .zip(&stack.checks_places)
        .enumerate()
        .filter(|(_, (path, _))| !path.exists())
        .map(|(index, (path, place))| {
            let dir = if base.as_os_str().is_empty() { Path::new(".") } else { base };
            let message = format!(
                "{} not found: the paths in `checks` are relative to the stack file, whose directory is {}",
                path.display(),
                dir.display()
            );
            ConfigError {
                file: place.file.clone(),
                line: place.line,
                col: place.col,
                path: format!("checks[{index}]"),
                message,
            }
        })
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
}

impl Stack {
    /// Each local prober's `/metrics` address, as (region, index from 1, address), region by region: from the
    /// region's `metrics_port` up, or else from the next ports of a count starting at 9470.
    pub fn prober_metrics(&self) -> Vec<(String, u32, SocketAddr)> {
        let mut next = DEFAULT_PROBER_METRICS_PORT;
        let mut out = Vec::new();
        for (region, spec) in &self.regions {
            let first = spec.metrics_port.unwrap_or(next);
            let count = u16::try_from(spec.probers).unwrap_or(u16::MAX);
            if spec.metrics_port.is_none() {
                next = next.saturating_add(count);
            }
            for index in 1..=spec.probers {
                let offset = u16::try_from(index - 1).unwrap_or(u16::MAX);
                let port = first.saturating_add(offset);
                out.push((region.clone(), index, SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port))));
            }
        }
        out
    }

    /// What does not agree between the stack and the checks config: every region of one must be a region of
    /// the other, and each region needs at least the probers `scheduling.probers_per_region` asks for.
    pub fn check_config(&self, config: &Config) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let at = |place: &Place, path: String, message: String| ConfigError {
            file: place.file.clone(),
            line: place.line,
            col: place.col,
            path,
            message,
        };
        let declared: Vec<&str> = config.regions.keys().map(String::as_str).collect();
        for (name, region) in &self.regions {
            let path = probenet_checks::config::Path::root().key("regions").key(name).to_string();
            if !config.regions.contains_key(name) {
                let mut message = format!("region {name:?} is not declared in the checks config");
                if let Some(close) = probenet_checks::config::suggest(name, declared.iter().copied()) {
                    message.push_str(&format!("; did you mean {close:?}?"));
                } else {
                    message.push_str(&format!(" (its regions: {})", declared.join(", ")));
                }
                errors.push(at(&region.place, path, message));
            } else if region.probers < config.scheduling.probers_per_region {
                let message = format!(
                    "{} prober(s) but the checks config's scheduling.probers_per_region is {}",
                    region.probers, config.scheduling.probers_per_region
                );
                errors.push(at(&region.place, path, message));
            }
        }
        for name in config.regions.keys().filter(|name| !self.regions.contains_key(*name)) {
            let message = format!("the checks config declares region {name:?} but the stack runs no prober there");
            errors.push(at(&self.regions_place, "regions".to_owned(), message));
        }
        errors
    }
}
