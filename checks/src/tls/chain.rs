//! What a server presented: each certificate parsed, the verdict on the chain, and its expiry dates.

use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::outcome::Reason;

/// The verdict on a chain, or one problem found in it. The declaration order is the precedence: when a
/// chain has several problems (expired AND for another host), the first one in this order is the verdict.
///
/// Validity dates come first because an expiry is the most urgent and most common incident and because
/// webpki itself checks the dates of a certificate before looking for its issuer; a broken trust path
/// comes before a wrong name because a name only means something once the certificate is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A certificate of the chain has expired.
    Expired,
    /// A certificate of the chain is not valid yet.
    NotYetValid,
    /// The chain does not lead to a trusted root: unknown issuer, self-signed, bad signature.
    Untrusted,
    /// Another certificate error: bad encoding, wrong key usage, revoked, unsupported algorithm...
    Other,
    /// The leaf certificate is not valid for the name asked for.
    Hostname,
    /// Nothing wrong: the chain verifies for the name asked for.
    Ok,
}

impl Verdict {
    /// The name used in `details` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Untrusted => "untrusted",
            Self::Other => "other",
            Self::Hostname => "hostname",
        }
    }

    /// The failure reason this verdict gives, `None` for `Ok`.
    pub fn reason(self) -> Option<Reason> {
        match self {
            Self::Ok => None,
            Self::Expired => Some(Reason::CertExpired),
            Self::NotYetValid => Some(Reason::CertNotYetValid),
            Self::Untrusted => Some(Reason::CertUntrusted),
            Self::Hostname => Some(Reason::CertHostname),
            Self::Other => Some(Reason::Tls),
        }
    }

    /// Whether this is a validity-date problem.
    pub fn is_date(self) -> bool {
        matches!(self, Self::Expired | Self::NotYetValid)
    }

    /// Whether this is a trust problem (the path to a root, not the dates or the name).
    pub fn is_trust(self) -> bool {
        matches!(self, Self::Untrusted | Self::Other)
    }
}

/// One problem found in a chain, with a one-line explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// What kind of problem.
    pub kind: Verdict,
    /// A short human explanation naming the certificate concerned.
    pub message: String,
}

/// One certificate as presented by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CertInfo {
    /// The subject, as `CN=..., O=...`.
    pub subject: String,
    /// The issuer, as `CN=..., O=...`.
    pub issuer: String,
    /// Subject alternative names: DNS names and IP addresses as written, others prefixed (`email:`, `uri:`).
    pub sans: Vec<String>,
    /// The serial number in lowercase hex, leading zeros kept.
    pub serial: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// Start of validity, unix seconds.
    pub not_before_unix: i64,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// End of validity, unix seconds.
    pub not_after_unix: i64,
    /// SHA-256 of the DER encoding, lowercase hex without separators (as blackbox_exporter shows it).
    pub sha256_fingerprint: String,
    /// Whether the basic constraints say this is a CA certificate.
    pub is_ca: bool,
    /// Why the certificate could not be parsed; the other fields are then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// DER of the subject, for matching issuers to subjects.
    #[serde(skip)]
    pub(crate) subject_der: Vec<u8>,
    /// DER of the issuer.
    #[serde(skip)]
    pub(crate) issuer_der: Vec<u8>,
}

impl CertInfo {
    /// Parses one DER certificate. A certificate that does not parse is still listed, with its fingerprint.
    pub fn parse(der: &[u8]) -> Self {
        let fingerprint = sha256_hex(der);
        match X509Certificate::from_der(der) {
            Ok((_, cert)) => {
                let not_before = cert.validity().not_before.timestamp();
                let not_after = cert.validity().not_after.timestamp();
                Self {
                    subject: cert.subject().to_string(),
                    issuer: cert.issuer().to_string(),
                    sans: sans(&cert),
                    serial: hex(cert.raw_serial()),
                    not_before: rfc3339(not_before),
                    not_before_unix: not_before,
                    not_after: rfc3339(not_after),
                    not_after_unix: not_after,
                    sha256_fingerprint: fingerprint,
                    is_ca: cert.is_ca(),
                    parse_error: None,
                    subject_der: cert.subject().as_raw().to_vec(),
                    issuer_der: cert.issuer().as_raw().to_vec(),
                }
            }
            Err(error) => Self {
                subject: String::new(),
                issuer: String::new(),
                sans: Vec::new(),
                serial: String::new(),
                not_before: String::new(),
                not_before_unix: 0,
                not_after: String::new(),
                not_after_unix: 0,
                sha256_fingerprint: fingerprint,
                is_ca: false,
                parse_error: Some(format!("not a valid certificate: {error}")),
                subject_der: Vec::new(),
                issuer_der: Vec::new(),
            },
        }
    }

    /// Whether the certificate parsed.
    pub fn parsed(&self) -> bool {
        self.parse_error.is_none()
    }

    /// Whether the subject and issuer are the same name.
    pub fn is_self_issued(&self) -> bool {
        self.parsed() && self.subject_der == self.issuer_der
    }

    /// A short name for messages: the subject, or the fingerprint when there is none.
    pub fn label(&self) -> String {
        if self.subject.is_empty() {
            format!("sha256:{}", &self.sha256_fingerprint)
        } else {
            format!("{:?}", self.subject)
        }
    }

    /// The date problem of this certificate at `now` (unix seconds), if any.
    pub fn date_problem(&self, now: i64) -> Option<Problem> {
        if !self.parsed() {
            return None;
        }
        if now > self.not_after_unix {
            Some(Problem {
                kind: Verdict::Expired,
                message: format!("certificate {} expired at {}", self.label(), self.not_after),
            })
        } else if now < self.not_before_unix {
            Some(Problem {
                kind: Verdict::NotYetValid,
                message: format!("certificate {} is not valid before {}", self.label(), self.not_before),
            })
        } else {
            None
        }
    }
}

/// A trusted root: only what path reconstruction needs.
#[derive(Debug, Clone)]
pub(crate) struct Anchor {
    pub(crate) subject_der: Vec<u8>,
    pub(crate) not_after: Option<i64>,
}

impl Anchor {
    pub(crate) fn parse(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        Some(Self {
            subject_der: cert.subject().as_raw().to_vec(),
            not_after: Some(cert.validity().not_after.timestamp()),
        })
    }
}

/// What the server presented and what verifying it found, recorded even when the chain is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The first problem by precedence, or `ok`.
    pub verdict: Verdict,
    /// Every problem found, in precedence order, at most one of each kind.
    pub problems: Vec<Problem>,
    /// Whether the chain leads to a trusted root when its dates are set aside; `None` when that could not
    /// be decided (certificates whose validity periods do not overlap).
    pub trusted: Option<bool>,
    /// rustls's own error for this chain: what a strict client would have failed the handshake with.
    pub error: Option<String>,
    /// The name the chain was verified for.
    pub server_name: String,
    /// The presented chain, leaf first, in the order the server sent it.
    pub certs: Vec<CertInfo>,
    /// The latest of the earliest expiries of the paths from the leaf to a trusted root (see
    /// [`ChainReport::last_chain_expiry`]).
    pub(crate) last_chain_expiry: Option<i64>,
}

impl ChainReport {
    /// Builds a report from its problems (sorted and deduplicated here).
    pub(crate) fn new(
        mut problems: Vec<Problem>,
        trusted: Option<bool>,
        error: Option<String>,
        server_name: String,
        certs: Vec<CertInfo>,
        last_chain_expiry: Option<i64>,
    ) -> Self {
        problems.sort_by_key(|problem| problem.kind);
        problems.dedup_by_key(|problem| problem.kind);
        let verdict = problems.first().map_or(Verdict::Ok, |problem| problem.kind);
        Self { verdict, problems, trusted, error, server_name, certs, last_chain_expiry }
    }

    /// The problem of `kind`, if the chain has it.
    pub fn problem(&self, kind: Verdict) -> Option<&Problem> {
        self.problems.iter().find(|problem| problem.kind == kind)
    }

    /// The first date problem (expired before not yet valid), if any.
    pub fn date_problem(&self) -> Option<&Problem> {
        self.problems.iter().find(|problem| problem.kind.is_date())
    }

    /// The first trust problem (untrusted before other), if any.
    pub fn trust_problem(&self) -> Option<&Problem> {
        self.problems.iter().find(|problem| problem.kind.is_trust())
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> Option<&CertInfo> {
        self.certs.first()
    }

    /// The earliest `not_after` over the presented chain, in unix seconds: blackbox_exporter's
    /// `probe_ssl_earliest_cert_expiry`. Every presented certificate counts, also an extra one that is on
    /// no path to a root.
    pub fn earliest_expiry(&self) -> Option<i64> {
        self.certs.iter().filter(|cert| cert.parsed()).map(|cert| cert.not_after_unix).min()
    }

    /// The presented certificate that expires first.
    pub fn earliest_expiring(&self) -> Option<&CertInfo> {
        self.certs.iter().filter(|cert| cert.parsed()).min_by_key(|cert| cert.not_after_unix)
    }

    /// blackbox_exporter's `probe_ssl_last_chain_expiry_timestamp_seconds`: for every path from the leaf
    /// through presented intermediates to a trusted root (the root's own expiry included), the earliest
    /// expiry on that path; then the latest of those. Paths are rebuilt by matching issuer to subject
    /// names, and are taken regardless of validity dates, so an expired chain still tells when it expired.
    /// `None` when no path leads to a trusted root.
    pub fn last_chain_expiry(&self) -> Option<i64> {
        self.last_chain_expiry
    }
}

/// The most paths and steps explored when rebuilding paths to a root: a server controls the chain it sends.
const MAX_PATH_DEPTH: usize = 8;
const MAX_PATH_STEPS: usize = 256;

/// The path from the leaf to a trusted root whose earliest expiry is the latest, as indexes into `certs`
/// (leaf first) and that earliest expiry (the root's own expiry included).
pub(crate) fn best_path(certs: &[CertInfo], anchors: &[Anchor]) -> Option<(Vec<usize>, i64)> {
    struct Search<'a> {
        certs: &'a [CertInfo],
        anchors: &'a [Anchor],
        steps: usize,
        best: Option<(Vec<usize>, i64)>,
    }
    impl Search<'_> {
        fn walk(&mut self, path: &mut Vec<usize>, earliest: i64) {
            self.steps += 1;
            let Some(&last) = path.last() else { return };
            let issuer = &self.certs[last].issuer_der;
            for anchor in self.anchors.iter().filter(|anchor| &anchor.subject_der == issuer) {
                let end = anchor.not_after.map_or(earliest, |not_after| earliest.min(not_after));
                if self.best.as_ref().is_none_or(|(_, best)| end > *best) {
                    self.best = Some((path.clone(), end));
                }
            }
            if path.len() >= MAX_PATH_DEPTH {
                return;
            }
            for next in 1..self.certs.len() {
                if self.steps >= MAX_PATH_STEPS {
                    return;
                }
                let cert = &self.certs[next];
                if cert.parsed() && &cert.subject_der == issuer && !path.contains(&next) {
                    path.push(next);
                    self.walk(path, earliest.min(cert.not_after_unix));
                    path.pop();
                }
            }
        }
    }
    let leaf = certs.first().filter(|leaf| leaf.parsed())?;
    let mut search = Search { certs, anchors, steps: 0, best: None };
    search.walk(&mut vec![0], leaf.not_after_unix);
    search.best
}

fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(extension)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    extension
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(name) => (*name).to_owned(),
            GeneralName::IPAddress(bytes) => ip_text(bytes),
            GeneralName::RFC822Name(mail) => format!("email:{mail}"),
            GeneralName::URI(uri) => format!("uri:{uri}"),
            GeneralName::DirectoryName(name) => format!("dirname:{name}"),
            other => format!("other:{other:?}"),
        })
        .collect()
}

fn ip_text(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        std::net::Ipv4Addr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        std::net::Ipv6Addr::from(v6).to_string()
    } else {
        format!("ip:{}", hex(bytes))
    }
}

/// A unix time as RFC 3339 in UTC, such as `2026-01-31T12:00:00Z`.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix.to_string())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// SHA-256 of `data` in lowercase hex, computed with the TLS provider's hash.
pub fn sha256_hex(data: &[u8]) -> String {
    rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .map(|suite| hex(suite.common.hash_provider.hash(data).as_ref()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(subject: &str, issuer: &str, not_after: i64) -> CertInfo {
        let mut info = CertInfo::parse(b"not der");
        info.parse_error = None;
        info.subject = subject.to_owned();
        info.subject_der = subject.as_bytes().to_vec();
        info.issuer_der = issuer.as_bytes().to_vec();
        info.not_after_unix = not_after;
        info
    }

    fn anchor(subject: &str, not_after: i64) -> Anchor {
        Anchor { subject_der: subject.as_bytes().to_vec(), not_after: Some(not_after) }
    }

    #[test]
    fn sha256_matches_a_known_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn best_path_takes_the_latest_of_the_earliest_expiries() {
        // leaf -> inter; inter is issued by root A directly, or via a cross-signed cert that expired.
        let certs = [cert("leaf", "inter", 500), cert("inter", "A", 400), cert("A", "B", 100)];
        let anchors = [anchor("A", 1000), anchor("B", 2000)];
        let (path, expiry) = best_path(&certs, &anchors).unwrap();
        assert_eq!(path, vec![0, 1]);
        assert_eq!(expiry, 400);
        let anchors = [anchor("B", 2000)];
        assert_eq!(best_path(&certs, &anchors), Some((vec![0, 1, 2], 100)));
        assert_eq!(best_path(&certs, &[anchor("C", 1)]), None);
    }

    #[test]
    fn best_path_is_bounded_on_looping_names() {
        let certs: Vec<CertInfo> = (0..40).map(|_| cert("x", "x", 10)).collect();
        assert_eq!(best_path(&certs, &[]), None);
    }

    #[test]
    fn problems_are_sorted_by_precedence() {
        let problem = |kind| Problem { kind, message: String::new() };
        let report = ChainReport::new(
            vec![problem(Verdict::Hostname), problem(Verdict::Untrusted), problem(Verdict::Expired)],
            Some(false),
            None,
            "x".to_owned(),
            Vec::new(),
            None,
        );
        assert_eq!(report.verdict, Verdict::Expired);
        assert_eq!(report.trust_problem().map(|p| p.kind), Some(Verdict::Untrusted));
        let ok = ChainReport::new(Vec::new(), Some(true), None, "x".to_owned(), Vec::new(), None);
        assert_eq!(ok.verdict, Verdict::Ok);
    }
}
