//! One module per subcommand; each returns the process exit code.

use std::process::ExitCode;

mod archive;
mod export;
mod import;
mod install;
mod notify;
mod prober;
mod report;
mod run;
mod scheduler;
mod schema;
mod store;
mod token;
mod up;
mod validate;

/// Exit code for a config or usage error (clap uses 2 for usage errors too).
pub const EXIT_CONFIG: u8 = 2;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check config files and directories: a summary, or every error as FILE:LINE:COL: PATH: MESSAGE.
    Validate(validate::Args),
    /// The whole network on this machine: the scheduler, a prober per region, and with --demo a service to probe.
    Up(up::Args),
    /// Run checks once from this machine and print their results.
    Run(run::Args),
    /// Print the JSON Schema of the config (for editors), or the Markdown reference.
    Schema(schema::Args),
    /// Run the scheduler: hands checks to probers over HTTPS and collects their results.
    Scheduler(scheduler::Args),
    /// Manage bearer tokens of probers and of the admin API.
    Token(token::Args),
    /// The embedded store's backups in the bucket: `store backups` lists them, `store restore` brings one back.
    Store(store::Args),
    /// Export what the config means for other tools: `export rules` (Prometheus alerting rules).
    Export(export::Args),
    /// Write a probenet config from blackbox_exporter's, Gatus's or Uptime Kuma's, listing what was not carried over.
    Import(import::Args),
    /// Try a configured notifier: `notify test NAME -c PATH` sends one test notification and says if it arrived.
    Notify(notify::Args),
    /// The uptime ledger of a window from the scheduler's store: per check and region, by time (docs/uptime.md).
    Report(report::Args),
    /// Run the checks a scheduler assigns to this machine, in one region, until SIGTERM or Ctrl-C.
    Prober(prober::Args),
    /// Deploy the whole stack: `install local` on this host, `install kubernetes` as manifests.
    Install(install::InstallArgs),
    /// Keep a local install's components running without systemd (started by `probenet install local`).
    Supervise(install::SuperviseArgs),
    /// A local install's components (health, version), the last result per region, and the cost.
    Status(install::StatusArgs),
    /// Replace a local install's probenet binary, restarting components in a safe order; rolls back on failure.
    Upgrade(install::UpgradeArgs),
    /// Remove what `probenet install local` created (the data only with --purge).
    Uninstall(install::UninstallArgs),
    /// Back up a local install's VictoriaMetrics with vmbackup (run by its timer, or by the supervisor).
    Vmbackup(install::VmbackupArgs),
    /// The long-term archive of raw results in the bucket: `archive list`, `archive restore --from --to --into`.
    Archive(archive::Args),
}

pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Validate(args) => validate::main(&args),
        Command::Run(args) => run::main(&args),
        Command::Up(args) => up::main(&args),
        Command::Schema(args) => schema::main(&args),
        Command::Scheduler(args) => scheduler::main(args),
        Command::Token(args) => token::main(args),
        Command::Store(args) => store::main(args),
        Command::Prober(args) => prober::main(&args),
        Command::Report(args) => report::main(&args),
        Command::Export(args) => export::main(&args),
        Command::Import(args) => import::main(&args),
        Command::Notify(args) => notify::main(&args),
        Command::Install(args) => install::install(args),
        Command::Supervise(args) => install::supervise(&args),
        Command::Status(args) => install::status(&args),
        Command::Upgrade(args) => install::upgrade(&args),
        Command::Uninstall(args) => install::uninstall(&args),
        Command::Vmbackup(args) => install::vmbackup(&args),
        Command::Archive(args) => archive::main(args),
    }
}

/// Prints every config error, one a line, and a count.
fn print_errors(errors: &[probenet_checks::ConfigError]) {
    for error in errors {
        eprintln!("{error}");
    }
    let plural = if errors.len() == 1 { "" } else { "s" };
    eprintln!("probenet: {} error{plural} in the config; nothing was applied", errors.len());
}

/// Logs to stderr; `RUST_LOG` picks the level (default: `default`, such as `info`).
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// Prints every config reload of a running scheduler on stderr, until it stops: a refused one with its errors
/// located as `probenet validate` prints them and a line saying the previous config is still in use, an applied
/// one as one `reloaded:` line.
async fn print_reloads(
    mut reloads: tokio::sync::watch::Receiver<Option<std::sync::Arc<probenet_scheduler::state::Reload>>>,
) {
    while reloads.changed().await.is_ok() {
        let reload = reloads.borrow_and_update().clone();
        if let Some(reload) = reload {
            eprint!("{}", reload_text(&reload));
        }
    }
}

/// What the terminal shows of a reload, one line or more, each ending in a newline.
fn reload_text(reload: &probenet_scheduler::state::Reload) -> String {
    use probenet_scheduler::state::ReloadOutcome;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match &reload.outcome {
        ReloadOutcome::Applied { checks, added, removed } => {
            let mut changes = Vec::new();
            if !added.is_empty() {
                changes.push(format!("added {}", added.join(", ")));
            }
            if !removed.is_empty() {
                changes.push(format!("removed {}", removed.join(", ")));
            }
            let changes = if changes.is_empty() { String::new() } else { format!(" ({})", changes.join("; ")) };
            format!("probenet: reloaded: {}{changes}\n", plural(*checks, "check"))
        }
        ReloadOutcome::Unchanged { checks } => {
            format!("probenet: reloaded: {}, nothing changed\n", plural(*checks, "check"))
        }
        ReloadOutcome::Rejected { errors } => {
            let mut out: String = errors.iter().map(|error| format!("{error}\n")).collect();
            out.push_str(&format!(
                "probenet: config reload refused ({} in the config); the previous config is still in use\n",
                plural(errors.len(), "error")
            ));
            out
        }
    }
}

/// Files the long-running commands create (tokens, the store, the spool, logs of results) are their owner's
/// alone: umask 077, whatever the shell's.
pub fn private_files() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}
