//! The leader lease on a real PostgreSQL: at most one leader, takeover with generation + 1, fenced writes,
//! release on a clean stop, stepping down when the database crashes or hangs.

use std::time::{Duration, Instant};

use probenet_scheduler::ha::{self, Elector, FencedError, Lease, LeaseState};
use probenet_scheduler::pki;

use crate::util::{LEASE, Proxy, blocking, bounded, contender, database, leader, pool, until};

/// The lease row now.
async fn state(url: &str) -> LeaseState {
    let client = pool(url).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    let lease = Lease::new("observer", LEASE);
    let state = lease.state(&client).await.unwrap_or_else(|error| panic!("state: {error}"));
    state.unwrap_or_else(|| panic!("no lease row"))
}

/// Appends `key` to `fenced_log` under `generation`, fenced by `holder`'s lease.
async fn log(url: &str, holder: &str, generation: u64, key: &str) -> Result<u64, FencedError> {
    let pool = pool(url);
    let key = key.to_string();
    let lease = Lease::new(holder, LEASE);
    lease
        .fenced(&pool, generation, move |tx| {
            Box::pin(async move {
                let generation = i64::try_from(generation).unwrap_or(i64::MAX);
                tx.execute("INSERT INTO fenced_log (generation, key) VALUES ($1, $2)", &[&generation, &key]).await
            })
        })
        .await
}

async fn logged(url: &str) -> Vec<(i64, String)> {
    let client = pool(url).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    let rows = client.query("SELECT generation, key FROM fenced_log ORDER BY key", &[]).await;
    rows.unwrap_or_else(|error| panic!("{error}")).iter().map(|row| (row.get(0), row.get(1))).collect()
}

async fn create_log(url: &str) {
    let client = pool(url).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    let create = client.batch_execute("CREATE TABLE fenced_log (generation BIGINT NOT NULL, key TEXT NOT NULL)");
    create.await.unwrap_or_else(|error| panic!("{error}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_contenders_one_leader_at_any_time() {
    let Some(pg) = database("three_contenders_one_leader_at_any_time").await else { return };
    let url = pg.url();
    let (a, b, c) = (contender(&url, "a"), contender(&url, "b"), contender(&url, "c"));
    let handles = [&a, &b, &c];
    let elected = until("a leader", LEASE * 2, || leader(&handles).is_some()).await;
    let (index, generation) = leader(&handles).unwrap_or_else(|| panic!("no leader"));
    println!("elected in {elected:?}: contender {index}, generation {generation}");
    // Two leases' worth of samples, 20 ms apart: always exactly the same leader, matching the row.
    for _ in 0..(LEASE * 2).as_millis() / 20 {
        assert_eq!(leader(&handles), Some((index, generation)), "the leader changed or vanished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let row = state(&url).await;
    assert_eq!((row.holder.as_str(), row.generation), (["a", "b", "c"][index], generation));
    assert!(row.remaining > LEASE / 2, "renewed every lease/3: {:?} left", row.remaining);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_is_replaced_within_a_lease_and_fenced() {
    let Some(pg) = database("a_crashed_leader_is_replaced_within_a_lease_and_fenced").await else { return };
    let url = pg.url();
    create_log(&url).await;
    let a = contender(&url, "a");
    until("a leads", LEASE, || a.is_leader()).await;
    let elector_b = Elector::new(Lease::new("b", LEASE), pool(&url));
    let b = elector_b.spawn();
    let old = a.generation().unwrap_or_else(|| panic!("a leads"));
    log(&url, "a", old, "1-a-before").await.unwrap_or_else(|error| panic!("a's fenced write: {error}"));

    // A crash: the task ends without releasing; the row runs out by itself.
    let renewed_until = state(&url).await.remaining;
    let crashed = Instant::now();
    drop(a);
    let takeover = until("b takes over", LEASE * 2, || b.is_leader()).await;
    println!("takeover {takeover:?} after the crash (the row had {renewed_until:?} left)");
    // Just after the row runs out (the follower sleeps until then), with room for a loaded machine.
    assert!(takeover < renewed_until + LEASE / 3, "{takeover:?} for {renewed_until:?} left");
    assert!(crashed.elapsed() < LEASE + LEASE / 3);
    assert_eq!(b.generation(), Some(old + 1), "a takeover bumps the generation");

    // The old leader, paused rather than dead, wakes up and writes under its generation: refused.
    let refused = log(&url, "a", old, "2-a-after").await;
    match refused {
        Err(FencedError::Fenced { generation, current, holder }) => {
            assert_eq!((generation, current, holder.as_deref()), (old, Some(old + 1), Some("b")));
        }
        other => panic!("the old generation's write must be fenced, got {other:?}"),
    }
    // Even claiming b's name does not help with a's generation.
    assert!(log(&url, "b", old, "3-b-old").await.is_err_and(|error| error.is_fenced()));
    // The leader's own write, through its elector, under the generation it publishes.
    let now = b.generation().unwrap_or_else(|| panic!("b leads"));
    let write = elector_b.fenced(now, move |tx| {
        Box::pin(async move {
            let generation = i64::try_from(now).unwrap_or(i64::MAX);
            tx.execute("INSERT INTO fenced_log (generation, key) VALUES ($1, '4-b')", &[&generation]).await
        })
    });
    write.await.unwrap_or_else(|error| panic!("b's fenced write: {error}"));
    let expected = [(old, "1-a-before"), (old + 1, "4-b")].map(|(g, k)| (i64::try_from(g).unwrap_or(0), k.into()));
    assert_eq!(logged(&url).await, expected);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_hands_over_at_once() {
    let Some(pg) = database("a_clean_stop_hands_over_at_once").await else { return };
    let url = pg.url();
    let a = contender(&url, "a");
    until("a leads", LEASE, || a.is_leader()).await;
    let b = contender(&url, "b");
    let old = a.generation().unwrap_or_else(|| panic!("a leads"));
    tokio::time::sleep(LEASE / 2).await;
    assert!(!b.is_leader());

    let stopping = Instant::now();
    bounded("a stops", LEASE, a.stop()).await;
    let stopped = stopping.elapsed();
    let handover = until("b takes over", LEASE, || b.is_leader()).await + stopped;
    println!("clean handover {handover:?} (stop {stopped:?}; a crash would take up to {LEASE:?})");
    // b notices at its next poll, at most lease/3 later, instead of waiting for the lease to run out.
    assert!(handover < LEASE / 2, "{handover:?}");
    assert_eq!(b.generation(), Some(old + 1));
    b.stop().await;
    let row = state(&url).await;
    assert_eq!((row.holder.as_str(), row.remaining), ("b", Duration::ZERO), "released on stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_steps_the_leader_down_and_a_restart_brings_one_back() {
    let test = "a_database_crash_steps_the_leader_down_and_a_restart_brings_one_back";
    let Some(pg) = database(test).await else { return };
    let url = pg.url();
    let (a, b) = (contender(&url, "a"), contender(&url, "b"));
    until("a leader", LEASE * 2, || leader(&[&a, &b]).is_some()).await;
    let (_, old) = leader(&[&a, &b]).unwrap_or_else(|| panic!("a leader"));

    let crashed = Instant::now();
    blocking(|| pg.stop_immediate());
    until("the leader steps down", LEASE, || leader(&[&a, &b]).is_none()).await;
    let step_down = crashed.elapsed();
    println!("stepped down {step_down:?} after the database crashed (lease {LEASE:?})");
    assert!(step_down < LEASE - LEASE / 5, "{step_down:?}");

    // Nobody leads while the database is down.
    for _ in 0..50 {
        assert_eq!(leader(&[&a, &b]), None);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restarted = Instant::now();
    blocking(|| pg.start());
    let regained = until("a leader again", LEASE * 3, || leader(&[&a, &b]).is_some()).await;
    let (_, new) = leader(&[&a, &b]).unwrap_or_else(|| panic!("a leader"));
    println!("leader again {:?} after the restart, generation {old} -> {new}", restarted.elapsed().max(regained));
    assert!(new > old, "stepping down ends a generation: {old} -> {new}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_a_hanging_database_steps_down_before_its_lease_ends() {
    let test = "a_leader_cut_off_from_a_hanging_database_steps_down_before_its_lease_ends";
    let Some(pg) = database(test).await else { return };
    let proxy = Proxy::start(pg.port()).await;
    // a talks to the database through the proxy, b directly.
    let a = contender(&proxy.url(), "a");
    until("a leads", LEASE, || a.is_leader()).await;
    let b = contender(&pg.url(), "b");
    let old = a.generation().unwrap_or_else(|| panic!("a leads"));

    // The path to the database goes silent: a's renewal hangs (no error, no closed socket).
    proxy.freeze();
    let frozen = Instant::now();
    let mut stepped_down = None;
    let mut took_over = None;
    for _ in 0..(LEASE * 3).as_millis() / 5 {
        let (leads_a, leads_b) = (a.is_leader(), b.is_leader());
        assert!(!(leads_a && leads_b), "two leaders at {:?}", frozen.elapsed());
        if !leads_a && stepped_down.is_none() {
            stepped_down = Some(frozen.elapsed());
        }
        if leads_b {
            took_over = Some(frozen.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stepped_down = stepped_down.unwrap_or_else(|| panic!("a never stepped down"));
    let took_over = took_over.unwrap_or_else(|| panic!("b never took over"));
    println!("database hung: a stepped down after {stepped_down:?}, b took over after {took_over:?}");
    // Its local deadline was lease - margin after a renewal sent before the freeze: before the row's expiry.
    assert!(stepped_down < LEASE, "a must give up before its lease ends: {stepped_down:?}");
    assert!(stepped_down < took_over, "a stepped down before b took over");
    assert_eq!(b.generation(), Some(old + 1));

    // The path comes back: a stays a follower under b's lease.
    proxy.thaw();
    for _ in 0..(LEASE / 20).as_millis() {
        assert_eq!(leader(&[&a, &b]), Some((1, old + 1)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.stop().await;
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_renews_keeps_takes_over_bumps() {
    let Some(pg) = database("the_statement_renews_keeps_takes_over_bumps").await else { return };
    let short = Duration::from_millis(300);
    let (a, b) = (Lease::new("a", short), Lease::new("b", short));
    let mut client = pool(&pg.url()).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    let mut take = async |lease: &Lease, held: Option<u64>| {
        let sent = Instant::now();
        let got = lease.try_acquire_or_renew(&mut client, held).await.unwrap_or_else(|error| panic!("{error}"));
        if let Some(leadership) = got {
            // The local deadline: from before the statement, lease minus margin.
            assert!(leadership.valid_until <= sent + short - short / 5 + Duration::from_millis(50));
            assert!(leadership.valid_until >= sent + short - short / 5);
        }
        got.map(|leadership| leadership.generation)
    };
    assert_eq!(take(&a, None).await, Some(1), "inserted");
    assert_eq!(take(&a, Some(1)).await, Some(1), "renewed: same generation");
    assert_eq!(take(&b, None).await, None, "held by a");
    assert_eq!(take(&a, None).await, None, "a restarted (holds nothing) waits like anyone else");
    assert_eq!(take(&a, Some(7)).await, None, "a generation a does not hold");
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    assert_eq!(take(&a, Some(1)).await, Some(2), "ours again after it lapsed: a new generation");
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    assert_eq!(take(&b, None).await, Some(3), "taken over");
    let client = pool(&pg.url()).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    assert!(!a.release(&client, 3).await.unwrap_or_else(|error| panic!("{error}")), "not a's to release");
    assert!(b.release(&client, 3).await.unwrap_or_else(|error| panic!("{error}")));
    let mut client = pool(&pg.url()).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    let got = a.try_acquire_or_renew(&mut client, None).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(got.map(|leadership| leadership.generation), Some(4), "released: taken at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_writes_refuse_an_expired_lease_and_order_a_takeover_after_them() {
    let test = "fenced_writes_refuse_an_expired_lease_and_order_a_takeover_after_them";
    let Some(pg) = database(test).await else { return };
    let url = pg.url();
    create_log(&url).await;
    let short = Duration::from_millis(500);
    let (a, b) = (Lease::new("a", short), Lease::new("b", short));
    let mut client = pool(&url).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    let first = a.try_acquire_or_renew(&mut client, None).await.unwrap_or_else(|error| panic!("{error}"));
    let generation = first.unwrap_or_else(|| panic!("a leads")).generation;

    // A write in flight holds the lease row: b's takeover, once the lease ran out, waits for it to commit.
    let pool_a = pool(&url);
    let (started, wait) = tokio::sync::oneshot::channel();
    let writer = a.clone();
    let slow = tokio::spawn(async move {
        let write = writer.fenced(&pool_a, generation, move |tx| {
            Box::pin(async move {
                let _ = started.send(());
                tokio::time::sleep(short + Duration::from_millis(300)).await;
                tx.execute("INSERT INTO fenced_log (generation, key) VALUES ($1, 'slow')", &[&1i64]).await
            })
        });
        write.await.map_err(|error| error.to_string())
    });
    bounded("the write starts", Duration::from_secs(5), wait).await.unwrap_or_else(|error| panic!("{error}"));
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    let mut client_b = pool(&url).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    let taking = Instant::now();
    // b's statement timeout (lease/3) may cancel it while it waits for the row: then b simply retries.
    let mut taken = None;
    for _ in 0..20 {
        if let Ok(Some(leadership)) = b.try_acquire_or_renew(&mut client_b, None).await {
            taken = Some(leadership.generation);
            break;
        }
    }
    let waited = taking.elapsed();
    let done = bounded("the slow write", Duration::from_secs(5), slow).await.unwrap_or_else(|e| panic!("{e}"));
    done.unwrap_or_else(|error| panic!("the write that started under a valid lease commits: {error}"));
    assert_eq!(taken, Some(generation + 1));
    println!("takeover waited {waited:?} for the fenced write in flight");
    assert!(waited >= Duration::from_millis(150), "{waited:?}: the takeover did not wait for the write");

    // a's lease is gone: a new write under its generation is refused.
    assert!(matches!(log(&url, "a", generation, "late").await, Err(FencedError::Fenced { .. })));
    // b's lease runs out unrenewed: b's own write is refused as expired.
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    let expired = Lease::new("b", short);
    let refused = expired
        .fenced(&pool(&url), generation + 1, |tx| Box::pin(async move { tx.execute("SELECT 1", &[]).await }))
        .await;
    assert!(matches!(refused, Err(FencedError::Expired { generation: g }) if g == generation + 1), "{refused:?}");
    assert_eq!(logged(&url).await, vec![(1, "slow".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_over_tls() {
    let Some(pg) = database("the_lease_over_tls").await else { return };
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("tempdir: {error}"));
    let server = probenet_scheduler::pki::auto(dir.path(), &["127.0.0.1".to_string()])
        .unwrap_or_else(|error| panic!("pki: {error}"));
    blocking(|| pg.enable_tls(&dir.path().join(pki::SERVER_CERT), &dir.path().join(pki::SERVER_KEY)));

    let ca = server.ca_pem.unwrap_or_else(|| panic!("a CA"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap_or_else(|error| panic!("ca: {error}"))).unwrap_or_else(|error| panic!("{error}"));
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|error| panic!("{error}"))
        .with_root_certificates(roots)
        .with_no_client_auth();
    let url = format!("{}?sslmode=require", pg.url());
    let pool = ha::connect(&url, ha::Tls::Rustls(Box::new(tls)), 2).unwrap_or_else(|error| panic!("{error}"));
    let client = pool.get().await.unwrap_or_else(|error| panic!("connect over TLS: {error}"));
    let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await;
    assert!(row.unwrap_or_else(|error| panic!("{error}")).get::<_, bool>(0), "the connection is encrypted");
    drop(client);
    let handle = Elector::new(Lease::new("tls", LEASE), pool).spawn();
    until("leads over TLS", LEASE, || handle.is_leader()).await;
    handle.stop().await;

    // A client that does not trust the server's CA is refused.
    let untrusting =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|error| panic!("{error}"))
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
    let pool = ha::connect(&url, ha::Tls::Rustls(Box::new(untrusting)), 1).unwrap_or_else(|e| panic!("{e}"));
    assert!(pool.get().await.is_err(), "an unknown CA must be refused");
}
