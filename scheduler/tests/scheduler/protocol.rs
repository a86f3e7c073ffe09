//! The prober protocol under /v1: registration, heartbeats, assignments and their long-poll, leases,
//! deregistration, result ingest, and who may do what.

use std::time::{Duration, Instant};

use probenet_checks::State;
use reqwest::StatusCode;
use serde_json::json;

use crate::util::{CONFIG, Net, eventually, now_ms, on_grid, result};

fn pair(check: &str, region: &str) -> (String, String) {
    (check.to_owned(), region.to_owned())
}

#[tokio::test]
async fn a_prober_registers_heartbeats_and_gets_its_region_s_pairs() {
    let net = Net::start(CONFIG).await;
    let registered = net.register("p1", "eu").await;
    assert_eq!(registered.lease_seconds, 15.0);
    assert_eq!(registered.heartbeat_seconds, 5.0);
    assert_eq!(net.heartbeat("p1", "eu").await, StatusCode::OK);

    let assignments = net.assignments("p1", "eu", 0, 0).await;
    assert!(assignments.generation > 1);
    // The eu view of the config: every check runs in eu here, so all three.
    assert_eq!(assignments.config.len(), 1);
    let config = probenet_checks::config::load_sources(&assignments.config).unwrap();
    let names: Vec<&str> = config.checks.iter().map(|check| check.name.as_str()).collect();
    assert_eq!(names, ["home", "api", "eu-only"]);
    assert_eq!(assignments.config_hash.len(), 16);
    let mut pairs: Vec<_> = assignments.assigned.iter().map(|a| (a.check.clone(), a.region.clone())).collect();
    pairs.sort();
    assert_eq!(pairs, [pair("api", "eu"), pair("eu-only", "eu"), pair("home", "eu")]);
    // Offsets are the grid offsets of the wire module.
    for assignment in &assignments.assigned {
        let interval = if assignment.check == "api" { 10_000 } else { 30_000 };
        assert_eq!(assignment.offset_ms, probenet_checks::wire::offset_ms(&assignment.check, "eu", interval));
    }
    // Nobody runs the us pairs yet.
    let listed = net.admin_get("/api/v1/assignments?region=us").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert!(listed.as_array().unwrap().iter().all(|entry| entry["prober"].is_null()));
    net.stop().await;
}

#[tokio::test]
async fn tokens_are_bound_to_their_region_and_errors_are_json_without_secrets() {
    let net = Net::start(CONFIG).await;
    let register = |name: &str, region: &str, protocol: u32| json!({ "name": name, "region": region, "version": "0.1.0", "protocol": protocol });
    // Another region's token.
    let (status, body) = net.call("POST", Some(&net.us), "/v1/register", Some(register("p1", "eu", 1))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].as_str().unwrap().contains("region"), "{body}");
    // No token, an unknown token, an admin token.
    let (status, body) = net.call("POST", None, "/v1/register", Some(register("p1", "eu", 1))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let wrong = format!("{}x", net.eu);
    let (status, body) = net.call("POST", Some(&wrong), "/v1/register", Some(register("p1", "eu", 1))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.to_string().contains(&wrong[4..20]), "{body}");
    let (status, _) = net.call("POST", Some(&net.admin), "/v1/register", Some(register("p1", "eu", 1))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A protocol version it does not speak.
    for protocol in [0, 2, 99] {
        let (status, body) =
            net.call("POST", Some(&net.eu), "/v1/register", Some(register("p1", "eu", protocol))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().contains("protocol"), "{body}");
    }
    // A body that is not a Register.
    let (status, body) = net.call("POST", Some(&net.eu), "/v1/register", Some(json!({"name": 3}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Names are per region: us may have its own p1, and the us token never reaches eu's p1.
    net.register("p1", "eu").await;
    let (status, _) = net.call("GET", Some(&net.us), "/v1/assignments?prober=p1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = net.call("POST", Some(&net.us), "/v1/register", Some(register("p1", "us", 1))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = net.call("GET", Some(&net.us), "/v1/assignments?prober=p1", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["assigned"].as_array().unwrap().iter().all(|a| a["region"] == "us"), "{body}");
    // Another eu token cannot take eu's p1 over, renew or remove it.
    let other = net.new_token("eu");
    let (status, body) = net.call("POST", Some(&other), "/v1/register", Some(register("p1", "eu", 1))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let beat = json!({"name": "p1", "region": "eu"});
    let (status, _) = net.call("POST", Some(&other), "/v1/heartbeat", Some(beat.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = net.call("POST", Some(&other), "/v1/deregister", Some(beat)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(net.admin_get("/api/v1/probers").await.as_array().map(Vec::len), Some(2));
    let (status, _) = net.call("GET", Some(&net.eu), "/v1/assignments?prober=nobody", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(net.heartbeat("nobody", "eu").await, StatusCode::NOT_FOUND);
    // Region tokens cannot read the admin API.
    let (status, _) = net.call("GET", Some(&net.eu), "/api/v1/probers", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = net.call("GET", None, "/api/v1/results", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The tokens file holds hashes only.
    let stored = std::fs::read_to_string(net.dir.path().join("data/tokens.json")).unwrap();
    for token in [&net.eu, &net.us, &net.admin] {
        assert!(!stored.contains(&token[4..]), "a token is stored in plain text");
    }
    net.stop().await;
}

#[tokio::test]
async fn a_long_poll_returns_when_a_second_prober_registers_and_after_the_wait_otherwise() {
    let net = std::sync::Arc::new(Net::start(CONFIG).await);
    net.register("p1", "eu").await;
    let first = net.assignments("p1", "eu", 0, 0).await;
    assert_eq!(first.assigned.len(), 3);

    let poll = {
        let net = net.clone();
        let generation = first.generation;
        tokio::spawn(async move {
            let start = Instant::now();
            let answer = net.assignments("p1", "eu", generation, 30).await;
            (answer, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the long-poll returned before anything changed");
    net.register("p2", "eu").await;
    let (after, waited) = poll.await.unwrap();
    assert!(waited < Duration::from_secs(20), "the long-poll took {waited:?}");
    assert!(after.generation > first.generation);

    // The two probers now share eu's pairs: neither holds a pair twice or misses one. (Three pairs over
    // two probers: p2 may also get none; rendezvous decides, deterministically.)
    let (p1, p2) = (net.pairs_of("p1", "eu").await, net.pairs_of("p2", "eu").await);
    let mut all: Vec<_> = p1.iter().chain(&p2).cloned().collect();
    all.sort();
    assert_eq!(all, [pair("api", "eu"), pair("eu-only", "eu"), pair("home", "eu")]);
    assert_eq!(after.assigned.len(), p1.len());

    // Nothing changes: the poll is answered after wait_seconds, with the same generation.
    let start = Instant::now();
    let same = net.assignments("p1", "eu", after.generation, 1).await;
    assert!(start.elapsed() >= Duration::from_millis(950), "{:?}", start.elapsed());
    assert_eq!(same.generation, after.generation);
    if let Ok(net) = std::sync::Arc::try_unwrap(net) {
        net.stop().await;
    }
}

/// Many probers so that a second one certainly takes pairs: ten checks in eu.
fn ten_checks() -> String {
    let mut config = String::from("regions: {eu: {}, us: {}}\ndefaults: {interval: 30s, regions: [eu]}\nchecks:\n");
    for i in 0..10 {
        config.push_str(&format!("  - {{name: c{i}, tcp: {{target: '127.0.0.1:9'}}}}\n"));
    }
    config
}

#[tokio::test]
async fn a_second_prober_takes_a_share_and_deregistering_hands_it_back_at_once() {
    let net = Net::start(&ten_checks()).await;
    net.register("p1", "eu").await;
    assert_eq!(net.pairs_of("p1", "eu").await.len(), 10);
    for name in ["p2", "p3"] {
        net.register(name, "eu").await;
    }
    let shares: Vec<usize> = [net.pairs_of("p1", "eu").await.len(), net.pairs_of("p2", "eu").await.len()].into();
    let p3 = net.pairs_of("p3", "eu").await.len();
    assert_eq!(shares.iter().sum::<usize>() + p3, 10);
    assert!(shares[0] < 10, "p1 kept everything: {shares:?}");

    assert_eq!(net.deregister("p2", "eu").await, StatusCode::NO_CONTENT);
    assert_eq!(net.deregister("p3", "eu").await, StatusCode::NO_CONTENT);
    // At once: no lease to wait for.
    assert_eq!(net.pairs_of("p1", "eu").await.len(), 10);
    let probers = net.admin_get("/api/v1/probers").await;
    assert_eq!(probers.as_array().map(Vec::len), Some(1));
    assert_eq!(probers[0]["assigned"], 10);
    // Deregistering again is harmless.
    assert_eq!(net.deregister("p2", "eu").await, StatusCode::NO_CONTENT);
    net.stop().await;
}

#[tokio::test]
async fn a_prober_whose_lease_expires_loses_its_pairs() {
    let config = ten_checks().replace("checks:\n", "scheduling: {lease: 3s}\nchecks:\n");
    let net = Net::start(&config).await;
    assert_eq!(net.register("alive", "eu").await.lease_seconds, 3.0);
    net.register("silent", "eu").await;
    let silent_share = net.pairs_of("silent", "eu").await.len();
    assert!(silent_share > 0 && silent_share < 10, "{silent_share}");
    let start = Instant::now();
    // Keep "alive" alive; "silent" stops heartbeating.
    let expired = eventually(Duration::from_secs(10), || async {
        assert_eq!(net.heartbeat("alive", "eu").await, StatusCode::OK);
        let probers = net.admin_get("/api/v1/probers").await;
        (probers.as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await;
    let _: () = expired;
    assert!(start.elapsed() >= Duration::from_millis(2_500), "expired early: {:?}", start.elapsed());
    assert_eq!(net.pairs_of("alive", "eu").await.len(), 10);
    assert_eq!(net.heartbeat("silent", "eu").await, StatusCode::NOT_FOUND);
    net.stop().await;
}

#[tokio::test]
async fn results_are_ingested_once_per_run_id() {
    let net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    let first = on_grid("home", "eu", 30, now_ms() - 600_000);
    let batch: Vec<_> = (0..5).map(|i| result("home", "eu", first + i * 30_000, State::Up)).collect();
    let (status, ack) = net.post_results("eu", &batch).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack, json!({"accepted": 5, "duplicates": 0}));
    // A replay of the same batch (a prober's spool after an outage) is acknowledged, not counted twice.
    let (_, ack) = net.post_results("eu", &batch).await;
    assert_eq!(ack, json!({"accepted": 0, "duplicates": 5}));
    let stored = net.admin_get("/api/v1/results?check=home&region=eu").await;
    let planned: Vec<i64> = stored.as_array().unwrap().iter().map(|r| r["planned_at_ms"].as_i64().unwrap()).collect();
    assert_eq!(planned, (0..5).rev().map(|i| first + i * 30_000).collect::<Vec<_>>());

    // Results of another region with this token are refused whole; those of unknown checks are dropped.
    let (status, _) = net.post_results("eu", &[result("home", "us", first, State::Up)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, ack) = net.post_results("eu", &[result("gone", "eu", first, State::Up)]).await;
    assert_eq!((status, ack), (StatusCode::OK, json!({"accepted": 0, "duplicates": 0})));
    let (status, _) = net.call("POST", None, "/v1/results", Some(json!({"prober": "p1", "results": []}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let metrics = net.metrics().await;
    assert!(metrics.contains("\nprobenet_scheduler_results_ingested_total 5\n"), "{metrics}");
    assert!(metrics.contains("\nprobenet_scheduler_results_duplicate_total 5\n"), "{metrics}");
    // The per-check series are not on the scheduler's `/metrics` unless asked for: they grow with the checks.
    assert!(!metrics.contains("probe_success{"), "{metrics}");
    net.stop().await;

    let net = Net::start_per_check_metrics(CONFIG).await;
    net.register("p1", "eu").await;
    assert_eq!(net.post_results("eu", &batch).await.0, StatusCode::OK);
    let metrics = net.metrics().await;
    assert!(metrics.contains(r#"probe_success{job="home",instance="#), "{metrics}");
    net.stop().await;
}

#[tokio::test]
async fn stopping_answers_held_long_polls_at_once() {
    let net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    let generation = net.assignments("p1", "eu", 0, 0).await.generation;
    let poll = {
        let client = net.client.clone();
        let url = format!("{}/v1/assignments?prober=p1&generation={generation}&wait_seconds=60", net.base);
        let token = net.eu.clone();
        tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.map(|r| r.status()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished());
    let start = Instant::now();
    net.stop().await;
    let answered = poll.await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(4), "stopping took {:?}", start.elapsed());
    assert_eq!(answered.ok(), Some(StatusCode::OK));
}

#[tokio::test]
async fn assignments_say_where_a_pair_resumes_even_after_a_restart() {
    let mut net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    let resume = |assignments: &probenet_checks::wire::Assignments, check: &str| {
        assignments.assigned.iter().find(|a| a.check == check).and_then(|a| a.resume_after_ms)
    };
    let assignments = net.assignments("p1", "eu", 0, 0).await;
    assert_eq!(resume(&assignments, "home"), None, "no result stored yet");

    let planned = on_grid("home", "eu", 30, now_ms() - 120_000);
    let results = [result("home", "eu", planned + 30_000, State::Up), result("home", "eu", planned, State::Up)];
    assert_eq!(net.post_results("eu", &results).await.0, StatusCode::OK);
    let assignments = net.assignments("p1", "eu", 0, 0).await;
    assert_eq!(resume(&assignments, "home"), Some(planned + 30_000), "the latest planned time, not the last sent");
    assert_eq!(resume(&assignments, "api"), None);

    // A restarted scheduler reads it back from its store.
    net.restart().await;
    net.register("p1", "eu").await;
    let assignments = net.assignments("p1", "eu", 0, 0).await;
    assert_eq!(resume(&assignments, "home"), Some(planned + 30_000));
    net.stop().await;
}

#[tokio::test]
async fn a_prober_whose_results_arrive_late_is_flagged_and_its_reported_backlog_shows() {
    let net = Net::start(&format!("{CONFIG}dashboard: {{token: read-token-123456}}\n")).await;
    net.register("p1", "eu").await;
    let value = |text: &str, series: &str| -> Option<f64> {
        text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    };
    let labels = r#"{prober="p1",region="eu"}"#;

    // A result that ran a moment ago: on time.
    let mut fresh = result("home", "eu", on_grid("home", "eu", 30, now_ms()), State::Up);
    fresh.started_at_ms = now_ms() - 100;
    assert_eq!(net.post_results("eu", &[fresh]).await.0, StatusCode::OK);
    let metrics = net.metrics().await;
    assert_eq!(value(&metrics, &format!("probenet_scheduler_prober_late{labels}")), Some(0.0), "{metrics}");
    let delay = value(&metrics, &format!("probenet_scheduler_prober_result_delay_seconds{labels}")).unwrap();
    assert!((0.0..5.0).contains(&delay), "{delay}");
    // Before its first report, no backlog series.
    assert!(!metrics.contains("probenet_scheduler_prober_results_pending{"), "{metrics}");

    // A heartbeat tells its backlog, drops, skips and lateness.
    let report = json!({"results_pending": 12, "spool_bytes": 4096, "results_dropped_total": 3,
                        "runs_skipped_total": 2, "start_lateness_p99_ms": 250.0});
    let beat = json!({"name": "p1", "region": "eu", "report": report});
    let (status, _) = net.call("POST", Some(net.token("eu")), "/v1/heartbeat", Some(beat)).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = net.metrics().await;
    for (series, want) in [
        ("probenet_scheduler_prober_results_pending", 12.0),
        ("probenet_scheduler_prober_results_dropped_total", 3.0),
        ("probenet_scheduler_prober_runs_skipped_total", 2.0),
        ("probenet_scheduler_prober_start_lateness_p99_seconds", 0.25),
    ] {
        assert_eq!(value(&metrics, &format!("{series}{labels}")), Some(want), "{series}: {metrics}");
    }

    // Its spool replayed after an outage: runs of five minutes ago arrive now, and it is late.
    let old = on_grid("home", "eu", 30, now_ms() - 300_000);
    assert_eq!(net.post_results("eu", &[result("home", "eu", old, State::Up)]).await.0, StatusCode::OK);
    let metrics = net.metrics().await;
    assert_eq!(value(&metrics, &format!("probenet_scheduler_prober_late{labels}")), Some(1.0), "{metrics}");
    let delay = value(&metrics, &format!("probenet_scheduler_prober_result_delay_seconds{labels}")).unwrap();
    assert!(delay > 290.0, "{delay}");
    // The dashboard's Probers page says so, with the reported figures.
    let (status, page) = net.call("GET", Some("read-token-123456"), "/api/ui/probers", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let prober = &page["regions"][0]["probers"][0];
    assert_eq!(prober["name"], "p1", "{page}");
    assert!(prober["late"].as_str().is_some_and(|why| why.starts_with("results arrive up to 3")), "{prober}");
    assert_eq!((prober["results_pending"].as_u64(), prober["results_dropped"].as_u64()), (Some(12), Some(3)));
    net.stop().await;
}

#[tokio::test]
async fn a_prober_whose_long_poll_breaks_loses_its_pairs_in_seconds_unless_it_polls_again() {
    let net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    net.register("p2", "eu").await;
    let all = net.pairs_of("p1", "eu").await.len() + net.pairs_of("p2", "eu").await.len();
    assert!(!net.pairs_of("p1", "eu").await.is_empty());

    // p2's poll breaks (a blip) but it polls again at once: it keeps its lease and its pairs.
    net.poll_then_hang_up("p2", "eu", Duration::from_millis(300)).await;
    assert!(net.assignments("p2", "eu", 0, 0).await.assigned.len() < all);
    // p1's poll breaks and nothing more is heard of it (a SIGKILL): its pairs move within the 3 s grace,
    // not after the lease (15 s).
    let broken = Instant::now();
    net.poll_then_hang_up("p1", "eu", Duration::from_millis(300)).await;
    eventually(Duration::from_secs(6), || async { (net.pairs_of("p2", "eu").await.len() == all).then_some(()) }).await;
    let moved = broken.elapsed();
    assert!(moved >= Duration::from_millis(2_500), "not before the grace: {moved:?}");
    assert!(moved < Duration::from_secs(6), "{moved:?}");
    // p2, heard from since, is still live after the grace.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let probers = net.admin_get("/api/v1/probers").await;
    let names: Vec<&str> = probers.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["p2"], "{probers}");
    net.stop().await;
}

#[tokio::test]
async fn a_pair_handed_over_resumes_after_the_handover_but_after_its_last_result_when_its_holder_died() {
    let net = Net::start(&ten_checks()).await;
    net.register("p1", "eu").await;
    // p1 ran every pair of eu a minute ago.
    let pairs = net.pairs_of("p1", "eu").await;
    let ran: Vec<_> = pairs
        .iter()
        .map(|(check, region)| result(check, region, on_grid(check, region, 30, now_ms() - 60_000), State::Up))
        .collect();
    assert_eq!(net.post_results("eu", &ran).await.0, StatusCode::OK);
    let last = |check: &str| ran.iter().find(|result| result.check == check).map(|result| result.planned_at_ms);

    // p2 joins while p1 lives: the pairs it takes resume after the handover, not after p1's last stored run
    // (p1 ran them up to the handover; its latest results may still be in its batch).
    let joined = now_ms();
    net.register("p2", "eu").await;
    let taken = net.assignments("p2", "eu", 0, 0).await.assigned;
    assert!(!taken.is_empty() && taken.len() < pairs.len(), "p2 takes a share: {taken:?}");
    for assignment in &taken {
        let resume = assignment.resume_after_ms.unwrap();
        assert!(
            resume >= joined - 1_000,
            "{assignment:?}: resumes after the handover, not at {:?}",
            last(&assignment.check)
        );
    }

    // p2 dies (its long-poll breaks and it is not heard from again): the pairs go back to p1, which resumes
    // after the last stored run, catching up what p2 may not have run.
    net.poll_then_hang_up("p2", "eu", Duration::from_millis(300)).await;
    eventually(Duration::from_secs(6), || async {
        (net.pairs_of("p1", "eu").await.len() == pairs.len()).then_some(())
    })
    .await;
    let back = net.assignments("p1", "eu", 0, 0).await.assigned;
    for assignment in back.iter().filter(|assignment| taken.iter().any(|t| t.check == assignment.check)) {
        assert_eq!(assignment.resume_after_ms, last(&assignment.check), "{assignment:?}");
    }
    net.stop().await;
}
