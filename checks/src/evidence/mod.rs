//! Evidence of a failed run, captured from the prober's own region: a traceroute to the target's address,
//! with pointers to what the run's details already hold (DNS answers, the TLS chain).
//!
//! It lives in `checks`, next to the kinds, because it is a measurement like theirs: it needs the same
//! sockets (`socket2`, `nix`), the same name resolution ([`crate::net`]) and produces an [`Artifact`] of the
//! [`Outcome`] this crate defines. *When* to capture (only on a failure, rate-limited per pair, off the run's
//! own time) is the prober runtime's decision: its runner calls [`capture`] and attaches what it returns.

pub mod traceroute;

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

pub use traceroute::{Hop, Method, Options, Traceroute};

use crate::Check;
use crate::outcome::{Artifact, Outcome};

/// The artifact name of a traceroute.
pub const TRACEROUTE_ARTIFACT: &str = "traceroute.json";
/// Its media type.
pub const TRACEROUTE_MEDIA_TYPE: &str = "application/json";

/// What `traceroute.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The path from the prober to the target's address.
    pub traceroute: Traceroute,
    /// Where the run's own details (the same result's `details`) hold more evidence, as JSON pointers, such
    /// as `/answer` (DNS answers) or `/certificate` (the TLS chain). Referenced, not copied.
    pub in_details: Vec<String>,
}

/// Places in a kind's details that hold evidence worth pointing at, when present and not null.
const DETAIL_POINTERS: &[&str] = &["/answer", "/certificate", "/tls/certificate", "/chain", "/failed_request_list"];

/// Traces the path to the address the failed run used (from its details) or, when it never got one, to the
/// first address of the check's target host; `None` when there is no address to trace (the name does not
/// resolve). Only an address goes into the evidence: never a URL, a user name or a password.
pub async fn capture(check: &Check, outcome: &Outcome, options: Options) -> Option<Artifact> {
    let address = match address_in_details(&outcome.details) {
        Some(address) => address,
        None => resolve_target(&check.kind.target()).await?,
    };
    let traceroute = traceroute::trace(address, options).await;
    let in_details = DETAIL_POINTERS
        .iter()
        .filter(|pointer| outcome.details.pointer(pointer).is_some_and(|value| !value.is_null()))
        .map(|pointer| (*pointer).to_owned())
        .collect();
    let evidence = Evidence { traceroute, in_details };
    let data = serde_json::to_vec_pretty(&evidence).ok()?;
    Some(Artifact {
        name: TRACEROUTE_ARTIFACT.to_owned(),
        media_type: TRACEROUTE_MEDIA_TYPE.to_owned(),
        data,
        path: None,
    })
}

/// The peer address a run recorded: `remote_address` (http, tcp, grpc, websocket), `address` (icmp, tls) or
/// `server` (dns), as an address or `address:port`.
pub fn address_in_details(details: &serde_json::Value) -> Option<IpAddr> {
    ["remote_address", "address", "server"].iter().find_map(|key| parse_address(details.get(key)?.as_str()?))
}

fn parse_address(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().or_else(|| text.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

/// The host of a check's target (a URL, `host:port`, or a host), resolved to its first address.
async fn resolve_target(target: &str) -> Option<IpAddr> {
    let host = match url::Url::parse(target) {
        Ok(url) if url.has_host() => match url.host()? {
            url::Host::Domain(name) => name.to_owned(),
            url::Host::Ipv4(ip) => return Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => return Some(IpAddr::V6(ip)),
        },
        _ => match parse_address(target) {
            Some(ip) => return Some(ip),
            None => target.rsplit_once(':').map_or(target, |(host, _)| host).to_owned(),
        },
    };
    let addrs = crate::net::lookup(&host, 0, crate::net::IpVersion::Any).await.ok()?;
    addrs.first().map(|addr| addr.ip())
}

/// The traceroute in a result's artifacts, decoded (while its bytes still travel with it).
pub fn traceroute_of(outcome: &Outcome) -> Option<Evidence> {
    let artifact = outcome.artifacts.iter().find(|artifact| artifact.name == TRACEROUTE_ARTIFACT)?;
    serde_json::from_slice(&artifact.data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_comes_from_the_details_without_a_port() {
        let details = serde_json::json!({"remote_address": "10.1.2.3:443"});
        assert_eq!(address_in_details(&details), Some("10.1.2.3".parse().unwrap()));
        let details = serde_json::json!({"address": "::1"});
        assert_eq!(address_in_details(&details), Some("::1".parse().unwrap()));
        let details = serde_json::json!({"server": "[2001:db8::1]:53"});
        assert_eq!(address_in_details(&details), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(address_in_details(&serde_json::json!({"remote_address": null})), None);
    }

    #[tokio::test]
    async fn a_url_target_resolves_to_its_host_only() {
        assert_eq!(resolve_target("https://user:secret@127.0.0.1:8443/x?token=t").await, Some([127, 0, 0, 1].into()));
        assert_eq!(resolve_target("[::1]:80").await, Some("::1".parse().unwrap()));
        assert_eq!(resolve_target("127.0.0.1:80").await, Some([127, 0, 0, 1].into()));
    }
}
