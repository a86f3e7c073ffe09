//! Assignment of (check, region) pairs to probers: rendezvous hashing among the live probers of the pair's
//! region, and each replica's start offset on the interval grid. Pure: same inputs, same table.
//!
//! A pair's score for a prober is `mix(pair_key ^ prober_key)`, both keys being [`wire::stable_hash`]es
//! computed once (per pair, per prober) and `mix` splitmix64's finaliser. Hashing the three names together
//! for every (pair, prober) is 3-4 times slower and would not meet a full assignment of 100,000 checks x 10
//! regions over 1,000 probers in well under a second; the rendezvous property (a prober joining or leaving
//! moves only its share) is the same.

use std::collections::HashMap;

use probenet_checks::Kind;
use probenet_checks::config::{Check, Schedule};
use probenet_checks::wire;

/// A slot of a [`Table`] with no prober.
pub const NONE: u32 = u32::MAX;

/// The most probers of a region a pair can have (the config allows 1 to 5).
pub const MAX_PER_REGION: usize = 8;

/// Kind buckets: one per kind.
const BUCKETS: usize = Kind::ALL.len();

/// What the assignment needs of a check.
#[derive(Debug, Clone, Copy)]
pub struct CheckInput<'a> {
    /// The check's name.
    pub name: &'a str,
    /// Its kind: only probers that run this kind are chosen.
    pub kind: Kind,
    /// Its interval in milliseconds; 0 for cron checks.
    pub interval_ms: u64,
    /// The regions it runs from.
    pub regions: &'a [String],
}

impl<'a> CheckInput<'a> {
    /// The input for a validated check.
    pub fn of(check: &'a Check) -> Self {
        let interval_ms = match &check.schedule {
            Schedule::Every(interval) => u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            Schedule::Cron(_) => 0,
        };
        Self { name: &check.name, kind: check.kind.kind(), interval_ms, regions: &check.regions }
    }
}

/// What the assignment needs of a live prober.
#[derive(Debug, Clone, Copy)]
pub struct ProberInput<'a> {
    /// Its unique name.
    pub name: &'a str,
    /// Its region.
    pub region: &'a str,
    /// The kinds it runs; empty means every kind.
    pub kinds: &'a [Kind],
}

/// The assignment of every (check, region) pair: `per_pair` slots per pair, each holding a prober index (into
/// the probers given to [`assign`]) or [`NONE`], and the slot's start offset.
#[derive(Debug, Clone, Default)]
pub struct Table {
    per_pair: usize,
    /// (check index, index of the region in the check's regions), in config order.
    pairs: Vec<(u32, u32)>,
    owners: Vec<u32>,
    offsets: Vec<u64>,
    /// `by_prober[start[p]..start[p + 1]]` are prober `p`'s slots.
    start: Vec<u32>,
    by_prober: Vec<u32>,
    unassigned: usize,
}

impl Table {
    /// Slots per pair (`probers_per_region`).
    pub fn per_pair(&self) -> usize {
        self.per_pair
    }

    /// How many (check, region) pairs there are.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there is no pair at all.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Pair `i`: the check's index and the index of the region among the check's regions.
    pub fn pair(&self, i: usize) -> (usize, usize) {
        let (check, region) = self.pairs[i];
        (check as usize, region as usize)
    }

    /// Pair `i`'s slots: the prober (None for an empty slot) and the start offset, best-scored prober first.
    pub fn slots(&self, i: usize) -> impl Iterator<Item = (Option<usize>, u64)> + '_ {
        let range = i * self.per_pair..(i + 1) * self.per_pair;
        self.owners[range.clone()]
            .iter()
            .zip(&self.offsets[range])
            .map(|(owner, offset)| ((*owner != NONE).then_some(*owner as usize), *offset))
    }

    /// Pair `i`'s first prober, if it has one.
    pub fn owner(&self, i: usize) -> Option<usize> {
        let owner = self.owners[i * self.per_pair];
        (owner != NONE).then_some(owner as usize)
    }

    /// Prober `p`'s share: (pair index, start offset) for every slot it holds, in pair order.
    pub fn of_prober(&self, p: usize) -> impl Iterator<Item = (usize, u64)> + '_ {
        let range = match (self.start.get(p), self.start.get(p + 1)) {
            (Some(from), Some(to)) => *from as usize..*to as usize,
            _ => 0..0,
        };
        self.by_prober[range].iter().map(|slot| (*slot as usize / self.per_pair, self.offsets[*slot as usize]))
    }

    /// How many slots prober `p` holds.
    pub fn assigned(&self, p: usize) -> usize {
        match (self.start.get(p), self.start.get(p + 1)) {
            (Some(from), Some(to)) => (to - from) as usize,
            _ => 0,
        }
    }

    /// Pairs with no prober at all (no live prober of their region runs their kind).
    pub fn unassigned(&self) -> usize {
        self.unassigned
    }

    fn index_by_prober(&mut self, probers: usize) {
        let mut start = vec![0u32; probers + 1];
        for owner in &self.owners {
            if let Some(count) = start.get_mut((*owner as usize).wrapping_add(1)) {
                *count += 1;
            }
        }
        for p in 0..probers {
            start[p + 1] += start[p];
        }
        let mut cursor = start.clone();
        let mut by_prober = vec![0u32; start[probers] as usize];
        for (slot, owner) in self.owners.iter().enumerate() {
            if let Some(at) = cursor.get_mut(*owner as usize) {
                by_prober[*at as usize] = slot as u32;
                *at += 1;
            }
        }
        self.start = start;
        self.by_prober = by_prober;
    }
}

/// The candidates of one region for one kind bucket: prober keys and indices, side by side for a tight loop.
#[derive(Debug, Clone, Default)]
struct Candidates {
    keys: Vec<u64>,
    index: Vec<u32>,
}

/// Assigns every (check, region) pair to the `per_region` live probers of its region with the highest
/// rendezvous scores, and gives each slot its offset: `wire::offset_ms` for replica 0, replica `i` of `n`
/// staggered by `i * interval / n`; 0 for cron checks.
pub fn assign(checks: &[CheckInput<'_>], probers: &[ProberInput<'_>], per_region: u32) -> Table {
    let per_pair = (per_region as usize).clamp(1, MAX_PER_REGION);
    let regions = candidates(probers);
    let total: usize = checks.iter().map(|check| check.regions.len()).sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
    let parts: Vec<Part> = if total < PARALLEL_FROM || threads < 2 {
        vec![fill(checks, 0, &regions, probers, per_pair)]
    } else {
        // Chunks of checks with about the same number of pairs, one per thread, joined in order.
        let mut chunks = Vec::with_capacity(threads);
        let (mut from, mut pairs) = (0, 0);
        for (i, check) in checks.iter().enumerate() {
            pairs += check.regions.len();
            if pairs >= total.div_ceil(threads) {
                chunks.push((from, i + 1));
                (from, pairs) = (i + 1, 0);
            }
        }
        if from < checks.len() {
            chunks.push((from, checks.len()));
        }
        let regions = &regions;
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|(from, to)| scope.spawn(move || fill(&checks[*from..*to], *from, regions, probers, per_pair)))
                .collect();
            handles
                .into_iter()
                .zip(&chunks)
                .map(|(handle, (from, to))| {
                    // A thread cannot panic here; if one did, compute its chunk again on this thread.
                    handle.join().unwrap_or_else(|_| fill(&checks[*from..*to], *from, regions, probers, per_pair))
                })
                .collect()
        })
    };
    let mut table = Table {
        per_pair,
        pairs: Vec::with_capacity(total),
        owners: Vec::with_capacity(total * per_pair),
        offsets: Vec::with_capacity(total * per_pair),
        ..Table::default()
    };
    for part in parts {
        table.pairs.extend(part.pairs);
        table.owners.extend(part.owners);
        table.offsets.extend(part.offsets);
        table.unassigned += part.unassigned;
    }
    table.index_by_prober(probers.len());
    table
}

/// The candidates of every region, by kind bucket.
fn candidates<'a>(probers: &[ProberInput<'a>]) -> HashMap<&'a str, Vec<Candidates>> {
    let mut regions: HashMap<&str, Vec<Candidates>> = HashMap::new();
    for (index, prober) in probers.iter().enumerate() {
        let mask = kind_mask(prober.kinds);
        let key = prober_key(prober.name);
        let buckets = regions.entry(prober.region).or_insert_with(|| vec![Candidates::default(); BUCKETS]);
        for (bucket, candidates) in buckets.iter_mut().enumerate() {
            if mask & (1 << bucket) != 0 {
                candidates.keys.push(key);
                candidates.index.push(index as u32);
            }
        }
    }
    regions
}

/// Below this many pairs, one thread does it all.
const PARALLEL_FROM: usize = 100_000;
/// The most threads one assignment uses.
const MAX_THREADS: usize = 8;

/// The assignment of a run of consecutive checks.
#[derive(Debug, Default)]
struct Part {
    pairs: Vec<(u32, u32)>,
    owners: Vec<u32>,
    offsets: Vec<u64>,
    unassigned: usize,
}

/// Assigns the pairs of `checks`, the first of which has index `first` in the config.
fn fill(
    checks: &[CheckInput<'_>],
    first: usize,
    regions: &HashMap<&str, Vec<Candidates>>,
    probers: &[ProberInput<'_>],
    per_pair: usize,
) -> Part {
    let total: usize = checks.iter().map(|check| check.regions.len()).sum();
    let mut part = Part {
        pairs: Vec::with_capacity(total),
        owners: Vec::with_capacity(total * per_pair),
        offsets: Vec::with_capacity(total * per_pair),
        unassigned: 0,
    };
    let mut best = [(0u64, NONE); MAX_PER_REGION];
    for (check_index, check) in checks.iter().enumerate() {
        let bucket = kind_bucket(check.kind);
        for (region_index, region) in check.regions.iter().enumerate() {
            part.pairs.push(((first + check_index) as u32, region_index as u32));
            let found = match regions.get(region.as_str()) {
                Some(buckets) => top(&buckets[bucket], pair_key(check.name, region), per_pair, probers, &mut best),
                None => 0,
            };
            if found == 0 {
                part.unassigned += 1;
            }
            let base = wire::offset_ms(check.name, region, check.interval_ms);
            for (replica, (_, owner)) in best.iter().enumerate().take(per_pair) {
                part.owners.push(if replica < found { *owner } else { NONE });
                part.offsets.push(replica_offset(base, replica, per_pair, check.interval_ms));
            }
        }
    }
    part
}

/// Replica `replica` of `n`: `base`, staggered by `replica * interval / n`, on the interval grid.
fn replica_offset(base: u64, replica: usize, n: usize, interval_ms: u64) -> u64 {
    if interval_ms == 0 {
        return 0;
    }
    (base + replica as u64 * (interval_ms / n as u64)) % interval_ms
}

/// Fills `best` with the `k` highest-scored candidates, best first; returns how many it found.
fn top(
    candidates: &Candidates,
    pair: u64,
    k: usize,
    probers: &[ProberInput<'_>],
    best: &mut [(u64, u32); MAX_PER_REGION],
) -> usize {
    let better = |a: (u64, u32), b: (u64, u32)| {
        a.0 > b.0 || (a.0 == b.0 && probers[a.1 as usize].name < probers[b.1 as usize].name)
    };
    let entries = candidates.keys.iter().zip(&candidates.index);
    if k == 1 {
        // The common case, kept tight: only scores and positions in the loop.
        let keys = &candidates.keys;
        let Some(first) = keys.first() else {
            return 0;
        };
        let name = |at: usize| probers[candidates.index[at] as usize].name;
        let (mut top, mut top_at) = (score(pair, *first), 0);
        for (at, key) in keys.iter().enumerate().skip(1) {
            let candidate = score(pair, *key);
            if candidate > top || (candidate == top && name(at) < name(top_at)) {
                (top, top_at) = (candidate, at);
            }
        }
        best[0] = (top, candidates.index[top_at]);
        return 1;
    }
    let mut count = 0;
    for (key, index) in entries {
        let candidate = (score(pair, *key), *index);
        if count == k && !better(candidate, best[k - 1]) {
            continue;
        }
        if count < k {
            count += 1;
        }
        let mut at = count - 1;
        while at > 0 && better(candidate, best[at - 1]) {
            best[at] = best[at - 1];
            at -= 1;
        }
        best[at] = candidate;
    }
    count
}

fn kind_bucket(kind: Kind) -> usize {
    kind.index()
}

/// The buckets a prober serves: every one when it lists no kinds, else the kinds it lists.
fn kind_mask(kinds: &[Kind]) -> u32 {
    if kinds.is_empty() {
        return (1 << BUCKETS) - 1;
    }
    kinds.iter().map(|kind| kind_bucket(*kind)).fold(0, |mask, at| mask | 1 << at)
}

/// A pair's rendezvous key.
fn pair_key(check: &str, region: &str) -> u64 {
    wire::stable_hash(&[b"owner\0", check.as_bytes(), b"\0", region.as_bytes()])
}

/// A prober's rendezvous key.
fn prober_key(name: &str) -> u64 {
    wire::stable_hash(&[b"prober\0", name.as_bytes()])
}

/// A pair's score for a prober: splitmix64's finaliser of the two keys combined.
fn score(pair: u64, prober: u64) -> u64 {
    let mut hash = pair ^ prober;
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct World {
        checks: Vec<(String, Kind, u64, Vec<String>)>,
        probers: Vec<(String, String, Vec<Kind>)>,
    }

    impl World {
        fn new(checks: usize, regions: &[&str], interval_ms: u64) -> Self {
            let regions: Vec<String> = regions.iter().map(|region| (*region).to_owned()).collect();
            let checks =
                (0..checks).map(|i| (format!("check-{i}"), Kind::Http, interval_ms, regions.clone())).collect();
            Self { checks, probers: Vec::new() }
        }

        fn probers(mut self, region: &str, names: impl IntoIterator<Item = String>) -> Self {
            self.probers.extend(names.into_iter().map(|name| (name, region.to_owned(), Vec::new())));
            self
        }

        fn assign(&self, per_region: u32) -> (Table, Vec<String>) {
            let checks: Vec<CheckInput<'_>> = self
                .checks
                .iter()
                .map(|(name, kind, interval_ms, regions)| CheckInput {
                    name,
                    kind: *kind,
                    interval_ms: *interval_ms,
                    regions,
                })
                .collect();
            let probers: Vec<ProberInput<'_>> =
                self.probers.iter().map(|(name, region, kinds)| ProberInput { name, region, kinds }).collect();
            (assign(&checks, &probers, per_region), self.probers.iter().map(|p| p.0.clone()).collect())
        }
    }

    /// Every pair's owners by name.
    fn owners(table: &Table, names: &[String]) -> Vec<Vec<Option<String>>> {
        (0..table.len())
            .map(|pair| table.slots(pair).map(|(owner, _)| owner.map(|p| names[p].clone())).collect())
            .collect()
    }

    fn moved(before: &[Vec<Option<String>>], after: &[Vec<Option<String>>]) -> usize {
        before.iter().zip(after).filter(|(a, b)| a != b).count()
    }

    fn names(prefix: &str, n: usize) -> impl Iterator<Item = String> + '_ {
        (0..n).map(move |i| format!("{prefix}-{i}"))
    }

    #[test]
    fn the_same_inputs_in_any_order_give_the_same_assignment() {
        let world = World::new(2_000, &["eu", "us"], 30_000).probers("eu", names("e", 7)).probers("us", names("u", 5));
        let (table, names) = world.assign(1);
        let mut reversed = World::new(2_000, &["eu", "us"], 30_000);
        reversed.probers = world.probers.iter().rev().cloned().collect();
        let (other, other_names) = reversed.assign(1);
        assert_eq!(owners(&table, &names), owners(&other, &other_names));
        assert_eq!(table.unassigned(), 0);
        // Each pair goes to a prober of its own region.
        for pair in 0..table.len() {
            let (_, region) = table.pair(pair);
            let owner = table.owner(pair).map(|p| world.probers[p].1.clone());
            assert_eq!(owner.as_deref(), Some(["eu", "us"][region]));
        }
    }

    #[test]
    fn pairs_spread_evenly_over_the_probers_of_a_region() {
        let world = World::new(10_000, &["eu"], 60_000).probers("eu", names("p", 10));
        let (table, _) = world.assign(1);
        let counts: Vec<usize> = (0..10).map(|p| table.assigned(p)).collect();
        assert_eq!(counts.iter().sum::<usize>(), 10_000);
        assert!(counts.iter().all(|count| (850..1150).contains(count)), "{counts:?}");
        // of_prober lists exactly the pairs whose owner it is.
        for (p, count) in counts.iter().enumerate() {
            assert!(table.of_prober(p).all(|(pair, _)| table.owner(pair) == Some(p)));
            assert_eq!(table.of_prober(p).count(), *count);
        }
    }

    #[test]
    fn a_joining_prober_takes_only_its_share_and_a_leaving_one_gives_only_its_own() {
        let n = 20;
        let world = World::new(10_000, &["eu", "us"], 30_000).probers("eu", names("e", n)).probers("us", names("u", 3));
        let (table, names_before) = world.assign(1);
        let before = owners(&table, &names_before);

        let joined = World {
            probers: [world.probers.clone(), vec![("e-new".into(), "eu".into(), vec![])]].concat(),
            ..World::new(10_000, &["eu", "us"], 30_000)
        };
        let (table, names_after) = joined.assign(1);
        let after = owners(&table, &names_after);
        let moves = moved(&before, &after);
        let ideal = 10_000.0 / (n + 1) as f64;
        assert!((moves as f64) > ideal * 0.8 && (moves as f64) < ideal * 1.2, "{moves} moved, ideal {ideal}");
        assert!(before.iter().zip(&after).filter(|(a, b)| a != b).all(|(_, b)| b[0].as_deref() == Some("e-new")));

        let mut left = World::new(10_000, &["eu", "us"], 30_000);
        left.probers = world.probers.iter().filter(|p| p.0 != "e-7").cloned().collect();
        let (table, names_left) = left.assign(1);
        let after = owners(&table, &names_left);
        let had = before.iter().filter(|slots| slots[0].as_deref() == Some("e-7")).count();
        assert!(had > 0);
        assert_eq!(moved(&before, &after), had, "only the leaver's pairs move");
    }

    #[test]
    fn replicas_are_distinct_probers_staggered_over_the_interval() {
        let world = World::new(500, &["eu"], 30_000).probers("eu", names("p", 4));
        let (table, _) = world.assign(3);
        for pair in 0..table.len() {
            let slots: Vec<(Option<usize>, u64)> = table.slots(pair).collect();
            let mut probers: Vec<usize> = slots.iter().filter_map(|slot| slot.0).collect();
            probers.sort_unstable();
            probers.dedup();
            assert_eq!(probers.len(), 3);
            assert_eq!(slots[0].1, wire::offset_ms(&format!("check-{pair}"), "eu", 30_000));
            assert_eq!(slots[1].1, (slots[0].1 + 10_000) % 30_000);
            assert_eq!(slots[2].1, (slots[0].1 + 20_000) % 30_000);
        }
        // With fewer probers than replicas, the extra slots stay empty but the pair is assigned.
        let world = World::new(10, &["eu"], 30_000).probers("eu", names("p", 2));
        let (table, _) = world.assign(3);
        assert_eq!(table.unassigned(), 0);
        assert!((0..10).all(|pair| table.slots(pair).filter(|slot| slot.0.is_none()).count() == 1));
        assert_eq!((0..2).map(|p| table.assigned(p)).sum::<usize>(), 20);
    }

    #[test]
    fn threads_give_the_same_table_as_one_thread() {
        let world = World::new(30_000, &["eu", "us", "ap", "sa"], 60_000)
            .probers("eu", names("e", 5))
            .probers("us", names("u", 3))
            .probers("ap", names("a", 1));
        let checks: Vec<CheckInput<'_>> = world
            .checks
            .iter()
            .map(|(name, kind, interval_ms, regions)| CheckInput {
                name,
                kind: *kind,
                interval_ms: *interval_ms,
                regions,
            })
            .collect();
        let probers: Vec<ProberInput<'_>> =
            world.probers.iter().map(|(name, region, kinds)| ProberInput { name, region, kinds }).collect();
        for per_pair in [1, 2] {
            let table = assign(&checks, &probers, per_pair as u32);
            assert!(table.len() >= PARALLEL_FROM);
            let one = fill(&checks, 0, &candidates(&probers), &probers, per_pair);
            assert_eq!(table.pairs, one.pairs);
            assert_eq!(table.owners, one.owners);
            assert_eq!(table.offsets, one.offsets);
            assert_eq!(table.unassigned(), 30_000);
        }
    }

    #[test]
    fn pairs_without_a_fitting_prober_are_unassigned() {
        let mut world = World::new(3, &["eu", "us"], 0).probers("eu", names("p", 2));
        world.checks[2].1 = Kind::Browser;
        world.probers[1].2 = vec![Kind::Http, Kind::Dns];
        let (table, names) = world.assign(1);
        let owners = owners(&table, &names);
        // us has no prober; the browser check only fits p-0 (it lists no kinds, so it runs all).
        assert_eq!(table.unassigned(), 3);
        assert!(owners.iter().skip(1).step_by(2).all(|slots| slots[0].is_none()));
        assert_eq!(owners[4][0].as_deref(), Some("p-0"));
        // Cron checks start on their schedule: offset 0.
        assert!((0..table.len()).all(|pair| table.slots(pair).all(|(_, offset)| offset == 0)));

        world.probers[0].2 = vec![Kind::Http];
        let (table, _) = world.assign(1);
        assert_eq!(table.unassigned(), 4);
        assert_eq!(table.owner(4), None);
    }
}
