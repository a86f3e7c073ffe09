//! `probenet report`: the uptime ledger of a window, read from the scheduler's store, as CSV, JSON or HTML.
//! The policy (what counts as down, unknown or maintenance) is docs/uptime.md; its version is in every report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use probenet_alerting::ledger::ImpairedSpan;
use probenet_alerting::ledger::render::{self, parse_time};
use probenet_alerting::state::AlertState as _;
use probenet_exporters::store::{PostgresStore, SqliteStore, Store, StoreOptions};
use probenet_scheduler::store::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// One row per check (the quorum view) and one per check and region.
    Csv,
    /// Everything: figures, downtime and maintenance intervals, the policy version.
    Json,
    /// A self-contained page.
    Html,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config files or directories: the checks (regions, intervals), the alert rules (quorum, retries) and the
    /// maintenance windows the report applies.
    #[arg(short = 'c', long = "config", value_name = "PATH", required = true)]
    config: Vec<PathBuf>,
    /// Start of the window: RFC 3339 (2026-11-01T00:00:00Z), a UTC date (2026-11-01), now, or now-30d.
    #[arg(long, value_name = "TIME")]
    from: String,
    /// End of the window, excluded.
    #[arg(long, value_name = "TIME", default_value = "now")]
    to: String,
    /// Only these checks (comma-separated names).
    #[arg(long, value_name = "NAMES", value_delimiter = ',', conflicts_with = "labels")]
    checks: Option<Vec<String>>,
    /// Only the checks with all these labels (comma-separated KEY=VALUE).
    #[arg(long, value_name = "KEY=VALUE", value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// The scheduler's data directory (its --data): the store in DATA/store, the alert history in
    /// DATA/alerts.db for the times regions were impaired, and the maintenance windows added through the API in
    /// DATA/maintenance.json.
    #[arg(long, value_name = "DIR", required_unless_present = "store", conflicts_with = "store")]
    data: Option<PathBuf>,
    /// The store instead, as the scheduler's --store: sqlite:DIR or postgres://USER@HOST:PORT/DB (password from
    /// PGPASSWORD or --store-password-file). Impaired regions are then not known.
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    /// A file holding the PostgreSQL password.
    #[arg(long, value_name = "FILE")]
    store_password_file: Option<PathBuf>,
    /// The CA (PEM) of the PostgreSQL server's certificate (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    store_ca: Option<PathBuf>,
}

fn usage(message: &str) -> ExitCode {
    eprintln!("probenet: {message}");
    ExitCode::from(super::EXIT_CONFIG)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn main(args: &Args) -> ExitCode {
    let now = now_ms();
    let (from, to) = match (parse_time(&args.from, now), parse_time(&args.to, now)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(error), _) => return usage(&format!("--from {error}")),
        (_, Err(error)) => return usage(&format!("--to {error}")),
    };
    if from >= to {
        return usage(&format!(
            "--from {} is not before --to {}: the window is empty",
            render::rfc3339(from),
            render::rfc3339(to)
        ));
    }
    // The maintenance windows added through the API count as those of the files.
    let windows = match &args.data {
        Some(data) => match probenet_scheduler::maintenance::read(data) {
            Ok(windows) => windows,
            Err(error) => {
                eprintln!("probenet: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => Vec::new(),
    };
    let config = match probenet_scheduler::config::Loaded::load_with(&args.config, &windows) {
        Ok(loaded) => loaded.config,
        Err(errors) => {
            super::print_errors(&errors.0);
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let selected = match select(&config, args.checks.as_deref(), args.labels.as_deref()) {
        Ok(selected) => selected,
        Err(message) => return usage(&message),
    };
    let (store, alerts_db) = match open_store(args) {
        Ok(opened) => opened,
        Err(message) => return usage(&message),
    };
    let impaired: Vec<ImpairedSpan> = match alerts_db.filter(|path| path.exists()) {
        Some(path) => match probenet_alerting::SqliteState::open(&path).and_then(|state| state.history(10_000)) {
            Ok(history) => render::impaired_spans(&history, to),
            Err(error) => {
                eprintln!("probenet: {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Vec::new(),
    };
    // From raw results; whole hours older than them from the scheduler's ledger hours (figures only).
    let computed = probenet_scheduler::ledger::compute(store.as_ref(), &config, Some(&selected), &impaired, from, to)
        .and_then(|ledger| {
            probenet_scheduler::ledger::with_stored_hours(store.as_ref(), &config, Some(&selected), &impaired, ledger)
        });
    let ledger = match computed {
        Ok((ledger, stored_until)) => {
            if let Some(until) = stored_until {
                eprintln!(
                    "probenet: the raw results before {} are gone: the figures of the hours before it come from the \
                     scheduler's ledger hours, without their downtime spans",
                    render::rfc3339(until)
                );
            }
            ledger
        }
        Err(error) => {
            eprintln!("probenet: {error}");
            return ExitCode::FAILURE;
        }
    };
    let text = match args.format {
        Format::Csv => render::csv(&ledger),
        Format::Json => render::json(&ledger),
        Format::Html => render::html(&ledger),
    };
    print!("{text}");
    ExitCode::SUCCESS
}

/// The names of the checks asked for, in config order; an unknown name or a selection of nothing is an error.
fn select(
    config: &probenet_checks::Config,
    names: Option<&[String]>,
    labels: Option<&[String]>,
) -> Result<Vec<String>, String> {
    if let Some(names) = names {
        let unknown: Vec<&str> = names
            .iter()
            .filter(|name| !config.checks.iter().any(|check| &check.name == *name))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(format!("--checks: no such check in the config: {}", unknown.join(", ")));
        }
    }
    let mut wanted = Vec::new();
    for pair in labels.unwrap_or_default() {
        match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => wanted.push((key, value)),
            _ => return Err(format!("--labels takes KEY=VALUE pairs, not {pair:?}")),
        }
    }
    let selected: Vec<String> = config
        .checks
        .iter()
        .filter(|check| names.is_none_or(|names| names.contains(&check.name)))
        .filter(|check| wanted.iter().all(|(key, value)| check.labels.get(*key).is_some_and(|found| found == value)))
        .map(|check| check.name.clone())
        .collect();
    if selected.is_empty() {
        return Err("no check matches the selection".to_owned());
    }
    Ok(selected)
}

/// The store, and the alert state file when the data directory is known.
fn open_store(args: &Args) -> Result<(Arc<dyn Store>, Option<PathBuf>), String> {
    let (location, alerts) = match (&args.data, &args.store) {
        (Some(data), _) => (Location::Embedded(data.join("store")), Some(data.join("alerts.db"))),
        (None, Some(text)) => {
            (Location::parse(text, args.store_password_file.as_deref(), args.store_ca.as_deref())?, None)
        }
        (None, None) => return Err("say where the results are: --data DIR or --store STORE".to_owned()),
    };
    let store: Arc<dyn Store> = match location {
        Location::Embedded(dir) => {
            if !has_store(&dir) {
                return Err(format!("no store in {} (no probenet.db)", dir.display()));
            }
            Arc::new(SqliteStore::open(&dir, StoreOptions::default()).map_err(|error| error.to_string())?)
        }
        Location::Postgres(database) => Arc::new(
            PostgresStore::open_database(&database, StoreOptions::default()).map_err(|error| error.to_string())?,
        ),
    };
    Ok((store, alerts))
}

fn has_store(dir: &Path) -> bool {
    dir.join(probenet_exporters::store::DB_FILE).is_file()
}
