//! Sinks from the config's `exporters` section: secrets resolved on the machine that runs them, each sink
//! started behind its own queue.

use std::sync::Arc;

use probenet_checks::config::exporters::{ExportOn, Exporter, ExporterKind, HttpTarget};
use probenet_checks::secret::Template;
use probenet_checks::{Config, Schedule};

use crate::record::Secrets;
use crate::{
    Exporters, LogOptions, LogSink, LokiOptions, LokiSink, QueueOptions, RemoteWriteOptions, RemoteWriteSink,
    SeriesOptions, Sink, SinkHandle,
};

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
/// that cannot be is an error, and no sink is started then.
pub fn start(config: &Config, on: ExportOn) -> Result<Exporters, BuildError> {
    let series = series_options(config);
    let mut sinks = Vec::new();
    for (index, exporter) in config.exporters.iter().filter(|exporter| exporter.on == on).enumerate() {
        let sink = build(exporter, &series)?;
        let name = format!("{}-{index}", exporter.kind.key());
        sinks.push((name, sink));
    }
    Ok(Exporters::new(
        sinks.into_iter().map(|(name, sink)| SinkHandle::spawn(name, sink, QueueOptions::default())).collect(),
    ))
}

/// What series need from the config besides the results: each check's interval and each region's geohash
/// (from a region label `geohash`), for `sm_check_info`.
pub fn series_options(config: &Config) -> SeriesOptions {
    let mut options = SeriesOptions::default();
    for check in &config.checks {
        if let Schedule::Every(interval) = &check.schedule {
            options.frequency_ms.insert(check.name.clone(), u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
        }
    }
    for (name, region) in &config.regions {
        if let Some(geohash) = region.labels.get("geohash") {
            options.geohash.insert(name.clone(), geohash.clone());
        }
    }
    options
}

/// One sink from its config.
pub fn build(exporter: &Exporter, series: &SeriesOptions) -> Result<Arc<dyn Sink>, BuildError> {
    let kind = exporter.kind.key();
    let fail = |message: String| BuildError { place: exporter.place.to_string(), kind, message };
    let mut secrets = Vec::new();
    let sink: Arc<dyn Sink> = match &exporter.kind {
        ExporterKind::Logs { path, max_bytes, max_files } => Arc::new(LogSink::new(LogOptions {
            path: path.clone(),
            max_bytes: *max_bytes,
            max_files: *max_files,
            ..LogOptions::default()
        })),
        ExporterKind::Loki { target, tenant } => {
            let resolved = resolve(target, &mut secrets).map_err(fail)?;
            let options = LokiOptions {
                url: target.url.to_string(),
                tenant: tenant.clone(),
                bearer_token: resolved.bearer_token,
                basic_auth: resolved.basic_auth,
                ca_file: target.ca_file.clone(),
                labels: target.labels.clone(),
                timeout: target.timeout,
                secrets: Secrets::new(secrets.iter()),
                ..LokiOptions::default()
            };
            Arc::new(LokiSink::new(options).map_err(|error| fail(error.to_string()))?)
        }
        ExporterKind::RemoteWrite(target) => {
            let resolved = resolve(target, &mut secrets).map_err(fail)?;
            let options = RemoteWriteOptions {
                url: target.url.to_string(),
                bearer_token: resolved.bearer_token,
                basic_auth: resolved.basic_auth,
                ca_file: target.ca_file.clone(),
                insecure_skip_verify: target.insecure_skip_verify,
                headers: resolved.headers,
                timeout: target.timeout,
                external_labels: target.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                series: series.clone(),
            };
            Arc::new(RemoteWriteSink::new(options).map_err(|error| fail(error.to_string()))?)
        }
    };
    Ok(sink)
}

/// Credentials of an HTTP receiver, resolved.
#[derive(Default)]
struct Resolved {
    bearer_token: Option<String>,
    basic_auth: Option<(String, String)>,
    headers: Vec<(String, String)>,
}

fn resolve(target: &HttpTarget, secrets: &mut Vec<String>) -> Result<Resolved, String> {
    let mut one = |template: &Template| template.resolve(secrets).map_err(|error| error.0);
    let bearer_token = target.bearer_token.as_ref().map(&mut one).transpose()?;
    let basic_auth = match &target.basic_auth {
        Some((user, password)) => Some((user.clone(), one(password)?)),
        None => None,
    };
    let mut headers = Vec::new();
    for (name, value) in &target.headers {
        headers.push((name.clone(), one(value)?));
    }
    Ok(Resolved { bearer_token, basic_auth, headers })
}
