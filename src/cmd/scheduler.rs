//! `probenet scheduler`: the control plane that hands checks to probers and collects their results.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use probenet_scheduler::{Error, Options, TlsMode};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config files or directories (every *.yaml inside); reloaded on SIGHUP and when they change.
    #[arg(short = 'c', long = "config", value_name = "PATH", required = true)]
    config: Vec<PathBuf>,
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7443")]
    listen: SocketAddr,
    /// The data directory: the CA and server certificate it makes, and tokens.json.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Serve this certificate chain (PEM) instead of making one.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// An extra DNS name or IP address for the certificate it makes (repeat for several).
    #[arg(long = "san", value_name = "NAME", conflicts_with = "tls_cert")]
    sans: Vec<String>,
    /// The dashboard's public base URL, for links in alert notifications (such as https://probenet.example).
    #[arg(long, value_name = "URL")]
    dashboard_url: Option<String>,
    /// Also serve /metrics (and /healthz) in plain HTTP without a token on this address, for a scraper (on the
    /// API port /metrics needs an admin token). Keep it on loopback or a private network.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Serve plain HTTP instead of HTTPS; only allowed on a loopback address.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "sans"])]
    plain_http: bool,
}

pub fn main(args: Args) -> ExitCode {
    super::private_files();
    init_logging();
    let tls = match (args.plain_http, args.tls_cert, args.tls_key) {
        (true, _, _) => TlsMode::PlainHttp,
        (false, Some(cert), Some(key)) => TlsMode::Files { cert, key },
        _ => TlsMode::Auto,
    };
    let options = Options {
        config: args.config,
        listen: args.listen,
        data: args.data,
        tls,
        sans: args.sans,
        dashboard_url: args.dashboard_url,
        metrics_listen: args.metrics_listen,
        limits: probenet_scheduler::server::Limits::for_this_process(),
        cluster: None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("probenet: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(options))
}

async fn serve(options: Options) -> ExitCode {
    let own_ca = options.tls == TlsMode::Auto;
    let running = match probenet_scheduler::start(options).await {
        Ok(running) => running,
        Err(Error::Config(errors)) => {
            super::print_errors(&errors.0);
            return ExitCode::from(super::EXIT_CONFIG);
        }
        Err(error) => {
            eprintln!("probenet: {error}");
            return ExitCode::FAILURE;
        }
    };
    match running.fingerprint() {
        Some(fingerprint) if own_ca => println!("ca fingerprint: sha256:{fingerprint}"),
        Some(fingerprint) => println!("certificate fingerprint: sha256:{fingerprint}"),
        None => println!("plain HTTP: for a local try only"),
    }
    println!("listening on {}", running.url());
    stop_signal().await;
    eprintln!("probenet: stopping");
    running.shutdown().await;
    ExitCode::SUCCESS
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Logs to stderr; `RUST_LOG` picks the level (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}
