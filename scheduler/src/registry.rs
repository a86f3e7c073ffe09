//! The live probers and their leases, and the generation that changes with the prober set or the config.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use probenet_checks::wire::Register;
use tokio::sync::watch;

/// A registered prober.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prober {
    /// Unique among live probers.
    pub name: String,
    /// Where it probes from.
    pub region: String,
    /// probenet's version it runs.
    pub version: String,
    /// The check kinds it runs (empty: every kind).
    pub kinds: Vec<String>,
    /// When it registered, unix ms.
    pub registered_at_ms: i64,
    /// Its last register or heartbeat, unix ms.
    pub last_heartbeat_ms: i64,
    /// When its lease ends unless renewed.
    pub expires: Instant,
}

/// Why a registry call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is live in another region.
    #[error("prober {name:?} is already registered from region {region:?}")]
    Conflict {
        /// The prober's name.
        name: String,
        /// The region it is live in.
        region: String,
    },
    /// No live prober has that name (never registered, deregistered, or its lease expired).
    #[error("prober {0:?} is not registered")]
    NotRegistered(String),
}

/// The live probers. Every change of the set bumps the generation and wakes the watchers.
#[derive(Debug)]
pub struct Registry {
    probers: BTreeMap<String, Prober>,
    lease: Duration,
    generation: u64,
    changes: watch::Sender<u64>,
}

impl Registry {
    /// An empty registry at generation 1 (so a prober asking with generation 0 is answered at once).
    pub fn new(lease: Duration) -> Self {
        let (changes, _) = watch::channel(1);
        Self { probers: BTreeMap::new(), lease, generation: 1, changes }
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

    /// Bumps the generation and wakes every watcher.
    pub fn bump(&mut self) {
        self.generation += 1;
        self.changes.send_replace(self.generation);
    }

    /// Registers (or re-registers) a prober. Refused when its name is live in another region. The
    /// generation moves when the set of probers or a prober's kinds change.
    pub fn register(&mut self, register: &Register, now: Instant, now_ms: i64) -> Result<(), RegistryError> {
        let expires = now + self.lease;
        if let Some(live) = self.probers.get_mut(&register.name) {
            if live.region != register.region {
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
        let prober = Prober {
            name: register.name.clone(),
            region: register.region.clone(),
            version: register.version.clone(),
            kinds: register.kinds.clone(),
            registered_at_ms: now_ms,
            last_heartbeat_ms: now_ms,
            expires,
        };
        self.probers.insert(prober.name.clone(), prober);
        self.bump();
        Ok(())
    }

    /// Renews a live prober's lease.
    pub fn heartbeat(&mut self, name: &str, region: &str, now: Instant, now_ms: i64) -> Result<(), RegistryError> {
        let lease = self.lease;
        let live = self.live_in(name, region)?;
        live.last_heartbeat_ms = now_ms;
        live.expires = now + lease;
        Ok(())
    }

    /// Removes a prober at once; its work moves. Removing one that is not live is not an error.
    pub fn deregister(&mut self, name: &str, region: &str) -> Result<(), RegistryError> {
        match self.live_in(name, region) {
            Ok(_) => {
                self.probers.remove(name);
                self.bump();
                Ok(())
            }
            Err(RegistryError::NotRegistered(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Removes the probers whose lease ended before `now`, and returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Prober> {
        let expired: Vec<String> =
            self.probers.values().filter(|prober| prober.expires <= now).map(|prober| prober.name.clone()).collect();
        let removed: Vec<Prober> = expired.iter().filter_map(|name| self.probers.remove(name)).collect();
        if !removed.is_empty() {
            self.bump();
        }
        removed
    }

    /// A live prober by name.
    pub fn get(&self, name: &str) -> Option<&Prober> {
        self.probers.get(name)
    }

    /// The live probers, by name.
    pub fn probers(&self) -> impl Iterator<Item = &Prober> {
        self.probers.values()
    }

    fn live_in(&mut self, name: &str, region: &str) -> Result<&mut Prober, RegistryError> {
        match self.probers.get_mut(name) {
            None => Err(RegistryError::NotRegistered(name.to_owned())),
            Some(live) if live.region != region => {
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
        registry.register(&register("a", "eu"), now, 0).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.generation(), 2);
        assert!(watcher.has_changed().unwrap_or(false));
        assert_eq!(*watcher.borrow_and_update(), 2);
        // A re-registration from the same region and a heartbeat renew the lease without a new generation.
        registry.register(&register("a", "eu"), now, 1).unwrap_or_else(|error| panic!("{error}"));
        registry.heartbeat("a", "eu", now, 2).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.generation(), 2);
        assert!(!watcher.has_changed().unwrap_or(true));
        // A change of kinds moves it.
        let mut with_kinds = register("a", "eu");
        with_kinds.kinds = vec!["http".into()];
        registry.register(&with_kinds, now, 3).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.generation(), 3);
    }

    #[test]
    fn a_name_live_in_another_region_is_refused() {
        let mut registry = Registry::new(Duration::from_secs(15));
        let now = Instant::now();
        registry.register(&register("a", "eu"), now, 0).unwrap_or_else(|error| panic!("{error}"));
        let conflict = registry.register(&register("a", "us"), now, 0);
        assert!(matches!(conflict, Err(RegistryError::Conflict { ref region, .. }) if region == "eu"), "{conflict:?}");
        assert!(matches!(registry.heartbeat("a", "us", now, 0), Err(RegistryError::Conflict { .. })));
        assert!(matches!(registry.deregister("a", "us"), Err(RegistryError::Conflict { .. })));
        assert!(matches!(registry.heartbeat("b", "eu", now, 0), Err(RegistryError::NotRegistered(_))));
        assert_eq!(registry.get("a").map(|prober| prober.region.as_str()), Some("eu"));
    }

    #[test]
    fn leases_expire_unless_renewed() {
        let mut registry = Registry::new(Duration::from_secs(10));
        let start = Instant::now();
        registry.register(&register("a", "eu"), start, 0).unwrap_or_else(|error| panic!("{error}"));
        registry.register(&register("b", "eu"), start, 0).unwrap_or_else(|error| panic!("{error}"));
        registry.heartbeat("b", "eu", start + Duration::from_secs(8), 0).unwrap_or_else(|error| panic!("{error}"));
        let generation = registry.generation();
        assert!(registry.expire(start + Duration::from_secs(9)).is_empty());
        assert_eq!(registry.generation(), generation);
        let expired = registry.expire(start + Duration::from_secs(11));
        assert_eq!(expired.iter().map(|prober| prober.name.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(registry.generation(), generation + 1);
        assert_eq!(registry.probers().count(), 1);
        registry.deregister("b", "eu").unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.probers().count(), 0);
        assert_eq!(registry.generation(), generation + 2);
        registry.deregister("b", "eu").unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(registry.generation(), generation + 2);
    }
}
