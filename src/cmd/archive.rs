//! `probenet archive list|restore`: the long-term archive of raw results in the config's bucket (`objects`):
//! which days it holds, and a window of it brought back into a store (`sqlite:DIR` or `postgres://...`) for an
//! investigation or an uptime report. Format: docs/storage.md#the-archive.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use probenet_exporters::archive::{self, Bucket, Day, Selection};
use probenet_exporters::store::{PostgresStore, SqliteStore, Store, StoreOptions};
use probenet_scheduler::store::Location;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The days archived: day, checks, results, compressed bytes.
    List(ListArgs),
    /// Bring a window of days back into a store; every file is checked (SHA-256) before anything is stored,
    /// and restoring twice adds nothing.
    Restore(RestoreArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Config files or directories (the bucket is their `objects` section).
    #[arg(short = 'c', long = "config", value_name = "PATH", required = true)]
    config: Vec<PathBuf>,
    /// The first day (YYYY-MM-DD, UTC; default: the first archived).
    #[arg(long, value_name = "DATE", value_parser = Day::parse)]
    from: Option<Day>,
    /// The last day, included (default: the last archived).
    #[arg(long, value_name = "DATE", value_parser = Day::parse)]
    to: Option<Day>,
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    /// Config files or directories (the bucket is their `objects` section).
    #[arg(short = 'c', long = "config", value_name = "PATH", required = true)]
    config: Vec<PathBuf>,
    /// The first day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", value_parser = Day::parse)]
    from: Day,
    /// The last day, included.
    #[arg(long, value_name = "DATE", value_parser = Day::parse)]
    to: Day,
    /// Only these checks (comma-separated names).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    checks: Option<Vec<String>>,
    /// The store to restore into: `sqlite:DIR` (created if missing) or `postgres://USER@HOST:PORT/DB` (the
    /// password from PGPASSWORD or --into-password-file).
    #[arg(long, value_name = "STORE")]
    into: String,
    /// A file holding the PostgreSQL password.
    #[arg(long, value_name = "FILE")]
    into_password_file: Option<PathBuf>,
    /// The CA (PEM) of the PostgreSQL server's certificate (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    into_ca: Option<PathBuf>,
}

pub fn main(args: Args) -> ExitCode {
    let paths = match &args.command {
        Command::List(list) => &list.config,
        Command::Restore(restore) => &restore.config,
    };
    let bucket = match bucket(paths) {
        Ok(bucket) => bucket,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the runtime: {error}")),
    };
    match args.command {
        Command::List(list) => {
            let (from, to) = (list.from.unwrap_or(Day::of_ms(0)), list.to.unwrap_or(Day::of_ms(i64::MAX / 2)));
            match runtime.block_on(archive::list(&bucket, from, to)) {
                Ok(days) => {
                    println!("{:<10}  {:>6}  {:>12}  {:>14}", "DAY", "CHECKS", "RESULTS", "BYTES");
                    for (day, manifest) in &days {
                        println!(
                            "{day:<10}  {:>6}  {:>12}  {:>14}",
                            manifest.checks.len(),
                            manifest.results(),
                            manifest.bytes()
                        );
                    }
                    let results: u64 = days.iter().map(|(_, manifest)| manifest.results()).sum();
                    let bytes: u64 = days.iter().map(|(_, manifest)| manifest.bytes()).sum();
                    println!("{} days, {results} results, {bytes} bytes in {}", days.len(), bucket.url());
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error.to_string()),
            }
        }
        Command::Restore(restore) => {
            if restore.from > restore.to {
                eprintln!("probenet: --from {} is after --to {}", restore.from, restore.to);
                return ExitCode::from(super::EXIT_CONFIG);
            }
            // Outside the runtime: the PostgreSQL store runs its own.
            let store = match open_store(&restore) {
                Ok(store) => store,
                Err(error) => return fail(&error),
            };
            let selection = Selection { from: restore.from, to: restore.to, checks: restore.checks.clone() };
            let restored = runtime.block_on(archive::restore(&bucket, store, &selection));
            drop(runtime);
            match restored {
                Ok(restored) => {
                    for check in &restored.unmatched {
                        eprintln!(
                            "probenet: no archived results of check {check:?} from {} to {}",
                            restore.from, restore.to
                        );
                    }
                    println!(
                        "restored {} to {}: {} days, {} files, {} results ({} new, {} already stored) into {}",
                        restore.from,
                        restore.to,
                        restored.days,
                        restored.files,
                        restored.results,
                        restored.accepted,
                        restored.duplicates,
                        restore.into
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error.to_string()),
            }
        }
    }
}

/// The bucket of the config's `objects` section.
fn bucket(paths: &[PathBuf]) -> Result<Bucket, ExitCode> {
    let config = probenet_checks::load_paths(paths).map_err(|errors| {
        super::print_errors(&errors.0);
        ExitCode::from(super::EXIT_CONFIG)
    })?;
    let Some(objects) = &config.objects else {
        eprintln!("probenet: the config has no `objects` section: the archive is in the bucket it names");
        return Err(ExitCode::from(super::EXIT_CONFIG));
    };
    Bucket::open(objects, &mut Vec::new()).map_err(|error| fail(&error.to_string()))
}

fn open_store(restore: &RestoreArgs) -> Result<Arc<dyn Store>, String> {
    let location = Location::parse(&restore.into, restore.into_password_file.as_deref(), restore.into_ca.as_deref())
        .map_err(|error| error.replace("--store", "--into"))?;
    let store: Arc<dyn Store> = match location {
        Location::Embedded(dir) => {
            Arc::new(SqliteStore::open(&dir, StoreOptions::default()).map_err(|e| e.to_string())?)
        }
        Location::Postgres(database) => {
            Arc::new(PostgresStore::open_database(&database, StoreOptions::default()).map_err(|e| e.to_string())?)
        }
    };
    Ok(store)
}

fn fail(error: &str) -> ExitCode {
    eprintln!("probenet: {error}");
    ExitCode::FAILURE
}
