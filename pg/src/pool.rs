//! The PostgreSQL connection pool (deadpool-postgres over tokio-postgres), plain or over rustls.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

/// How to reach the database.
#[derive(Debug, Clone)]
pub enum Tls {
    /// No TLS (loopback, or a network that is already private).
    Disabled,
    /// TLS with this rustls configuration (roots, client certificate); `sslmode` in the URL still applies.
    Rustls(Box<rustls::ClientConfig>),
}

/// Why a pool could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The URL is not a PostgreSQL connection string.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// The pool could not be built.
    #[error("building the PostgreSQL pool: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
}

/// How long one connection attempt (TCP, TLS, startup) may take unless the URL says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of at most `max_size` connections to `url` (`postgres://user:password@host:port/db?...`). Connections
/// are made on first use; a closed one (the server restarted) is dropped when it comes back to the pool.
pub fn connect(url: &str, tls: Tls, max_size: usize) -> Result<Pool, PoolError> {
    let config: tokio_postgres::Config = url.parse().map_err(PoolError::Url)?;
    connect_config(config, tls, max_size)
}

/// [`connect`] with a parsed configuration (its password set from a file or the environment).
pub fn connect_config(mut config: tokio_postgres::Config, tls: Tls, max_size: usize) -> Result<Pool, PoolError> {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("probenet-scheduler");
    }
    let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let manager = match tls {
        Tls::Disabled => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        Tls::Rustls(client) => {
            Manager::from_config(config, tokio_postgres_rustls::MakeRustlsConnect::new(*client), manager_config)
        }
    };
    Ok(Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()?)
}

/// Where a store lives when it is PostgreSQL: the parsed URL (its password from the environment or a file,
/// never from the command line) and the TLS to use. `Debug` never shows the password.
#[derive(Clone)]
pub struct Database {
    /// The connection settings.
    pub config: tokio_postgres::Config,
    /// TLS to the server.
    pub tls: Tls,
    /// The URL as it may be shown: user, host, port, database, no password.
    pub shown: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("shown", &self.shown).finish_non_exhaustive()
    }
}

impl Database {
    /// Parses `postgres://USER@HOST:PORT/DB?sslmode=...`. A password in the URL is refused (a command line is
    /// visible to every local user): it comes from `password` (read from a file by the caller) or else from
    /// `PGPASSWORD`. `sslmode=require` (or `prefer`) uses TLS verified against `ca_file` or the system's roots;
    /// without `sslmode`, or with `disable`, the connection is plain.
    pub fn parse(url: &str, password: Option<String>, ca_file: Option<&std::path::Path>) -> Result<Self, String> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|error| format!("invalid PostgreSQL URL: {error}"))?;
        if config.get_password().is_some() {
            return Err("the store URL holds a password: a command line is visible to every local user; \
                        put it in PGPASSWORD or in a file given with --store-password-file"
                .to_owned());
        }
        if let Some(password) = password.or_else(|| std::env::var("PGPASSWORD").ok()) {
            config.password(password.trim_end_matches(['\r', '\n']));
        }
        let wants_tls = url.contains("sslmode=require") || url.contains("sslmode=prefer");
        let tls = if wants_tls { Tls::Rustls(Box::new(rustls_config(ca_file)?)) } else { Tls::Disabled };
        let user = config.get_user().unwrap_or("postgres");
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
            .map(|(host, port)| match host {
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                tokio_postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
            })
            .collect();
        let db = config.get_dbname().unwrap_or(user);
        let shown = format!("postgres://{user}@{}/{db}", hosts.join(","));
        Ok(Self { config, tls, shown })
    }

    /// A pool of at most `max_size` connections.
    pub fn pool(&self, max_size: usize) -> Result<Pool, PoolError> {
        connect_config(self.config.clone(), self.tls.clone(), max_size)
    }
}

/// rustls with the roots of `ca_file` (PEM), or the system's.
fn rustls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|error| format!("{}: {error}", path.display()))?;
                roots.add(cert).map_err(|error| format!("{}: {error}", path.display()))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
