//! The `icmp` kind: echo requests (ping) to a host.
//!
//! Validated here; executing it is the check-kinds issue's work, and until then a run fails with reason
//! `unsupported`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};

/// ICMP echo requests.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IcmpSpec {
    /// The host name or IP address to ping.
    pub host: String,
    /// How many echo requests to send, 1 to 100 (default 1).
    pub count: Option<u32>,
}

/// A validated ICMP check.
#[derive(Debug, Clone)]
pub struct IcmpCheck {
    /// The host.
    pub host: String,
    /// Echo requests per run.
    pub count: u32,
}

impl KindSpec for IcmpSpec {
    type Check = IcmpCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<IcmpCheck> {
        let count = self.count.unwrap_or(1);
        if !(1..=100).contains(&count) {
            cx.error(&path.key("count"), format!("{count} is outside the allowed range of 1 to 100"));
            return None;
        }
        if self.host.is_empty() || self.host.contains(['/', ':', ' ']) && self.host.parse::<std::net::IpAddr>().is_err()
        {
            cx.error(&path.key("host"), format!("{:?} is not a host name or IP address", self.host));
            return None;
        }
        Some(IcmpCheck { host: self.host, count })
    }
}

impl IcmpCheck {
    /// The host, as the `instance` label shows it.
    pub fn target(&self) -> String {
        self.host.clone()
    }
}

impl crate::run::Execute for IcmpCheck {
    async fn execute(&self, _cx: &crate::run::RunContext) -> crate::Outcome {
        crate::run::unsupported("icmp")
    }
}
