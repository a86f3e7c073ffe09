//! What a gRPC run reports in its outcome's details.

use serde::{Deserialize, Serialize};

use crate::tls::TlsPart;

/// The details of a `grpc` run: the address once connecting was tried, the health answer and the call's end
/// once they came, and the TLS session and certificate unless `plaintext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpcDetails {
    /// The address connected to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    /// The health answer: `SERVING`, `NOT_SERVING`, `SERVICE_UNKNOWN` or `UNKNOWN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_status: Option<String>,
    /// The gRPC status code the last call (health check or call) ended with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u32>,
    /// Its status message, when the server sent one (cut to 200 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// The method called, `package.Service/Method`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The call's response in JSON (cut to 512 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// The TLS session and certificate.
    #[serde(flatten)]
    pub tls: TlsPart,
}

impl crate::details::Details for GrpcDetails {
    const RECORD_KEYS: &'static [&'static str] =
        &["remote_address", "serving_status", "status_code", "method", "cipher_suite"];

    fn address(&self) -> Option<&str> {
        self.remote_address.as_deref()
    }
}
