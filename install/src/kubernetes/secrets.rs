//! The secrets the Kubernetes manifests carry: prober tokens (their hashes for the scheduler), the admin and
//! dashboard tokens, the store password, the TLS material, and the PostgreSQL password and CA read from the
//! files the stack names. Never printed: `Debug` shows only what exists.
//!
//! [`Secrets::keep`] keeps them in the output directory's `secrets/` (0700, files 0600), as `install local`
//! keeps its own: rendering again reads them back, and only `--rotate` makes new ones.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read as _;
use std::path::Path;

use probenet_scheduler::pki::{CA_CERT, SERVER_CERT, SERVER_KEY};

use serde_json::json;

use crate::secrets::SecretError;
use crate::stack::{SchedulerStore, SecretSource};

/// PEM certificate and key of the scheduler, and the CA that signed it.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The scheduler's certificate chain (PEM).
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsMaterial { .. }")
    }
}

/// Every secret of a Kubernetes deployment.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    /// A prober token per region.
    pub tokens: BTreeMap<String, String>,
    /// The admin token (read API, `/metrics`, `/api/v1/cluster`); its hash in `tokens.json`.
    pub admin_token: String,
    /// The dashboard's read token (the checks config's `dashboard.token`).
    pub dashboard_token: String,
    /// The store's basic auth password.
    pub store_password: String,
    /// The PostgreSQL password, when the stack names a file for it (`store_password: ${file:...}`).
    pub postgres_password: Option<String>,
    /// The PostgreSQL server's CA, when the stack names a file for it (`store_ca: ${file:...}`).
    pub postgres_ca: Option<String>,
    /// When the tokens were made (RFC 3339), recorded in `tokens.json`.
    pub created_at: String,
    /// The TLS material, when the installer made it.
    pub tls: Option<TlsMaterial>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("token_regions", &self.tokens.keys().collect::<Vec<_>>())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// New random secrets for these regions (tokens as `probenet token create` makes them: `pnt_` and 32
    /// random bytes, base64url).
    pub fn generate<'a>(regions: impl IntoIterator<Item = &'a str>) -> std::io::Result<Self> {
        let mut tokens = BTreeMap::new();
        for region in regions {
            tokens.insert(region.to_owned(), format!("pnt_{}", base64url(&random::<32>()?)));
        }
        let store_password = base64url(&random::<24>()?);
        let created_at = probenet_checks::time::rfc3339_ms(probenet_checks::time::now_ms());
        Ok(Self {
            tokens,
            admin_token: new_token()?,
            dashboard_token: new_token()?,
            store_password,
            postgres_password: None,
            postgres_ca: None,
            created_at,
            tls: None,
        })
    }

    /// The secrets kept in `dir` (the output directory's `secrets/`): read back when there, made (and written,
    /// 0600) when missing; all made anew with `rotate`. The CA and the server certificate are the scheduler's
    /// own PKI (`ca.pem`, `server.pem`...): the certificate is made again, by the same CA, when `tls_names`
    /// changed. Files the stack names (PostgreSQL password and CA) are read too.
    pub fn keep(
        dir: &Path,
        stack: &crate::stack::Stack,
        tls_names: &[String],
        rotate: bool,
    ) -> Result<Self, SecretError> {
        use std::os::unix::fs::PermissionsExt as _;
        fs::create_dir_all(dir).map_err(io(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        if rotate {
            for entry in fs::read_dir(dir).map_err(io(dir))?.flatten() {
                let path = entry.path();
                if path.is_file() {
                    fs::remove_file(&path).map_err(io(&path))?;
                }
            }
        }
        // With `localhost` (and loopback addresses), as the scheduler's PKI checks a certificate is current by it.
        let sans = probenet_scheduler::pki::wanted_sans(stack.scheduler.listen, tls_names);
        crate::secrets::ca_and_server(dir, &sans)?;
        let read = |name: &str| fs::read_to_string(dir.join(name)).map_err(io(&dir.join(name)));
        let tls = TlsMaterial { ca_pem: read(CA_CERT)?, cert_pem: read(SERVER_CERT)?, key_pem: read(SERVER_KEY)? };
        let kept = |name: &str, make: &dyn Fn() -> std::io::Result<String>| -> Result<String, SecretError> {
            let path = dir.join(name);
            match fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
                _ => {
                    let value = make().map_err(io(&path))?;
                    crate::secrets::write_private(&path, format!("{value}\n").as_bytes())?;
                    Ok(value)
                }
            }
        };
        let mut tokens = BTreeMap::new();
        for region in stack.regions.keys() {
            tokens.insert(region.clone(), kept(&format!("prober-{region}.token"), &new_token)?);
        }
        let now = || Ok(probenet_checks::time::rfc3339_ms(probenet_checks::time::now_ms()));
        let from_file = |source: Option<&SecretSource>| -> Result<Option<String>, SecretError> {
            match source {
                Some(SecretSource::File(path)) => fs::read_to_string(path).map(Some).map_err(io(path)),
                _ => Ok(None),
            }
        };
        let (postgres_password, postgres_ca) = match &stack.scheduler.store {
            SchedulerStore::Postgres(store) => (
                from_file(Some(&store.password))?.map(|text| text.trim_end_matches(['\r', '\n']).to_owned()),
                from_file(store.ca.as_ref())?,
            ),
            SchedulerStore::Embedded | SchedulerStore::Local { .. } => (None, None),
        };
        Ok(Self {
            tokens,
            admin_token: kept("admin.token", &new_token)?,
            dashboard_token: kept("dashboard.token", &new_token)?,
            store_password: kept("store-password", &|| Ok(base64url(&random::<24>()?)))?,
            postgres_password,
            postgres_ca,
            created_at: kept("created-at", &now)?,
            tls: Some(tls),
        })
    }

    /// The scheduler's `tokens.json`: each region token's SHA-256, never the token.
    pub fn tokens_json(&self) -> String {
        let mut entries: Vec<_> = self
            .tokens
            .iter()
            .map(|(region, token)| {
                json!({"sha256": probenet_checks::tls::sha256_hex(token.as_bytes()), "region": region,
                    "created_at": self.created_at})
            })
            .collect();
        entries.push(json!({"sha256": probenet_checks::tls::sha256_hex(self.admin_token.as_bytes()), "admin": true,
            "created_at": self.created_at}));
        let mut text = serde_json::to_string_pretty(&json!({"tokens": entries})).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// A token as `probenet token create` makes them: `pnt_` and 32 random bytes, base64url.
fn new_token() -> std::io::Result<String> {
    Ok(format!("pnt_{}", base64url(&random::<32>()?)))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretError + '_ {
    move |source| SecretError::Io { path: path.to_owned(), source }
}

fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Base64url without padding.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, byte)| n | (u32::from(*byte) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_base64url() {
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn debug_shows_no_secret() {
        let secrets = Secrets {
            tokens: BTreeMap::from([("eu".to_owned(), "pnt_secret".to_owned())]),
            admin_token: "pnt_admin".to_owned(),
            dashboard_token: "pnt_dash".to_owned(),
            store_password: "hunter2".to_owned(),
            postgres_password: Some("pgpass".to_owned()),
            postgres_ca: None,
            created_at: String::new(),
            tls: Some(TlsMaterial { ca_pem: "CA".into(), cert_pem: "CERT".into(), key_pem: "KEY".into() }),
        };
        let shown = format!("{secrets:?}");
        for secret in ["pnt_secret", "hunter2", "KEY", "pnt_admin", "pnt_dash", "pgpass"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
