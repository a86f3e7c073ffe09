//! The replicas that share a database: each announces itself (its URL and version) and refreshes `last_seen`;
//! any replica can list the ones seen recently (by the database clock).

use std::time::Duration;

use tokio_postgres::Client;

/// A replica as announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The replica's name (unique among replicas).
    pub name: String,
    /// Where probers and readers reach it.
    pub url: String,
    /// The probenet version it runs.
    pub version: String,
    /// How long ago it last announced itself, by the database clock.
    pub age: Duration,
}

/// Records `name` as alive now (inserted or refreshed, with its current URL and version).
pub async fn announce(client: &Client, name: &str, url: &str, version: &str) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO scheduler_members (name, url, version, last_seen) VALUES ($1, $2, $3, now())
             ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, version = EXCLUDED.version, last_seen = now()",
            &[&name, &url, &version],
        )
        .await?;
    Ok(())
}

/// The replicas seen within `within`, by name.
pub async fn seen_within(client: &Client, within: Duration) -> Result<Vec<Member>, tokio_postgres::Error> {
    let millis = i64::try_from(within.as_millis()).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT name, url, version,
                    GREATEST(CAST(EXTRACT(EPOCH FROM (now() - last_seen)) * 1000 AS BIGINT), 0)
             FROM scheduler_members
             WHERE last_seen > now() - $1::BIGINT * INTERVAL '1 millisecond'
             ORDER BY name",
            &[&millis],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let age: i64 = row.try_get(3)?;
            Ok(Member {
                name: row.try_get(0)?,
                url: row.try_get(1)?,
                version: row.try_get(2)?,
                age: Duration::from_millis(u64::try_from(age).unwrap_or(0)),
            })
        })
        .collect()
}
