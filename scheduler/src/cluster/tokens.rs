//! Prober and admin tokens of replicated schedulers, in the database (only their SHA-256, as in `tokens.json`):
//! `probenet token create|list|revoke --store postgres://...` works against a running cluster, and every replica
//! re-reads them every couple of seconds.

use tokio_postgres::Client;

use crate::tokens::{self, Listed, Scope, TokenError};

fn scope_text(scope: &Scope) -> String {
    match scope {
        Scope::Admin => "admin".to_owned(),
        Scope::Region(region) => format!("region:{region}"),
    }
}

fn scope_of(text: &str) -> Option<Scope> {
    match text {
        "admin" => Some(Scope::Admin),
        _ => text.strip_prefix("region:").map(|region| Scope::Region(region.to_owned())),
    }
}

/// Why a token call on the database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbTokenError {
    /// Making the token failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The database refused or could not be reached.
    #[error("database: {}", probenet_pg::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}

/// Creates a token for `scope`, records its hash, and returns the token: the only time it is seen.
pub async fn create(client: &Client, scope: &Scope) -> Result<String, DbTokenError> {
    let (token, sha256) = tokens::generate(scope)?;
    client
        .execute("INSERT INTO scheduler_tokens (sha256, scope) VALUES ($1, $2)", &[&sha256, &scope_text(scope)])
        .await?;
    Ok(token)
}

/// Every token, oldest first (never a token, never its whole hash).
pub async fn list(client: &Client) -> Result<Vec<Listed>, DbTokenError> {
    let rows = client
        .query(
            "SELECT sha256, scope, CAST(EXTRACT(EPOCH FROM created_at) * 1000 AS BIGINT)
             FROM scheduler_tokens ORDER BY created_at, sha256",
            &[],
        )
        .await?;
    let mut listed = Vec::new();
    for row in rows {
        let sha256: String = row.try_get(0)?;
        let scope: String = row.try_get(1)?;
        let created_ms: i64 = row.try_get(2)?;
        if let Some(scope) = scope_of(&scope) {
            listed.push(Listed {
                id: tokens::id_of_hash(&sha256),
                scope,
                created_at: crate::time::rfc3339_ms(created_ms),
            });
        }
    }
    Ok(listed)
}

/// Removes the token whose id (or a unique prefix of at least 6 characters of it) is `id`.
pub async fn revoke(client: &Client, id: &str) -> Result<Listed, DbTokenError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 6 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(TokenError::NoSuchToken(id).into());
    }
    let matching: Vec<Listed> = list(client).await?.into_iter().filter(|token| token.id.starts_with(&id)).collect();
    let [token] = &matching[..] else {
        let error = if matching.is_empty() { TokenError::NoSuchToken(id) } else { TokenError::Ambiguous(id) };
        return Err(error.into());
    };
    client.execute("DELETE FROM scheduler_tokens WHERE sha256 LIKE $1 || '%'", &[&token.id]).await?;
    Ok(token.clone())
}

/// Every token as (SHA-256, scope), for the replicas.
pub async fn entries(client: &Client) -> Result<Vec<(String, Scope)>, tokio_postgres::Error> {
    let rows = client.query("SELECT sha256, scope FROM scheduler_tokens", &[]).await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let sha256: String = row.try_get(0)?;
        let scope: String = row.try_get(1)?;
        if let Some(scope) = scope_of(&scope) {
            entries.push((sha256, scope));
        }
    }
    Ok(entries)
}

/// Adds tokens (from a data directory's `tokens.json`) that the database does not have yet; returns how many.
pub async fn import(client: &Client, entries: &[(String, Scope)]) -> Result<u64, tokio_postgres::Error> {
    let mut added = 0;
    for (sha256, scope) in entries {
        added += client
            .execute(
                "INSERT INTO scheduler_tokens (sha256, scope) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
                &[sha256, &scope_text(scope)],
            )
            .await?;
    }
    Ok(added)
}
