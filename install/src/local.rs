//! The local target: the components of a one-host install (store, alerting, scheduler, probers), their
//! command lines, systemd units, and the plan that installs them in a safe order.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::layout::{Layout, STORE_USER, USER};
use crate::plan::{Action, CertUsage, Change, PRIVATE, PUBLIC, Plan, ServiceManager, Step, Target};
use crate::stack::{Loaded, SchedulerStore, StoreKind};

/// The distribution packages of the bundled store and alerting.
pub const PACKAGES: [&str; 2] = ["victoria-metrics", "prometheus-alertmanager"];

/// Debian's package of the local PostgreSQL (`scheduler.store: postgresql`).
pub const POSTGRES_PACKAGE: &str = "postgresql";
/// Where Debian installs PostgreSQL's server binaries, one folder per major version.
pub const POSTGRES_ROOT: &str = "/usr/lib/postgresql";
/// The component of the local PostgreSQL.
pub const DATABASE: &str = "probenet-postgresql";
/// The role and the database of the schedulers in the local PostgreSQL.
pub const POSTGRES_ROLE: &str = "probenet";
/// The superuser `initdb` makes in the local PostgreSQL (reached only through its socket, whose directory only
/// the user it runs as may enter).
pub const POSTGRES_SUPERUSER: &str = "postgres";
/// The name of the single scheduler (embedded store); replicas are `probenet-scheduler-1`, `-2`, ...
pub const SCHEDULER: &str = "probenet-scheduler";

/// What a component is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// VictoriaMetrics.
    Store,
    /// Alertmanager.
    Alertmanager,
    /// vmalert.
    Vmalert,
    /// The scheduler (or one of its replicas).
    Scheduler,
    /// The local PostgreSQL of replicated schedulers.
    Database,
    /// A periodic backup of VictoriaMetrics to the bucket (`probenet vmbackup`).
    Backup,
    /// A prober.
    Prober {
        /// Its region.
        region: String,
        /// Its index in the region, from 1.
        index: u32,
    },
}

impl Role {
    /// A prober's name with the scheduler (`REGION-INDEX`).
    pub fn prober_name(&self) -> Option<String> {
        match self {
            Self::Prober { region, index } => Some(format!("{region}-{index}")),
            _ => None,
        }
    }
}

/// How a component's health is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// A GET that answers 200.
    Http {
        /// The URL.
        url: String,
        /// The CA to trust (`https://`).
        ca: Option<PathBuf>,
        /// Basic auth: the user and the file holding the password.
        basic_auth: Option<(String, PathBuf)>,
        /// A client certificate and key to present.
        client_cert: Option<(PathBuf, PathBuf)>,
    },
    /// A TCP connection is accepted (the local PostgreSQL).
    Tcp {
        /// The address.
        address: SocketAddr,
    },
    /// The prober is listed by the scheduler's `/api/v1/probers` under this name (probers in a network
    /// namespace, whose loopback the installer cannot reach).
    Registered {
        /// The prober's name.
        name: String,
    },
    /// A periodic job: nothing to wait for (its runs are in its log).
    Periodic,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http { url, .. } => f.write_str(url),
            Self::Tcp { address } => write!(f, "tcp://{address}"),
            Self::Registered { name } => write!(f, "{name} registered with the scheduler"),
            Self::Periodic => f.write_str("a periodic job: nothing to wait for"),
        }
    }
}

/// One process of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// Its name, also its unit's: `probenet-scheduler`, `probenet-prober-eu-west-1`, ...
    pub name: String,
    /// What it is.
    pub role: Role,
    /// The program and its arguments.
    pub exec: Vec<String>,
    /// A private file of `NAME=value` lines added to its environment.
    pub env_file: Option<PathBuf>,
    /// The network namespace it runs in.
    pub netns: Option<String>,
    /// The user it runs as.
    pub user: String,
    /// Directories it writes.
    pub writable: Vec<PathBuf>,
    /// Whether it needs `CAP_NET_RAW` (ICMP probers).
    pub net_raw: bool,
    /// Components it starts after.
    pub after: Vec<String>,
    /// How its health is read.
    pub health: Health,
    /// A periodic job rather than a daemon: it runs every this many seconds (systemd: a oneshot service and
    /// a timer; the supervisor runs [`Component::supervised`], which repeats on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_s: Option<u64>,
}

impl Component {
    /// Its systemd unit.
    pub fn unit(&self, stack: &str) -> String {
        let mut after = vec!["network-online.target".to_owned()];
        after.extend(self.after.iter().map(|name| format!("{name}.service")));
        let mut unit = format!(
            "# Written by `probenet install local` for the stack {stack:?}; `probenet upgrade` rewrites it.\n\
             [Unit]\nDescription=probenet {} ({stack})\nWants=network-online.target\nAfter={}\n\n[Service]\n\
             User={}\nGroup={}\nExecStart={}\n",
            self.name,
            after.join(" "),
            self.user,
            self.user,
            self.exec.iter().map(|arg| systemd_quote(arg)).collect::<Vec<_>>().join(" ")
        );
        if let Some(env) = &self.env_file {
            unit.push_str(&format!("EnvironmentFile={}\n", env.display()));
        }
        if let Some(netns) = &self.netns {
            unit.push_str(&format!("NetworkNamespacePath=/run/netns/{netns}\n"));
        }
        if self.net_raw {
            unit.push_str("AmbientCapabilities=CAP_NET_RAW\nCapabilityBoundingSet=CAP_NET_RAW\n");
        } else {
            unit.push_str("CapabilityBoundingSet=\n");
        }
        if self.every_s.is_some() {
            // Started by its timer; a failed run is retried by the next one.
            unit.push_str("Type=oneshot\n");
        } else {
            unit.push_str("Restart=on-failure\nRestartSec=2s\n");
        }
        unit.push_str("UMask=0077\nNoNewPrivileges=yes\nPrivateTmp=yes\nProtectSystem=strict\nProtectHome=yes\n");
        for dir in &self.writable {
            unit.push_str(&format!("ReadWritePaths={}\n", dir.display()));
        }
        if self.every_s.is_none() {
            unit.push_str("\n[Install]\nWantedBy=multi-user.target\n");
        }
        unit
    }

    /// The systemd timer of a periodic component: first 10 minutes after it starts (at install, at boot),
    /// then every `every_s` after the last run started.
    pub fn timer(&self, stack: &str) -> Option<String> {
        let every = self.every_s?;
        Some(format!(
            "# Written by `probenet install local` for the stack {stack:?}; `probenet upgrade` rewrites it.\n\
             [Unit]\nDescription=probenet {name} every {every}s ({stack})\n\n[Timer]\nUnit={name}.service\n\
             OnActiveSec=10min\nOnUnitActiveSec={every}s\nAccuracySec=1min\n\n[Install]\nWantedBy=timers.target\n",
            name = self.name
        ))
    }

    /// The component as `probenet supervise` runs it: a periodic one gets `--every SECONDS` and repeats itself.
    pub fn supervised(&self) -> Component {
        let mut component = self.clone();
        if let Some(every) = component.every_s.take() {
            component.exec.insert(2, format!("--every={every}"));
        }
        component
    }

    /// The unit `systemctl enable --now` starts: the timer of a periodic component, else its service.
    pub fn start_unit(&self) -> String {
        if self.every_s.is_some() { format!("{}.timer", self.name) } else { self.name.clone() }
    }
}

/// A word as systemd's `ExecStart=` reads it: quoted when it holds spaces, quotes, `$` or `%`.
fn systemd_quote(word: &str) -> String {
    let word = word.replace('%', "%%").replace('$', "$$");
    if word.is_empty() || word.contains([' ', '"', '\'', '\\', '\t']) {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        word
    }
}

fn s(path: PathBuf) -> String {
    path.display().to_string()
}

/// The components of a local install, in start order: store, Alertmanager, vmalert, scheduler, then the
/// probers region by region.
pub fn components(loaded: &Loaded, layout: &Layout) -> Vec<Component> {
    let stack = &loaded.stack;
    let mut out = Vec::new();
    let ca = Some(layout.ca_cert());
    let store_auth = Some((STORE_USER.to_owned(), layout.store_password()));
    let component = |name: &str, role: Role, exec: Vec<String>, health: Health| Component {
        name: name.to_owned(),
        role,
        exec,
        env_file: None,
        netns: None,
        user: USER.to_owned(),
        writable: Vec::new(),
        net_raw: false,
        after: Vec::new(),
        health,
        every_s: None,
    };
    let store_url = format!("https://{}", crate::files::loopback(stack.store.listen));
    if stack.store.kind == StoreKind::VictoriaMetrics {
        let exec = vec![
            "/usr/bin/victoria-metrics".to_owned(),
            "-envflag.enable".to_owned(),
            format!("-storageDataPath={}", s(layout.store_data())),
            format!("-retentionPeriod={}d", stack.store.retention_days()),
            format!("-httpListenAddr={}", stack.store.listen),
            "-tls".to_owned(),
            format!("-tlsCertFile={}", s(layout.server_cert())),
            format!("-tlsKeyFile={}", s(layout.server_key())),
            format!("-httpAuth.username={STORE_USER}"),
        ];
        let health = Health::Http {
            url: format!("{store_url}/health"),
            ca: ca.clone(),
            basic_auth: store_auth.clone(),
            client_cert: None,
        };
        let mut store = component("probenet-victoria-metrics", Role::Store, exec, health);
        store.env_file = Some(layout.store_env());
        store.writable = vec![layout.store_data()];
        out.push(store);
    }
    if let Some(alerting) = &stack.alerting {
        let am_url = format!("https://{}", crate::files::loopback(alerting.alertmanager_listen));
        let exec = vec![
            "/usr/bin/prometheus-alertmanager".to_owned(),
            format!("--config.file={}", s(layout.alertmanager_config())),
            format!("--storage.path={}", s(layout.alertmanager_data())),
            format!("--web.listen-address={}", alerting.alertmanager_listen),
            format!("--web.config.file={}", s(layout.alertmanager_web())),
            "--cluster.listen-address=".to_owned(),
        ];
        let health = Health::Http {
            url: format!("{am_url}/-/healthy"),
            ca: ca.clone(),
            basic_auth: None,
            client_cert: Some((layout.client_cert(), layout.client_key())),
        };
        let mut am = component("probenet-alertmanager", Role::Alertmanager, exec, health);
        am.writable = vec![layout.alertmanager_data()];
        out.push(am);
        let ca_file = s(layout.ca_cert());
        let password = s(layout.store_password());
        let mut exec = vec![
            "/usr/bin/vmalert".to_owned(),
            "-envflag.enable".to_owned(),
            format!("-rule={}", s(layout.vmalert_rules())),
            format!("-evaluationInterval={}s", alerting.evaluation_interval.as_secs().max(1)),
        ];
        for (flag, url) in
            [("datasource", store_url.clone()), ("remoteRead", store_url.clone()), ("remoteWrite", store_url.clone())]
        {
            exec.push(format!("-{flag}.url={url}"));
            exec.push(format!("-{flag}.tlsCAFile={ca_file}"));
            exec.push(format!("-{flag}.basicAuth.username={STORE_USER}"));
            exec.push(format!("-{flag}.basicAuth.passwordFile={password}"));
        }
        exec.extend([
            format!("-notifier.url={am_url}"),
            format!("-notifier.tlsCAFile={ca_file}"),
            format!("-notifier.tlsCertFile={}", s(layout.client_cert())),
            format!("-notifier.tlsKeyFile={}", s(layout.client_key())),
            format!("-httpListenAddr={}", alerting.vmalert_listen),
            "-tls".to_owned(),
            format!("-tlsCertFile={}", s(layout.server_cert())),
            format!("-tlsKeyFile={}", s(layout.server_key())),
            format!("-httpAuth.username={STORE_USER}"),
        ]);
        let url = format!("https://{}/health", crate::files::loopback(alerting.vmalert_listen));
        let health = Health::Http { url, ca: ca.clone(), basic_auth: store_auth.clone(), client_cert: None };
        let mut vmalert = component("probenet-vmalert", Role::Vmalert, exec, health);
        vmalert.env_file = Some(layout.store_env());
        vmalert.after = vec!["probenet-victoria-metrics".to_owned(), "probenet-alertmanager".to_owned()];
        out.push(vmalert);
    }
    let before_schedulers: Vec<String> = out.iter().map(|component| component.name.clone()).collect();
    let replicated = stack.scheduler.replicated();
    if let SchedulerStore::Local { listen } = stack.scheduler.store {
        let exec = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            // The server of the data directory's major version (a new major needs pg_upgrade, not a restart).
            format!("exec {POSTGRES_ROOT}/\"$(cat \"$0/PG_VERSION\")\"/bin/postgres -D \"$0\" \"$@\""),
            s(layout.postgres_data()),
            "-k".to_owned(),
            s(layout.postgres_socket()),
            "-p".to_owned(),
            listen.port().to_string(),
            "-c".to_owned(),
            format!("listen_addresses={}", listen.ip()),
        ];
        let mut database = component(DATABASE, Role::Database, exec, Health::Tcp { address: listen });
        database.writable = vec![layout.postgres_dir()];
        out.insert(0, database);
    }
    let mut scheduler_names = Vec::new();
    for (offset, listen) in stack.scheduler.replica_listens().into_iter().enumerate() {
        let index = u32::try_from(offset).unwrap_or(u32::MAX) + 1;
        let name = if replicated { format!("{SCHEDULER}-{index}") } else { SCHEDULER.to_owned() };
        let data = layout.replica_data(index);
        let mut exec = vec![s(layout.binary()), "scheduler".to_owned(), "-c".to_owned(), s(layout.checks_dir())];
        if stack.store.kind == StoreKind::VictoriaMetrics || crate::files::dashboard_token_added(loaded) {
            exec.extend(["-c".to_owned(), s(layout.stack_config_dir())]);
        }
        exec.extend([
            "--listen".to_owned(),
            listen.to_string(),
            "--data".to_owned(),
            s(data.clone()),
            "--tls-cert".to_owned(),
            s(layout.server_cert()),
            "--tls-key".to_owned(),
            s(layout.server_key()),
            "--dashboard-url".to_owned(),
            stack.scheduler.dashboard_url.clone(),
        ]);
        if let Some((url, password, ca)) = scheduler_store(loaded, layout) {
            exec.extend(["--store".to_owned(), url, "--store-password-file".to_owned(), s(password)]);
            if let Some(ca) = ca {
                exec.extend(["--store-ca".to_owned(), s(ca)]);
            }
            let host = crate::stack::host_for_url(&stack.scheduler.host);
            exec.extend([
                "--replica-name".to_owned(),
                name.clone(),
                "--advertise-url".to_owned(),
                format!("https://{host}:{}", listen.port()),
            ]);
            if loaded.config.objects.is_none() {
                // Without a bucket, the replicas share artifacts through the database.
                exec.push("--artifacts-in-database".to_owned());
            }
        }
        let url = format!("https://{}/healthz", crate::files::loopback(listen));
        let health = Health::Http { url, ca: ca.clone(), basic_auth: None, client_cert: None };
        let mut scheduler = component(&name, Role::Scheduler, exec, health);
        scheduler.writable = vec![data];
        scheduler.after = before_schedulers.clone();
        if matches!(stack.scheduler.store, SchedulerStore::Local { .. }) {
            scheduler.after.insert(0, DATABASE.to_owned());
        }
        scheduler_names.push(name);
        out.push(scheduler);
    }
    let icmp = loaded.config.checks.iter().any(|check| check.kind.key() == "icmp");
    for (region, index, metrics) in stack.prober_metrics() {
        let Some(spec) = stack.regions.get(&region) else { continue };
        let name = format!("{region}-{index}");
        let exec = vec![
            s(layout.binary()),
            "prober".to_owned(),
            "--scheduler".to_owned(),
            stack.scheduler.urls_for(spec),
            "--region".to_owned(),
            region.clone(),
            "--token-file".to_owned(),
            s(layout.token_file(&region)),
            "--ca".to_owned(),
            s(layout.ca_cert()),
            "--name".to_owned(),
            name.clone(),
            "--spool".to_owned(),
            s(layout.spool(&name)),
            "--metrics-listen".to_owned(),
            metrics.to_string(),
        ];
        let health = match spec.netns {
            Some(_) => Health::Registered { name: name.clone() },
            None => {
                Health::Http { url: format!("http://{metrics}/healthz"), ca: None, basic_auth: None, client_cert: None }
            }
        };
        let mut prober =
            component(&format!("probenet-prober-{name}"), Role::Prober { region: region.clone(), index }, exec, health);
        prober.netns = spec.netns.clone();
        prober.writable = vec![layout.spool(&name)];
        prober.net_raw = icmp;
        prober.after.clone_from(&scheduler_names);
        out.push(prober);
    }
    out.extend(crate::vmbackup::component(loaded, layout));
    out
}

/// The schedulers' PostgreSQL store, when they have one: its URL, the password file and the CA file they read.
pub fn scheduler_store(loaded: &Loaded, layout: &Layout) -> Option<(String, PathBuf, Option<PathBuf>)> {
    match &loaded.stack.scheduler.store {
        SchedulerStore::Embedded => None,
        SchedulerStore::Local { listen } => Some((
            format!("postgres://{POSTGRES_ROLE}@{}/{POSTGRES_ROLE}", crate::files::loopback(*listen)),
            layout.postgres_password(),
            None,
        )),
        SchedulerStore::Postgres(store) => Some((
            store.url.clone(),
            layout.scheduler_store_password(),
            store.ca.as_ref().map(|_| layout.scheduler_store_ca()),
        )),
    }
}

/// The `bin` folder of the newest PostgreSQL server installed (Debian's layout), if any.
pub fn postgres_bin() -> Option<PathBuf> {
    let entries = std::fs::read_dir(POSTGRES_ROOT).ok()?;
    let mut found: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The plan of `probenet install local`, in a safe order: packages, user, directories, certificates, secrets,
/// configuration, units, then each component started and waited for (store, alerting, scheduler, probers
/// region by region), then the dashboard URL. Pure: [`Plan::compare_with_host`] looks at the host.
pub fn plan(loaded: &Loaded, layout: &Layout, manager: ServiceManager) -> Plan {
    let stack = &loaded.stack;
    let components = components(loaded, layout);
    let with_store = stack.store.kind == StoreKind::VictoriaMetrics;
    let local_database = matches!(stack.scheduler.store, SchedulerStore::Local { .. });
    let mut actions = Vec::new();
    let mut packages: Vec<String> = match (with_store, &stack.alerting) {
        (false, _) => Vec::new(),
        (true, Some(_)) => PACKAGES.iter().map(|name| (*name).to_owned()).collect(),
        (true, None) => vec![PACKAGES[0].to_owned()],
    };
    // probenet runs its own services of these packages: theirs are stopped. PostgreSQL's is left alone (it may
    // serve others; probenet's server has a port and a data directory of its own).
    let packaged_services = packages.clone();
    if local_database {
        packages.push(POSTGRES_PACKAGE.to_owned());
    }
    if !packages.is_empty() {
        actions.push(Action::InstallPackages { packages });
        if manager == ServiceManager::Systemd {
            actions.extend(packaged_services.into_iter().map(|unit| Action::DisablePackagedService { unit }));
        }
    }
    actions.push(Action::CreateUser { name: USER.to_owned() });
    actions.push(Action::InstallBinary { path: layout.binary() });
    let mut dirs = vec![
        (layout.etc(), 0o755),
        (layout.checks_dir(), 0o750),
        (layout.tls_dir(), 0o750),
        (layout.secrets_dir(), 0o700),
        (layout.data(), 0o700),
    ];
    if with_store || crate::files::dashboard_token_added(loaded) {
        dirs.push((layout.stack_config_dir(), 0o750));
    }
    if with_store {
        dirs.push((layout.store_data(), 0o700));
    }
    if stack.alerting.is_some() {
        dirs.extend([
            (layout.vmalert_rules().parent().map(PathBuf::from).unwrap_or_default(), 0o750),
            (layout.alertmanager_config().parent().map(PathBuf::from).unwrap_or_default(), 0o750),
            (layout.alertmanager_data(), 0o700),
        ]);
    }
    if local_database {
        dirs.extend([
            (layout.postgres_dir(), 0o700),
            (layout.postgres_data(), 0o700),
            (layout.postgres_socket(), 0o700),
        ]);
    }
    for component in &components {
        if component.role == Role::Scheduler {
            dirs.extend(component.writable.iter().filter(|dir| **dir != layout.data()).map(|dir| (dir.clone(), 0o700)));
        }
    }
    dirs.push((layout.data().join("spool"), 0o700));
    for component in &components {
        if let Role::Prober { .. } = component.role {
            dirs.extend(component.writable.iter().map(|dir| (dir.clone(), 0o700)));
        }
    }
    if manager == ServiceManager::Supervisor {
        dirs.push((layout.log_dir(), 0o750));
    }
    actions.extend(dirs.into_iter().map(|(path, mode)| Action::CreateDir { path, mode }));
    actions.push(Action::CreateCa { cert: layout.ca_cert(), key: layout.ca_key() });
    let mut sans = vec![stack.scheduler.host.clone()];
    let region_hosts = stack.regions.values().filter_map(|region| region.scheduler_host.as_deref());
    for san in region_hosts.chain(["localhost", "127.0.0.1", "::1"]) {
        if !sans.iter().any(|known| known == san) {
            sans.push(san.to_owned());
        }
    }
    actions.push(Action::CreateCert {
        usage: CertUsage::Server,
        common_name: stack.scheduler.host.clone(),
        sans,
        cert: layout.server_cert(),
        key: layout.server_key(),
    });
    if stack.alerting.is_some() {
        actions.push(Action::CreateCert {
            usage: CertUsage::Client,
            common_name: "probenet-vmalert".to_owned(),
            sans: vec!["probenet-vmalert".to_owned()],
            cert: layout.client_cert(),
            key: layout.client_key(),
        });
    }
    if with_store {
        actions.push(Action::CreatePassword {
            purpose: "the store (VictoriaMetrics and vmalert basic auth)".to_owned(),
            file: layout.store_password(),
            env: Some((layout.store_env(), "httpAuth_password".to_owned())),
        });
    }
    if loaded.config.dashboard.token.is_none() {
        actions.push(Action::CreatePassword {
            purpose: "the dashboard's read token".to_owned(),
            file: layout.dashboard_token(),
            env: None,
        });
    }
    match &stack.scheduler.store {
        SchedulerStore::Embedded => {}
        SchedulerStore::Local { .. } => actions.push(Action::CreatePassword {
            purpose: format!("the schedulers' role {POSTGRES_ROLE} in the local PostgreSQL"),
            file: layout.postgres_password(),
            env: None,
        }),
        SchedulerStore::Postgres(store) => {
            if let crate::stack::SecretSource::File(from) = &store.password {
                actions.push(Action::CopySecret {
                    purpose: "the schedulers' PostgreSQL password".to_owned(),
                    from: from.clone(),
                    to: layout.scheduler_store_password(),
                });
            }
            if let Some(crate::stack::SecretSource::File(from)) = &store.ca {
                actions.push(Action::CopySecret {
                    purpose: "the CA of the schedulers' PostgreSQL".to_owned(),
                    from: from.clone(),
                    to: layout.scheduler_store_ca(),
                });
            }
        }
    }
    for region in stack.regions.keys() {
        actions.push(Action::CreateToken {
            region: region.clone(),
            data: layout.data(),
            file: layout.token_file(region),
        });
    }
    actions.extend(crate::files::config_files(loaded, layout));
    actions.extend(crate::vmbackup::files(loaded, layout));
    match manager {
        ServiceManager::Systemd => {
            for component in &components {
                actions.push(Action::WriteFile {
                    path: layout.unit_file(&component.name),
                    mode: PUBLIC,
                    purpose: format!("systemd unit of {}", component.name),
                    contents: component.unit(&stack.name),
                });
                if let Some(timer) = component.timer(&stack.name) {
                    actions.push(Action::WriteFile {
                        path: layout.timer_file(&component.name),
                        mode: PUBLIC,
                        purpose: format!("systemd timer of {}", component.name),
                        contents: timer,
                    });
                }
            }
        }
        ServiceManager::Supervisor => {
            let supervised: Vec<Component> = components.iter().map(Component::supervised).collect();
            let mut contents = serde_json::to_string_pretty(&supervised).unwrap_or_default();
            contents.push('\n');
            actions.push(Action::WriteFile {
                path: layout.supervisor_file(),
                mode: PRIVATE,
                purpose: "components for probenet supervise".to_owned(),
                contents,
            });
        }
    }
    if local_database {
        actions.push(Action::InitDatabase {
            dir: layout.postgres_dir(),
            data: layout.postgres_data(),
            password_file: layout.postgres_password(),
        });
    }
    for component in &components {
        actions.push(Action::Start { component: component.name.clone() });
        actions.push(Action::WaitHealthy { component: component.name.clone(), health: component.health.clone() });
    }
    actions.push(Action::ShowResults { dashboard_url: stack.scheduler.dashboard_url.clone() });
    Plan {
        stack: stack.name.clone(),
        target: Target::Local(manager),
        steps: actions.into_iter().map(|action| Step { action, change: Change::Unknown }).collect(),
        components,
        cost: crate::cost::estimate_stack(loaded),
    }
}
