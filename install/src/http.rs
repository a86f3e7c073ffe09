//! The HTTP GETs the installer makes (health checks, the scheduler's API), behind a trait: the binary brings the
//! client (TLS with the install's CA, basic auth, client certificates, bearer tokens).

use std::path::PathBuf;
use std::time::Duration;

use crate::local::Health;

/// One GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    /// The URL.
    pub url: String,
    /// The CA to trust for `https://` (PEM file).
    pub ca: Option<PathBuf>,
    /// Basic auth: the user and the file holding the password.
    pub basic_auth: Option<(String, PathBuf)>,
    /// A client certificate and key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// A file holding a bearer token.
    pub bearer_file: Option<PathBuf>,
    /// How long the whole request may take.
    pub timeout: Duration,
}

impl Get {
    /// A plain GET of `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca: None,
            basic_auth: None,
            client_cert: None,
            bearer_file: None,
            timeout: Duration::from_secs(3),
        }
    }

    /// The GET a health check makes (`None` for a health read from the scheduler's prober list).
    pub fn of_health(health: &Health) -> Option<Self> {
        match health {
            Health::Http { url, ca, basic_auth, client_cert } => Some(Self {
                ca: ca.clone(),
                basic_auth: basic_auth.clone(),
                client_cert: client_cert.clone(),
                ..Self::new(url.clone())
            }),
            Health::Registered { .. } | Health::Tcp { .. } | Health::Periodic => None,
        }
    }
}

/// A failed request. Never holds a secret: only the URL (without credentials) and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {message}")]
pub struct HttpError {
    /// The URL.
    pub url: String,
    /// What went wrong.
    pub message: String,
}

/// Makes GETs.
pub trait Http {
    /// The status and body of a GET.
    fn get(&self, get: &Get) -> Result<(u16, String), HttpError>;
}
