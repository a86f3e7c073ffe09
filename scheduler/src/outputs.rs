//! The scheduler's side of the shared outputs component ([`probenet_exporters::Outputs`]): its exporters
//! (`on: scheduler`) get every stored result, and a pair that leaves the config ends its series.

use std::collections::BTreeSet;
use std::time::Duration;

use probenet_checks::config::exporters::ExportOn;
use probenet_checks::wire::RunResult;
use probenet_exporters::build::BuildError;
use probenet_exporters::fed::Feed;
use probenet_exporters::{Exporters, Rebuilt};

use crate::config::Loaded;

/// The scheduler's outputs.
#[derive(Debug)]
pub struct Outputs(probenet_exporters::Outputs);

impl Outputs {
    /// Starts the scheduler's exporters of `loaded` (inside a Tokio runtime): each reads the results from the
    /// store (`feed`), from a position of its own saved there, so an outage of its receiver, a restart or a
    /// failover loses nothing the store holds.
    pub fn start(loaded: &Loaded, feed: Feed) -> Result<Self, BuildError> {
        probenet_exporters::Outputs::start(&loaded.config, ExportOn::Scheduler, Some(feed)).map(Self)
    }

    /// Takes newly stored results: the sinks are woken to read them, and with `per_check` (the per-pair series
    /// on `/metrics`) the latest of each pair is kept for `/metrics`.
    pub fn publish(&self, results: &[RunResult], per_check: bool) {
        match per_check {
            true => results.iter().for_each(|result| self.0.publish(result)),
            false => results.iter().for_each(|result| self.0.offer(result)),
        }
    }

    /// Moves to a new config: pairs that left it end their series; sinks are rebuilt when the exporters
    /// changed (the old ones deliver what they hold in the background). A sink that cannot be built keeps the
    /// old ones running and is logged.
    pub fn reconfigure(&self, old: &Loaded, new: &Loaded) {
        let now_ms = crate::time::now_ms();
        let kept: BTreeSet<(&str, &str)> = new.pairs().into_iter().collect();
        for (check, region) in old.pairs() {
            if !kept.contains(&(check, region)) {
                self.0.end(check, region, now_ms);
            }
        }
        match self.0.configure(&new.config) {
            Ok(Rebuilt::Unchanged) => {}
            Ok(Rebuilt::Started(_)) => tracing::info!("exporters restarted with the new config"),
            Err(error) => tracing::warn!(%error, "exporters not restarted; the running ones stay"),
        }
    }

    /// The running sinks (for metrics).
    pub fn sinks(&self) -> std::sync::Arc<Exporters> {
        self.0.sinks()
    }

    /// The exposition of every pair's latest result and of the sinks' counters, in pieces.
    pub fn render(&self) -> Vec<String> {
        self.0.render(Vec::new())
    }

    /// Delivers what the sinks hold, for at most `grace`.
    pub async fn close(&self, grace: Duration) {
        self.0.close(grace).await;
    }
}
