//! The `grpc` kind: the standard health check (`grpc.health.v1.Health/Check`) and a unary call whose types
//! come from the server's reflection service, over one HTTP/2 connection (TLS or plaintext), timed and named as
//! blackbox_exporter's grpc prober (`probe_grpc_*`).

mod details;
mod execute;
mod metrics;
mod reflect;
mod spec;
mod wire;

pub use details::GrpcDetails;
pub use spec::{
    Call, GrpcCallSpec, GrpcCheck, GrpcExpectSpec, GrpcHealthSpec, GrpcSpec, Health, PHASES, STATUS_NAMES,
    ServingStatus, status_name,
};

use crate::details::Details as _;
use crate::tls::TlsPart;

impl crate::kind::KindCheck for GrpcCheck {
    const KIND: crate::Kind = crate::Kind::Grpc;
    type Spec = GrpcSpec;
    type Details = GrpcDetails;
    const FAMILIES: &'static [crate::metrics::Family] = metrics::FAMILIES;
    /// Grafana synthetic monitoring calls its check `grpc` too.
    const SM_CHECK_NAME: &'static str = "grpc";

    fn series(outcome: &crate::Outcome, details: &GrpcDetails, out: &mut dyn crate::metrics::SeriesWriter) {
        metrics::series(outcome, details, out);
    }

    fn wrap(self) -> crate::CheckKind {
        crate::CheckKind::Grpc(Box::new(self))
    }

    /// The target, `host:port`.
    fn target(&self) -> String {
        self.target.clone()
    }

    fn ip_target(&self) -> Option<crate::net::IpTarget> {
        Some(crate::net::IpTarget::new(&self.host, self.port, self.ip_version, self.ips))
    }

    fn representative(&self) -> crate::Outcome {
        let details = GrpcDetails {
            remote_address: Some("192.0.2.1:443".to_owned()),
            serving_status: self.health.as_ref().map(|_| "SERVING".to_owned()),
            status_code: Some(0),
            status_message: None,
            method: self.call.as_ref().map(Call::name),
            response: None,
            tls: if self.tls.is_some() { crate::tls::representative_tls() } else { TlsPart::default() },
        };
        crate::Outcome::representative(&PHASES, details.to_value())
    }
}
