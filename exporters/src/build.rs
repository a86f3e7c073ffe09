//! Sinks from the config's `exporters` section: secrets resolved on the machine that runs them, each sink
//! started behind its own queue.

use std::sync::Arc;

use probenet_checks::config::exporters::{ExportOn, Exporter, ExporterKind, HttpTarget};
use probenet_checks::config::spec::AlertSensitivity;
use probenet_checks::secret::Template;
use probenet_checks::{Config, Schedule};

use crate::fed::{Checks, Feed, cursor_name};
use crate::{Exporters, LogSink, LokiSink, OtlpSink, QueueOptions, RemoteWriteSink, SeriesOptions, Sink, SinkHandle};

/// Why an exporter could not start.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {kind}: {message}")]
pub struct BuildError {
    /// Where the exporter is written (`file:line:col`).
    pub place: String,
    /// Its kind key.
    pub kind: &'static str,
    /// What is wrong (never a secret).
    pub message: String,
}

/// Starts every exporter of `config` meant for `on` (inside a Tokio runtime). Secrets are resolved here; one
/// that cannot be is an error, and no sink is started then. With a `feed` (a scheduler), each sink reads the
/// store from its own cursor; without (a prober), results are offered to in-memory queues.
pub fn start(config: &Config, on: ExportOn, feed: Option<(&Feed, &Checks)>) -> Result<Exporters, BuildError> {
    let series = series_options(config);
    let mut sinks = Vec::new();
    for (index, exporter) in config.exporters.iter().filter(|exporter| exporter.on == on).enumerate() {
        let sink = build(exporter, &series)?;
        let name = format!("{}-{index}", exporter.kind.key());
        sinks.push((name, sink));
    }
    let mut cursors: Vec<String> = Vec::new();
    let mut handles = Vec::new();
    for (name, sink) in sinks {
        let handle = match feed {
            None => SinkHandle::spawn(name, sink, QueueOptions::default()),
            Some((feed, checks)) => {
                // Two sinks writing to one place (unusual) still keep a position each.
                let mut cursor = cursor_name(sink.as_ref());
                let same = cursors.iter().filter(|known| known.starts_with(&cursor)).count();
                if same > 0 {
                    cursor = format!("{cursor}#{same}");
                }
                cursors.push(cursor.clone());
                SinkHandle::spawn_fed(name, cursor, sink, QueueOptions::default(), feed.clone(), checks.clone())
            }
        };
        handles.push(handle);
    }
    Ok(Exporters::new(handles))
}

/// What series and records need from the config besides the results: each region's labels, each check's
/// interval and alert sensitivity (for `sm_check_info`).
pub fn series_options(config: &Config) -> SeriesOptions {
    let mut options = SeriesOptions::default();
    for check in &config.checks {
        if let Schedule::Every(interval) = &check.schedule {
            options.frequency_ms.insert(check.name.clone(), u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
        }
        if check.alert_sensitivity != AlertSensitivity::None {
            options.alert_sensitivity.insert(check.name.clone(), check.alert_sensitivity.as_str());
        }
    }
    for (name, region) in &config.regions {
        if !region.labels.is_empty() {
            options.region_labels.insert(name.clone(), region.labels.clone());
        }
    }
    options
}

/// One sink from its config: each sink's module builds it (`LogSink::from_config`...); this is the one match
/// over exporter kinds.
pub fn build(exporter: &Exporter, series: &SeriesOptions) -> Result<Arc<dyn Sink>, BuildError> {
    let fail = |message: String| BuildError { place: exporter.place.to_string(), kind: exporter.kind.key(), message };
    let sink: Arc<dyn Sink> = match &exporter.kind {
        ExporterKind::Logs(spec) => Arc::new(LogSink::from_config(spec, series)),
        ExporterKind::Loki(spec) => Arc::new(LokiSink::from_config(spec, series).map_err(fail)?),
        ExporterKind::RemoteWrite(spec) => Arc::new(RemoteWriteSink::from_config(spec, series).map_err(fail)?),
        ExporterKind::Otlp(spec) => Arc::new(OtlpSink::from_config(spec, series).map_err(fail)?),
    };
    Ok(sink)
}

/// Credentials of an HTTP receiver, resolved on this machine, and every secret value among them.
#[derive(Default)]
pub(crate) struct Resolved {
    pub(crate) bearer_token: Option<String>,
    pub(crate) basic_auth: Option<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) secrets: Vec<String>,
}

impl Resolved {
    /// Resolves the credentials of `target`; the error never holds a secret.
    pub(crate) fn of(target: &HttpTarget) -> Result<Self, String> {
        let mut secrets = Vec::new();
        let mut one = |template: &Template| template.resolve(&mut secrets).map_err(|error| error.0);
        let bearer_token = target.bearer_token.as_ref().map(&mut one).transpose()?;
        let basic_auth = match &target.basic_auth {
            Some((user, password)) => Some((user.clone(), one(password)?)),
            None => None,
        };
        let mut headers = Vec::new();
        for (name, value) in &target.headers {
            headers.push((name.clone(), one(value)?));
        }
        Ok(Self { bearer_token, basic_auth, headers, secrets })
    }
}
