//! A connected TCP socket's `tcp_info` read through `sock_diag` netlink, as `ss -ti` does.
//!
//! `getsockopt(TCP_INFO)` has no safe wrapper in `nix` or `socket2`, and this workspace forbids `unsafe`; the
//! same kernel struct comes, safely, as the `INET_DIAG_INFO` attribute of a `sock_diag` answer about one
//! socket, looked up by its four addresses and ports. One netlink socket per thread, one request and one
//! answer per connection: a few microseconds, after the connect has been timed.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket};

/// `SOCK_DIAG_BY_FAMILY`: the netlink message type of a `sock_diag` request and its answer.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 1;
/// `INET_DIAG_INFO`: the attribute holding `struct tcp_info`.
const INET_DIAG_INFO: u16 = 2;
/// `INET_DIAG_NOCOOKIE`: look the socket up by addresses alone.
const NO_COOKIE: u32 = u32::MAX;
/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;
/// `struct nlmsghdr`.
const NLMSG_HEADER: usize = 16;
/// `struct inet_diag_req_v2`.
const REQUEST: usize = 56;
/// `struct inet_diag_msg`, before the attributes.
const DIAG_MSG: usize = 72;

/// The few `tcp_info` fields the clocks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// `tcpi_rtt`: the smoothed round trip in microseconds. Right after connect it is the one sample the
    /// kernel took, SYN to SYN-ACK (0 when it took none).
    pub rtt_us: u32,
    /// `tcpi_retransmits` and `tcpi_total_retrans` added: a retransmitted SYN makes the sample unusable.
    pub retransmits: u32,
}

thread_local! {
    /// This thread's netlink socket and the sequence number of its last request: opened once per thread,
    /// not per connection (two system calls and a socket less per probe). Threads do not change network
    /// namespace in probenet, so the socket always looks in the namespace of the connections it is asked about.
    static NETLINK: std::cell::RefCell<Option<(std::os::fd::OwnedFd, u32)>> = const { std::cell::RefCell::new(None) };
}

/// The `tcp_info` of the connection from `local` to `peer` in this network namespace, if the kernel answers.
pub fn tcp_info(local: SocketAddr, peer: SocketAddr) -> Option<TcpInfo> {
    let mut request = request(local, peer)?;
    NETLINK.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let fd = socket(
                AddressFamily::Netlink,
                SockType::Datagram,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkSockDiag,
            )
            .ok()?;
            *slot = Some((fd, 0));
        }
        let (fd, seq) = slot.as_mut()?;
        *seq = seq.wrapping_add(1);
        request[8..12].copy_from_slice(&seq.to_ne_bytes());
        if send(fd.as_raw_fd(), &request, MsgFlags::empty()).is_err() {
            *slot = None;
            return None;
        }
        // The kernel answers a single-socket request before `send` returns. An answer to an earlier request
        // (none is expected: each is read at once) is skipped by its sequence number, so it is never taken for
        // this connection's.
        let mut answer = [0u8; 1024];
        for _ in 0..4 {
            let read = recv(fd.as_raw_fd(), &mut answer, MsgFlags::MSG_DONTWAIT).ok()?;
            let answer = answer.get(..read)?;
            if u32_at(answer, 8)? == *seq {
                return parse(answer);
            }
        }
        None
    })
}

/// The netlink request about one TCP socket (`idiag_src` is the local end, as in `ss`).
fn request(local: SocketAddr, peer: SocketAddr) -> Option<[u8; NLMSG_HEADER + REQUEST]> {
    let family = match (local, peer) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => AddressFamily::Inet,
        (SocketAddr::V6(_), SocketAddr::V6(_)) => AddressFamily::Inet6,
        _ => return None,
    };
    let mut out = [0u8; NLMSG_HEADER + REQUEST];
    let length = u32::try_from(out.len()).ok()?;
    out[0..4].copy_from_slice(&length.to_ne_bytes());
    out[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    out[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    // seq is set per request by `tcp_info`; pid stays 0.
    let body = &mut out[NLMSG_HEADER..];
    body[0] = u8::try_from(family as i32).ok()?;
    body[1] = IPPROTO_TCP;
    body[2] = 1 << (INET_DIAG_INFO - 1);
    body[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    let id = &mut body[8..];
    id[0..2].copy_from_slice(&local.port().to_be_bytes());
    id[2..4].copy_from_slice(&peer.port().to_be_bytes());
    let address = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&v4.ip().octets());
            bytes
        }
        SocketAddr::V6(v6) => v6.ip().octets(),
    };
    id[4..20].copy_from_slice(&address(local));
    id[20..36].copy_from_slice(&address(peer));
    // idiag_if stays 0 (any interface); then the cookie.
    id[40..44].copy_from_slice(&NO_COOKIE.to_ne_bytes());
    id[44..48].copy_from_slice(&NO_COOKIE.to_ne_bytes());
    Some(out)
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The `tcp_info` fields of a `sock_diag` answer; `None` for an error answer or a short one.
fn parse(answer: &[u8]) -> Option<TcpInfo> {
    let length = usize::try_from(u32_at(answer, 0)?).ok()?;
    // An `NLMSG_ERROR` answer means the kernel has no such socket.
    if u16_at(answer, 4)? != SOCK_DIAG_BY_FAMILY {
        return None;
    }
    let message = answer.get(..length)?;
    let mut at = NLMSG_HEADER + DIAG_MSG;
    while at + 4 <= message.len() {
        let size = usize::from(u16_at(message, at)?);
        if size < 4 {
            return None;
        }
        if u16_at(message, at + 2)? == INET_DIAG_INFO {
            let info = message.get(at + 4..at + size)?;
            // Offsets in `struct tcp_info` (stable since Linux 2.6): tcpi_retransmits at 2, tcpi_rtt at 68,
            // tcpi_total_retrans at 100.
            return Some(TcpInfo {
                rtt_us: u32_at(info, 68)?,
                retransmits: u32::from(*info.get(2)?) + u32_at(info, 100)?,
            });
        }
        at += size.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_local_end_first() {
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap_or_else(|e| panic!("{e}"));
        let peer: SocketAddr = "10.0.0.2:443".parse().unwrap_or_else(|e| panic!("{e}"));
        let request = request(local, peer).unwrap_or_else(|| panic!("no request"));
        assert_eq!(u32_at(&request, 0), Some(72));
        let id = &request[NLMSG_HEADER + 8..];
        assert_eq!(&id[0..4], &[0x9c, 0x40, 0x01, 0xbb]);
        assert_eq!(&id[4..8], &[127, 0, 0, 1]);
        assert_eq!(&id[20..24], &[10, 0, 0, 2]);
        let v6: SocketAddr = "[::1]:1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(super::request(local, v6).is_none());
    }

    #[test]
    fn a_short_or_error_answer_gives_nothing() {
        /// `NLMSG_ERROR`: the kernel's answer when it has no such socket.
        const NLMSG_ERROR: u16 = 2;
        assert_eq!(parse(&[]), None);
        let mut error = [0u8; 36];
        error[0..4].copy_from_slice(&36u32.to_ne_bytes());
        error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert_eq!(parse(&error), None);
    }

    #[test]
    fn the_round_trip_of_a_loopback_connection_is_read() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        let local = stream.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let peer = stream.peer_addr().unwrap_or_else(|e| panic!("{e}"));
        let info = tcp_info(local, peer).unwrap_or_else(|| panic!("no tcp_info for {local} -> {peer}"));
        assert!(info.rtt_us > 0 && info.rtt_us < 1_000_000, "{info:?}");
        assert_eq!(info.retransmits, 0);
    }

    #[test]
    fn the_thread_socket_answers_each_connection_in_turn_and_skips_a_stale_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let target = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let streams: Vec<std::net::TcpStream> =
            (0..3).map(|_| std::net::TcpStream::connect(target).unwrap_or_else(|e| panic!("{e}"))).collect();
        let ends = |stream: &std::net::TcpStream| {
            (
                stream.local_addr().unwrap_or_else(|e| panic!("{e}")),
                stream.peer_addr().unwrap_or_else(|e| panic!("{e}")),
            )
        };
        for round in 0..20 {
            let (local, peer) = ends(&streams[round % 3]);
            assert!(tcp_info(local, peer).is_some(), "round {round}: {local} -> {peer}");
            // A connection the kernel does not have: an error answer, and the next question is still answered.
            let gone: SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(tcp_info(local, gone), None);
        }
        // An answer left unread in the socket (as after a `recv` that came too early) belongs to an older
        // sequence number and is not taken for the next connection's.
        let (local, peer) = ends(&streams[0]);
        NETLINK.with(|cell| {
            let slot = cell.borrow();
            let (fd, seq) = slot.as_ref().unwrap_or_else(|| panic!("no thread socket"));
            let mut stale = request(local, peer).unwrap_or_else(|| panic!("no request"));
            stale[8..12].copy_from_slice(&seq.wrapping_sub(7).to_ne_bytes());
            send(fd.as_raw_fd(), &stale, MsgFlags::empty()).unwrap_or_else(|e| panic!("{e}"));
        });
        let (local, peer) = ends(&streams[1]);
        let seq_before = NETLINK.with(|cell| cell.borrow().as_ref().map(|(_, seq)| *seq));
        assert!(tcp_info(local, peer).is_some());
        assert_eq!(NETLINK.with(|cell| cell.borrow().as_ref().map(|(_, seq)| *seq)), seq_before.map(|s| s + 1));
        // Both the stale answer and this connection's were read: had the stale one been taken, the right one
        // would still be waiting.
        NETLINK.with(|cell| {
            let slot = cell.borrow();
            let (fd, _) = slot.as_ref().unwrap_or_else(|| panic!("no thread socket"));
            let mut rest = [0u8; 1024];
            assert!(recv(fd.as_raw_fd(), &mut rest, MsgFlags::MSG_DONTWAIT).is_err(), "an answer was left unread");
        });
    }
}
