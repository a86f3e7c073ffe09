//! The `tcp` kind as written in YAML, and its validation into [`TcpCheck`].

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};
use crate::net::{IpPlan, IpStrategy, IpVerdict, IpVersion, family_mismatch, validate_ip_plan};
use crate::secret::Template;

/// A TCP connection, and optionally a conversation over it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// The server to connect to, as `host:port` (`[2001:db8::5]:5432` for an IPv6 address).
    pub target: String,
    /// Which address family to use: `any` (default: the first address the resolver gives), `ipv4` or `ipv6`.
    pub ip_version: Option<IpVersion>,
    /// Which addresses of the host to probe: `first` (default: one, the first the resolver gives of the
    /// `ip_version` family) or `all` (each address of that family, at most 16, all at once within the check's
    /// timeout; the result holds one entry per address under `ips` and each address gets its own
    /// `probenet_ip_success{ip}` series). `all` needs a host name, not an IP address.
    pub ip_strategy: Option<IpStrategy>,
    /// With `ip_strategy: all`, when the check is up: `all` (default: every address is up) or `any` (at least
    /// one is). The error of a failed run names each failing address.
    pub ip_verdict: Option<IpVerdict>,
    /// Steps run in order once connected, each a `send` or an `expect`, such as
    /// `[{expect: "^220 "}, {send: "QUIT\r\n"}]`. Without it, the check only connects.
    pub script: Option<Vec<TcpStepSpec>>,
    /// Speak TLS right after connecting (implicit TLS, as on ports 465, 993 or 6380) with these options (`{}`
    /// for the defaults); the script then runs inside TLS. An expired, untrusted or wrong-host certificate
    /// fails with its own reason before the script runs, unless `insecure` is set.
    pub tls: Option<crate::tls::ClientTlsSpec>,
}

/// One step of a TCP script: exactly one of `send` or `expect`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpStepSpec {
    /// A regular expression the data received must match; `^` and `$` match at line starts and ends (before
    /// `\r\n` too). Data is read until it matches, the connection closes, the step's `timeout` passes or 64 KiB
    /// wait unmatched; a miss fails the check with reason `assertion`. Data up to the end of the matched line is
    /// then consumed.
    pub expect: Option<String>,
    /// Text to send, as is. Write it in double quotes so that YAML turns `\r\n` into CR LF, as in
    /// `"EHLO probenet\r\n"`. May hold secrets.
    pub send: Option<String>,
    /// How long an `expect` step waits for a match, such as `2s` (default: until the check's timeout).
    pub timeout: Option<String>,
}

/// A validated TCP check.
#[derive(Debug, Clone)]
pub struct TcpCheck {
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// Address family preference.
    pub ip_version: IpVersion,
    /// Which addresses of the host are probed.
    pub ips: IpPlan,
    /// The script, empty when the check only connects.
    pub script: Vec<TcpStep>,
    /// TLS right after connecting, when asked for.
    pub tls: Option<crate::tls::ClientTls>,
}

/// One validated script step.
#[derive(Debug, Clone)]
pub enum TcpStep {
    /// Send this text (may hold secrets).
    Send(Template),
    /// Read until this regex matches.
    Expect {
        /// The pattern as written.
        pattern: String,
        /// The compiled pattern (multi-line mode, over bytes).
        regex: regex::bytes::Regex,
        /// How long to wait for a match.
        timeout: Option<Duration>,
    },
}

/// The most steps a script may have.
const MAX_STEPS: usize = 100;

impl KindSpec for TcpSpec {
    type Check = TcpCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<TcpCheck> {
        let target = cx.host_port(&path.key("target"), &self.target, None);
        let ip_version = self.ip_version.unwrap_or(IpVersion::Any);
        if let Some((host, _)) = &target
            && let Ok(ip) = host.parse::<std::net::IpAddr>()
            && !ip_version.fits(ip)
        {
            cx.error(&path.key("ip_version"), family_mismatch(&format!("the target {host}"), ip));
        }
        let host = target.as_ref().map(|(host, _)| host.as_str());
        let ips = validate_ip_plan(cx, path, self.ip_strategy, self.ip_verdict, host);
        let script = validate_script(cx, &path.key("script"), self.script.unwrap_or_default());
        let tls = match self.tls {
            Some(spec) => Some(crate::tls::validate_client_tls(cx, &path.key("tls"), Some(spec))?),
            None => None,
        };
        let (host, port) = target?;
        Some(TcpCheck { host, port, ip_version, ips, script: script?, tls })
    }
}

fn validate_script(cx: &mut Ctx<'_>, path: &Path, steps: Vec<TcpStepSpec>) -> Option<Vec<TcpStep>> {
    cx.steps(path, "script", steps, MAX_STEPS, validate_step)
}

fn validate_step(cx: &mut Ctx<'_>, path: &Path, step: TcpStepSpec) -> Option<TcpStep> {
    let timeout = match step.timeout.as_deref() {
        Some(text) => match cx.duration(&path.key("timeout"), text)? {
            zero if zero.is_zero() => {
                cx.error(&path.key("timeout"), "the timeout must be longer than 0s");
                return None;
            }
            timeout => Some(timeout),
        },
        None => None,
    };
    match (step.expect, step.send) {
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("send"), "a step has either `send` or `expect`, not both");
            None
        }
        (None, None) => {
            cx.error(path, "a step needs `send` (text to send) or `expect` (a regular expression)");
            None
        }
        (None, Some(text)) => {
            if timeout.is_some() {
                cx.error_at_key(&path.key("timeout"), "`timeout` only applies to an `expect` step");
                return None;
            }
            if text.is_empty() {
                cx.error(&path.key("send"), "nothing to send: the text is empty");
                return None;
            }
            cx.template(&path.key("send"), &text).map(TcpStep::Send)
        }
        (Some(pattern), None) => {
            cx.regex(&path.key("expect"), &pattern)?;
            let regex = regex::bytes::RegexBuilder::new(&pattern)
                .multi_line(true)
                .crlf(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|error| cx.error(&path.key("expect"), format!("{pattern:?}: {error}")))
                .ok()?;
            Some(TcpStep::Expect { pattern, regex, timeout })
        }
    }
}
