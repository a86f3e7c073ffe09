//! `probenet up`: the whole network on one machine for a first try and for small users: the scheduler, one
//! in-process prober per declared region, and with `--demo` a local service to probe. Loopback by default.

pub mod demo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use probenet_scheduler::tokens::Scope;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config files or directories.
    #[arg(short = 'c', long = "config", default_value = "examples/quickstart.yaml")]
    config: Vec<PathBuf>,
    /// Where the scheduler listens. On a loopback address it speaks plain HTTP; elsewhere HTTPS with its own CA.
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// The data directory: certificates, tokens, spools.
    #[arg(long, default_value = "probenet-data")]
    data: PathBuf,
    /// Also start the demo service the quick-start config probes (127.0.0.1 ports 8000, 8443, 8025, 8053).
    #[arg(long)]
    demo: bool,
    /// Stop by itself after this long (for scripts); default: run until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    probenet_checks::duration::parse(text)
}

pub fn main(args: &Args) -> ExitCode {
    super::private_files();
    // Warnings only (a failed notification, a prober that lost its scheduler): the status table is the news.
    super::init_logging("warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("probenet: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(up(args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("probenet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn up(args: &Args) -> anyhow::Result<ExitCode> {
    let config = match probenet_checks::load_paths(&args.config) {
        Ok(config) => config,
        Err(errors) => {
            super::print_errors(&errors.0);
            return Ok(ExitCode::from(super::EXIT_CONFIG));
        }
    };
    // Tokens, results and the spool live here: the owner's alone (0700), also when it existed before.
    probenet_scheduler::files::create_private_dir(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let _demo = match args.demo {
        true => {
            let ip = std::net::IpAddr::from([127, 0, 0, 1]);
            let demo = demo::start(ip, demo::Ports::QUICKSTART, &args.data.join("demo-ca.pem")).await?;
            println!(
                "demo service: http://{} https://{} smtp {} dns {}/udp",
                demo.http, demo.https, demo.smtp, demo.dns
            );
            Some(demo)
        }
        false => None,
    };

    let plain = args.listen.ip().is_loopback();
    let scheduler = probenet_scheduler::start(probenet_scheduler::Options {
        config: args.config.clone(),
        listen: args.listen,
        data: args.data.clone(),
        tls: if plain { probenet_scheduler::TlsMode::PlainHttp } else { probenet_scheduler::TlsMode::Auto },
        sans: Vec::new(),
        dashboard_url: None,
        metrics_listen: None,
        limits: probenet_scheduler::server::Limits::for_this_process(),
        cluster: None,
        store_dir: None,
        artifacts_in_database: false,
        per_check_metrics: false,
    })
    .await?;
    let url = scheduler.url();
    let reloads = tokio::spawn(super::print_reloads(scheduler.reloads()));
    let admin = stored_token(&args.data, "admin", &Scope::Admin)?;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut probers = tokio::task::JoinSet::new();
    for region in config.regions.keys() {
        let token = stored_token(&args.data, &format!("region-{region}"), &Scope::Region(region.clone()))?;
        let mut options = probenet_prober::Options::new(url.clone(), region.clone(), token);
        options.name = format!("up-{region}");
        options.spool = args.data.join("spool").join(region);
        options.ca = (!plain).then(|| args.data.join("ca.pem"));
        let mut stopped = stopped.clone();
        let region = region.clone();
        probers.spawn(async move {
            let result = probenet_prober::run(options, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await;
            (region, result)
        });
    }
    println!("probenet is up: scheduler {url}, {} checks, {} regions", config.checks.len(), config.regions.len());
    let login = if config.dashboard.token.is_some() { " (open it once with ?token=YOUR_TOKEN)" } else { "" };
    println!("dashboard: {url}/{login}");
    if let Some(fingerprint) = scheduler.fingerprint() {
        println!("ca fingerprint: sha256:{fingerprint} ({})", args.data.join("ca.pem").display());
    }
    println!(
        "read API: curl -H \"Authorization: Bearer $(cat {})\" {url}/api/v1/checks",
        token_path(&args.data, "admin").display()
    );
    println!("stop with Ctrl-C");

    let every = status_interval(&config);
    let client = status_client(&args.data, plain)?;
    let until = async {
        match args.duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => print_status(&client, &url, &admin).await,
            _ = &mut until => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate() => break,
        }
    }
    println!("stopping: probers hand their work back and flush their results");
    let _ = stop.send(true);
    let mut failed = false;
    while let Some(joined) = probers.join_next().await {
        if let Ok((region, Err(error))) = joined {
            eprintln!("probenet: the prober of {region} stopped with an error: {error}");
            failed = true;
        }
    }
    print_status(&client, &url, &admin).await;
    reloads.abort();
    scheduler.shutdown().await;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

fn token_path(data: &Path, name: &str) -> PathBuf {
    data.join("up").join(format!("{name}.token"))
}

/// A token `up` made on an earlier start, or a new one (stored 0600 next to the data, for the next start).
fn stored_token(data: &Path, name: &str, scope: &Scope) -> anyhow::Result<String> {
    let path = token_path(data, name);
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_owned();
        if probenet_scheduler::tokens::Tokens::open(data).ok().and_then(|tokens| tokens.verify(&token)).as_ref()
            == Some(scope)
        {
            return Ok(token);
        }
    }
    let token = probenet_scheduler::tokens::create(data, scope)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

/// How often the status table is printed: the shortest check interval, within 5 s to 60 s.
fn status_interval(config: &probenet_checks::Config) -> Duration {
    config
        .checks
        .iter()
        .filter_map(|check| match check.schedule {
            probenet_checks::Schedule::Every(interval) => Some(interval),
            probenet_checks::Schedule::Cron(_) => None,
        })
        .min()
        .unwrap_or(Duration::from_secs(30))
        .clamp(Duration::from_secs(5), Duration::from_secs(60))
}

fn status_client(data: &Path, plain: bool) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if !plain {
        let pem = std::fs::read(data.join("ca.pem"))?;
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem)?]);
    }
    Ok(builder.build()?)
}

/// One line per (check, region): state, duration and reason of the last result.
async fn print_status(client: &reqwest::Client, url: &str, admin: &str) {
    let response = client.get(format!("{url}/api/v1/checks")).bearer_auth(admin).send().await;
    let Ok(checks) = response.and_then(reqwest::Response::error_for_status) else { return };
    let Ok(checks) = checks.json::<Vec<serde_json::Value>>().await else { return };
    let mut rows = vec![["CHECK", "REGION", "STATE", "DURATION", "REASON"].map(str::to_owned).to_vec()];
    for entry in &checks {
        let outcome = &entry["last_result"]["outcome"];
        let text = |value: &serde_json::Value| value.as_str().unwrap_or("-").to_owned();
        rows.push(vec![
            text(&entry["check"]),
            text(&entry["region"]),
            text(&entry["state"]).to_uppercase(),
            outcome["duration_seconds"].as_f64().map_or_else(|| "-".to_owned(), |seconds| format!("{seconds:.3}s")),
            text(&outcome["reason"]),
        ]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|row| row[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::from("\n");
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    print!("{out}");
}
