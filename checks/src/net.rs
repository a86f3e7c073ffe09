//! Network pieces every kind shares: the address-family preference, name resolution and error chains.

use std::net::{IpAddr, SocketAddr};

use schemars::JsonSchema;
use serde::Deserialize;

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

/// Every address of `host` of the asked family, in the resolver's order (an IP literal is itself).
/// The error is one line for a failure with reason `dns`.
pub async fn resolve_all(host: &str, port: u16, preference: IpVersion) -> Result<Vec<SocketAddr>, String> {
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

/// The first address of `host` of the asked family.
pub async fn resolve(host: &str, port: u16, preference: IpVersion) -> Result<SocketAddr, String> {
    let addrs = resolve_all(host, port, preference).await?;
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
        assert_eq!(
            resolve("127.0.0.1", 80, IpVersion::Any).await,
            Ok("127.0.0.1:80".parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))))
        );
        assert_eq!(resolve("::1", 443, IpVersion::Any).await.map(|addr| addr.port()), Ok(443));
        let error = resolve("nonexistent.invalid", 80, IpVersion::Any).await.unwrap_err();
        assert!(error.starts_with("resolving nonexistent.invalid: "), "{error}");
    }
}
