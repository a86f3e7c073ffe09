//! Where a local install puts things: configuration under `/etc/probenet`, data under the scheduler's data
//! directory, units under `/etc/systemd/system`; all below a root prefix (`/` in production, a temp dir in
//! tests).

use std::path::{Path, PathBuf};

use crate::stack::Stack;

/// The user every component runs as.
pub const USER: &str = "probenet";

/// The paths of a local install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    data: PathBuf,
}

impl Layout {
    /// The production layout of `stack` (root `/`).
    pub fn new(stack: &Stack) -> Self {
        Self { root: PathBuf::from("/"), data: stack.scheduler.data_dir.clone() }
    }

    /// The layout below `root` when the stack is not at hand (`probenet supervise`): its configuration, log and
    /// runtime paths are right; its data paths assume the default data directory.
    pub fn for_root(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), data: PathBuf::from(crate::stack::DEFAULT_DATA_DIR) }
    }

    /// The same layout below `root` (every path is prefixed).
    pub fn with_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    /// The root prefix.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` (absolute on the target host) below the root.
    pub fn at(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Where the probenet binary is installed.
    pub fn binary(&self) -> PathBuf {
        self.at("/usr/local/bin/probenet")
    }

    /// The configuration directory.
    pub fn etc(&self) -> PathBuf {
        self.at("/etc/probenet")
    }

    /// The deployed copies of the checks config.
    pub fn checks_dir(&self) -> PathBuf {
        self.etc().join("checks")
    }

    /// Config the installer adds to the scheduler's (the remote write exporter).
    pub fn stack_config_dir(&self) -> PathBuf {
        self.etc().join("stack.d")
    }

    /// The remote write exporter file (in [`Self::stack_config_dir`]).
    pub fn remote_write_file(&self) -> PathBuf {
        self.stack_config_dir().join("remote-write.yaml")
    }

    /// Certificates and keys.
    pub fn tls_dir(&self) -> PathBuf {
        self.etc().join("tls")
    }

    /// The CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.tls_dir().join("ca.pem")
    }

    /// The CA key.
    pub fn ca_key(&self) -> PathBuf {
        self.tls_dir().join("ca-key.pem")
    }

    /// The server certificate every component serves.
    pub fn server_cert(&self) -> PathBuf {
        self.tls_dir().join("server.pem")
    }

    /// Its key.
    pub fn server_key(&self) -> PathBuf {
        self.tls_dir().join("server-key.pem")
    }

    /// The client certificate vmalert (and `probenet status`) present to Alertmanager.
    pub fn client_cert(&self) -> PathBuf {
        self.tls_dir().join("client.pem")
    }

    /// Its key.
    pub fn client_key(&self) -> PathBuf {
        self.tls_dir().join("client-key.pem")
    }

    /// Tokens and passwords (0700).
    pub fn secrets_dir(&self) -> PathBuf {
        self.etc().join("secrets")
    }

    /// The token file of a region's probers.
    pub fn token_file(&self, region: &str) -> PathBuf {
        self.secrets_dir().join(format!("{region}.token"))
    }

    /// The store's basic auth password (user [`STORE_USER`]).
    pub fn store_password(&self) -> PathBuf {
        self.secrets_dir().join("store-password")
    }

    /// VictoriaMetrics' and vmalert's environment (`httpAuth_password=...`, read with `-envflag.enable`).
    pub fn store_env(&self) -> PathBuf {
        self.secrets_dir().join("store.env")
    }

    /// vmalert's rules.
    pub fn vmalert_rules(&self) -> PathBuf {
        self.etc().join("vmalert").join("rules.yaml")
    }

    /// Alertmanager's configuration (private: receivers may hold secrets).
    pub fn alertmanager_config(&self) -> PathBuf {
        self.etc().join("alertmanager").join("alertmanager.yml")
    }

    /// Alertmanager's web configuration (TLS, client certificates).
    pub fn alertmanager_web(&self) -> PathBuf {
        self.etc().join("alertmanager").join("web.yml")
    }

    /// The scheduler's data directory.
    pub fn data(&self) -> PathBuf {
        self.at(&self.data)
    }

    /// VictoriaMetrics' data.
    pub fn store_data(&self) -> PathBuf {
        self.data().join("victoria-metrics")
    }

    /// Alertmanager's data.
    pub fn alertmanager_data(&self) -> PathBuf {
        self.data().join("alertmanager")
    }

    /// The data directory of scheduler replica `index` (from 1): the first uses [`Self::data`] (where the
    /// tokens are made, and that it copies into an empty database), the others their own below it.
    pub fn replica_data(&self, index: u32) -> PathBuf {
        if index <= 1 { self.data() } else { self.data().join("replicas").join(format!("scheduler-{index}")) }
    }

    /// The local PostgreSQL's own directory (`store: postgresql`), owned by the user it runs as.
    pub fn postgres_dir(&self) -> PathBuf {
        self.data().join("postgresql")
    }

    /// Its data directory (`initdb`).
    pub fn postgres_data(&self) -> PathBuf {
        self.postgres_dir().join("data")
    }

    /// The directory of its Unix socket.
    pub fn postgres_socket(&self) -> PathBuf {
        self.postgres_dir().join("run")
    }

    /// The password of the schedulers' role in the local PostgreSQL.
    pub fn postgres_password(&self) -> PathBuf {
        self.secrets_dir().join("postgresql-password")
    }

    /// The copy of the stack's PostgreSQL password (`store_password: ${file:...}`) the schedulers read.
    pub fn scheduler_store_password(&self) -> PathBuf {
        self.secrets_dir().join("scheduler-store-password")
    }

    /// The copy of the stack's PostgreSQL CA (`store_ca: ${file:...}`) the schedulers read.
    pub fn scheduler_store_ca(&self) -> PathBuf {
        self.tls_dir().join("scheduler-store-ca.pem")
    }

    /// The spool of one prober.
    pub fn spool(&self, prober: &str) -> PathBuf {
        self.data().join("spool").join(prober)
    }

    /// A systemd unit file.
    pub fn unit_file(&self, unit: &str) -> PathBuf {
        self.at("/etc/systemd/system").join(format!("{unit}.service"))
    }

    /// A systemd timer unit file.
    pub fn timer_file(&self, unit: &str) -> PathBuf {
        self.at("/etc/systemd/system").join(format!("{unit}.timer"))
    }

    /// The S3 keys of vmbackup and vmrestore (AWS shared-credentials format, 0600).
    pub fn vmbackup_credentials(&self) -> PathBuf {
        self.secrets_dir().join("vmbackup-credentials")
    }

    /// The bucket's region for vmbackup and vmrestore (AWS config format).
    pub fn vmbackup_config(&self) -> PathBuf {
        self.etc().join("vmbackup").join("aws-config")
    }

    /// The supervisor's component list (without systemd).
    pub fn supervisor_file(&self) -> PathBuf {
        self.etc().join("supervise.json")
    }

    /// The supervisor's logs, one file per component.
    pub fn log_dir(&self) -> PathBuf {
        self.at("/var/log/probenet")
    }

    /// The admin token the installer uses to read the scheduler's API (`probenet status`, first results).
    pub fn admin_token(&self) -> PathBuf {
        self.secrets_dir().join("admin.token")
    }

    /// The dashboard's read token the install makes when the checks config sets none.
    pub fn dashboard_token(&self) -> PathBuf {
        self.secrets_dir().join("dashboard.token")
    }

    /// The config file giving the scheduler that token (in [`Self::stack_config_dir`]).
    pub fn dashboard_config(&self) -> PathBuf {
        self.stack_config_dir().join("dashboard.yaml")
    }

    /// Runtime state: the supervisor's pid file, its state and control files.
    pub fn run_dir(&self) -> PathBuf {
        self.at("/run/probenet")
    }

    /// The supervisor's pid file.
    pub fn supervisor_pid(&self) -> PathBuf {
        self.run_dir().join("supervise.pid")
    }

    /// The supervisor's state: each component's pid and state (JSON, rewritten as they change).
    pub fn supervisor_state(&self) -> PathBuf {
        self.run_dir().join("supervise-state.json")
    }

    /// Names of components the supervisor is asked to restart (one a line), read on SIGHUP.
    pub fn supervisor_restart(&self) -> PathBuf {
        self.run_dir().join("restart")
    }

    /// Present when the supervisor is asked to re-execute the installed binary on the next SIGHUP (upgrades).
    pub fn supervisor_reexec(&self) -> PathBuf {
        self.run_dir().join("reexec")
    }

    /// The supervisor's own log.
    pub fn supervisor_log(&self) -> PathBuf {
        self.log_dir().join("supervise.log")
    }

    /// The binary kept by `probenet upgrade` to roll back to.
    pub fn previous_binary(&self) -> PathBuf {
        self.at("/usr/local/bin/probenet.previous")
    }
}

/// The basic auth user of the store.
pub const STORE_USER: &str = "probenet";
