//! `probenet token create|list|revoke`: bearer tokens for a prober region or for the admin API; a token is shown
//! only once, when it is made. They live in the data directory's `tokens.json`, or with `--store postgres://...`
//! in the database replicated schedulers share.

use std::path::PathBuf;
use std::process::ExitCode;

use probenet_scheduler::cluster::tokens as db_tokens;
use probenet_scheduler::store::Location;
use probenet_scheduler::tokens::{self, Listed, Scope};

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
    List(WhereArgs),
    /// Revoke a token by its id (from `token list`); a running scheduler refuses it within seconds.
    Revoke(RevokeArgs),
}

/// Where the tokens are: a data directory, or the database of replicated schedulers.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["data", "store"])))]
struct WhereArgs {
    /// The scheduler's data directory (tokens.json lives there).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The PostgreSQL database of replicated schedulers (postgres://USER@HOST:PORT/DB); the password comes from
    /// PGPASSWORD or --store-password-file.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// A file holding the PostgreSQL password.
    #[arg(long, value_name = "FILE", requires = "store")]
    store_password_file: Option<PathBuf>,
    /// The CA (PEM) of the PostgreSQL server's certificate (default: the system's roots).
    #[arg(long, value_name = "FILE", requires = "store")]
    store_ca: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RevokeArgs {
    #[command(flatten)]
    at: WhereArgs,
    /// The token's id, as `token list` shows it (at least its first 6 characters).
    id: String,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["region", "admin"])))]
struct CreateArgs {
    #[command(flatten)]
    at: WhereArgs,
    /// A token for the probers of this region.
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// A token for the read API (/api/v1).
    #[arg(long)]
    admin: bool,
}

/// The tokens' home, opened.
enum Home {
    File(PathBuf),
    Database(tokio::runtime::Runtime, deadpool_postgres::Pool, String),
}

impl Home {
    fn open(at: &WhereArgs) -> Result<Self, String> {
        if let Some(data) = &at.data {
            return Ok(Self::File(data.clone()));
        }
        let text = at.store.as_deref().unwrap_or_default();
        match Location::parse(text, at.store_password_file.as_deref(), at.store_ca.as_deref())? {
            Location::Embedded(_) => {
                Err("--store takes a postgres:// URL here; for a data directory use --data".into())
            }
            Location::Postgres(database) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|error| format!("cannot start the runtime: {error}"))?;
                let pool = runtime.block_on(async { database.pool(1) }).map_err(|error| error.to_string())?;
                runtime.block_on(async {
                    let mut client = pool.get().await.map_err(|error| format!("{}: {error}", database.shown))?;
                    probenet_scheduler::ha::migrate(&mut client).await.map_err(|error| error.to_string())
                })?;
                Ok(Self::Database(runtime, pool, database.shown))
            }
        }
    }

    fn run<T>(
        &self,
        call: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, db_tokens::DbTokenError>,
    ) -> Result<T, String> {
        let Self::Database(runtime, pool, shown) = self else { unreachable!("a database home") };
        runtime.block_on(async {
            let client = pool.get().await.map_err(|error| format!("{shown}: {error}"))?;
            call(&client).await.map_err(|error| error.to_string())
        })
    }

    fn list(&self) -> Result<Vec<Listed>, String> {
        match self {
            Self::File(data) => tokens::list(data).map_err(|error| error.to_string()),
            Self::Database(..) => self.run(async |client| db_tokens::list(client).await),
        }
    }

    fn revoke(&self, id: &str) -> Result<Listed, String> {
        match self {
            Self::File(data) => tokens::revoke(data, id).map_err(|error| error.to_string()),
            Self::Database(..) => self.run(async |client| db_tokens::revoke(client, id).await),
        }
    }

    fn create(&self, scope: &Scope) -> Result<(String, String), String> {
        match self {
            Self::File(data) => tokens::create(data, scope)
                .map(|token| (token, data.join(tokens::FILE).display().to_string()))
                .map_err(|error| error.to_string()),
            Self::Database(_, _, shown) => {
                self.run(async |client| db_tokens::create(client, scope).await).map(|token| (token, shown.clone()))
            }
        }
    }
}

pub fn main(args: Args) -> ExitCode {
    let at = match &args.command {
        Command::Create(create) => &create.at,
        Command::List(at) => at,
        Command::Revoke(revoke) => &revoke.at,
    };
    let home = match Home::open(at) {
        Ok(home) => home,
        Err(error) => return fail(&error),
    };
    match args.command {
        Command::Create(create) => {
            let scope = match create.region {
                Some(region) => Scope::Region(region),
                None => Scope::Admin,
            };
            match home.create(&scope) {
                Ok((token, kept)) => {
                    println!("a token for {scope}, stored as a hash in {kept}; this is the only time it is shown:");
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::List(_) => match home.list() {
            Ok(listed) => {
                println!("{:<14} {:<28} CREATED", "ID", "SCOPE");
                for token in listed {
                    println!("{:<14} {:<28} {}", token.id, token.scope.to_string(), token.created_at);
                }
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
        Command::Revoke(revoke) => match home.revoke(&revoke.id) {
            Ok(token) => {
                println!("revoked {} ({}, created {})", token.id, token.scope, token.created_at);
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
    }
}

fn fail(error: &str) -> ExitCode {
    eprintln!("probenet: {error}");
    ExitCode::FAILURE
}
