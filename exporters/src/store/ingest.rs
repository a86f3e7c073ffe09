//! Ingest: one transaction per batch (raw rows, artifact files, rollups, incidents, pairs), idempotent on
//! (check, region, planned_at_ms), returning only after the commit.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use probenet_checks::outcome::{Outcome, State};
use probenet_checks::wire::RunResult;
use rusqlite::{Connection, TransactionBehavior, params};

use super::codec::encode_body;
use super::incidents::{self, Run};
use super::rollup::{self, Agg, Level};
use super::{Ingested, Names, PairState, SqliteStore, StoreError, artifacts};

/// The `state` column's code of a state.
pub(crate) fn state_code(state: State) -> i64 {
    match state {
        State::Up => 0,
        State::Degraded => 1,
        State::Down => 2,
    }
}

/// Names interned in this batch, published only after the commit.
#[derive(Default)]
struct Staged {
    checks: HashMap<String, i64>,
    regions: HashMap<String, i64>,
}

fn intern(conn: &Connection, names: &Names, staged: &mut Staged, check: bool, name: &str) -> Result<i64, StoreError> {
    let (known, fresh, table) = if check {
        (&names.checks, &mut staged.checks, "checks")
    } else {
        (&names.regions, &mut staged.regions, "regions")
    };
    if let Some(id) = known.get(name).or_else(|| fresh.get(name)) {
        return Ok(*id);
    }
    let failed = StoreError::sqlite(format!("storing the name {name:?}"));
    let id = conn
        .prepare_cached(&format!("INSERT OR IGNORE INTO {table} (name) VALUES (?1)"))
        .and_then(|mut statement| statement.execute([name]))
        .and_then(|_| conn.prepare_cached(&format!("SELECT id FROM {table} WHERE name = ?1")))
        .and_then(|mut statement| statement.query_row([name], |row| row.get(0)))
        .map_err(failed)?;
    fresh.insert(name.to_owned(), id);
    Ok(id)
}

impl SqliteStore {
    /// Stores a batch in one transaction and returns after it is committed (and fsynced when `durable`), with
    /// the indices (into `results`) of the results stored now. Results already stored are counted as
    /// duplicates, not stored again. Artifacts with bytes are written to files (fsynced) before the commit and
    /// their relative path recorded. On error nothing of the batch is stored and what was stored before is
    /// untouched.
    pub(crate) fn ingest_marked(&self, results: &[RunResult]) -> Result<(Ingested, Vec<usize>), StoreError> {
        if results.is_empty() {
            return Ok((Ingested::default(), Vec::new()));
        }
        let mut fresh = Vec::new();
        let mut guard = self.writer()?;
        let super::Writer { conn, pairs, rollups, next_id } = &mut *guard;
        // Results are numbered here, under the writer lock, so their ids follow the order of commits and are
        // never reused (`Store::stored_after` reads by id).
        let mut id = *next_id;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting an ingest transaction"))?;

        let mut staged = Staged::default();
        let mut ids = Vec::with_capacity(results.len());
        {
            let names = self.inner.names.read().map_err(|_| StoreError::Poisoned)?;
            for result in results {
                let check = intern(&tx, &names, &mut staged, true, &result.check)?;
                let region = intern(&tx, &names, &mut staged, false, &result.region)?;
                ids.push((check, region));
            }
        }

        let mut done = Ingested::default();
        let mut aggs: [HashMap<(i64, i64, i64), Agg>; 3] = Default::default();
        let mut runs: HashMap<(i64, i64), Vec<Run>> = HashMap::new();
        let mut counts: HashMap<(i64, i64), rollup::Counts> = HashMap::new();
        let mut dirs = BTreeSet::new();
        for (index, (result, &(check, region))) in results.iter().zip(&ids).enumerate() {
            let what = || {
                format!("storing the result of {}/{} planned at {}", result.check, result.region, result.planned_at_ms)
            };
            let mut files = Vec::new();
            let with_paths;
            let outcome: &Outcome = if result.outcome.artifacts.iter().any(|artifact| !artifact.data.is_empty()) {
                let mut outcome = result.outcome.clone();
                for (index, artifact) in outcome.artifacts.iter_mut().enumerate() {
                    if !artifact.data.is_empty() {
                        let relative =
                            artifacts::relative_path(check, region, result.planned_at_ms, index, &artifact.name);
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
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO results (id, check_id, region_id, planned_at_ms, state, duration, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        id,
                        check,
                        region,
                        result.planned_at_ms,
                        state,
                        outcome.duration_seconds,
                        body
                    ])
                })
                .map_err(StoreError::sqlite(what()))?;
            if inserted == 0 {
                done.duplicates += 1;
                continue;
            }
            id += 1;
            done.accepted += 1;
            fresh.push(index);
            for (relative, data) in files {
                dirs.insert(artifacts::write(&self.inner.artifacts, &relative, &data)?);
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO artifacts (path, check_id, region_id, planned_at_ms) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut statement| statement.execute(params![relative, check, region, result.planned_at_ms]))
                .map_err(StoreError::sqlite(format!("recording artifact {relative}")))?;
            }
            for (level, map) in Level::ALL.iter().zip(aggs.iter_mut()) {
                let key = (check, region, level.start(result.planned_at_ms));
                let phases = outcome.phases.iter().map(|phase| (phase.name.as_str(), phase.seconds));
                map.entry(key).or_default().record(state, outcome.duration_seconds, phases);
            }
            let count = counts.entry((check, region)).or_default();
            count[0] += 1;
            count[usize::try_from(state).unwrap_or(2).min(2) + 1] += 1;
            runs.entry((check, region)).or_default().push(Run {
                planned_at_ms: result.planned_at_ms,
                failed: state == 2,
                reason: (state == 2).then(|| outcome.reason.map(|reason| reason.as_str().to_owned())).flatten(),
                error: if state == 2 { outcome.error.clone() } else { None },
            });
        }

        let mut written = rollup::RowCache::new();
        for (level, map) in Level::ALL.iter().zip(&aggs) {
            let before_all = |check, region| pairs.get(&(check, region)).map(|state| state.totals).unwrap_or_default();
            rollup::merge_rows(&tx, *level, map, rollups, &mut written, before_all)
                .map_err(StoreError::sqlite(format!("updating the {} rollups", level.table())))?;
        }

        let mut new_states = Vec::with_capacity(runs.len());
        for ((check, region), mut list) in runs {
            list.sort_by_key(|run| run.planned_at_ms);
            let (Some(first), Some(last)) = (list.first(), list.last()) else { continue };
            let (first, last) = (first.planned_at_ms, last.planned_at_ms);
            let before = pairs.get(&(check, region)).copied();
            let in_order = before.is_none_or(|state| first > state.last_planned_ms);
            let open = if in_order {
                incidents::apply(&tx, check, region, before.and_then(|state| state.open), &list)
            } else {
                incidents::rebuild(&tx, check, region, first)
            }
            .map_err(StoreError::sqlite("updating incidents"))?;
            let last_planned_ms = before.map_or(last, |state| state.last_planned_ms.max(last));
            let mut totals = before.map(|state| state.totals).unwrap_or_default();
            for (total, added) in totals.iter_mut().zip(counts.get(&(check, region)).copied().unwrap_or_default()) {
                *total += added;
            }
            tx.prepare_cached(
                "INSERT INTO pairs (check_id, region_id, last_planned_ms, runs, up, degraded, down) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (check_id, region_id) DO UPDATE SET \
                 last_planned_ms = excluded.last_planned_ms, runs = excluded.runs, up = excluded.up, \
                 degraded = excluded.degraded, down = excluded.down",
            )
            .and_then(|mut statement| {
                statement.execute(params![check, region, last_planned_ms, totals[0], totals[1], totals[2], totals[3]])
            })
            .map_err(StoreError::sqlite("updating pairs"))?;
            new_states.push(((check, region), PairState { last_planned_ms, totals, open }));
        }

        if !dirs.is_empty() {
            for dir in &dirs {
                artifacts::sync_dir(dir)?;
            }
            artifacts::sync_dir(&self.inner.artifacts)?;
        }
        tx.commit().map_err(StoreError::sqlite("committing an ingest transaction"))?;
        *next_id = id;

        rollups.extend(written);
        let mut max_planned = self.inner.max_planned_ms.load(Ordering::Relaxed);
        for (pair, state) in new_states {
            max_planned = max_planned.max(state.last_planned_ms);
            pairs.insert(pair, state);
        }
        self.inner.max_planned_ms.store(max_planned, Ordering::Relaxed);
        if !staged.checks.is_empty() || !staged.regions.is_empty() {
            let mut names = self.inner.names.write().map_err(|_| StoreError::Poisoned)?;
            for (name, id) in staged.checks {
                names.check_names.insert(id, name.clone());
                names.checks.insert(name, id);
            }
            for (name, id) in staged.regions {
                names.region_names.insert(id, name.clone());
                names.regions.insert(name, id);
            }
        }
        self.inner.accepted.fetch_add(done.accepted as u64, Ordering::Relaxed);
        self.inner.duplicates.fetch_add(done.duplicates as u64, Ordering::Relaxed);
        Ok((done, fresh))
    }
}
