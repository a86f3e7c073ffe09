//! `probenet prober --scheduler URL[,URL...] --region R --token-file F`: run the checks the scheduler assigns
//! to this machine until SIGTERM or Ctrl-C, then hand the work back and flush every result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use probenet_checks::Kind;
use probenet_checks::config::parse_size;
use probenet_prober::{Error, Limits, Options};
use tokio::sync::watch;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scheduler's URL, such as https://scheduler.example.com:7443 (plain http:// only to a loopback
    /// address), or the URLs of its replicas separated by commas (https://a:7443,https://b:7443). The prober
    /// sticks to one while it answers and moves to the next on a connection error, a timeout or a 5xx. A
    /// name that resolves to several addresses counts as one replica per address.
    /// The flag may also be repeated, one URL each.
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',', required = true)]
    scheduler: Vec<String>,
    /// The region this prober probes from; its token must be bound to it.
    #[arg(long, value_name = "REGION")]
    region: String,
    /// A file holding the prober's token (as printed by `probenet token create`); surrounding whitespace
    /// is ignored.
    #[arg(long, value_name = "FILE")]
    token_file: PathBuf,
    /// A PEM file of the CA certificates to trust for the scheduler (default: the system's roots), such as
    /// the CA the scheduler made in its data directory.
    #[arg(long, value_name = "CA.pem")]
    ca: Option<PathBuf>,
    /// The prober's name, unique in the network (default: the host name and the process id).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Where results wait while the scheduler is unreachable.
    #[arg(long, value_name = "DIR", default_value = "probenet-spool")]
    spool: PathBuf,
    /// The spool's bound (such as 256MiB or 1GiB); when full, its oldest results are dropped and counted.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    spool_max_bytes: u64,
    /// How many checks of a kind may run at once, as KIND=N (repeat for several kinds). Defaults: http, dns,
    /// tcp, websocket and grpc 256, tls and api 128, icmp 64, browser 2.
    #[arg(long = "limit", value_name = "KIND=N", value_parser = Limits::parse_override)]
    limits: Vec<(Kind, usize)>,
    /// Serve Prometheus `/metrics` (the latest result of each assigned check, blackbox_exporter names, and the
    /// prober's health) and `/healthz` on this address, such as 127.0.0.1:9470.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// The least time between two traceroutes attached to failed runs of one (check, region) pair, such as
    /// 10m or 1h; 0 captures none.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_interval)]
    evidence_interval: std::time::Duration,
}

pub fn main(args: &Args) -> ExitCode {
    super::private_files();
    init_logging();
    let token = match read_token(&args.token_file) {
        Ok(token) => token,
        Err(message) => {
            eprintln!("probenet: {message}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let mut options = Options::new(args.scheduler.join(","), &args.region, token);
    options.ca = args.ca.clone();
    if let Some(name) = &args.name {
        options.name = name.clone();
    }
    options.spool = args.spool.clone();
    options.spool_max_bytes = args.spool_max_bytes;
    options.limits = args.limits.iter().cloned().collect::<HashMap<_, _>>();
    options.metrics_listen = args.metrics_listen;
    options.evidence.interval = (!args.evidence_interval.is_zero()).then_some(args.evidence_interval);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("probenet: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let (signals_tx, signals) = watch::channel(0u32);
        tokio::spawn(count_signals(signals_tx));
        let mut first = signals.clone();
        let shutdown = async move {
            let _ = first.wait_for(|count| *count >= 1).await;
            tracing::info!("stopping: handing the work back and flushing results (signal again to quit at once)");
        };
        let mut second = signals;
        tokio::select! {
            result = probenet_prober::run(options, shutdown) => match result {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("probenet: {error}");
                    match error {
                        Error::Options(_) | Error::Client(_) | Error::Spool(_) => ExitCode::from(super::EXIT_CONFIG),
                        Error::Unauthorized(_) | Error::Rejected(_) => ExitCode::FAILURE,
                    }
                }
            },
            _ = second.wait_for(|count| *count >= 2) => {
                eprintln!("probenet: interrupted again; results not yet sent or spooled are lost");
                ExitCode::from(130)
            }
        }
    })
}

/// Counts SIGTERM and SIGINT (Ctrl-C) as they come.
async fn count_signals(count: watch::Sender<u32>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot listen for signals; stop the prober with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        count.send_modify(|count| *count += 1);
    }
}

fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read the token file {}: {error}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!("the token file {} is readable by other users; chmod 600 it", path.display());
        }
    }
    Ok(token.to_owned())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// A duration as in the config (`10m`, `1h`), or `0`.
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    if text.trim() == "0" { Ok(std::time::Duration::ZERO) } else { probenet_checks::duration::parse(text) }
}
