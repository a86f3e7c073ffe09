//! One suite of state tests, two implementations: every case runs against SQLite and against a real PostgreSQL
//! (under a held lease), through the [`AlertState`] interface alone. Reopening means a new handle on the same
//! file or database, as after a restart or a failover.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use probenet_alerting::slo::{Counts, Resolution};
use probenet_alerting::state::{AlertState, Batch, Claim, HistoryEntry, PostgresState, Settled, SqliteState};
use probenet_alerting::{Matchers, Notification, Silence, Status};
use probenet_pg::{Blocking, Fence, Lease, Tls};
use probenet_testkit::postgres::Postgres;

/// A place to keep state that outlives one handle.
trait Backend {
    /// A new handle on the same state.
    fn open(&self) -> Arc<dyn AlertState>;
}

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn new(_test: &str) -> Option<Self> {
        Some(Self { dir: tempfile::tempdir().unwrap() })
    }
}

impl Backend for Sqlite {
    fn open(&self) -> Arc<dyn AlertState> {
        Arc::new(SqliteState::open(&self.dir.path().join("alerts.db")).unwrap())
    }
}

/// One server for the tests running at the same time, stopped when the last of them ends.
static SERVER: Mutex<Weak<Postgres>> = Mutex::new(Weak::new());

struct Pg {
    _server: Arc<Postgres>,
    url: String,
    fence: Fence,
}

impl Pg {
    /// A database of its own on the shared server, with the lease held (for longer than any test) by this test.
    fn new(test: &str) -> Option<Self> {
        let server = {
            let mut shared = SERVER.lock().unwrap();
            match shared.upgrade() {
                Some(server) => server,
                None => {
                    let server = Arc::new(Postgres::start_or_skip(test)?);
                    *shared = Arc::downgrade(&server);
                    server
                }
            }
        };
        let url = server.create_database(test);
        let lease = Lease::new(format!("suite-{test}"), Duration::from_secs(600));
        let runtime = Blocking::new("suite", 1).unwrap();
        let (leasing, target) = (lease.clone(), url.clone());
        let generation = runtime.run(async move {
            let pool = probenet_pg::connect(&target, Tls::Disabled, 1).unwrap();
            let mut client = pool.get().await.unwrap();
            probenet_pg::migrate(&mut client, &probenet_pg::lease::MIGRATIONS).await.unwrap();
            leasing.try_acquire_or_renew(&mut client, None).await.unwrap().unwrap().generation
        });
        Some(Self { _server: server, url, fence: Fence { lease: Arc::new(lease), generation } })
    }
}

impl Backend for Pg {
    fn open(&self) -> Arc<dyn AlertState> {
        let fence = self.fence.clone();
        Arc::new(PostgresState::open(&self.url, Tls::Disabled, 2, Arc::new(move || Some(fence.clone()))).unwrap())
    }
}

fn notification(key: &str, status: Status) -> Notification {
    Notification {
        alert: "site-down".into(),
        key: key.into(),
        status,
        severity: "page".into(),
        check: Some("homepage".into()),
        target: None,
        regions: vec!["eu-west".into()],
        total_regions: 3,
        since_ms: 1_000,
        ended_ms: (status == Status::Resolved).then_some(2_000),
        reason: None,
        error: None,
        labels: BTreeMap::new(),
        summary: format!("{key} {status:?}"),
        dashboard_url: None,
    }
}

fn entry(at_ms: i64, key: &str, status: Status) -> HistoryEntry {
    HistoryEntry {
        at_ms,
        key: key.into(),
        alert: "site-down".into(),
        check: None,
        status,
        regions: Vec::new(),
        summary: format!("{key} at {at_ms}"),
        notified: true,
    }
}

fn silence(comment: &str) -> Silence {
    Silence {
        id: 0,
        matchers: Matchers { check: Some("homepage".into()), ..Matchers::default() },
        starts_ms: 1_000,
        ends_ms: 2_000,
        comment: comment.into(),
        created_by: "suite".into(),
        maintenance: true,
    }
}

/// The cases, each written against the interface only.
mod cases {
    use super::*;

    pub fn instances_commit_and_reopen(backend: &dyn Backend) {
        let state = backend.open();
        assert!(state.instances().unwrap().is_empty());
        let batch =
            Batch { put: vec![("b".into(), "{\"n\":2}".into()), ("a".into(), "{\"n\":1}".into())], ..Batch::default() };
        assert!(state.commit(&batch).unwrap().is_empty());
        let replaced =
            Batch { put: vec![("a".into(), "{\"n\":3}".into())], delete: vec!["b".into()], ..Batch::default() };
        state.commit(&replaced).unwrap();
        drop(state);
        let reopened = backend.open();
        assert_eq!(reopened.instances().unwrap(), ["{\"n\":3}"]);
    }

    pub fn history_is_newest_first_and_limited(backend: &dyn Backend) {
        let state = backend.open();
        let history = (0..5).map(|i| entry(i, &format!("k{i}"), Status::Firing)).collect();
        state.commit(&Batch { history, ..Batch::default() }).unwrap();
        state.commit(&Batch { history: vec![entry(9, "k0", Status::Resolved)], ..Batch::default() }).unwrap();
        let newest = backend.open().history(3).unwrap();
        let seen: Vec<(i64, Status)> = newest.iter().map(|entry| (entry.at_ms, entry.status)).collect();
        assert_eq!(seen, [(9, Status::Resolved), (4, Status::Firing), (3, Status::Firing)]);
        assert_eq!(newest[0], entry(9, "k0", Status::Resolved));
    }

    pub fn silences_are_added_replaced_deleted_and_kept(backend: &dyn Backend) {
        let state = backend.open();
        let first = state.add_silence(&silence("first")).unwrap();
        let second = state.add_silence(&silence("second")).unwrap();
        assert_ne!(first, second);
        let mut ended = silence("second, ended");
        ended.id = second;
        state.put_silence(&ended).unwrap();
        let third = state.add_silence(&silence("third")).unwrap();
        state.delete_silence(first).unwrap();
        let stored = backend.open().silences().unwrap();
        let ids: Vec<u64> = stored.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [second, third]);
        assert_eq!(stored[0].1, ended);
        assert_eq!(stored[1].1.id, third, "the stored body carries its id");
        assert_eq!(stored[1].1.comment, "third");
    }

    pub fn buckets_are_upserted_and_dropped(backend: &dyn Backend) {
        let state = backend.open();
        let counts = |total, bad| Counts { total, bad };
        state
            .write_buckets(
                &[
                    ("homepage".into(), Resolution::Minute, 60_000, counts(3, 1)),
                    ("homepage".into(), Resolution::Hour, 0, counts(3, 1)),
                    ("api".into(), Resolution::Minute, 60_000, counts(1, 0)),
                ],
                &[],
            )
            .unwrap();
        state
            .write_buckets(
                &[("homepage".into(), Resolution::Minute, 60_000, counts(5, 2))],
                &[("api".into(), Resolution::Minute, 60_000)],
            )
            .unwrap();
        let mut stored = backend.open().buckets().unwrap();
        stored.sort_by(|a, b| (&a.0, a.1.tag(), a.2).cmp(&(&b.0, b.1.tag(), b.2)));
        assert_eq!(
            stored,
            [
                ("homepage".into(), Resolution::Hour, 0, counts(3, 1)),
                ("homepage".into(), Resolution::Minute, 60_000, counts(5, 2)),
            ]
        );
    }

    pub fn outbox_rows_are_recorded_with_the_state_and_resumed_until_settled(backend: &dyn Backend) {
        let state = backend.open();
        let batch = Batch {
            put: vec![("site-down/homepage".into(), "{}".into())],
            history: vec![entry(5, "site-down/homepage", Status::Firing)],
            notify: vec![
                ("oncall".into(), notification("site-down/homepage", Status::Firing)),
                ("chat".into(), notification("site-down/homepage", Status::Firing)),
            ],
            at_ms: 5,
            ..Batch::default()
        };
        let ids = state.commit(&batch).unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ids[0] < ids[1]);
        let reopened = backend.open();
        let pending = reopened.undelivered().unwrap();
        let seen: Vec<(u64, &str, u32, i64)> =
            pending.iter().map(|row| (row.id, row.notifier.as_str(), row.attempts, row.created_ms)).collect();
        assert_eq!(seen, [(ids[0], "oncall", 0, 5), (ids[1], "chat", 0, 5)]);
        assert_eq!(pending[0].notification, notification("site-down/homepage", Status::Firing));

        assert_eq!(reopened.claim(ids[0], 3).unwrap(), Claim::Send(1));
        reopened.settle(ids[0], &Settled::Delivered).unwrap();
        assert_eq!(reopened.claim(ids[0], 3).unwrap(), Claim::Settled, "a delivered row is never sent again");
        reopened.settle(ids[0], &Settled::Failed("late".into())).unwrap();
        // The other row: attempts are counted in the row, across handles, and bounded.
        assert_eq!(reopened.claim(ids[1], 3).unwrap(), Claim::Send(1));
        assert_eq!(backend.open().claim(ids[1], 3).unwrap(), Claim::Send(2));
        let left = backend.open().undelivered().unwrap();
        assert_eq!(left.iter().map(|row| (row.id, row.attempts)).collect::<Vec<_>>(), [(ids[1], 2)]);
        assert_eq!(reopened.claim(ids[1], 3).unwrap(), Claim::Send(3));
        assert_eq!(reopened.claim(ids[1], 3).unwrap(), Claim::GaveUp);
        assert!(backend.open().undelivered().unwrap().is_empty());
        assert_eq!(reopened.claim(999_999, 3).unwrap(), Claim::Settled, "an unknown row is not sent");
    }

    pub fn settled_outbox_rows_are_pruned(backend: &dyn Backend) {
        let state = backend.open();
        let notify = (0..1_005).map(|_| ("oncall".into(), notification("k", Status::Firing))).collect();
        let ids = state.commit(&Batch { notify, ..Batch::default() }).unwrap();
        assert_eq!(ids.len(), 1_005);
        for id in &ids[..1_004] {
            state.settle(*id, &Settled::Delivered).unwrap();
        }
        // The oldest settled rows are gone, so a claim finds nothing to send; the pending one stays.
        assert_eq!(state.claim(ids[0], 3).unwrap(), Claim::Settled);
        assert_eq!(state.undelivered().unwrap().iter().map(|row| row.id).collect::<Vec<_>>(), [ids[1_004]]);
    }
}

macro_rules! suite {
    ($backend:ident, $make:path) => {
        mod $backend {
            use super::*;

            fn with(test: &str, case: fn(&dyn Backend)) {
                if let Some(backend) = $make(test) {
                    case(&backend);
                }
            }

            #[test]
            fn instances_commit_and_reopen() {
                with(concat!(stringify!($backend), "_instances"), cases::instances_commit_and_reopen);
            }

            #[test]
            fn history_is_newest_first_and_limited() {
                with(concat!(stringify!($backend), "_history"), cases::history_is_newest_first_and_limited);
            }

            #[test]
            fn silences_are_added_replaced_deleted_and_kept() {
                with(concat!(stringify!($backend), "_silences"), cases::silences_are_added_replaced_deleted_and_kept);
            }

            #[test]
            fn buckets_are_upserted_and_dropped() {
                with(concat!(stringify!($backend), "_buckets"), cases::buckets_are_upserted_and_dropped);
            }

            #[test]
            fn outbox_rows_are_recorded_with_the_state_and_resumed_until_settled() {
                with(
                    concat!(stringify!($backend), "_outbox"),
                    cases::outbox_rows_are_recorded_with_the_state_and_resumed_until_settled,
                );
            }

            #[test]
            fn settled_outbox_rows_are_pruned() {
                with(concat!(stringify!($backend), "_pruned"), cases::settled_outbox_rows_are_pruned);
            }
        }
    };
}

suite!(sqlite, Sqlite::new);
suite!(postgres, Pg::new);

#[test]
fn postgres_writes_without_a_fence_are_refused_and_reads_still_work() {
    let Some(pg) = Pg::new("postgres_no_fence") else { return };
    pg.open().add_silence(&silence("kept")).unwrap();
    let follower = PostgresState::open(&pg.url, Tls::Disabled, 1, Arc::new(|| None)).unwrap();
    let error = follower.commit(&Batch { put: vec![("k".into(), "{}".into())], ..Batch::default() }).unwrap_err();
    assert!(error.is_fenced(), "{error}");
    assert!(follower.add_silence(&silence("refused")).unwrap_err().is_fenced());
    assert!(follower.claim(1, 3).unwrap_err().is_fenced());
    let mut superseded = pg.fence.clone();
    superseded.generation += 1;
    let stale = PostgresState::open(&pg.url, Tls::Disabled, 1, Arc::new(move || Some(superseded.clone()))).unwrap();
    let error = stale.write_buckets(&[], &[]).unwrap_err();
    assert!(error.is_fenced() && error.to_string().contains("generation"), "{error}");
    assert_eq!(follower.silences().unwrap().len(), 1, "reads are not fenced");
    assert!(follower.instances().unwrap().is_empty(), "the refused write left nothing");
}

#[test]
fn a_version_1_sqlite_file_keeps_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE alert_schema_version (version INTEGER NOT NULL);
             INSERT INTO alert_schema_version VALUES (1);
             CREATE TABLE alert_instances (key TEXT PRIMARY KEY, body TEXT NOT NULL);
             INSERT INTO alert_instances VALUES ('site-down/homepage', '{\"old\":true}');
             CREATE TABLE alert_history (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
                 key TEXT NOT NULL, body TEXT NOT NULL);
             CREATE TABLE alert_silences (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
             CREATE TABLE alert_slo_buckets (check_name TEXT NOT NULL, resolution TEXT NOT NULL,
                 start_ms INTEGER NOT NULL, total INTEGER NOT NULL, bad INTEGER NOT NULL,
                 PRIMARY KEY (check_name, resolution, start_ms)) WITHOUT ROWID;",
        )
        .unwrap();
    }
    let state = SqliteState::open(&path).unwrap();
    assert_eq!(state.instances().unwrap(), ["{\"old\":true}"]);
    assert!(state.undelivered().unwrap().is_empty());
    drop(state);
    assert!(SqliteState::open(&path).is_ok(), "and opens again at version 2");
}
