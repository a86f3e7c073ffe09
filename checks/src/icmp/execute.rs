//! Running an ICMP check: resolve, open a socket, send `count` echo requests `interval` apart, collect the
//! replies until all came or the time is up; then the loss and round-trip statistics, and the judgement.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use super::details::{IcmpDetails, Reply, Rtt};
use super::packet::{self, HEADER_LEN};
use super::socket::{IcmpSocket, SocketKind};
use super::spec::IcmpCheck;
use crate::details::Details as _;
use crate::outcome::{Assertion, Outcome, Reason};
use crate::run::{Execute, RunContext};

/// Errors kept in the details, at most.
const MAX_ERRORS: usize = 5;

impl Execute for IcmpCheck {
    async fn execute(&self, cx: &RunContext) -> Outcome {
        match run(self, cx).await {
            Ok(outcome) => outcome,
            Err((reason, message)) => Outcome::failed(reason, message),
        }
    }
}

/// What came back for one echo request.
#[derive(Debug, Default, Clone)]
struct Slot {
    sent_at: Option<Instant>,
    rtt: Option<Duration>,
}

/// The counts and round-trip times of one run.
#[derive(Debug, Default)]
struct Pings {
    slots: Vec<Slot>,
    duplicates: u32,
    errors: Vec<String>,
}

impl Pings {
    fn sent(&self) -> usize {
        self.slots.iter().filter(|slot| slot.sent_at.is_some()).count()
    }

    fn rtts(&self) -> Vec<Duration> {
        self.slots.iter().filter_map(|slot| slot.rtt).collect()
    }

    fn outstanding(&self) -> usize {
        self.slots.iter().filter(|slot| slot.sent_at.is_some() && slot.rtt.is_none()).count()
    }

    fn error(&mut self, error: String) {
        if self.errors.len() < MAX_ERRORS && !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }
}

fn stats(rtts: &[Duration]) -> Option<Rtt> {
    if rtts.is_empty() {
        return None;
    }
    let seconds: Vec<f64> = rtts.iter().map(Duration::as_secs_f64).collect();
    let n = seconds.len() as f64;
    let avg = seconds.iter().sum::<f64>() / n;
    let square = seconds.iter().map(|s| s * s).sum::<f64>() / n;
    Some(Rtt {
        min: seconds.iter().copied().fold(f64::INFINITY, f64::min),
        avg,
        max: seconds.iter().copied().fold(0.0, f64::max),
        stddev: (square - avg * avg).max(0.0).sqrt(),
    })
}

async fn run(check: &IcmpCheck, cx: &RunContext) -> Result<Outcome, (Reason, String)> {
    let resolved = crate::net::resolve(cx, &check.host, 0, check.ip_version);
    let ip = cx.timed("resolve", resolved).await.map(|addr| addr.ip()).map_err(|m| (Reason::Dns, m))?;
    if ip.to_string() != check.host {
        cx.log(format!("resolved {} to {ip}", check.host));
    }
    let started = Instant::now();
    let socket = IcmpSocket::open(ip);
    cx.phase("setup", started.elapsed());
    let socket = socket.map_err(|message| (Reason::Connect, message))?;
    cx.log(format!("pinging {ip} from a {} socket", socket.kind.name()));

    // Stop a little before the check's timeout, so that a run with losses still reports them.
    let timeout = cx.timeout();
    let margin = (timeout / 10).min(Duration::from_millis(250));
    let budget = timeout.saturating_sub(margin).saturating_sub(cx.elapsed());
    let pings = ping(check, cx, &socket, ip, budget).await;

    let sent = pings.sent();
    if sent == 0 {
        let why = pings.errors.first().cloned().unwrap_or_else(|| "no time left before the timeout".to_owned());
        return Err((Reason::Connect, format!("icmp: no echo request could be sent to {ip}: {why}")));
    }
    let rtts = pings.rtts();
    let received = rtts.len();
    let loss = (sent - received) as f64 / sent as f64;
    let stats = stats(&rtts);
    let (assertions, failure) = judge(check, sent, received, loss, stats);
    let replies = pings
        .slots
        .iter()
        .enumerate()
        .filter(|(_, slot)| slot.sent_at.is_some())
        .map(|(i, slot)| Reply { seq: i + 1, rtt_seconds: slot.rtt.map(|rtt| rtt.as_secs_f64()) })
        .collect();
    let details = IcmpDetails {
        address: ip.to_string(),
        socket: socket.kind.name().to_owned(),
        payload_size: check.payload_size,
        count: check.count,
        sent,
        received,
        duplicates: pings.duplicates,
        loss,
        rtt_seconds: stats,
        replies,
        errors: pings.errors,
    }
    .to_value();
    Ok(crate::outcome::Judgement { assertions, failure }.into_outcome(details))
}

/// Sends the requests on schedule and collects replies until every sent request is answered or `budget` is
/// spent. Bounded: at most `count` sends, and the loop ends at the deadline.
async fn ping(check: &IcmpCheck, cx: &RunContext, socket: &IcmpSocket, ip: IpAddr, budget: Duration) -> Pings {
    let v6 = ip.is_ipv6();
    let id = next_id();
    let payload = packet::payload(check.payload_size);
    let count = check.count as usize;
    let mut pings = Pings { slots: vec![Slot::default(); count], ..Pings::default() };
    let mut next = 0usize;
    // Room for the largest IPv4 header, the ICMP header, the payload and some slack for larger replies.
    let mut buf = vec![0u8; 60 + HEADER_LEN + check.payload_size + 64];
    let start = Instant::now();
    let deadline = start + budget;
    loop {
        let send_at = start + check.interval * next as u32;
        let can_send = next < count && send_at < deadline;
        if !can_send && pings.outstanding() == 0 {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(send_at.into()), if can_send => {
                let seq = (next + 1) as u16;
                let request = packet::echo_request(v6, id, seq, &payload);
                let sent_at = Instant::now();
                match socket.send(&request).await {
                    Ok(_) => pings.slots[next].sent_at = Some(sent_at),
                    Err(error) => pings.error(format!("send: {error}")),
                }
                next += 1;
            }
            received = socket.recv(&mut buf) => {
                let now = Instant::now();
                match received {
                    Ok(len) => {
                        let Some(reply) = packet::parse_reply(v6, socket.kind == SocketKind::Raw && !v6, &buf[..len])
                        else {
                            continue;
                        };
                        // A datagram socket only delivers our replies; the kernel chose the identifier.
                        if socket.kind == SocketKind::Raw && reply.id != id {
                            continue;
                        }
                        let Some(slot) = usize::from(reply.seq).checked_sub(1).and_then(|i| pings.slots.get_mut(i))
                        else {
                            continue;
                        };
                        match (slot.sent_at, slot.rtt) {
                            (Some(sent_at), None) => {
                                let rtt = now.saturating_duration_since(sent_at);
                                slot.rtt = Some(rtt);
                                if pings.slots.iter().filter(|slot| slot.rtt.is_some()).count() == 1 {
                                    cx.phase("rtt", rtt);
                                }
                            }
                            (Some(_), Some(_)) => pings.duplicates += 1,
                            (None, _) => {}
                        }
                    }
                    Err(error) => pings.error(format!("receive: {error}")),
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => break,
        }
    }
    pings
}

/// A fresh identifier per run, so that concurrent raw-socket pings (which all see every reply) tell theirs
/// apart. Datagram sockets ignore it: the kernel sets its own.
fn next_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let pid = std::process::id() as u16;
    pid.wrapping_mul(40_503).wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(7_919))
}

/// Evaluates every assertion; the first failing one gives the reason and the message.
fn judge(
    check: &IcmpCheck,
    sent: usize,
    received: usize,
    loss: f64,
    stats: Option<Rtt>,
) -> (Vec<Assertion>, Option<(Reason, String)>) {
    let mut assertions = Vec::new();
    let mut failure = None;
    let mut check_one = |reason: Reason, name: &str, expected: String, observed: String, passed: bool| {
        if !passed && failure.is_none() {
            failure = Some((reason, format!("{name}: expected {expected}, got {observed}")));
        }
        assertions.push(Assertion { name: name.to_owned(), expected, observed, passed });
    };
    let observed = format!("{} ({} of {sent} lost)", percent(loss), sent - received);
    let (expected, passed) = match check.max_loss {
        Some(max) => (format!("at most {}", percent(max)), loss <= max + 1e-9),
        None => ("less than 100%".to_owned(), received > 0),
    };
    check_one(Reason::Loss, "max_loss", expected, observed, passed);
    if let Some(max) = check.max_rtt {
        let avg = stats.map(|stats| stats.avg);
        check_one(
            Reason::Duration,
            "max_rtt",
            format!("an average of at most {}", millis(max.as_secs_f64())),
            avg.map_or_else(|| "no reply".to_owned(), millis),
            avg.is_some_and(|avg| avg <= max.as_secs_f64()),
        );
    }
    (assertions, failure)
}

fn percent(ratio: f64) -> String {
    format!("{}%", (ratio * 1000.0).round() / 10.0)
}

fn millis(seconds: f64) -> String {
    format!("{:.3}ms", seconds * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::IpVersion;

    fn check(max_loss: Option<f64>, max_rtt: Option<Duration>) -> IcmpCheck {
        IcmpCheck {
            host: "192.0.2.1".to_owned(),
            count: 4,
            interval: Duration::from_secs(1),
            ip_version: IpVersion::Any,
            ips: crate::net::IpPlan::First,
            payload_size: 56,
            max_loss,
            max_rtt,
        }
    }

    #[test]
    fn stats_are_those_of_ping() {
        let rtts = [10, 20, 30, 40].map(Duration::from_millis);
        let stats = stats(&rtts).unwrap();
        assert!((stats.min - 0.010).abs() < 1e-12 && (stats.max - 0.040).abs() < 1e-12);
        assert!((stats.avg - 0.025).abs() < 1e-12);
        // mdev = sqrt(mean(x^2) - mean(x)^2) = sqrt(0.00075 - 0.000625)
        assert!((stats.stddev - 0.000125f64.sqrt()).abs() < 1e-9);
        assert_eq!(super::stats(&[]), None);
    }

    #[test]
    fn default_fails_only_on_total_loss() {
        let some = stats(&[Duration::from_millis(5)]);
        assert!(judge(&check(None, None), 4, 1, 0.75, some).1.is_none());
        let (assertions, failure) = judge(&check(None, None), 4, 0, 1.0, None);
        assert_eq!(assertions.len(), 1);
        let (reason, message) = failure.unwrap();
        assert_eq!(reason, Reason::Loss);
        assert_eq!(message, "max_loss: expected less than 100%, got 100% (4 of 4 lost)");
    }

    #[test]
    fn max_loss_and_max_rtt_give_their_reasons_and_every_assertion_is_reported() {
        let some = stats(&[Duration::from_millis(5), Duration::from_millis(15)]);
        let loose = check(Some(0.5), Some(Duration::from_millis(5)));
        let (_, failure) = judge(&loose, 4, 2, 0.5, some);
        let (reason, message) = failure.unwrap();
        assert_eq!(reason, Reason::Duration);
        assert_eq!(message, "max_rtt: expected an average of at most 5.000ms, got 10.000ms");
        let strict = check(Some(0.25), Some(Duration::from_millis(5)));
        let (all, failure) = judge(&strict, 4, 2, 0.5, some);
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|a| !a.passed));
        assert_eq!(failure.unwrap().0, Reason::Loss, "the first failing one wins");
        assert_eq!(percent(1.0 / 3.0), "33.3%");
    }
}
