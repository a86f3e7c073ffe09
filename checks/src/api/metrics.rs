//! The `api` kind's series: `probe_api_*`, in blackbox_exporter's style (its `http` prober's series for the
//! check as a whole, and the same per step with a `step` label).

use super::ApiDetails;
use crate::http::PHASES;
use crate::metrics::{Family, SeriesWriter, flag, gauge};
use crate::{Outcome, Reason};

/// The families only `api` writes.
pub(super) const FAMILIES: &[Family] = &[
    gauge("probe_api_duration_seconds", "Duration of the api check's requests by phase, summed over all steps"),
    gauge("probe_api_status_code", "Response HTTP status code of the last step run"),
    gauge("probe_api_steps_run", "The number of steps run, the failed one included"),
    gauge("probe_api_step_success", "Whether the step passed"),
    gauge("probe_api_step_status_code", "Response HTTP status code of the step"),
    gauge("probe_api_step_duration_seconds", "Duration of the step's request by phase, summed over its redirects"),
];

pub(super) fn series(outcome: &Outcome, details: &ApiDetails, out: &mut dyn SeriesWriter) {
    crate::metrics::lookup(out, outcome);
    out.phases("probe_api_duration_seconds", outcome, &PHASES);
    let last = details.steps.last().map_or(0, |step| step.status_code);
    out.gauge("probe_api_status_code", f64::from(last));
    out.gauge("probe_api_steps_run", details.steps.len() as f64);
    for step in &details.steps {
        out.push("probe_api_step_success", &[("step", &step.name)], flag(step.passed));
        out.push("probe_api_step_status_code", &[("step", &step.name)], f64::from(step.status_code));
        for phase in PHASES {
            let seconds = step.phases.get(phase);
            out.push("probe_api_step_duration_seconds", &[("step", &step.name), ("phase", phase)], seconds);
        }
    }
    out.gauge("probe_failed_due_to_regex", flag(matches!(outcome.reason, Some(Reason::Body | Reason::Header))));
    crate::metrics::tls_part(out, &details.tls);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KindCheck as _;
    use crate::details::Details as _;

    use crate::metrics::SeriesNames as Names;

    #[test]
    fn the_representative_outcome_writes_every_family_and_a_series_per_step() {
        let yaml = "checks:\n  - name: a\n    api:\n      steps:\n        - {name: login, url: \"https://api.example.com/login\", capture: {token: {json: $.token}}}\n        - {name: orders, url: \"https://api.example.com/orders\", headers: {Authorization: \"Bearer ${steps.login.token}\"}}\n";
        let config = crate::load_str("t.yaml", yaml).unwrap_or_else(|errors| panic!("{errors}"));
        let crate::CheckKind::Api(check) = &config.checks[0].kind else { panic!("not an api check") };
        let outcome = check.representative();
        let mut names = Names::default();
        series(&outcome, &ApiDetails::read(&outcome.details), &mut names);
        for family in FAMILIES {
            assert!(names.0.iter().any(|name| name.starts_with(&format!("{}{{", family.name))), "{}", family.name);
        }
        for step in ["login", "orders"] {
            assert!(names.0.contains(&format!("probe_api_step_success{{step={step}}}")), "{:?}", names.0);
            for phase in PHASES {
                let series = format!("probe_api_step_duration_seconds{{step={step},phase={phase}}}");
                assert!(names.0.contains(&series), "{series}");
            }
        }
        assert!(names.0.iter().any(|name| name.starts_with("probe_ssl_earliest_cert_expiry")), "{:?}", names.0);
    }
}
