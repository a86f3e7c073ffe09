//! Where results go besides the store, in a scheduler or in a prober: the sinks built from a config's exporters
//! of that side (`on: scheduler` or `on: probers`), the labelling facts of the config's checks, and the latest
//! result of each pair for `/metrics`. One component for both sides; sinks are rebuilt only when that side's
//! exporters change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use probenet_checks::Config;
use probenet_checks::config::exporters::{ExportOn, ExporterKind};
use probenet_checks::wire::RunResult;

use crate::build::{self, BuildError};
use crate::fed::{Checks, Feed};
use crate::{CheckMeta, Event, Exporters, FamilySamples, Latest, SeriesOptions};

/// One side's sinks, checks and latest results.
#[derive(Debug)]
pub struct Outputs {
    side: ExportOn,
    /// A scheduler's: the store its sinks read (`None` on a prober: sinks queue what is offered).
    feed: Option<Feed>,
    /// The labelling facts of the config's checks, by name (shared with sinks fed by the store).
    checks: Checks,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sinks: Arc<Exporters>,
    /// The exporters and series options the sinks were built from (`None`: none built yet), to rebuild only
    /// on a change.
    built_from: Option<(Vec<ExporterKind>, SeriesOptions)>,
    /// The latest result of each pair, for `/metrics`.
    latest: Arc<Latest>,
}

/// Whether [`Outputs::configure`] rebuilt the sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuilt {
    /// The exporters did not change: the running sinks stay.
    Unchanged,
    /// New sinks run (this many); the old ones deliver what they hold in the background.
    Started(usize),
}

impl Outputs {
    /// Nothing yet: no checks, no sinks (a prober before its first config).
    pub fn new(side: ExportOn) -> Self {
        Self { side, feed: None, checks: Checks::default(), inner: Mutex::new(Inner::default()) }
    }

    /// The outputs of `config` on `side`, sinks started (inside a Tokio runtime); the latest results are
    /// labelled with the config's series options. With a `feed` (a scheduler), the sinks read the results from
    /// its store, each from a position of its own saved there, rather than from what is published.
    pub fn start(config: &Config, side: ExportOn, feed: Option<Feed>) -> Result<Self, BuildError> {
        let checks = Checks::new(std::sync::RwLock::new(Arc::new(metas(config))));
        let sinks = build::start(config, side, feed.as_ref().map(|feed| (feed, &checks)))?;
        let inner = Inner {
            sinks: Arc::new(sinks),
            built_from: Some((exporters_on(config, side), build::series_options(config))),
            latest: Arc::new(Latest::new(build::series_options(config))),
        };
        Ok(Self { side, feed, checks, inner: Mutex::new(inner) })
    }

    fn checks(&self) -> Arc<HashMap<String, Arc<CheckMeta>>> {
        self.checks.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers a result of a known check to `/metrics` and every sink (sinks fed by the store only wake: they
    /// read it there).
    pub fn publish(&self, result: &RunResult) {
        self.publish_to(result, true);
    }

    /// Offers a result to the sinks only: for a process whose `/metrics` leaves out the per-pair series, so it
    /// keeps no copy of each pair's latest result for them.
    pub fn offer(&self, result: &RunResult) {
        self.publish_to(result, false);
    }

    fn publish_to(&self, result: &RunResult, latest: bool) {
        let checks = self.checks();
        let inner = self.lock();
        let Some(check) = checks.get(&result.check) else { return };
        let event = Event::Result { check: check.clone(), result: Arc::new(result.clone()) };
        if latest {
            inner.latest.record(&event);
        }
        if !inner.sinks.sinks().is_empty() {
            inner.sinks.offer(&event);
        }
    }

    /// Ends the series of a pair (of a check of the current config) at `at_ms`, on `/metrics` and in the
    /// sinks (remote write sends stale markers).
    pub fn end(&self, check: &str, region: &str, at_ms: i64) {
        let checks = self.checks();
        let inner = self.lock();
        if let Some(meta) = checks.get(check) {
            let event = Event::Removed { check: meta.clone(), region: region.to_owned(), at_ms };
            inner.latest.record(&event);
            inner.sinks.offer(&event);
        }
    }

    /// Drops from `/metrics` (only) the pairs for which `keep` is false.
    pub fn forget_unless(&self, keep: impl Fn(&str, &str) -> bool) {
        let checks = self.checks();
        let inner = self.lock();
        for (check, region) in inner.latest.pairs() {
            if !keep(&check, &region)
                && let Some(meta) = checks.get(&check)
            {
                inner.latest.record(&Event::Removed { check: meta.clone(), region, at_ms: 0 });
            }
        }
    }

    /// Takes `config`'s checks and series options (region labels, intervals, alert sensitivities), and
    /// rebuilds the sinks if its exporters of this side or those options changed. When they cannot be built
    /// (a secret missing on this machine), the running sinks stay and the error is returned.
    pub fn configure(&self, config: &Config) -> Result<Rebuilt, BuildError> {
        let mut inner = self.lock();
        *self.checks.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(metas(config));
        let series = build::series_options(config);
        inner.latest.set_options(series.clone());
        let wanted = (exporters_on(config, self.side), series);
        if inner.built_from.as_ref() == Some(&wanted) {
            return Ok(Rebuilt::Unchanged);
        }
        let sinks = build::start(config, self.side, self.feed.as_ref().map(|feed| (feed, &self.checks)))?;
        let count = sinks.sinks().len();
        let old = std::mem::replace(&mut inner.sinks, Arc::new(sinks));
        inner.built_from = Some(wanted);
        tokio::spawn(async move { old.close(Duration::from_secs(30)).await });
        Ok(Rebuilt::Started(count))
    }

    /// The exposition of every pair's latest result, then `extra` families, then the sinks' counters, in
    /// pieces to send one after another ([`crate::exposition::Latest::render_chunks`]).
    pub fn render(&self, mut extra: Vec<FamilySamples>) -> Vec<String> {
        let (latest, sinks) = {
            let inner = self.lock();
            (inner.latest.clone(), inner.sinks.clone())
        };
        extra.extend(crate::sink_families(sinks.sinks()));
        latest.render_chunks(&extra)
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

/// The labelling facts of every check of a config, by name.
fn metas(config: &Config) -> HashMap<String, Arc<CheckMeta>> {
    config.checks.iter().map(|check| (check.name.clone(), Arc::new(CheckMeta::of(check)))).collect()
}

/// What a config's exporters of one side are (not where they are written): equal lists build equal sinks.
fn exporters_on(config: &Config, side: ExportOn) -> Vec<ExporterKind> {
    config.exporters.iter().filter(|exporter| exporter.on == side).map(|exporter| exporter.kind.clone()).collect()
}
