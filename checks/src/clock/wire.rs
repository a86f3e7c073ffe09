//! The connection wrappers that see when a request left and when its response came: [`Wire`] wraps the TCP
//! socket and reads the kernel's receive stamps, [`Watched`] wraps what the HTTP client reads and writes (plain
//! or decrypted): it notes when the request's last byte was written and marks the read that brought the
//! response's start.
//!
//! Only the exchange's first reads pay for a stamp (`recvmsg` with a control message); once the response has
//! started, reads and writes go straight to the socket.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, setsockopt, socket, sockopt,
};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// What the wrappers saw of one exchange.
#[derive(Debug, Default)]
struct Marks {
    /// Stamping reads, from [`Marker::arm`] until the response starts.
    armed: bool,
    /// The socket gives receive stamps.
    kernel: bool,
    /// The response has started: nothing more to note.
    started: bool,
    /// When the write that ended the request returned (monotonic).
    request_end: Option<Instant>,
    /// The kernel's receive stamp of the latest stamped read, on the monotonic clock.
    last_rx: Option<Instant>,
    /// The receive stamp of the read that brought the response's start.
    first_byte: Option<Instant>,
}

/// The two instants of an exchange that the wrappers know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exchange {
    /// When the last request byte was handed to the kernel.
    pub request_sent: Option<Instant>,
    /// When the kernel received the segment that carried the response's first byte (its receive stamp).
    pub first_byte: Option<Instant>,
}

/// The handle an executor keeps on a [`Wire`] and its [`Watched`] stream.
#[derive(Debug, Clone, Default)]
pub struct Marker(Arc<Mutex<Marks>>);

impl Marker {
    fn lock(&self) -> MutexGuard<'_, Marks> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// From now on, reads are stamped until the response starts (call it once the connection is ready for the
    /// request: after the TLS handshake).
    pub fn arm(&self) {
        self.lock().armed = true;
    }

    /// Wraps what the HTTP client reads and writes, so that the request's end and the response's start are
    /// marked.
    pub fn watch<S>(&self, io: S, h2: bool) -> Watched<S> {
        let (scan, request) = if h2 {
            (Scan::Frames(Frames::default()), Request::Frames(Frames::outgoing()))
        } else {
            (Scan::Any, Request::UntilAnswer)
        };
        Watched { io, marker: self.clone(), scan, request }
    }

    /// What was seen so far.
    pub fn exchange(&self) -> Exchange {
        let marks = self.lock();
        Exchange { request_sent: marks.request_end, first_byte: marks.first_byte }
    }
}

/// A TCP connection that reads the kernel's receive stamps while an exchange is armed.
#[derive(Debug)]
pub struct Wire {
    io: TcpStream,
    marker: Marker,
}

impl Wire {
    /// Wraps `io`; with `kernel`, asks the socket for receive stamps (`SO_TIMESTAMPNS`). Without them, or when
    /// the socket refuses, reads go straight to the socket.
    pub fn new(io: TcpStream, kernel: bool) -> (Self, Marker) {
        if kernel {
            keep_stamping_on();
        }
        let kernel = kernel && setsockopt(&io, sockopt::ReceiveTimestampns, &true).is_ok();
        let marker = Marker::default();
        marker.lock().kernel = kernel;
        (Self { io, marker: marker.clone() }, marker)
    }

    /// The socket.
    pub fn get_ref(&self) -> &TcpStream {
        &self.io
    }
}

/// Keeps the kernel's receive stamping switched on for the life of the process, with one UDP socket that asks
/// for stamps. The kernel switches stamping on when the first socket asks and off when the last one closes, each
/// time by patching its code on every CPU (deferred to a work queue); without this socket, a prober whose probes
/// do not overlap would pay that twice per probe.
fn keep_stamping_on() {
    static SOCKET: OnceLock<Option<OwnedFd>> = OnceLock::new();
    SOCKET.get_or_init(|| {
        let socket = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).ok()?;
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true).ok()?;
        Some(socket)
    });
}

/// One `recvmsg` with room for a `SCM_TIMESTAMPNS` control message: the bytes read and the stamp (since the
/// epoch, CLOCK_REALTIME) if the kernel gave one.
fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<Duration>)> {
    // CMSG_SPACE(sizeof(struct timespec)) is 32 bytes on 64-bit Linux; twice that leaves room to spare.
    let mut control = [0u8; 64];
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<()>(fd, &mut iov, Some(&mut control), MsgFlags::MSG_DONTWAIT).map_err(io::Error::from)?;
    let stamp = message.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|cmsg| match cmsg {
            ControlMessageOwned::ScmTimestampns(stamp) => Some(Duration::from(stamp)),
            _ => None,
        })
    });
    Ok((message.bytes, stamp))
}

/// A CLOCK_REALTIME instant (since the epoch) on the monotonic clock the phases use: the realtime clock is
/// read between two monotonic readings, and the stamp's age on the first is its age on the second. `None` when
/// the stamp is in the future or older than a minute (the realtime clock was stepped).
pub fn monotonic(stamp: Duration) -> Option<Instant> {
    let before = Instant::now();
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let after = Instant::now();
    let now = before + after.saturating_duration_since(before) / 2;
    let age = wall.checked_sub(stamp)?;
    if age > Duration::from_secs(60) {
        return None;
    }
    now.checked_sub(age)
}

impl AsyncRead for Wire {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let stamping = {
            let marks = this.marker.lock();
            marks.armed && marks.kernel && !marks.started
        };
        if !stamping {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let fd = this.io.as_raw_fd();
        loop {
            ready!(this.io.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match this.io.try_io(Interest::READABLE, || recv_stamped(fd, unfilled)) {
                Ok((n, stamp)) => {
                    buf.advance(n);
                    if n > 0 {
                        this.marker.lock().last_rx = stamp.and_then(monotonic);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// How the request's end is recognised in what the client writes.
#[derive(Debug)]
enum Request {
    /// HTTP/1: the last write before any response byte was read (TLS session tickets are no response bytes).
    UntilAnswer,
    /// HTTP/2: the write that completes the frame ending the request's stream (the server's SETTINGS may be
    /// read, and acknowledged, before the request is written).
    Frames(Frames),
    /// Found: writes pass through.
    Done,
}

/// How the response's start is recognised in what the client reads.
#[derive(Debug)]
enum Scan {
    /// HTTP/1: the first byte read is the response's.
    Any,
    /// HTTP/2: the first HEADERS frame of a stream (the server's SETTINGS and the like come before it).
    Frames(Frames),
    /// Found: reads pass through.
    Done,
}

/// An HTTP/2 frame header reader over one direction of the byte stream.
#[derive(Debug, Default)]
struct Frames {
    header: [u8; 9],
    have: usize,
    /// Payload bytes (or the client preface) still to pass over.
    skip: usize,
    /// The frame being passed over ends the request's stream.
    ending: bool,
}

/// HTTP/2 frame types and flags used here.
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const END_STREAM: u8 = 0x1;
/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, which opens what a client writes.
const CLIENT_PREFACE: usize = 24;

impl Frames {
    /// A reader of what the client writes: the preface, then frames.
    fn outgoing() -> Self {
        Self { skip: CLIENT_PREFACE, ..Self::default() }
    }

    /// Whether `data` holds the start of a HEADERS frame on a stream (not the connection): the response's.
    fn response_starts(&mut self, data: &[u8]) -> bool {
        self.feed(data, |kind, _flags, stream| (kind == HEADERS && stream != 0).then_some(false))
    }

    /// Whether `data` holds the last byte of the frame that ends the request's stream (HEADERS or DATA with
    /// END_STREAM).
    fn request_ends(&mut self, data: &[u8]) -> bool {
        self.feed(data, |kind, flags, stream| {
            (matches!(kind, DATA | HEADERS) && flags & END_STREAM != 0 && stream != 0).then_some(true)
        })
    }

    /// Reads frame headers until `stop` picks one: `Some(false)` stops at its header, `Some(true)` at the end
    /// of its payload.
    fn feed(&mut self, mut data: &[u8], stop: impl Fn(u8, u8, u32) -> Option<bool>) -> bool {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                if self.skip == 0 && self.ending {
                    return true;
                }
                continue;
            }
            let n = (self.header.len() - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == self.header.len() {
                self.have = 0;
                let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = self.header;
                let stream = u32::from_be_bytes([s0 & 0x7f, s1, s2, s3]);
                self.skip = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
                match stop(kind, flags, stream) {
                    Some(false) => return true,
                    Some(true) if self.skip == 0 => return true,
                    Some(true) => self.ending = true,
                    None => {}
                }
            }
        }
        false
    }
}

/// What the HTTP client reads and writes (the plain [`Wire`] or the TLS stream over it), watched for the
/// request's end and the read that brings the response's start.
#[derive(Debug)]
pub struct Watched<S> {
    io: S,
    marker: Marker,
    scan: Scan,
    request: Request,
}

impl<S> Watched<S> {
    /// Notes the write of `written` bytes (the first of `bufs`) if it is, or may be, the request's end.
    fn wrote(&mut self, bufs: &[&[u8]], mut written: usize) {
        if written == 0 {
            return;
        }
        match &mut self.request {
            Request::Done => {}
            Request::UntilAnswer => self.marker.lock().request_end = Some(Instant::now()),
            Request::Frames(frames) => {
                for buf in bufs {
                    let part = &buf[..written.min(buf.len())];
                    written -= part.len();
                    if frames.request_ends(part) {
                        self.request = Request::Done;
                        self.marker.lock().request_end = Some(Instant::now());
                        return;
                    }
                    if written == 0 {
                        return;
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let data = &buf.filled()[before..];
        if data.is_empty() {
            return polled;
        }
        if let Request::UntilAnswer = this.request {
            this.request = Request::Done;
        }
        let started = match &mut this.scan {
            Scan::Done => false,
            Scan::Any => true,
            Scan::Frames(frames) => frames.response_starts(data),
        };
        if started {
            this.scan = Scan::Done;
            let mut marks = this.marker.lock();
            marks.started = true;
            // The latest stamped read carried (or completed the TLS record of) these bytes.
            marks.first_byte = if marks.kernel { marks.last_rx } else { None };
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            this.wrote(&[buf], *n);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled
            && !matches!(this.request, Request::Done)
        {
            let slices: Vec<&[u8]> = bufs.iter().map(|buf| &**buf).collect();
            this.wrote(&slices, *n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let length = u32::try_from(payload.len()).unwrap_or(0).to_be_bytes();
        let mut out = vec![length[1], length[2], length[3], kind, 0];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn http2_headers_of_a_stream_are_found_after_settings_even_when_split() {
        let mut data = frame(0x4, 0, &[0; 12]);
        data.extend(frame(0x8, 0, &[0, 0, 1, 0]));
        data.extend(frame(0x1, 1, b"hpack"));
        let headers_at = data.len() - 14;
        // Split everywhere: the result is the same, and only the part holding the HEADERS frame's header says so.
        for cut in 1..data.len() {
            let mut frames = Frames::default();
            let first = frames.response_starts(&data[..cut]);
            let second = frames.response_starts(&data[cut..]);
            assert_eq!((first, second), (cut >= headers_at + 9, cut < headers_at + 9), "cut at {cut}");
        }
        let mut frames = Frames::default();
        assert!(!frames.response_starts(&frame(0x1, 0, b"")));
    }

    #[test]
    fn an_http2_request_ends_with_the_last_byte_of_its_end_stream_frame() {
        let mut data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        data.extend(frame(0x4, 0, &[0; 6]));
        data.extend(frame(0x1, 1, b"headers"));
        let mut body = frame(0x0, 1, b"body");
        body[4] = END_STREAM;
        data.extend(body);
        data.extend(frame(0x4, 0, b""));
        let end = data.len() - 9;
        for cut in 1..data.len() {
            let mut frames = Frames::outgoing();
            let first = frames.request_ends(&data[..cut]);
            let second = !first && frames.request_ends(&data[cut..]);
            assert_eq!((first, second), (cut >= end, cut < end), "cut at {cut}");
        }
        let mut headers_only = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let mut get = frame(0x1, 1, b"hpack");
        get[4] = END_STREAM | 0x4;
        headers_only.extend(get);
        assert!(Frames::outgoing().request_ends(&headers_only));
    }

    #[test]
    fn a_realtime_stamp_lands_at_its_age_on_the_monotonic_clock() {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let converted =
            monotonic(wall.saturating_sub(Duration::from_millis(250))).unwrap_or_else(|| panic!("no conversion"));
        let age = converted.elapsed();
        assert!(age >= Duration::from_millis(250) && age < Duration::from_millis(350), "{age:?}");
        assert_eq!(monotonic(wall + Duration::from_secs(5)), None);
        assert_eq!(monotonic(wall.saturating_sub(Duration::from_secs(120))), None);
    }
}
