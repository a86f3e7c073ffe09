//! What a DNS run reports in its outcome's details.

use serde::{Deserialize, Serialize};

/// The details of a `dns` run: the question always, the answer once one came.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsDetails {
    /// The name asked for, in ASCII.
    pub query: String,
    /// The record type, as written (`A`, `MX`...).
    pub record: String,
    /// The class (`IN`).
    pub class: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The server asked, `null` until it is known.
    pub server: Option<String>,
    /// The response, once one came.
    #[serde(flatten)]
    pub answer: Option<DnsAnswer>,
}

/// What the response said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsAnswer {
    /// The response code's name (`NOERROR`, `NXDOMAIN`...).
    #[serde(deserialize_with = "crate::details::present")]
    pub rcode: Option<String>,
    /// The header flags.
    #[serde(default)]
    pub flags: Flags,
    /// The TC flag.
    #[serde(default)]
    pub truncated: bool,
    /// Records in the answer section.
    #[serde(default)]
    pub answer_rrs: usize,
    /// Records in the authority section.
    #[serde(default)]
    pub authority_rrs: usize,
    /// Records in the additional section.
    #[serde(default)]
    pub additional_rrs: usize,
    /// The answer section, one dig-style line per record.
    #[serde(default)]
    pub answer: Vec<String>,
    /// Each answer's value.
    #[serde(default)]
    pub answer_values: Vec<String>,
    /// The authority section.
    #[serde(default)]
    pub authority: Vec<String>,
    /// The additional section.
    #[serde(default)]
    pub additional: Vec<String>,
    /// The zone's serial, when the answer holds an SOA record.
    #[serde(default)]
    pub serial: Option<u32>,
    /// The response's size.
    #[serde(default)]
    pub response_bytes: usize,
    /// Packets skipped because they did not answer the query.
    #[serde(default)]
    pub ignored_responses: usize,
}

/// The header flags of a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Flags {
    /// Authoritative answer.
    pub aa: bool,
    /// Truncated.
    pub tc: bool,
    /// Recursion desired.
    pub rd: bool,
    /// Recursion available.
    pub ra: bool,
    /// Authentic data.
    pub ad: bool,
    /// Checking disabled.
    pub cd: bool,
}

impl crate::details::Details for DnsDetails {
    const RECORD_KEYS: &'static [&'static str] = &["server", "transport", "rcode", "answer_rrs"];

    fn address(&self) -> Option<&str> {
        self.server.as_deref()
    }
}
