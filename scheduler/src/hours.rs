//! The ledger task: closes the uptime ledger's hours into the store (`docs/uptime.md`, "Ledger hours"), so the
//! dashboard and the status page sum stored hours instead of reading raw results. Only the leader writes;
//! results that arrive late mark the closed hours they change, and the next pass computes them again.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use probenet_alerting::ledger::{Figures, ImpairedSpan, Ledger};
use probenet_checks::Config;
use probenet_checks::wire::RunResult;
use probenet_exporters::store::ledger::HOUR_MS;
use probenet_exporters::store::{LedgerHour, LedgerMs, Store, StoreError};

use crate::state::Shared;

/// An hour is closed this long after its end, for results that arrive a little late.
pub const LAG_MS: i64 = 120_000;
/// How often the task looks for hours to close.
const EVERY: Duration = Duration::from_secs(60);
/// Hours computed in one pass at most (catching up after a stop takes several passes, one after the other).
const HOURS_PER_PASS: usize = 24;
/// Checks computed (their results held in memory) and written together.
const CHECKS_PER_WRITE: usize = 20;
/// Written hours computed again when the task starts or its scheduler becomes the leader: late results that
/// arrived while no one was marking.
const RECHECK_HOURS: i64 = 3;

/// Which hours are closed and which must be computed again.
#[derive(Debug, Default)]
pub struct Marks {
    inner: Mutex<MarksInner>,
}

#[derive(Debug, Default)]
struct MarksInner {
    /// The end of the closed hours (`None` until the task has read the store).
    closed_until: Option<i64>,
    /// How far before and after its planned time a result of each check changes figures: `(retries + 1) ×
    /// interval` and one interval of that check (a slow check's reach must not make every check's results
    /// mark hours).
    reach: HashMap<String, (i64, i64)>,
    /// Closed hours to compute again.
    dirty: BTreeSet<i64>,
}

fn floor_hour(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

impl Marks {
    fn lock(&self) -> std::sync::MutexGuard<'_, MarksInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the closed hours that newly stored `results` change: those overlapping `[t - (retries + 1) ×
    /// interval, t + interval]` of a result planned at `t`.
    pub fn note(&self, results: &[RunResult]) {
        let mut inner = self.lock();
        let Some(closed) = inner.closed_until else { return };
        for result in results {
            let Some(&(before_ms, after_ms)) = inner.reach.get(&result.check) else { continue };
            let low = result.planned_at_ms.saturating_sub(before_ms);
            if low >= closed {
                continue;
            }
            let high = result.planned_at_ms.saturating_add(after_ms).min(closed - 1);
            let mut hour = floor_hour(low);
            while hour <= high {
                inner.dirty.insert(hour);
                hour += HOUR_MS;
            }
        }
    }

    /// Forgets what is known: the task reads the store again (a scheduler that lost the lead and gets it back).
    pub fn reset(&self) {
        *self.lock() = MarksInner::default();
    }

    /// The hours waiting to be computed again.
    pub fn dirty(&self) -> Vec<i64> {
        self.lock().dirty.iter().copied().collect()
    }

    /// The end of the closed hours, once known.
    pub fn closed_until(&self) -> Option<i64> {
        self.lock().closed_until
    }
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Hours computed (new and again).
    pub hours: usize,
    /// Rows written.
    pub rows: usize,
    /// Whether hours are left for the next pass (catching up).
    pub more: bool,
}

/// One pass at `now_ms`: the hours that ended at least [`LAG_MS`] ago and are not written yet, and the marked
/// ones, at most [`HOURS_PER_PASS`], computed from the store's raw results and written. The first pass starts
/// after the newest hour written (and computes the [`RECHECK_HOURS`] before it again) or, on a store without
/// any, at the hour of the oldest raw result: hours older than the raw results are not written, and missing
/// hours count as unknown.
pub fn pass(
    store: &dyn Store,
    config: &Config,
    impaired: &[ImpairedSpan],
    marks: &Marks,
    now_ms: i64,
) -> Result<Pass, StoreError> {
    let closable = floor_hour(now_ms - LAG_MS);
    let policies = crate::ledger::policies(config, None);
    let reach: HashMap<String, (i64, i64)> = policies
        .iter()
        .map(|p| (p.name.clone(), (p.interval_ms.saturating_mul(i64::from(p.retries) + 1), p.interval_ms)))
        .collect();
    if marks.closed_until().is_none() {
        let start = match store.ledger_last_hour()? {
            Some(last) => {
                // Only hours whose raw results are still kept: an older one would be written as unknown.
                let oldest = oldest_hour(store)?;
                let recheck = (0..RECHECK_HOURS).map(|back| last - back * HOUR_MS);
                marks.lock().dirty.extend(recheck.filter(|hour| oldest.is_some_and(|oldest| *hour >= oldest)));
                // After a long stop, not before the raw results kept.
                oldest.map_or(last + HOUR_MS, |oldest| (last + HOUR_MS).max(oldest.min(closable)))
            }
            None => oldest_hour(store)?.map_or(closable, |oldest| oldest.min(closable)),
        };
        marks.lock().closed_until = Some(start);
    }
    // Take the work out of the marks first, and move the closed end on before reading: a result stored while
    // this pass reads marks its hour again for the next pass.
    let (todo, more) = {
        let mut inner = marks.lock();
        inner.reach = reach;
        let closed = inner.closed_until.unwrap_or(closable);
        let mut todo: BTreeSet<i64> = inner.dirty.iter().copied().take(HOURS_PER_PASS).collect();
        let mut hour = closed;
        while hour < closable && todo.len() < HOURS_PER_PASS {
            todo.insert(hour);
            hour += HOUR_MS;
        }
        inner.dirty.retain(|hour| !todo.contains(hour));
        inner.closed_until = Some(hour.max(closed));
        (todo, hour < closable || !inner.dirty.is_empty())
    };
    if todo.is_empty() {
        return Ok(Pass::default());
    }
    // Contiguous hours are computed with one read of their results, a few checks at a time, each few written in
    // one transaction.
    let mut runs: Vec<Vec<(i64, i64)>> = Vec::new();
    for hour in &todo {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|last| last.1 == *hour) => run.push((*hour, hour + HOUR_MS)),
            _ => runs.push(vec![(*hour, hour + HOUR_MS)]),
        }
    }
    let mut written = 0;
    let computed = (|| {
        for some in policies.chunks(CHECKS_PER_WRITE) {
            let mut rows = Vec::new();
            for windows in &runs {
                for ledger in crate::ledger::compute_policies(store, config, some, impaired, windows)? {
                    rows.extend(hours_of(&ledger));
                }
            }
            store.write_ledger_hours(&rows)?;
            written += rows.len();
        }
        Ok::<_, StoreError>(())
    })();
    if let Err(error) = computed {
        // Not all written: all of it again next time.
        marks.lock().dirty.extend(todo.iter().copied());
        return Err(error);
    }
    Ok(Pass { hours: todo.len(), rows: written, more })
}

/// The hour of the oldest raw result kept.
fn oldest_hour(store: &dyn Store) -> Result<Option<i64>, StoreError> {
    Ok(crate::ledger::oldest_raw_ms(store)?.map(floor_hour))
}

/// The milliseconds of a ledger's figures.
pub fn ms_of(figures: &Figures) -> LedgerMs {
    #[allow(clippy::cast_possible_truncation)]
    let ms = |seconds: f64| (seconds * 1000.0).round() as i64;
    LedgerMs {
        up_ms: ms(figures.up_seconds),
        down_ms: ms(figures.down_seconds),
        unknown_ms: ms(figures.unknown_seconds),
        maintenance_ms: ms(figures.maintenance_seconds),
        muted_up_ms: figures.muted_up_ms(),
        muted_down_ms: figures.muted_down_ms(),
    }
}

/// The rows of a ledger of one hour: per check, its quorum view and each region.
pub fn hours_of(ledger: &Ledger) -> Vec<LedgerHour> {
    let mut rows = Vec::new();
    for check in &ledger.checks {
        let row = |region: Option<&str>, figures: &Figures| LedgerHour {
            check: check.check.clone(),
            region: region.map(str::to_owned),
            start_ms: ledger.from_ms,
            policy: ledger.policy,
            ms: ms_of(figures),
        };
        rows.push(row(None, &check.overall));
        rows.extend(check.regions.iter().map(|region| row(Some(&region.region), &region.figures)));
    }
    rows
}

/// The task: a pass every minute (one after the other while catching up) while `duty()` holds (always when alone;
/// replicated, on the leader). A scheduler that gets the lead reads the store again before its first pass.
pub async fn run(
    shared: Arc<Shared>,
    duty: impl Fn() -> bool + Send + 'static,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut failing = false;
    let mut leading = false;
    loop {
        let wait = if duty() {
            if !leading {
                shared.hours.reset();
                leading = true;
            }
            let state = shared.clone();
            let done = tokio::task::spawn_blocking(move || {
                let now = crate::time::now_ms();
                let impaired = state.alerting.impaired_spans(now);
                pass(state.store.as_ref(), &state.config().config, &impaired, &state.hours, now)
            })
            .await;
            match done {
                Ok(Ok(done)) => {
                    if failing {
                        tracing::info!("ledger hours are written again");
                        failing = false;
                    }
                    if done.hours > 0 {
                        tracing::debug!(hours = done.hours, rows = done.rows, "ledger hours written");
                    }
                    if done.more { Duration::from_millis(100) } else { EVERY }
                }
                Ok(Err(error)) => {
                    if !failing {
                        tracing::warn!(%error, "ledger hours not written; trying again");
                        failing = true;
                    }
                    EVERY
                }
                Err(error) => {
                    tracing::warn!(%error, "ledger task failed");
                    EVERY
                }
            }
        } else {
            leading = false;
            Duration::from_secs(5)
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = crate::server::stopped(&mut stopping) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use probenet_checks::{Outcome, Reason};
    use probenet_exporters::store::{ResultQuery, SqliteStore, StoreOptions};

    use super::*;

    const MIN: i64 = 60_000;
    /// Midnight UTC.
    const T0: i64 = 20_000 * 24 * HOUR_MS;

    fn run(minute: i64, up: bool) -> RunResult {
        let at = T0 + minute * MIN;
        RunResult {
            check: "web".into(),
            region: "eu".into(),
            planned_at_ms: at,
            started_at_ms: at + 5,
            prober: "p".into(),
            outcome: if up { Outcome::up(0.05) } else { Outcome::failed(Reason::Status, "got 503") },
        }
    }

    fn eu(store: &dyn Store, from: i64) -> LedgerMs {
        let sums = store.ledger_sums(Some("web"), from, from + HOUR_MS).unwrap();
        sums.into_iter().find(|sum| sum.region.as_deref() == Some("eu")).unwrap().ms
    }

    #[test]
    #[allow(clippy::float_cmp)]
    fn hours_close_after_the_lag_and_a_late_result_computes_its_hour_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), StoreOptions::default()).unwrap();
        let config = probenet_checks::config::load_str(
            "c.yaml",
            "regions: {eu: {}}\nchecks:\n  - {name: web, interval: 1m, http: {url: 'http://127.0.0.1:9/'}}\n",
        )
        .unwrap();
        // Three hours of passing runs but the one at 00:30, which comes late.
        store.ingest((0..180).filter(|minute| *minute != 30).map(|minute| run(minute, true)).collect()).unwrap();
        let marks = Marks::default();
        // At 02:01:59 the hour before is not closed yet; at 02:02 it is. The first pass starts at the oldest
        // raw result's hour.
        assert_eq!(pass(&store, &config, &[], &marks, T0 + 2 * HOUR_MS + LAG_MS - 1).unwrap().hours, 1);
        let done = pass(&store, &config, &[], &marks, T0 + 2 * HOUR_MS + LAG_MS).unwrap();
        assert_eq!((done.hours, done.rows, done.more), (1, 2, false), "the check as a whole and eu");
        assert_eq!(store.ledger_last_hour().unwrap(), Some(T0 + HOUR_MS));
        assert_eq!(eu(&store, T0), LedgerMs { up_ms: 59 * MIN, unknown_ms: MIN, ..LedgerMs::default() });

        // The late result failed: its hour is marked, computed again, and as a ledger of that hour says.
        let (_, fresh) = store.ingest(vec![run(30, false)]).unwrap();
        marks.note(&fresh);
        assert_eq!(marks.dirty(), [T0]);
        let done = pass(&store, &config, &[], &marks, T0 + 2 * HOUR_MS + LAG_MS + MIN).unwrap();
        assert_eq!(done.hours, 1);
        assert!(marks.dirty().is_empty());
        assert_eq!(eu(&store, T0), LedgerMs { up_ms: 59 * MIN, down_ms: MIN, ..LedgerMs::default() });
        let ledger = crate::ledger::compute(&store, &config, None, &[], T0, T0 + HOUR_MS).unwrap();
        assert_eq!(eu(&store, T0), ms_of(&ledger.checks[0].regions[0].figures));

        // A result beyond the closed hours marks nothing. A restarted task goes on after the last hour written and
        // computes the hours before it again.
        marks.note(&[run(150, false)]);
        assert!(marks.dirty().is_empty());
        let restarted = Marks::default();
        let done = pass(&store, &config, &[], &restarted, T0 + 3 * HOUR_MS + LAG_MS).unwrap();
        assert_eq!(done.hours, 3, "hour 02:00, and 00:00 and 01:00 again");
        assert_eq!(restarted.closed_until(), Some(T0 + 3 * HOUR_MS));

        // Once the raw results are gone, a report takes the figures of those hours from the stored ones.
        let before = crate::ledger::compute(&store, &config, None, &[], T0, T0 + 2 * HOUR_MS).unwrap();
        store.prune(T0 + 8 * 24 * HOUR_MS).unwrap();
        assert!(store.results(&ResultQuery::default()).unwrap().is_empty());
        let raw = crate::ledger::compute(&store, &config, None, &[], T0, T0 + 2 * HOUR_MS).unwrap();
        assert_eq!(raw.checks[0].regions[0].figures.unknown_seconds, 7200.0);
        let (after, until) = crate::ledger::with_stored_hours(&store, &config, None, &[], raw).unwrap();
        assert_eq!(until, Some(T0 + 2 * HOUR_MS));
        let figures = |ledger: &Ledger| {
            let eu = &ledger.checks[0].regions[0].figures;
            (eu.up_seconds, eu.down_seconds, eu.unknown_seconds, eu.maintenance_seconds, eu.uptime)
        };
        assert_eq!(figures(&after), figures(&before));
        assert_eq!(figures(&after).1, 60.0);
        assert_eq!(after.checks[0].overall.uptime, before.checks[0].overall.uptime);
    }

    #[test]
    fn a_slow_checks_reach_does_not_make_a_fast_checks_results_mark_hours() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), StoreOptions::default()).unwrap();
        // `web` every minute; `batch` hourly with 2 retries: its results change the 3 hours before them.
        let config = probenet_checks::config::load_str(
            "c.yaml",
            "regions: {eu: {}}\nchecks:\n  - {name: web, interval: 1m, http: {url: 'http://127.0.0.1:9/'}}\n  \
             - {name: batch, interval: 1h, tcp: {target: '127.0.0.1:9'}}\n\
             alerts:\n  - {name: batch-down, checks: [batch], consecutive: 3}\n",
        )
        .unwrap();
        store.ingest((0..240).map(|minute| run(minute, true)).collect()).unwrap();
        let marks = Marks::default();
        pass(&store, &config, &[], &marks, T0 + 4 * HOUR_MS + LAG_MS).unwrap();
        assert_eq!(marks.closed_until(), Some(T0 + 4 * HOUR_MS));
        // `web` at 04:05 reaches back 1 minute: nothing closed changes.
        marks.note(&[run(245, true)]);
        assert!(marks.dirty().is_empty(), "{:?}", marks.dirty());
        // `batch` at 04:00 reaches back 3 hours.
        let mut batch = run(240, true);
        batch.check = "batch".into();
        marks.note(&[batch]);
        assert_eq!(marks.dirty(), [T0 + HOUR_MS, T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS]);
    }
}
