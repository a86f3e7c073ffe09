//! Recent results in memory, behind the [`Store`] trait (an embedded database replaces it later): per (check,
//! region) a bounded window ordered by planned time, and ingest idempotent on the run id.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use probenet_checks::wire::RunResult;

/// What an ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Results stored now.
    pub accepted: usize,
    /// Results whose run id was seen before: not stored or counted again.
    pub duplicates: usize,
}

/// Why a batch was not stored (nothing of it was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("results not stored: {0}")]
pub struct StoreError(pub String);

/// A query for recent results, newest first.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only this check.
    pub check: Option<String>,
    /// Only this region.
    pub region: Option<String>,
    /// Only runs planned at or after this time, unix ms.
    pub since_ms: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// Where results go. Implementations are shared between request handlers.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Stores results not seen before; a result whose `RunResult::id()` was seen counts as a duplicate.
    /// Returns the counts and the results stored now (for the exporters), or why nothing was stored: then the
    /// batch is not acknowledged and the prober sends it again later.
    fn ingest(&self, results: Vec<RunResult>) -> Result<(Ingested, Vec<RunResult>), StoreError>;
    /// The latest result (by planned time) of a pair.
    fn latest(&self, check: &str, region: &str) -> Option<RunResult>;
    /// The planned time of every pair's latest result, as (check, region, planned_at_ms).
    fn last_planned(&self) -> Vec<(String, String, i64)>;
    /// Results matching the query, newest first.
    fn query(&self, query: &Query) -> Vec<RunResult>;
    /// Results accepted and duplicates seen since start.
    fn totals(&self) -> Ingested;
    /// The pairs of the running config: results of other pairs may be dropped.
    fn set_pairs(&self, pairs: &[(&str, &str)]);
}

/// The in-memory store: at most `per_pair` results per pair (fewer when there are many pairs, so the total
/// stays under a budget), and a bounded memory of older run ids for duplicate detection.
#[derive(Debug)]
pub struct MemoryStore {
    max_per_pair: usize,
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// check → region → window.
    pairs: HashMap<String, HashMap<String, Window>>,
    per_pair: usize,
    accepted: u64,
    duplicates: u64,
}

#[derive(Debug, Default)]
struct Window {
    /// Stored results by planned time.
    results: BTreeMap<i64, RunResult>,
    /// Planned times of results that left the window, oldest first, for duplicate detection.
    evicted: VecDeque<i64>,
    evicted_set: HashSet<i64>,
}

/// Results kept per pair at most.
pub const MAX_PER_PAIR: usize = 1_000;
/// Results kept in all at most (the per-pair window shrinks, down to [`MIN_PER_PAIR`], to stay under it).
pub const BUDGET: usize = 200_000;
/// The smallest per-pair window.
pub const MIN_PER_PAIR: usize = 16;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MAX_PER_PAIR, BUDGET)
    }
}

impl MemoryStore {
    /// A store keeping at most `max_per_pair` results per pair and about `budget` in all.
    pub fn new(max_per_pair: usize, budget: usize) -> Self {
        let max_per_pair = max_per_pair.max(1);
        Self { max_per_pair, budget, inner: Mutex::new(Inner { per_pair: max_per_pair, ..Inner::default() }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Window {
    fn trim(&mut self, capacity: usize) {
        while self.results.len() > capacity {
            let Some((planned, _)) = self.results.pop_first() else {
                break;
            };
            self.evicted.push_back(planned);
            self.evicted_set.insert(planned);
        }
        // Remember as many evicted ids as the window holds, at least a few hundred.
        let remembered = (capacity * 4).max(256);
        while self.evicted.len() > remembered {
            if let Some(old) = self.evicted.pop_front() {
                self.evicted_set.remove(&old);
            }
        }
    }
}

impl Store for MemoryStore {
    fn ingest(&self, results: Vec<RunResult>) -> Result<(Ingested, Vec<RunResult>), StoreError> {
        let mut inner = self.lock();
        let per_pair = inner.per_pair;
        let mut ingested = Ingested::default();
        let mut fresh = Vec::new();
        for result in results {
            let window = inner.pairs.entry(result.check.clone()).or_default().entry(result.region.clone()).or_default();
            let planned = result.planned_at_ms;
            if window.results.contains_key(&planned) || window.evicted_set.contains(&planned) {
                ingested.duplicates += 1;
                continue;
            }
            fresh.push(result.clone());
            window.results.insert(planned, result);
            window.trim(per_pair);
            ingested.accepted += 1;
        }
        inner.accepted += ingested.accepted as u64;
        inner.duplicates += ingested.duplicates as u64;
        Ok((ingested, fresh))
    }

    fn latest(&self, check: &str, region: &str) -> Option<RunResult> {
        let inner = self.lock();
        let window = inner.pairs.get(check)?.get(region)?;
        window.results.last_key_value().map(|(_, result)| result.clone())
    }

    fn last_planned(&self) -> Vec<(String, String, i64)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (check, regions) in &inner.pairs {
            for (region, window) in regions {
                if let Some(planned) = window.results.last_key_value().map(|(_, result)| result.planned_at_ms) {
                    out.push((check.clone(), region.clone(), planned));
                }
            }
        }
        out
    }

    fn query(&self, query: &Query) -> Vec<RunResult> {
        let inner = self.lock();
        let since = query.since_ms.unwrap_or(i64::MIN);
        let mut found: Vec<&RunResult> = Vec::new();
        let checks: Box<dyn Iterator<Item = &HashMap<String, Window>>> = match &query.check {
            Some(check) => Box::new(inner.pairs.get(check).into_iter()),
            None => Box::new(inner.pairs.values()),
        };
        for regions in checks {
            for (region, window) in regions {
                if query.region.as_ref().is_some_and(|wanted| wanted != region) {
                    continue;
                }
                found.extend(window.results.range(since..).rev().take(query.limit).map(|(_, result)| result));
            }
        }
        found.sort_by(|a, b| {
            b.planned_at_ms.cmp(&a.planned_at_ms).then_with(|| (&a.check, &a.region).cmp(&(&b.check, &b.region)))
        });
        found.into_iter().take(query.limit).cloned().collect()
    }

    fn totals(&self) -> Ingested {
        let inner = self.lock();
        Ingested {
            accepted: usize::try_from(inner.accepted).unwrap_or(usize::MAX),
            duplicates: usize::try_from(inner.duplicates).unwrap_or(usize::MAX),
        }
    }

    fn set_pairs(&self, pairs: &[(&str, &str)]) {
        let keep: HashSet<(&str, &str)> = pairs.iter().copied().collect();
        let per_pair = (self.budget / pairs.len().max(1)).max(MIN_PER_PAIR).min(self.max_per_pair);
        let mut inner = self.lock();
        inner.per_pair = per_pair;
        for (check, regions) in &mut inner.pairs {
            regions.retain(|region, _| keep.contains(&(check.as_str(), region.as_str())));
            for window in regions.values_mut() {
                window.trim(per_pair);
            }
        }
        inner.pairs.retain(|_, regions| !regions.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use probenet_checks::Outcome;

    use super::*;

    fn result(check: &str, region: &str, planned_at_ms: i64) -> RunResult {
        RunResult {
            check: check.into(),
            region: region.into(),
            planned_at_ms,
            started_at_ms: planned_at_ms + 1,
            prober: "p".into(),
            outcome: Outcome::up(0.1),
        }
    }

    fn ingest(store: &MemoryStore, results: Vec<RunResult>) -> Ingested {
        let (ingested, fresh) = store.ingest(results).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(fresh.len(), ingested.accepted);
        ingested
    }

    #[test]
    fn ingest_is_idempotent_on_the_run_id() {
        let store = MemoryStore::default();
        let batch: Vec<RunResult> = (0..5).map(|i| result("a", "eu", i * 1000)).collect();
        assert_eq!(ingest(&store, batch.clone()), Ingested { accepted: 5, duplicates: 0 });
        assert_eq!(ingest(&store, batch), Ingested { accepted: 0, duplicates: 5 });
        // Same planned time from another region or check is another run.
        assert_eq!(ingest(&store, vec![result("a", "us", 0), result("b", "eu", 0)]).accepted, 2);
        assert_eq!(store.totals(), Ingested { accepted: 7, duplicates: 5 });
        assert_eq!(store.latest("a", "eu").map(|r| r.planned_at_ms), Some(4000));
        assert_eq!(store.latest("a", "nowhere"), None);
    }

    #[test]
    fn queries_are_newest_first_filtered_and_limited() {
        let store = MemoryStore::default();
        // Out of order, as replays arrive.
        ingest(&store, [3, 1, 4, 0, 2].iter().map(|i| result("a", "eu", i * 1000)).collect());
        ingest(&store, vec![result("b", "eu", 2500)]);
        let query = |check: Option<&str>, since_ms, limit| {
            store
                .query(&Query { check: check.map(Into::into), region: Some("eu".into()), since_ms, limit })
                .iter()
                .map(|r| r.planned_at_ms)
                .collect::<Vec<_>>()
        };
        assert_eq!(query(Some("a"), None, 10), [4000, 3000, 2000, 1000, 0]);
        assert_eq!(query(Some("a"), Some(2000), 10), [4000, 3000, 2000]);
        assert_eq!(query(Some("a"), None, 2), [4000, 3000]);
        assert_eq!(query(None, Some(2000), 10), [4000, 3000, 2500, 2000]);
    }

    #[test]
    fn memory_stays_bounded_and_evicted_runs_still_count_as_duplicates() {
        let store = MemoryStore::new(50, 1_000);
        ingest(&store, (0..60).map(|i| result("a", "eu", i)).collect());
        assert_eq!(store.query(&Query { limit: 100, ..Query::default() }).len(), 50);
        // An evicted run replayed is not stored again.
        assert_eq!(ingest(&store, vec![result("a", "eu", 3)]), Ingested { accepted: 0, duplicates: 1 });
        // Pairs leaving the config are dropped; many pairs shrink the window.
        ingest(&store, vec![result("b", "eu", 1)]);
        store.set_pairs(&[("b", "eu")]);
        assert_eq!(store.latest("a", "eu"), None);
        assert!(store.latest("b", "eu").is_some());
        let pairs: Vec<(String, String)> = (0..500).map(|i| (format!("c{i}"), "eu".to_owned())).collect();
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(c, r)| (c.as_str(), r.as_str())).collect();
        store.set_pairs(&borrowed);
        ingest(&store, (0..100).map(|i| result("c1", "eu", i)).collect());
        assert_eq!(store.query(&Query { limit: 1000, ..Query::default() }).len(), MIN_PER_PAIR);
    }
}
