//! The statements replicas share: live probers (a heartbeat is a row update, so every replica sees every
//! prober), the assignment the leader published (its generation and the probers it covers), and the members.

use std::time::Duration;

use probenet_pg::{Fence, FencedError};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// A live prober as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProberRow {
    /// Its region.
    pub region: String,
    /// Its name, unique among the live probers of its region.
    pub name: String,
    /// The id of the token that registered it.
    pub token: String,
    /// probenet's version it runs.
    pub version: String,
    /// The kinds it runs (empty: every kind).
    pub kinds: Vec<probenet_checks::Kind>,
    /// When it registered, unix ms.
    pub registered_at_ms: i64,
    /// Its last register or heartbeat, unix ms.
    pub last_heartbeat_ms: i64,
    /// How long until its lease ends, by the database clock.
    #[serde(skip)]
    pub remaining: Duration,
}

/// What the leader published: a generation and the probers its assignment covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The generation probers see.
    pub generation: u64,
    /// The hash of the config the leader ran when it published.
    pub config_hash: String,
    /// The probers the assignment covers, by region and name (without `remaining`).
    pub probers: Vec<ProberRow>,
    /// When it was published, unix ms by the database clock: ownership of the pairs starts then.
    pub published_at_ms: i64,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn kinds_text(kinds: &[probenet_checks::Kind]) -> String {
    serde_json::to_string(kinds).unwrap_or_else(|_| "[]".to_owned())
}

/// Registers or re-registers a prober for `lease`. `false` when its name is live in its region under another
/// token (the row is left alone).
pub async fn register(client: &Client, row: &ProberRow, lease: Duration) -> Result<bool, tokio_postgres::Error> {
    let changed = client
        .execute(
            "INSERT INTO scheduler_probers AS p
                 (region, name, token, version, kinds, registered_at_ms, last_heartbeat_ms, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8::BIGINT * INTERVAL '1 millisecond')
             ON CONFLICT (region, name) DO UPDATE SET
                 token = EXCLUDED.token, version = EXCLUDED.version, kinds = EXCLUDED.kinds,
                 registered_at_ms = EXCLUDED.registered_at_ms, last_heartbeat_ms = EXCLUDED.last_heartbeat_ms,
                 expires_at = EXCLUDED.expires_at
             WHERE p.token = EXCLUDED.token OR p.expires_at <= now()",
            &[
                &row.region,
                &row.name,
                &row.token,
                &row.version,
                &kinds_text(&row.kinds),
                &row.registered_at_ms,
                &row.last_heartbeat_ms,
                &millis(lease),
            ],
        )
        .await?;
    Ok(changed == 1)
}

/// Renews a prober's lease. Its row may have run out while the database was away: the same registration (the
/// name under the same token) is renewed all the same, since no other token can hold the name without
/// replacing the row. `false` when there is no such row (it must register again).
pub async fn heartbeat(
    client: &Client,
    region: &str,
    name: &str,
    token: &str,
    now_ms: i64,
    lease: Duration,
) -> Result<bool, tokio_postgres::Error> {
    let changed = client
        .execute(
            "UPDATE scheduler_probers
             SET last_heartbeat_ms = $4, expires_at = now() + $5::BIGINT * INTERVAL '1 millisecond'
             WHERE region = $1 AND name = $2 AND token = $3",
            &[&region, &name, &token, &now_ms, &millis(lease)],
        )
        .await?;
    Ok(changed == 1)
}

/// Shortens a prober's lease to end `grace` from now, unless it was heard from after `since_ms` (see
/// `Registry::suspect`).
pub async fn suspect(
    client: &Client,
    region: &str,
    name: &str,
    token: &str,
    since_ms: i64,
    grace: Duration,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE scheduler_probers
             SET expires_at = LEAST(expires_at, now() + $5::BIGINT * INTERVAL '1 millisecond')
             WHERE region = $1 AND name = $2 AND token = $3 AND last_heartbeat_ms <= $4",
            &[&region, &name, &token, &since_ms, &millis(grace)],
        )
        .await?;
    Ok(())
}

/// Removes a prober registered with `token`.
pub async fn deregister(client: &Client, region: &str, name: &str, token: &str) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM scheduler_probers WHERE region = $1 AND name = $2 AND token = $3",
            &[&region, &name, &token],
        )
        .await?;
    Ok(())
}

/// Every live prober, by region and name; rows that ran out a while ago are removed on the way.
pub async fn live_probers(client: &Client) -> Result<Vec<ProberRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT region, name, token, version, kinds, registered_at_ms, last_heartbeat_ms,
                    GREATEST(CAST(EXTRACT(EPOCH FROM (expires_at - now())) * 1000 AS BIGINT), 0)
             FROM scheduler_probers WHERE expires_at > now() ORDER BY region, name",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let kinds: String = row.try_get(4)?;
            let remaining: i64 = row.try_get(7)?;
            Ok(ProberRow {
                region: row.try_get(0)?,
                name: row.try_get(1)?,
                token: row.try_get(2)?,
                version: row.try_get(3)?,
                // Tolerant: a kind only a newer replica knows is left out.
                kinds: serde_json::from_str::<Vec<String>>(&kinds)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|key| probenet_checks::Kind::from_key(key))
                    .collect(),
                registered_at_ms: row.try_get(5)?,
                last_heartbeat_ms: row.try_get(6)?,
                remaining: Duration::from_millis(u64::try_from(remaining).unwrap_or(0)),
            })
        })
        .collect()
}

/// Deletes prober rows that ran out more than an hour ago (bounded housekeeping by the leader).
pub async fn forget_old_probers(client: &Client) -> Result<u64, tokio_postgres::Error> {
    client.execute("DELETE FROM scheduler_probers WHERE expires_at < now() - INTERVAL '1 hour'", &[]).await
}

/// The published assignment, if a leader ever published one.
pub async fn published(client: &Client) -> Result<Option<Published>, tokio_postgres::Error> {
    let Some(row) = client
        .query_opt(
            "SELECT generation, config_hash, probers, published_at_ms FROM scheduler_assignments WHERE id = 1",
            &[],
        )
        .await?
    else {
        return Ok(None);
    };
    let generation: i64 = row.try_get(0)?;
    let probers: String = row.try_get(2)?;
    Ok(Some(Published {
        generation: u64::try_from(generation).unwrap_or(0),
        config_hash: row.try_get(1)?,
        probers: serde_json::from_str(&probers).unwrap_or_default(),
        published_at_ms: row.try_get(3)?,
    }))
}

/// Publishes a new generation for `probers` under `config_hash`, fenced by the lease: a deposed leader's
/// publication is refused. Returns what was published.
pub async fn publish(
    client: &mut Client,
    fence: &Fence,
    config_hash: &str,
    probers: &[ProberRow],
) -> Result<Published, FencedError> {
    let tx = client.transaction().await?;
    fence.check(&tx).await?;
    let text = serde_json::to_string(probers).unwrap_or_else(|_| "[]".to_owned());
    let row = tx
        .query_one(
            "INSERT INTO scheduler_assignments AS a (id, generation, config_hash, probers, published_at_ms)
             VALUES (1, 1, $1, $2, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT))
             ON CONFLICT (id) DO UPDATE SET
                 generation = a.generation + 1, config_hash = EXCLUDED.config_hash, probers = EXCLUDED.probers,
                 published_at_ms = EXCLUDED.published_at_ms
             RETURNING generation, published_at_ms",
            &[&config_hash, &text],
        )
        .await?;
    let generation: i64 = row.try_get(0)?;
    let published_at_ms: i64 = row.try_get(1)?;
    tx.commit().await?;
    Ok(Published {
        generation: u64::try_from(generation).unwrap_or(0),
        config_hash: config_hash.to_owned(),
        probers: probers.to_vec(),
        published_at_ms,
    })
}

/// Stores a view the leader computes (the alerts page) for the followers to serve.
pub async fn put_view(client: &Client, name: &str, body: &str, at_ms: i64) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO scheduler_views (name, body, at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, at_ms = EXCLUDED.at_ms",
            &[&name, &body, &at_ms],
        )
        .await?;
    Ok(())
}

/// A view the leader stored, if any.
pub async fn view(client: &Client, name: &str) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client.query_opt("SELECT body FROM scheduler_views WHERE name = $1", &[&name]).await?;
    row.map(|row| row.try_get(0)).transpose()
}
