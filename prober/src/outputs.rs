//! The prober's side of the shared outputs component ([`probenet_exporters::Outputs`]): the exporters
//! configured `on: probers` (each prober sends its own results), fed as results are made, rebuilt when the
//! config from the scheduler changes them, and `/metrics` for the pairs assigned here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use probenet_checks::Config;
use probenet_checks::config::exporters::ExportOn;
use probenet_checks::wire::RunResult;
use probenet_exporters::{Exporters, FamilySamples, ProberHealth, Rebuilt};

/// The prober's outputs.
#[derive(Debug)]
pub struct Outputs(probenet_exporters::Outputs);

impl Default for Outputs {
    fn default() -> Self {
        Self(probenet_exporters::Outputs::new(ExportOn::Probers))
    }
}

impl Outputs {
    /// Offers a result to every sink and to `/metrics`.
    pub fn publish(&self, result: &RunResult) {
        self.0.publish(result);
    }

    /// Keeps on `/metrics` only the pairs assigned to this prober now.
    pub fn retain(&self, assigned: &[(String, String)]) {
        let keep: HashSet<(&str, &str)> =
            assigned.iter().map(|(check, region)| (check.as_str(), region.as_str())).collect();
        self.0.forget_unless(|check, region| keep.contains(&(check, region)));
    }

    /// The exposition of the assigned pairs' latest results, the prober's health and its sinks' counters.
    pub fn render(&self, health: &ProberHealth, more: Vec<FamilySamples>) -> Vec<String> {
        let mut extra: Vec<FamilySamples> = health.families();
        extra.extend(more);
        self.0.render(extra)
    }

    /// Takes a new config (the checks it defines and its exporters). Checks gone from it end their series
    /// here: a check merely moved to another prober keeps its series, since they carry no prober label.
    /// Exporters that cannot start (a secret missing on this machine) are logged; the running ones stay.
    pub fn configure(&self, config: &Config, regions: &[(String, String)]) {
        let now_ms = probenet_checks::time::now_ms();
        let defined: HashSet<&str> = config.checks.iter().map(|check| check.name.as_str()).collect();
        for (check, region) in regions {
            if !defined.contains(check.as_str()) {
                self.0.end(check, region, now_ms);
            }
        }
        match self.0.configure(config) {
            Ok(Rebuilt::Unchanged | Rebuilt::Started(0)) => {}
            Ok(Rebuilt::Started(count)) => tracing::info!(exporters = count, "prober exporters started"),
            Err(error) => tracing::error!(%error, "prober exporters not started; the running ones stay"),
        }
    }

    /// The running sinks (for metrics).
    pub fn sinks(&self) -> Arc<Exporters> {
        self.0.sinks()
    }

    /// Delivers what the sinks hold, for at most `grace`.
    pub async fn close(&self, grace: Duration) {
        self.0.close(grace).await;
    }
}
