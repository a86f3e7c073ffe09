//! Bearer tokens: created once and shown once, stored only as SHA-256 hashes in `DATA/tokens.json`, each bound
//! to one region (a prober's) or to the read API (an admin's).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use probenet_checks::tls::{provider, sha256_hex};
use serde::{Deserialize, Serialize};

/// The file holding the token hashes, inside the data directory.
pub const FILE: &str = "tokens.json";

/// Every token starts with this, so a leaked one is easy to recognise.
pub const PREFIX: &str = "pnt_";

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Act as a prober of this region (the `/v1/` protocol).
    Region(String),
    /// Read the `/api/v1/` API.
    Admin,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Region(region) => write!(f, "region {region}"),
            Self::Admin => write!(f, "admin"),
        }
    }
}

/// Why tokens could not be created or read. Never holds a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The data directory or the tokens file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The tokens file is not what this build writes.
    #[error("{path}: not a valid tokens file: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The system's random source failed.
    #[error("no random bytes available")]
    Random,
    /// A region name that cannot be a region.
    #[error("invalid region name {0:?}")]
    Region(String),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokensFile {
    tokens: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// SHA-256 of the token, lowercase hex.
    sha256: String,
    /// The region a prober token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    /// Whether it is an admin token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    admin: bool,
    /// When it was created, RFC 3339.
    created_at: String,
}

/// Creates a token for `scope`, records its hash in `DATA/tokens.json` (created 0600, replaced atomically) and
/// returns the token: the only time it is ever seen.
pub fn create(data: &Path, scope: &Scope) -> Result<String, TokenError> {
    if let Scope::Region(region) = scope
        && (region.is_empty() || region.len() > 128 || region.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(TokenError::Region(region.clone()));
    }
    crate::files::create_private_dir(data).map_err(|source| TokenError::Io { path: data.to_owned(), source })?;
    let mut secret = [0u8; 32];
    provider().secure_random.fill(&mut secret).map_err(|_| TokenError::Random)?;
    let token = format!("{PREFIX}{}", base64url(&secret));
    let path = data.join(FILE);
    let mut file = read_file(&path)?.unwrap_or_default();
    let (region, admin) = match scope {
        Scope::Region(region) => (Some(region.clone()), false),
        Scope::Admin => (None, true),
    };
    file.tokens.push(Entry {
        sha256: sha256_hex(token.as_bytes()),
        region,
        admin,
        created_at: crate::time::rfc3339_ms(crate::time::now_ms()),
    });
    let mut text = serde_json::to_string_pretty(&file)
        .map_err(|error| TokenError::Invalid { path: path.clone(), message: error.to_string() })?;
    text.push('\n');
    crate::files::write_private(&path, text.as_bytes())
        .map_err(|source| TokenError::Io { path: path.clone(), source })?;
    Ok(token)
}

fn read_file(path: &Path) -> Result<Option<TokensFile>, TokenError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(TokenError::Io { path: path.to_owned(), source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| TokenError::Invalid { path: path.to_owned(), message: error.to_string() })
}

/// The tokens a scheduler accepts, re-read when the file changes (a token created while it runs works at once;
/// one removed from the file stops working).
#[derive(Debug)]
pub struct Tokens {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

#[derive(Debug, Default)]
struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    entries: Vec<(String, Scope)>,
}

impl Tokens {
    /// Reads `DATA/tokens.json` (a missing file means no tokens yet).
    pub fn open(data: &Path) -> Result<Self, TokenError> {
        let tokens = Self { path: data.join(FILE), loaded: Mutex::new(Loaded::default()) };
        tokens.refresh()?;
        Ok(tokens)
    }

    /// Re-reads the file if its modification time or size changed. A file that became invalid keeps the
    /// tokens read before.
    pub fn refresh(&self) -> Result<bool, TokenError> {
        let stamp =
            fs::metadata(&self.path).ok().map(|meta| (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()));
        {
            let loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if loaded.stamp == stamp {
                return Ok(false);
            }
        }
        let entries = match read_file(&self.path)? {
            None => Vec::new(),
            Some(file) => file
                .tokens
                .into_iter()
                .filter_map(|entry| {
                    let scope = match (entry.admin, entry.region) {
                        (true, None) => Scope::Admin,
                        (false, Some(region)) => Scope::Region(region),
                        _ => return None,
                    };
                    Some((entry.sha256.to_ascii_lowercase(), scope))
                })
                .collect(),
        };
        let mut loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded.stamp = stamp;
        loaded.entries = entries;
        Ok(true)
    }

    /// The scope of a presented token, or None for an unknown one. Compares hashes in constant time.
    pub fn verify(&self, token: &str) -> Option<Scope> {
        let hash = sha256_hex(token.as_bytes());
        if let Some(scope) = self.find(&hash) {
            return Some(scope);
        }
        match self.refresh() {
            Ok(true) => self.find(&hash),
            Ok(false) => None,
            Err(error) => {
                tracing::warn!(%error, "tokens file not re-read; keeping the tokens read before");
                None
            }
        }
    }

    fn find(&self, hash: &str) -> Option<Scope> {
        let loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut found = None;
        for (stored, scope) in &loaded.entries {
            if constant_time_eq(stored.as_bytes(), hash.as_bytes()) && found.is_none() {
                found = Some(scope.clone());
            }
        }
        found
    }
}

/// Equality whose time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Base64url without padding (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn base64url_matches_rfc4648() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff, 0xbf]), "-_-_");
        assert_eq!(base64url(&[0u8; 32]).len(), 43);
    }

    #[test]
    fn a_token_is_stored_as_a_hash_and_verifies_for_its_scope_only() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let eu = create(dir.path(), &Scope::Region("eu-west".into())).unwrap_or_else(|error| panic!("{error}"));
        let admin = create(dir.path(), &Scope::Admin).unwrap_or_else(|error| panic!("{error}"));
        assert!(eu.starts_with(PREFIX) && eu.len() == PREFIX.len() + 43, "{eu}");
        assert_ne!(eu, admin);
        let path = dir.path().join(FILE);
        let text = fs::read_to_string(&path).unwrap_or_else(|error| panic!("{error}"));
        assert!(!text.contains(&eu[PREFIX.len()..]) && !text.contains(&admin[PREFIX.len()..]));
        assert!(text.contains(&sha256_hex(eu.as_bytes())));
        let mode = fs::metadata(&path).map(|meta| meta.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o600);

        let tokens = Tokens::open(dir.path()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(tokens.verify(&eu), Some(Scope::Region("eu-west".into())));
        assert_eq!(tokens.verify(&admin), Some(Scope::Admin));
        assert_eq!(tokens.verify("pnt_nope"), None);
        assert_eq!(tokens.verify(&eu[..eu.len() - 1]), None);

        // A token created while the scheduler runs works at once.
        let later = create(dir.path(), &Scope::Region("us-east".into())).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(tokens.verify(&later), Some(Scope::Region("us-east".into())));
    }

    #[test]
    fn a_broken_tokens_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        fs::write(dir.path().join(FILE), "not json").unwrap_or_else(|error| panic!("{error}"));
        let error = create(dir.path(), &Scope::Admin).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(error.contains("not a valid tokens file"), "{error}");
        assert_eq!(fs::read_to_string(dir.path().join(FILE)).unwrap_or_default(), "not json");
        assert!(create(dir.path(), &Scope::Region("with space".into())).is_err());
    }
}
