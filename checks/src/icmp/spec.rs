//! The `icmp` kind as written in YAML, and its validation into [`IcmpCheck`].

use std::net::IpAddr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};
use crate::duration::format;
use crate::net::{IpPlan, IpStrategy, IpVerdict, IpVersion, family_mismatch, validate_ip_plan};

/// ICMP echo requests.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IcmpSpec {
    /// The host name or IP address to ping.
    pub host: String,
    /// How many echo requests to send, 1 to 100 (default 1).
    pub count: Option<u32>,
    /// The time between two echo requests, at least `10ms` (default `1s`). `count` × `interval` must fit within
    /// the check's timeout; replies are awaited until shortly before it.
    pub interval: Option<String>,
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
    /// Bytes of payload in each echo request, 0 to 65500 (default 56, as `ping`).
    pub payload_size: Option<u32>,
    /// What the replies must look like. Without it, the check fails (reason `loss`) only when no reply comes.
    pub expect: Option<IcmpExpectSpec>,
}

/// What the replies to the echo requests must look like. Every assertion is evaluated and reported.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IcmpExpectSpec {
    /// The largest share of unanswered requests, from 0 to 1 (`0.2` is 20%); more fails with reason `loss`.
    /// Default: fail only when every request goes unanswered.
    pub max_loss: Option<f64>,
    /// The longest acceptable average round-trip time, such as `50ms`; slower fails with reason `duration`.
    pub max_rtt: Option<String>,
}

/// A validated ICMP check.
#[derive(Debug, Clone)]
pub struct IcmpCheck {
    /// The host.
    pub host: String,
    /// Echo requests per run.
    pub count: u32,
    /// Time between two requests.
    pub interval: Duration,
    /// Address family preference.
    pub ip_version: IpVersion,
    /// Which addresses of the host are probed.
    pub ips: IpPlan,
    /// Payload bytes per request.
    pub payload_size: usize,
    /// The largest acceptable loss ratio; `None` fails only at 100% loss.
    pub max_loss: Option<f64>,
    /// The longest acceptable average round-trip time.
    pub max_rtt: Option<Duration>,
}

const MAX_COUNT: u32 = 100;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
const MIN_INTERVAL: Duration = Duration::from_millis(10);
const DEFAULT_PAYLOAD: u32 = 56;
const MAX_PAYLOAD: u32 = 65_500;

impl KindSpec for IcmpSpec {
    type Check = IcmpCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<IcmpCheck> {
        let mut ok = true;
        let count = self.count.unwrap_or(1);
        if !(1..=MAX_COUNT).contains(&count) {
            cx.error(&path.key("count"), format!("{count} is outside the allowed range of 1 to {MAX_COUNT}"));
            ok = false;
        }
        if self.host.is_empty() || self.host.contains(['/', ':', ' ']) && self.host.parse::<IpAddr>().is_err() {
            cx.error(&path.key("host"), format!("{:?} is not a host name or IP address", self.host));
            ok = false;
        }
        let ip_version = self.ip_version.unwrap_or(IpVersion::Any);
        if let Ok(ip) = self.host.parse::<IpAddr>()
            && !ip_version.fits(ip)
        {
            cx.error(&path.key("ip_version"), family_mismatch(&format!("the host {ip}"), ip));
            ok = false;
        }
        let ips = validate_ip_plan(cx, path, self.ip_strategy, self.ip_verdict, Some(&self.host));
        let interval = match self.interval.as_deref() {
            None => Some(DEFAULT_INTERVAL),
            Some(text) => match cx.duration(&path.key("interval"), text) {
                Some(interval) if interval < MIN_INTERVAL => {
                    cx.error(
                        &path.key("interval"),
                        format!("{} is shorter than the minimum of {}", format(interval), format(MIN_INTERVAL)),
                    );
                    None
                }
                other => other,
            },
        };
        let payload_size = self.payload_size.unwrap_or(DEFAULT_PAYLOAD);
        if payload_size > MAX_PAYLOAD {
            cx.error(
                &path.key("payload_size"),
                format!("{payload_size} is outside the allowed range of 0 to {MAX_PAYLOAD}"),
            );
            ok = false;
        }
        let expect = validate_expect(cx, &path.key("expect"), self.expect.unwrap_or_default());
        let (interval, (max_loss, max_rtt)) = (interval?, expect?);
        ok.then_some(IcmpCheck {
            host: self.host,
            count,
            interval,
            ip_version,
            ips,
            payload_size: payload_size as usize,
            max_loss,
            max_rtt,
        })
    }
}

type Expect = (Option<f64>, Option<Duration>);

fn validate_expect(cx: &mut Ctx<'_>, path: &Path, spec: IcmpExpectSpec) -> Option<Expect> {
    let mut ok = true;
    if let Some(max) = spec.max_loss
        && !(0.0..=1.0).contains(&max)
    {
        cx.error(&path.key("max_loss"), format!("{max} is outside the allowed range of 0 to 1 (0.1 is 10%)"));
        ok = false;
    }
    let max_rtt = match spec.max_rtt.as_deref() {
        None => None,
        Some(text) => match cx.duration(&path.key("max_rtt"), text) {
            Some(zero) if zero.is_zero() => {
                cx.error(&path.key("max_rtt"), "the longest round-trip time must be more than 0s");
                return None;
            }
            Some(max) => Some(max),
            None => return None,
        },
    };
    ok.then_some((spec.max_loss, max_rtt))
}

impl IcmpCheck {
    /// Why a check with this timeout could not send every request in time, if it could not.
    pub fn too_long_for(&self, timeout: Duration) -> Option<String> {
        let needed = self.interval * self.count;
        (needed > timeout).then(|| {
            let count = self.count;
            format!(
                "{count} {} every {} {} {}, longer than the check's timeout of {}",
                if count == 1 { "request" } else { "requests" },
                format(self.interval),
                if count == 1 { "takes" } else { "take" },
                format(needed),
                format(timeout)
            )
        })
    }
}
