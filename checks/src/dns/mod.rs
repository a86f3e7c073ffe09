//! The `dns` kind: a query to a chosen server (or the system resolver) and what the answer must hold.
//!
//! Validated here; executing it is the check-kinds issue's work, and until then a run fails with reason
//! `unsupported`.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};

/// A DNS query and what its answer must look like.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The name to look up, such as `shop.example.com`.
    pub query: String,
    /// The record type (default `A`): A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, CAA.
    pub record: Option<String>,
    /// The server to ask, as `ip:port` or `ip` (port 53). Without it, the system resolver is used.
    pub server: Option<String>,
    /// `udp` (default) or `tcp`.
    pub transport: Option<String>,
    /// Ask the server to recurse (default `true`).
    pub recursion: Option<bool>,
    /// What the answer must look like.
    pub expect: Option<DnsExpectSpec>,
}

/// What a DNS answer must look like.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsExpectSpec {
    /// Accepted response codes (default `[NOERROR]`): NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...
    pub rcode: Option<Vec<String>>,
    /// Values that must each appear in the answer section, such as `203.0.113.10`.
    pub answers: Option<Vec<String>>,
    /// The fewest records the answer section must hold.
    pub min_answers: Option<u32>,
}

const RECORDS: [&str; 10] = ["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA"];
const RCODES: [&str; 10] =
    ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH"];

/// A validated DNS check.
#[derive(Debug, Clone)]
pub struct DnsCheck {
    /// The name looked up.
    pub query: String,
    /// The record type.
    pub record: String,
    /// The server, or `None` for the system resolver.
    pub server: Option<SocketAddr>,
    /// Whether to use TCP.
    pub tcp: bool,
    /// The recursion-desired flag.
    pub recursion: bool,
    /// Accepted response codes.
    pub rcodes: Vec<String>,
    /// Values that must appear in the answers.
    pub answers: Vec<String>,
    /// The fewest answers.
    pub min_answers: u32,
}

impl KindSpec for DnsSpec {
    type Check = DnsCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<DnsCheck> {
        let mut ok = true;
        if self.query.is_empty() || self.query.len() > 253 || self.query.contains(char::is_whitespace) {
            cx.error(&path.key("query"), format!("{:?} is not a domain name", self.query));
            ok = false;
        }
        let record = self.record.unwrap_or_else(|| "A".to_owned()).to_ascii_uppercase();
        if !RECORDS.contains(&record.as_str()) {
            cx.error(&path.key("record"), format!("{record:?} is not a supported record type: {}", RECORDS.join(", ")));
            ok = false;
        }
        let server = match self.server.as_deref() {
            None => None,
            Some(text) => {
                match text.parse::<SocketAddr>().or_else(|_| text.parse().map(|ip| SocketAddr::new(ip, 53))) {
                    Ok(addr) => Some(addr),
                    Err(_) => {
                        cx.error(&path.key("server"), format!("{text:?} is not an IP address with an optional port"));
                        ok = false;
                        None
                    }
                }
            }
        };
        let tcp = match self.transport.as_deref() {
            None | Some("udp") => false,
            Some("tcp") => true,
            Some(other) => {
                cx.error(&path.key("transport"), format!("{other:?} is not udp or tcp"));
                ok = false;
                false
            }
        };
        let expect = self.expect.unwrap_or_default();
        let rcodes: Vec<String> = expect.rcode.unwrap_or_else(|| vec!["NOERROR".to_owned()]);
        for (i, rcode) in rcodes.iter().enumerate() {
            if !RCODES.contains(&rcode.to_ascii_uppercase().as_str()) {
                cx.error(
                    &path.key("expect").key("rcode").index(i),
                    format!("{rcode:?} is not a response code: {}", RCODES.join(", ")),
                );
                ok = false;
            }
        }
        ok.then(|| DnsCheck {
            query: self.query,
            record,
            server,
            tcp,
            recursion: self.recursion.unwrap_or(true),
            rcodes: rcodes.iter().map(|rcode| rcode.to_ascii_uppercase()).collect(),
            answers: expect.answers.unwrap_or_default(),
            min_answers: expect.min_answers.unwrap_or(0),
        })
    }
}

impl DnsCheck {
    /// The name and record, as the `instance` label shows them.
    pub fn target(&self) -> String {
        self.query.clone()
    }
}

impl crate::run::Execute for DnsCheck {
    async fn execute(&self, _cx: &crate::run::RunContext) -> crate::Outcome {
        crate::run::unsupported("dns")
    }
}
