//! The `tcp` kind: a TCP connection to `host:port`.
//!
//! Validated here; executing it is the check-kinds issue's work, and until then a run fails with reason
//! `unsupported`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, KindSpec, Path};

/// A TCP connection.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// The server to connect to, as `host:port`.
    pub target: String,
}

/// A validated TCP check.
#[derive(Debug, Clone)]
pub struct TcpCheck {
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
}

impl KindSpec for TcpSpec {
    type Check = TcpCheck;

    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<TcpCheck> {
        let (host, port) = cx.host_port(&path.key("target"), &self.target, None)?;
        Some(TcpCheck { host, port })
    }
}

impl TcpCheck {
    /// `host:port`, as the `instance` label shows it.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl crate::run::Execute for TcpCheck {
    async fn execute(&self, _cx: &crate::run::RunContext) -> crate::Outcome {
        crate::run::unsupported("tcp")
    }
}
