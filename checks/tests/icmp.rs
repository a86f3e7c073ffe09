//! ICMP checks for real: pings to 127.0.0.1 and ::1, and to a peer in a network namespace the test builds
//! itself (a veth pair, addresses from 10.250.<pid % 250>.0/30) and always tears down.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use probenet_checks::{Outcome, Reason, State, load_str, run_once};

/// Loads a one-check config and runs it once.
async fn run(yaml: &str) -> Outcome {
    let config = load_str("test.yaml", yaml).unwrap_or_else(|errors| panic!("invalid test config: {errors:?}"));
    let outcome = run_once(&config.checks[0], "local").await;
    println!("{}", serde_json::to_string_pretty(&outcome).unwrap());
    outcome
}

/// Checks the round-trip statistics of a run where every request was answered.
fn assert_full_answers(outcome: &Outcome, count: u64) {
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    let details = &outcome.details;
    assert_eq!(details["sent"], count);
    assert_eq!(details["received"], count);
    assert_eq!(details["loss"], 0.0);
    let rtt = &details["rtt_seconds"];
    let (min, avg, max, stddev) = (
        rtt["min"].as_f64().unwrap(),
        rtt["avg"].as_f64().unwrap(),
        rtt["max"].as_f64().unwrap(),
        rtt["stddev"].as_f64().unwrap(),
    );
    assert!(min >= 0.0 && min <= avg && avg <= max && stddev >= 0.0, "{rtt}");
    assert!(max < 5.0, "a loopback or veth round trip is far below the timeout: {rtt}");
    let replies = details["replies"].as_array().unwrap();
    assert_eq!(replies.len() as u64, count);
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply["seq"], i as u64 + 1);
        let seconds = reply["rtt_seconds"].as_f64().unwrap();
        assert!(seconds >= min && seconds <= max);
    }
    let phases: Vec<&str> = outcome.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, ["resolve", "setup", "rtt"]);
    let first = outcome.phase("rtt").unwrap();
    assert!((first - replies[0]["rtt_seconds"].as_f64().unwrap()).abs() < 1e-9, "rtt is the first reply's");
    assert!(outcome.assertions.iter().all(|a| a.passed));
}

#[tokio::test]
async fn ping_ipv4_loopback_three_times() {
    let started = Instant::now();
    let outcome =
        run("checks:\n  - name: lo4\n    timeout: 5s\n    icmp:\n      host: 127.0.0.1\n      count: 3\n      \
         interval: 100ms\n      expect: {max_loss: 0, max_rtt: 1s}\n")
        .await;
    assert_full_answers(&outcome, 3);
    assert_eq!(outcome.details["address"], "127.0.0.1");
    assert_eq!(outcome.details["payload_size"], 56);
    assert!(["raw", "datagram"].contains(&outcome.details["socket"].as_str().unwrap()));
    let names: Vec<&str> = outcome.assertions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["max_loss", "max_rtt"]);
    assert_eq!(outcome.assertions[0].observed, "0% (0 of 3 lost)");
    // Three requests 100ms apart: at least 200ms, and no waiting once every reply is in.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn ping_ipv6_loopback_when_available() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        println!("note: no IPv6 loopback on this machine; skipping the ::1 ping");
        return;
    }
    let outcome = run(
        "checks:\n  - name: lo6\n    timeout: 5s\n    icmp: {host: \"::1\", count: 2, interval: 50ms, payload_size: 1000, \
         ip_version: ipv6}\n",
    )
    .await;
    assert_full_answers(&outcome, 2);
    assert_eq!(outcome.details["address"], "::1");
}

#[tokio::test]
async fn a_round_trip_slower_than_max_rtt_fails_with_reason_duration() {
    let outcome =
        run("checks:\n  - name: lo4\n    timeout: 5s\n    icmp: {host: 127.0.0.1, count: 2, interval: 20ms, \
         expect: {max_rtt: 0.001ms}}\n")
        .await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Duration));
    assert_eq!(outcome.details["received"], 2, "replies came, only too slowly for 1µs");
    assert!(outcome.error.as_deref().unwrap().starts_with("max_rtt: expected an average of at most 0.001ms, got "));
    assert!(outcome.assertions[0].passed && !outcome.assertions[1].passed);
}

#[tokio::test]
async fn localhost_resolves_to_the_asked_family() {
    let outcome = run("checks:\n  - name: lh\n    timeout: 5s\n    icmp: {host: localhost, ip_version: ipv4}\n").await;
    assert_full_answers(&outcome, 1);
    assert_eq!(outcome.details["address"], "127.0.0.1");
}

/// A network namespace with one end of a veth pair; the other end stays on the host. Dropping it deletes both,
/// also when the test fails halfway.
struct Netns {
    name: String,
    host_link: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace destroys the veth end inside it, and with it the pair; the host end is deleted
        // explicitly too, for the case it was never moved.
        let _ = Command::new("ip").args(["link", "del", &self.host_link]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(output.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn ping_a_peer_in_a_network_namespace_then_lose_it() {
    let pid = std::process::id();
    let name = format!("pnt-icmp-{pid}");
    let created = Command::new("ip").args(["netns", "add", &name]).output();
    match created {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            println!(
                "note: `ip netns add` is not permitted here ({}); skipping",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(error) => {
            println!("note: cannot run `ip` ({error}); skipping");
            return;
        }
    }
    let (host_link, peer_link) = (format!("pnt{pid}h"), format!("pnt{pid}n"));
    let guard = Netns { name: name.clone(), host_link: host_link.clone() };
    let net = pid % 250;
    let (host_addr, peer_addr) = (format!("10.250.{net}.1"), format!("10.250.{net}.2"));
    ip(&["link", "add", &host_link, "type", "veth", "peer", "name", &peer_link]);
    ip(&["link", "set", &peer_link, "netns", &name]);
    ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &host_link]);
    ip(&["link", "set", &host_link, "up"]);
    ip(&["-n", &name, "addr", "add", &format!("{peer_addr}/30"), "dev", &peer_link]);
    ip(&["-n", &name, "link", "set", &peer_link, "up"]);

    // The link may take a moment to come up: a few attempts, bounded.
    let yaml = format!(
        "checks:\n  - name: peer\n    timeout: 3s\n    icmp: {{host: \"{peer_addr}\", count: 3, interval: 50ms}}\n"
    );
    let mut outcome = run(&yaml).await;
    for _ in 0..5 {
        if outcome.details["received"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        outcome = run(&yaml).await;
    }
    assert_full_answers(&outcome, 3);
    assert_eq!(outcome.details["address"], peer_addr.as_str());

    // The peer's address goes away: nothing answers any more.
    ip(&["-n", &name, "addr", "del", &format!("{peer_addr}/30"), "dev", &peer_link]);
    let started = Instant::now();
    let outcome = run(&format!(
        "checks:\n  - name: gone\n    timeout: 2s\n    icmp: {{host: \"{peer_addr}\", count: 2, interval: 100ms, \
         expect: {{max_loss: 0.5}}}}\n"
    ))
    .await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Loss), "the run ends before the check's timeout, with its losses");
    assert_eq!(outcome.details["sent"], 2);
    assert_eq!(outcome.details["received"], 0);
    assert_eq!(outcome.details["loss"], 1.0);
    assert_eq!(outcome.details["rtt_seconds"], serde_json::Value::Null);
    assert!(outcome.details["replies"].as_array().unwrap().iter().all(|r| r["rtt_seconds"].is_null()));
    assert_eq!(outcome.error.as_deref(), Some("max_loss: expected at most 50%, got 100% (2 of 2 lost)"));
    assert!(outcome.phase("rtt").is_none());
    // It waited for late replies until just before the timeout (reason `loss`, not `timeout`, shows it stopped
    // in time; no upper wall-clock bound, which a loaded machine could break).
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");

    // Inside the namespace, allow unprivileged ping sockets for gid 0 (a per-namespace setting) and run the
    // datagram-socket test there: this covers the path taken on machines that allow ping sockets.
    ip(&["-n", &name, "link", "set", "lo", "up"]);
    ip(&["netns", "exec", &name, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 0"]);
    let exe = std::env::current_exe().unwrap();
    let inner = Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(&exe)
        .args(["--exact", "datagram_sockets_inside_a_namespace", "--ignored", "--nocapture"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&inner.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&inner.stderr));
    assert!(inner.status.success() && stdout.contains("1 passed"), "the datagram test failed inside {name}");
    drop(guard);
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&left.stdout).contains(&name), "the namespace is gone");
}

/// Run by `ping_a_peer_in_a_network_namespace_then_lose_it` inside its namespace, where ping sockets are
/// allowed: the check must use a datagram socket, whose replies carry the identifier the kernel chose.
#[tokio::test]
#[ignore = "run inside a network namespace by ping_a_peer_in_a_network_namespace_then_lose_it"]
async fn datagram_sockets_inside_a_namespace() {
    let outcome =
        run("checks:\n  - name: dg4\n    timeout: 3s\n    icmp: {host: 127.0.0.1, count: 2, interval: 20ms}\n").await;
    assert_full_answers(&outcome, 2);
    assert_eq!(outcome.details["socket"], "datagram");
    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        let outcome =
            run("checks:\n  - name: dg6\n    timeout: 3s\n    icmp: {host: \"::1\", count: 2, interval: 20ms}\n").await;
        assert_full_answers(&outcome, 2);
        assert_eq!(outcome.details["socket"], "datagram");
    }
}

fn errors(yaml: &str) -> Vec<String> {
    match load_str("t.yaml", yaml) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn count_times_interval_must_fit_the_timeout_wherever_it_is_set() {
    // The check's own timeout.
    let found = errors("checks:\n  - name: a\n    timeout: 2s\n    icmp: {host: a.example, count: 3}\n");
    assert_eq!(
        found,
        ["t.yaml:4:36: checks[0].icmp.count: 3 requests every 1s take 3s, longer than the check's timeout of 2s"]
    );
    // The timeout from `defaults` in the same file.
    let found = errors("defaults: {timeout: 1s}\nchecks:\n  - name: a\n    icmp: {host: a.example, interval: 2s}\n");
    assert_eq!(
        found,
        ["t.yaml:4:39: checks[0].icmp.interval: 1 request every 2s takes 2s, longer than the check's timeout of 1s"]
    );
    // No timeout written: 10s, shortened to the check's interval.
    let found = errors("checks:\n  - name: a\n    interval: 5s\n    icmp: {host: a.example, count: 6}\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("6 requests every 1s take 6s, longer than the check's timeout of 5s"));
    let found = errors("checks:\n  - name: a\n    icmp: {host: a.example, count: 10}\n");
    assert_eq!(found, Vec::<String>::new(), "10 x 1s fits the default 10s");
    let found = errors("checks:\n  - name: a\n    icmp: {host: a.example, count: 11}\n");
    assert_eq!(found.len(), 1, "{found:?}");
}
