//! A rustls certificate verifier that records the presented chain and the precise verdict on it, and
//! lets the handshake finish also when the chain is invalid, so that the chain can be reported.
//!
//! The caller decides afterwards, from [`ChainReport`], whether the connection may be used. Handshake
//! signatures are still verified against the presented leaf, so the peer holds that certificate's key.

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use super::chain::{Anchor, CertInfo, ChainReport, Problem, Verdict, best_path};

/// The process-wide aws-lc-rs provider.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())).clone()
}

/// Trusted roots: the store rustls verifies with, and what path reconstruction needs of each root.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    store: Arc<RootCertStore>,
    anchors: Arc<Vec<Anchor>>,
    /// rustls's verifier over `store`, built once (it is only ever built with the process-wide provider).
    webpki: Arc<OnceLock<Option<Arc<WebPkiServerVerifier>>>>,
}

impl TrustRoots {
    /// Roots from DER certificates; those that do not parse are skipped.
    pub fn from_certs(certs: Vec<CertificateDer<'static>>) -> Self {
        let anchors = certs.iter().filter_map(|cert| Anchor::parse(cert)).collect();
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(certs);
        Self { store: Arc::new(store), anchors: Arc::new(anchors), webpki: Arc::new(OnceLock::new()) }
    }

    /// The system's roots (rustls-native-certs), loaded once per process. May be empty.
    pub fn system() -> Self {
        static ROOTS: OnceLock<TrustRoots> = OnceLock::new();
        ROOTS.get_or_init(|| Self::from_certs(rustls_native_certs::load_native_certs().certs)).clone()
    }

    /// Roots from a PEM file. The parsed roots are kept per file and reused while the file's size and
    /// modification time stay the same, so a check that runs every few seconds does not parse its CA file
    /// (and rebuild the trust anchors) on every run. Errors name the file only.
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, String> {
        type Stamp = (Option<std::time::SystemTime>, u64);
        static CACHE: OnceLock<Mutex<std::collections::HashMap<std::path::PathBuf, (Stamp, TrustRoots)>>> =
            OnceLock::new();
        const MAX_CACHED: usize = 256;
        let metadata = std::fs::metadata(path).map_err(|error| format!("ca_file {}: {error}", path.display()))?;
        let stamp: Stamp = (metadata.modified().ok(), metadata.len());
        let cache = CACHE.get_or_init(|| Mutex::new(std::collections::HashMap::new()));
        if let Some((cached, roots)) = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(path)
            && *cached == stamp
        {
            return Ok(roots.clone());
        }
        let roots = Self::read_pem_file(path)?;
        let mut cache = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(path.to_owned(), (stamp, roots.clone()));
        Ok(roots)
    }

    fn read_pem_file(path: &std::path::Path) -> Result<Self, String> {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|error| format!("ca_file {}: {error}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("ca_file {}: {error}", path.display()))?;
        let roots = Self::from_certs(certs);
        if roots.store.is_empty() {
            return Err(format!("ca_file {}: no usable certificate", path.display()));
        }
        Ok(roots)
    }

    /// How many roots there are.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether there is no root at all.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
}

/// Builds a client config whose verifier records every chain: roots from `ca_file` (PEM) or the system,
/// the given ALPN protocols, and an optional client certificate and key (PEM files) for mutual TLS.
/// Files are read here, at run time. TLS 1.2 and 1.3 are offered.
///
/// The handshake succeeds whatever the chain is worth: check [`RecordingVerifier::report`] before
/// sending anything that must only reach a trusted server.
pub fn client_config(
    ca_file: Option<&std::path::Path>,
    alpn: &[&[u8]],
    client_identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<(ClientConfig, Arc<RecordingVerifier>), String> {
    let roots = match ca_file {
        Some(path) => TrustRoots::from_pem_file(path)?,
        None => TrustRoots::system(),
    };
    let verifier = Arc::new(RecordingVerifier::new(roots, provider()));
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("tls setup: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let mut config = match client_identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|error| format!("client_cert {}: {error}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| format!("client_cert {}: {error}", cert.display()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|error| format!("client_key {}: {error}", key.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|error| format!("client certificate: {error}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|proto| proto.to_vec()).collect();
    Ok((config, verifier))
}

/// Wraps rustls's [`WebPkiServerVerifier`]: records the presented chain and the verdict, then lets the
/// handshake go on. Handshake signatures are verified by the provider as usual.
#[derive(Debug)]
pub struct RecordingVerifier {
    /// `None` when there is no root at all (rustls refuses to build a verifier then): every chain is untrusted.
    inner: Option<Arc<WebPkiServerVerifier>>,
    roots: TrustRoots,
    provider: Arc<CryptoProvider>,
    report: Mutex<Option<ChainReport>>,
}

/// How many other verification times are tried to tell whether an out-of-date chain is otherwise trusted.
const MAX_TIME_SHIFTS: usize = 4;

impl RecordingVerifier {
    /// A verifier trusting `roots`. rustls's verifier over the roots is built once per set of roots, with the
    /// provider given first (in probenet always the process-wide [`provider`]).
    pub fn new(roots: TrustRoots, provider: Arc<CryptoProvider>) -> Self {
        let inner = roots
            .webpki
            .get_or_init(|| {
                WebPkiServerVerifier::builder_with_provider(roots.store.clone(), provider.clone()).build().ok()
            })
            .clone();
        Self { inner, roots, provider, report: Mutex::new(None) }
    }

    /// The report on the last chain verified, if a server presented one.
    pub fn report(&self) -> Option<ChainReport> {
        self.report.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Takes the report on the last chain verified, leaving none.
    pub fn take(&self) -> Option<ChainReport> {
        self.report.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    /// Verifies a chain as rustls would, then finds every problem in it, each independently of the others.
    pub fn analyse(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> ChainReport {
        let certs: Vec<CertInfo> =
            std::iter::once(end_entity).chain(intermediates).map(|der| CertInfo::parse(der)).collect();
        let name = server_name.to_str().into_owned();
        let algs = self.provider.signature_verification_algorithms.all;
        let strict = match &self.inner {
            Some(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now).map(drop)
            }
            None => Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        };
        let error = strict.as_ref().err().map(ToString::to_string);
        let parsed = match ParsedCertificate::try_from(end_entity) {
            Ok(parsed) => parsed,
            Err(error) => {
                let problem = Problem { kind: Verdict::Other, message: format!("leaf certificate: {error}") };
                return ChainReport::new(vec![problem], Some(false), Some(error.to_string()), name, certs, None);
            }
        };
        let now_unix = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let anchored = best_path(&certs, &self.roots.anchors);
        let last_chain_expiry = anchored.as_ref().map(|(_, expiry)| *expiry);
        if strict.is_ok() {
            return ChainReport::new(Vec::new(), Some(true), None, name, certs, last_chain_expiry);
        }

        let mut problems = Vec::new();
        if let Err(error) = verify_server_name(&parsed, server_name) {
            problems.push(name_problem(&error, &name, &certs));
        }
        // Trust, with the dates set aside: verify at `now`, and while the only error is a date, again at
        // the date that failed (bounded), so that an expired chain still says whether it is trusted.
        let mut trusted = None;
        let mut at = now;
        for _ in 0..=MAX_TIME_SHIFTS {
            let result = verify_server_cert_signed_by_trust_anchor(&parsed, &self.roots.store, intermediates, at, algs);
            let shifted = match result {
                Ok(()) => {
                    trusted = Some(true);
                    break;
                }
                Err(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { not_after, .. })) => {
                    Some(not_after)
                }
                Err(rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { not_before, .. })) => {
                    Some(not_before)
                }
                Err(error) if is_date_error(&error) => None,
                Err(error) => {
                    trusted = Some(false);
                    problems.push(trust_problem(&error, &certs, self.roots.is_empty()));
                    break;
                }
            };
            match shifted {
                Some(next) if next != at => at = next,
                _ => break,
            }
        }
        // Dates at `now`: of the certificates on the best path to a root when there is one (an extra
        // certificate on no path does not matter), else of every presented certificate.
        let on_path: Vec<&CertInfo> = match (&anchored, trusted) {
            (Some((path, _)), Some(true)) => path.iter().filter_map(|index| certs.get(*index)).collect(),
            _ => certs.iter().collect(),
        };
        problems.extend(on_path.iter().filter_map(|cert| cert.date_problem(now_unix)));
        // rustls's own verdict is always among the problems, even where the path rebuilt by names differs.
        if let Err(error) = &strict
            && !problems.iter().any(|problem| problem.kind == classify(error))
        {
            problems.push(Problem { kind: classify(error), message: error.to_string() });
        }
        // A path rebuilt by names only counts once rustls found the chain trusted.
        let last_chain_expiry = last_chain_expiry.filter(|_| trusted == Some(true));
        ChainReport::new(problems, trusted, error, name, certs, last_chain_expiry)
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let report = self.analyse(end_entity, intermediates, server_name, ocsp_response, now);
        *self.report.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(report);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.as_ref().and_then(|inner| inner.root_hint_subjects())
    }
}

fn is_date_error(error: &rustls::Error) -> bool {
    matches!(classify(error), Verdict::Expired | Verdict::NotYetValid)
}

/// The kind of problem a rustls error is.
pub fn classify(error: &rustls::Error) -> Verdict {
    #[allow(deprecated)]
    match error {
        rustls::Error::InvalidCertificate(error) => match error {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Verdict::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => Verdict::NotYetValid,
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithm
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => Verdict::Untrusted,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => Verdict::Hostname,
            _ => Verdict::Other,
        },
        _ => Verdict::Other,
    }
}

fn trust_problem(error: &rustls::Error, certs: &[CertInfo], no_roots: bool) -> Problem {
    let kind = classify(error);
    let self_signed = certs.len() == 1 && certs.first().is_some_and(CertInfo::is_self_issued);
    let message = match error {
        _ if no_roots => "no trusted root certificates on this machine".to_owned(),
        _ if kind == Verdict::Untrusted && self_signed => {
            format!("self-signed certificate {} is not trusted", certs.first().map(CertInfo::label).unwrap_or_default())
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            let top = certs.iter().rev().find(|cert| cert.parsed()).map(|cert| format!("{:?}", cert.issuer));
            format!("unknown issuer: no trusted root for {}", top.unwrap_or_else(|| "the chain".to_owned()))
        }
        rustls::Error::InvalidCertificate(CertificateError::BadSignature) => {
            "a certificate of the chain has a bad signature".to_owned()
        }
        _ if kind == Verdict::Untrusted => {
            "no trusted path: a signature in the chain uses an unsupported algorithm or does not match its issuer's key"
                .to_owned()
        }
        other => other.to_string(),
    };
    Problem { kind, message }
}

fn name_problem(error: &rustls::Error, name: &str, certs: &[CertInfo]) -> Problem {
    let kind = classify(error);
    let message = match (kind, certs.first()) {
        (Verdict::Hostname, Some(leaf)) if leaf.sans.is_empty() => {
            format!("certificate {} is not valid for {name:?}: it has no subject alternative names", leaf.label())
        }
        (Verdict::Hostname, Some(leaf)) => {
            format!("certificate is not valid for {name:?}, only for {}", leaf.sans.join(", "))
        }
        _ => error.to_string(),
    };
    Problem { kind, message }
}

/// The negotiated parameters of a finished handshake.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: Option<String>,
    /// The cipher suite's IANA name, such as `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<String>,
    /// The ALPN protocol the server chose.
    pub alpn: Option<String>,
}

impl Session {
    /// Reads the negotiated parameters of a connection.
    pub fn of(state: &rustls::CommonState) -> Self {
        Self {
            version: state.protocol_version().map(version_name),
            cipher_suite: state
                .negotiated_cipher_suite()
                .map(|suite| suite.suite().as_str().map_or_else(|| format!("{:?}", suite.suite()), str::to_owned)),
            alpn: state.alpn_protocol().map(|proto| String::from_utf8_lossy(proto).into_owned()),
        }
    }
}

/// `TLSv1.3`-style name of a protocol version.
pub fn version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1".to_owned(),
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0".to_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::chain::rfc3339;

    #[test]
    fn classifies_certificate_errors() {
        let cert = |error| rustls::Error::InvalidCertificate(error);
        assert_eq!(classify(&cert(CertificateError::Expired)), Verdict::Expired);
        assert_eq!(classify(&cert(CertificateError::NotValidYet)), Verdict::NotYetValid);
        assert_eq!(classify(&cert(CertificateError::UnknownIssuer)), Verdict::Untrusted);
        assert_eq!(classify(&cert(CertificateError::BadSignature)), Verdict::Untrusted);
        assert_eq!(classify(&cert(CertificateError::NotValidForName)), Verdict::Hostname);
        assert_eq!(classify(&cert(CertificateError::InvalidPurpose)), Verdict::Other);
        assert_eq!(classify(&rustls::Error::General("x".to_owned())), Verdict::Other);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
