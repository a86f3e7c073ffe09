//! The live probers and their leases, keyed by (region, name) and bound to the token that registered them,
//! the limits on what one token may register, and the generation that changes with the prober set or the config.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use probenet_checks::wire::Register;
use tokio::sync::watch;

/// A registered prober.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prober {
    /// Unique among the live probers of its region.
    pub name: String,
    /// Where it probes from.
    pub region: String,
    /// probenet's version it runs.
    pub version: String,
    /// The check kinds it runs (empty: every kind).
    pub kinds: Vec<probenet_checks::Kind>,
    /// The id of the token it registered with: only that token may act for it.
    pub token: String,
    /// When it registered, unix ms.
    pub registered_at_ms: i64,
    /// Its last register or heartbeat, unix ms.
    pub last_heartbeat_ms: i64,
    /// When its lease ends unless renewed.
    pub expires: Instant,
}

/// How much one token may register: live probers and the pace of registrations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Live probers registered with one token.
    pub probers_per_token: usize,
    /// Registrations of new probers one token may make in a burst...
    pub burst: f64,
    /// ...and per second after it.
    pub per_second: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { probers_per_token: 100, burst: 20.0, per_second: 2.0 }
    }
}

/// Why a registry call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is live in the region under another token.
    #[error("prober {name:?} is already registered in region {region:?} with another token; retry once its lease ends")]
    Conflict {
        /// The prober's name.
        name: String,
        /// Its region.
        region: String,
    },
    /// No live prober has that name in the region (never registered, deregistered, or its lease expired).
    #[error("prober {0:?} is not registered")]
    NotRegistered(String),
    /// The token already has as many live probers as it may.
    #[error("this token already has {0} live probers, the most one token may have")]
    TooManyProbers(usize),
    /// The token registers new probers faster than it may.
    #[error("too many registrations with this token; retry in a few seconds")]
    TooFast,
}

/// A token's registration budget (a token bucket).
#[derive(Debug, Clone, Copy)]
struct Budget {
    tokens: f64,
    at: Instant,
}

/// The live probers, keyed by (region, name). Every change of the set bumps the generation and wakes the watchers.
#[derive(Debug)]
pub struct Registry {
    probers: BTreeMap<(String, String), Prober>,
    /// Probers that deregistered or whose lease ended lately, with their token and until when their results
    /// (a shutdown's last flush, a spool sent before re-registering) are still taken.
    departed: HashMap<(String, String), (String, Instant)>,
    lease: Duration,
    limits: Limits,
    budgets: HashMap<String, Budget>,
    generation: u64,
    changes: watch::Sender<u64>,
    /// Replicated: the generation is the one the leader published ([`Registry::follow`]), not bumped here.
    following: bool,
}

impl Registry {
    /// An empty registry at generation 1 (so a prober asking with generation 0 is answered at once).
    pub fn new(lease: Duration) -> Self {
        Self::with_limits(lease, Limits::default())
    }

    /// An empty registry with these limits.
    pub fn with_limits(lease: Duration, limits: Limits) -> Self {
        let (changes, _) = watch::channel(1);
        Self {
            probers: BTreeMap::new(),
            departed: HashMap::new(),
            lease,
            limits,
            budgets: HashMap::new(),
            generation: 1,
            changes,
            following: false,
        }
    }

    /// Replicated schedulers: from now on the generation is only set by [`Registry::set_generation`] (from
    /// the assignment the leader published), starting at 0 (none published yet); local changes do not move it.
    pub fn follow(&mut self) {
        self.following = true;
        self.generation = 0;
        self.changes.send_replace(0);
    }

    /// Whether the generation follows a leader.
    pub fn following(&self) -> bool {
        self.following
    }

    /// Sets the generation the leader published and wakes every watcher.
    pub fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
        self.changes.send_replace(generation);
    }

    /// Replicated schedulers: makes the live probers those of the database (every replica's registrations),
    /// each with its remaining lease. Probers that are gone are noted as departed (their last flush is taken).
    pub fn mirror(&mut self, live: Vec<Prober>, now_ms: i64) {
        let incoming: std::collections::BTreeSet<(String, String)> =
            live.iter().map(|p| (p.region.clone(), p.name.clone())).collect();
        // A registration made here a moment ago may be newer than the rows just read.
        let gone: Vec<(String, String)> = self
            .probers
            .iter()
            .filter(|(key, prober)| !incoming.contains(*key) && prober.registered_at_ms < now_ms - 2_000)
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            if let Some(prober) = self.probers.remove(&key) {
                self.depart(key, prober.token);
            }
        }
        for prober in live {
            self.probers.insert((prober.region.clone(), prober.name.clone()), prober);
        }
    }

    /// Removes a prober without noting it as departed (a registration the database refused).
    pub fn forget(&mut self, region: &str, name: &str) {
        self.probers.remove(&(region.to_owned(), name.to_owned()));
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A receiver that sees every new generation.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The lease given to probers.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Sets the lease for later registrations and heartbeats (a reloaded config may change it).
    pub fn set_lease(&mut self, lease: Duration) {
        self.lease = lease;
    }

    /// Bumps the generation and wakes every watcher (not when following a leader: see [`Registry::follow`]).
    pub fn bump(&mut self) {
        if self.following {
            return;
        }
        self.generation += 1;
        self.changes.send_replace(self.generation);
    }

    /// Registers (or re-registers) a prober with the token `token`. Refused when its name is live in its region
    /// under another token, when the token has its most live probers, or registers new ones too fast. The
    /// generation moves when the set of probers or a prober's kinds change.
    pub fn register(
        &mut self,
        register: &Register,
        token: &str,
        now: Instant,
        now_ms: i64,
    ) -> Result<(), RegistryError> {
        let expires = now + self.lease;
        let key = (register.region.clone(), register.name.clone());
        if let Some(live) = self.probers.get_mut(&key) {
            if live.token != token {
                return Err(RegistryError::Conflict { name: live.name.clone(), region: live.region.clone() });
            }
            let kinds_changed = live.kinds != register.kinds;
            live.version.clone_from(&register.version);
            live.kinds.clone_from(&register.kinds);
            live.registered_at_ms = now_ms;
            live.last_heartbeat_ms = now_ms;
            live.expires = expires;
            if kinds_changed {
                self.bump();
            }
            return Ok(());
        }
        let of_token = self.probers.values().filter(|prober| prober.token == token).count();
        if of_token >= self.limits.probers_per_token {
            return Err(RegistryError::TooManyProbers(self.limits.probers_per_token));
        }
        self.spend(token, now)?;
        let prober = Prober {
            name: register.name.clone(),
            region: register.region.clone(),
            version: register.version.clone(),
            kinds: register.kinds.clone(),
            token: token.to_owned(),
            registered_at_ms: now_ms,
            last_heartbeat_ms: now_ms,
            expires,
        };
        self.probers.insert(key, prober);
        self.bump();
        Ok(())
    }

    /// Takes one registration from the token's budget.
    fn spend(&mut self, token: &str, now: Instant) -> Result<(), RegistryError> {
        let Limits { burst, per_second, .. } = self.limits;
        // Budgets of tokens with nothing live and a full bucket carry no information: forget them.
        if self.budgets.len() > 4 * self.limits.probers_per_token.max(64) {
            let live: std::collections::HashSet<&str> = self.probers.values().map(|p| p.token.as_str()).collect();
            self.budgets.retain(|id, budget| {
                live.contains(id.as_str())
                    || budget.tokens + now.saturating_duration_since(budget.at).as_secs_f64() * per_second < burst
            });
        }
        let budget = self.budgets.entry(token.to_owned()).or_insert(Budget { tokens: burst, at: now });
        let refilled = now.saturating_duration_since(budget.at).as_secs_f64() * per_second;
        budget.tokens = (budget.tokens + refilled).min(burst);
        budget.at = now;
        if budget.tokens < 1.0 {
            return Err(RegistryError::TooFast);
        }
        budget.tokens -= 1.0;
        Ok(())
    }

    /// Renews a live prober's lease.
    pub fn heartbeat(
        &mut self,
        name: &str,
        region: &str,
        token: &str,
        now: Instant,
        now_ms: i64,
    ) -> Result<(), RegistryError> {
        let lease = self.lease;
        let live = self.live_in(name, region, token)?;
        live.last_heartbeat_ms = now_ms;
        live.expires = now + lease;
        Ok(())
    }

    /// Shortens a live prober's lease to end at `until` (its long-poll broke: a crashed process closes its
    /// connections), unless it was heard from after `since_ms` (it polled again, or heartbeat). A prober that
    /// is alive polls again at once and renews its lease; a dead one loses its pairs at `until`, not a whole
    /// lease later.
    pub fn suspect(&mut self, name: &str, region: &str, token: &str, since_ms: i64, until: Instant) {
        if let Ok(live) = self.live_in(name, region, token)
            && live.last_heartbeat_ms <= since_ms
        {
            live.expires = live.expires.min(until);
        }
    }

    /// Removes a prober at once; its work moves. Removing one that is not live is not an error.
    pub fn deregister(&mut self, name: &str, region: &str, token: &str) -> Result<(), RegistryError> {
        match self.live_in(name, region, token) {
            Ok(_) => {
                let key = (region.to_owned(), name.to_owned());
                if let Some(prober) = self.probers.remove(&key) {
                    self.depart(key, prober.token);
                }
                self.bump();
                Ok(())
            }
            Err(RegistryError::NotRegistered(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Removes the probers whose lease ended before `now`, and returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Prober> {
        let expired: Vec<(String, String)> =
            self.probers.iter().filter(|(_, prober)| prober.expires <= now).map(|(key, _)| key.clone()).collect();
        let removed: Vec<Prober> = expired.iter().filter_map(|key| self.probers.remove(key)).collect();
        for prober in &removed {
            self.depart((prober.region.clone(), prober.name.clone()), prober.token.clone());
        }
        if !removed.is_empty() {
            self.bump();
        }
        removed
    }

    /// Notes that a prober left: its results are still taken for a lease (its last flush).
    fn depart(&mut self, key: (String, String), token: String) {
        let now = Instant::now();
        self.departed.retain(|_, (_, until)| *until > now);
        // Bounded like the live probers: registrations are.
        if self.departed.len() < 64 * self.limits.probers_per_token.max(1) {
            self.departed.insert(key, (token, now + self.lease.max(Duration::from_secs(15))));
        }
    }

    /// Whether `token` may send results as the prober `name` of `region`: it is live with that token, or left
    /// less than a lease ago (a shutdown's last flush).
    pub fn may_send(&mut self, name: &str, region: &str, token: &str) -> Result<(), RegistryError> {
        match self.live_in(name, region, token) {
            Err(RegistryError::NotRegistered(name)) => {
                let key = (region.to_owned(), name.clone());
                match self.departed.get(&key) {
                    Some((held_by, until)) if held_by == token && *until > Instant::now() => Ok(()),
                    _ => Err(RegistryError::NotRegistered(name)),
                }
            }
            other => other.map(drop),
        }
    }

    /// A live prober by region and name.
    pub fn get(&self, region: &str, name: &str) -> Option<&Prober> {
        self.probers.get(&(region.to_owned(), name.to_owned()))
    }

    /// The live probers, by region and name.
    pub fn probers(&self) -> impl Iterator<Item = &Prober> {
        self.probers.values()
    }

    /// The live prober `name` of `region` if `token` registered it.
    pub fn live_in(&mut self, name: &str, region: &str, token: &str) -> Result<&mut Prober, RegistryError> {
        match self.probers.get_mut(&(region.to_owned(), name.to_owned())) {
            None => Err(RegistryError::NotRegistered(name.to_owned())),
            Some(live) if live.token != token => {
                Err(RegistryError::Conflict { name: live.name.clone(), region: live.region.clone() })
            }
            Some(live) => Ok(live),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(name: &str, region: &str) -> Register {
        Register { name: name.into(), region: region.into(), version: "0.1.0".into(), protocol: 1, kinds: Vec::new() }
    }

    #[test]
    fn the_generation_moves_with_the_prober_set_only() {
        let mut registry = Registry::new(Duration::from_secs(15));
        let mut watcher = registry.subscribe();
        let now = Instant::now();
        assert_eq!(registry.generation(), 1);
        registry.register(&register("a", "eu"), "t1", now, 0).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.generation(), 2);
        assert!(watcher.has_changed().unwrap_or(false));
        assert_eq!(*watcher.borrow_and_update(), 2);
        // A re-registration from the same region and a heartbeat renew the lease without a new generation.
        registry.register(&register("a", "eu"), "t1", now, 1).unwrap_or_else(|error| panic!("{error}"));
        registry.heartbeat("a", "eu", "t1", now, 2).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.generation(), 2);
        assert!(!watcher.has_changed().unwrap_or(true));
        // A change of kinds moves it.
        let mut with_kinds = register("a", "eu");
        with_kinds.kinds = vec![probenet_checks::Kind::Http];
        registry.register(&with_kinds, "t1", now, 3).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.generation(), 3);
    }

    #[test]
    fn names_are_per_region_and_bound_to_the_token_that_registered_them() {
        let mut registry = Registry::new(Duration::from_secs(15));
        let now = Instant::now();
        registry.register(&register("a", "eu"), "t1", now, 0).unwrap_or_else(|error| panic!("{error}"));
        // The same name in another region is another prober: no squatting across regions.
        registry.register(&register("a", "us"), "t2", now, 0).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.probers().count(), 2);
        // Another token of eu cannot take over, renew or remove eu's "a".
        let conflict = registry.register(&register("a", "eu"), "t3", now, 0);
        assert!(matches!(conflict, Err(RegistryError::Conflict { ref region, .. }) if region == "eu"), "{conflict:?}");
        assert!(matches!(registry.heartbeat("a", "eu", "t3", now, 0), Err(RegistryError::Conflict { .. })));
        assert!(matches!(registry.deregister("a", "eu", "t3"), Err(RegistryError::Conflict { .. })));
        assert!(matches!(registry.heartbeat("b", "eu", "t1", now, 0), Err(RegistryError::NotRegistered(_))));
        assert_eq!(registry.get("eu", "a").map(|prober| prober.token.as_str()), Some("t1"));
        assert_eq!(registry.get("us", "a").map(|prober| prober.token.as_str()), Some("t2"));
    }

    #[test]
    fn a_token_registers_a_bounded_number_of_probers_at_a_bounded_pace() {
        let limits = Limits { probers_per_token: 5, burst: 3.0, per_second: 1.0 };
        let mut registry = Registry::with_limits(Duration::from_secs(15), limits);
        let start = Instant::now();
        for name in ["a", "b", "c"] {
            registry.register(&register(name, "eu"), "t1", start, 0).unwrap_or_else(|error| panic!("{error}"));
        }
        let generation = registry.generation();
        assert_eq!(registry.register(&register("d", "eu"), "t1", start, 0), Err(RegistryError::TooFast));
        // Renewing a live prober costs nothing; another token has its own budget.
        registry.register(&register("a", "eu"), "t1", start, 0).unwrap_or_else(|error| panic!("{error}"));
        registry.register(&register("x", "eu"), "t2", start, 0).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.generation(), generation + 1);
        let later = start + Duration::from_secs(2);
        registry.register(&register("d", "eu"), "t1", later, 0).unwrap_or_else(|error| panic!("{error}"));
        registry.register(&register("e", "eu"), "t1", later, 0).unwrap_or_else(|error| panic!("{error}"));
        let much_later = start + Duration::from_secs(60);
        assert_eq!(registry.register(&register("f", "eu"), "t1", much_later, 0), Err(RegistryError::TooManyProbers(5)));
    }

    #[test]
    fn leases_expire_unless_renewed() {
        let mut registry = Registry::new(Duration::from_secs(10));
        let start = Instant::now();
        registry.register(&register("a", "eu"), "t", start, 0).unwrap_or_else(|error| panic!("{error}"));
        registry.register(&register("b", "eu"), "t", start, 0).unwrap_or_else(|error| panic!("{error}"));
        registry.heartbeat("b", "eu", "t", start + Duration::from_secs(8), 0).unwrap_or_else(|error| panic!("{error}"));
        let generation = registry.generation();
        assert!(registry.expire(start + Duration::from_secs(9)).is_empty());
        assert_eq!(registry.generation(), generation);
        let expired = registry.expire(start + Duration::from_secs(11));
        assert_eq!(expired.iter().map(|prober| prober.name.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(registry.generation(), generation + 1);
        assert_eq!(registry.probers().count(), 1);
        registry.deregister("b", "eu", "t").unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.probers().count(), 0);
        assert_eq!(registry.generation(), generation + 2);
        registry.deregister("b", "eu", "t").unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.generation(), generation + 2);
    }
}
