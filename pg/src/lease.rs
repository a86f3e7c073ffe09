//! The leader lease: one row per lease name, taken and renewed by one compare-and-set statement whose expiry
//! comes from the database clock, and a local deadline that ends leadership before the row can expire.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

/// The lease every scheduler replica contends for.
pub const SCHEDULER_LEASE: &str = "scheduler";

/// The lease table.
pub const MIGRATIONS: crate::Migrations = crate::Migrations {
    component: "lease",
    steps: &[(
        1,
        "CREATE TABLE scheduler_lease (
             name TEXT PRIMARY KEY,
             holder TEXT NOT NULL,
             generation BIGINT NOT NULL,
             expires_at TIMESTAMPTZ NOT NULL
         );",
    )],
};

/// One replica's claim on a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease row's name ([`SCHEDULER_LEASE`]).
    pub name: String,
    /// Who this replica is: unique per process (name and start), so a restarted replica never resumes the
    /// generation of its previous life.
    pub holder: String,
    /// How long a successful renewal keeps the row ours in the database.
    pub duration: Duration,
}

/// This replica leads under `generation` until `valid_until` (local monotonic clock) unless renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    /// The lease generation: bumped by every change of holder, carried by every leader-only write.
    pub generation: u64,
    /// When this replica must stop acting as leader if no renewal succeeded since.
    pub valid_until: Instant,
}

/// The lease row as the database sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseState {
    /// The last holder (it may have expired).
    pub holder: String,
    /// The current generation.
    pub generation: u64,
    /// How long until it expires by the database clock (zero once expired).
    pub remaining: Duration,
}

/// Insert the row if absent; otherwise take it when it expired, or renew it when it is ours under the generation
/// we hold. Renewal keeps the generation; anything else (a takeover, or ours again after it lapsed or after we
/// stepped down) bumps it. No row comes back when another holder's lease is still running.
const ACQUIRE_OR_RENEW: &str = "\
INSERT INTO scheduler_lease AS l (name, holder, generation, expires_at)
VALUES ($1, $2, 1, now() + $3::BIGINT * INTERVAL '1 millisecond')
ON CONFLICT (name) DO UPDATE SET
    generation = CASE
        WHEN l.holder = EXCLUDED.holder AND l.generation = $4::BIGINT AND l.expires_at > now() THEN l.generation
        ELSE l.generation + 1
    END,
    holder = EXCLUDED.holder,
    expires_at = EXCLUDED.expires_at
WHERE l.expires_at <= now() OR (l.holder = EXCLUDED.holder AND l.generation = $4::BIGINT)
RETURNING generation";

/// Expire the row now if it is still ours under this generation.
const RELEASE: &str = "\
UPDATE scheduler_lease SET expires_at = now()
WHERE name = $1 AND holder = $2 AND generation = $3 AND expires_at > now()";

const STATE: &str = "\
SELECT holder, generation, GREATEST(CAST(EXTRACT(EPOCH FROM (expires_at - now())) * 1000 AS BIGINT), 0)
FROM scheduler_lease WHERE name = $1";

impl Lease {
    /// A claim on the scheduler lease.
    pub fn new(holder: impl Into<String>, duration: Duration) -> Self {
        Self { name: SCHEDULER_LEASE.to_string(), holder: holder.into(), duration }
    }

    /// How much earlier than the database this replica gives up: a fifth of the lease, for clock rate
    /// differences and for the time between checking leadership and acting on it.
    pub fn margin(&self) -> Duration {
        self.duration / 5
    }

    /// How often the lease is renewed.
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// Takes the lease or renews it (`held`: the generation this replica leads under, if any) in one statement,
    /// within a statement timeout. `Some` when this replica leads afterwards: its local deadline is the clock
    /// read *before* the statement was sent, plus the lease, minus [`margin`](Self::margin), so it always
    /// falls before the expiry the database computed.
    pub async fn try_acquire_or_renew(
        &self,
        client: &mut Client,
        held: Option<u64>,
    ) -> Result<Option<Leadership>, tokio_postgres::Error> {
        let sent = Instant::now();
        let millis = i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX);
        let held = held.map(to_sql);
        let tx = client.transaction().await?;
        tx.batch_execute(&format!("SET LOCAL statement_timeout = {}", self.renew_every().as_millis().max(1))).await?;
        let row = tx.query_opt(ACQUIRE_OR_RENEW, &[&self.name, &self.holder, &millis, &held]).await?;
        tx.commit().await?;
        match row {
            Some(row) => {
                let generation = from_sql(row.try_get(0)?);
                let valid_until = sent + self.duration.saturating_sub(self.margin());
                Ok(Some(Leadership { generation, valid_until }))
            }
            None => Ok(None),
        }
    }

    /// Gives the lease up at once (it expires now) if it is still ours under `generation`, so the next replica
    /// takes over without waiting for it to run out. True when it was ours.
    pub async fn release(&self, client: &Client, generation: u64) -> Result<bool, tokio_postgres::Error> {
        let released = client.execute(RELEASE, &[&self.name, &self.holder, &to_sql(generation)]).await?;
        Ok(released == 1)
    }

    /// The lease row, if any replica ever held it.
    pub async fn state(&self, client: &Client) -> Result<Option<LeaseState>, tokio_postgres::Error> {
        let Some(row) = client.query_opt(STATE, &[&self.name]).await? else {
            return Ok(None);
        };
        let millis: i64 = row.try_get(2)?;
        Ok(Some(LeaseState {
            holder: row.try_get(0)?,
            generation: from_sql(row.try_get(1)?),
            remaining: Duration::from_millis(u64::try_from(millis).unwrap_or(0)),
        }))
    }
}

/// A generation as stored (BIGINT).
pub(crate) fn to_sql(generation: u64) -> i64 {
    i64::try_from(generation).unwrap_or(i64::MAX)
}

/// A stored generation (always at least 1).
pub(crate) fn from_sql(generation: i64) -> u64 {
    u64::try_from(generation).unwrap_or(0)
}
