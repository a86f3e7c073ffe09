//! Retention in PostgreSQL: as SQLite's (`store/retention.rs`), pair by pair through the primary keys, 100
//! pairs per transaction. Each transaction first locks its pairs in the order ingest locks them, so a prune
//! and an ingest of the same pair take turns instead of deadlocking. Artifacts are rows: they go with their
//! results, and there are no orphan files.

use super::{Failure, Shared, pause};
use crate::store::Pruned;
use crate::store::rollup::Level;

/// Pairs pruned per transaction.
const PAIRS_PER_TRANSACTION: usize = 100;
/// Attempts of one chunk's transaction before a deadlock is the caller's error.
const TRIES: usize = 8;

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Cutoffs of one prune.
#[derive(Debug, Clone, Copy)]
struct Cuts {
    raw: i64,
    minute: i64,
    rollup: i64,
}

/// Removes what is older than the retention, measured from `now_ms`; raw results planned at or after
/// `raw_floor_ms` stay whatever their age.
pub(crate) async fn prune(shared: &Shared, now_ms: i64, raw_floor_ms: Option<i64>) -> Result<Pruned, Failure> {
    let options = &shared.options;
    let raw = now_ms - millis(options.raw_retention);
    let cuts = Cuts {
        raw: raw_floor_ms.map_or(raw, |floor| raw.min(floor)),
        minute: now_ms - millis(options.minute_retention),
        rollup: now_ms - millis(options.rollup_retention),
    };
    let mut client = shared.client().await?;
    let failed = || Failure::db("listing pairs to prune");
    let statement = client
        .prepare_cached("SELECT check_id, region_id FROM store_pairs ORDER BY check_id, region_id")
        .await
        .map_err(failed())?;
    let pairs: Vec<(i64, i64)> = client
        .query(&statement, &[])
        .await
        .map_err(failed())?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(failed())?;
    let mut pruned = Pruned::default();
    for chunk in pairs.chunks(PAIRS_PER_TRANSACTION) {
        let mut failed = 0;
        let done = loop {
            match prune_pairs(&mut client, chunk, cuts).await {
                Ok(done) => break done,
                Err(failure) if failure.retryable() && failed + 1 < TRIES => {
                    failed += 1;
                    pause(&failure, failed).await;
                }
                Err(failure) => return Err(failure),
            }
        };
        pruned.results += done.results;
        pruned.rollups += done.rollups;
        pruned.incidents += done.incidents;
        pruned.artifacts += done.artifacts;
    }

    // Ledger hours and days go with the hour and day rollups.
    let failed = || Failure::db("pruning ledger hours");
    for (table, unit) in
        [("store_ledger_hour", crate::store::ledger::HOUR_MS), ("store_ledger_day", crate::store::ledger::DAY_MS)]
    {
        let statement =
            client.prepare_cached(&format!("DELETE FROM {table} WHERE start_ms <= $1")).await.map_err(failed())?;
        pruned.ledger += count(client.execute(&statement, &[&(cuts.rollup - unit)]).await.map_err(failed())?);
    }

    // What is gone, for the queries' plans (of every replica): only ever moves forward.
    let failed = || Failure::db("recording what was pruned");
    let statement = client
        .prepare_cached(
            "INSERT INTO store_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = GREATEST(store_meta.value, EXCLUDED.value)",
        )
        .await
        .map_err(failed())?;
    for (key, cut) in
        [("raw_pruned_before_ms", cuts.raw), ("minute_pruned_before_ms", cuts.minute - Level::Minute.unit_ms() + 1)]
    {
        client.execute(&statement, &[&key, &cut]).await.map_err(failed())?;
    }
    Ok(pruned)
}

/// Prunes one chunk of pairs in one transaction.
async fn prune_pairs(
    client: &mut deadpool_postgres::Object,
    chunk: &[(i64, i64)],
    cuts: Cuts,
) -> Result<Pruned, Failure> {
    let failed = || Failure::db("pruning old rows");
    let (checks, regions): (Vec<i64>, Vec<i64>) = chunk.iter().copied().unzip();
    let tx = client.transaction().await.map_err(failed())?;
    let statement = tx
        .prepare_cached(
            "SELECT p.check_id FROM store_pairs p \
             JOIN unnest($1::bigint[], $2::bigint[]) AS u(c, r) ON p.check_id = u.c AND p.region_id = u.r \
             ORDER BY p.check_id, p.region_id FOR UPDATE OF p",
        )
        .await
        .map_err(failed())?;
    tx.query(&statement, &[&checks, &regions]).await.map_err(failed())?;
    let mut pruned = Pruned::default();
    let by_pair = |table: &str, column: &str, op: &str| {
        format!(
            "DELETE FROM {table} x USING unnest($1::bigint[], $2::bigint[]) AS u(c, r) \
             WHERE x.check_id = u.c AND x.region_id = u.r AND x.{column} {op} $3"
        )
    };
    let statement = tx.prepare_cached(&by_pair("store_artifacts", "planned_at_ms", "<")).await.map_err(failed())?;
    pruned.artifacts += count(tx.execute(&statement, &[&checks, &regions, &cuts.raw]).await.map_err(failed())?);
    let statement = tx.prepare_cached(&by_pair("store_results", "planned_at_ms", "<")).await.map_err(failed())?;
    pruned.results += count(tx.execute(&statement, &[&checks, &regions, &cuts.raw]).await.map_err(failed())?);
    for level in Level::ALL {
        let cut = if level == Level::Minute { cuts.minute } else { cuts.rollup } - level.unit_ms();
        let statement = tx
            .prepare_cached(&by_pair(&format!("store_{}", level.table()), "start_ms", "<="))
            .await
            .map_err(failed())?;
        pruned.rollups += count(tx.execute(&statement, &[&checks, &regions, &cut]).await.map_err(failed())?);
    }
    let statement = tx
        .prepare_cached(
            "DELETE FROM store_incidents x USING unnest($1::bigint[], $2::bigint[]) AS u(c, r) \
             WHERE x.check_id = u.c AND x.region_id = u.r AND x.end_ms IS NOT NULL AND x.end_ms < $3",
        )
        .await
        .map_err(failed())?;
    pruned.incidents += count(tx.execute(&statement, &[&checks, &regions, &cuts.rollup]).await.map_err(failed())?);
    tx.commit().await.map_err(failed())?;
    Ok(pruned)
}

fn count(rows: u64) -> usize {
    usize::try_from(rows).unwrap_or(usize::MAX)
}
