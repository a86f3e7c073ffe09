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
    let mut config: tokio_postgres::Config = url.parse().map_err(PoolError::Url)?;
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
