//! `probenet up`: the whole network on one machine for a first try and for small users: the scheduler, one
//! in-process prober per declared region, and with `--demo` a local service to probe. Loopback by default.

pub mod demo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use probenet_scheduler::tokens::Scope;

/// The quick start built into the binary: `examples/quickstart.yaml`, whose targets are the demo service's.
pub const QUICKSTART: &str = include_str!("../../../examples/quickstart.yaml");

/// The port the scheduler listens on when `--listen` names only an address.
const DEFAULT_PORT: u16 = 7070;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config files or directories (default: the built-in quick start, examples/quickstart.yaml, which probes
    /// the demo service; it is written to DATA/up/quickstart.yaml at each start).
    #[arg(short = 'c', long = "config")]
    config: Vec<PathBuf>,
    /// Where the scheduler listens (ADDRESS:PORT, or an address alone for port 7070). On a loopback address it
    /// speaks plain HTTP; elsewhere HTTPS with its own CA, and the dashboard needs `dashboard.token`.
    #[arg(long, default_value = "127.0.0.1:7070", value_parser = parse_listen)]
    listen: SocketAddr,
    /// The data directory: certificates, tokens, spools.
    #[arg(long, default_value = "probenet-data")]
    data: PathBuf,
    /// Also start the demo service the quick start probes, on 127.0.0.1: ports 8000 (HTTP), 8443 (HTTPS), 8025
    /// (SMTP) and 8053 (DNS), or free ports when one of those is taken (the built-in quick start follows them).
    #[arg(long)]
    demo: bool,
    /// The demo service's ports: BASE (HTTP), BASE+1 (HTTPS), BASE+2 (SMTP) and BASE+3 (DNS); a port in use is
    /// an error.
    #[arg(long, value_name = "BASE", requires = "demo")]
    demo_port: Option<u16>,
    /// Stop by itself after this long (for scripts); default: run until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    probenet_checks::duration::parse(text)
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match text.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, DEFAULT_PORT)),
        Err(_) => Err(format!("{text:?} is not an address such as 127.0.0.1:7070 or 0.0.0.0")),
    }
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
    // Tokens, results and the spool live here: the owner's alone (0700), also when it existed before.
    probenet_scheduler::files::create_private_dir(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let demo = match args.demo {
        true => Some(start_demo(args).await?),
        false => None,
    };
    let paths = match args.config.is_empty() {
        true => vec![write_quickstart(&args.data, demo.as_ref())?],
        false => args.config.clone(),
    };
    let config = match probenet_checks::load_paths(&paths) {
        Ok(config) => config,
        Err(errors) => {
            super::print_errors(&errors.0);
            return Ok(ExitCode::from(super::EXIT_CONFIG));
        }
    };

    // Every token first, so the scheduler starts knowing them all (a prober never meets one it has not read).
    let admin = stored_token(&args.data, "admin", &Scope::Admin)?;
    let mut region_tokens = Vec::new();
    for region in config.regions.keys() {
        let token = stored_token(&args.data, &format!("region-{region}"), &Scope::Region(region.clone()))?;
        region_tokens.push((region.clone(), token));
    }

    let plain = args.listen.ip().is_loopback();
    let scheduler = probenet_scheduler::start(probenet_scheduler::Options {
        config: paths.clone(),
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
    .await
    .map_err(|error| match error {
        probenet_scheduler::Error::Listen { .. } => {
            anyhow::anyhow!("{error}; choose another address or port with --listen ADDRESS:PORT")
        }
        other => other.into(),
    })?;
    // Probers and the status table reach the scheduler on loopback (its certificate names 127.0.0.1, and
    // 0.0.0.0 is nobody's address).
    let url = local_url(&scheduler.url(), args.listen);
    let reloads = tokio::spawn(super::print_reloads(scheduler.reloads()));

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut probers = tokio::task::JoinSet::new();
    for (region, token) in region_tokens {
        let mut options = probenet_prober::Options::new(url.clone(), region.clone(), token);
        options.name = format!("up-{region}");
        options.spool = args.data.join("spool").join(&region);
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
    if args.config.is_empty() {
        println!("config: the built-in quick start, written to {} (copy it to start your own)", paths[0].display());
        if demo.is_none() {
            println!("its targets are the demo service's: add --demo to start it");
        }
    }
    match (config.dashboard.token.is_some(), plain) {
        (true, _) => println!("dashboard: {url}/ (open it once with ?token=YOUR_TOKEN)"),
        (false, true) => println!("dashboard: {url}/"),
        (false, false) => println!(
            "dashboard: off: beyond loopback the dashboard needs a read token, and the config sets no \
             `dashboard.token`; add `token: \"${{env:DASHBOARD_TOKEN}}\"` under `dashboard:` in the config, set \
             DASHBOARD_TOKEN, and start again ({url}/ says the same)"
        ),
    }
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

/// Starts the demo service: on `--demo-port`'s ports, or the quick start's, or (with the built-in quick
/// start, which follows them) free ports when one of those is taken. A port in use is otherwise an error
/// naming it.
async fn start_demo(args: &Args) -> anyhow::Result<demo::Demo> {
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let ca = args.data.join("demo-ca.pem");
    let ports = match args.demo_port {
        Some(base) => demo::Ports::from_base(base)
            .with_context(|| format!("--demo-port {base}: the demo needs 4 ports from BASE, up to 65535"))?,
        None => demo::Ports::QUICKSTART,
    };
    let demo = match demo::start(ip, ports, &ca).await {
        Ok(demo) => demo,
        Err(error) => {
            let busy = error.downcast_ref::<demo::BindError>().filter(|bind| bind.in_use()).is_some();
            match (busy, args.demo_port, args.config.is_empty()) {
                (true, None, true) => {
                    println!("{error}: the demo uses free ports instead, and the built-in quick start follows them");
                    demo::start(ip, demo::Ports::ANY, &ca).await?
                }
                (true, None, false) => anyhow::bail!(
                    "{error}; stop that program, or give the demo other ports with --demo-port BASE and point \
                     your config's targets at them, or leave out -c: the built-in quick start follows the ports \
                     the demo picks"
                ),
                (true, Some(_), _) => {
                    anyhow::bail!("{error}; choose other ports with --demo-port BASE, or leave it out")
                }
                (false, _, _) => return Err(error),
            }
        }
    };
    println!("demo service: http://{} https://{} smtp {} dns {}/udp", demo.http, demo.https, demo.smtp, demo.dns);
    Ok(demo)
}

/// Writes the built-in quick start to `DATA/up/quickstart.yaml`, its targets on the demo's ports when it runs,
/// and returns the path (the scheduler reads it there, and reloads it when it is edited).
fn write_quickstart(data: &Path, demo: Option<&demo::Demo>) -> anyhow::Result<PathBuf> {
    let mut text = String::from(
        "# Written by `probenet up` at each start: its built-in quick start (examples/quickstart.yaml), with the\n\
         # demo service's ports. Edits apply at once but are lost at the next start: copy it to keep them.\n",
    );
    let mut body = QUICKSTART.to_owned();
    if let Some(demo) = demo {
        let fixed = demo::Ports::QUICKSTART;
        for (port, addr) in
            [(fixed.http, demo.http), (fixed.https, demo.https), (fixed.smtp, demo.smtp), (fixed.dns, demo.dns)]
        {
            body = body.replace(&format!("127.0.0.1:{port}"), &addr.to_string());
        }
    }
    text.push_str(&body);
    let path = data.join("up").join("quickstart.yaml");
    probenet_scheduler::files::create_private_dir(&data.join("up"))
        .with_context(|| format!("creating {}", data.join("up").display()))?;
    write_private(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `url` with a loopback host when the scheduler listens on every address.
fn local_url(url: &str, listen: SocketAddr) -> String {
    match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => url.replacen(&listen.ip().to_string(), "127.0.0.1", 1),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => url.replacen("[::]", "[::1]", 1),
        _ => url.to_owned(),
    }
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

/// One line per (check, region): state, duration and reason of the last result; then the open alerts (with
/// their failing regions) and each SLO's error budget, when there are any.
async fn print_status(client: &reqwest::Client, url: &str, admin: &str) {
    let get = |path: &str| {
        let request = client.get(format!("{url}{path}")).bearer_auth(admin);
        async move { request.send().await.and_then(reqwest::Response::error_for_status).ok()?.json().await.ok() }
    };
    let Some(checks) = get("/api/v1/checks").await else { return };
    let alerts: serde_json::Value = get("/api/v1/alerts").await.unwrap_or_default();
    print!("{}", status_text(&checks, &alerts, now_ms()));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// The status tables: checks from `/api/v1/checks`, alerts and SLOs from `/api/v1/alerts`.
fn status_text(checks: &serde_json::Value, alerts: &serde_json::Value, now_ms: i64) -> String {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or("-").to_owned();
    let list = |value: &serde_json::Value| value.as_array().cloned().unwrap_or_default();
    let mut rows = vec![["CHECK", "REGION", "STATE", "DURATION", "REASON"].map(str::to_owned).to_vec()];
    for entry in &list(checks) {
        let outcome = &entry["last_result"]["outcome"];
        rows.push(vec![
            text(&entry["check"]),
            text(&entry["region"]),
            text(&entry["state"]).to_uppercase(),
            outcome["duration_seconds"].as_f64().map_or_else(|| "-".to_owned(), |seconds| format!("{seconds:.3}s")),
            text(&outcome["reason"]),
        ]);
    }
    let mut out = String::from("\n");
    out.push_str(&columns(&rows));
    let open = list(&alerts["alerts"]);
    if !open.is_empty() {
        let mut rows = vec![["ALERT", "STATE", "REGIONS", "SINCE"].map(str::to_owned).to_vec()];
        for alert in &open {
            let regions: Vec<String> = list(&alert["regions"]).iter().map(text).collect();
            let since = alert["since_ms"].as_i64().map_or_else(|| "-".to_owned(), |since| age(now_ms - since));
            rows.push(vec![
                text(&alert["key"]),
                text(&alert["state"]).to_uppercase(),
                format!(
                    "{} ({} of {})",
                    regions.join(", "),
                    regions.len(),
                    alert["total_regions"].as_u64().unwrap_or(0)
                ),
                since,
            ]);
        }
        out.push('\n');
        out.push_str(&columns(&rows));
    }
    let slos = list(&alerts["slos"]);
    if !slos.is_empty() {
        let mut rows = vec![["SLO", "OBJECTIVE", "WINDOW", "RUNS", "BUDGET LEFT"].map(str::to_owned).to_vec()];
        for slo in &slos {
            let runs = slo["window_counts"]["total"].as_u64().unwrap_or(0);
            let budget = match runs {
                0 => "-".to_owned(),
                _ => slo["budget_remaining"].as_f64().map_or_else(
                    || "-".to_owned(),
                    |left| if left < 0.0 { "exhausted".to_owned() } else { format!("{:.0}%", left * 100.0) },
                ),
            };
            rows.push(vec![
                text(&slo["check"]),
                slo["objective"].as_f64().map_or_else(|| "-".to_owned(), |objective| format!("{objective}%")),
                age(slo["window_ms"].as_i64().unwrap_or(0)),
                runs.to_string(),
                budget,
            ]);
        }
        out.push('\n');
        out.push_str(&columns(&rows));
    }
    out
}

/// A duration in ms as `45s`, `12m`, `3h` or `2d`.
fn age(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// Rows as left-aligned columns, two spaces apart, one a line.
fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..count).map(|i| rows.iter().map(|row| row[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
