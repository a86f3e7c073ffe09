//! `probenet token create|list|revoke`: bearer tokens for a prober region or for the admin API; a token is shown
//! only once, when it is made.

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
    /// List the tokens: id, scope and creation time (never a token).
    List(DataArgs),
    /// Revoke a token by its id (from `token list`); a running scheduler refuses it within seconds.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
struct DataArgs {
    /// The scheduler's data directory (tokens.json lives there).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
}

#[derive(Debug, clap::Args)]
struct RevokeArgs {
    /// The scheduler's data directory (tokens.json lives there).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The token's id, as `token list` shows it (at least its first 6 characters).
    id: String,
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
    match args.command {
        Command::Create(args) => create(args),
        Command::List(args) => match tokens::list(&args.data) {
            Ok(listed) => {
                println!("{:<14} {:<28} CREATED", "ID", "SCOPE");
                for token in listed {
                    println!("{:<14} {:<28} {}", token.id, token.scope.to_string(), token.created_at);
                }
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
        Command::Revoke(args) => match tokens::revoke(&args.data, &args.id) {
            Ok(token) => {
                println!("revoked {} ({}, created {})", token.id, token.scope, token.created_at);
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
    }
}

fn fail(error: &tokens::TokenError) -> ExitCode {
    eprintln!("probenet: {error}");
    ExitCode::FAILURE
}

fn create(args: CreateArgs) -> ExitCode {
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
        Err(error) => fail(&error),
    }
}
