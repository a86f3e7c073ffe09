//! The prober's own result outputs: the exporters configured `on: probers` (each prober sends its own
//! results), fed as results are made, rebuilt when the config from the scheduler changes them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use probenet_checks::Config;
use probenet_checks::config::exporters::ExportOn;
use probenet_checks::wire::RunResult;
use probenet_exporters::build;
use probenet_exporters::{CheckMeta, Event, Exporters, FamilySamples, Latest, ProberHealth};

/// The prober's sinks and the labelling facts of its assigned checks.
#[derive(Debug, Default)]
pub struct Outputs {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sinks: Arc<Exporters>,
    built_from: Option<String>,
    checks: HashMap<String, Arc<CheckMeta>>,
    /// The latest result of each pair, for `/metrics`.
    latest: Arc<Latest>,
}

impl Outputs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers a result to every sink and to `/metrics`.
    pub fn publish(&self, result: &RunResult) {
        let inner = self.lock();
        if let Some(check) = inner.checks.get(&result.check) {
            let event = Event::Result { check: check.clone(), result: Arc::new(result.clone()) };
            inner.latest.record(&event);
            if !inner.sinks.sinks().is_empty() {
                inner.sinks.offer(&event);
            }
        }
    }

    /// Keeps on `/metrics` only the pairs assigned to this prober now.
    pub fn retain(&self, assigned: &[(String, String)]) {
        let keep: HashSet<(&str, &str)> =
            assigned.iter().map(|(check, region)| (check.as_str(), region.as_str())).collect();
        let inner = self.lock();
        for (check, region) in inner.latest.pairs() {
            if !keep.contains(&(check.as_str(), region.as_str()))
                && let Some(meta) = inner.checks.get(&check)
            {
                inner.latest.record(&Event::Removed { check: meta.clone(), region, at_ms: 0 });
            }
        }
    }

    /// The exposition of the assigned pairs' latest results, the prober's health and its sinks' counters.
    pub fn render(&self, health: &ProberHealth, more: Vec<FamilySamples>) -> String {
        let (latest, sinks) = {
            let inner = self.lock();
            (inner.latest.clone(), inner.sinks.clone())
        };
        let mut extra: Vec<FamilySamples> = health.families();
        extra.extend(more);
        extra.extend(probenet_exporters::sink_families(sinks.sinks()));
        latest.render_with(&extra)
    }

    /// Takes a new config (the checks it defines and its exporters). Checks gone from it end their series
    /// here: a check merely moved to another prober keeps its series, since they carry no prober label.
    /// Exporters that cannot start (a secret missing on this machine) are logged; the running ones stay.
    pub fn configure(&self, config: &Config, regions: &[(String, String)]) {
        let now_ms = now_ms();
        let exporters = &config.exporters;
        let metas: HashMap<String, Arc<CheckMeta>> =
            config.checks.iter().map(|check| (check.name.clone(), Arc::new(CheckMeta::of(check)))).collect();
        let mut inner = self.lock();
        let defined: HashSet<&str> = metas.keys().map(String::as_str).collect();
        for (check, region) in regions {
            if defined.contains(check.as_str()) {
                continue;
            }
            if let Some(meta) = inner.checks.get(check) {
                let event = Event::Removed { check: meta.clone(), region: region.clone(), at_ms: now_ms };
                inner.latest.record(&event);
                inner.sinks.offer(&event);
            }
        }
        inner.checks = metas;
        let wanted = format!(
            "{:?}",
            exporters.iter().filter(|e| e.on == ExportOn::Probers).map(|e| &e.kind).collect::<Vec<_>>()
        );
        if inner.built_from.as_deref() == Some(wanted.as_str()) {
            return;
        }
        match build::start(config, ExportOn::Probers) {
            Ok(sinks) => {
                let count = sinks.sinks().len();
                let old = std::mem::replace(&mut inner.sinks, Arc::new(sinks));
                inner.built_from = Some(wanted);
                tokio::spawn(async move { old.close(Duration::from_secs(30)).await });
                if count > 0 {
                    tracing::info!(exporters = count, "prober exporters started");
                }
            }
            Err(error) => tracing::error!(%error, "prober exporters not started; the running ones stay"),
        }
    }

    /// The running sinks (for metrics).
    pub fn sinks(&self) -> Arc<Exporters> {
        self.lock().sinks.clone()
    }

    /// Delivers what the sinks hold, for at most `grace`.
    pub async fn close(&self, grace: Duration) {
        let sinks = self.sinks();
        sinks.close(grace).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}
