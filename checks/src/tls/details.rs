//! What a TLS run reports in its outcome's details, and the TLS parts other kinds report (HTTPS, TCP with TLS).

use serde::{Deserialize, Serialize};

use super::chain::{CertInfo, ChainReport, Problem, Verdict, rfc3339};
use super::client::Handshake;

/// The details of a `tls` run: the connection, and the chain once the server presented one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsDetails {
    /// The address connected to.
    pub address: String,
    /// Whether the server name was sent (SNI); not for an IP address.
    pub sni: bool,
    /// The negotiated version (`TLSv1.3`), `null` when the handshake failed.
    pub version: Option<String>,
    /// The negotiated cipher suite.
    pub cipher_suite: Option<String>,
    /// The ALPN protocol the server chose.
    pub alpn: Option<String>,
    /// Whether the check accepts any certificate.
    pub insecure: bool,
    /// The presented chain and its verdict.
    #[serde(flatten)]
    pub chain: Option<ChainDetails>,
}

impl crate::details::Details for TlsDetails {
    const RECORD_KEYS: &'static [&'static str] =
        &["address", "version", "cipher_suite", "alpn", "verdict", "earliest_expiry", "last_chain_expiry"];

    fn address(&self) -> Option<&str> {
        Some(&self.address)
    }
}

/// A presented chain as details show it: verdict, problems, expiries and the certificates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainDetails {
    /// The first problem by precedence, or `ok`.
    pub verdict: Verdict,
    /// Every problem found.
    #[serde(default)]
    pub problems: Vec<Problem>,
    /// Whether the chain leads to a trusted root, dates set aside; `null` when undecided.
    #[serde(default)]
    pub trusted: Option<bool>,
    /// rustls's own error for this chain.
    #[serde(default)]
    pub verify_error: Option<String>,
    /// The name the chain was verified for.
    #[serde(default)]
    pub server_name: String,
    /// The earliest expiry in the chain, RFC 3339.
    #[serde(default)]
    pub earliest_expiry: Option<String>,
    /// The same in unix seconds (`probe_ssl_earliest_cert_expiry`).
    #[serde(default)]
    pub earliest_expiry_unix: Option<i64>,
    /// The latest of the earliest expiries of the paths to a trusted root, RFC 3339.
    #[serde(default)]
    pub last_chain_expiry: Option<String>,
    /// The same in unix seconds (`probe_ssl_last_chain_expiry_timestamp_seconds`).
    #[serde(default)]
    pub last_chain_expiry_unix: Option<i64>,
    /// The certificates, leaf first, as the server sent them.
    #[serde(default)]
    pub chain: Vec<CertInfo>,
}

impl ChainDetails {
    /// The details of a report.
    pub fn of(report: &ChainReport) -> Self {
        let earliest = report.earliest_expiry();
        let last = report.last_chain_expiry();
        Self {
            verdict: report.verdict,
            problems: report.problems.clone(),
            trusted: report.trusted,
            verify_error: report.error.clone(),
            server_name: report.server_name.clone(),
            earliest_expiry: earliest.map(rfc3339),
            earliest_expiry_unix: earliest,
            last_chain_expiry: last.map(rfc3339),
            last_chain_expiry_unix: last,
            chain: report.certs.clone(),
        }
    }
}

/// The TLS part of the details of a kind that speaks TLS on its own connection (HTTP, TCP): the session once a
/// handshake finished, and the certificate once one was attempted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsPart {
    /// The negotiated session, after a handshake.
    #[serde(flatten)]
    pub session: Option<SessionDetails>,
    /// The presented chain: absent without a handshake, `null` when the server presented none.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "crate::details::tri_state")]
    pub certificate: Option<Option<ChainDetails>>,
}

impl TlsPart {
    /// The part of a finished handshake.
    pub fn of(handshake: &Handshake) -> Self {
        let session = &handshake.session;
        Self {
            session: Some(SessionDetails {
                tls_version: session.version.clone(),
                cipher_suite: session.cipher_suite.clone(),
                alpn: session.alpn.clone(),
            }),
            certificate: Some(handshake.report.as_ref().map(ChainDetails::of)),
        }
    }

    /// The part of a handshake that failed: only the chain, if one was presented.
    pub fn failed(report: Option<&ChainReport>) -> Self {
        Self { session: None, certificate: Some(report.map(ChainDetails::of)) }
    }

    /// The part alone as an outcome's details (a run that failed during the handshake reports only this).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The chain, if one was presented.
    pub fn chain(&self) -> Option<&ChainDetails> {
        self.certificate.as_ref().and_then(Option::as_ref)
    }
}

/// A negotiated TLS session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetails {
    /// `TLSv1.2` or `TLSv1.3`.
    #[serde(deserialize_with = "crate::details::present")]
    pub tls_version: Option<String>,
    /// The cipher suite's IANA name.
    #[serde(default)]
    pub cipher_suite: Option<String>,
    /// The ALPN protocol the server chose.
    #[serde(default)]
    pub alpn: Option<String>,
}

/// A representative chain for cost estimates (see [`crate::KindCheck::representative`]).
pub(crate) fn representative_tls() -> TlsPart {
    let leaf = CertInfo {
        sha256_fingerprint: "00".to_owned(),
        subject: "CN=example".to_owned(),
        issuer: "CN=ca".to_owned(),
        serial: "01".to_owned(),
        sans: vec!["example.com".to_owned()],
        ..CertInfo::default()
    };
    let chain = ChainDetails {
        verdict: Verdict::Ok,
        problems: Vec::new(),
        trusted: Some(true),
        verify_error: None,
        server_name: "example.com".to_owned(),
        earliest_expiry: None,
        earliest_expiry_unix: Some(1_800_000_000),
        last_chain_expiry: None,
        last_chain_expiry_unix: Some(1_900_000_000),
        chain: vec![leaf],
    };
    TlsPart {
        session: Some(SessionDetails {
            tls_version: Some("TLSv1.3".to_owned()),
            cipher_suite: Some("TLS13_AES_128_GCM_SHA256".to_owned()),
            alpn: None,
        }),
        certificate: Some(Some(chain)),
    }
}
