//! What an ICMP run reports in its outcome's details.

use serde::{Deserialize, Serialize};

/// The details of an `icmp` run that sent at least one echo request (a run that could not is `null`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IcmpDetails {
    /// The address pinged.
    pub address: String,
    /// `datagram` (unprivileged) or `raw`.
    pub socket: String,
    /// Payload bytes per request.
    pub payload_size: usize,
    /// Requests planned.
    pub count: u32,
    /// Requests sent.
    pub sent: usize,
    /// Replies received.
    pub received: usize,
    /// Duplicate replies.
    pub duplicates: u32,
    /// The share of requests without a reply, 0 to 1.
    pub loss: f64,
    /// Round-trip statistics; `null` when no reply came.
    pub rtt_seconds: Option<Rtt>,
    /// Each request sent and its round trip.
    pub replies: Vec<Reply>,
    /// Errors met (bounded).
    pub errors: Vec<String>,
}

/// Round-trip statistics in seconds, as `ping` prints them (`stddev` is its `mdev`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rtt {
    /// The fastest.
    pub min: f64,
    /// The mean.
    pub avg: f64,
    /// The slowest.
    pub max: f64,
    /// The standard deviation.
    pub stddev: f64,
}

/// One echo request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reply {
    /// Its sequence number, from 1.
    pub seq: usize,
    /// Its round trip, `null` without a reply.
    pub rtt_seconds: Option<f64>,
}

impl crate::details::Details for IcmpDetails {
    const RECORD_KEYS: &'static [&'static str] = &["address", "sent", "received", "loss"];

    fn address(&self) -> Option<&str> {
        Some(&self.address)
    }
}
