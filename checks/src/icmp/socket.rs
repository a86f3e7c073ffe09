//! ICMP sockets: an unprivileged datagram ("ping") socket when `net.ipv4.ping_group_range` allows it, else a
//! raw socket (root or CAP_NET_RAW); non-blocking, connected to the target, driven by tokio.
//!
//! tokio drives the socket through its `UdpSocket`, which only needs a non-blocking datagram-style file
//! descriptor and uses plain `send`/`recv` on it; `AsyncFd::new` is deprecated in this tokio (its safe
//! replacement is `unsafe`), and `unsafe` is forbidden here.

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Which kind of socket is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SocketKind {
    /// An ICMP datagram socket: the kernel sets the identifier and hands us only our own replies.
    Datagram,
    /// A raw socket: we see every ICMP packet from the target (IPv4: with its IP header).
    Raw,
}

impl SocketKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Datagram => "datagram",
            Self::Raw => "raw",
        }
    }
}

/// An open ICMP socket, connected to one address.
#[derive(Debug)]
pub(super) struct IcmpSocket {
    io: tokio::net::UdpSocket,
    pub kind: SocketKind,
}

const NO_PERMISSION: &str =
    "icmp: no permission for ping sockets (net.ipv4.ping_group_range) or raw sockets (CAP_NET_RAW)";

impl IcmpSocket {
    /// Opens a socket for pinging `ip`: a datagram socket first, else a raw one.
    pub(super) fn open(ip: IpAddr) -> Result<Self, String> {
        let (domain, protocol) = match ip {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
        };
        let datagram_error = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(socket) => return Self::ready(socket, SocketKind::Datagram, ip),
            Err(error) => error,
        };
        match Socket::new(domain, Type::RAW, Some(protocol)) {
            Ok(socket) => Self::ready(socket, SocketKind::Raw, ip),
            Err(raw_error) => {
                let denied = |error: &io::Error| error.kind() == io::ErrorKind::PermissionDenied;
                if denied(&datagram_error) && denied(&raw_error) {
                    Err(NO_PERMISSION.to_owned())
                } else {
                    Err(format!("icmp: cannot open a socket: {raw_error}"))
                }
            }
        }
    }

    fn ready(socket: Socket, kind: SocketKind, ip: IpAddr) -> Result<Self, String> {
        socket.set_nonblocking(true).map_err(|error| format!("icmp: socket setup: {error}"))?;
        // Connected, the socket only receives packets from the target, and errors about it.
        socket
            .connect(&SockAddr::from(SocketAddr::new(ip, 0)))
            .map_err(|error| format!("icmp: cannot reach {ip}: {error}"))?;
        let io = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))
            .map_err(|error| format!("icmp: socket setup: {error}"))?;
        Ok(Self { io, kind })
    }

    /// Sends one packet to the target.
    pub(super) async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.io.send(packet).await
    }

    /// Receives one packet from the target.
    pub(super) async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.recv(buf).await
    }
}
