//! Replicated schedulers on one PostgreSQL database. Every replica accepts registrations, heartbeats and results
//! and serves readers; the registry of live probers is a table (a heartbeat is a row update), mirrored by every
//! replica a few times a second. One replica, the leader (it holds the lease, `probenet_pg::Elector`), publishes
//! the assignment: a generation and the probers it covers, fenced by its lease generation. Every replica computes
//! the same table from it (the assignment is a pure function of the config and the probers) and serves it to the
//! probers that talk to it. Design: `docs/ha.md`.

pub mod db;
pub mod feed;
pub mod maintenance;
pub mod tokens;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use probenet_pg::{Elector, LeaderHandle, Lease};
use serde::Serialize;
use tokio::sync::watch;

use crate::state::Shared;
use db::{ProberRow, Published};

/// How a replica joins the cluster.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// Its name among the replicas (unique; default: the host name and port).
    pub name: String,
    /// The URL probers and readers reach it at, shown in `/api/v1/cluster`.
    pub url: String,
    /// The leader lease (default 10 s): a dead leader is replaced within it.
    pub lease: Duration,
}

/// How often a replica mirrors the probers and the published assignment.
pub const SYNC_EVERY: Duration = Duration::from_millis(250);
/// How often a replica reads the latest run of every pair (where a pair's new owner resumes).
const LATEST_EVERY: Duration = Duration::from_secs(1);
/// How often a replica announces itself.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(2);
/// A replica whose database calls failed for this long reports itself unhealthy.
pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(3);
/// How long one database call of a request may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Members seen within this long are listed.
const MEMBER_WITHIN: Duration = Duration::from_secs(30);

/// A replica's link to the cluster.
#[derive(Debug)]
pub struct Cluster {
    /// The pool of connections to the database.
    pub pool: Pool,
    /// Who this replica is.
    pub options: ReplicaOptions,
    /// The generation this replica leads under (`None`: follower).
    leading: watch::Receiver<Option<u64>>,
    handle: Mutex<Option<LeaderHandle>>,
    elector: Elector,
    /// When a database call last succeeded (ms since `started`), or -1 before the first.
    last_ok_ms: AtomicI64,
    started: Instant,
    /// What the leader published last, as this replica last read it.
    published: Mutex<Option<Published>>,
    /// Set after the first successful mirror: until then the registry is not known.
    synced: AtomicBool,
    /// Serialises token reads after a miss.
    token_reads: tokio::sync::Mutex<()>,
    /// When the tokens were last read after a miss.
    tokens_read_at: Mutex<Option<Instant>>,
    /// Until when the leader keeps publishing probers whose rows ran out while the database was away.
    grace_until: Mutex<Option<Instant>>,
    /// The replicas as last read (for the dashboard, which must not wait for the database).
    members: Mutex<Vec<probenet_dashboard::model::Scheduler>>,
}

/// `GET /api/v1/cluster`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// The replica holding the lease (its holder name), if any holds it now.
    pub leader: Option<String>,
    /// The lease generation.
    pub lease_generation: u64,
    /// This replica's name.
    pub this: String,
    /// The replicas seen lately.
    pub members: Vec<MemberView>,
}

/// One replica in [`ClusterView`].
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Its name.
    pub name: String,
    /// Where it is reached.
    pub url: String,
    /// The probenet version it runs.
    pub version: String,
    /// When it last announced itself, RFC 3339.
    pub last_seen: String,
    /// Whether it leads now.
    pub leader: bool,
}

/// The lease holder of a replica: its name and a start stamp, so a restarted replica never resumes the
/// generation of its previous life; the name is what comes before the last `#`.
fn holder(name: &str) -> String {
    format!("{name}#{}", crate::time::now_ms())
}

fn holder_name(holder: &str) -> &str {
    holder.rsplit_once('#').map_or(holder, |(name, _)| name)
}

impl Cluster {
    /// Joins: migrates the schema and starts contending for the lease (inside a Tokio runtime).
    pub async fn join(pool: Pool, options: ReplicaOptions) -> Result<Arc<Self>, String> {
        let mut client = pool.get().await.map_err(|error| format!("connecting to the database: {error}"))?;
        crate::ha::migrate(&mut client).await.map_err(|error| error.to_string())?;
        drop(client);
        let elector = Elector::new(Lease::new(holder(&options.name), options.lease), pool.clone());
        let handle = elector.spawn();
        let leading = handle.subscribe();
        Ok(Arc::new(Self {
            pool,
            options,
            leading,
            handle: Mutex::new(Some(handle)),
            elector,
            last_ok_ms: AtomicI64::new(-1),
            started: Instant::now(),
            published: Mutex::new(None),
            synced: AtomicBool::new(false),
            members: Mutex::new(Vec::new()),
            grace_until: Mutex::new(None),
            token_reads: tokio::sync::Mutex::new(()),
            tokens_read_at: Mutex::new(None),
        }))
    }

    /// The generation this replica leads under now, if it leads.
    pub fn leading(&self) -> Option<u64> {
        *self.leading.borrow()
    }

    /// A receiver of leadership changes.
    pub fn leadership(&self) -> watch::Receiver<Option<u64>> {
        self.leading.clone()
    }

    /// The fence of the generation this replica leads under, if it leads.
    pub fn fence(&self) -> Option<probenet_pg::Fence> {
        self.leading().map(|generation| self.elector.fence(generation))
    }

    /// Whether the database answered lately (and the registry has been mirrored once).
    pub fn healthy(&self) -> bool {
        let last = self.last_ok_ms.load(Ordering::Relaxed);
        let now = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.synced.load(Ordering::Relaxed)
            && last >= 0
            && now - last <= i64::try_from(UNHEALTHY_AFTER.as_millis()).unwrap_or(i64::MAX)
    }

    fn note_ok(&self) {
        let now = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.last_ok_ms.store(now, Ordering::Relaxed);
    }

    /// What the leader published last, as read.
    pub fn published(&self) -> Option<Published> {
        self.published.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, String> {
        let client = tokio::time::timeout(CALL_TIMEOUT, self.pool.get())
            .await
            .map_err(|_| "the database did not answer in time".to_owned())?;
        client.map_err(|error| format!("database: {error}"))
    }

    /// Records a registration for every replica. `Ok(false)`: the name is live under another token.
    pub async fn register(&self, row: &ProberRow, lease: Duration) -> Result<bool, String> {
        let client = self.client().await?;
        bounded(db::register(&client, row, lease)).await
    }

    /// Renews a prober's lease for every replica. `Ok(false)`: it is not live with that token.
    pub async fn heartbeat(
        &self,
        region: &str,
        name: &str,
        token: &str,
        now_ms: i64,
        lease: Duration,
    ) -> Result<bool, String> {
        let client = self.client().await?;
        bounded(db::heartbeat(&client, region, name, token, now_ms, lease)).await
    }

    /// Shortens a prober's lease for every replica (its long-poll here broke), unless it was heard from since.
    pub async fn suspect(
        &self,
        region: &str,
        name: &str,
        token: &str,
        since_ms: i64,
        grace: Duration,
    ) -> Result<(), String> {
        let client = self.client().await?;
        bounded(db::suspect(&client, region, name, token, since_ms, grace)).await
    }

    /// Removes a prober for every replica.
    pub async fn deregister(&self, region: &str, name: &str, token: &str) -> Result<(), String> {
        let client = self.client().await?;
        bounded(db::deregister(&client, region, name, token)).await
    }

    /// Takes the tokens from the database from now on. On a database without tokens yet, those of the data
    /// directory's `tokens.json` are copied in first (a single scheduler moving to PostgreSQL keeps them).
    pub async fn adopt_tokens(&self, shared: &Shared, data: &std::path::Path) -> Result<(), String> {
        let client = self.client().await?;
        let known = bounded(tokens::entries(&client)).await?;
        if known.is_empty() {
            let local = crate::tokens::entries(data).map_err(|error| error.to_string())?;
            let added = bounded(tokens::import(&client, &local)).await?;
            if added > 0 {
                tracing::info!(added, "tokens of the data directory copied into the database");
            }
        }
        let entries = bounded(tokens::entries(&client)).await?;
        shared.tokens.replace(entries);
        Ok(())
    }

    /// After an unknown token: re-reads the tokens unless that was done less than half a second ago (a flood of
    /// bad tokens costs the database at most two reads a second). True when they were read now.
    pub async fn refresh_tokens_after_miss(&self, shared: &Shared) -> bool {
        let _one_at_a_time = self.token_reads.lock().await;
        let now = Instant::now();
        {
            let mut last = self.tokens_read_at.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| now.duration_since(at) < Duration::from_millis(500)) {
                return false;
            }
            *last = Some(now);
        }
        self.refresh_tokens(shared).await.is_ok()
    }

    /// Re-reads the tokens (a token created or revoked with `probenet token --store` takes effect).
    async fn refresh_tokens(&self, shared: &Shared) -> Result<(), String> {
        let client = self.client().await?;
        let entries = bounded(tokens::entries(&client)).await?;
        shared.tokens.replace(entries);
        Ok(())
    }

    /// Re-reads the maintenance windows added through the API; when they changed, the config is rebuilt with
    /// them (and the leader publishes the new config to the probers).
    pub async fn refresh_maintenance(&self, shared: &Arc<Shared>) -> Result<(), String> {
        let client = self.client().await?;
        let windows = bounded(maintenance::list(&client)).await?;
        drop(client);
        if shared.maintenance.set(windows) {
            let state = shared.clone();
            tokio::task::spawn_blocking(move || state.reload(false)).await.map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    /// Adds a maintenance window for every replica: false when its name is taken or the table is full.
    pub async fn add_maintenance(&self, window: &crate::maintenance::ApiWindow) -> Result<bool, String> {
        let client = self.client().await?;
        bounded(maintenance::add(&client, window, crate::maintenance::MAX_WINDOWS)).await
    }

    /// Replaces a maintenance window for every replica.
    pub async fn update_maintenance(&self, window: &crate::maintenance::ApiWindow) -> Result<bool, String> {
        let client = self.client().await?;
        bounded(maintenance::update(&client, window)).await
    }

    /// Removes a maintenance window for every replica.
    pub async fn remove_maintenance(&self, name: &str) -> Result<bool, String> {
        let client = self.client().await?;
        bounded(maintenance::remove(&client, name)).await
    }

    /// Drops the lease task without releasing the lease, as a killed process would (for failover tests).
    pub fn crash(&self) {
        drop(self.handle.lock().unwrap_or_else(PoisonError::into_inner).take());
    }

    /// The replicas as last read, for the dashboard.
    pub fn members(&self) -> Vec<probenet_dashboard::model::Scheduler> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Steps down and releases the lease (a clean stop hands over at once).
    pub async fn stop(&self) {
        let handle = self.handle.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            handle.stop().await;
        }
    }

    /// The cluster as the database sees it now.
    pub async fn view(&self) -> Result<ClusterView, String> {
        let client = self.pool.get().await.map_err(|error| format!("database: {error}"))?;
        let lease = self.elector.lease().state(&client).await.map_err(|error| probenet_pg::describe(&error))?;
        let members = db_members(&client).await.map_err(|error| probenet_pg::describe(&error))?;
        let leader = lease
            .as_ref()
            .filter(|lease| !lease.remaining.is_zero())
            .map(|lease| holder_name(&lease.holder).to_owned());
        let now = crate::time::now_ms();
        Ok(ClusterView {
            lease_generation: lease.as_ref().map_or(0, |lease| lease.generation),
            this: self.options.name.clone(),
            members: members
                .into_iter()
                .map(|member| MemberView {
                    leader: leader.as_deref() == Some(member.name.as_str()),
                    last_seen: crate::time::rfc3339_ms(now - i64::try_from(member.age.as_millis()).unwrap_or(0)),
                    name: member.name,
                    url: member.url,
                    version: member.version,
                })
                .collect(),
            leader,
        })
    }
}

/// A statement bounded by [`CALL_TIMEOUT`], its error made readable.
async fn bounded<T>(call: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(probenet_pg::describe(&error)),
        Err(_) => Err("the database did not answer in time".to_owned()),
    }
}

async fn db_members(client: &tokio_postgres::Client) -> Result<Vec<crate::ha::members::Member>, tokio_postgres::Error> {
    crate::ha::members::seen_within(client, MEMBER_WITHIN).await
}

/// The identity of a published prober set: who and what they run, not their heartbeats.
fn identity(probers: &[ProberRow]) -> Vec<(&str, &str, &str, &[probenet_checks::Kind])> {
    probers.iter().map(|p| (p.region.as_str(), p.name.as_str(), p.token.as_str(), p.kinds.as_slice())).collect()
}

/// Mirrors the probers and the published assignment into the replica, publishes as leader, and announces the
/// replica, until the scheduler stops.
pub async fn run(shared: Arc<Shared>, cluster: Arc<Cluster>) {
    let mut stopping = shared.stopping.clone();
    let mut sync = tokio::time::interval(SYNC_EVERY);
    sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut announce = tokio::time::interval(ANNOUNCE_EVERY);
    announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut latest = tokio::time::interval(LATEST_EVERY);
    latest.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut leadership = cluster.leadership();
    loop {
        tokio::select! {
            () = crate::server::stopped(&mut stopping) => return,
            Ok(()) = leadership.changed() => {
                let leading = *leadership.borrow_and_update();
                lead_or_follow(&shared, leading).await;
            }
            _ = latest.tick() => {
                // Where each pair's new owner resumes: the latest run any replica stored.
                let state = shared.clone();
                let read = tokio::task::spawn_blocking(move || state.store.latest_runs());
                if let Ok(Ok(Ok(runs))) = tokio::time::timeout(CALL_TIMEOUT, read).await {
                    shared.note_latest(&runs);
                }
            }
            _ = announce.tick() => {
                if tokio::time::timeout(CALL_TIMEOUT, announce_round(&shared, &cluster)).await.is_err() {
                    tracing::debug!("the announce round timed out");
                }
            }
            _ = sync.tick() => {
                let outcome = tokio::time::timeout(SYNC_EVERY * 8, sync_once(&shared, &cluster))
                    .await
                    .unwrap_or_else(|_| Err("timed out".to_owned()));
                match outcome {
                    Ok(()) => {
                        cluster.note_ok();
                        if failing {
                            tracing::info!("the database answers again");
                            failing = false;
                            let lease = shared.with_registry(|registry| registry.lease());
                            *cluster.grace_until.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some(Instant::now() + lease);
                        }
                    }
                    Err(error) => {
                        if !failing {
                            tracing::warn!(error, "cannot reach the database; serving what was read last");
                            failing = true;
                        }
                    }
                }
            }
        }
    }
}

/// Every couple of seconds: re-read the tokens and the API's maintenance windows, announce this replica, exchange
/// the alerts view, read the members for the dashboard, and (as leader) reopen an engine that failed to open and
/// forget long-gone probers and the API's windows that ended a week ago.
async fn announce_round(shared: &Arc<Shared>, cluster: &Arc<Cluster>) {
    if let Err(error) = cluster.refresh_tokens(shared).await {
        tracing::debug!(error, "tokens not re-read; keeping those read before");
    }
    if let Err(error) = cluster.refresh_maintenance(shared).await {
        tracing::debug!(error, "maintenance windows not re-read; keeping those read before");
    }
    let options = &cluster.options;
    if let Ok(client) = cluster.pool.get().await {
        let version = env!("CARGO_PKG_VERSION");
        if let Err(error) = crate::ha::members::announce(&client, &options.name, &options.url, version).await {
            tracing::debug!(error = probenet_pg::describe(&error), "announce failed");
        }
        exchange_views(shared, cluster, &client).await;
        if cluster.leading().is_some() {
            let _ = db::forget_old_probers(&client).await;
            for name in crate::maintenance::ended(shared, crate::time::now_ms()) {
                if let Ok(true) = maintenance::remove(&client, &name).await {
                    tracing::info!(window = %name, "a maintenance window of the API that ended a week ago forgotten");
                }
            }
        }
    }
    if let Ok(view) = cluster.view().await {
        let now = crate::time::now_ms();
        let members = view
            .members
            .into_iter()
            .map(|member| probenet_dashboard::model::Scheduler {
                last_seen_ms: crate::time::parse_rfc3339_ms(&member.last_seen).unwrap_or(now),
                name: member.name,
                url: member.url,
                version: member.version,
                leader: member.leader,
            })
            .collect();
        *cluster.members.lock().unwrap_or_else(PoisonError::into_inner) = members;
    }
    // A leader whose engine did not open (the database failed then) tries again.
    let leading = cluster.leading();
    if leading.is_some() != shared.alerting.running() {
        lead_or_follow(shared, leading).await;
    }
}

/// The leader opens the alert engine on the shared state (resuming what the previous one recorded but did not
/// deliver); a replica that lost the lease stops it.
async fn lead_or_follow(shared: &Arc<Shared>, leading: Option<u64>) {
    match leading {
        Some(generation) => {
            tracing::info!(generation, "this replica leads: it assigns and evaluates alerts");
            let state = shared.clone();
            let opened = tokio::task::spawn_blocking(move || state.alerting.lead(&state.config())).await;
            match opened {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(%error, "the alert engine did not open; alerts wait for the next try")
                }
                Err(error) => tracing::error!(%error, "the alert engine did not open"),
            }
        }
        None => {
            if shared.alerting.running() {
                tracing::warn!("this replica no longer leads: alert evaluation stops here");
            }
            shared.alerting.follow();
        }
    }
}

/// The leader stores the alerts view for the followers; followers read it.
async fn exchange_views(shared: &Arc<Shared>, cluster: &Cluster, client: &tokio_postgres::Client) {
    const ALERTS: &str = "alerts";
    if cluster.leading().is_some() && shared.alerting.running() {
        let state = shared.clone();
        let Ok(view) = tokio::task::spawn_blocking(move || state.alerting.view()).await else { return };
        let body = view.to_string();
        if let Err(error) = db::put_view(client, ALERTS, &body, crate::time::now_ms()).await {
            tracing::debug!(error = probenet_pg::describe(&error), "alerts view not stored");
        }
    } else if let Ok(Some(body)) = db::view(client, ALERTS).await
        && let Ok(view) = serde_json::from_str(&body)
    {
        shared.alerting.set_published(view);
    }
}

/// One round: read the live probers and the published assignment; as leader, publish a new generation when
/// the probers or the config changed; apply what is published.
async fn sync_once(shared: &Arc<Shared>, cluster: &Arc<Cluster>) -> Result<(), String> {
    let mut client = cluster.pool.get().await.map_err(|error| format!("database: {error}"))?;
    let live = db::live_probers(&client).await.map_err(|error| probenet_pg::describe(&error))?;
    let mut published = db::published(&client).await.map_err(|error| probenet_pg::describe(&error))?;
    if let Some(fence) = cluster.fence() {
        let hash = shared.config().hash.clone();
        let mut candidates = live.clone();
        // Just after the database came back, probers whose rows ran out while it was away have not renewed
        // them yet: keep them assigned for one prober lease rather than move every pair twice.
        let in_grace = cluster
            .grace_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until);
        if in_grace && let Some(published) = &published {
            for kept in &published.probers {
                if !candidates.iter().any(|p| p.region == kept.region && p.name == kept.name) {
                    candidates.push(kept.clone());
                }
            }
            candidates.sort_by(|a, b| (&a.region, &a.name).cmp(&(&b.region, &b.name)));
        }
        let stale =
            published.as_ref().is_none_or(|p| p.config_hash != hash || identity(&p.probers) != identity(&candidates));
        if stale {
            match db::publish(&mut client, &fence, &hash, &candidates).await {
                Ok(new) => {
                    tracing::info!(generation = new.generation, probers = new.probers.len(), "assignment published");
                    published = Some(new);
                }
                Err(error) if error.is_fenced() => tracing::warn!(%error, "not leader any more; not published"),
                Err(error) => return Err(error.to_string()),
            }
        }
    }
    shared.mirror(&live);
    if let Some(published) = published {
        let newer = cluster.published().is_none_or(|known| known.generation != published.generation);
        if newer {
            *cluster.published.lock().unwrap_or_else(PoisonError::into_inner) = Some(published.clone());
            shared.follow(published);
        }
    }
    cluster.synced.store(true, Ordering::Relaxed);
    Ok(())
}
