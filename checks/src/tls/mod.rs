//! The `tls` kind: a TLS handshake, the whole certificate chain and a precise verdict on it, also when the
//! chain is invalid; and the reusable pieces other kinds use to report the same (HTTP, TCP with TLS).
//!
//! - [`client_config`] builds a rustls client config around a [`RecordingVerifier`], which records the
//!   presented chain and every problem in it, then lets the handshake finish. The caller judges afterwards.
//! - [`ChainReport`] holds the parsed chain ([`CertInfo`]), the [`Verdict`] and its [`Problem`]s, and the
//!   expiries blackbox_exporter reports (`earliest_expiry`, `last_chain_expiry`).
//! - [`judge`] evaluates a [`TlsExpect`] against a report and the negotiated version.
//!
//! Precedence when a chain has several problems: expired, not yet valid, untrusted, other, hostname (see
//! [`Verdict`]); a check's assertions follow the same order, then fingerprint, days remaining, version.

mod chain;
mod client;
mod execute;
mod spec;
mod verifier;

pub use chain::{CertInfo, ChainReport, Problem, Verdict, rfc3339, sha256_hex};
pub use client::{ClientTls, ClientTlsSpec, Handshake, validate_client_identity, validate_client_tls};
pub use execute::{Judged, judge};
pub use spec::{TlsCheck, TlsExpect, TlsExpectSpec, TlsSpec, TlsVersion, parse_fingerprint};
pub use verifier::{RecordingVerifier, Session, TrustRoots, classify, client_config, provider, version_name};

impl crate::kind::KindCheck for TlsCheck {
    const KIND: crate::Kind = crate::Kind::Tls;
    type Spec = TlsSpec;

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Tls(self)
    }

    /// `host:port`.
    fn target(&self) -> String {
        crate::net::host_port(&self.host, self.port)
    }

    fn representative(&self) -> crate::Outcome {
        let mut details = serde_json::json!({"address": "192.0.2.1:443"});
        add_representative_tls(&mut details);
        crate::Outcome::representative(&["resolve", "connect", "tls"], details)
    }
}

/// The TLS session and certificate of a representative outcome (see [`crate::KindCheck::representative`]).
pub(crate) fn add_representative_tls(details: &mut serde_json::Value) {
    details["certificate"] = serde_json::json!({
        "earliest_expiry_unix": 1_800_000_000, "last_chain_expiry_unix": 1_900_000_000,
        "chain": [{"sha256_fingerprint": "00", "subject": "CN=example", "issuer": "CN=ca", "serial": "01",
            "sans": ["example.com"]}],
    });
    details["tls_version"] = serde_json::json!("TLSv1.3");
    details["cipher_suite"] = serde_json::json!("TLS13_AES_128_GCM_SHA256");
}
