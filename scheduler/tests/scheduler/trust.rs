//! Trust boundaries, tried as an attacker would: a region token forging history, an impostor, a flood of
//! registrations, oversized artifacts, stalled and idle connections, and a connection flood.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use probenet_checks::State;
use probenet_checks::outcome::Artifact;
use probenet_scheduler::server::Limits;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{CONFIG, Net, now_ms, on_grid, result, rss};

/// The prober that holds (check, eu) in the admin API's listing.
async fn owner(net: &Net, check: &str) -> String {
    let listed = net.admin_get(&format!("/api/v1/assignments?check={check}&region=eu")).await;
    listed[0]["prober"].as_str().unwrap_or_else(|| panic!("nobody holds {check}: {listed}")).to_owned()
}

/// Posts results as `prober` with `token`.
async fn post(
    net: &Net,
    token: &str,
    prober: &str,
    results: &[probenet_checks::wire::RunResult],
) -> (StatusCode, Value) {
    let batch = json!({ "prober": prober, "results": results });
    net.call("POST", Some(token), "/v1/results", Some(batch)).await
}

fn as_prober(mut result: probenet_checks::wire::RunResult, prober: &str) -> probenet_checks::wire::RunResult {
    prober.clone_into(&mut result.prober);
    result
}

async fn state_of(net: &Net, check: &str) -> String {
    let checks = net.admin_get("/api/v1/checks").await;
    let entry = checks.as_array().unwrap().iter().find(|c| c["check"] == check && c["region"] == "eu").unwrap();
    entry["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn forged_foreign_and_impostor_results_are_refused_and_the_true_state_stays() {
    let mut net = Net::start(CONFIG).await;
    // Two probers of eu, each with its own token; the work is split between them.
    let second = net.new_token("eu");
    net.register("p1", "eu").await;
    let register = json!({"name": "p2", "region": "eu", "version": "0.2.0", "protocol": 1});
    let (status, body) = net.call("POST", Some(&second), "/v1/register", Some(register)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let _ = net.assignments("p1", "eu", 0, 0).await;
    let (home_owner, home_token) = match owner(&net, "home").await.as_str() {
        "p1" => ("p1", net.eu.clone()),
        _ => ("p2", second.clone()),
    };

    // The truth: home is down in eu.
    let now = now_ms();
    let truth = as_prober(result("home", "eu", on_grid("home", "eu", 30, now), State::Down), home_owner);
    let (status, ack) = post(&net, &home_token, home_owner, std::slice::from_ref(&truth)).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(state_of(&net, "home").await, "down");

    // The owner's own token forging the future, the far past, an off-grid time, another prober's name.
    let year_2100 = on_grid("home", "eu", 30, 4_102_444_800_000);
    let forged = [
        (year_2100, "future"),
        (i64::MAX, "future"),
        (on_grid("home", "eu", 30, now - 8 * 86_400_000), "too_old"),
        (truth.planned_at_ms + 30_001, "off_schedule"),
    ];
    for (planned, reason) in forged {
        let fake = as_prober(result("home", "eu", planned, State::Up), home_owner);
        let (status, body) = post(&net, &home_token, home_owner, &[fake]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{planned}: {body}");
        assert_eq!(body["refused"], 1, "{body}");
        assert_eq!(body["reasons"][0]["reason"], reason, "{body}");
        assert!(body["error"].as_str().unwrap().contains("refused"), "{body}");
    }
    let named_other = as_prober(result("home", "eu", truth.planned_at_ms + 30_000, State::Up), "someone-else");
    let (status, body) = post(&net, &home_token, home_owner, &[named_other]).await;
    let refused = |status, body: &Value| (status, body["reasons"][0]["reason"].as_str().map(str::to_owned));
    assert_eq!(refused(status, &body), (StatusCode::UNPROCESSABLE_ENTITY, Some("not_assigned".to_owned())));
    let named_nobody = as_prober(result("home", "eu", truth.planned_at_ms + 30_000, State::Up), "");
    let (status, body) = post(&net, &home_token, home_owner, &[named_nobody]).await;
    assert_eq!(refused(status, &body), (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_prober".to_owned())));

    // The other prober reporting the pair it does not hold.
    let (other, other_token) = if home_owner == "p1" { ("p2", second.clone()) } else { ("p1", net.eu.clone()) };
    let foreign = as_prober(result("home", "eu", truth.planned_at_ms + 30_000, State::Up), other);
    let (status, body) = post(&net, &other_token, other, std::slice::from_ref(&foreign)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["reasons"][0]["reason"], "not_assigned", "{body}");
    // ...or sending in the owner's name: the owner was registered with another token.
    let (status, body) = post(&net, &other_token, home_owner, &[as_prober(foreign, home_owner)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // ...or as a prober nobody registered.
    let (status, _) = post(&net, &other_token, "ghost", &[as_prober(truth.clone(), "ghost")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A mixed batch: the true result is stored, the forged one refused, and the answer says which.
    let next = as_prober(result("home", "eu", truth.planned_at_ms + 30_000, State::Down), home_owner);
    let fake = as_prober(result("home", "eu", year_2100, State::Up), home_owner);
    let (status, body) = post(&net, &home_token, home_owner, &[next, fake]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!((body["accepted"].as_u64(), body["refused"].as_u64()), (Some(1), Some(1)), "{body}");

    // The dashboard's API and the results keep the truth, also after a restart; every refusal is counted.
    assert_eq!(state_of(&net, "home").await, "down");
    let stored = net.admin_get("/api/v1/results?check=home&region=eu").await;
    assert!(stored.as_array().unwrap().iter().all(|r| r["outcome"]["state"] == "down"), "{stored}");
    assert_eq!(stored.as_array().map(Vec::len), Some(2));
    let metrics = net.metrics().await;
    for (reason, count) in
        [("future", 3), ("too_old", 1), ("off_schedule", 1), ("not_assigned", 2), ("wrong_prober", 1)]
    {
        let line = format!("probenet_scheduler_results_refused_total{{reason=\"{reason}\"}} {count}\n");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    net.restart().await;
    assert_eq!(state_of(&net, "home").await, "down");
    net.stop().await;
}

#[tokio::test]
async fn a_prober_restarted_under_another_name_replays_the_runs_of_its_old_name() {
    let net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    let _ = net.assignments("p1", "eu", 0, 0).await;
    // p1 ran a run, then restarted as p2 (a default name holds the process id) with the same token.
    let planned = on_grid("home", "eu", 30, now_ms());
    net.deregister("p1", "eu").await;
    // Its last flush, after it deregistered (a shutdown hands the work back first), is still taken...
    let flushed = as_prober(result("api", "eu", on_grid("api", "eu", 10, now_ms()), State::Up), "p1");
    let (status, body) = post(&net, &net.eu, "p1", &[flushed]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // ...from its own token only.
    let stranger = net.new_token("eu");
    let (status, _) = post(&net, &stranger, "p1", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    net.register("p2", "eu").await;
    let _ = net.assignments("p2", "eu", 0, 0).await;
    let (status, body) = post(&net, &net.eu, "p2", &[as_prober(result("home", "eu", planned, State::Up), "p1")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 1);
    // Another token cannot replay in p1's name.
    let other = net.new_token("eu");
    let register = json!({"name": "p3", "region": "eu", "version": "0.2.0", "protocol": 1});
    assert_eq!(net.call("POST", Some(&other), "/v1/register", Some(register)).await.0, StatusCode::OK);
    // (Runs planned before the scheduler's record of the pair began, in its first minute, are taken on the
    // schedule alone: the forgery is of a later run.)
    let forged = as_prober(result("home", "eu", planned + 30_000, State::Up), "p1");
    let (status, body) = post(&net, &other, "p3", &[forged]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    net.stop().await;
}

async fn generation(net: &Net) -> u64 {
    net.admin_get("/api/v1/config").await["generation"].as_u64().unwrap()
}

#[tokio::test]
async fn a_registration_flood_leaves_memory_and_the_generation_bounded() {
    let net = Net::start(CONFIG).await;
    let before = rss();
    let start_generation = generation(&net).await;
    // 1,500 registrations with ~60 KB of made-up kinds each: refused, nothing kept.
    let kinds: Vec<String> = (0..1_000).map(|i| format!("kind-{i:0>54}")).collect();
    for i in 0..1_500 {
        let register =
            json!({"name": format!("flood-{i}"), "region": "eu", "version": "0.2.0", "protocol": 1, "kinds": kinds});
        let (status, body) = net.call("POST", Some(&net.eu), "/v1/register", Some(register)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let unknown = json!({"name": "x", "region": "eu", "version": "0.2.0", "protocol": 1, "kinds": ["http", "smtp"]});
    let (status, body) = net.call("POST", Some(&net.eu), "/v1/register", Some(unknown)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("unknown kind \"smtp\""), "{body}");
    let long = json!({"name": "x", "region": "eu", "version": "v".repeat(65), "protocol": 1});
    assert_eq!(net.call("POST", Some(&net.eu), "/v1/register", Some(long)).await.0, StatusCode::BAD_REQUEST);

    // 3,000 well-formed registrations of new names: a token registers a bounded number at a bounded pace.
    let started = Instant::now();
    let (mut accepted, mut throttled) = (0, 0);
    for i in 0..3_000 {
        let register =
            json!({"name": format!("n-{i}"), "region": "eu", "version": "0.2.0", "protocol": 1, "kinds": ["http"]});
        match net.call("POST", Some(&net.eu), "/v1/register", Some(register)).await.0 {
            StatusCode::OK => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("registration answered {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let limits = probenet_scheduler::registry::Limits::default();
    let most = (limits.burst + limits.per_second * elapsed).ceil() as u64;
    assert!(accepted as u64 <= most && accepted > 0, "accepted {accepted} in {elapsed:.1}s (at most {most})");
    assert_eq!(accepted + throttled, 3_000);
    let live = net.admin_get("/api/v1/probers").await.as_array().unwrap().len();
    assert!(live <= limits.probers_per_token, "{live} live probers");
    // Each accepted prober moves the generation when it joins and, if the flood outlasts its lease (a slow,
    // loaded machine), once more when it lapses; refused and throttled ones never move it.
    let moved = generation(&net).await - start_generation;
    assert!(moved <= 2 * most, "the generation moved {moved} times for {accepted} accepted probers (at most {most})");
    let grown = rss().saturating_sub(before);
    println!("flood: {accepted} accepted, {throttled} throttled in {elapsed:.1}s; RSS grew {} MiB", grown >> 20);
    assert!(grown < 256 << 20, "the scheduler kept {} MiB after the flood", grown >> 20);
    net.stop().await;
}

#[tokio::test]
async fn oversized_and_mistyped_artifacts_are_refused() {
    let net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    let planned = on_grid("home", "eu", 30, now_ms());
    let with = |artifact: Artifact| {
        let mut run = result("home", "eu", planned, State::Down);
        run.outcome.artifacts.push(artifact);
        run
    };
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(20 << 20, 0);
    let cases = [
        Artifact { name: "huge.png".into(), media_type: "image/png".into(), data: png, path: None },
        Artifact { name: "page.html".into(), media_type: "text/html".into(), data: b"<script>".to_vec(), path: None },
        Artifact { name: "fake.png".into(), media_type: "image/png".into(), data: b"#!/bin/sh".to_vec(), path: None },
    ];
    for artifact in cases {
        let name = artifact.name.clone();
        let (status, body) = net.post_results("eu", &[with(artifact)]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
    }
    assert_eq!(net.admin_get("/api/v1/results").await.as_array().map(Vec::len), Some(0));
    let small = Artifact {
        name: "failure.png".into(),
        media_type: "image/png".into(),
        data: b"\x89PNG\r\n\x1a\nrest".to_vec(),
        path: None,
    };
    assert_eq!(net.post_results("eu", &[with(small)]).await.0, StatusCode::OK);
    net.stop().await;
}

/// Reads until the server closes the connection (or `limit` passes): what it sent, and whether it closed.
fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    while start.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true);
            }
            Err(_) => {}
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

fn connect_from(local: &str, server: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&format!("{local}:0").parse::<SocketAddr>().unwrap().into()).unwrap();
    socket.connect(&server.into()).unwrap();
    socket.into()
}

#[tokio::test]
async fn stalled_and_idle_connections_are_closed_and_a_connection_flood_is_capped() {
    let limits =
        Limits { max_connections: 64, per_address: 16, idle: Duration::from_secs(1), body: Duration::from_secs(1) };
    let net = Net::start_plain(CONFIG, limits).await;
    let server = net.running.as_ref().unwrap().addr();
    let eu = net.eu.clone();
    tokio::task::spawn_blocking(move || {
        // An HTTP/1.1 keep-alive connection that asks nothing more.
        let mut idle = TcpStream::connect(server).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let (said, closed) = read_to_close(&mut idle, Duration::from_secs(5));
        assert!(said.starts_with("HTTP/1.1 200"), "{said}");
        assert!(closed, "an idle HTTP/1.1 connection stayed open");

        // An HTTP/2 connection (prior knowledge) that only says hello.
        let mut h2 = TcpStream::connect(server).unwrap();
        h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").unwrap();
        assert!(read_to_close(&mut h2, Duration::from_secs(5)).1, "an idle HTTP/2 connection stayed open");

        // A request head that never ends, and a stranger's stalled body: closed, the body never waited for.
        let mut head = TcpStream::connect(server).unwrap();
        head.write_all(b"POST /v1/results HTTP/1.1\r\nHost: local").unwrap();
        assert!(read_to_close(&mut head, Duration::from_secs(5)).1, "a half request head kept its connection");
        let mut stranger = TcpStream::connect(server).unwrap();
        stranger.write_all(b"POST /v1/results HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n{\"pro").unwrap();
        let (said, closed) = read_to_close(&mut stranger, Duration::from_secs(5));
        assert!(said.starts_with("HTTP/1.1 401"), "{said}");
        assert!(closed, "a stalled body without a token kept its connection");

        // A prober's stalled body: 408 once the body timeout passes.
        let mut stalled = TcpStream::connect(server).unwrap();
        let request = format!(
            "POST /v1/register HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {eu}\r\nContent-Length: 1000\r\n\r\n{{\"na"
        );
        stalled.write_all(request.as_bytes()).unwrap();
        let started = Instant::now();
        let (said, closed) = read_to_close(&mut stalled, Duration::from_secs(6));
        assert!(said.starts_with("HTTP/1.1 408"), "{said}");
        assert!(closed && started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

        // A flood from one address: past its share, new connections are closed at once, and others are served.
        let mut flood: Vec<TcpStream> = (0..16).map(|_| connect_from("127.0.0.3", server)).collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut extra = connect_from("127.0.0.3", server);
        assert!(read_to_close(&mut extra, Duration::from_secs(2)).1, "a connection past the cap was kept");
        let mut other = connect_from("127.0.0.2", server);
        other.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let (said, _) = read_to_close(&mut other, Duration::from_secs(3));
        assert!(said.starts_with("HTTP/1.1 200"), "healthz under a flood: {said:?}");
        // Idle flood connections are closed in their turn, and the address may connect again.
        for stream in &mut flood {
            assert!(read_to_close(stream, Duration::from_secs(5)).1);
        }
        let mut again = connect_from("127.0.0.3", server);
        again.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        assert!(read_to_close(&mut again, Duration::from_secs(3)).0.starts_with("HTTP/1.1 200"));
    })
    .await
    .unwrap();
    net.stop().await;
}
