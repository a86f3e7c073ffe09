//! `probenet install local|kubernetes`, `supervise`, `status`, `upgrade` and `uninstall`: deploy and operate the
//! whole stack (the logic lives in the `probenet-install` crate; this file parses arguments and brings the HTTP
//! client).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use probenet_install::http::{Get, Http, HttpError};
use probenet_install::layout::Layout;
use probenet_install::plan::{Plan, ServiceManager};
use probenet_install::supervise::Control;
use probenet_install::{Loaded, apply, local, status, supervise, uninstall, upgrade};

/// `probenet install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    #[command(subcommand)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum Target {
    /// Install and start the stack on this Linux host: store, alerting, scheduler and probers.
    Local(LocalArgs),
    /// Write Kubernetes manifests for the stack (central cluster and one directory per region).
    Kubernetes(KubernetesArgs),
}

#[derive(Debug, clap::Args)]
struct StackArgs {
    /// The stack file.
    #[arg(short = 'f', long = "file", value_name = "STACK.yaml")]
    file: PathBuf,
    /// Install below this directory instead of / (every path is prefixed; for tests and trials).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct LocalArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Print what would be created and changed, and the cost, then stop.
    #[arg(long)]
    plan: bool,
    /// Install missing distribution packages without asking.
    #[arg(long)]
    yes: bool,
}

#[derive(Debug, clap::Args)]
struct KubernetesArgs {
    /// The stack file.
    #[arg(short = 'f', long = "file", value_name = "STACK.yaml")]
    file: PathBuf,
    /// Where to write the manifests.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print the objects and the cost, then stop.
    #[arg(long)]
    plan: bool,
    /// Make every secret anew (CA, tokens, passwords) instead of keeping those of DIR/secrets.
    #[arg(long)]
    rotate: bool,
}

/// `probenet supervise`.
#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    /// The install's root (its etc/probenet/supervise.json).
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Take over the running components the state file names (after an upgrade re-executes the supervisor).
    #[arg(long)]
    adopt: bool,
}

/// `probenet status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    stack: StackArgs,
}

/// `probenet upgrade`.
#[derive(Debug, clap::Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The new probenet binary (default: this one, so `./probenet-NEW upgrade -f stack.yaml` upgrades to itself).
    #[arg(long, value_name = "FILE")]
    binary: Option<PathBuf>,
    /// How long each restarted component may take to be healthy again before the upgrade rolls back.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    health_timeout: u64,
}

/// `probenet uninstall`.
#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Remove the data too (results, the store's samples, Alertmanager's state).
    #[arg(long)]
    purge: bool,
}

/// `probenet vmbackup`.
#[derive(Debug, clap::Args)]
pub struct VmbackupArgs {
    /// VictoriaMetrics' base URL (its /snapshot/create and /snapshot/delete).
    #[arg(long, value_name = "URL")]
    store: String,
    /// The CA of its certificate (PEM).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The basic-auth user.
    #[arg(long, value_name = "NAME", requires = "password_file")]
    user: Option<String>,
    /// The file holding the basic-auth password.
    #[arg(long, value_name = "FILE", requires = "user")]
    password_file: Option<PathBuf>,
    /// Repeat every this many seconds (as `probenet supervise` runs it); without it, one backup (systemd's timer).
    #[arg(long, value_name = "SECONDS")]
    every: Option<u64>,
    /// vmbackup and its flags (`-snapshotName` is added).
    #[arg(last = true, required = true, value_name = "VMBACKUP")]
    vmbackup: Vec<String>,
}

/// The HTTP client: reqwest over rustls, one client per request (health checks are few).
struct Client {
    runtime: tokio::runtime::Runtime,
}

impl Client {
    fn new() -> Result<Self, std::io::Error> {
        Ok(Self { runtime: tokio::runtime::Builder::new_current_thread().enable_all().build()? })
    }
}

impl Http for Client {
    fn get(&self, get: &Get) -> Result<(u16, String), HttpError> {
        let error = |message: String| HttpError { url: get.url.clone(), message };
        let read = |path: &Path| std::fs::read(path).map_err(|e| error(format!("{}: {e}", path.display())));
        let mut builder = reqwest::Client::builder().timeout(get.timeout).connect_timeout(get.timeout);
        if let Some(ca) = &get.ca {
            let certs = reqwest::Certificate::from_pem_bundle(&read(ca)?).map_err(|e| error(e.to_string()))?;
            builder = builder.tls_certs_only(certs);
        }
        if let Some((cert, key)) = &get.client_cert {
            let mut pem = read(cert)?;
            pem.extend(read(key)?);
            builder = builder.identity(reqwest::Identity::from_pem(&pem).map_err(|e| error(e.to_string()))?);
        }
        let client = builder.build().map_err(|e| error(e.to_string()))?;
        let mut request = client.get(&get.url);
        if let Some((user, file)) = &get.basic_auth {
            let password = String::from_utf8_lossy(&read(file)?).trim().to_owned();
            request = request.basic_auth(user, Some(password));
        }
        if let Some(file) = &get.bearer_file {
            request = request.bearer_auth(String::from_utf8_lossy(&read(file)?).trim());
        }
        self.runtime.block_on(async {
            // Errors name the URL only: reqwest's own text could carry the request's URL with credentials.
            let response = request.send().await.map_err(|e| error(reason(&e)))?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|e| error(reason(&e)))?;
            Ok((status, body))
        })
    }
}

fn reason(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut last = String::new();
    while let Some(inner) = source {
        last = inner.to_string();
        source = inner.source();
    }
    if last.is_empty() { kind.to_owned() } else { format!("{kind}: {last}") }
}

fn load(file: &Path) -> Result<Loaded, ExitCode> {
    probenet_install::load(file).map_err(|errors| {
        super::print_errors(&errors.0);
        ExitCode::from(super::EXIT_CONFIG)
    })
}

/// The service manager: systemd when it runs this host and the install goes to `/`; the supervisor otherwise.
fn manager(root: &Path) -> ServiceManager {
    if root == Path::new("/") && Path::new("/run/systemd/system").is_dir() {
        ServiceManager::Systemd
    } else {
        ServiceManager::Supervisor
    }
}

/// The stack, its layout and its plan.
fn prepare(args: &StackArgs) -> Result<(Loaded, Layout, Plan), ExitCode> {
    let loaded = load(&args.file)?;
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let root = std::path::absolute(&root).unwrap_or(root);
    let layout = Layout::new(&loaded.stack).with_root(&root);
    let plan = local::plan(&loaded, &layout, manager(&root));
    Ok((loaded, layout, plan))
}

/// `probenet status`'s exit code when nothing is installed (1 is "installed, something unhealthy"), as LSB init
/// scripts' `status` says "not running".
const NOT_INSTALLED: u8 = 3;

/// "here" or "below ROOT", for messages about an install.
fn below(layout: &Layout) -> String {
    if layout.root() == Path::new("/") {
        "on this host".to_owned()
    } else {
        format!("below {}", layout.root().display())
    }
}

fn client() -> Result<Client, ExitCode> {
    Client::new().map_err(|error| {
        eprintln!("probenet: cannot start the runtime: {error}");
        ExitCode::FAILURE
    })
}

fn current_exe() -> Result<PathBuf, ExitCode> {
    std::env::current_exe().map_err(|error| {
        eprintln!("probenet: cannot find the running binary: {error}");
        ExitCode::FAILURE
    })
}

fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("probenet: {error}");
    ExitCode::FAILURE
}

/// `probenet install`.
pub fn install(args: InstallArgs) -> ExitCode {
    let result = match args.target {
        Target::Local(args) => local_install(&args),
        Target::Kubernetes(args) => kubernetes(&args),
    };
    result.unwrap_or_else(|code| code)
}

fn local_install(args: &LocalArgs) -> Result<ExitCode, ExitCode> {
    let (loaded, layout, mut plan) = prepare(&args.stack)?;
    if args.plan {
        plan.compare_with_host();
        print!("{plan}");
        return Ok(ExitCode::SUCCESS);
    }
    let http = client()?;
    let mut stderr = std::io::stderr();
    let mut options = apply::Options {
        layout: layout.clone(),
        yes: args.yes,
        binary: current_exe()?,
        http: &http,
        progress: &mut stderr,
        health_timeout: apply::HEALTH_TIMEOUT,
    };
    apply::apply(&plan, &mut options).map_err(fail)?;
    // On a second install the scheduler was running: it picks up the config just written.
    status::wait_config(&layout, &plan.components, &http, Duration::from_secs(30)).map_err(fail)?;
    println!("probenet: stack {:?} is running", loaded.stack.name);
    println!("dashboard: {}", loaded.stack.scheduler.dashboard_url);
    println!("admin token (for the /api/v1 read API and /metrics): in {}", layout.admin_token().display());
    for line in dashboard_token_lines(&loaded, &layout) {
        println!("{line}");
    }
    println!("first results:");
    for line in status::first_results(&layout, &plan.components, &http, Duration::from_secs(30)) {
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What the end of an install says about the dashboard's read token: where the one it made is, or how to give
/// the checks config's own `dashboard:` section a token.
fn dashboard_token_lines(loaded: &probenet_install::Loaded, layout: &probenet_install::Layout) -> Vec<String> {
    let file = layout.dashboard_token().display().to_string();
    if loaded.config.dashboard.token.is_some() {
        vec!["the dashboard asks for the checks config's dashboard.token (open it once with ?token=...)".to_owned()]
    } else if probenet_install::files::dashboard_token_added(loaded) {
        vec![format!("dashboard token: in {file} (open the dashboard once with ?token=TOKEN; not the admin token)")]
    } else {
        vec![
            "the dashboard is off: beyond loopback it needs a read token, and the checks config's `dashboard:` \
             section sets none"
                .to_owned(),
            format!(
                "  a token is ready in {file}: add `token: \"${{file:{file}}}\"` under `dashboard:` and install again"
            ),
        ]
    }
}

fn kubernetes(args: &KubernetesArgs) -> Result<ExitCode, ExitCode> {
    let loaded = load(&args.file)?;
    if args.plan {
        let regions = loaded.stack.regions.keys().map(String::as_str);
        let mut secrets = probenet_install::kubernetes::Secrets::generate(regions).map_err(fail)?;
        // Only the objects are shown: the certificate's Secrets are there, made when rendering.
        secrets.tls = Some(probenet_install::kubernetes::TlsMaterial {
            ca_pem: String::new(),
            cert_pem: String::new(),
            key_pem: String::new(),
        });
        let manifests = probenet_install::kubernetes::manifests(&loaded, &secrets);
        print!("{}", manifests.plan(&args.out, probenet_install::cost::estimate(&loaded.config)));
        return Ok(ExitCode::SUCCESS);
    }
    let (_, written) = probenet_install::kubernetes::render(&loaded, &args.out, args.rotate).map_err(fail)?;
    println!("wrote {} files to {}; see {}", written.len(), args.out.display(), args.out.join("README.md").display());
    Ok(ExitCode::SUCCESS)
}

/// `probenet supervise`: runs until SIGTERM or SIGINT; SIGHUP re-reads the component file.
pub fn supervise(args: &SuperviseArgs) -> ExitCode {
    let root = std::path::absolute(&args.root).unwrap_or_else(|_| args.root.clone());
    let layout = Layout::for_root(&root);
    let control = Arc::new(Control::default());
    let signals = control.clone();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format!("cannot start the runtime: {error}")),
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
                (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
            else {
                let _ = ready_tx.send(false);
                return;
            };
            let _ = ready_tx.send(true);
            loop {
                tokio::select! {
                    _ = term.recv() => signals.stop.store(true, Ordering::SeqCst),
                    _ = int.recv() => signals.stop.store(true, Ordering::SeqCst),
                    _ = hup.recv() => signals.reload.store(true, Ordering::SeqCst),
                }
            }
        });
    });
    if !ready_rx.recv_timeout(Duration::from_secs(5)).unwrap_or(false) {
        return fail("cannot handle signals");
    }
    let http = match client() {
        Ok(http) => http,
        Err(code) => return code,
    };
    let user = apply::component_user(&layout);
    let mut log = std::io::stderr();
    match supervise::run(&layout, &control, &http, user, args.adopt, &mut log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(error),
    }
}

/// `probenet status`: exits 1 when a component is unhealthy.
pub fn status(args: &StatusArgs) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let (loaded, layout, plan) = prepare(&args.stack)?;
        if !uninstall::installed(&plan, &layout) {
            println!(
                "stack {:?} is not installed {}: no {}, no {}. `probenet install local -f {}{}` installs it.",
                loaded.stack.name,
                below(&layout),
                layout.etc().display(),
                layout.binary().display(),
                args.stack.file.display(),
                args.stack.root.as_ref().map(|root| format!(" --root {}", root.display())).unwrap_or_default(),
            );
            return Ok(ExitCode::from(NOT_INSTALLED));
        }
        let http = client()?;
        let status = status::status(&plan, &layout, &http);
        print!("{status}");
        Ok(if status.healthy() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    };
    run().unwrap_or_else(|code| code)
}

/// `probenet upgrade`.
pub fn upgrade(args: &UpgradeArgs) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let (_, layout, plan) = prepare(&args.stack)?;
        let http = client()?;
        let mut stderr = std::io::stderr();
        let binary = match &args.binary {
            Some(binary) => std::path::absolute(binary).unwrap_or_else(|_| binary.clone()),
            None => current_exe()?,
        };
        let mut options = apply::Options {
            layout,
            yes: false,
            binary: binary.clone(),
            http: &http,
            progress: &mut stderr,
            health_timeout: Duration::from_secs(args.health_timeout),
        };
        upgrade::upgrade(&plan, &binary, &mut options).map_err(fail)?;
        Ok(ExitCode::SUCCESS)
    };
    run().unwrap_or_else(|code| code)
}

/// `probenet uninstall`.
pub fn uninstall(args: &UninstallArgs) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let (loaded, layout, plan) = prepare(&args.stack)?;
        let data = layout.data();
        let purge_only = args.purge && data.exists();
        if !(uninstall::installed(&plan, &layout) || purge_only) {
            let kept = if data.exists() {
                format!("; its data is still in {} (`--purge` removes it)", data.display())
            } else {
                String::new()
            };
            eprintln!(
                "probenet: nothing to uninstall: stack {:?} is not installed {}{kept}",
                loaded.stack.name,
                below(&layout)
            );
            return Ok(ExitCode::SUCCESS);
        }
        let removed = uninstall::uninstall(&plan, &layout, args.purge).map_err(fail)?;
        for path in &removed {
            eprintln!("probenet: removed {}", path.display());
        }
        if !args.purge {
            eprintln!("probenet: kept the data in {} (--purge removes it)", layout.data().display());
        }
        Ok(ExitCode::SUCCESS)
    };
    run().unwrap_or_else(|code| code)
}

/// `probenet vmbackup`: a VictoriaMetrics backup of a local install (a snapshot, vmbackup of it, the snapshot
/// deleted), once or every `--every` seconds. Exits 1 when the (last) backup failed.
pub fn vmbackup(args: &VmbackupArgs) -> ExitCode {
    let client = match Client::new() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("probenet: cannot start the HTTP client: {error}");
            return ExitCode::FAILURE;
        }
    };
    let job = probenet_install::vmbackup::Job {
        store: args.store.clone(),
        ca: args.ca.clone(),
        basic_auth: args.user.clone().zip(args.password_file.clone()),
        vmbackup: args.vmbackup.clone(),
        timeout: probenet_install::vmbackup::TIMEOUT,
    };
    let mut stdout = std::io::stdout();
    loop {
        let done = probenet_install::vmbackup::run(&job, &client, &mut stdout);
        if let Err(error) = &done {
            eprintln!("probenet: vmbackup failed: {error}");
        }
        let Some(every) = args.every else {
            return if done.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
        };
        // Until the supervisor stops it (SIGTERM).
        std::thread::sleep(Duration::from_secs(every.max(60)));
    }
}
