//! Ingest into PostgreSQL: one transaction per batch, race-free between replicas.
//!
//! 1. Names are interned first, in statements of their own (an id given to a name never changes, so a name
//!    interned by a batch that then fails is harmless).
//! 2. The transaction creates the batch's missing `store_pairs` rows and locks every pair of the batch
//!    (`SELECT ... ORDER BY check_id, region_id FOR UPDATE`): writers of the same pair take turns, and since
//!    every writer locks in the same order, two overlapping batches never deadlock on them.
//! 3. Raw rows go in with one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING`: what comes
//!    back is what this batch stored; the rest are duplicates (stored before, or by another replica).
//! 4. Only stored rows count: artifacts (bytes in `store_artifacts`), rollups (counts and sums added in SQL by
//!    `ON CONFLICT DO UPDATE SET runs = t.runs + EXCLUDED.runs, ...`; histogram and phase sums merged with the
//!    row read under the pair's lock), incidents (extended or closed from the pair's open incident, or rebuilt
//!    from raw results when runs arrive out of order), the pair's latest run.
//!
//! A serialization failure or deadlock runs the whole batch again; any other error rolls it back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use deadpool_postgres::Object;
use probenet_checks::outcome::Outcome;
use probenet_checks::wire::RunResult;

use super::{Failure, Shared, pause};
use crate::store::codec::{Histogram, decode_body, decode_phases, encode_body, encode_phases};
use crate::store::incidents::Run;
use crate::store::ingest::state_code;
use crate::store::rollup::{Agg, Level};
use crate::store::{Ingested, StoreError, artifacts};

/// How long a batch's transaction may go on after writing its results (well within `query::SETTLE_MS`, for the
/// commit itself).
pub(crate) const MAX_OPEN: Duration = Duration::from_secs(6);

/// Attempts of a batch's transaction before a serialization failure or deadlock is the caller's error.
const TRIES: usize = 8;

/// One distinct result of a batch, ready to store.
struct Row {
    /// Its index in the batch.
    index: usize,
    check: i64,
    region: i64,
    planned: i64,
    state: i64,
    duration: f64,
    body: Vec<u8>,
    /// Artifact paths and bytes.
    files: Vec<(String, Vec<u8>)>,
    phases: Vec<(String, f64)>,
    reason: Option<String>,
    error: Option<String>,
}

/// A pair's open incident as the table holds it.
#[derive(Debug, Clone, Copy)]
struct OpenRow {
    id: i64,
    runs: i64,
    last_ms: i64,
}

/// An incident to insert.
#[derive(Debug, Clone, PartialEq)]
struct NewIncident {
    check: i64,
    region: i64,
    start_ms: i64,
    end_ms: Option<i64>,
    last_ms: i64,
    runs: i64,
    reason: Option<String>,
    error: Option<String>,
}

/// The open incident's new values: (id, end_ms, runs, last_ms).
type OpenUpdate = (i64, Option<i64>, i64, i64);

/// Applies runs (oldest first, all later than the pair's stored runs) to the pair's open incident: returns
/// the open incident's new values if it changed, and the incidents the runs open.
fn fold(pair: (i64, i64), open: Option<OpenRow>, runs: &[Run]) -> (Option<OpenUpdate>, Vec<NewIncident>) {
    enum Current {
        Existing(OpenRow),
        New(usize),
    }
    let mut current = open.map(Current::Existing);
    let mut update = None;
    let mut news: Vec<NewIncident> = Vec::new();
    for run in runs {
        let at = run.planned_at_ms;
        current = match (current, run.failed) {
            (Some(Current::Existing(mut open)), true) => {
                open.runs += 1;
                open.last_ms = at;
                update = Some((open.id, None, open.runs, open.last_ms));
                Some(Current::Existing(open))
            }
            (Some(Current::New(index)), true) => {
                if let Some(incident) = news.get_mut(index) {
                    incident.runs += 1;
                    incident.last_ms = at;
                }
                Some(Current::New(index))
            }
            (None, true) => {
                news.push(NewIncident {
                    check: pair.0,
                    region: pair.1,
                    start_ms: at,
                    end_ms: None,
                    last_ms: at,
                    runs: 1,
                    reason: run.reason.clone(),
                    error: run.error.clone(),
                });
                Some(Current::New(news.len() - 1))
            }
            (Some(Current::Existing(open)), false) => {
                update = Some((open.id, Some(at), open.runs, open.last_ms));
                None
            }
            (Some(Current::New(index)), false) => {
                if let Some(incident) = news.get_mut(index) {
                    incident.end_ms = Some(at);
                }
                None
            }
            (None, false) => None,
        };
    }
    (update, news)
}

/// The ids of the batch's check (`check`) or region names, interning the new ones.
async fn intern(
    shared: &Shared,
    client: &Object,
    names: impl Iterator<Item = &str>,
    check: bool,
) -> Result<HashMap<String, i64>, Failure> {
    let mut ids = HashMap::new();
    let mut missing = Vec::new();
    for name in names {
        if ids.contains_key(name) || missing.iter().any(|known: &String| known == name) {
            continue;
        }
        match shared.cached_id(name, check)? {
            Some(id) => {
                ids.insert(name.to_owned(), id);
            }
            None => missing.push(name.to_owned()),
        }
    }
    if missing.is_empty() {
        return Ok(ids);
    }
    missing.sort();
    let table = if check { "store_checks" } else { "store_regions" };
    let failed = || Failure::db(format!("storing new names in {table}"));
    let insert = client
        .prepare_cached(&format!(
            "INSERT INTO {table} (name) SELECT n FROM unnest($1::text[]) AS u(n) ORDER BY n ON CONFLICT (name) DO NOTHING"
        ))
        .await
        .map_err(failed())?;
    client.execute(&insert, &[&missing]).await.map_err(failed())?;
    let select =
        client.prepare_cached(&format!("SELECT name, id FROM {table} WHERE name = ANY($1)")).await.map_err(failed())?;
    let found: Vec<(String, i64)> = client
        .query(&select, &[&missing])
        .await
        .map_err(failed())?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(failed())?;
    shared.remember(check, found.iter().cloned())?;
    ids.extend(found);
    Ok(ids)
}

/// Encodes the batch: one [`Row`] per distinct run id (the first of each; later ones are duplicates), sorted
/// by (check, region, planned).
fn rows(
    results: &[RunResult],
    checks: &HashMap<String, i64>,
    regions: &HashMap<String, i64>,
) -> Result<Vec<Row>, StoreError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(results.len());
    for (index, result) in results.iter().enumerate() {
        let what =
            || format!("storing the result of {}/{} planned at {}", result.check, result.region, result.planned_at_ms);
        let (Some(&check), Some(&region)) = (checks.get(&result.check), regions.get(&result.region)) else {
            return Err(StoreError::Codec(format!("{}: its names were not interned", what())));
        };
        if !seen.insert((check, region, result.planned_at_ms)) {
            continue;
        }
        let mut files = Vec::new();
        let with_paths;
        let outcome: &Outcome = if result.outcome.artifacts.iter().any(|artifact| !artifact.data.is_empty()) {
            let mut outcome = result.outcome.clone();
            for (index, artifact) in outcome.artifacts.iter_mut().enumerate() {
                if !artifact.data.is_empty() {
                    let relative = artifacts::relative_path(check, region, result.planned_at_ms, index, &artifact.name);
                    artifact.path = Some(relative.clone());
                    files.push((relative, std::mem::take(&mut artifact.data)));
                }
            }
            with_paths = outcome;
            &with_paths
        } else {
            &result.outcome
        };
        let body = encode_body(result.planned_at_ms, result.started_at_ms, &result.prober, outcome)
            .map_err(|message| StoreError::Codec(format!("{}: {message}", what())))?;
        let state = state_code(outcome.state);
        out.push(Row {
            index,
            check,
            region,
            planned: result.planned_at_ms,
            state,
            duration: outcome.duration_seconds,
            body,
            files,
            phases: outcome.phases.iter().map(|phase| (phase.name.clone(), phase.seconds)).collect(),
            reason: (state == 2).then(|| outcome.reason.map(|reason| reason.as_str().to_owned())).flatten(),
            error: if state == 2 { outcome.error.clone() } else { None },
        });
    }
    out.sort_by_key(|row| (row.check, row.region, row.planned));
    Ok(out)
}

/// Stores a batch; returns the counts and the indices (into `results`, ascending) of the results stored now.
pub(crate) async fn ingest(shared: &Shared, results: &[RunResult]) -> Result<(Ingested, Vec<usize>), Failure> {
    let mut client = shared.client().await?;
    let checks = intern(shared, &client, results.iter().map(|r| r.check.as_str()), true).await?;
    let regions = intern(shared, &client, results.iter().map(|r| r.region.as_str()), false).await?;
    let rows = rows(results, &checks, &regions)?;
    let mut failed = 0;
    let stored = loop {
        match attempt(&mut client, &rows).await {
            Ok(stored) => break stored,
            Err(failure) if failure.retryable() && failed + 1 < TRIES => {
                failed += 1;
                pause(&failure, failed).await;
            }
            Err(failure) => return Err(failure),
        }
    };
    let mut fresh: Vec<usize> =
        rows.iter().zip(&stored).filter(|(_, stored)| **stored).map(|(row, _)| row.index).collect();
    fresh.sort_unstable();
    let accepted = fresh.len();
    Ok((Ingested { accepted, duplicates: results.len() - accepted }, fresh))
}

/// One try of the batch's transaction: whether each row was stored now.
async fn attempt(client: &mut Object, rows: &[Row]) -> Result<Vec<bool>, Failure> {
    let tx = client.transaction().await.map_err(Failure::db("starting an ingest transaction"))?;

    // Every pair of the batch, created if new, locked in order.
    let mut pairs: Vec<(i64, i64)> = rows.iter().map(|row| (row.check, row.region)).collect();
    pairs.dedup();
    let (pair_checks, pair_regions): (Vec<i64>, Vec<i64>) = pairs.iter().copied().unzip();
    let failed = || Failure::db("locking the batch's pairs");
    let statement = tx
        .prepare_cached(
            "INSERT INTO store_pairs (check_id, region_id, last_planned_ms) \
             SELECT c, r, $3 FROM unnest($1::bigint[], $2::bigint[]) AS u(c, r) ORDER BY c, r \
             ON CONFLICT (check_id, region_id) DO NOTHING",
        )
        .await
        .map_err(failed())?;
    tx.execute(&statement, &[&pair_checks, &pair_regions, &i64::MIN]).await.map_err(failed())?;
    let statement = tx
        .prepare_cached(
            "SELECT p.check_id, p.region_id, p.last_planned_ms FROM store_pairs p \
             JOIN unnest($1::bigint[], $2::bigint[]) AS u(c, r) ON p.check_id = u.c AND p.region_id = u.r \
             ORDER BY p.check_id, p.region_id FOR UPDATE OF p",
        )
        .await
        .map_err(failed())?;
    let mut last_planned: HashMap<(i64, i64), i64> = HashMap::with_capacity(pairs.len());
    for row in tx.query(&statement, &[&pair_checks, &pair_regions]).await.map_err(failed())? {
        last_planned.insert(
            (row.try_get(0).map_err(failed())?, row.try_get(1).map_err(failed())?),
            row.try_get(2).map_err(failed())?,
        );
    }
    let failed = || Failure::db("reading open incidents");
    let statement = tx
        .prepare_cached(
            "SELECT i.check_id, i.region_id, i.id, i.runs, i.last_ms, i.start_ms FROM store_incidents i \
             JOIN unnest($1::bigint[], $2::bigint[]) AS u(c, r) ON i.check_id = u.c AND i.region_id = u.r \
             WHERE i.end_ms IS NULL",
        )
        .await
        .map_err(failed())?;
    let mut open: HashMap<(i64, i64), (i64, OpenRow)> = HashMap::new();
    for row in tx.query(&statement, &[&pair_checks, &pair_regions]).await.map_err(failed())? {
        let pair = (row.try_get(0).map_err(failed())?, row.try_get(1).map_err(failed())?);
        let start: i64 = row.try_get(5).map_err(failed())?;
        let incident = OpenRow {
            id: row.try_get(2).map_err(failed())?,
            runs: row.try_get(3).map_err(failed())?,
            last_ms: row.try_get(4).map_err(failed())?,
        };
        if open.get(&pair).is_none_or(|(known, _)| *known < start) {
            open.insert(pair, (start, incident));
        }
    }

    // Raw rows: what comes back was stored now.
    let failed = || Failure::db("storing raw results");
    let statement = tx
        .prepare_cached(
            "INSERT INTO store_results (check_id, region_id, planned_at_ms, state, duration, body) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::float8[], $6::bytea[]) \
             ON CONFLICT (check_id, region_id, planned_at_ms) DO NOTHING \
             RETURNING check_id, region_id, planned_at_ms",
        )
        .await
        .map_err(failed())?;
    let checks: Vec<i64> = rows.iter().map(|row| row.check).collect();
    let regions: Vec<i64> = rows.iter().map(|row| row.region).collect();
    let planned: Vec<i64> = rows.iter().map(|row| row.planned).collect();
    let states: Vec<i64> = rows.iter().map(|row| row.state).collect();
    let durations: Vec<f64> = rows.iter().map(|row| row.duration).collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|row| row.body.as_slice()).collect();
    let mut inserted = HashSet::with_capacity(rows.len());
    // The rows carry the database clock from here on; readers in stored order wait `SETTLE_MS` for them.
    let opened = Instant::now();
    for row in
        tx.query(&statement, &[&checks, &regions, &planned, &states, &durations, &bodies]).await.map_err(failed())?
    {
        inserted.insert((
            row.try_get::<_, i64>(0).map_err(failed())?,
            row.try_get::<_, i64>(1).map_err(failed())?,
            row.try_get::<_, i64>(2).map_err(failed())?,
        ));
    }
    let stored: Vec<bool> = rows.iter().map(|row| inserted.contains(&(row.check, row.region, row.planned))).collect();
    let fresh: Vec<&Row> = rows.iter().zip(&stored).filter(|(_, stored)| **stored).map(|(row, _)| row).collect();
    if fresh.is_empty() {
        tx.commit().await.map_err(Failure::db("committing an ingest transaction"))?;
        return Ok(stored);
    }

    store_artifacts(&tx, &fresh).await?;
    for level in Level::ALL {
        merge_rollups(&tx, level, &fresh).await?;
    }

    // Incidents and the pairs' latest runs.
    let mut runs: BTreeMap<(i64, i64), Vec<Run>> = BTreeMap::new();
    for row in &fresh {
        runs.entry((row.check, row.region)).or_default().push(Run {
            planned_at_ms: row.planned,
            failed: row.state == 2,
            reason: row.reason.clone(),
            error: row.error.clone(),
        });
    }
    let mut updates: Vec<OpenUpdate> = Vec::new();
    let mut news: Vec<NewIncident> = Vec::new();
    let (mut last_checks, mut last_regions, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
    for (pair, list) in &runs {
        let (Some(first), Some(last)) = (list.first(), list.last()) else { continue };
        let before = last_planned.get(pair).copied().unwrap_or(i64::MIN);
        if first.planned_at_ms > before {
            let (update, opened) = fold(*pair, open.get(pair).map(|(_, open)| *open), list);
            updates.extend(update);
            news.extend(opened);
        } else {
            news.extend(rebuild(&tx, *pair, first.planned_at_ms).await?);
        }
        last_checks.push(pair.0);
        last_regions.push(pair.1);
        lasts.push(last.planned_at_ms);
    }
    write_incidents(&tx, &updates, &news).await?;
    let failed = || Failure::db("updating pairs");
    let statement = tx
        .prepare_cached(
            "UPDATE store_pairs p SET last_planned_ms = GREATEST(p.last_planned_ms, u.l) \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(c, r, l) \
             WHERE p.check_id = u.c AND p.region_id = u.r",
        )
        .await
        .map_err(failed())?;
    tx.execute(&statement, &[&last_checks, &last_regions, &lasts]).await.map_err(failed())?;
    if opened.elapsed() > MAX_OPEN {
        // Committed now, its rows could come before results a reader in stored order has passed: roll back (the
        // prober sends the batch again).
        return Err(StoreError::Codec(format!(
            "the ingest transaction took longer than {} s after writing its results; rolled back, the batch is sent \
             again",
            MAX_OPEN.as_secs()
        ))
        .into());
    }
    tx.commit().await.map_err(Failure::db("committing an ingest transaction"))?;
    Ok(stored)
}

/// Artifact bytes of the rows stored now.
async fn store_artifacts(tx: &deadpool_postgres::Transaction<'_>, fresh: &[&Row]) -> Result<(), Failure> {
    let (mut paths, mut checks, mut regions, mut planned, mut data) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for row in fresh {
        for (path, bytes) in &row.files {
            paths.push(path.as_str());
            checks.push(row.check);
            regions.push(row.region);
            planned.push(row.planned);
            data.push(bytes.as_slice());
        }
    }
    if paths.is_empty() {
        return Ok(());
    }
    let failed = || Failure::db(format!("storing artifact {}", paths.first().copied().unwrap_or_default()));
    let statement = tx
        .prepare_cached(
            "INSERT INTO store_artifacts (path, check_id, region_id, planned_at_ms, data) \
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bytea[]) \
             ON CONFLICT (path) DO UPDATE SET check_id = EXCLUDED.check_id, region_id = EXCLUDED.region_id, \
             planned_at_ms = EXCLUDED.planned_at_ms, data = EXCLUDED.data",
        )
        .await
        .map_err(failed())?;
    tx.execute(&statement, &[&paths, &checks, &regions, &planned, &data]).await.map_err(failed())?;
    Ok(())
}

/// Adds the rows stored now to a level's rollup rows: counts and duration sums added in SQL; histograms and
/// phase sums merged here with the stored row (read under the pairs' locks, so no other writer changes it).
async fn merge_rollups(tx: &deadpool_postgres::Transaction<'_>, level: Level, fresh: &[&Row]) -> Result<(), Failure> {
    let mut aggs: BTreeMap<(i64, i64, i64), Agg> = BTreeMap::new();
    for row in fresh {
        let phases = row.phases.iter().map(|(name, seconds)| (name.as_str(), *seconds));
        aggs.entry((row.check, row.region, level.start(row.planned))).or_default().record(
            row.state,
            row.duration,
            phases,
        );
    }
    let table = level.table();
    let failed = || Failure::db(format!("updating the {table} rollups"));
    let keys: Vec<(i64, i64, i64)> = aggs.keys().copied().collect();
    let checks: Vec<i64> = keys.iter().map(|key| key.0).collect();
    let regions: Vec<i64> = keys.iter().map(|key| key.1).collect();
    let starts: Vec<i64> = keys.iter().map(|key| key.2).collect();
    let statement = tx
        .prepare_cached(&format!(
            "SELECT x.check_id, x.region_id, x.start_ms, x.hist, x.phases FROM store_{table} x \
             JOIN unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(c, r, s) \
             ON x.check_id = u.c AND x.region_id = u.r AND x.start_ms = u.s"
        ))
        .await
        .map_err(failed())?;
    let mut stored: HashMap<(i64, i64, i64), Agg> = HashMap::new();
    for row in tx.query(&statement, &[&checks, &regions, &starts]).await.map_err(failed())? {
        let key =
            (row.try_get(0).map_err(failed())?, row.try_get(1).map_err(failed())?, row.try_get(2).map_err(failed())?);
        let hist: Vec<u8> = row.try_get(3).map_err(failed())?;
        let phases: Vec<u8> = row.try_get(4).map_err(failed())?;
        stored.insert(
            key,
            Agg {
                hist: Histogram::decode(&hist).unwrap_or_default(),
                phases: decode_phases(&phases).unwrap_or_default(),
                ..Agg::default()
            },
        );
    }
    let (mut runs, mut up, mut degraded, mut down, mut seconds, mut hists, mut phases) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (key, add) in &aggs {
        runs.push(add.runs);
        up.push(add.up);
        degraded.push(add.degraded);
        down.push(add.down);
        seconds.push(add.seconds);
        let mut merged = stored.remove(key).unwrap_or_default();
        merged.combine(add, 1);
        hists.push(merged.hist.encode());
        phases.push(encode_phases(&merged.phases));
    }
    let statement = tx
        .prepare_cached(&format!(
            "INSERT INTO store_{table} AS t (check_id, region_id, start_ms, runs, up, degraded, down, seconds, hist, \
             phases) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
             $6::bigint[], $7::bigint[], $8::float8[], $9::bytea[], $10::bytea[]) \
             ON CONFLICT (check_id, region_id, start_ms) DO UPDATE SET runs = t.runs + EXCLUDED.runs, \
             up = t.up + EXCLUDED.up, degraded = t.degraded + EXCLUDED.degraded, down = t.down + EXCLUDED.down, \
             seconds = t.seconds + EXCLUDED.seconds, hist = EXCLUDED.hist, phases = EXCLUDED.phases"
        ))
        .await
        .map_err(failed())?;
    tx.execute(&statement, &[&checks, &regions, &starts, &runs, &up, &degraded, &down, &seconds, &hists, &phases])
        .await
        .map_err(failed())?;
    Ok(())
}

/// Rebuilds a pair's incidents from raw results, from the earliest incident still open or ending at or after
/// `from_ms` (or `from_ms` itself) on: deletes them and returns the incidents to insert instead.
async fn rebuild(
    tx: &deadpool_postgres::Transaction<'_>,
    (check, region): (i64, i64),
    from_ms: i64,
) -> Result<Vec<NewIncident>, Failure> {
    let failed = || Failure::db("rebuilding incidents");
    let statement = tx
        .prepare_cached(
            "DELETE FROM store_incidents WHERE check_id = $1 AND region_id = $2 \
             AND (end_ms IS NULL OR end_ms >= $3) RETURNING start_ms",
        )
        .await
        .map_err(failed())?;
    let mut from = from_ms;
    for row in tx.query(&statement, &[&check, &region, &from_ms]).await.map_err(failed())? {
        from = from.min(row.try_get(0).map_err(failed())?);
    }
    let statement = tx
        .prepare_cached(
            "SELECT planned_at_ms, state, body, duration FROM store_results WHERE check_id = $1 AND region_id = $2 \
             AND planned_at_ms >= $3 ORDER BY planned_at_ms",
        )
        .await
        .map_err(failed())?;
    let mut runs = Vec::new();
    let mut in_incident = false;
    for row in tx.query(&statement, &[&check, &region, &from]).await.map_err(failed())? {
        let planned_at_ms: i64 = row.try_get(0).map_err(failed())?;
        let failed_run = row.try_get::<_, i64>(1).map_err(failed())? == 2;
        let (reason, error) = if failed_run && !in_incident {
            let body: Vec<u8> = row.try_get(2).map_err(failed())?;
            match decode_body(&body, planned_at_ms, 2, row.try_get(3).map_err(failed())?) {
                Ok(body) => (body.outcome.reason.map(|reason| reason.as_str().to_owned()), body.outcome.error),
                Err(_) => (None, None),
            }
        } else {
            (None, None)
        };
        in_incident = failed_run;
        runs.push(Run { planned_at_ms, failed: failed_run, reason, error });
    }
    Ok(fold((check, region), None, &runs).1)
}

/// Writes the open incidents' new values and inserts the new incidents, one statement each.
async fn write_incidents(
    tx: &deadpool_postgres::Transaction<'_>,
    updates: &[OpenUpdate],
    news: &[NewIncident],
) -> Result<(), Failure> {
    let failed = || Failure::db("updating incidents");
    if !updates.is_empty() {
        let statement = tx
            .prepare_cached(
                "UPDATE store_incidents i SET end_ms = u.e, runs = u.n, last_ms = u.l \
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(id, e, n, l) \
                 WHERE i.id = u.id",
            )
            .await
            .map_err(failed())?;
        let ids: Vec<i64> = updates.iter().map(|update| update.0).collect();
        let ends: Vec<Option<i64>> = updates.iter().map(|update| update.1).collect();
        let runs: Vec<i64> = updates.iter().map(|update| update.2).collect();
        let lasts: Vec<i64> = updates.iter().map(|update| update.3).collect();
        tx.execute(&statement, &[&ids, &ends, &runs, &lasts]).await.map_err(failed())?;
    }
    if !news.is_empty() {
        let statement = tx
            .prepare_cached(
                "INSERT INTO store_incidents (check_id, region_id, start_ms, end_ms, last_ms, runs, reason, error) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
                 $6::bigint[], $7::text[], $8::text[])",
            )
            .await
            .map_err(failed())?;
        let checks: Vec<i64> = news.iter().map(|incident| incident.check).collect();
        let regions: Vec<i64> = news.iter().map(|incident| incident.region).collect();
        let starts: Vec<i64> = news.iter().map(|incident| incident.start_ms).collect();
        let ends: Vec<Option<i64>> = news.iter().map(|incident| incident.end_ms).collect();
        let lasts: Vec<i64> = news.iter().map(|incident| incident.last_ms).collect();
        let runs: Vec<i64> = news.iter().map(|incident| incident.runs).collect();
        let reasons: Vec<Option<&str>> = news.iter().map(|incident| incident.reason.as_deref()).collect();
        let errors: Vec<Option<&str>> = news.iter().map(|incident| incident.error.as_deref()).collect();
        tx.execute(&statement, &[&checks, &regions, &starts, &ends, &lasts, &runs, &reasons, &errors])
            .await
            .map_err(failed())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(at: i64, failed: bool) -> Run {
        Run { planned_at_ms: at, failed, reason: failed.then(|| "status".into()), error: None }
    }

    #[test]
    fn fold_extends_closes_and_opens() {
        let open = OpenRow { id: 7, runs: 2, last_ms: 10 };
        let (update, news) = fold((1, 2), Some(open), &[run(11, true), run(12, false), run(13, true), run(14, true)]);
        assert_eq!(update, Some((7, Some(12), 3, 11)));
        assert_eq!(news.len(), 1);
        assert_eq!((news[0].start_ms, news[0].end_ms, news[0].last_ms, news[0].runs), (13, None, 14, 2));
        let (update, news) = fold((1, 2), None, &[run(1, false), run(2, true), run(3, false)]);
        assert_eq!(update, None);
        assert_eq!((news[0].start_ms, news[0].end_ms, news[0].runs), (2, Some(3), 1));
    }
}
