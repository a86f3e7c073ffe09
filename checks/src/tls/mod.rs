//! The `tls` kind: a TLS handshake and what the certificate chain must look like.
//!
//! Validated here; executing it is the check-kinds issue's work, and until then a run fails with reason
//! `unsupported`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};

/// A TLS handshake and what the certificate must look like.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// The server to connect to, as `host:port` (port 443 when left out).
    pub target: String,
    /// The name sent in SNI and checked against the certificate (default: the target's host).
    pub server_name: Option<String>,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<String>,
    /// What the certificate must look like.
    pub expect: Option<TlsExpectSpec>,
}

/// What the certificate chain must look like.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsExpectSpec {
    /// The fewest days before the earliest expiry in the chain (default 0: not expired).
    pub min_days_remaining: Option<u32>,
}

/// A validated TLS check.
#[derive(Debug, Clone)]
pub struct TlsCheck {
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// SNI and verification name.
    pub server_name: String,
    /// CA file to trust instead of the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// The fewest days left.
    pub min_days_remaining: u32,
}

impl KindSpec for TlsSpec {
    type Check = TlsCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<TlsCheck> {
        let (host, port) = cx.host_port(&path.key("target"), &self.target, Some(443))?;
        let server_name = self.server_name.unwrap_or_else(|| host.clone());
        if rustls_pki_types::ServerName::try_from(server_name.as_str()).is_err() {
            cx.error(&path.key("server_name"), format!("{server_name:?} is not a valid server name"));
            return None;
        }
        let expect = self.expect.unwrap_or_default();
        Some(TlsCheck {
            host,
            port,
            server_name,
            ca_file: self.ca_file.map(Into::into),
            min_days_remaining: expect.min_days_remaining.unwrap_or(0),
        })
    }
}

impl TlsCheck {
    /// `host:port`, as the `instance` label shows it.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl crate::run::Execute for TlsCheck {
    async fn execute(&self, _cx: &crate::run::RunContext) -> crate::Outcome {
        crate::run::unsupported("tls")
    }
}
