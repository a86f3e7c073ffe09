//! The scheduler's certificates: its own CA and a server certificate made on first start in the data
//! directory (reused later, remade when close to expiry or when the names change), or the files given.

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use probenet_checks::tls::{CertInfo, provider, sha256_hex};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// The CA certificate, inside the data directory.
pub const CA_CERT: &str = "ca.pem";
/// The CA's private key (mode 0600).
pub const CA_KEY: &str = "ca-key.pem";
/// The server certificate.
pub const SERVER_CERT: &str = "server.pem";
/// The server's private key (mode 0600).
pub const SERVER_KEY: &str = "server-key.pem";

const CA_NAME: &str = "probenet scheduler CA";
const SERVER_NAME: &str = "probenet scheduler";
/// A server certificate is remade when it expires within this many days.
const RENEW_DAYS: i64 = 30;
const SERVER_DAYS: i64 = 365;
const CA_DAYS: i64 = 3650;

/// Why the certificates could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Making a certificate failed (such as a `--san` that is not a valid DNS name).
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate and key.
    #[error("cannot use the certificate: {0}")]
    Tls(String),
}

/// What the server presents, and what probers should trust.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The rustls configuration (ALPN `h2` and `http/1.1`).
    pub config: Arc<rustls::ServerConfig>,
    /// The CA's PEM, when the scheduler made its own.
    pub ca_pem: Option<String>,
    /// SHA-256 of the CA certificate (its own CA) or of the server certificate (given files), lowercase hex.
    pub fingerprint: String,
}

/// The names the server certificate must hold: `localhost`, 127.0.0.1, ::1, the listen address's IP when it is
/// not unspecified, and the extra names, without repeats.
pub fn wanted_sans(listen: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    let mut seen = BTreeSet::new();
    names.into_iter().map(|name| normalize(&name)).filter(|name| seen.insert(name.clone())).collect()
}

fn normalize(name: &str) -> String {
    match name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

/// Makes (first start) or reuses the CA and the server certificate in `data`.
pub fn auto(data: &Path, sans: &[String]) -> Result<ServerTls, PkiError> {
    crate::files::create_private_dir(data).map_err(|source| PkiError::Io { path: data.to_owned(), source })?;
    let (ca_key, ca_pem, ca_new) = ca(data)?;
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|error| PkiError::Invalid { path: data.join(CA_CERT), message: error.to_string() })?;
    let (cert_path, key_path) = (data.join(SERVER_CERT), data.join(SERVER_KEY));
    let reuse = !ca_new && server_is_current(&cert_path, &key_path, &ca_der, sans);
    if !reuse {
        let key = KeyPair::generate().map_err(|error| PkiError::Generate(error.to_string()))?;
        let mut params =
            CertificateParams::new(sans.to_vec()).map_err(|error| PkiError::Generate(error.to_string()))?;
        params.distinguished_name.push(DnType::CommonName, SERVER_NAME);
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, SERVER_DAYS);
        let issuer = Issuer::new(ca_params(), &ca_key);
        let cert = params.signed_by(&key, &issuer).map_err(|error| PkiError::Generate(error.to_string()))?;
        write(&key_path, key.serialize_pem().as_bytes())?;
        write(&cert_path, cert.pem().as_bytes())?;
        tracing::info!(path = %cert_path.display(), sans = sans.join(" "), "made a server certificate");
    }
    let chain = load_chain(&cert_path)?;
    let key = load_key(&key_path)?;
    let fingerprint = sha256_hex(ca_der.as_ref());
    Ok(ServerTls { config: server_config(chain, key)?, ca_pem: Some(ca_pem), fingerprint })
}

/// Uses the given certificate chain and key.
pub fn from_files(cert: &Path, key: &Path) -> Result<ServerTls, PkiError> {
    let chain = load_chain(cert)?;
    let fingerprint = chain.first().map(|leaf| sha256_hex(leaf.as_ref())).unwrap_or_default();
    let key = load_key(key)?;
    Ok(ServerTls { config: server_config(chain, key)?, ca_pem: None, fingerprint })
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| PkiError::Tls(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| PkiError::Tls(error.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CA's key and PEM, made when neither file exists; the flag says it was just made.
fn ca(data: &Path) -> Result<(KeyPair, String, bool), PkiError> {
    let (cert_path, key_path) = (data.join(CA_CERT), data.join(CA_KEY));
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            let pem = read(&cert_path)?;
            let key = KeyPair::from_pem(&read(&key_path)?)
                .map_err(|error| PkiError::Invalid { path: key_path.clone(), message: error.to_string() })?;
            let der = CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|error| PkiError::Invalid { path: cert_path.clone(), message: error.to_string() })?;
            let info = CertInfo::parse(der.as_ref());
            if info.subject != format!("CN={CA_NAME}") {
                let message = format!("not a probenet CA (subject {:?})", info.subject);
                return Err(PkiError::Invalid { path: cert_path, message });
            }
            if info.not_after_unix < crate::time::now_ms() / 1000 + RENEW_DAYS * 86_400 {
                tracing::warn!(path = %cert_path.display(), not_after = info.not_after, "the CA expires soon: remove ca.pem and ca-key.pem to make a new one, then give probers the new ca.pem");
            }
            Ok((key, pem, false))
        }
        (false, false) => {
            let key = KeyPair::generate().map_err(|error| PkiError::Generate(error.to_string()))?;
            let cert = ca_params().self_signed(&key).map_err(|error| PkiError::Generate(error.to_string()))?;
            write(&key_path, key.serialize_pem().as_bytes())?;
            write(&cert_path, cert.pem().as_bytes())?;
            tracing::info!(path = %cert_path.display(), "made a CA");
            Ok((key, cert.pem(), true))
        }
        (true, false) => Err(PkiError::Invalid { path: key_path, message: "missing, while ca.pem exists".into() }),
        (false, true) => Err(PkiError::Invalid { path: cert_path, message: "missing, while ca-key.pem exists".into() }),
    }
}

/// The CA's parameters: the same every time, so a stored CA key can sign again.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, CA_DAYS);
    params
}

/// Valid from yesterday (clocks differ) to `days` from today.
fn set_validity(params: &mut CertificateParams, days: i64) {
    let today = crate::time::now_ms().div_euclid(86_400_000);
    let date = |days: i64| {
        let (year, month, day) = crate::time::civil_from_days(days);
        rcgen::date_time_ymd(
            i32::try_from(year).unwrap_or(2000),
            u8::try_from(month).unwrap_or(1),
            u8::try_from(day).unwrap_or(1),
        )
    };
    params.not_before = date(today - 1);
    params.not_after = date(today + days);
}

/// Whether the stored server certificate can be used again: issued by this CA, valid for at least
/// [`RENEW_DAYS`] more, for exactly these names, and its key is there.
fn server_is_current(cert_path: &Path, key_path: &Path, ca: &CertificateDer<'static>, sans: &[String]) -> bool {
    let (Ok(chain), Ok(_)) = (load_chain(cert_path), load_key(key_path)) else {
        return false;
    };
    let Some(leaf) = chain.first() else {
        return false;
    };
    let info = CertInfo::parse(leaf.as_ref());
    let wanted: BTreeSet<String> = sans.iter().map(|name| normalize(name)).collect();
    let has: BTreeSet<String> = info.sans.iter().map(|name| normalize(name)).collect();
    if !info.parsed() || has != wanted {
        return false;
    }
    let soon = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(crate::time::now_ms() / 1000 + RENEW_DAYS * 86_400).unwrap_or(0),
    ));
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(ca.clone()).is_err() {
        return false;
    }
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build()
    else {
        return false;
    };
    let name = ServerName::try_from("localhost").map(|name| name.to_owned());
    name.is_ok_and(|name| verifier.verify_server_cert(leaf, &chain[1..], &name, &[], soon).is_ok())
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let text = read(path)?;
    let chain = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| PkiError::Invalid { path: path.to_owned(), message: error.to_string() })?;
    if chain.is_empty() {
        return Err(PkiError::Invalid { path: path.to_owned(), message: "no certificate in the file".into() });
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(read(path)?.as_bytes())
        .map_err(|error| PkiError::Invalid { path: path.to_owned(), message: format!("no private key: {error}") })
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io { path: path.to_owned(), source })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    crate::files::write_private(path, bytes).map_err(|source| PkiError::Io { path: path.to_owned(), source })
}
