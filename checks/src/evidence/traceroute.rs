//! A bounded traceroute without raw sockets: UDP probes with a growing TTL (hop limit), the ICMP answers read
//! from the probe sockets' error queues (`IP_RECVERR` / `IPV6_RECVERR`), IPv4 and IPv6.
//!
//! Each probe is its own connected UDP socket (destination port 33434 and up, one per probe as classic
//! traceroute does), so an answer can only belong to that probe, and no pending error of one probe can make
//! another one's send fail. Blocking (`poll(2)` with timeouts): [`trace`] runs it on the blocking pool. Every
//! wait is bounded by the per-hop timeout and the total time cap; the number of hops and probes is bounded.

use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recv, recvmsg, setsockopt, sockopt};
use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The first destination port of the probes (classic traceroute's).
pub const BASE_PORT: u16 = 33434;
/// `SO_EE_ORIGIN_LOCAL`: the error was raised by this host (no route, message too long).
const ORIGIN_LOCAL: u8 = 1;
/// `SO_EE_ORIGIN_ICMP`.
const ORIGIN_ICMP: u8 = 2;
/// `SO_EE_ORIGIN_ICMP6`.
const ORIGIN_ICMP6: u8 = 3;
/// The most poll rounds one hop waits through (each round handles an answer or times out): a guard, not a limit
/// a normal hop gets near.
const MAX_ROUNDS_PER_HOP: usize = 256;

/// How far and how long a traceroute may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The highest TTL tried (at most 64).
    pub max_hops: u8,
    /// Probes sent per TTL (1 to 5).
    pub probes_per_hop: u8,
    /// How long to wait for the answers of one TTL.
    pub hop_timeout: Duration,
    /// The whole traceroute never takes longer than this.
    pub total_timeout: Duration,
    /// Stop after this many TTLs in a row without any answer.
    pub max_silent_hops: u8,
}

impl Default for Options {
    /// 30 hops, 3 probes a hop, 1 s a hop, 8 s in all, stop after 3 silent hops.
    fn default() -> Self {
        Self {
            max_hops: 30,
            probes_per_hop: 3,
            hop_timeout: Duration::from_secs(1),
            total_timeout: Duration::from_secs(8),
            max_silent_hops: 3,
        }
    }
}

/// How the probes were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// UDP datagrams to ports 33434 and up; ICMP answers read with `IP_RECVERR` (no privilege needed).
    Udp,
}

/// One TTL of a traceroute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// The TTL (hop limit) the probes were sent with.
    pub ttl: u8,
    /// The address that answered, `null` if nobody did.
    pub address: Option<String>,
    /// The round-trip time of each answered probe, in milliseconds.
    pub rtt_ms: Vec<f64>,
    /// What the answer said when it was not "time exceeded": `port unreachable` (the target itself),
    /// `host unreachable`, `network unreachable`, `prohibited`, `no route from the prober`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The path to one address, as far as it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traceroute {
    /// The address traced (an address only: never a URL or a name with credentials).
    pub target: String,
    /// How the probes were sent.
    pub method: Method,
    /// Every TTL tried, in order.
    pub hops: Vec<Hop>,
    /// Whether the target itself answered.
    pub reached: bool,
    /// The TTL of the last hop that answered (the target's when it was reached); `null` if none did.
    pub stopped_at_ttl: Option<u8>,
    /// One line: where the path stops.
    pub summary: String,
    /// How long the traceroute took, in milliseconds.
    pub duration_ms: f64,
    /// Why it could not run at all (no socket), when that happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Traces the path to `target` on the blocking pool (the caller's task waits without holding a worker).
pub async fn trace(target: IpAddr, options: Options) -> Traceroute {
    match tokio::task::spawn_blocking(move || trace_blocking(target, options)).await {
        Ok(traceroute) => traceroute,
        Err(error) => failed(target, format!("the traceroute task failed: {error}")),
    }
}

/// Traces the path to `target`, blocking the calling thread for at most `options.total_timeout` (plus the
/// time to open and close a few sockets).
pub fn trace_blocking(target: IpAddr, options: Options) -> Traceroute {
    let started = Instant::now();
    let deadline = started + options.total_timeout;
    let max_hops = options.max_hops.clamp(1, 64);
    let probes = options.probes_per_hop.clamp(1, 5);
    let mut hops: Vec<Hop> = Vec::new();
    let mut reached = false;
    let mut stop_note: Option<String> = None;
    let mut silent = 0_u8;
    let mut timed_out = false;
    for ttl in 1..=max_hops {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        let hop_deadline = (now + options.hop_timeout).min(deadline);
        let first_port = BASE_PORT + u16::from(ttl - 1) * u16::from(probes);
        let hop = match probe_hop(target, ttl, probes, first_port, hop_deadline) {
            Ok(hop) => hop,
            Err(error) if hops.is_empty() && error.starts_with("socket") => return failed(target, error),
            Err(error) => Hop { ttl, address: None, rtt_ms: Vec::new(), note: Some(error) },
        };
        let answered = hop.address.is_some();
        let from_target = hop.address.as_deref() == Some(target.to_string().as_str());
        let note = hop.note.clone();
        hops.push(hop);
        if from_target {
            reached = true;
            break;
        }
        if let Some(note) = note {
            // An unreachable answer (or a local error) ends the path here.
            stop_note = Some(note);
            break;
        }
        if answered {
            silent = 0;
        } else {
            silent += 1;
            if silent >= options.max_silent_hops.max(1) {
                break;
            }
        }
    }
    let stopped_at_ttl = hops.iter().rev().find(|hop| hop.address.is_some()).map(|hop| hop.ttl);
    let summary = summarize(target, &hops, reached, stop_note.as_deref(), timed_out);
    Traceroute {
        target: target.to_string(),
        method: Method::Udp,
        hops,
        reached,
        stopped_at_ttl,
        summary,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        error: None,
    }
}

fn failed(target: IpAddr, error: String) -> Traceroute {
    Traceroute {
        target: target.to_string(),
        method: Method::Udp,
        hops: Vec::new(),
        reached: false,
        stopped_at_ttl: None,
        summary: format!("no traceroute: {error}"),
        duration_ms: 0.0,
        error: Some(error),
    }
}

/// The one-line summary of a finished traceroute.
fn summarize(target: IpAddr, hops: &[Hop], reached: bool, note: Option<&str>, timed_out: bool) -> String {
    let last = hops.iter().rev().find(|hop| hop.address.is_some());
    if reached {
        let rtt = hops.last().and_then(|hop| hop.rtt_ms.iter().copied().reduce(f64::min));
        let rtt = rtt.map(|ms| format!(" ({ms:.2} ms)")).unwrap_or_default();
        let count = hops.len();
        return format!("reached {target} in {count} hop{}{rtt}", if count == 1 { "" } else { "s" });
    }
    match (last, note) {
        (Some(hop), Some(note)) => {
            format!("stopped at hop {} ({}): {note}", hop.ttl, hop.address.as_deref().unwrap_or("?"))
        }
        (None, Some(note)) => format!("stopped at hop {}: {note}", hops.last().map_or(1, |hop| hop.ttl)),
        (Some(hop), None) => {
            let why = if timed_out { "time ran out" } else { "no answer" };
            format!(
                "stopped after hop {} ({}): {why} from hop {} on",
                hop.ttl,
                hop.address.as_deref().unwrap_or("?"),
                hop.ttl + 1
            )
        }
        (None, None) => {
            let tried = hops.last().map_or(0, |hop| hop.ttl);
            format!("no answer from any hop (1 to {tried})")
        }
    }
}

/// One probe in flight.
struct Probe {
    socket: Socket,
    sent: Instant,
    done: bool,
}

/// Sends `probes` probes with `ttl` and collects their answers until `deadline`.
fn probe_hop(target: IpAddr, ttl: u8, probes: u8, first_port: u16, deadline: Instant) -> Result<Hop, String> {
    let mut hop = Hop { ttl, address: None, rtt_ms: Vec::new(), note: None };
    let mut inflight: Vec<Probe> = Vec::new();
    for index in 0..probes {
        let port = first_port + u16::from(index);
        let socket = open(target, ttl, port)?;
        let sent = Instant::now();
        match socket.send(&[0_u8; 32]) {
            Ok(_) => inflight.push(Probe { socket, sent, done: false }),
            Err(error) => {
                // The prober itself has no way there (no route, an unreachable next hop it already knows).
                return Ok(Hop { note: Some(format!("no route from the prober: {error}")), ..hop });
            }
        }
    }
    for _ in 0..MAX_ROUNDS_PER_HOP {
        if inflight.iter().all(|probe| probe.done) {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let timeout = PollTimeout::from(u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX));
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = inflight
                .iter()
                .filter(|probe| !probe.done)
                .map(|probe| PollFd::new(probe.socket.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, timeout) {
                Ok(0) => break,
                Ok(_) => fds.iter().map(|fd| fd.revents().is_some_and(|events| !events.is_empty())).collect(),
                Err(Errno::EINTR) => continue,
                Err(error) => return Err(format!("poll: {error}")),
            }
        };
        let mut pending = inflight.iter_mut().filter(|probe| !probe.done);
        for is_ready in ready {
            let Some(probe) = pending.next() else { break };
            if !is_ready {
                continue;
            }
            let at = Instant::now();
            if let Some(answer) = read_answer(&probe.socket, target) {
                probe.done = true;
                hop.rtt_ms.push(at.duration_since(probe.sent).as_secs_f64() * 1000.0);
                if hop.address.is_none() {
                    hop.address = answer.from.map(|ip| ip.to_string());
                }
                if answer.note.is_some() && hop.note.is_none() {
                    hop.note = answer.note;
                }
            }
        }
    }
    Ok(hop)
}

/// Opens one probe socket: UDP, connected to `target:port`, with the TTL and error queue set.
fn open(target: IpAddr, ttl: u8, port: u16) -> Result<Socket, String> {
    let domain = if target.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(|error| format!("socket: {error}"))?;
    let setup = |error: std::io::Error| format!("socket setup: {error}");
    let nix_setup = |error: Errno| format!("socket setup: {error}");
    socket.set_nonblocking(true).map_err(setup)?;
    match target {
        IpAddr::V4(_) => {
            socket.set_ttl_v4(u32::from(ttl)).map_err(setup)?;
            setsockopt(&socket, sockopt::Ipv4RecvErr, &true).map_err(nix_setup)?;
        }
        IpAddr::V6(_) => {
            socket.set_unicast_hops_v6(u32::from(ttl)).map_err(setup)?;
            setsockopt(&socket, sockopt::Ipv6RecvErr, &true).map_err(nix_setup)?;
        }
    }
    socket.connect(&SockAddr::from(SocketAddr::new(target, port))).map_err(|error| format!("connect: {error}"))?;
    Ok(socket)
}

/// What one probe's answer said.
struct Answer {
    /// Who answered.
    from: Option<IpAddr>,
    /// Anything but "time exceeded" (`port unreachable`, `host unreachable`...).
    note: Option<String>,
}

/// Reads one queued error (the ICMP answer) of a probe socket; a datagram from the target counts as an answer
/// from it. `None` when nothing useful was queued.
fn read_answer(socket: &Socket, target: IpAddr) -> Option<Answer> {
    let mut data = [0_u8; 256];
    let mut control = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let received = {
        let mut iov = [IoSliceMut::new(&mut data)];
        recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        )
        .ok()
        .and_then(|message| message.cmsgs().ok().map(|cmsgs| cmsgs.collect::<Vec<_>>()))
    };
    let Some(cmsgs) = received else {
        // No error queued: a datagram came back, from the target (the socket is connected to it).
        let mut buf = [0_u8; 64];
        return recv(socket.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT)
            .ok()
            .map(|_| Answer { from: Some(target), note: None });
    };
    for cmsg in cmsgs {
        let (error, offender) = match cmsg {
            ControlMessageOwned::Ipv4RecvErr(error, offender) => {
                (error, offender.map(|sin| IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))))
            }
            ControlMessageOwned::Ipv6RecvErr(error, offender) => {
                (error, offender.map(|sin6| IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))))
            }
            _ => continue,
        };
        let note = describe(error.ee_origin, error.ee_type, error.ee_code, error.ee_errno);
        // An ICMP message from the target itself (port unreachable) means the probe got there.
        let from_target = offender == Some(target);
        let note = if from_target { None } else { note };
        return Some(Answer { from: offender, note });
    }
    None
}

/// What an ICMP answer means for the path, `None` for "time exceeded" (a router on the way).
fn describe(origin: u8, kind: u8, code: u8, errno: u32) -> Option<String> {
    let text = match (origin, kind, code) {
        (ORIGIN_ICMP, 11, _) | (ORIGIN_ICMP6, 3, _) => return None,
        (ORIGIN_ICMP, 3, 3) | (ORIGIN_ICMP6, 1, 4) => "port unreachable",
        (ORIGIN_ICMP, 3, 0) | (ORIGIN_ICMP6, 1, 0) => "network unreachable",
        (ORIGIN_ICMP, 3, 1) | (ORIGIN_ICMP6, 1, 3) => "host unreachable",
        (ORIGIN_ICMP, 3, 2) => "protocol unreachable",
        (ORIGIN_ICMP, 3, 4) => "fragmentation needed",
        (ORIGIN_ICMP, 3, 9 | 10 | 13) | (ORIGIN_ICMP6, 1, 1 | 5 | 6) => "prohibited",
        (ORIGIN_ICMP6, 2, _) => "packet too big",
        (ORIGIN_LOCAL, _, _) => return Some(format!("local error: {}", Errno::from_raw(errno as i32).desc())),
        _ => return Some(format!("icmp type {kind} code {code}")),
    };
    Some(text.to_owned())
}
