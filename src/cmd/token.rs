//! `probenet token create`: makes a bearer token for a prober region or for the admin API, shown only once.

use std::path::PathBuf;
use std::process::ExitCode;

use probenet_scheduler::tokens::{self, Scope};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create a token; it is printed once, as the last line, and only its hash is stored.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["region", "admin"])))]
struct CreateArgs {
    /// The scheduler's data directory (tokens.json lives there).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// A token for the probers of this region.
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// A token for the read API (/api/v1).
    #[arg(long)]
    admin: bool,
}

pub fn main(args: Args) -> ExitCode {
    let Command::Create(args) = args.command;
    let scope = match args.region {
        Some(region) => Scope::Region(region),
        None => Scope::Admin,
    };
    match tokens::create(&args.data, &scope) {
        Ok(token) => {
            let file = args.data.join(tokens::FILE);
            println!("a token for {scope}, stored as a hash in {}; this is the only time it is shown:", file.display());
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("probenet: {error}");
            ExitCode::FAILURE
        }
    }
}
