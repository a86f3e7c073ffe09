//! The run loop: one dispatcher (on a blocking-pool thread, for a precise wait) holds every assigned pair in
//! a min-heap of planned times, waits until the earliest, and starts each due run as its own task on the
//! runtime under its kind's concurrency limit. A run that would overrun the same pair's previous one, or
//! that finds no permit within a short grace, is skipped and counted, never piled up.
//!
//! Memory per pair is a slot (the check's `Arc`, the region, the offset, a running flag) and a 16-byte heap
//! entry; a run's own state exists only while it runs.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use probenet_checks::Kind;
use probenet_checks::config::Schedule;
use probenet_checks::run_once;
use probenet_checks::wire::RunResult;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::evidence::{Evidence, Policy};
use crate::plan::{Pair, now_ms, now_us};
use crate::stats::{Counters, StatsHandle, add};

/// The longest a run waits for a permit of its kind before it is skipped as busy.
const MAX_PERMIT_GRACE: Duration = Duration::from_millis(100);
/// How early (in microseconds) a wake-up may be and still start a run: the wait and the wall clock do not
/// agree to the microsecond.
const EARLY_TOLERANCE_US: i64 = 50;
/// A pair further behind than this (in milliseconds) skips to its next planned time instead of catching up.
const BEHIND_LIMIT_MS: i64 = 1_000;
/// The most planned times a new owner of a pair makes up for (see [`Slot`] and the check's `catch_up`).
const MAX_CATCH_UPS: usize = 100;

/// Concurrency limits per check kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    per_kind: [usize; Kind::ALL.len()],
}

impl Default for Limits {
    /// Each kind's [`Kind::default_limit`]: http, dns, tcp, websocket and grpc 256; tls and api 128; icmp 64; browser 2.
    fn default() -> Self {
        Self { per_kind: Kind::ALL.map(Kind::default_limit) }
    }
}

impl Limits {
    /// Parses one override written `KIND=N` (the prober's `--limit`): a known kind and a limit of at least 1.
    pub fn parse_override(text: &str) -> Result<(Kind, usize), String> {
        let (kind, limit) = text.split_once('=').ok_or_else(|| format!("{text:?} is not KIND=N"))?;
        let kind = kind.trim();
        let kind =
            Kind::from_key(kind).ok_or_else(|| format!("unknown check kind {kind:?}; kinds are {}", Kind::keys()))?;
        let limit: usize = limit.trim().parse().map_err(|_| format!("{limit:?} is not a number"))?;
        if limit == 0 {
            return Err("a limit must be at least 1".to_owned());
        }
        Ok((kind, limit))
    }

    /// The defaults with `overrides` (kind → limit) applied; a zero limit is an error.
    pub fn with_overrides<'a>(overrides: impl IntoIterator<Item = (&'a Kind, &'a usize)>) -> Result<Self, String> {
        let mut limits = Self::default();
        for (kind, limit) in overrides {
            if *limit == 0 {
                return Err(format!("the limit of {kind} must be at least 1"));
            }
            limits.per_kind[kind.index()] = (*limit).min(Semaphore::MAX_PERMITS);
        }
        Ok(limits)
    }

    /// The limit of `kind`.
    pub fn get(&self, kind: Kind) -> usize {
        self.per_kind[kind.index()]
    }
}

/// State shared by the dispatcher and every run task.
#[derive(Debug)]
struct Shared {
    prober: Arc<str>,
    results: mpsc::Sender<RunResult>,
    counters: Arc<Counters>,
    semaphores: Vec<Arc<Semaphore>>,
    in_flight: AtomicUsize,
    idle: Notify,
    stopping: AtomicBool,
    cancel: watch::Receiver<bool>,
    evidence: Evidence,
}

enum Command {
    Apply(Vec<Pair>),
    Stop(oneshot::Sender<()>),
}

/// The run loop of one prober. Dropping it stops dispatching (in-flight runs finish on their own).
#[derive(Debug)]
pub struct Runner {
    commands: std::sync::mpsc::Sender<Command>,
    shared: Arc<Shared>,
    cancel: watch::Sender<bool>,
}

impl Runner {
    /// Starts the dispatcher (on the current Tokio runtime), capturing no evidence. Results go to `results`,
    /// named `prober`.
    pub fn start(prober: &str, limits: &Limits, results: mpsc::Sender<RunResult>, stats: &StatsHandle) -> Self {
        Self::with_evidence(prober, limits, Policy::disabled(), results, stats)
    }

    /// [`Runner::start`], attaching evidence (a traceroute) to failed runs as `evidence` allows.
    pub fn with_evidence(
        prober: &str,
        limits: &Limits,
        evidence: Policy,
        results: mpsc::Sender<RunResult>,
        stats: &StatsHandle,
    ) -> Self {
        let (cancel, cancel_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            prober: Arc::from(prober),
            results,
            counters: stats.counters.clone(),
            semaphores: limits.per_kind.iter().map(|limit| Arc::new(Semaphore::new(*limit))).collect(),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            stopping: AtomicBool::new(false),
            cancel: cancel_rx,
            evidence: Evidence::new(evidence),
        });
        let (commands, commands_rx) = std::sync::mpsc::channel();
        let dispatcher = Dispatcher {
            shared: shared.clone(),
            slots: Vec::new(),
            epochs: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            heap: BinaryHeap::new(),
            catch_ups: BinaryHeap::new(),
        };
        // A blocking-pool thread keeps the runtime's context (runs are spawned onto the runtime) and ends
        // when the runner stops or is dropped.
        tokio::task::spawn_blocking(move || dispatcher.run(commands_rx));
        Self { commands, shared, cancel }
    }

    /// Replaces the set of assigned pairs. Pairs that stay keep their timing (no gap, no double run); removed
    /// ones stop (a run in flight finishes and its result is still sent); new ones start at their next
    /// planned time.
    pub fn apply(&self, pairs: Vec<Pair>) {
        let _ = self.commands.send(Command::Apply(pairs));
    }

    /// Runs in flight now (including those waiting for a permit).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Stops dispatching, lets runs in flight finish for up to `grace`, then cancels the rest (counted as
    /// `runs_abandoned`). Returns how many were cancelled.
    pub async fn stop(self, grace: Duration) -> usize {
        self.shared.stopping.store(true, Ordering::Release);
        let (done, done_rx) = oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok() {
            let _ = done_rx.await;
        }
        if self.wait_idle(grace).await {
            return 0;
        }
        let abandoned = self.in_flight();
        let _ = self.cancel.send(true);
        self.wait_idle(Duration::from_secs(1)).await;
        abandoned
    }

    async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.shared.idle.notified();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }
}

/// One assigned pair in the dispatcher.
struct Slot {
    pair: Pair,
    kind: usize,
    running: Arc<AtomicBool>,
    next_ms: i64,
    last_planned_ms: Option<i64>,
}

struct Dispatcher {
    shared: Arc<Shared>,
    slots: Vec<Option<Slot>>,
    /// Bumped whenever a slot's heap entry is superseded (rescheduled, removed): stale entries are skipped.
    epochs: Vec<u32>,
    free: Vec<u32>,
    index: HashMap<(Box<str>, Arc<str>), u32>,
    heap: BinaryHeap<Reverse<(i64, u32, u32)>>,
    /// Planned times a pair missed between owners, made up for by its new owner: (when to start, planned time,
    /// slot, epoch). They are spread over one interval, and none holds the pair's running flag, so a catch-up
    /// still going at the next planned time never makes that run skip.
    catch_ups: BinaryHeap<Reverse<(i64, i64, u32, u32)>>,
}

impl Dispatcher {
    /// The loop, on a thread of its own: a precise wait (not the runtime's 1 ms timer wheel, whose rounding
    /// up would add up to 2 ms to every start) until the earliest planned run or a command.
    fn run(mut self, commands: std::sync::mpsc::Receiver<Command>) {
        loop {
            let first = self.heap.peek().map(|Reverse((at, _, _))| *at);
            let catch_up = self.catch_ups.peek().map(|Reverse((at, _, _, _))| *at);
            let wait = match first.into_iter().chain(catch_up).min() {
                Some(at) => {
                    let ahead_us = at.saturating_mul(1000) - now_us() - EARLY_TOLERANCE_US;
                    Duration::from_micros(u64::try_from(ahead_us).unwrap_or(0))
                }
                None => Duration::from_secs(3600),
            };
            match commands.recv_timeout(wait) {
                Ok(Command::Apply(pairs)) => self.apply(pairs),
                Ok(Command::Stop(done)) => {
                    // Nothing is assigned any more; say so before the stopper reads the counters.
                    self.shared.counters.assigned_pairs.store(0, Ordering::Relaxed);
                    let _ = done.send(());
                    break;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => self.fire_due(),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.shared.counters.assigned_pairs.store(0, Ordering::Relaxed);
    }

    fn apply(&mut self, pairs: Vec<Pair>) {
        let now = now_ms();
        let mut keep = vec![false; self.slots.len()];
        for pair in pairs {
            let key: (Box<str>, Arc<str>) = (pair.check.name.as_str().into(), pair.region.clone());
            let kind = pair.check.kind.kind().index();
            match self.index.entry(key) {
                Entry::Occupied(entry) => {
                    let id = *entry.get();
                    let index = id as usize;
                    keep[index] = true;
                    let Some(slot) = self.slots[index].as_mut() else { continue };
                    let same_timing = slot.pair.offset_ms == pair.offset_ms
                        && same_schedule(&slot.pair.check.schedule, &pair.check.schedule);
                    slot.pair = pair;
                    slot.kind = kind;
                    if !same_timing {
                        // A new grid: continue after the last planned run, never before now.
                        let from = slot.last_planned_ms.map_or(now, |last| (last + 1).max(now));
                        self.epochs[index] = self.epochs[index].wrapping_add(1);
                        if let Some(next) = slot.pair.next_at(from) {
                            slot.next_ms = next;
                            self.heap.push(Reverse((next, id, self.epochs[index])));
                        }
                    }
                }
                Entry::Vacant(entry) => {
                    // A pair between owners resumes after its latest stored result: the planned times it missed
                    // since then, within the check's `catch_up`, are made now and over the next interval,
                    // late, instead of leaving a hole; the pair keeps its grid from now on. (A replica that has
                    // not heard of the latest run yet gives an older resume point: the store takes the runs made
                    // twice once.)
                    let missed = missed_since(&pair, now);
                    let Some(next) = pair.next_at(now) else {
                        tracing::warn!(check = %pair.check.name, "the check's schedule never fires again; not run");
                        continue;
                    };
                    let id = match self.free.pop() {
                        Some(id) => id,
                        None => {
                            self.slots.push(None);
                            self.epochs.push(0);
                            keep.push(false);
                            u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
                        }
                    };
                    let index = id as usize;
                    entry.insert(id);
                    keep[index] = true;
                    let epoch = self.epochs[index];
                    // Spread over one interval (at most until the pair's next planned run), the first at once.
                    let span = (next - now).max(1);
                    let count = i64::try_from(missed.len()).unwrap_or(1).max(1);
                    for (n, planned) in (0_i64..).zip(missed) {
                        self.catch_ups.push(Reverse((now + span * n / count, planned, id, epoch)));
                    }
                    self.slots[index] = Some(Slot {
                        pair,
                        kind,
                        running: Arc::new(AtomicBool::new(false)),
                        next_ms: next,
                        last_planned_ms: None,
                    });
                    self.heap.push(Reverse((next, id, epoch)));
                }
            }
        }
        let slots = &mut self.slots;
        let epochs = &mut self.epochs;
        let free = &mut self.free;
        self.index.retain(|_, id| {
            let index = *id as usize;
            if keep[index] {
                return true;
            }
            slots[index] = None;
            epochs[index] = epochs[index].wrapping_add(1);
            free.push(*id);
            false
        });
        // Stale heap entries are skipped when they come up; rebuild when they dominate.
        if self.heap.len() > 2 * self.index.len() + 1024 {
            let heap = std::mem::take(&mut self.heap);
            self.heap = heap.into_iter().filter(|Reverse((_, id, epoch))| self.is_live(*id, *epoch)).collect();
            let catch_ups = std::mem::take(&mut self.catch_ups);
            self.catch_ups =
                catch_ups.into_iter().filter(|Reverse((_, _, id, epoch))| self.is_live(*id, *epoch)).collect();
        }
        self.shared.counters.assigned_pairs.store(self.index.len() as u64, Ordering::Relaxed);
    }

    fn is_live(&self, id: u32, epoch: u32) -> bool {
        let index = id as usize;
        self.epochs.get(index) == Some(&epoch) && self.slots.get(index).is_some_and(Option::is_some)
    }

    fn fire_due(&mut self) {
        let now = now_us();
        while let Some(&Reverse((at, planned, id, epoch))) = self.catch_ups.peek() {
            if at.saturating_mul(1000) > now + EARLY_TOLERANCE_US {
                break;
            }
            self.catch_ups.pop();
            if let Some(Some(slot)) = self.is_live(id, epoch).then(|| self.slots[id as usize].as_ref()) {
                add(&self.shared.counters.caught_up, 1);
                start(&self.shared, slot, planned, true);
            }
        }
        while let Some(&Reverse((at, id, epoch))) = self.heap.peek() {
            if at.saturating_mul(1000) > now + EARLY_TOLERANCE_US {
                break;
            }
            self.heap.pop();
            if !self.is_live(id, epoch) {
                continue;
            }
            let index = id as usize;
            let Some(slot) = self.slots[index].as_mut() else { continue };
            if slot.next_ms != at {
                continue;
            }
            slot.last_planned_ms = Some(at);
            start(&self.shared, slot, at, false);
            let now_ms = now.div_euclid(1000);
            let mut next = slot.pair.next_at(at + 1);
            if let Some(planned) = next
                && planned < now_ms - BEHIND_LIMIT_MS
            {
                let caught_up = slot.pair.next_at(now_ms);
                let missed = count_between(&slot.pair, planned, caught_up);
                add(&self.shared.counters.skipped_late, missed);
                tracing::warn!(check = %slot.pair.check.name, missed, "the prober fell behind; skipping to the next planned run");
                next = caught_up;
            }
            if let Some(next) = next {
                slot.next_ms = next;
                self.heap.push(Reverse((next, id, epoch)));
            }
        }
    }
}

/// The planned times of a pair between owners that nobody made: after its resume point, within its check's
/// `catch_up` of `now`, before `now`; the newest [`MAX_CATCH_UPS`] at most.
fn missed_since(pair: &Pair, now: i64) -> Vec<i64> {
    let Some(last) = pair.resume_after_ms else { return Vec::new() };
    let mut window = i64::try_from(pair.check.catch_up.as_millis()).unwrap_or(i64::MAX);
    if let Schedule::Every(interval) = &pair.check.schedule {
        // No need to walk further back than the runs that can be kept.
        let most = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).saturating_mul(MAX_CATCH_UPS as i64 + 1);
        window = window.min(most);
    }
    let mut missed = std::collections::VecDeque::new();
    let mut at = pair.next_at((last + 1).max(now.saturating_sub(window)));
    while let Some(planned) = at
        && planned < now
    {
        if missed.len() == MAX_CATCH_UPS {
            missed.pop_front();
        }
        missed.push_back(planned);
        at = pair.next_at(planned + 1);
    }
    missed.into()
}

/// How many planned runs lie in `[from, until)` (bounded, for the skipped-late counter).
fn count_between(pair: &Pair, from: i64, until: Option<i64>) -> usize {
    let Some(until) = until else { return 1 };
    let mut count = 0;
    let mut at = Some(from);
    while let Some(planned) = at
        && planned < until
        && count < 100_000
    {
        count += 1;
        at = pair.next_at(planned + 1);
    }
    count
}

fn same_schedule(a: &Schedule, b: &Schedule) -> bool {
    match (a, b) {
        (Schedule::Every(a), Schedule::Every(b)) => a == b,
        (Schedule::Cron(a), Schedule::Cron(b)) => a.expr == b.expr && a.timezone == b.timezone,
        _ => false,
    }
}

/// Starts the run of `slot` planned at `planned_ms`, unless its previous run is still going. A catch-up runs
/// on a flag of its own: the pair's next planned run starts even if the catch-up is still going.
fn start(shared: &Arc<Shared>, slot: &Slot, planned_ms: i64, catch_up: bool) {
    if slot.pair.paused(planned_ms) {
        add(&shared.counters.skipped_maintenance, 1);
        tracing::debug!(check = %slot.pair.check.name, region = %slot.pair.region, planned_ms, "in a pause window; skipped");
        return;
    }
    let running = if catch_up { Arc::new(AtomicBool::new(false)) } else { slot.running.clone() };
    if running.swap(true, Ordering::AcqRel) {
        add(&shared.counters.skipped_overrun, 1);
        tracing::debug!(check = %slot.pair.check.name, region = %slot.pair.region, "previous run still running; skipped");
        return;
    }
    let semaphore = &shared.semaphores[slot.kind];
    let guard = InFlight::new(shared.clone(), running);
    match semaphore.clone().try_acquire_owned() {
        Ok(permit) => {
            tokio::spawn(run(guard, slot.pair.clone(), planned_ms, permit));
        }
        Err(_) => {
            let grace = match &slot.pair.check.schedule {
                Schedule::Every(interval) => (*interval / 10).min(MAX_PERMIT_GRACE),
                Schedule::Cron(_) => MAX_PERMIT_GRACE,
            };
            let semaphore = semaphore.clone();
            let pair = slot.pair.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(grace, semaphore.acquire_owned()).await {
                    Ok(Ok(permit)) if !guard.shared.stopping.load(Ordering::Acquire) => {
                        // A task of its own: this waiting task stays small (a run's future holds its whole
                        // probe's state, tens of KiB), however many wait for a permit.
                        tokio::spawn(run(guard, pair, planned_ms, permit));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        add(&guard.shared.counters.skipped_busy, 1);
                        tracing::debug!(check = %pair.check.name, region = %pair.region, "no permit in time; skipped");
                    }
                }
            });
        }
    }
}

/// One run: start, measure, attach evidence to a failure (see [`crate::evidence`]), emit the result. Cancelled
/// (without a result) only at shutdown.
async fn run(mut guard: InFlight, pair: Pair, planned_ms: i64, permit: tokio::sync::OwnedSemaphorePermit) {
    let shared = guard.shared.clone();
    let started_us = now_us();
    shared.counters.lateness.record(started_us - planned_ms.saturating_mul(1000));
    let mut cancel = shared.cancel.clone();
    let mut outcome = tokio::select! {
        outcome = run_once(&pair.check, &pair.region) => outcome,
        _ = cancel.wait_for(|cancelled| *cancelled) => {
            add(&shared.counters.runs_abandoned, 1);
            tracing::warn!(check = %pair.check.name, region = %pair.region, planned_at_ms = planned_ms, "run cancelled at shutdown; no result");
            return;
        }
    };
    drop(permit);
    let turn = if shared.evidence.enabled() {
        shared.evidence.begin(&pair.check, &pair.region, &outcome, &shared.counters)
    } else {
        None
    };
    if turn.is_some() {
        // The run is over: the pair's next run may start while the capture goes on (its own time cap bounds
        // it); that run's result waits behind this one.
        guard.release_pair();
        tokio::select! {
            () = shared.evidence.capture(&pair.check, &pair.region, &mut outcome, &shared.counters) => {}
            // At shutdown the result goes without evidence.
            _ = cancel.wait_for(|cancelled| *cancelled) => {}
        }
    }
    let result = RunResult {
        check: pair.check.name.clone(),
        region: pair.region.to_string(),
        planned_at_ms: planned_ms,
        started_at_ms: started_us.div_euclid(1000),
        prober: shared.prober.to_string(),
        outcome,
    };
    add(&shared.counters.runs, 1);
    let send = |result: RunResult| shared.send(result);
    match turn {
        Some(turn) => shared.evidence.finish(turn, result, send),
        None => shared.evidence.emit(result, send),
    }
    // Only now is the run over: a shutdown waiting for it knows its result is queued.
    drop(guard);
}

impl Shared {
    /// Queues a result for the scheduler; a full or closed queue drops it, counted and logged.
    fn send(&self, result: RunResult) {
        if let Err(error) = self.results.try_send(result) {
            add(&self.counters.results_dropped, 1);
            let (why, result) = match error {
                mpsc::error::TrySendError::Full(result) => ("the result queue is full", result),
                mpsc::error::TrySendError::Closed(result) => ("the result sender has stopped", result),
            };
            tracing::warn!(check = %result.check, region = %result.region, planned_at_ms = result.planned_at_ms, "result dropped: {why}");
        }
    }
}

/// Counts a run in flight and clears its pair's running flag when it ends, however it ends.
struct InFlight {
    shared: Arc<Shared>,
    /// The pair's running flag, until cleared.
    running: Option<Arc<AtomicBool>>,
}

impl InFlight {
    fn new(shared: Arc<Shared>, running: Arc<AtomicBool>) -> Self {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Self { shared, running: Some(running) }
    }

    /// Clears the pair's running flag now (the run still counts as in flight until dropped).
    fn release_pair(&mut self) {
        if let Some(running) = self.running.take() {
            running.store(false, Ordering::Release);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.release_pair();
        if self.shared.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.idle.notify_waiters();
        }
    }
}
