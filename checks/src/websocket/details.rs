//! What a WebSocket run reports in its outcome's details.

use serde::{Deserialize, Serialize};

use crate::tls::TlsPart;

/// The details of a `websocket` run: the address once connecting was tried, the handshake response once there
/// was one, the conversation once the connection was open, and the TLS session and certificate of `wss://`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebsocketDetails {
    /// The address connected to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    /// The handshake response, once one came.
    #[serde(flatten)]
    pub handshake: Option<HandshakeDetails>,
    /// The conversation, once the connection was open.
    #[serde(flatten)]
    pub conversation: Option<Conversation>,
    /// The TLS session and certificate, with `wss://`.
    #[serde(flatten)]
    pub tls: TlsPart,
}

/// The response to the opening handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeDetails {
    /// Its HTTP status: 101 when the connection was upgraded.
    pub status_code: u16,
    /// The subprotocol the server chose.
    #[serde(default)]
    pub subprotocol: Option<String>,
}

/// What happened over an open connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages (text or binary) received.
    #[serde(default)]
    pub messages_received: u64,
    /// Bytes of the messages received.
    #[serde(default)]
    pub bytes_received: u64,
    /// Steps that passed.
    #[serde(default)]
    pub steps_run: usize,
    /// The step that failed, such as `steps[2].expect`.
    #[serde(default)]
    pub failed_step: Option<String>,
    /// Why it failed: `expect_timeout`, `unexpected_message`, `closed`, `frame_limit`, `message_too_large`,
    /// `send_failed`, `read_failed` or `secret`.
    #[serde(default)]
    pub step_failure: Option<String>,
    /// The last message received by the failed step (cut to 512 characters).
    #[serde(default)]
    pub received: Option<String>,
    /// The close code the server sent: 1005 for a close frame without a code, `null` without a close frame.
    #[serde(default)]
    pub close_code: Option<u16>,
    /// The reason text of the server's close frame.
    #[serde(default)]
    pub close_reason: Option<String>,
    /// Who closed first: `client` (probenet, after the last step) or `server`; `null` when the connection
    /// ended without a close frame from the server.
    #[serde(default)]
    pub closed_by: Option<String>,
}

impl crate::details::Details for WebsocketDetails {
    const RECORD_KEYS: &'static [&'static str] =
        &["remote_address", "status_code", "subprotocol", "failed_step", "step_failure", "close_code", "cipher_suite"];

    fn address(&self) -> Option<&str> {
        self.remote_address.as_deref()
    }
}
