//! Sinks from the config's `exporters` section: secrets resolved on the machine that runs them, each sink
//! started behind its own queue.

use std::sync::Arc;

use probenet_checks::config::exporters::{ExportOn, Exporter, ExporterKind, HttpTarget};
use probenet_checks::secret::Template;

use crate::record::Secrets;
use crate::{Exporters, LogOptions, LogSink, LokiOptions, LokiSink, QueueOptions, Sink, SinkHandle};

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

/// Starts every exporter meant for `on` (inside a Tokio runtime). Secrets are resolved here; one that cannot
/// be is an error, and no sink is started then.
pub fn start(exporters: &[Exporter], on: ExportOn) -> Result<Exporters, BuildError> {
    let mut sinks = Vec::new();
    for (index, exporter) in exporters.iter().filter(|exporter| exporter.on == on).enumerate() {
        let sink = build(exporter)?;
        let name = format!("{}-{index}", exporter.kind.key());
        sinks.push((name, sink));
    }
    Ok(Exporters::new(
        sinks.into_iter().map(|(name, sink)| SinkHandle::spawn(name, sink, QueueOptions::default())).collect(),
    ))
}

/// One sink from its config.
pub fn build(exporter: &Exporter) -> Result<Arc<dyn Sink>, BuildError> {
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
            remote_write(target, resolved).map_err(fail)?
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

fn remote_write(_target: &HttpTarget, _resolved: Resolved) -> Result<Arc<dyn Sink>, String> {
    Err("remote write is not built into this binary yet".to_owned())
}
