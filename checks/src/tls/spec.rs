//! The `tls` kind as written in YAML, and its validation into [`TlsCheck`].

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};
use crate::net::{IpPlan, IpStrategy, IpVerdict, validate_ip_plan};

/// A TLS handshake and what the certificate must look like.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// The server to connect to, as `host:port` (port 443 when left out).
    pub target: String,
    /// The name sent in SNI and checked against the certificate (default: the target's host). For an IP
    /// address no SNI is sent and the certificate must hold that IP address.
    pub server_name: Option<String>,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<String>,
    /// Which addresses of the host to probe: `first` (default: one, the first the resolver gives that
    /// answers) or `all` (each IPv4 and IPv6 address of the name, at most 16, all at once within the check's
    /// timeout; the result holds one entry per address under `ips` and each address gets its own
    /// `probenet_ip_success{ip}` series). `all` needs a host name, not an IP address.
    pub ip_strategy: Option<IpStrategy>,
    /// With `ip_strategy: all`, when the check is up: `all` (default: every address is up) or `any` (at least
    /// one is). The error of a failed run names each failing address.
    pub ip_verdict: Option<IpVerdict>,

    /// A PEM client certificate (chain) for servers that require mutual TLS.
    pub client_cert: Option<String>,
    /// The PEM private key of `client_cert`.
    pub client_key: Option<String>,
    /// ALPN protocols to offer, such as `[h2, http/1.1]` (default: none). The one chosen is reported.
    pub alpn: Option<Vec<String>>,
    /// Report the chain and its verdict but do not fail on trust or hostname (dates and the other
    /// assertions still apply). For servers you cannot give a CA for.
    pub insecure: Option<bool>,
    /// What the certificate and the session must look like.
    pub expect: Option<TlsExpectSpec>,
}

/// What the certificate chain and the session must look like. Every assertion is evaluated and reported;
/// the validity dates of the chain are always checked (reason `cert_expired` or `cert_not_yet_valid`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsExpectSpec {
    /// The chain must lead to a trusted root (default `true`; `false` with `insecure: true`). Fails with
    /// reason `cert_untrusted` (or `tls` for other certificate errors).
    pub trusted: Option<bool>,
    /// The certificate must be valid for `server_name` (default `true`; `false` with `insecure: true`).
    /// Fails with reason `cert_hostname`.
    pub hostname: Option<bool>,
    /// The fewest whole days left before the earliest expiry in the presented chain (leaf or
    /// intermediate). Fails with reason `cert_expiring`.
    pub min_days_remaining: Option<u32>,
    /// The lowest acceptable protocol version, `"1.2"` or `"1.3"`. Fails with reason `tls`.
    pub min_version: Option<String>,
    /// The SHA-256 fingerprint the leaf certificate must have: 64 hex digits, colons allowed. Fails with
    /// reason `cert_untrusted`.
    pub fingerprint_sha256: Option<String>,
}

/// A TLS protocol version that can be required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// The version as rustls names it.
    pub fn protocol(self) -> rustls::ProtocolVersion {
        match self {
            Self::Tls12 => rustls::ProtocolVersion::TLSv1_2,
            Self::Tls13 => rustls::ProtocolVersion::TLSv1_3,
        }
    }

    /// The version a connection negotiated, if it is one of these.
    pub fn of(version: rustls::ProtocolVersion) -> Option<Self> {
        match version {
            rustls::ProtocolVersion::TLSv1_2 => Some(Self::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(Self::Tls13),
            _ => None,
        }
    }

    /// `TLSv1.2` or `TLSv1.3`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tls12 => "TLSv1.2",
            Self::Tls13 => "TLSv1.3",
        }
    }

    /// Parses `1.2`, `1.3`, `TLSv1.2`, `tls1.3`...
    pub fn parse(text: &str) -> Option<Self> {
        let lower = text.trim().to_ascii_lowercase();
        let number = lower.strip_prefix("tlsv").or_else(|| lower.strip_prefix("tls")).unwrap_or(&lower);
        match number.trim() {
            "1.2" => Some(Self::Tls12),
            "1.3" => Some(Self::Tls13),
            _ => None,
        }
    }
}

/// Validated assertions on a chain and a session; usable by any kind that speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsExpect {
    /// The chain must lead to a trusted root.
    pub trusted: bool,
    /// The leaf must be valid for the server name.
    pub hostname: bool,
    /// The fewest days left before the earliest expiry in the presented chain.
    pub min_days_remaining: Option<u32>,
    /// The lowest acceptable version.
    pub min_version: Option<TlsVersion>,
    /// The leaf's SHA-256 fingerprint, lowercase hex without separators.
    pub fingerprint_sha256: Option<String>,
}

impl Default for TlsExpect {
    fn default() -> Self {
        Self { trusted: true, hostname: true, min_days_remaining: None, min_version: None, fingerprint_sha256: None }
    }
}

/// A validated TLS check.
#[derive(Debug, Clone)]
pub struct TlsCheck {
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// SNI and verification name.
    pub server_name: String,
    /// Which addresses of the host are probed.
    pub ips: IpPlan,

    /// CA file to trust instead of the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub client_identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// Trust and hostname are reported but not required.
    pub insecure: bool,
    /// Assertions.
    pub expect: TlsExpect,
}

impl KindSpec for TlsSpec {
    type Check = TlsCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<TlsCheck> {
        let target = cx.host_port(&path.key("target"), &self.target, Some(443));
        let server_name = match (&self.server_name, &target) {
            (Some(name), _) => {
                let valid = rustls_pki_types::ServerName::try_from(name.as_str()).is_ok();
                if !valid {
                    cx.error(&path.key("server_name"), format!("{name:?} is not a valid server name"));
                }
                valid.then(|| name.clone())
            }
            (None, Some((host, _))) => {
                let valid = rustls_pki_types::ServerName::try_from(host.as_str()).is_ok();
                if !valid {
                    cx.error(
                        &path.key("target"),
                        format!("{host:?} is not a valid server name; set `server_name` to the certificate's name"),
                    );
                }
                valid.then(|| host.clone())
            }
            (None, None) => None,
        };
        let host = target.as_ref().map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'));
        let ips = validate_ip_plan(cx, path, self.ip_strategy, self.ip_verdict, host);
        let client_identity = super::validate_client_identity(cx, path, self.client_cert, self.client_key);
        let alpn = validate_alpn(cx, &path.key("alpn"), self.alpn);
        let insecure = self.insecure.unwrap_or(false);
        let expect = validate_expect(cx, &path.key("expect"), self.expect.unwrap_or_default(), insecure);
        let (host, port) = target?;
        Some(TlsCheck {
            host,
            port,
            server_name: server_name?,
            ips,
            ca_file: self.ca_file.map(Into::into),
            client_identity: client_identity?,
            alpn: alpn?,
            insecure,
            expect: expect?,
        })
    }
}

fn validate_alpn(cx: &mut Ctx<'_>, path: &Path, alpn: Option<Vec<String>>) -> Option<Vec<String>> {
    let Some(list) = alpn else {
        return Some(Vec::new());
    };
    if list.is_empty() {
        cx.error(path, "the list of protocols is empty; leave `alpn` out to offer none");
        return None;
    }
    let mut ok = true;
    for (i, proto) in list.iter().enumerate() {
        if proto.is_empty() || proto.len() > 255 {
            cx.error(&path.index(i), format!("{proto:?} is not an ALPN protocol: write 1 to 255 bytes, such as h2"));
            ok = false;
        }
    }
    ok.then_some(list)
}

fn validate_expect(cx: &mut Ctx<'_>, path: &Path, spec: TlsExpectSpec, insecure: bool) -> Option<TlsExpect> {
    let mut ok = true;
    for (key, value) in [("trusted", spec.trusted), ("hostname", spec.hostname)] {
        if insecure && value == Some(true) {
            cx.error_at_key(&path.key(key), format!("`insecure: true` does not require `{key}`; remove one of them"));
            ok = false;
        }
    }
    let min_version = spec.min_version.as_deref().and_then(|text| {
        let parsed = TlsVersion::parse(text);
        if parsed.is_none() {
            cx.error(
                &path.key("min_version"),
                format!("{text:?} is not a TLS version this check can require: 1.2, 1.3"),
            );
            ok = false;
        }
        parsed
    });
    let fingerprint_sha256 = spec.fingerprint_sha256.as_deref().and_then(|text| {
        let parsed = parse_fingerprint(text);
        if parsed.is_none() {
            cx.error(
                &path.key("fingerprint_sha256"),
                format!("{text:?} is not a SHA-256 fingerprint: write 64 hex digits, colons allowed"),
            );
            ok = false;
        }
        parsed
    });
    ok.then_some(TlsExpect {
        trusted: spec.trusted.unwrap_or(!insecure),
        hostname: spec.hostname.unwrap_or(!insecure),
        min_days_remaining: spec.min_days_remaining,
        min_version,
        fingerprint_sha256,
    })
}

/// A fingerprint as lowercase hex without separators, if `text` is 32 bytes of hex (colons or spaces allowed).
pub fn parse_fingerprint(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect();
    (digits.len() == 64 && digits.chars().all(|c| c.is_ascii_hexdigit())).then(|| digits.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_fingerprints() {
        assert_eq!(TlsVersion::parse("1.2"), Some(TlsVersion::Tls12));
        assert_eq!(TlsVersion::parse("TLSv1.3"), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::parse("tls1.3"), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::parse("1.1"), None);
        assert!(TlsVersion::Tls12 < TlsVersion::Tls13);
        let hex = "AB".repeat(32);
        assert_eq!(parse_fingerprint(&hex), Some("ab".repeat(32)));
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons), Some("ab".repeat(32)));
        assert_eq!(parse_fingerprint("abcd"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }
}
