//! The secrets the Kubernetes manifests carry: prober tokens (their hashes for the scheduler), the store
//! password, and optionally the TLS material. Never printed: `Debug` shows only what exists.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read as _;

use serde_json::json;

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
    /// The store's basic auth password.
    pub store_password: String,
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
        Ok(Self { tokens, store_password, created_at, tls: None })
    }

    /// The scheduler's `tokens.json`: each region token's SHA-256, never the token.
    pub fn tokens_json(&self) -> String {
        let entries: Vec<_> = self
            .tokens
            .iter()
            .map(|(region, token)| {
                json!({"sha256": probenet_checks::tls::sha256_hex(token.as_bytes()), "region": region,
                    "created_at": self.created_at})
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&json!({"tokens": entries})).unwrap_or_default();
        text.push('\n');
        text
    }
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
            store_password: "hunter2".to_owned(),
            created_at: String::new(),
            tls: Some(TlsMaterial { ca_pem: "CA".into(), cert_pem: "CERT".into(), key_pem: "KEY".into() }),
        };
        let shown = format!("{secrets:?}");
        assert!(!shown.contains("pnt_secret") && !shown.contains("hunter2") && !shown.contains("KEY"), "{shown}");
    }
}
