//! The install's secrets, made once and kept: the CA and server certificate (the scheduler's own PKI, made in
//! the install's TLS directory), the client certificate vmalert presents to Alertmanager, the store password,
//! prober tokens and the admin token (hashes in the scheduler's `tokens.json`). Keys and secrets are 0600.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use probenet_scheduler::pki;
use probenet_scheduler::tokens::{self, Scope};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Why a secret could not be made. Never holds one.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The scheduler's PKI failed.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// A token could not be made.
    #[error(transparent)]
    Token(#[from] tokens::TokenError),
    /// The stack asks for something this target cannot do.
    #[error("{0}")]
    Refused(String),
    /// A certificate could not be made.
    #[error("cannot make a certificate: {0}")]
    Generate(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretError + '_ {
    move |source| SecretError::Io { path: path.to_owned(), source }
}

/// Writes a new private file (0600, created with that mode: never readable by others, even briefly).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SecretError> {
    let temporary = path.with_extension("tmp-probenet");
    let _ = fs::remove_file(&temporary);
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    fs::rename(&temporary, path).map_err(io(path))
}

/// Makes the CA and the server certificate in `tls_dir` (`ca.pem`, `ca-key.pem`, `server.pem`,
/// `server-key.pem`: the scheduler's file names), or keeps them when they are current.
pub fn ca_and_server(tls_dir: &Path, sans: &[String]) -> Result<(), SecretError> {
    pki::auto(tls_dir, sans)?;
    Ok(())
}

/// Makes a client certificate (`cert`, key 0600) signed by the CA in `tls_dir`, unless both files exist.
pub fn client_cert(tls_dir: &Path, common_name: &str, cert: &Path, key: &Path) -> Result<(), SecretError> {
    if cert.exists() && key.exists() {
        return Ok(());
    }
    let ca_key_path = tls_dir.join(pki::CA_KEY);
    let ca_key_pem = fs::read_to_string(&ca_key_path).map_err(io(&ca_key_path))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|error| SecretError::Generate(error.to_string()))?;
    // The issuer as the scheduler's PKI makes its CA: same subject, same key usages.
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "probenet scheduler CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let issuer = Issuer::new(ca, &ca_key);
    let leaf_key = KeyPair::generate().map_err(|error| SecretError::Generate(error.to_string()))?;
    let mut params = CertificateParams::new(vec![common_name.to_owned()])
        .map_err(|error| SecretError::Generate(error.to_string()))?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    params.not_after = (now + std::time::Duration::from_secs(365 * 86_400)).into();
    let signed = params.signed_by(&leaf_key, &issuer).map_err(|error| SecretError::Generate(error.to_string()))?;
    write_private(key, leaf_key.serialize_pem().as_bytes())?;
    fs::write(cert, signed.pem()).map_err(io(cert))
}

/// A random secret: 32 bytes, URL-safe base64 without padding.
fn random() -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    let path = Path::new("/dev/urandom");
    let mut file = fs::File::open(path).map_err(io(path))?;
    std::io::Read::read_exact(&mut file, &mut bytes).map_err(io(path))?;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    Ok(bytes.iter().map(|byte| char::from(ALPHABET[usize::from(byte & 63)])).collect())
}

/// Makes a password (`file`) and its environment file (`env_file`, `variable=...`) when one is wanted, unless
/// `file` exists (then only a missing environment file is rewritten from it).
pub fn password(file: &Path, env: Option<(&Path, &str)>) -> Result<(), SecretError> {
    let password = match fs::read_to_string(file) {
        Ok(text) => text.trim().to_owned(),
        Err(_) => {
            let password = random()?;
            write_private(file, password.as_bytes())?;
            password
        }
    };
    if let Some((env_file, variable)) = env
        && !env_file.exists()
    {
        write_private(env_file, format!("{variable}={password}\n").as_bytes())?;
    }
    Ok(())
}

/// Copies a secret file into the install (0600), unless the copy already holds the same bytes.
pub fn copy_private(from: &Path, to: &Path) -> Result<(), SecretError> {
    let bytes = fs::read(from).map_err(io(from))?;
    if fs::read(to).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let _ = fs::remove_file(to);
    write_private(to, &bytes)
}

/// Makes a token for `scope` (its hash into `data/tokens.json`) and writes it to `file` (0600), unless `file`
/// exists.
pub fn token(scope: &Scope, data: &Path, file: &Path) -> Result<(), SecretError> {
    if file.exists() {
        return Ok(());
    }
    let token = tokens::create(data, scope)?;
    write_private(file, format!("{token}\n").as_bytes())
}
