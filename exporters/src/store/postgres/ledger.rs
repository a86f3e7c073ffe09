//! Ledger hours and days in PostgreSQL: SQLite's tables (`store/ledger.rs`) with a `store_` prefix, the same
//! statements. A write locks nothing but its rows: only the leader writes them, and a write of the same hour
//! twice (a deposed leader's) writes the same figures computed from the same results.

use tokio_postgres::types::ToSql;

use super::{Failure, Shared};
use crate::store::ledger::{COLUMNS, DAY_MS, LedgerHour, LedgerMs, LedgerSum, SUMS, WHOLE, days_of, region_of, split};

/// Upserts `hours` and rebuilds the day rows of their days and checks, in one transaction.
pub(crate) async fn write(shared: &Shared, hours: &[LedgerHour]) -> Result<(), Failure> {
    if hours.is_empty() {
        return Ok(());
    }
    let failed = || Failure::db("writing ledger hours");
    let mut client = shared.client().await?;
    let tx = client.transaction().await.map_err(failed())?;
    let upsert = tx
        .prepare_cached(&format!(
            "INSERT INTO store_ledger_hour (start_ms, check_name, region, policy, {COLUMNS}) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], \
             $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[]) \
             ON CONFLICT (start_ms, check_name, region) DO UPDATE SET policy = EXCLUDED.policy, \
             up_ms = EXCLUDED.up_ms, down_ms = EXCLUDED.down_ms, unknown_ms = EXCLUDED.unknown_ms, \
             maintenance_ms = EXCLUDED.maintenance_ms, muted_up_ms = EXCLUDED.muted_up_ms, \
             muted_down_ms = EXCLUDED.muted_down_ms"
        ))
        .await
        .map_err(failed())?;
    for chunk in hours.chunks(10_000) {
        let column = |get: fn(&LedgerMs) -> i64| chunk.iter().map(|hour| get(&hour.ms)).collect::<Vec<i64>>();
        let starts: Vec<i64> = chunk.iter().map(|hour| hour.start_ms).collect();
        let checks: Vec<&str> = chunk.iter().map(|hour| hour.check.as_str()).collect();
        let regions: Vec<&str> = chunk.iter().map(|hour| hour.region.as_deref().unwrap_or(WHOLE)).collect();
        let policies: Vec<i64> = chunk.iter().map(|hour| i64::from(hour.policy)).collect();
        let (up, down, unknown) = (column(|ms| ms.up_ms), column(|ms| ms.down_ms), column(|ms| ms.unknown_ms));
        let (maintenance, muted_up, muted_down) =
            (column(|ms| ms.maintenance_ms), column(|ms| ms.muted_up_ms), column(|ms| ms.muted_down_ms));
        let values: [&(dyn ToSql + Sync); 10] =
            [&starts, &checks, &regions, &policies, &up, &down, &unknown, &maintenance, &muted_up, &muted_down];
        tx.execute(&upsert, &values).await.map_err(failed())?;
    }
    let clear = tx
        .prepare_cached("DELETE FROM store_ledger_day WHERE start_ms = $1 AND check_name = $2")
        .await
        .map_err(failed())?;
    let fill = tx
        .prepare_cached(&format!(
            "INSERT INTO store_ledger_day (start_ms, check_name, region, policy, {COLUMNS}) \
             SELECT $1::bigint, check_name, region, max(policy), {SUMS} FROM store_ledger_hour \
             WHERE check_name = $2 AND start_ms >= $1 AND start_ms < $3 GROUP BY check_name, region"
        ))
        .await
        .map_err(failed())?;
    for (day, check) in days_of(hours) {
        tx.execute(&clear, &[&day, &check]).await.map_err(failed())?;
        tx.execute(&fill, &[&day, &check, &(day + DAY_MS)]).await.map_err(failed())?;
    }
    tx.commit().await.map_err(failed())
}

fn ms_at(row: &tokio_postgres::Row, first: usize) -> Result<LedgerMs, tokio_postgres::Error> {
    Ok(LedgerMs {
        up_ms: row.try_get(first)?,
        down_ms: row.try_get(first + 1)?,
        unknown_ms: row.try_get(first + 2)?,
        maintenance_ms: row.try_get(first + 3)?,
        muted_up_ms: row.try_get(first + 4)?,
        muted_down_ms: row.try_get(first + 5)?,
    })
}

/// Sums of the hours starting in `[from_ms, to_ms)` per check and region (and per check as a whole).
pub(crate) async fn sums(
    shared: &Shared,
    check: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<LedgerSum>, Failure> {
    let (a, b) = split(from_ms, to_ms);
    let filter = "AND ($5::text IS NULL OR check_name = $5)";
    // `sum` of bigint is numeric in PostgreSQL: cast back.
    let sums = SUMS.replace(')', ")::bigint");
    let sql = format!(
        "SELECT check_name, region, {sums} FROM (\
         SELECT check_name, region, {COLUMNS} FROM store_ledger_hour WHERE start_ms >= $1 AND start_ms < $2 {filter} \
         UNION ALL \
         SELECT check_name, region, {COLUMNS} FROM store_ledger_day WHERE start_ms >= $2 AND start_ms < $3 {filter} \
         UNION ALL \
         SELECT check_name, region, {COLUMNS} FROM store_ledger_hour WHERE start_ms >= $3 AND start_ms < $4 {filter}\
         ) AS t GROUP BY check_name, region ORDER BY check_name, region"
    );
    let failed = || Failure::db("summing ledger hours");
    let client = shared.client().await?;
    let statement = client.prepare_cached(&sql).await.map_err(failed())?;
    let to = to_ms.max(from_ms);
    let rows = client.query(&statement, &[&from_ms, &a, &b, &to, &check]).await.map_err(failed())?;
    rows.iter()
        .map(|row| {
            Ok(LedgerSum {
                check: row.try_get(0)?,
                region: region_of(row.try_get(1)?),
                start_ms: from_ms,
                ms: ms_at(row, 2)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(failed())
}

/// Day rows of the days starting in `[from_ms, to_ms)`.
pub(crate) async fn days(
    shared: &Shared,
    check: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<LedgerSum>, Failure> {
    let sql = format!(
        "SELECT check_name, region, start_ms, {COLUMNS} FROM store_ledger_day \
         WHERE start_ms >= $1 AND start_ms < $2 AND ($3::text IS NULL OR check_name = $3) \
         ORDER BY check_name, region, start_ms"
    );
    let failed = || Failure::db("reading ledger days");
    let client = shared.client().await?;
    let statement = client.prepare_cached(&sql).await.map_err(failed())?;
    let rows = client.query(&statement, &[&from_ms, &to_ms, &check]).await.map_err(failed())?;
    rows.iter()
        .map(|row| {
            Ok(LedgerSum {
                check: row.try_get(0)?,
                region: region_of(row.try_get(1)?),
                start_ms: row.try_get(2)?,
                ms: ms_at(row, 3)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(failed())
}

/// The start of the newest ledger hour written.
pub(crate) async fn last_hour(shared: &Shared) -> Result<Option<i64>, Failure> {
    let failed = || Failure::db("reading the last ledger hour");
    let client = shared.client().await?;
    let statement = client.prepare_cached("SELECT max(start_ms) FROM store_ledger_hour").await.map_err(failed())?;
    let row = client.query_one(&statement, &[]).await.map_err(failed())?;
    row.try_get(0).map_err(failed())
}
