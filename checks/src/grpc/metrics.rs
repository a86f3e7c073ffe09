//! The `grpc` kind's series, named as blackbox_exporter's grpc prober names them (`probe_grpc_*`).

use super::wire::SERVING_STATUSES;
use super::{GrpcDetails, PHASES};
use crate::Outcome;
use crate::metrics::{Family, SeriesWriter, flag, gauge};

/// The families only `grpc` writes.
pub(super) const FAMILIES: &[Family] = &[
    gauge("probe_grpc_duration_seconds", "Duration of gRPC request by phase"),
    gauge("probe_grpc_healthcheck_response", "Response HealthCheck response"),
    gauge("probe_grpc_status_code", "Response gRPC status code"),
    gauge("probe_grpc_ssl", "Indicates if SSL was used for the connection"),
];

pub(super) fn series(outcome: &Outcome, details: &GrpcDetails, out: &mut dyn SeriesWriter) {
    crate::metrics::lookup(out, outcome);
    crate::metrics::ip_protocol(out, details.remote_address.as_deref());
    out.phases("probe_grpc_duration_seconds", outcome, &PHASES);
    // As blackbox_exporter: every status pre-created, 1 for the one answered.
    for status in SERVING_STATUSES {
        let answered = details.serving_status.as_deref() == Some(status);
        out.push("probe_grpc_healthcheck_response", &[("serving_status", status)], flag(answered));
    }
    if let Some(code) = details.status_code {
        out.gauge("probe_grpc_status_code", f64::from(code));
    }
    out.gauge("probe_grpc_ssl", flag(details.tls.session.is_some()));
    crate::metrics::tls_part(out, &details.tls);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KindCheck as _;
    use crate::details::Details as _;

    use crate::metrics::SeriesNames as Names;

    #[test]
    fn the_representative_outcome_writes_every_family_and_the_tls_series() {
        let yaml = "checks:\n  - {name: a, grpc: {target: \"api.example.com:443\"}}\n";
        let config = crate::load_str("t.yaml", yaml).unwrap_or_else(|errors| panic!("{errors}"));
        let crate::CheckKind::Grpc(check) = &config.checks[0].kind else { panic!("not a grpc check") };
        let outcome = check.representative();
        let mut names = Names::default();
        series(&outcome, &GrpcDetails::read(&outcome.details), &mut names);
        for family in FAMILIES {
            assert!(names.0.iter().any(|name| name.starts_with(&format!("{}{{", family.name))), "{}", family.name);
        }
        for phase in PHASES {
            assert!(names.0.contains(&format!("probe_grpc_duration_seconds{{phase={phase}}}")), "{phase}");
        }
        for status in SERVING_STATUSES {
            let name = format!("probe_grpc_healthcheck_response{{serving_status={status}}}");
            assert!(names.0.contains(&name), "{name}");
        }
        assert!(names.0.iter().any(|name| name.starts_with("probe_ssl_earliest_cert_expiry")), "{:?}", names.0);
    }
}
