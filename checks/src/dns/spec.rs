//! The `dns` kind as written in YAML, and its validation into [`DnsCheck`].

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::{DNSClass, Name, RecordType};
use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, OneOrMany, Path, split_host_port};

/// A DNS query and what its answer must look like. One query, one attempt: no retries, no cache.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The name to look up, such as `shop.example.com` (always asked fully qualified). With `record: PTR`, an IP
    /// address is turned into its reverse name (`10.0.0.1` asks `1.0.0.10.in-addr.arpa.`).
    pub query: String,
    /// The record type (default `A`): A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, CAA.
    pub record: Option<String>,
    /// The query class (default `IN`): IN, CH (as for `version.bind`) or HS.
    pub class: Option<String>,
    /// The server to ask: `ip`, `ip:port`, `[ipv6]:port`, `host` or `host:port` (port 53 by default; a host name
    /// is resolved first, timed as the `resolve` phase). Without it, the first `nameserver` of `/etc/resolv.conf`.
    pub server: Option<String>,
    /// `udp` (default) or `tcp`. A truncated UDP answer is reported as it is, not retried over TCP.
    pub transport: Option<String>,
    /// Ask the server to recurse: the RD flag (default `true`).
    pub recursion: Option<bool>,
    /// What the answer must look like. Without it, the response code must be NOERROR.
    pub expect: Option<DnsExpectSpec>,
}

/// What a DNS answer must look like. Every assertion is evaluated and reported.
///
/// `answers` compares values: an A/AAAA record's address, a CNAME/NS/PTR name without the trailing dot,
/// `PREFERENCE NAME` for MX, the joined strings of a TXT record, `PRIORITY WEIGHT PORT TARGET` for SRV,
/// `MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM` for SOA and `FLAGS TAG VALUE` for CAA.
///
/// The `*_regex` lists match whole records as dig and blackbox_exporter print them, tab-separated:
/// `NAME.<TAB>TTL<TAB>CLASS<TAB>TYPE<TAB>RDATA`, names with their trailing dot and TXT strings quoted, such as
/// `www.example.com.\t300\tIN\tA\t203.0.113.10`. Write `\s+` between fields to not depend on the separator.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsExpectSpec {
    /// Accepted response codes (default `[NOERROR]`): NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, ...
    /// Any other code fails with reason `rcode`.
    pub rcode: Option<OneOrMany<String>>,
    /// Values that must each appear in the answer section, such as `203.0.113.10` or `10 mail.example.com`.
    pub answers: Option<OneOrMany<String>>,
    /// The fewest records the answer section must hold.
    pub min_answers: Option<u32>,
    /// Whether the answer must (`true`) or must not (`false`) be authoritative: the AA flag.
    pub authoritative: Option<bool>,
    /// Regular expressions that must each match at least one record of the answer section.
    pub answer_regex: Option<OneOrMany<String>>,
    /// Regular expressions that no record of the answer section may match.
    pub answer_not_regex: Option<OneOrMany<String>>,
    /// Regular expressions that must each match at least one record of the authority section.
    pub authority_regex: Option<OneOrMany<String>>,
    /// Regular expressions that no record of the authority section may match.
    pub authority_not_regex: Option<OneOrMany<String>>,
    /// Regular expressions that must each match at least one record of the additional section.
    pub additional_regex: Option<OneOrMany<String>>,
    /// Regular expressions that no record of the additional section may match.
    pub additional_not_regex: Option<OneOrMany<String>>,
}

const RECORDS: [&str; 10] = ["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA"];
const RCODES: [&str; 10] =
    ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH"];
const CLASSES: [&str; 3] = ["IN", "CH", "HS"];

/// Where the query goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsServer {
    /// An address given as written.
    Addr(SocketAddr),
    /// A host name resolved when the check runs, and its port.
    Host(String, u16),
}

impl std::fmt::Display for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Addr(addr) => write!(f, "{addr}"),
            Self::Host(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// A validated DNS check.
#[derive(Debug, Clone)]
pub struct DnsCheck {
    /// The name looked up, as written.
    pub query: String,
    /// The fully qualified name asked.
    pub name: Name,
    /// The record type, as written in upper case.
    pub record: String,
    /// The record type asked.
    pub record_type: RecordType,
    /// The query class.
    pub class: DNSClass,
    /// The server, or `None` for the system resolver's first nameserver.
    pub server: Option<DnsServer>,
    /// Whether to use TCP.
    pub tcp: bool,
    /// The recursion-desired flag.
    pub recursion: bool,
    /// Assertions.
    pub expect: Box<DnsExpect>,
}

/// Validated assertions.
#[derive(Debug, Clone)]
pub struct DnsExpect {
    /// Accepted response codes, upper case.
    pub rcodes: Vec<String>,
    /// Values that must appear in the answers.
    pub answers: Vec<String>,
    /// The fewest answers.
    pub min_answers: Option<u32>,
    /// The required AA flag.
    pub authoritative: Option<bool>,
    /// Regexes on the answer section.
    pub answer: SectionExpect,
    /// Regexes on the authority section.
    pub authority: SectionExpect,
    /// Regexes on the additional section.
    pub additional: SectionExpect,
}

/// Regexes on one section's records.
#[derive(Debug, Clone, Default)]
pub struct SectionExpect {
    /// Each must match at least one record.
    pub regex: Vec<Regex>,
    /// None may match any record.
    pub not_regex: Vec<Regex>,
}

impl KindSpec for DnsSpec {
    type Check = DnsCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<DnsCheck> {
        let mut ok = true;
        let record = self.record.unwrap_or_else(|| "A".to_owned()).to_ascii_uppercase();
        let record_type = if RECORDS.contains(&record.as_str()) { record.parse::<RecordType>().ok() } else { None };
        if record_type.is_none() {
            cx.error(&path.key("record"), format!("{record:?} is not a supported record type: {}", RECORDS.join(", ")));
            ok = false;
        }
        let name = query_name(&self.query, record_type == Some(RecordType::PTR));
        if name.is_none() {
            cx.error(&path.key("query"), format!("{:?} is not a domain name", self.query));
            ok = false;
        }
        let class_text = self.class.as_deref().unwrap_or("IN").to_ascii_uppercase();
        let class = match class_text.as_str() {
            "IN" => Some(DNSClass::IN),
            "CH" => Some(DNSClass::CH),
            "HS" => Some(DNSClass::HS),
            _ => None,
        };
        if class.is_none() {
            cx.error(&path.key("class"), format!("{class_text:?} is not a query class: {}", CLASSES.join(", ")));
            ok = false;
        }
        let server = match self.server.as_deref() {
            None => None,
            Some(text) => match parse_server(text) {
                Some(server) => Some(server),
                None => {
                    cx.error(
                        &path.key("server"),
                        format!("{text:?} is not an IP address or host name with an optional port"),
                    );
                    ok = false;
                    None
                }
            },
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
        let expect = validate_expect(cx, &path.key("expect"), self.expect.unwrap_or_default());
        if !ok {
            return None;
        }
        Some(DnsCheck {
            query: self.query,
            name: name?,
            record,
            record_type: record_type?,
            class: class?,
            server,
            tcp,
            recursion: self.recursion.unwrap_or(true),
            expect: Box::new(expect?),
        })
    }
}

fn validate_expect(cx: &mut Ctx<'_>, path: &Path, spec: DnsExpectSpec) -> Option<DnsExpect> {
    let mut ok = true;
    let rcodes: Vec<String> = spec.rcode.map_or_else(|| vec!["NOERROR".to_owned()], Vec::from);
    if rcodes.is_empty() {
        cx.error(&path.key("rcode"), "the list of accepted response codes is empty");
        ok = false;
    }
    for (i, rcode) in rcodes.iter().enumerate() {
        if !RCODES.contains(&rcode.to_ascii_uppercase().as_str()) {
            cx.error(&path.key("rcode").index(i), format!("{rcode:?} is not a response code: {}", RCODES.join(", ")));
            ok = false;
        }
    }
    let answers: Vec<String> = spec.answers.map(Vec::from).unwrap_or_default();
    for (i, answer) in answers.iter().enumerate() {
        if answer.trim().is_empty() {
            cx.error(&path.key("answers").index(i), "an expected answer is empty");
            ok = false;
        }
    }
    let mut regexes = |cx: &mut Ctx<'_>, key: &str, list: Option<OneOrMany<String>>| {
        let mut out = Vec::new();
        for (i, text) in list.map(Vec::from).unwrap_or_default().iter().enumerate() {
            match cx.regex(&path.key(key).index(i), text) {
                Some(regex) => out.push(regex),
                None => ok = false,
            }
        }
        out
    };
    let answer = SectionExpect {
        regex: regexes(cx, "answer_regex", spec.answer_regex),
        not_regex: regexes(cx, "answer_not_regex", spec.answer_not_regex),
    };
    let authority = SectionExpect {
        regex: regexes(cx, "authority_regex", spec.authority_regex),
        not_regex: regexes(cx, "authority_not_regex", spec.authority_not_regex),
    };
    let additional = SectionExpect {
        regex: regexes(cx, "additional_regex", spec.additional_regex),
        not_regex: regexes(cx, "additional_not_regex", spec.additional_not_regex),
    };
    ok.then(|| DnsExpect {
        rcodes: rcodes.iter().map(|rcode| rcode.to_ascii_uppercase()).collect(),
        answers,
        min_answers: spec.min_answers,
        authoritative: spec.authoritative,
        answer,
        authority,
        additional,
    })
}

/// The fully qualified name to ask for `query`; for PTR, an IP address becomes its reverse name.
fn query_name(query: &str, ptr: bool) -> Option<Name> {
    if query.is_empty() || query.len() > 254 || query.contains(char::is_whitespace) {
        return None;
    }
    if ptr && let Ok(ip) = query.parse::<IpAddr>() {
        return Some(Name::from(ip));
    }
    if query.starts_with('.') && query != "." {
        return None;
    }
    let mut name = Name::from_str_relaxed(query).ok()?;
    name.set_fqdn(true);
    (name.len() <= 255).then_some(name)
}

/// Parses `ip`, `ip:port`, `[ipv6]:port`, `host` or `host:port`.
fn parse_server(text: &str) -> Option<DnsServer> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(DnsServer::Addr(addr));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(DnsServer::Addr(SocketAddr::new(ip, 53)));
    }
    let (host, port) = split_host_port(text, Some(53)).ok()?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(DnsServer::Addr(SocketAddr::new(ip, port)));
    }
    is_host_name(&host).then(|| DnsServer::Host(host.trim_end_matches('.').to_owned(), port))
}

/// Whether `host` is a plausible host name: dot-separated labels of letters, digits, `-` and `_`.
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && !host.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_as_addresses_or_host_names() {
        let addr = |text: &str| Some(DnsServer::Addr(text.parse().unwrap()));
        assert_eq!(parse_server("192.0.2.53"), addr("192.0.2.53:53"));
        assert_eq!(parse_server("192.0.2.53:5353"), addr("192.0.2.53:5353"));
        assert_eq!(parse_server("::1"), addr("[::1]:53"));
        assert_eq!(parse_server("[::1]:5353"), addr("[::1]:5353"));
        assert_eq!(parse_server("ns1.example.com"), Some(DnsServer::Host("ns1.example.com".to_owned(), 53)));
        assert_eq!(parse_server("ns1.example.com.:54"), Some(DnsServer::Host("ns1.example.com".to_owned(), 54)));
        for bad in ["not:an:ip", "ns1.example.com:0", "ns1..example.com", "-ns.example", "1.2.3.256", "a b", ""] {
            assert_eq!(parse_server(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_supported_record_and_rcode_is_known_to_hickory() {
        for record in RECORDS {
            assert_eq!(record.parse::<RecordType>().unwrap().to_string(), record);
        }
        for (value, rcode) in RCODES.iter().enumerate() {
            let code = hickory_proto::op::ResponseCode::from(0, u8::try_from(value).unwrap());
            assert_eq!(super::super::render::rcode(code), *rcode);
        }
    }

    #[test]
    fn query_names_are_fully_qualified() {
        assert_eq!(query_name("www.example.com", false).unwrap().to_ascii(), "www.example.com.");
        assert_eq!(query_name("www.example.com.", false).unwrap().to_ascii(), "www.example.com.");
        assert_eq!(query_name("_sip._tcp.example.com", false).unwrap().to_ascii(), "_sip._tcp.example.com.");
        assert_eq!(query_name("10.0.0.1", true).unwrap().to_ascii(), "1.0.0.10.in-addr.arpa.");
        assert_eq!(query_name("bücher.example", false).unwrap().to_ascii(), "xn--bcher-kva.example.");
        assert!(query_name("a..b", false).is_none());
        assert!(query_name(&"a".repeat(64), false).is_none());
        assert!(query_name("", false).is_none());
    }
}
