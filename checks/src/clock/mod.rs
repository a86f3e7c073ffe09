//! Phase boundaries from the kernel where it knows them, so that a busy prober's own scheduling delay stays
//! out of the phases: the connect round trip from the socket's `tcp_info`, the response's first byte from
//! its receive stamp. A stopwatch where the kernel gives nothing; the details say which clock each phase used.

mod diag;
mod wire;

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

pub use wire::{Exchange, Marker, Watched, Wire};

/// Where a phase's duration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// The prober's monotonic clock, read when its task ran: it includes the task's scheduling delay.
    Stopwatch,
    /// The kernel's round trip of the SYN and SYN-ACK (`tcp_info`'s first RTT sample).
    KernelRtt,
    /// From the last request byte handed to the kernel to the kernel's receive stamp of the response's first
    /// segment.
    KernelRx,
    /// Different clocks on different hops (redirects), summed.
    Mixed,
}

/// The clock of each phase a run measured (absent: the phase did not happen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseClocks {
    /// The name resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve: Option<Clock>,
    /// The TCP connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<Clock>,
    /// The TLS handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Clock>,
    /// The request's last byte sent to the response's first byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing: Option<Clock>,
    /// The rest of the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Clock>,
    /// A TCP check's send/expect script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<Clock>,
}

impl PhaseClocks {
    /// Notes that `phase` (one of the fields' names) was measured with `clock`; a phase measured again with
    /// another clock, on another hop, becomes [`Clock::Mixed`].
    pub fn note(&mut self, phase: &str, clock: Clock) {
        let slot = match phase {
            "resolve" => &mut self.resolve,
            "connect" => &mut self.connect,
            "tls" => &mut self.tls,
            "processing" => &mut self.processing,
            "transfer" => &mut self.transfer,
            "script" => &mut self.script,
            _ => return,
        };
        *slot = match *slot {
            Some(seen) if seen != clock => Some(Clock::Mixed),
            _ => Some(clock),
        };
    }
}

thread_local! {
    static STOPWATCH_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// Makes checks run on this thread use the stopwatch for every phase (`false` restores the kernel clocks).
/// For tests of the fallback; a `#[tokio::test]` runs its checks on its own thread.
#[doc(hidden)]
pub fn stopwatch_only_on_this_thread(on: bool) {
    STOPWATCH_ONLY.with(|flag| flag.set(on));
}

/// Whether checks started now may ask the kernel.
pub fn kernel_allowed() -> bool {
    !STOPWATCH_ONLY.with(Cell::get)
}

/// The connect phase of `stream`, whose connect took `stopwatch` by the prober's clock: the kernel's SYN
/// round trip when it took one from a SYN sent once (a retransmitted SYN's sample would hide the wait before
/// the retransmission), no longer than the stopwatch; the stopwatch otherwise.
pub fn connect_phase(stream: &TcpStream, stopwatch: Duration, kernel: bool) -> (Duration, Clock) {
    let kernel_rtt = || {
        let (local, peer): (SocketAddr, SocketAddr) = (stream.local_addr().ok()?, stream.peer_addr().ok()?);
        let info = diag::tcp_info(local, peer)?;
        let rtt = Duration::from_micros(u64::from(info.rtt_us));
        (info.retransmits == 0 && !rtt.is_zero() && rtt <= stopwatch).then_some(rtt)
    };
    match kernel.then(kernel_rtt).flatten() {
        Some(rtt) => (rtt, Clock::KernelRtt),
        None => (stopwatch, Clock::Stopwatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_on_two_clocks_is_mixed() {
        let mut clocks = PhaseClocks::default();
        clocks.note("connect", Clock::KernelRtt);
        clocks.note("connect", Clock::KernelRtt);
        clocks.note("processing", Clock::KernelRx);
        clocks.note("processing", Clock::Stopwatch);
        clocks.note("dns", Clock::Stopwatch);
        let json = serde_json::to_string(&clocks).unwrap_or_default();
        assert_eq!(json, r#"{"connect":"kernel_rtt","processing":"mixed"}"#);
    }
}
