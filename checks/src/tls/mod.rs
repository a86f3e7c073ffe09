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
mod details;
mod execute;
mod metrics;
mod spec;
mod verifier;

pub use chain::{CertInfo, ChainReport, Problem, Verdict, rfc3339, sha256_hex};
pub use client::{ClientTls, ClientTlsSpec, Handshake, validate_client_identity, validate_client_tls};
pub(crate) use details::representative_tls;
pub use details::{ChainDetails, SessionDetails, TlsDetails, TlsPart};
pub use execute::{Judged, judge};
pub use spec::{TlsCheck, TlsExpect, TlsExpectSpec, TlsSpec, TlsVersion, parse_fingerprint};
pub use verifier::{RecordingVerifier, Session, TrustRoots, classify, client_config, provider, version_name};

impl crate::kind::KindCheck for TlsCheck {
    const KIND: crate::Kind = crate::Kind::Tls;
    type Spec = TlsSpec;
    type Details = TlsDetails;
    const FAMILIES: &'static [crate::metrics::Family] = metrics::FAMILIES;
    const SM_CHECK_NAME: &'static str = "tcp";

    fn series(outcome: &crate::Outcome, details: &TlsDetails, out: &mut dyn crate::metrics::SeriesWriter) {
        metrics::series(outcome, details, out);
    }

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Tls(self)
    }

    /// `host:port`.
    fn target(&self) -> String {
        crate::net::host_port(&self.host, self.port)
    }

    fn ip_target(&self) -> Option<crate::net::IpTarget> {
        Some(crate::net::IpTarget::new(&self.host, self.port, crate::net::IpVersion::Any, self.ips))
    }

    fn representative(&self) -> crate::Outcome {
        let tls = details::representative_tls();
        let session = tls.session.unwrap_or_default();
        let details = TlsDetails {
            address: "192.0.2.1:443".to_owned(),
            version: session.tls_version,
            cipher_suite: session.cipher_suite,
            chain: tls.certificate.flatten(),
            ..TlsDetails::default()
        };
        crate::Outcome::representative(&["resolve", "connect", "tls"], crate::details::Details::to_value(&details))
    }
}
