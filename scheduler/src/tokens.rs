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
    /// No token has this id.
    #[error("no token has the id {0:?} (see `probenet token list`)")]
    NoSuchToken(String),
    /// Several tokens start with this id.
    #[error("several tokens start with {0:?}: give more of the id")]
    Ambiguous(String),
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

impl Entry {
    /// What the token may do; None for an entry this build cannot read.
    fn scope(&self) -> Option<Scope> {
        match (self.admin, &self.region) {
            (true, None) => Some(Scope::Admin),
            (false, Some(region)) => Some(Scope::Region(region.clone())),
            _ => None,
        }
    }
}

/// A token's public id: the first characters of its hash. It names the token in `token list`, `token revoke`
/// and the scheduler's records of which token registered a prober, and reveals nothing of the token.
pub fn id_of_hash(sha256: &str) -> String {
    sha256.chars().take(ID_LEN).collect()
}

/// How many hex characters of the hash make a token's id.
const ID_LEN: usize = 12;

/// One token as `token list` shows it (never the token, never its whole hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The token's id.
    pub id: String,
    /// What it may do.
    pub scope: Scope,
    /// When it was created, RFC 3339.
    pub created_at: String,
}

/// Holds the lock of `DATA/tokens.json` while the file is read and replaced, so that concurrent `token create`
/// and `token revoke` never lose each other's change.
fn locked(data: &Path) -> Result<nix::fcntl::Flock<fs::File>, TokenError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = data.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| TokenError::Io { path: path.clone(), source })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| TokenError::Io { path, source: std::io::Error::from(errno) })
}

/// The lock file beside the tokens file.
const LOCK_FILE: &str = "tokens.json.lock";

fn write_file(path: &Path, file: &TokensFile) -> Result<(), TokenError> {
    let mut text = serde_json::to_string_pretty(file)
        .map_err(|error| TokenError::Invalid { path: path.to_owned(), message: error.to_string() })?;
    text.push('\n');
    crate::files::write_private(path, text.as_bytes())
        .map_err(|source| TokenError::Io { path: path.to_owned(), source })
}

/// Every token of `DATA/tokens.json`, oldest first.
pub fn list(data: &Path) -> Result<Vec<Listed>, TokenError> {
    let file = read_file(&data.join(FILE))?.unwrap_or_default();
    Ok(file
        .tokens
        .into_iter()
        .filter_map(|entry| {
            let scope = entry.scope()?;
            Some(Listed { id: id_of_hash(&entry.sha256), scope, created_at: entry.created_at })
        })
        .collect())
}

/// Removes the token whose id is `id` (a unique prefix of at least 6 characters also works); a running
/// scheduler stops accepting it within seconds. Returns the removed token's listing.
pub fn revoke(data: &Path, id: &str) -> Result<Listed, TokenError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 6 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(TokenError::NoSuchToken(id));
    }
    let _lock = locked(data)?;
    let path = data.join(FILE);
    let mut file = read_file(&path)?.unwrap_or_default();
    let matching: Vec<usize> = (0..file.tokens.len()).filter(|i| file.tokens[*i].sha256.starts_with(&id)).collect();
    let [index] = matching[..] else {
        return Err(if matching.is_empty() { TokenError::NoSuchToken(id) } else { TokenError::Ambiguous(id) });
    };
    let entry = file.tokens.remove(index);
    write_file(&path, &file)?;
    let scope = entry.scope().unwrap_or(Scope::Admin);
    Ok(Listed { id: id_of_hash(&entry.sha256), scope, created_at: entry.created_at })
}

/// Creates a token for `scope`, records its hash in `DATA/tokens.json` (created 0600, replaced atomically) and
/// returns the token: the only time it is ever seen.
pub fn create(data: &Path, scope: &Scope) -> Result<String, TokenError> {
    let (token, sha256) = generate(scope)?;
    crate::files::create_private_dir(data).map_err(|source| TokenError::Io { path: data.to_owned(), source })?;
    let _lock = locked(data)?;
    let path = data.join(FILE);
    let mut file = read_file(&path)?.unwrap_or_default();
    let (region, admin) = match scope {
        Scope::Region(region) => (Some(region.clone()), false),
        Scope::Admin => (None, true),
    };
    file.tokens.push(Entry { sha256, region, admin, created_at: crate::time::rfc3339_ms(crate::time::now_ms()) });
    write_file(&path, &file)?;
    Ok(token)
}

/// A new token for `scope` and its SHA-256 (lowercase hex), the only form in which it is kept.
pub fn generate(scope: &Scope) -> Result<(String, String), TokenError> {
    if let Scope::Region(region) = scope
        && (region.is_empty() || region.len() > 128 || region.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(TokenError::Region(region.clone()));
    }
    let mut secret = [0u8; 32];
    provider().secure_random.fill(&mut secret).map_err(|_| TokenError::Random)?;
    let token = format!("{PREFIX}{}", base64url(&secret));
    let sha256 = sha256_hex(token.as_bytes());
    Ok((token, sha256))
}

/// Every token of `DATA/tokens.json` as (SHA-256, scope), for moving them into a database.
pub fn entries(data: &Path) -> Result<Vec<(String, Scope)>, TokenError> {
    let file = read_file(&data.join(FILE))?.unwrap_or_default();
    Ok(file.tokens.into_iter().filter_map(|entry| Some((entry.sha256.to_ascii_lowercase(), entry.scope()?))).collect())
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
    /// Replicated: the tokens come from the database ([`Tokens::replace`]), not from the file.
    from_database: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    entries: Vec<(String, Scope)>,
}

impl Tokens {
    /// Reads `DATA/tokens.json` (a missing file means no tokens yet).
    pub fn open(data: &Path) -> Result<Self, TokenError> {
        let tokens = Self {
            path: data.join(FILE),
            loaded: Mutex::new(Loaded::default()),
            from_database: std::sync::atomic::AtomicBool::new(false),
        };
        tokens.refresh()?;
        Ok(tokens)
    }

    /// Re-reads the file if its modification time or size changed. A file that became invalid keeps the
    /// tokens read before. Refreshes run one at a time: two at once (a prober's request and the periodic one)
    /// could otherwise store an older read over a newer one, and refuse a token created in between.
    pub fn refresh(&self) -> Result<bool, TokenError> {
        if self.from_database.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(false);
        }
        let mut loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stamp =
            fs::metadata(&self.path).ok().map(|meta| (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()));
        if loaded.stamp == stamp {
            return Ok(false);
        }
        let entries = match read_file(&self.path)? {
            None => Vec::new(),
            Some(file) => file
                .tokens
                .into_iter()
                .filter_map(|entry| Some((entry.sha256.to_ascii_lowercase(), entry.scope()?)))
                .collect(),
        };
        loaded.stamp = stamp;
        loaded.entries = entries;
        Ok(true)
    }

    /// Replicated: the tokens are those of the database from now on (the file is no longer read).
    pub fn replace(&self, entries: Vec<(String, Scope)>) {
        self.from_database.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded.entries = entries;
    }

    /// The scope of a presented token, or None for an unknown one. Compares hashes in constant time.
    pub fn verify(&self, token: &str) -> Option<Scope> {
        self.identify(token).map(|principal| principal.scope)
    }

    /// Who presents `token`: its scope and its id, or None for an unknown token.
    pub fn identify(&self, token: &str) -> Option<Principal> {
        let hash = sha256_hex(token.as_bytes());
        if let Some(principal) = self.find(&hash) {
            return Some(principal);
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

    fn find(&self, hash: &str) -> Option<Principal> {
        let loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut found = None;
        for (stored, scope) in &loaded.entries {
            if constant_time_eq(stored.as_bytes(), hash.as_bytes()) && found.is_none() {
                found = Some(Principal { scope: scope.clone(), id: id_of_hash(stored) });
            }
        }
        found
    }
}

/// The holder of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What the token may do.
    pub scope: Scope,
    /// The token's id (see [`id_of_hash`]).
    pub id: String,
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
    fn tokens_are_listed_by_id_and_revoked_and_concurrent_creates_lose_none() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let data = dir.path().to_owned();
        // Eight writers at once, five tokens each: every one of the forty is kept.
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let data = data.clone();
                std::thread::spawn(move || {
                    (0..5).map(|_| create(&data, &Scope::Region("eu".into())).unwrap_or_default()).collect::<Vec<_>>()
                })
            })
            .collect();
        let made: Vec<String> = writers.into_iter().flat_map(|writer| writer.join().unwrap_or_default()).collect();
        assert_eq!(made.len(), 40);
        let listed = list(&data).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(listed.len(), 40, "concurrent creates lost tokens");
        let tokens = Tokens::open(&data).unwrap_or_else(|error| panic!("{error}"));
        assert!(made.iter().all(|token| tokens.verify(token).is_some()));

        // The id is a prefix of the hash: it names the token without revealing it.
        let first = &made[0];
        let id = tokens.identify(first).map(|principal| principal.id).unwrap_or_default();
        assert_eq!(id.len(), 12);
        assert!(sha256_hex(first.as_bytes()).starts_with(&id));
        assert!(!first.contains(&id));
        let revoked = revoke(&data, &id).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(revoked.scope, Scope::Region("eu".into()));
        assert_eq!(list(&data).map(|all| all.len()).unwrap_or(0), 39);
        // A running scheduler re-reads the file every two seconds.
        assert!(tokens.refresh().unwrap_or(false));
        assert_eq!(tokens.verify(first), None, "a revoked token still works");
        assert!(tokens.verify(&made[1]).is_some());
        assert!(matches!(revoke(&data, &id), Err(TokenError::NoSuchToken(_))));
        assert!(matches!(revoke(&data, "abc"), Err(TokenError::NoSuchToken(_))));
    }

    #[test]
    fn a_token_created_while_others_refresh_works_at_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let data = dir.path().to_owned();
        let tokens = std::sync::Arc::new(Tokens::open(&data).unwrap_or_else(|error| panic!("{error}")));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Others refresh all the time (the periodic refresh, other probers' requests).
        let refreshers: Vec<_> = (0..3)
            .map(|_| {
                let (tokens, done) = (tokens.clone(), done.clone());
                std::thread::spawn(move || {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = tokens.refresh();
                    }
                })
            })
            .collect();
        let mut refused = 0;
        for _ in 0..100 {
            let token = create(&data, &Scope::Region("eu".into())).unwrap_or_default();
            refused += usize::from(tokens.verify(&token).is_none());
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for refresher in refreshers {
            let _ = refresher.join();
        }
        assert_eq!(refused, 0, "new tokens refused by a scheduler that re-reads the file");
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
