//! `probenet store backups|restore`: the embedded store's backups in the config's bucket (`objects`), listed,
//! and one restored into a new store directory for `probenet scheduler --store sqlite:DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use probenet_scheduler::backup::{FOLDER, restore};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the backups in the bucket, oldest first: name, when taken, schema version, sizes.
    Backups(BucketArgs),
    /// Restore a backup (the newest by default) into a new store directory; never over an existing store.
    Restore(RestoreArgs),
}

#[derive(Debug, clap::Args)]
struct BucketArgs {
    /// Config files or directories: the bucket is their `objects` section (secrets resolved on this machine).
    #[arg(short = 'c', long = "config", value_name = "PATH", required = true)]
    config: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// Restore from the config's bucket (the only source there is).
    #[arg(long, required = true)]
    from_bucket: bool,
    /// The backup's name, as `probenet store backups` lists it (default: the newest complete one).
    #[arg(long, value_name = "NAME")]
    backup: Option<String>,
    /// The store directory to create: it must not hold a store (probenet.db).
    #[arg(long, value_name = "DIR")]
    into: PathBuf,
}

pub fn main(args: Args) -> ExitCode {
    super::private_files();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("probenet: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let config = match &args.command {
        Command::Backups(bucket) => &bucket.config,
        Command::Restore(restore) => &restore.bucket.config,
    };
    let bucket = match open(config) {
        Ok(bucket) => bucket,
        Err(code) => return code,
    };
    match args.command {
        Command::Backups(_) => match runtime.block_on(restore::list(&bucket)) {
            Ok(backups) if backups.is_empty() => {
                println!("no backups in {}/{FOLDER}", bucket.url());
                ExitCode::SUCCESS
            }
            Ok(backups) => {
                println!("{:<20} {:<26} {:>6} {:>12} {:>12}", "NAME", "TAKEN AT", "SCHEMA", "DATABASE", "COMPRESSED");
                for backup in backups {
                    match backup.manifest {
                        Some(manifest) => println!(
                            "{:<20} {:<26} {:>6} {:>12} {:>12}",
                            backup.name,
                            manifest.taken_at,
                            manifest.schema_version,
                            manifest.db_bytes,
                            manifest.object_bytes
                        ),
                        None => println!("{:<20} (unfinished upload: no manifest)", backup.name),
                    }
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("probenet: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Restore(args) => {
            let _ = args.from_bucket;
            match runtime.block_on(restore::restore(&bucket, args.backup.as_deref(), &args.into)) {
                Ok(restored) => {
                    println!(
                        "restored backup {} (taken {}, schema version {}, {} bytes) into {}",
                        restored.name,
                        restored.manifest.taken_at,
                        restored.manifest.schema_version,
                        restored.manifest.db_bytes,
                        restored.dir.display()
                    );
                    println!(
                        "run the scheduler on it: probenet scheduler --store sqlite:{} ...",
                        restored.dir.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("probenet: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The config's bucket, or the exit code after the errors are printed.
fn open(paths: &[PathBuf]) -> Result<probenet_objects::Bucket, ExitCode> {
    let loaded = probenet_scheduler::config::Loaded::load(paths).map_err(|errors| {
        super::print_errors(&errors.0);
        ExitCode::from(super::EXIT_CONFIG)
    })?;
    let Some(objects) = loaded.config.objects.as_ref() else {
        eprintln!("probenet: the config has no `objects` section: there is no bucket to read backups from");
        return Err(ExitCode::from(super::EXIT_CONFIG));
    };
    probenet_objects::Bucket::open(objects, &mut Vec::new()).map_err(|error| {
        eprintln!("probenet: {error}");
        ExitCode::FAILURE
    })
}
