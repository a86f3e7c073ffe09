//! The leader's view of every replica's results: it reads the shared store in the order results were stored and
//! hands each new run to the alert engine once. A batch becomes visible when its transaction commits, a little
//! after the time it carries, so each read goes back [`OVERLAP`] and skips the runs already seen.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use probenet_checks::wire::RunResult;

use crate::state::Shared;

/// How far back each round goes: longer than an ingest transaction takes (a batch is one short transaction).
pub const OVERLAP: Duration = Duration::from_secs(5);
/// How often the leader reads.
const EVERY: Duration = Duration::from_secs(1);
/// Results per page.
const BATCH: usize = 5_000;
/// Pages per round at most (a larger backlog is read over several rounds).
const MAX_PAGES: usize = 20;

/// The runs seen lately, by run id, with when they were stored; forgotten once older than the overlap.
#[derive(Debug, Default)]
struct Seen {
    ids: HashMap<(String, String, i64), i64>,
    order: VecDeque<(i64, (String, String, i64))>,
}

impl Seen {
    /// Notes a run; false when it was seen already.
    fn note(&mut self, stored_at_ms: i64, result: &RunResult) -> bool {
        let id = (result.check.clone(), result.region.clone(), result.planned_at_ms);
        if self.ids.contains_key(&id) {
            return false;
        }
        self.ids.insert(id.clone(), stored_at_ms);
        self.order.push_back((stored_at_ms, id));
        true
    }

    /// Forgets runs stored before `before_ms`.
    fn forget_before(&mut self, before_ms: i64) {
        while let Some((at, _)) = self.order.front() {
            if *at >= before_ms {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }
}

/// Feeds the alert engine while this replica leads, until the scheduler stops. A new leader starts `start_back`
/// before now, so the runs stored while the lease changed hands are evaluated. The previous leader may have seen
/// some of them: alert states follow the latest run per pair and are unchanged by a run seen twice, but the SLO
/// buckets count such a run twice (at most the runs of `start_back`, once per failover).
pub async fn run(shared: Arc<Shared>, start_back: Duration) {
    let mut stopping = shared.stopping.clone();
    let Some(cluster) = shared.cluster().cloned() else { return };
    let mut leadership = cluster.leadership();
    let overlap_ms = i64::try_from(OVERLAP.as_millis()).unwrap_or(10_000);
    let back_ms = i64::try_from(start_back.as_millis()).unwrap_or(0);
    loop {
        // Wait to lead.
        while leadership.borrow_and_update().is_none() {
            tokio::select! {
                () = crate::server::stopped(&mut stopping) => return,
                changed = leadership.changed() => if changed.is_err() { return },
            }
        }
        let mut cursor = crate::time::now_ms() - back_ms;
        let mut seen = Seen::default();
        let mut failing = false;
        while leadership.borrow().is_some() {
            tokio::select! {
                () = crate::server::stopped(&mut stopping) => return,
                () = tokio::time::sleep(EVERY) => {}
            }
            if !shared.alerting.running() {
                continue;
            }
            // One round: from the overlap on, page by page until a page is not full.
            let mut from = cursor - overlap_ms;
            let mut fresh = Vec::new();
            let mut failed = None;
            for _page in 0..MAX_PAGES {
                let state = shared.clone();
                let read = tokio::task::spawn_blocking(move || state.store.stored_since(from, BATCH)).await;
                let rows = match read {
                    Ok(Ok(rows)) => rows,
                    Ok(Err(error)) => {
                        failed = Some(error.to_string());
                        break;
                    }
                    Err(error) => {
                        failed = Some(error.to_string());
                        break;
                    }
                };
                let full = rows.len() >= BATCH;
                let mut last = from;
                for (stored_at_ms, result) in rows {
                    last = last.max(stored_at_ms);
                    cursor = cursor.max(stored_at_ms);
                    if seen.note(stored_at_ms, &result) {
                        fresh.push(result);
                    }
                }
                if !full {
                    break;
                }
                // The next page starts at the last time read (its other runs are skipped as seen); a page of one
                // millisecond only moves on by one.
                from = if last > from { last } else { from + 1 };
            }
            match failed {
                Some(error) if !failing => {
                    tracing::warn!(error, "cannot read the results for the alert engine; retrying");
                    failing = true;
                }
                None if failing => {
                    tracing::info!("results are read again for the alert engine");
                    failing = false;
                }
                _ => {}
            }
            seen.forget_before(cursor - 2 * overlap_ms);
            if !fresh.is_empty() {
                let state = shared.clone();
                // The leader's ledger task computes again the closed hours other replicas' late results change.
                shared.hours.note(&fresh);
                let _ = tokio::task::spawn_blocking(move || state.alerting.observe(&fresh)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_at(check: &str, planned_at_ms: i64) -> RunResult {
        RunResult {
            check: check.to_owned(),
            region: "eu".to_owned(),
            planned_at_ms,
            started_at_ms: planned_at_ms,
            prober: "p".to_owned(),
            outcome: probenet_checks::Outcome::up(0.1),
        }
    }

    #[test]
    fn a_run_is_noted_once_until_it_is_forgotten() {
        let mut seen = Seen::default();
        assert!(seen.note(1_000, &run_at("a", 1)));
        assert!(!seen.note(1_200, &run_at("a", 1)), "the same run again");
        assert!(seen.note(1_200, &run_at("a", 2)));
        seen.forget_before(1_100);
        assert!(seen.note(1_300, &run_at("a", 1)), "forgotten after the overlap");
        assert!(!seen.note(1_300, &run_at("a", 2)));
    }
}
