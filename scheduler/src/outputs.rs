//! Where ingested results go besides the store: the scheduler's exporters (remote write, logs, Loki), with
//! each check's labels, and the end of a pair's series when it leaves the config.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use probenet_checks::config::exporters::ExportOn;
use probenet_checks::wire::RunResult;
use probenet_exporters::build::{self, BuildError};
use probenet_exporters::{CheckMeta, Event, Exporters, FamilySamples, Latest};

use crate::config::Loaded;

/// The scheduler's sinks and the labelling facts of the running config's checks.
#[derive(Debug)]
pub struct Outputs {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    sinks: Arc<Exporters>,
    /// What the sinks were built from, to rebuild them only when it changes.
    built_from: String,
    checks: HashMap<String, Arc<CheckMeta>>,
    /// The latest result of each pair, for `/metrics`.
    latest: Arc<Latest>,
}

impl Outputs {
    /// Starts the scheduler's exporters of `loaded` (inside a Tokio runtime).
    pub fn start(loaded: &Loaded) -> Result<Self, BuildError> {
        let sinks = build::start(&loaded.config, ExportOn::Scheduler)?;
        Ok(Self {
            inner: Mutex::new(Inner {
                sinks: Arc::new(sinks),
                built_from: describe(loaded),
                checks: metas(loaded),
                latest: Arc::new(Latest::new(build::series_options(&loaded.config))),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers newly stored results to every sink.
    pub fn publish(&self, results: &[RunResult]) {
        let inner = self.lock();
        for result in results {
            let Some(check) = inner.checks.get(&result.check) else { continue };
            let event = Event::Result { check: check.clone(), result: Arc::new(result.clone()) };
            inner.latest.record(&event);
            inner.sinks.offer(&event);
        }
    }

    /// Moves to a new config: pairs that left it end their series; sinks are rebuilt when the exporters
    /// changed (the old ones deliver what they hold in the background). A sink that cannot be built keeps the
    /// old ones running and is logged.
    pub fn reconfigure(&self, old: &Loaded, new: &Loaded) {
        let now_ms = crate::time::now_ms();
        let kept: BTreeSet<(&str, &str)> = new.pairs().into_iter().collect();
        let mut inner = self.lock();
        for (check, region) in old.pairs() {
            if kept.contains(&(check, region)) {
                continue;
            }
            if let Some(meta) = inner.checks.get(check) {
                let event = Event::Removed { check: meta.clone(), region: region.to_owned(), at_ms: now_ms };
                inner.latest.record(&event);
                inner.sinks.offer(&event);
            }
        }
        inner.checks = metas(new);
        let wanted = describe(new);
        if wanted == inner.built_from {
            return;
        }
        match build::start(&new.config, ExportOn::Scheduler) {
            Ok(sinks) => {
                let old_sinks = std::mem::replace(&mut inner.sinks, Arc::new(sinks));
                inner.built_from = wanted;
                tokio::spawn(async move { old_sinks.close(Duration::from_secs(30)).await });
                tracing::info!("exporters restarted with the new config");
            }
            Err(error) => tracing::warn!(%error, "exporters not restarted; the running ones stay"),
        }
    }

    /// The running sinks (for metrics).
    pub fn sinks(&self) -> Arc<Exporters> {
        self.lock().sinks.clone()
    }

    /// The exposition of every pair's latest result and of the sinks' counters.
    pub fn render(&self) -> String {
        let (latest, sinks) = {
            let inner = self.lock();
            (inner.latest.clone(), inner.sinks.clone())
        };
        let extra: Vec<FamilySamples> = probenet_exporters::sink_families(sinks.sinks());
        latest.render_with(&extra)
    }

    /// Delivers what the sinks hold, for at most `grace`.
    pub async fn close(&self, grace: Duration) {
        let sinks = self.sinks();
        sinks.close(grace).await;
    }
}

fn metas(loaded: &Loaded) -> HashMap<String, Arc<CheckMeta>> {
    loaded.config.checks.iter().map(|check| (check.name.clone(), Arc::new(CheckMeta::of(check)))).collect()
}

/// The exporters of a config as text: equal texts build equal sinks.
fn describe(loaded: &Loaded) -> String {
    format!("{:?}", loaded.config.exporters.iter().map(|exporter| (&exporter.kind, exporter.on)).collect::<Vec<_>>())
}
