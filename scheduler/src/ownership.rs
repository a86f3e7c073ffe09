//! Who owned each (check, region) pair, and since when: the record result ingest checks every result against,
//! so that a prober token can only report runs that its prober was given.

use std::collections::HashMap;

use probenet_checks::Schedule;

/// How long before a tenure began a result may be planned: a new owner runs a planned time it missed while the
/// pair was between owners, late (the prober's resume window is 15 s).
pub const BEFORE_MS: i64 = 20_000;
/// How long after a tenure ended a result may be planned: the old owner learns of the handover only when it
/// next asks for its assignments.
pub const AFTER_MS: i64 = 10_000;
/// How long after the scheduler started results of pairs it has no record for are taken on the prober's word
/// (a restart forgets who owned what; a prober's spool still holds runs of before).
pub const STARTUP_MS: i64 = 60_000;
/// The most tenures kept per pair (the oldest are forgotten first).
const MAX_TENURES: usize = 64;

/// Why a result was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Planned further in the future than clocks may disagree.
    Future,
    /// Planned before the ingest horizon.
    TooOld,
    /// Not one of the pair's planned times.
    OffSchedule,
    /// The pair was not the prober's at that time.
    NotAssigned,
    /// The result names no valid prober.
    WrongProber,
}

impl Refusal {
    /// Every reason, for metrics.
    pub const ALL: [Self; 5] = [Self::Future, Self::TooOld, Self::OffSchedule, Self::NotAssigned, Self::WrongProber];

    /// The reason as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Future => "future",
            Self::TooOld => "too_old",
            Self::OffSchedule => "off_schedule",
            Self::NotAssigned => "not_assigned",
            Self::WrongProber => "wrong_prober",
        }
    }

    /// What it means, for the prober's log.
    pub fn message(self) -> &'static str {
        match self {
            Self::Future => "planned in the future",
            Self::TooOld => "planned before the ingest horizon",
            Self::OffSchedule => "not a planned time of the check",
            Self::NotAssigned => "the pair was not assigned to this prober at that time",
            Self::WrongProber => "the result names no valid prober",
        }
    }
}

#[derive(Debug, Clone)]
struct Tenure {
    prober: String,
    /// The id of the token that registered the prober.
    token: String,
    offset_ms: u64,
    /// The schedule the pair had then (a reload may change it: runs planned before keep their grid).
    schedule: Schedule,
    since_ms: i64,
    until_ms: Option<i64>,
}

impl Tenure {
    fn is(&self, owner: &Owner<'_>, schedule: &Schedule) -> bool {
        self.prober == owner.prober
            && self.token == owner.token
            && self.offset_ms == owner.offset_ms
            && same_schedule(&self.schedule, schedule)
    }
}

fn same_schedule(a: &Schedule, b: &Schedule) -> bool {
    match (a, b) {
        (Schedule::Every(a), Schedule::Every(b)) => a == b,
        (Schedule::Cron(a), Schedule::Cron(b)) => a.expr == b.expr && a.timezone == b.timezone,
        _ => false,
    }
}

/// One holder of a pair in a plan.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The prober's name.
    pub prober: &'a str,
    /// The id of the token that registered it.
    pub token: &'a str,
    /// Its grid offset for the pair.
    pub offset_ms: u64,
}

/// The tenures of every pair, kept for the ingest horizon.
#[derive(Debug)]
pub struct Ownership {
    pairs: HashMap<(String, String), Vec<Tenure>>,
    started_ms: i64,
    horizon_ms: i64,
}

impl Ownership {
    /// An empty record, for a scheduler that started at `started_ms` and keeps `horizon_ms` of history.
    pub fn new(started_ms: i64, horizon_ms: i64) -> Self {
        Self { pairs: HashMap::new(), started_ms, horizon_ms }
    }

    /// Records the owners of every pair as of `now_ms`: `owners` lists each pair of the running config with
    /// its schedule and its probers (name and grid offset). Pairs missing from it have no owner from now on.
    pub fn record<'a>(
        &mut self,
        now_ms: i64,
        owners: impl Iterator<Item = ((&'a str, &'a str), &'a Schedule, Vec<Owner<'a>>)>,
    ) {
        let mut seen = std::collections::HashSet::new();
        for ((check, region), schedule, probers) in owners {
            let key = (check.to_owned(), region.to_owned());
            let tenures = self.pairs.entry(key.clone()).or_default();
            for tenure in tenures.iter_mut().filter(|tenure| tenure.until_ms.is_none()) {
                if !probers.iter().any(|owner| tenure.is(owner, schedule)) {
                    tenure.until_ms = Some(now_ms);
                }
            }
            for owner in probers {
                let open = tenures.iter().any(|tenure| tenure.until_ms.is_none() && tenure.is(&owner, schedule));
                if !open {
                    tenures.push(Tenure {
                        prober: owner.prober.to_owned(),
                        token: owner.token.to_owned(),
                        offset_ms: owner.offset_ms,
                        schedule: schedule.clone(),
                        since_ms: now_ms,
                        until_ms: None,
                    });
                }
            }
            if tenures.len() > MAX_TENURES {
                let excess = tenures.len() - MAX_TENURES;
                tenures.drain(..excess);
            }
            seen.insert(key);
        }
        let cut = now_ms - self.horizon_ms;
        self.pairs.retain(|key, tenures| {
            if !seen.contains(key) {
                for tenure in tenures.iter_mut().filter(|tenure| tenure.until_ms.is_none()) {
                    tenure.until_ms = Some(now_ms);
                }
            }
            tenures.retain(|tenure| tenure.until_ms.is_none_or(|until| until >= cut));
            !tenures.is_empty()
        });
    }

    /// Whether the holder of `token` may report a run of (check, region) that its prober `prober` (the one that
    /// ran it: a restarted prober may have another name now) planned at `planned_at_ms`: that prober, registered
    /// with this token, held the pair then (within the grace of a handover) and the time is one of the pair's
    /// planned times on the schedule it had then. A pair this scheduler has no record of at that time (planned before it started) is taken on
    /// `schedule`, the pair's schedule now, alone.
    /// When `prober`'s tenure of the pair began by a planned handover: a previous holder's tenure ended as
    /// this one began, and that prober is still `live` (it ran the pair up to the handover, and its last
    /// results may not have arrived yet). `None` for a pair taken over from a prober that died or left, or held
    /// from the start.
    pub fn planned_handover(
        &self,
        check: &str,
        region: &str,
        prober: &str,
        live: impl Fn(&str) -> bool,
    ) -> Option<i64> {
        let tenures = self.pairs.get(&(check.to_owned(), region.to_owned()))?;
        let since = tenures.iter().find(|tenure| tenure.prober == prober && tenure.until_ms.is_none())?.since_ms;
        tenures
            .iter()
            .any(|tenure| tenure.prober != prober && tenure.until_ms == Some(since) && live(&tenure.prober))
            .then_some(since)
    }

    pub fn verdict(
        &self,
        check: &str,
        region: &str,
        prober: &str,
        token: &str,
        planned_at_ms: i64,
        schedule: &Schedule,
    ) -> Result<(), Refusal> {
        let tenures = self.pairs.get(&(check.to_owned(), region.to_owned())).map_or(&[][..], Vec::as_slice);
        let on_tenure_grid = |tenure: &Tenure| tenure.schedule.plans(tenure.offset_ms, planned_at_ms);
        if !schedule.plans(schedule.offset_ms(check, region), planned_at_ms) && !tenures.iter().any(on_tenure_grid) {
            return Err(Refusal::OffSchedule);
        }
        let held = tenures.iter().any(|tenure| {
            tenure.prober == prober
                && tenure.token == token
                && planned_at_ms >= tenure.since_ms - BEFORE_MS
                && tenure.until_ms.is_none_or(|until| planned_at_ms <= until + AFTER_MS)
                && on_tenure_grid(tenure)
        });
        // The record of a pair starts when a plan first covers it; if that was in the start-up window, runs
        // planned before it are unverifiable (they were the previous process's to judge).
        let recorded_from = tenures.iter().map(|tenure| tenure.since_ms).min();
        let unrecorded = match recorded_from {
            None => planned_at_ms < self.started_ms + STARTUP_MS,
            Some(from) => planned_at_ms < from && from <= self.started_ms + STARTUP_MS,
        };
        if held || unrecorded { Ok(()) } else { Err(Refusal::NotAssigned) }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_result_is_taken_only_from_the_owner_of_its_time_and_on_the_grid() {
        let every = Schedule::Every(Duration::from_secs(10));
        let offset = every.offset_ms("home", "eu");
        let start = 1_000 * DAY;
        let mut ownership = Ownership::new(start, 7 * DAY);
        let t0 = start + 10 * 60_000;
        ownership.record(
            t0,
            [(("home", "eu"), &every, vec![Owner { prober: "a", token: "t", offset_ms: offset }])].into_iter(),
        );
        let on_grid = |at: i64| every.planned_at_or_after(offset, at).unwrap_or(0);
        let run = on_grid(t0 + 30_000);
        assert_eq!(ownership.verdict("home", "eu", "a", "t", run, &every), Ok(()));
        assert_eq!(ownership.verdict("home", "eu", "b", "t", run, &every), Err(Refusal::NotAssigned));
        // The prober's name with another token: not its run.
        assert_eq!(ownership.verdict("home", "eu", "a", "other", run, &every), Err(Refusal::NotAssigned));
        assert_eq!(ownership.verdict("home", "eu", "a", "t", run + 1, &every), Err(Refusal::OffSchedule));
        // Handed over to b: a's last runs are still taken for a little while, b's resumed runs a little before.
        let t1 = t0 + 120_000;
        ownership.record(
            t1,
            [(("home", "eu"), &every, vec![Owner { prober: "b", token: "t", offset_ms: offset }])].into_iter(),
        );
        let just_before = on_grid(t1 - 9_000);
        assert_eq!(ownership.verdict("home", "eu", "a", "t", just_before, &every), Ok(()));
        assert_eq!(ownership.verdict("home", "eu", "b", "t", just_before, &every), Ok(()));
        let later = on_grid(t1 + 60_000);
        assert_eq!(ownership.verdict("home", "eu", "a", "t", later, &every), Err(Refusal::NotAssigned));
        assert_eq!(ownership.verdict("home", "eu", "b", "t", later, &every), Ok(()));
        // A pair first covered long after the start (added by a reload) has no runs from before then.
        let before_start = on_grid(start - 60_000);
        assert_eq!(ownership.verdict("home", "eu", "a", "t", before_start, &every), Err(Refusal::NotAssigned));
        // A pair covered in the start-up window: runs from before it (a restart) are taken on the schedule alone.
        let mut restarted = Ownership::new(start, 7 * DAY);
        assert_eq!(restarted.verdict("home", "eu", "a", "t", before_start, &every), Ok(()));
        restarted.record(
            start + 2_000,
            [(("home", "eu"), &every, vec![Owner { prober: "b", token: "t", offset_ms: offset }])].into_iter(),
        );
        assert_eq!(restarted.verdict("home", "eu", "a", "t", before_start, &every), Ok(()));
        assert_eq!(
            restarted.verdict("home", "eu", "a", "t", on_grid(start + 300_000), &every),
            Err(Refusal::NotAssigned)
        );
        // A reload makes the interval 20 s: b's runs on the old grid up to then are still taken, new ones only on
        // the new grid.
        let t2 = t1 + 90_000;
        let slower = Schedule::Every(Duration::from_secs(20));
        let new_offset = slower.offset_ms("home", "eu");
        ownership.record(
            t2,
            [(("home", "eu"), &slower, vec![Owner { prober: "b", token: "t", offset_ms: new_offset }])].into_iter(),
        );
        let old_run = on_grid(t2 - 5_000);
        assert_eq!(ownership.verdict("home", "eu", "b", "t", old_run, &slower), Ok(()));
        let new_run = slower.planned_at_or_after(new_offset, t2 + 1_000).unwrap_or(0);
        assert_eq!(ownership.verdict("home", "eu", "b", "t", new_run, &slower), Ok(()));
        let old_grid_later = on_grid(t2 + 60_000);
        if !slower.plans(new_offset, old_grid_later) {
            assert_eq!(ownership.verdict("home", "eu", "b", "t", old_grid_later, &slower), Err(Refusal::NotAssigned));
        }
        // A removed pair has no owner from then on.
        ownership.record(t2 + 100_000, std::iter::empty());
        let after = slower.planned_at_or_after(new_offset, t2 + 200_000).unwrap_or(0);
        assert_eq!(ownership.verdict("home", "eu", "b", "t", after, &slower), Err(Refusal::NotAssigned));
    }
}
