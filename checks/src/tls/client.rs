//! TLS for kinds that speak it on their own connection (HTTP over TLS, TCP with `tls:`): the options users
//! write, the handshake, and the judgement of the certificate the server showed.

use std::net::SocketAddr;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

use super::{ChainReport, Judged, Session, TlsExpect, TlsPart, client_config, judge};
use crate::config::{Ctx, Path};
use crate::net::describe;
use crate::outcome::{Failure, Judgement, Reason};
use crate::run::RunContext;

/// TLS options of a connection.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ClientTls")]
pub struct ClientTlsSpec {
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<String>,
    /// A PEM client certificate (chain) for mutual TLS.
    pub client_cert: Option<String>,
    /// The PEM private key of `client_cert`.
    pub client_key: Option<String>,
    /// The name sent in SNI and checked against the certificate (default: the target's host).
    pub server_name: Option<String>,
    /// Accept any certificate: expired, untrusted or for another name. Only for targets you cannot give a CA
    /// for; the chain and its problems are still reported in the details.
    pub insecure: Option<bool>,
}

/// Validated TLS options. Files are read when the check runs.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// CA certificates to trust instead of the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub client_identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// SNI and verification name override.
    pub server_name: Option<String>,
    /// Accept any certificate.
    pub insecure: bool,
}

/// Validates the `tls` options written at `path` (absent: the defaults).
pub fn validate_client_tls(cx: &mut Ctx<'_>, path: &Path, spec: Option<ClientTlsSpec>) -> Option<ClientTls> {
    let Some(spec) = spec else {
        return Some(ClientTls::default());
    };
    let client_identity = validate_client_identity(cx, path, spec.client_cert, spec.client_key)?;
    if let Some(name) = &spec.server_name
        && rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
    {
        cx.error(&path.key("server_name"), format!("{name:?} is not a valid server name"));
        return None;
    }
    Some(ClientTls {
        ca_file: spec.ca_file.map(Into::into),
        client_identity,
        server_name: spec.server_name,
        insecure: spec.insecure.unwrap_or(false),
    })
}

/// A client certificate and its key, which come as a pair: `Some(None)` for neither, `None` (with an error
/// recorded) for only one of them.
pub fn validate_client_identity(
    cx: &mut Ctx<'_>,
    path: &Path,
    cert: Option<String>,
    key: Option<String>,
) -> Option<Option<(std::path::PathBuf, std::path::PathBuf)>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Some(Some((cert.into(), key.into()))),
        (None, None) => Some(None),
        (Some(_), None) => {
            cx.error_at_key(&path.key("client_cert"), "`client_cert` needs `client_key` too");
            None
        }
        (None, Some(_)) => {
            cx.error_at_key(&path.key("client_key"), "`client_key` needs `client_cert` too");
            None
        }
    }
}

/// What a handshake showed: the chain, the session and the certificate assertions.
#[derive(Debug)]
pub struct Handshake {
    /// The chain and its verdict, when the server presented one.
    pub report: Option<ChainReport>,
    /// The negotiated version, cipher suite and ALPN protocol.
    pub session: Session,
    /// The certificate assertions (validity, trust, hostname, `min_days_remaining`).
    pub judged: Judged,
}

impl Handshake {
    /// The TLS part of an outcome's details.
    pub fn details(&self) -> TlsPart {
        TlsPart::of(self)
    }
}

impl ClientTls {
    /// Runs the handshake over `tcp` (timed as the `tls` phase) and judges the certificate. Fails, before
    /// anything is sent, when the certificate is expired, not yet valid, untrusted or for another name (unless
    /// `insecure`); a certificate that merely expires within `min_days_remaining` is a failing assertion in
    /// the returned [`Handshake`], so that the conversation still happens and is judged too.
    pub async fn connect<IO: AsyncRead + AsyncWrite + Unpin>(
        &self,
        cx: &RunContext,
        tcp: IO,
        peer: SocketAddr,
        server_name: &str,
        alpn: &[&[u8]],
        min_days_remaining: Option<u32>,
    ) -> Result<(TlsStream<IO>, Handshake), Failure> {
        let identity = self.client_identity.as_ref().map(|(cert, key)| (cert.as_path(), key.as_path()));
        let (config, verifier) = client_config(self.ca_file.as_deref(), alpn, identity)
            .map_err(|message| Failure::new(Reason::Tls, message))?;
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|error| Failure::new(Reason::Tls, format!("server name: {error}")))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let handshake = cx.timed("tls", connector.connect(name, tcp)).await;
        let report = verifier.take();
        let stream = handshake.map_err(|error| Failure {
            details: TlsPart::failed(report.as_ref()).to_value(),
            ..Failure::new(Reason::Tls, format!("tls handshake with {peer}: {}", describe(&error)))
        })?;
        let seen = Handshake {
            judged: self.judge(report.as_ref(), min_days_remaining),
            report,
            session: Session::of(stream.get_ref().1),
        };
        if let Some((reason, message)) =
            seen.judged.failure.clone().filter(|(reason, _)| *reason != Reason::CertExpiring)
        {
            return Err(Failure { details: seen.details().to_value(), ..Failure::new(reason, message) });
        }
        Ok((stream, seen))
    }

    /// Trust, hostname and dates (all skipped with `insecure`), and `min_days_remaining`.
    fn judge(&self, report: Option<&ChainReport>, min_days_remaining: Option<u32>) -> Judged {
        let Some(report) = report else {
            let failure = (!self.insecure).then(|| (Reason::Tls, "the server presented no certificate".to_owned()));
            return Judgement { assertions: Vec::new(), failure };
        };
        let expect =
            TlsExpect { trusted: !self.insecure, hostname: !self.insecure, min_days_remaining, ..TlsExpect::default() };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
        let judged = judge(&expect, report, None, now);
        if !self.insecure {
            return judged;
        }
        // `insecure` accepts any certificate: its dates, trust and name are in the details only.
        let mut kept = Judgement::default();
        for assertion in judged.assertions {
            if !matches!(assertion.name.as_str(), "validity" | "trusted" | "hostname") {
                kept.check(
                    Reason::CertExpiring,
                    &assertion.name,
                    assertion.expected,
                    assertion.observed,
                    assertion.passed,
                );
            }
        }
        kept
    }
}
