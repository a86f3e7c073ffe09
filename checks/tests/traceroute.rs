//! The traceroute of a failed run's evidence, for real: to the loopback addresses, and across three network
//! namespaces the test builds itself (prober -- router -- target, addresses from 10.77.<pid % 250>.0/29 and
//! fd77:<pid % 250>::/32), first along a working path, then with the target's answers blackholed, then with
//! the router's link to the target down.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use probenet_checks::evidence::{Options, Traceroute, traceroute};

fn quick() -> Options {
    Options {
        max_hops: 10,
        probes_per_hop: 3,
        hop_timeout: Duration::from_millis(500),
        total_timeout: Duration::from_secs(5),
        max_silent_hops: 3,
    }
}

async fn trace(target: &str) -> Traceroute {
    let target: IpAddr = target.parse().unwrap();
    let traceroute = traceroute::trace(target, quick()).await;
    println!("{}", serde_json::to_string_pretty(&traceroute).unwrap());
    traceroute
}

/// The target answered in `hops` hops, each hop with its address and three round-trip times.
fn assert_reached(traceroute: &Traceroute, addresses: &[&str]) {
    assert!(traceroute.reached, "{}", traceroute.summary);
    assert_eq!(traceroute.error, None);
    let seen: Vec<Option<&str>> = traceroute.hops.iter().map(|hop| hop.address.as_deref()).collect();
    let expected: Vec<Option<&str>> = addresses.iter().map(|address| Some(*address)).collect();
    assert_eq!(seen, expected);
    for (index, hop) in traceroute.hops.iter().enumerate() {
        assert_eq!(usize::from(hop.ttl), index + 1);
        assert_eq!(hop.rtt_ms.len(), 3, "every probe of hop {} answered", hop.ttl);
        assert!(hop.rtt_ms.iter().all(|ms| *ms > 0.0 && *ms < 500.0), "{:?}", hop.rtt_ms);
        assert_eq!(hop.note, None);
    }
    assert_eq!(usize::from(traceroute.stopped_at_ttl.unwrap()), addresses.len());
    let last = addresses[addresses.len() - 1];
    let count = addresses.len();
    let plural = if count == 1 { "" } else { "s" };
    assert!(
        traceroute.summary.starts_with(&format!("reached {last} in {count} hop{plural} (")),
        "{}",
        traceroute.summary
    );
}

#[tokio::test]
async fn loopback_is_reached_in_one_hop() {
    let traceroute = trace("127.0.0.1").await;
    assert_reached(&traceroute, &["127.0.0.1"]);
    assert_eq!(serde_json::to_value(&traceroute).unwrap()["method"], "udp");
    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        assert_reached(&trace("::1").await, &["::1"]);
    } else {
        println!("note: no IPv6 loopback here; ::1 not traced");
    }
}

/// Three namespaces; dropping the guard deletes them (and with them their veth pairs), also when a test fails.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(output.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
}

fn in_ns(name: &str, args: &[&str]) {
    let output = Command::new("ip").args(["netns", "exec", name]).args(args).output().unwrap();
    assert!(output.status.success(), "{name}: {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
}

/// Runs `inner_trace` inside the prober namespace, tracing `target` and expecting `expect`; returns its output.
fn trace_from(prober: &str, target: &str, expect: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let inner = Command::new("ip")
        .args(["netns", "exec", prober])
        .arg(&exe)
        .args(["--exact", "inner_trace", "--ignored", "--nocapture"])
        .env("PNT_TRACE_TARGET", target)
        .env("PNT_TRACE_EXPECT", expect)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&inner.stdout).into_owned();
    println!("{stdout}{}", String::from_utf8_lossy(&inner.stderr));
    assert!(inner.status.success() && stdout.contains("1 passed"), "the trace to {target} from {prober} failed");
    stdout
}

#[test]
fn a_path_through_a_router_then_the_answers_vanish() {
    let pid = std::process::id();
    let names: Vec<String> = ["p", "r", "t"].iter().map(|role| format!("pnt-trace-{pid}-{role}")).collect();
    match Command::new("ip").args(["netns", "add", &names[0]]).output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            println!("skip: `ip netns add` is not permitted here ({})", String::from_utf8_lossy(&output.stderr).trim());
            return;
        }
        Err(error) => {
            println!("skip: cannot run `ip` ({error})");
            return;
        }
    }
    let guard = Namespaces(names.clone());
    let (p, r, t) = (names[0].as_str(), names[1].as_str(), names[2].as_str());
    ip(&["netns", "add", r]);
    ip(&["netns", "add", t]);
    // No duplicate address detection (the addresses are usable at once) and no ICMP rate limit (the traces
    // follow each other closely): settings of these namespaces only.
    for ns in [p, r, t] {
        in_ns(ns, &["sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0"]);
        in_ns(ns, &["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"]);
        in_ns(ns, &["sysctl", "-q", "-w", "net.ipv6.icmp.ratelimit=0"]);
    }
    let net = pid % 250;
    let v4 = |host: u8| format!("10.77.{net}.{host}");
    let v6 = |link: u8, host: u8| format!("fd77:{net:x}:{link}::{host}");
    // prober p0 (.1) -- (.2) r0 router r1 (.5) -- (.6) t0 target
    ip(&["-n", p, "link", "add", "p0", "type", "veth", "peer", "name", "r0", "netns", r]);
    ip(&["-n", r, "link", "add", "r1", "type", "veth", "peer", "name", "t0", "netns", t]);
    for (ns, dev, v4_addr, v6_addr) in
        [(p, "p0", v4(1), v6(1, 1)), (r, "r0", v4(2), v6(1, 2)), (r, "r1", v4(5), v6(2, 1)), (t, "t0", v4(6), v6(2, 2))]
    {
        ip(&["-n", ns, "addr", "add", &format!("{v4_addr}/30"), "dev", dev]);
        ip(&["-n", ns, "-6", "addr", "add", &format!("{v6_addr}/64"), "dev", dev, "nodad"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    ip(&["-n", p, "route", "add", &format!("{}/30", v4(4)), "via", &v4(2)]);
    ip(&["-n", t, "route", "add", &format!("{}/30", v4(0)), "via", &v4(5)]);
    ip(&["-n", p, "-6", "route", "add", &format!("{}/64", v6(2, 0)), "via", &v6(1, 2)]);
    ip(&["-n", t, "-6", "route", "add", &format!("{}/64", v6(1, 0)), "via", &v6(2, 1)]);
    in_ns(r, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    in_ns(r, &["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);

    // The working path: the router, then the target (which answers "port unreachable").
    trace_from(p, &v4(6), &format!("reached {} {}", v4(2), v4(6)));
    trace_from(p, &v6(2, 2), &format!("reached {} {}", v6(1, 2), v6(2, 2)));

    // The target's way back is blackholed: its answers vanish, so hop 1 answers, then nothing. (A blackhole
    // route for the target in the router would drop even the TTL-1 probes: the route lookup comes before the
    // TTL check.)
    ip(&["-n", t, "route", "replace", "blackhole", &format!("{}/30", v4(0))]);
    ip(&["-n", t, "-6", "route", "replace", "blackhole", &format!("{}/64", v6(1, 0))]);
    trace_from(p, &v4(6), &format!("dropped {}", v4(2)));
    trace_from(p, &v6(2, 2), &format!("dropped {}", v6(1, 2)));

    // The router's link to the target goes down: it has no route there any more and says so at hop 1.
    ip(&["-n", r, "link", "set", "r1", "down"]);
    trace_from(p, &v4(6), &format!("unreachable {}", v4(2)));
    trace_from(p, &v6(2, 2), &format!("unreachable {}", v6(1, 2)));

    drop(guard);
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(names.iter().all(|name| !left.contains(name.as_str())), "the namespaces are gone: {left}");
}

/// Run by `a_path_through_a_router_then_the_answers_vanish` inside the prober namespace.
/// `PNT_TRACE_EXPECT` is `reached HOP...`, `dropped HOP1` or `unreachable HOP1`.
#[tokio::test]
#[ignore = "run inside a network namespace by a_path_through_a_router_then_the_answers_vanish"]
async fn inner_trace() {
    let target = std::env::var("PNT_TRACE_TARGET").unwrap();
    let expect = std::env::var("PNT_TRACE_EXPECT").unwrap();
    let mut words = expect.split(' ');
    let verdict = words.next().unwrap();
    let addresses: Vec<&str> = words.collect();
    // A fresh link may take a moment to pass packets (IPv6 neighbour discovery): a few attempts, bounded.
    let settled = |traceroute: &Traceroute| {
        let seen: Vec<Option<&str>> = traceroute.hops.iter().map(|hop| hop.address.as_deref()).collect();
        verdict != "reached" || seen == addresses.iter().map(|address| Some(*address)).collect::<Vec<_>>()
    };
    let mut traceroute = trace(&target).await;
    for _ in 0..5 {
        if settled(&traceroute) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        traceroute = trace(&target).await;
    }
    match verdict {
        "reached" => assert_reached(&traceroute, &addresses),
        "dropped" => {
            assert!(!traceroute.reached);
            let hop1 = &traceroute.hops[0];
            assert_eq!(hop1.address.as_deref(), Some(addresses[0]));
            assert!(!hop1.rtt_ms.is_empty());
            // Three silent hops in a row end it.
            assert_eq!(traceroute.hops.len(), 4, "hop 1, then hops 2 to 4 without an answer");
            assert!(traceroute.hops[1..].iter().all(|hop| hop.address.is_none() && hop.rtt_ms.is_empty()));
            assert_eq!(traceroute.stopped_at_ttl, Some(1));
            assert_eq!(traceroute.summary, format!("stopped after hop 1 ({}): no answer from hop 2 on", addresses[0]));
            assert!(traceroute.duration_ms < 5_000.0, "bounded by the total time cap");
        }
        "unreachable" => {
            assert!(!traceroute.reached);
            assert_eq!(traceroute.hops.len(), 1, "an unreachable answer ends the path");
            let hop1 = &traceroute.hops[0];
            assert_eq!(hop1.address.as_deref(), Some(addresses[0]));
            assert_eq!(hop1.note.as_deref(), Some("network unreachable"));
            assert_eq!(traceroute.stopped_at_ttl, Some(1));
            assert_eq!(traceroute.summary, format!("stopped at hop 1 ({}): network unreachable", addresses[0]));
        }
        other => panic!("unknown expectation {other}"),
    }
}
