//! What a TCP run reports in its outcome's details.

use serde::{Deserialize, Serialize};

use crate::clock::PhaseClocks;
use crate::tls::TlsPart;

/// The details of a `tcp` run: the address once connecting was tried, the conversation once connected, and
/// the TLS session and certificate when the check speaks TLS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TcpDetails {
    /// The address connected to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    /// The conversation, once connected.
    #[serde(flatten)]
    pub conversation: Option<Conversation>,
    /// The TLS session and certificate, with `tls`.
    #[serde(flatten)]
    pub tls: TlsPart,
    /// Which clock each phase came from (see the HTTP details' `clocks`). Absent in results of versions that
    /// did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clocks: Option<PhaseClocks>,
}

/// What was said over a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The local address.
    #[serde(deserialize_with = "crate::details::present")]
    pub local_address: Option<String>,
    /// Bytes sent.
    #[serde(default)]
    pub bytes_sent: u64,
    /// Bytes received.
    #[serde(default)]
    pub bytes_received: u64,
    /// The server's first line, if it spoke.
    #[serde(default)]
    pub banner: Option<String>,
    /// Script steps run.
    #[serde(default)]
    pub steps_run: usize,
}

impl crate::details::Details for TcpDetails {
    const RECORD_KEYS: &'static [&'static str] = &["remote_address", "local_address", "cipher_suite", "alpn"];

    fn address(&self) -> Option<&str> {
        self.remote_address.as_deref()
    }
}
