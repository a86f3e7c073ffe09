//! Running a TLS check: resolve, connect, handshake; then judging the chain and the session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::chain::{ChainReport, Verdict};
use super::details::{ChainDetails, TlsDetails};
use super::spec::{TlsCheck, TlsExpect, TlsVersion};
use super::verifier::{Session, client_config, version_name};
use crate::details::Details as _;
use crate::net::describe;
use crate::outcome::Failure;
use crate::outcome::Judgement;
use crate::outcome::{Outcome, Reason};
use crate::run::{Execute, RunContext};

/// The most resolved addresses tried, one after the other, before the check gives up connecting.
const MAX_ADDRESSES: usize = 8;
/// How long the goodbye (`close_notify`) may take once everything is measured.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);

impl Execute for TlsCheck {
    async fn execute(&self, cx: &RunContext) -> Outcome {
        match run(self, cx).await {
            Ok(outcome) => outcome,
            Err(failure) => failure.into(),
        }
    }
}

async fn run(check: &TlsCheck, cx: &RunContext) -> Result<Outcome, Failure> {
    let alpn: Vec<&[u8]> = check.alpn.iter().map(String::as_bytes).collect();
    let identity = check.client_identity.as_ref().map(|(cert, key)| (cert.as_path(), key.as_path()));
    let (config, verifier) = client_config(check.ca_file.as_deref(), &alpn, identity)
        .map_err(|message| Failure::new(Reason::Tls, message))?;
    let server_name = ServerName::try_from(check.server_name.clone())
        .map_err(|error| Failure::new(Reason::Tls, format!("server name {:?}: {error}", check.server_name)))?;
    let sni = matches!(server_name, ServerName::DnsName(_));

    let addrs = cx
        .timed("resolve", crate::net::resolve_all(cx, &check.host, check.port, crate::net::IpVersion::Any))
        .await
        .map_err(|message| Failure::new(Reason::Dns, message))?;
    let (tcp, addr) = cx.timed("connect", connect(cx, &addrs)).await?;
    tcp.set_nodelay(true).ok();

    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = cx.timed("tls", connector.connect(server_name, tcp)).await;
    let connection = |session: Option<&Session>, report: Option<&ChainReport>| {
        TlsDetails {
            address: addr.to_string(),
            sni,
            version: session.and_then(|s| s.version.clone()),
            cipher_suite: session.and_then(|s| s.cipher_suite.clone()),
            alpn: session.and_then(|s| s.alpn.clone()),
            insecure: check.insecure,
            chain: report.map(ChainDetails::of),
        }
        .to_value()
    };
    let mut stream = match handshake {
        Ok(stream) => stream,
        Err(error) => {
            let details = connection(None, verifier.take().as_ref());
            return Err(Failure {
                reason: Reason::Tls,
                message: format!("tls handshake with {addr}: {}", describe(&error)),
                details,
            });
        }
    };
    let (_, conn) = stream.get_ref();
    let session = Session::of(conn);
    let version = conn.protocol_version();
    let Some(report) = verifier.take() else {
        return Err(Failure {
            reason: Reason::Tls,
            message: "the server presented no certificate".to_owned(),
            details: connection(Some(&session), None),
        });
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;

    cx.log(format!(
        "{} with {addr}, {}, chain of {}: {}",
        session.version.as_deref().unwrap_or("unknown version"),
        session.cipher_suite.as_deref().unwrap_or("unknown suite"),
        report.certs.len(),
        report.verdict.as_str()
    ));
    for problem in &report.problems {
        cx.log(format!("{}: {}", problem.kind.as_str(), problem.message));
    }
    let now = chrono::Utc::now().timestamp();
    let judged = judge(&check.expect, &report, version, now);
    Ok(judged.into_outcome(connection(Some(&session), Some(&report))))
}

/// Connects to the addresses in turn (as the resolver ordered them) until one answers.
async fn connect(cx: &RunContext, addrs: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), Failure> {
    let mut errors = Vec::new();
    for addr in addrs.iter().take(MAX_ADDRESSES) {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok((stream, *addr)),
            Err(error) => {
                cx.log(format!("connect to {addr}: {error}"));
                errors.push(format!("connect to {addr}: {error}"));
            }
        }
    }
    Err(Failure::new(Reason::Connect, errors.join("; ")))
}

/// The verdict on a session: every assertion, and the reason of the first failing one.
pub type Judged = Judgement;

/// Evaluates every assertion on a chain and the negotiated version at `now` (unix seconds). The order is
/// the precedence of reasons: validity dates, trust, hostname, fingerprint pin, days remaining, version.
pub fn judge(expect: &TlsExpect, report: &ChainReport, version: Option<rustls::ProtocolVersion>, now: i64) -> Judged {
    let mut judgement = Judgement::default();
    let mut check = |reason: Reason, name: &str, expected: String, observed: String, passed: bool| {
        judgement.check(reason, name, expected, observed, passed);
    };

    let date = report.date_problem();
    check(
        date.and_then(|problem| problem.kind.reason()).unwrap_or(Reason::CertExpired),
        "validity",
        "every certificate within its validity period".to_owned(),
        date.map_or_else(|| "ok".to_owned(), |problem| problem.message.clone()),
        date.is_none(),
    );

    let trust = report.trust_problem();
    let trust_observed = match (trust, report.trusted) {
        (Some(problem), _) => problem.message.clone(),
        (None, Some(true)) => "trusted".to_owned(),
        (None, _) => "undecided: the validity periods of the chain do not overlap".to_owned(),
    };
    let trusted = trust.is_none() && report.trusted == Some(true);
    check(
        trust.and_then(|problem| problem.kind.reason()).unwrap_or(Reason::CertUntrusted),
        "trusted",
        if expect.trusted { "a chain to a trusted root" } else { "anything (not required)" }.to_owned(),
        trust_observed,
        trusted || !expect.trusted,
    );

    let name = report.problem(Verdict::Hostname);
    check(
        Reason::CertHostname,
        "hostname",
        if expect.hostname {
            format!("valid for {:?}", report.server_name)
        } else {
            "anything (not required)".to_owned()
        },
        name.map_or_else(|| format!("valid for {:?}", report.server_name), |problem| problem.message.clone()),
        name.is_none() || !expect.hostname,
    );

    if let Some(pin) = &expect.fingerprint_sha256 {
        let observed = report.leaf().map(|leaf| leaf.sha256_fingerprint.clone()).unwrap_or_default();
        check(Reason::CertUntrusted, "fingerprint_sha256", pin.clone(), observed.clone(), &observed == pin);
    }

    if let Some(min_days) = expect.min_days_remaining {
        let (observed, passed) = match report.earliest_expiring() {
            Some(cert) => {
                let left = cert.not_after_unix.saturating_sub(now);
                let days = left.div_euclid(86_400);
                let who = format!("{} expires at {}", cert.label(), cert.not_after);
                (format!("{days} days ({who})"), days >= i64::from(min_days))
            }
            None => ("no certificate".to_owned(), false),
        };
        check(Reason::CertExpiring, "min_days_remaining", format!("at least {min_days} days"), observed, passed);
    }

    if let Some(min) = expect.min_version {
        let negotiated = version.and_then(TlsVersion::of);
        let observed = version.map_or_else(|| "unknown".to_owned(), version_name);
        check(
            Reason::Tls,
            "min_version",
            format!("at least {}", min.name()),
            observed,
            negotiated.is_some_and(|negotiated| negotiated >= min),
        );
    }
    judgement
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::chain::{CertInfo, Problem};

    fn report(problems: Vec<Problem>, trusted: Option<bool>) -> ChainReport {
        let mut leaf = CertInfo::parse(b"x");
        leaf.parse_error = None;
        leaf.subject = "CN=leaf".to_owned();
        leaf.not_after_unix = 10 * 86_400;
        leaf.sha256_fingerprint = "ab".repeat(32);
        ChainReport::new(problems, trusted, None, "localhost".to_owned(), vec![leaf], None)
    }

    fn problem(kind: Verdict) -> Problem {
        Problem { kind, message: format!("{kind:?}") }
    }

    #[test]
    fn expired_and_wrong_host_gives_expired_and_reports_both() {
        let report = report(vec![problem(Verdict::Hostname), problem(Verdict::Expired)], Some(true));
        let judged = judge(&TlsExpect::default(), &report, None, 0);
        assert_eq!(judged.failure.map(|(reason, _)| reason), Some(Reason::CertExpired));
        let failed: Vec<&str> = judged.assertions.iter().filter(|a| !a.passed).map(|a| a.name.as_str()).collect();
        assert_eq!(failed, ["validity", "hostname"]);
    }

    #[test]
    fn insecure_ignores_trust_and_name_but_not_days() {
        let expect =
            TlsExpect { trusted: false, hostname: false, min_days_remaining: Some(14), ..TlsExpect::default() };
        let report = report(vec![problem(Verdict::Untrusted), problem(Verdict::Hostname)], Some(false));
        let judged = judge(&expect, &report, None, 0);
        assert_eq!(judged.failure.map(|(reason, _)| reason), Some(Reason::CertExpiring));
        let judged = judge(&TlsExpect { min_days_remaining: Some(10), ..expect }, &report, None, 0);
        assert_eq!(judged.failure, None);
    }

    #[test]
    fn version_and_pin() {
        let report = report(Vec::new(), Some(true));
        let expect = TlsExpect { min_version: Some(TlsVersion::Tls13), ..TlsExpect::default() };
        let judged = judge(&expect, &report, Some(rustls::ProtocolVersion::TLSv1_2), 0);
        assert_eq!(judged.failure.map(|(reason, _)| reason), Some(Reason::Tls));
        assert_eq!(judge(&expect, &report, Some(rustls::ProtocolVersion::TLSv1_3), 0).failure, None);
        let pinned = TlsExpect { fingerprint_sha256: Some("cd".repeat(32)), ..TlsExpect::default() };
        let judged = judge(&pinned, &report, None, 0);
        assert_eq!(judged.failure.map(|(reason, _)| reason), Some(Reason::CertUntrusted));
    }
}
