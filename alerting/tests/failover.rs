//! Alerts across a leader failover, on a real PostgreSQL: two engines on one database stand for the old and
//! the new leader, each with its own lease contender (a short lease) and dispatcher, and one webhook receiver
//! counts what was accepted. A page is sent once, a resolve is never forgotten, a deposed leader sends nothing.

#![allow(clippy::unwrap_used)]

#[path = "notify/common.rs"]
#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Received, Receiver};
use probenet_alerting::notify::{Dispatcher, DispatcherOptions, WebhookNotifier, WebhookOptions};
use probenet_alerting::state::{AlertState, FenceSource, PostgresState, fence_source};
use probenet_alerting::{Clock, Engine, ManualClock, Matchers, Notifier, Options, Rules, Silence, Status};
use probenet_checks::config::load_str;
use probenet_checks::outcome::{Outcome, Reason};
use probenet_checks::wire::RunResult;
use probenet_pg::{Elector, LeaderHandle, Lease, Tls};
use probenet_testkit::postgres::Postgres;

/// Short, so a takeover after a crash takes about two seconds.
const LEASE: Duration = Duration::from_secs(2);
/// 2026-01-01 00:00 UTC.
const START: i64 = 1_767_225_600_000;
const MINUTE: Duration = Duration::from_secs(60);
const CHECKS: [&str; 5] = ["homepage", "api", "search", "cart", "login"];
const REGIONS: [&str; 3] = ["ap-south", "eu-west", "us-east"];
const HOMEPAGE_DOWN: [(&str, &str); 2] = [("homepage", "eu-west"), ("homepage", "us-east")];
const API_DOWN: [(&str, &str); 2] = [("api", "eu-west"), ("api", "us-east")];

fn rules() -> Rules {
    let mut text = String::from(
        "regions: {ap-south: {}, eu-west: {}, us-east: {}}\ndefaults: {interval: 1m}\nnotifiers:\n  \
         oncall: {webhook: {url: \"https://hooks.example.com/probenet\"}}\nchecks:\n",
    );
    for check in CHECKS {
        text.push_str(&format!("  - name: {check}\n    http: {{url: \"https://{check}.example.com/\"}}\n"));
    }
    text.push_str(
        "alerts:\n  - name: site-down\n    checks: [homepage, api]\n    failed_regions: 2\n    for: 2m\n    \
         severity: page\n    notify: [oncall]\n",
    );
    let config = load_str("alerting.yaml", &text).unwrap_or_else(|errors| panic!("{errors}"));
    Rules::from_config(&config)
}

/// What the receiver accepted (answered 200), as (key, status).
type Accepted = Arc<Mutex<Vec<(String, String)>>>;

struct Cluster {
    _pg: Postgres,
    url: String,
    receiver: Receiver,
    /// While true the receiver answers 503 to everything.
    down: Arc<AtomicBool>,
    accepted: Accepted,
    clock: Arc<ManualClock>,
}

/// One scheduler replica: its lease contender, its engine on the shared database, its dispatcher.
struct Replica {
    handle: Option<LeaderHandle>,
    generation: u64,
    state: Arc<dyn AlertState>,
    engine: Engine,
    dispatcher: Dispatcher,
    clock: Arc<ManualClock>,
}

async fn cluster(test: &str) -> Option<Cluster> {
    let pg = tokio::task::block_in_place(|| Postgres::start_or_skip(test))?;
    let url = pg.url();
    let pool = probenet_pg::connect(&url, Tls::Disabled, 1).unwrap();
    let mut client = pool.get().await.unwrap();
    probenet_pg::migrate(&mut client, &probenet_pg::lease::MIGRATIONS).await.unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let accepted: Accepted = Arc::default();
    let (flag, log) = (down.clone(), accepted.clone());
    let receiver = Receiver::with_judge(Arc::new(move |request: &Received| {
        if flag.load(Ordering::SeqCst) {
            return (StatusCode::SERVICE_UNAVAILABLE, "down".to_owned());
        }
        let body = request.json();
        let entry = (body["key"].as_str().unwrap().to_owned(), body["status"].as_str().unwrap().to_owned());
        log.lock().unwrap().push(entry);
        (StatusCode::OK, "ok".to_owned())
    }))
    .await;
    Some(Cluster { _pg: pg, url, receiver, down, accepted, clock: Arc::new(ManualClock::new(START)) })
}

impl Cluster {
    /// A replica named `name` once it leads (waiting for the previous leader's lease to run out), with its engine
    /// opened on the shared state under the fence its elector publishes.
    async fn leader(&self, name: &str) -> Replica {
        let elector = Elector::new(Lease::new(name, LEASE), probenet_pg::connect(&self.url, Tls::Disabled, 2).unwrap());
        let handle = elector.spawn();
        let started = Instant::now();
        let generation = loop {
            if let Some(generation) = handle.generation() {
                break generation;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{name} did not take the lease");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let fence = fence_source(&elector, handle.subscribe());
        self.replica(Some(handle), generation, fence)
    }

    fn replica(&self, handle: Option<LeaderHandle>, generation: u64, fence: FenceSource) -> Replica {
        let state: Arc<dyn AlertState> =
            Arc::new(tokio::task::block_in_place(|| PostgresState::open(&self.url, Tls::Disabled, 2, fence)).unwrap());
        let clock: Arc<dyn Clock> = self.clock.clone();
        let engine =
            tokio::task::block_in_place(|| Engine::with_state(rules(), state.clone(), clock, Options::default()))
                .unwrap();
        let webhook =
            WebhookNotifier::new(WebhookOptions { url: self.receiver.url("/hook"), ..Default::default() }).unwrap();
        let notifiers: BTreeMap<String, Arc<dyn Notifier>> =
            BTreeMap::from([("oncall".to_owned(), Arc::new(webhook) as _)]);
        let options = DispatcherOptions {
            max_attempts: 10,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_millis(400),
            ..DispatcherOptions::default()
        };
        Replica {
            handle,
            generation,
            state,
            engine,
            dispatcher: Dispatcher::new(notifiers, options),
            clock: self.clock.clone(),
        }
    }

    fn accepted(&self, key: &str, status: &str) -> usize {
        self.accepted.lock().unwrap().iter().filter(|(k, s)| k == key && s == status).count()
    }

    fn total(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// Waits (at most 10 s) until the receiver accepted `count` notifications of `key` with `status`, then 500 ms
    /// more for any duplicate, and asserts the count is exact.
    async fn expect(&self, key: &str, status: &str, count: usize) {
        let started = Instant::now();
        while self.accepted(key, status) < count {
            assert!(started.elapsed() < Duration::from_secs(10), "{key} {status}: {:?}", self.accepted);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(self.accepted(key, status), count, "{key} {status}: {:?}", self.accepted);
    }
}

impl Replica {
    /// One minute of results (every check in every region; down where listed), observed and evaluated; what was
    /// recorded is handed to the dispatcher when `send`. Returns how many notifications the evaluation decided.
    fn minute(&mut self, down: &[(&str, &str)], send: bool) -> usize {
        let now = self.clock.now_ms();
        for check in CHECKS {
            for region in REGIONS {
                let up = !down.iter().any(|(c, r)| *c == check && *r == region);
                let outcome = if up { Outcome::up(0.1) } else { Outcome::failed(Reason::Timeout, "no answer") };
                let result = RunResult {
                    check: check.to_owned(),
                    region: region.to_owned(),
                    planned_at_ms: now,
                    started_at_ms: now,
                    prober: format!("prober-{region}"),
                    outcome,
                };
                self.engine.observe(&result);
            }
        }
        let decided = tokio::task::block_in_place(|| self.engine.evaluate()).len();
        if send {
            self.send();
        }
        self.clock.advance(MINUTE);
        decided
    }

    fn minutes(&mut self, count: usize, down: &[(&str, &str)]) -> usize {
        (0..count).map(|_| self.minute(down, true)).sum()
    }

    /// Hands the recorded (and resumed) notifications to the dispatcher.
    fn send(&mut self) {
        let rows = self.engine.take_outbox();
        self.dispatcher.send_recorded(&self.state, rows);
    }

    /// Dies without cleaning up: the lease is not released (it runs out), queued deliveries are dropped.
    fn crash(mut self) {
        drop(self.handle.take());
        tracing_free_drop(self);
    }
}

/// Drops a replica's parts (the engine last: its final flush is refused without a fence, as after a crash).
fn tracing_free_drop(replica: Replica) {
    let Replica { dispatcher, engine, .. } = replica;
    drop(dispatcher);
    tokio::task::block_in_place(|| drop(engine));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_survives_a_leader_crash_and_resolves_once() {
    let Some(cluster) = cluster("a_firing_alert_survives_a_leader_crash_and_resolves_once").await else { return };
    let mut old = cluster.leader("old").await;
    assert_eq!(old.minutes(2, &[]), 0);
    // Pending for 2 minutes, then firing.
    assert_eq!(old.minutes(4, &HOMEPAGE_DOWN), 1);
    cluster.expect("site-down/homepage", "firing", 1).await;
    let old_generation = old.generation;
    old.crash();

    let mut new = cluster.leader("new").await;
    assert!(new.generation > old_generation, "{} after {old_generation}", new.generation);
    assert!(new.engine.take_outbox().is_empty(), "the firing was delivered: nothing to resume");
    let alerts = new.engine.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].notified, "the new leader knows the page went out");
    // Still down for a while: no page again; then the check recovers.
    assert_eq!(new.minutes(3, &HOMEPAGE_DOWN), 0);
    assert_eq!(new.minutes(10, &[]), 1);
    cluster.expect("site-down/homepage", "resolved", 1).await;
    assert_eq!(cluster.accepted("site-down/homepage", "firing"), 1);
    assert_eq!(cluster.total(), 2, "{:?}", cluster.accepted);
    let history = new.engine.history(10).unwrap();
    let statuses: Vec<Status> = history.iter().map(|entry| entry.status).collect();
    assert_eq!(statuses, [Status::Resolved, Status::Firing], "one history across both leaders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_starting_during_the_failover_is_sent_once_by_the_new_leader() {
    let Some(cluster) = cluster("an_alert_starting_during_the_failover_is_sent_once_by_the_new_leader").await else {
        return;
    };
    let mut old = cluster.leader("old").await;
    assert_eq!(old.minutes(3, &[]), 0);
    old.crash();
    // Nobody leads for a while: results of these minutes are observed by no engine.
    cluster.clock.advance(MINUTE * 2);
    let mut new = cluster.leader("new").await;
    assert_eq!(new.minutes(4, &API_DOWN), 1);
    cluster.expect("site-down/api", "firing", 1).await;
    assert_eq!(new.minutes(10, &[]), 1);
    cluster.expect("site-down/api", "resolved", 1).await;
    assert_eq!(cluster.total(), 2, "{:?}", cluster.accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_can_neither_record_nor_send() {
    let Some(cluster) = cluster("a_deposed_leader_can_neither_record_nor_send").await else { return };
    // The old leader as a paused process would be: it keeps the fence of the generation it led under.
    let leading = cluster.leader("old").await;
    let generation = leading.generation;
    let elector = Elector::new(Lease::new("old", LEASE), probenet_pg::connect(&cluster.url, Tls::Disabled, 1).unwrap());
    let stale = elector.fence(generation);
    let mut old = cluster.replica(None, generation, Arc::new(move || Some(stale.clone())));
    // Under its generation it records a page, but is paused before handing it to its dispatcher.
    assert_eq!(old.minutes(2, &[]), 0);
    assert_eq!(old.minute(&HOMEPAGE_DOWN, true), 0);
    assert_eq!(old.minute(&HOMEPAGE_DOWN, true), 0);
    assert_eq!(old.minute(&HOMEPAGE_DOWN, false), 1, "the page is recorded");
    let recorded = old.engine.take_outbox();
    assert_eq!(recorded.len(), 1);
    leading.crash();

    let mut new = cluster.leader("new").await;
    assert!(new.generation > generation);
    // The paused leader wakes up: its writes are refused and it sends nothing.
    old.dispatcher.send_recorded(&old.state, recorded);
    assert_eq!(old.minute(&API_DOWN, true), 0);
    assert_eq!(old.minute(&API_DOWN, true), 0);
    assert_eq!(old.minute(&API_DOWN, true), 0, "a refused write decides nothing");
    assert!(old.engine.take_outbox().is_empty());
    let silence = Silence {
        id: 0,
        matchers: Matchers { alert: Some("site-down".into()), ..Matchers::default() },
        starts_ms: START,
        ends_ms: START + 3_600_000,
        comment: String::new(),
        created_by: "test".into(),
        maintenance: false,
    };
    let refused = tokio::task::block_in_place(|| old.engine.add_silence(silence.clone())).unwrap_err();
    assert!(refused.is_fenced(), "{refused}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(cluster.total(), 0, "the deposed leader sent {:?}", cluster.accepted);
    let deliveries = old.dispatcher.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].last_error.as_deref().is_some_and(|error| error.contains("fenced")), "{deliveries:?}");

    // The new leader resumes the page the old one recorded and sends it once; the refused API alert never
    // reached the database.
    new.send();
    cluster.expect("site-down/homepage", "firing", 1).await;
    let keys: Vec<String> = new.engine.alerts().into_iter().map(|alert| alert.key).collect();
    assert_eq!(keys, ["site-down/homepage"]);
    assert!(tokio::task::block_in_place(|| new.engine.add_silence(silence)).is_ok(), "the leader may write");
    assert_eq!(cluster.total(), 1, "{:?}", cluster.accepted);
    tracing_free_drop(old);
    tracing_free_drop(new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolve_the_old_leader_could_not_deliver_is_delivered_once_by_the_new_one() {
    let test = "a_resolve_the_old_leader_could_not_deliver_is_delivered_once_by_the_new_one";
    let Some(cluster) = cluster(test).await else { return };
    let mut old = cluster.leader("old").await;
    assert_eq!(old.minutes(6, &HOMEPAGE_DOWN), 1);
    cluster.expect("site-down/homepage", "firing", 1).await;
    // The receiver goes down; the check recovers and the old leader records the resolve but cannot deliver it.
    cluster.down.store(true, Ordering::SeqCst);
    assert_eq!(old.minutes(10, &[]), 1);
    let started = Instant::now();
    while cluster.receiver.requests().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "no attempt to deliver the resolve");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(old.engine.alerts().is_empty());
    old.crash();
    cluster.down.store(false, Ordering::SeqCst);

    let mut new = cluster.leader("new").await;
    let resumed = new.engine.take_outbox();
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0].notification.status, Status::Resolved);
    assert!(resumed[0].attempts >= 1, "attempts count across leaders: {resumed:?}");
    new.dispatcher.send_recorded(&new.state, resumed);
    cluster.expect("site-down/homepage", "resolved", 1).await;
    // Nothing more to do: the alert stays resolved, nothing is resent.
    assert_eq!(new.minutes(3, &[]), 0);
    new.send();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cluster.total(), 2, "{:?}", cluster.accepted);
    let undelivered = tokio::task::block_in_place(|| new.state.undelivered()).unwrap();
    assert!(undelivered.is_empty(), "{undelivered:?}");
    tracing_free_drop(new);
}
