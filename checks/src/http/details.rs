//! What an HTTP run reports in its outcome's details.

use serde::{Deserialize, Serialize};

use crate::clock::PhaseClocks;
use crate::tls::TlsPart;

/// The details of an `http` run: the final response once there is one, and the TLS session and certificate
/// of an `https://` URL (alone when the handshake failed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpDetails {
    /// The final response.
    #[serde(flatten)]
    pub response: Option<HttpResponse>,
    /// The TLS session and certificate of the final hop.
    #[serde(flatten)]
    pub tls: TlsPart,
    /// Which clock each phase came from: the kernel's (`kernel_rtt`, `kernel_rx`) or the prober's
    /// (`stopwatch`). Absent in results of versions that did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clocks: Option<PhaseClocks>,
    /// The address connected to. The executor does not report it yet (adding a key would change the details
    /// results carry); only the cost estimate's representative outcome sets it, so that it counts
    /// `probe_ip_protocol` as for every other kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
}

/// The final response, after redirects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// Its status code.
    pub status_code: u16,
    /// Its HTTP version: `1.0`, `1.1`, `2`.
    #[serde(default)]
    pub http_version: String,
    /// Redirects followed.
    #[serde(default)]
    pub redirects: u32,
    /// The URL that answered.
    #[serde(default)]
    pub final_url: String,
    /// Body bytes read.
    #[serde(default)]
    pub content_length: usize,
    /// Whether the body was longer than `body_limit` and cut there.
    #[serde(default)]
    pub body_truncated: bool,
    /// Whether the final hop used TLS.
    #[serde(default)]
    pub tls: bool,
}

impl crate::details::Details for HttpDetails {
    const RECORD_KEYS: &'static [&'static str] = &[
        "status_code",
        "http_version",
        "redirects",
        "final_url",
        "content_length",
        "body_truncated",
        "cipher_suite",
        "alpn",
    ];

    fn address(&self) -> Option<&str> {
        self.remote_address.as_deref()
    }
}
