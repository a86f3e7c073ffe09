//! The install plan: an ordered list of actions, each with what it changes on this host, printed before
//! anything is done (`--plan`), then carried out in order by the installer.
//!
//! A plan never holds a secret: keys, tokens and passwords are actions (`CreateCa`, `CreateToken`, ...) that
//! make them when carried out, straight into files created 0600.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cost::Cost;

/// Mode of files only their owner reads: keys, tokens, passwords, configs that may hold secrets.
pub const PRIVATE: u32 = 0o600;
/// Mode of files anyone on the host may read.
pub const PUBLIC: u32 = 0o644;

/// Where the plan installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This host, under systemd (units) or without it (`probenet supervise`).
    Local(ServiceManager),
    /// Kubernetes manifests written to a directory.
    Kubernetes {
        /// The output directory.
        out: PathBuf,
    },
}

/// What keeps components running on a local host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceManager {
    /// systemd units.
    Systemd,
    /// `probenet supervise`, which restarts crashed components.
    Supervisor,
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertUsage {
    /// Served by the scheduler, the store, vmalert and Alertmanager.
    Server,
    /// Presented by vmalert (and `probenet status`) to Alertmanager.
    Client,
}

/// One step of an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Install distribution packages (needs the user's consent: `--yes` or a prompt).
    InstallPackages {
        /// Package names.
        packages: Vec<String>,
    },
    /// Stop and disable a service a package started (it would hold the port probenet's own unit uses).
    DisablePackagedService {
        /// The unit, such as `victoria-metrics`.
        unit: String,
    },
    /// Create the system user every component runs as.
    CreateUser {
        /// The user (and group) name.
        name: String,
    },
    /// Copy the running probenet binary.
    InstallBinary {
        /// Where.
        path: PathBuf,
    },
    /// Create a directory.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// Make a CA: certificate (0644) and key (0600).
    CreateCa {
        /// The certificate.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// Make a certificate signed by the CA: certificate (0644) and key (0600).
    CreateCert {
        /// What it is for.
        usage: CertUsage,
        /// Its common name.
        common_name: String,
        /// DNS names and IP addresses it is valid for.
        sans: Vec<String>,
        /// The certificate.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// Make a random password (0600), and an environment file (0600) holding it as `variable=...`.
    CreatePassword {
        /// What it protects.
        purpose: String,
        /// The password file.
        file: PathBuf,
        /// The environment file and the variable name, if one is wanted.
        env: Option<(PathBuf, String)>,
    },
    /// Copy a secret the stack file names (`${file:...}`) into the install (0600), where the components'
    /// user reads it; a changed source replaces the copy.
    CopySecret {
        /// What it is.
        purpose: String,
        /// The stack's file.
        from: PathBuf,
        /// The copy.
        to: PathBuf,
    },
    /// Make the local PostgreSQL's data directory (`initdb`, the newest server installed) and, in it, the
    /// schedulers' role (its password from `password_file`) and database, unless that was done.
    InitDatabase {
        /// Its own directory (data and socket), given to the user it runs as.
        dir: PathBuf,
        /// The data directory.
        data: PathBuf,
        /// The password of the schedulers' role.
        password_file: PathBuf,
    },
    /// Make a prober token for a region: its hash into the scheduler's `tokens.json`, the token into `file`
    /// (0600).
    CreateToken {
        /// The region.
        region: String,
        /// The scheduler's data directory.
        data: PathBuf,
        /// The token file probers read.
        file: PathBuf,
    },
    /// Write a file.
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
        /// What it is, for the plan.
        purpose: String,
        /// Its contents (never a secret value: secrets are referenced by file).
        contents: String,
    },
    /// Write the bucket's S3 keys for vmbackup and vmrestore as an AWS shared-credentials file (0600), resolving
    /// the config's secret references when carried out (the plan holds only the references).
    WriteS3Credentials {
        /// The credentials file.
        file: PathBuf,
        /// The access key id's reference.
        access_key_id: probenet_checks::secret::Template,
        /// The secret access key's reference.
        secret_access_key: probenet_checks::secret::Template,
    },
    /// Start a component (enable and start its unit, or have the supervisor start it).
    Start {
        /// The component's name.
        component: String,
    },
    /// Wait until a component is healthy, with progress shown; a timeout fails the install.
    WaitHealthy {
        /// The component's name.
        component: String,
        /// How its health is read.
        health: crate::local::Health,
    },
    /// Apply one Kubernetes object (for the Kubernetes target: written to `file`).
    Object {
        /// `central` or `region-NAME`.
        cluster: String,
        /// The file it is written to, relative to the output directory.
        file: String,
        /// Its kind, such as `Deployment`.
        kind: String,
        /// `namespace/name` or `name`.
        name: String,
    },
    /// Print the dashboard URL and the first results.
    ShowResults {
        /// The dashboard's URL.
        dashboard_url: String,
    },
}

/// What an action changes, found by looking at the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not looked at yet.
    Unknown,
    /// Creates something new.
    Create,
    /// Replaces something that differs.
    Update,
    /// Already there as planned: kept (secrets and keys are never replaced).
    Keep,
    /// Runs every time (start, wait, install packages).
    Run,
}

/// One action and its change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// What it changes.
    pub change: Change,
}

/// An ordered install.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The stack's name.
    pub stack: String,
    /// Where it installs.
    pub target: Target,
    /// The steps, in the order they are carried out.
    pub steps: Vec<Step>,
    /// The components it starts (local target), in start order.
    pub components: Vec<crate::local::Component>,
    /// The cost of the deployed checks.
    pub cost: Cost,
}

impl Plan {
    /// The actions, in order.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.steps.iter().map(|step| &step.action)
    }

    /// Looks at the host: marks each step as creating, updating or keeping what it touches.
    pub fn compare_with_host(&mut self) {
        for step in &mut self.steps {
            step.change = change_of(&step.action);
        }
    }
}

/// Whether an action runs at each install rather than creating something.
fn runs_every_time(action: &Action) -> bool {
    change_of_pure(action) == Some(Change::Run)
}

fn change_of_pure(action: &Action) -> Option<Change> {
    match action {
        Action::InstallPackages { .. }
        | Action::DisablePackagedService { .. }
        | Action::CreateUser { .. }
        | Action::Start { .. }
        | Action::WaitHealthy { .. }
        | Action::ShowResults { .. } => Some(Change::Run),
        _ => None,
    }
}

fn change_of(action: &Action) -> Change {
    if let Some(change) = change_of_pure(action) {
        return change;
    }
    let exists = |path: &Path| path.exists();
    match action {
        Action::CreateDir { path, .. } | Action::InstallBinary { path } => {
            if exists(path) {
                Change::Keep
            } else {
                Change::Create
            }
        }
        Action::CreateCa { cert, key } | Action::CreateCert { cert, key, .. } => {
            if exists(cert) && exists(key) {
                Change::Keep
            } else {
                Change::Create
            }
        }
        Action::InitDatabase { data, .. } => {
            if exists(&data.join("PG_VERSION")) {
                Change::Keep
            } else {
                Change::Create
            }
        }
        Action::CopySecret { from, to, .. } => match (std::fs::read(from), std::fs::read(to)) {
            (Ok(new), Ok(old)) if new == old => Change::Keep,
            (_, Ok(_)) => Change::Update,
            _ => Change::Create,
        },
        Action::CreatePassword { file, .. } | Action::CreateToken { file, .. } => {
            if exists(file) {
                Change::Keep
            } else {
                Change::Create
            }
        }
        Action::WriteS3Credentials { file, access_key_id, secret_access_key } => {
            let wanted = access_key_id.resolve(&mut Vec::new()).and_then(|id| {
                secret_access_key.resolve(&mut Vec::new()).map(|key| crate::vmbackup::credentials_file(&id, &key))
            });
            match (wanted, std::fs::read(file)) {
                (Ok(wanted), Ok(old)) if old == wanted.as_bytes() => Change::Keep,
                (_, Ok(_)) => Change::Update,
                _ => Change::Create,
            }
        }
        Action::WriteFile { path, contents, .. } => match std::fs::read(path) {
            Ok(old) if old == contents.as_bytes() => Change::Keep,
            Ok(_) => Change::Update,
            Err(_) => Change::Create,
        },
        _ => Change::Create,
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Local(ServiceManager::Systemd) => "this host (systemd units)".to_owned(),
            Target::Local(ServiceManager::Supervisor) => "this host (probenet supervise)".to_owned(),
            Target::Kubernetes { out } => format!("Kubernetes manifests in {}", out.display()),
        };
        writeln!(f, "plan for stack {:?} on {target}:", self.stack)?;
        for step in &self.steps {
            let sign = match step.change {
                Change::Unknown if runs_every_time(&step.action) => ">",
                Change::Create | Change::Unknown => "+",
                Change::Update => "~",
                Change::Keep => "=",
                Change::Run => ">",
            };
            writeln!(f, "  {sign} {}", Describe(&step.action, step.change))?;
        }
        writeln!(f, "  (+ create, ~ change, = keep as it is, > run)")?;
        write!(f, "{}", self.cost)
    }
}

struct Describe<'a>(&'a Action, Change);

fn mode(mode: u32) -> String {
    format!("{mode:04o}")
}

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = |create: &'static str| match self.1 {
            Change::Keep => "keep",
            Change::Update => "change",
            _ => create,
        };
        match self.0 {
            Action::InstallPackages { packages } => {
                write!(f, "install packages {} (asks first unless --yes)", packages.join(" "))
            }
            Action::DisablePackagedService { unit } => {
                write!(f, "stop and disable the packaged service {unit} (probenet runs its own)")
            }
            Action::CreateUser { name } => write!(f, "create system user {name} (if missing)"),
            Action::InstallBinary { path } => write!(f, "{} binary {}", verb("install"), path.display()),
            Action::CreateDir { path, mode: m } => {
                write!(f, "{} directory {} ({})", verb("create"), path.display(), mode(*m))
            }
            Action::CreateCa { cert, key } => {
                write!(f, "{} CA {} and key {} ({})", verb("create"), cert.display(), key.display(), mode(PRIVATE))
            }
            Action::CreateCert { usage, common_name, sans, cert, key } => {
                let usage = match usage {
                    CertUsage::Server => "server",
                    CertUsage::Client => "client",
                };
                write!(
                    f,
                    "{} {usage} certificate {} for {common_name} [{}] and key {} ({})",
                    verb("create"),
                    cert.display(),
                    sans.join(", "),
                    key.display(),
                    mode(PRIVATE)
                )
            }
            Action::CreatePassword { purpose, file, env, .. } => write!(
                f,
                "{} password for {purpose} in {}{} ({})",
                verb("create"),
                file.display(),
                env.as_ref().map(|(env_file, _)| format!(" and {}", env_file.display())).unwrap_or_default(),
                mode(PRIVATE)
            ),
            Action::CopySecret { purpose, from, to } => {
                write!(f, "{} {purpose} from {} to {} ({})", verb("copy"), from.display(), to.display(), mode(PRIVATE))
            }
            Action::InitDatabase { data, .. } => write!(
                f,
                "{} PostgreSQL data directory {} (initdb), the role and database {}",
                verb("create"),
                data.display(),
                crate::local::POSTGRES_ROLE
            ),
            Action::CreateToken { region, file, data } => write!(
                f,
                "{} prober token for region {region} in {} ({}), its hash in {}",
                verb("create"),
                file.display(),
                mode(PRIVATE),
                data.join("tokens.json").display()
            ),
            Action::WriteFile { path, mode: m, purpose, contents } => {
                write!(f, "{} {} ({}, {} bytes): {purpose}", verb("write"), path.display(), mode(*m), contents.len())
            }
            Action::WriteS3Credentials { file, access_key_id, secret_access_key } => write!(
                f,
                "{} S3 keys for vmbackup and vmrestore ({} and {}) in {} ({})",
                verb("write"),
                access_key_id.display_form(),
                secret_access_key.display_form(),
                file.display(),
                mode(PRIVATE)
            ),
            Action::Start { component } => write!(f, "start {component}"),
            Action::WaitHealthy { component, health } => write!(f, "wait until {component} is healthy ({health})"),
            Action::Object { file, kind, name, .. } => write!(f, "{kind} {name} in {file}"),
            Action::ShowResults { dashboard_url } => {
                write!(f, "show the dashboard URL {dashboard_url} and the first results")
            }
        }
    }
}
