//! Network pieces every kind shares: the address-family preference, which addresses of a name to probe,
//! name resolution (honouring the address the runtime pinned) and error chains.

use std::net::{IpAddr, SocketAddr};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, Path};
use crate::run::RunContext;

/// An address family preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IpVersion {
    /// Whatever the resolver gives first.
    Any,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl IpVersion {
    /// Whether `ip` belongs to the family this preference allows.
    pub fn fits(self, ip: IpAddr) -> bool {
        match self {
            Self::Any => true,
            Self::Ipv4 => ip.is_ipv4(),
            Self::Ipv6 => ip.is_ipv6(),
        }
    }
}

/// The config error for an address literal of the other family than `ip_version` asks for.
pub fn family_mismatch(what: &str, ip: IpAddr) -> String {
    let (family, asked) = if ip.is_ipv4() { ("IPv4", "ipv6") } else { ("IPv6", "ipv4") };
    format!("{what} is an {family} address, but `ip_version` is {asked}")
}

/// Which addresses of a name a check probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IpStrategy {
    /// One address: the first the resolver gives of the asked family.
    First,
    /// Every address of the asked family, each probed on its own.
    All,
}

/// When a check that probes every address of a name is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IpVerdict {
    /// Every address is up.
    All,
    /// At least one address is up.
    Any,
}

/// Which addresses of its host a validated check probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpPlan {
    /// The first address of the asked family (`ip_strategy: first`, the default).
    #[default]
    First,
    /// Every address of the asked family (at most [`MAX_IPS`]), judged by the verdict (`ip_strategy: all`).
    Each(IpVerdict),
}

/// The most addresses of one name a check with `ip_strategy: all` probes: a larger answer is cut (and the
/// run's log says so), so that a hostile DNS answer cannot fan a check out without bound.
pub const MAX_IPS: usize = 16;

/// What the runtime needs to probe every address of a check's host: the name, the port (0 for ICMP), the
/// family asked for and the plan. A kind gives it through [`crate::KindCheck::ip_target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpTarget {
    /// The host as configured: a name or an IP address (without brackets).
    pub host: String,
    /// The port probed (0 when the kind has none).
    pub port: u16,
    /// The address family asked for.
    pub version: IpVersion,
    /// Which addresses to probe.
    pub plan: IpPlan,
}

impl IpTarget {
    /// The target `host:port` (`port` 0 for none) of a check asking for `version` with `plan`.
    pub fn new(host: &str, port: u16, version: IpVersion, plan: IpPlan) -> Self {
        Self { host: host.trim_start_matches('[').trim_end_matches(']').to_owned(), port, version, plan }
    }
}

/// Validates `ip_strategy` and `ip_verdict` of a kind's body at `path`, whose host is `host` (when it
/// parsed): `ip_verdict` needs `ip_strategy: all`, and `all` needs a name (an IP address is one address).
pub fn validate_ip_plan(
    cx: &mut Ctx<'_>,
    path: &Path,
    strategy: Option<IpStrategy>,
    verdict: Option<IpVerdict>,
    host: Option<&str>,
) -> IpPlan {
    match strategy {
        Some(IpStrategy::All) => {
            if let Some(ip) = host.and_then(|host| host.parse::<IpAddr>().ok()) {
                cx.error(
                    &path.key("ip_strategy"),
                    format!(
                        "`all` probes every address of a name, but the host {ip} is an address: leave `ip_strategy` out"
                    ),
                );
            }
            IpPlan::Each(verdict.unwrap_or(IpVerdict::All))
        }
        Some(IpStrategy::First) | None => {
            if verdict.is_some() {
                cx.error_at_key(&path.key("ip_verdict"), "`ip_verdict` only applies with `ip_strategy: all`");
            }
            IpPlan::First
        }
    }
}

/// Every address of `host` of the asked family, in the resolver's order (an IP literal is itself; the
/// address the runtime pinned for this run when `host` is the pinned name, see [`RunContext::pinned`]).
/// The error is one line for a failure with reason `dns`.
pub async fn resolve_all(
    cx: &RunContext,
    host: &str,
    port: u16,
    preference: IpVersion,
) -> Result<Vec<SocketAddr>, String> {
    if let Some(ip) = cx.pinned(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    lookup(host, port, preference).await
}

/// Every address of `host` of the asked family, in the resolver's order, asking the resolver (an IP literal
/// is itself).
pub(crate) async fn lookup(host: &str, port: u16, preference: IpVersion) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| format!("resolving {host}: {error}"))?
        .filter(|addr| preference.fits(addr.ip()))
        .collect();
    if addrs.is_empty() {
        return Err(match preference {
            IpVersion::Any => format!("{host} has no address"),
            _ => format!("{host} has no address of the asked family"),
        });
    }
    Ok(addrs)
}

/// The first address of `host` of the asked family (the pinned one, see [`resolve_all`]).
pub async fn resolve(cx: &RunContext, host: &str, port: u16, preference: IpVersion) -> Result<SocketAddr, String> {
    let addrs = resolve_all(cx, host, port, preference).await?;
    addrs.first().copied().ok_or_else(|| format!("{host} has no address"))
}

/// An error and its sources, joined with ": ", each only once.
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = inner.source();
    }
    parts.join(": ")
}

/// `host:port`, with an IPv6 address in brackets: how a `host` and `port` target shows in the `instance` label.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_fit_their_preference() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let v6: IpAddr = "::1".parse().unwrap_or(IpAddr::from([0u16; 8]));
        assert!(IpVersion::Any.fits(v4) && IpVersion::Any.fits(v6));
        assert!(IpVersion::Ipv4.fits(v4) && !IpVersion::Ipv4.fits(v6));
        assert!(IpVersion::Ipv6.fits(v6) && !IpVersion::Ipv6.fits(v4));
        assert_eq!(family_mismatch("the host ::1", v6), "the host ::1 is an IPv6 address, but `ip_version` is ipv4");
    }

    #[tokio::test]
    async fn literals_resolve_to_themselves_and_families_filter() {
        let cx = RunContext::new("local", std::time::Duration::from_secs(1));
        assert_eq!(
            resolve(&cx, "127.0.0.1", 80, IpVersion::Any).await,
            Ok("127.0.0.1:80".parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))))
        );
        assert_eq!(resolve(&cx, "::1", 443, IpVersion::Any).await.map(|addr| addr.port()), Ok(443));
        let error = resolve(&cx, "nonexistent.invalid", 80, IpVersion::Any).await.unwrap_err();
        assert!(error.starts_with("resolving nonexistent.invalid: "), "{error}");
    }

    #[tokio::test]
    async fn a_pinned_name_resolves_to_its_address_and_other_names_do_not() {
        let parent = RunContext::new("local", std::time::Duration::from_secs(1));
        let ip: IpAddr = "127.0.0.2".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let cx = parent.pin("Multi.Test", ip);
        assert_eq!(resolve(&cx, "multi.test", 8080, IpVersion::Any).await, Ok(SocketAddr::new(ip, 8080)));
        assert_eq!(resolve_all(&cx, "multi.test.", 443, IpVersion::Ipv4).await, Ok(vec![SocketAddr::new(ip, 443)]));
        // Another host (a redirect elsewhere) is resolved as usual.
        let other = resolve(&cx, "127.0.0.1", 80, IpVersion::Any).await.map(|addr| addr.ip().to_string());
        assert_eq!(other, Ok("127.0.0.1".to_owned()));
    }
}
