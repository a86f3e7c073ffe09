//! `probenet scheduler`: the control plane that hands checks to probers and collects their results.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use probenet_scheduler::cluster::ReplicaOptions;
use probenet_scheduler::store::Location;
use probenet_scheduler::{ClusterOptions, Error, Options, TlsMode};

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
    /// Where state lives: `sqlite:PATH` (default: the embedded store in DATA/store) or
    /// `postgres://USER@HOST:PORT/DB?sslmode=require` to run as one of several replicas sharing that database.
    /// The password comes from PGPASSWORD or --store-password-file, never from the URL.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// A file holding the PostgreSQL password.
    #[arg(long, value_name = "FILE")]
    store_password_file: Option<PathBuf>,
    /// The CA (PEM) that signed the PostgreSQL server's certificate (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    store_ca: Option<PathBuf>,
    /// This replica's name among the replicas (default: the host name and the listen port).
    #[arg(long, value_name = "NAME")]
    replica_name: Option<String>,
    /// The URL probers and readers reach this replica at, as shown in /api/v1/cluster (default: from --listen).
    #[arg(long, value_name = "URL")]
    advertise_url: Option<String>,
    /// The leader lease in seconds: a replica that stops renewing it is replaced within this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    lease: f64,
    /// Replicated, without `objects` in the config: keep artifacts (browser screenshots) in PostgreSQL, where
    /// every replica reads them. Without a bucket and without this flag, replicas refuse to start.
    #[arg(long)]
    artifacts_in_database: bool,
    /// Adds every (check, region) pair's series to this scheduler's `/metrics` (off: they are many; remote
    /// write or the probers' `/metrics` carry them). Its own health and totals are always there.
    #[arg(long)]
    metrics_per_check: bool,
}

pub fn main(args: Args) -> ExitCode {
    super::private_files();
    super::init_logging("info");
    let tls = match (args.plain_http, args.tls_cert, args.tls_key) {
        (true, _, _) => TlsMode::PlainHttp,
        (false, Some(cert), Some(key)) => TlsMode::Files { cert, key },
        _ => TlsMode::Auto,
    };
    let location = match args.store.as_deref().map(|text| {
        probenet_scheduler::store::Location::parse(text, args.store_password_file.as_deref(), args.store_ca.as_deref())
    }) {
        Some(Err(error)) => {
            eprintln!("probenet: {error}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
        Some(Ok(location)) => Some(location),
        None => None,
    };
    if !(args.lease.is_finite() && (1.0..=300.0).contains(&args.lease)) {
        eprintln!("probenet: --lease takes 1 to 300 seconds");
        return ExitCode::from(super::EXIT_CONFIG);
    }
    let (cluster, store_dir) = match location {
        Some(Location::Postgres(database)) => {
            let name = args.replica_name.clone().unwrap_or_else(|| format!("{}:{}", host_name(), args.listen.port()));
            let replica = ReplicaOptions {
                name,
                url: args.advertise_url.clone().unwrap_or_default(),
                lease: std::time::Duration::from_secs_f64(args.lease),
            };
            (Some(ClusterOptions { database: *database, pool_size: 16, replica }), None)
        }
        Some(Location::Embedded(dir)) => (None, Some(dir)),
        None => (None, None),
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
        cluster,
        store_dir,
        artifacts_in_database: args.artifacts_in_database,
        per_check_metrics: args.metrics_per_check,
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
    let reloads = tokio::spawn(super::print_reloads(running.reloads()));
    stop_signal().await;
    reloads.abort();
    eprintln!("probenet: stopping");
    running.shutdown().await;
    ExitCode::SUCCESS
}

/// The machine's host name (a replica's default name), or `scheduler`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "scheduler".to_owned())
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
