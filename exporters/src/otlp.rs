//! The OTLP sink: results sent over OTLP/HTTP with protobuf bodies, their series as gauges to
//! `<endpoint>/v1/metrics` (the remote-write names and labels) and each one as a log record to
//! `<endpoint>/v1/logs` (the Loki line as body). Retried on 429 and 5xx by the sink's queue, refused for good
//! on any other 4xx; a batch retried after a partial failure does not send again what was delivered.

mod encode;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::resource::v1::Resource;
use probenet_checks::config::exporters::otlp::{Compression, OtlpSpec};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::record::{RecordOptions, Secrets};
use crate::samples::{SeriesOptions, Totals};
use crate::sink::{Event, SendError, Sink};

/// The path of metrics requests under the endpoint.
pub const METRICS_PATH: &str = "/v1/metrics";
/// The path of logs requests under the endpoint.
pub const LOGS_PATH: &str = "/v1/logs";
/// The request body size aimed at by default (uncompressed): a Collector's default limit is far above it.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Requests in flight at once (each (check, region) pair's results stay on one).
const SHARDS: usize = 4;
/// The longest piece of a receiver's answer quoted in an error.
const MAX_QUOTED: usize = 200;
/// Bodies remembered as delivered for batches still being retried, at most.
const MAX_REMEMBERED: usize = 4096;
const PROTOBUF: &str = "application/x-protobuf";

/// Where and how to send.
#[derive(Clone)]
pub struct OtlpOptions {
    /// The receiver's base URL, such as `http://127.0.0.1:4318`; [`METRICS_PATH`] and [`LOGS_PATH`] are added.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer TOKEN`.
    pub bearer_token: Option<String>,
    /// Sent as basic auth (user, password).
    pub basic_auth: Option<(String, String)>,
    /// Extra headers on every request (an API key...): their values are treated as secrets.
    pub headers: Vec<(String, String)>,
    /// A PEM file of extra CA certificates to trust (besides the system's).
    pub ca_file: Option<PathBuf>,
    /// Accepts any server certificate. For tests only.
    pub insecure_skip_verify: bool,
    /// Timeout of one request; 30 s when zero.
    pub timeout: Duration,
    /// Compress bodies with gzip.
    pub gzip: bool,
    /// Resource attributes besides `service.name=probenet`.
    pub resource_attributes: BTreeMap<String, String>,
    /// Send the series to `/v1/metrics`.
    pub metrics: bool,
    /// Send the log records to `/v1/logs`.
    pub logs: bool,
    /// Region labels, intervals and sensitivities for the series and the lines.
    pub series: SeriesOptions,
    /// Values kept out of every log record and message (the token, password and header values are added).
    pub secrets: Secrets,
    /// The most bytes of one request body (uncompressed); a result larger than it still goes, alone.
    /// [`MAX_REQUEST_BYTES`] when zero.
    pub max_request_bytes: usize,
}

impl Default for OtlpOptions {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            bearer_token: None,
            basic_auth: None,
            headers: Vec::new(),
            ca_file: None,
            insecure_skip_verify: false,
            timeout: Duration::from_secs(30),
            gzip: false,
            resource_attributes: BTreeMap::new(),
            metrics: true,
            logs: true,
            series: SeriesOptions::default(),
            secrets: Secrets::default(),
            max_request_bytes: MAX_REQUEST_BYTES,
        }
    }
}

impl fmt::Debug for OtlpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpOptions")
            .field("endpoint", &self.endpoint)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "<redacted>"))
            .field("basic_auth", &self.basic_auth.as_ref().map(|(user, _)| (user, "<redacted>")))
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("ca_file", &self.ca_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("timeout", &self.timeout)
            .field("gzip", &self.gzip)
            .field("resource_attributes", &self.resource_attributes)
            .field("metrics", &self.metrics)
            .field("logs", &self.logs)
            .field("max_request_bytes", &self.max_request_bytes)
            .finish_non_exhaustive()
    }
}

/// Why an OTLP sink could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    /// The endpoint does not parse or is not http(s).
    #[error("otlp endpoint: {0}")]
    Url(String),
    /// The endpoint holds a user or password.
    #[error("otlp endpoint: credentials belong in bearer_token or basic_auth, not in the url")]
    UrlCredentials,
    /// Both a bearer token and basic auth were given.
    #[error("otlp: bearer_token and basic_auth cannot both be set")]
    TwoAuths,
    /// A header name or value is invalid (the value is never shown).
    #[error("otlp: header {0:?}: invalid name or value")]
    Header(String),
    /// The CA file cannot be used.
    #[error("otlp ca_file {path}: {message}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("otlp: http client: {0}")]
    Client(String),
}

enum Auth {
    Bearer(String),
    Basic(String, String),
}

/// Sends results to an OTLP/HTTP receiver (an OpenTelemetry Collector, Grafana Alloy, a vendor's endpoint).
pub struct OtlpSink {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    metrics_url: reqwest::Url,
    logs_url: reqwest::Url,
    auth: Option<Auth>,
    gzip: bool,
    metrics: bool,
    logs: bool,
    resource: Resource,
    series: SeriesOptions,
    record: RecordOptions,
    max_request_bytes: usize,
    /// The running totals (`probe_all_*`) of each (check, region) pair, as last delivered.
    pairs: Mutex<HashMap<(String, String), Totals>>,
    /// Digests of the request bodies delivered for batches not finished yet (a later request failed): a batch
    /// sent again is the same bytes, so these are skipped.
    delivered: Mutex<HashSet<Vec<u8>>>,
}

impl fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSink").field("endpoint", &self.endpoint.as_str()).finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl OtlpSink {
    /// The sink a config's `otlp` exporter describes, its credentials resolved on this machine (and kept out
    /// of every record and message).
    pub fn from_config(spec: &OtlpSpec, series: &SeriesOptions) -> Result<Self, String> {
        let target = &spec.target;
        let resolved = crate::build::Resolved::of(target)?;
        let options = OtlpOptions {
            endpoint: target.url.to_string(),
            bearer_token: resolved.bearer_token,
            basic_auth: resolved.basic_auth,
            headers: resolved.headers,
            ca_file: target.ca_file.clone(),
            insecure_skip_verify: target.insecure_skip_verify,
            timeout: target.timeout,
            gzip: match spec.compression {
                Compression::None => false,
                Compression::Gzip => true,
            },
            resource_attributes: spec.resource_attributes.clone(),
            metrics: spec.metrics,
            logs: spec.logs,
            series: series.clone(),
            secrets: Secrets::new(resolved.secrets),
            max_request_bytes: MAX_REQUEST_BYTES,
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options and builds the HTTP client (rustls, the given CA added, the timeout).
    pub fn new(options: OtlpOptions) -> Result<Self, OtlpError> {
        let endpoint =
            reqwest::Url::parse(options.endpoint.trim()).map_err(|error| OtlpError::Url(error.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(OtlpError::Url(format!("scheme {} is not http or https", endpoint.scheme())));
        }
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(OtlpError::UrlCredentials);
        }
        let under = |path: &str| {
            let mut url = endpoint.clone();
            url.set_path(&format!("{}{path}", endpoint.path().trim_end_matches('/')));
            url.set_query(None);
            url.set_fragment(None);
            url
        };
        let (metrics_url, logs_url) = (under(METRICS_PATH), under(LOGS_PATH));
        let mut secrets: Vec<String> = Vec::new();
        let mut headers = HeaderMap::new();
        let auth = match (options.bearer_token, options.basic_auth) {
            (Some(_), Some(_)) => return Err(OtlpError::TwoAuths),
            (Some(token), None) => {
                secrets.push(token.clone());
                Some(Auth::Bearer(token))
            }
            (None, Some((user, password))) => {
                secrets.push(password.clone());
                Some(Auth::Basic(user, password))
            }
            (None, None) => None,
        };
        for (name, value) in &options.headers {
            let header = HeaderName::try_from(name.as_str()).map_err(|_| OtlpError::Header(name.clone()))?;
            let mut value = HeaderValue::try_from(value.as_str()).map_err(|_| OtlpError::Header(name.clone()))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        secrets.extend(options.headers.iter().map(|(_, value)| value.clone()));
        let timeout = if options.timeout.is_zero() { Duration::from_secs(30) } else { options.timeout };
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("probenet/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(options.insecure_skip_verify);
        if let Some(path) = &options.ca_file {
            let ca_error = |message: String| OtlpError::Ca { path: path.display().to_string(), message };
            let pem = std::fs::read(path).map_err(|error| ca_error(error.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| ca_error(error.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in it".to_owned()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|error| OtlpError::Client(error.to_string()))?;
        let max_request_bytes =
            if options.max_request_bytes == 0 { MAX_REQUEST_BYTES } else { options.max_request_bytes };
        Ok(Self {
            http,
            endpoint,
            metrics_url,
            logs_url,
            auth,
            gzip: options.gzip,
            metrics: options.metrics,
            logs: options.logs,
            resource: encode::resource(&options.resource_attributes),
            record: RecordOptions {
                secrets: options.secrets.with(secrets),
                include_log: false,
                region_labels: options.series.region_labels.clone(),
            },
            series: options.series,
            max_request_bytes,
            pairs: Mutex::new(HashMap::new()),
            delivered: Mutex::new(HashSet::new()),
        })
    }

    /// Where metrics go.
    pub fn metrics_url(&self) -> &str {
        self.metrics_url.as_str()
    }

    /// Where log records go.
    pub fn logs_url(&self) -> &str {
        self.logs_url.as_str()
    }

    fn commit(&self, work: encode::Work) {
        let mut pairs = lock(&self.pairs);
        for (key, totals) in work {
            match totals {
                Some(totals) => pairs.insert(key, totals),
                None => pairs.remove(&key),
            };
        }
    }

    /// Posts one body unless it was delivered already for this batch; remembers it when it is.
    async fn deliver(&self, url: &reqwest::Url, body: &[u8], sent: &mut Vec<Vec<u8>>) -> Result<(), SendError> {
        let digest = {
            let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            context.update(url.path().as_bytes());
            context.update(b"\0");
            context.update(body);
            context.finish().as_ref().to_vec()
        };
        if lock(&self.delivered).contains(&digest) {
            sent.push(digest);
            return Ok(());
        }
        self.post(url, body).await?;
        let mut delivered = lock(&self.delivered);
        if delivered.len() >= MAX_REMEMBERED {
            delivered.clear();
        }
        delivered.insert(digest.clone());
        sent.push(digest);
        Ok(())
    }

    async fn post(&self, url: &reqwest::Url, body: &[u8]) -> Result<(), SendError> {
        let mut request = self.http.post(url.clone()).header(CONTENT_TYPE, PROTOBUF);
        request = match &self.auth {
            Some(Auth::Bearer(token)) => request.bearer_auth(token),
            Some(Auth::Basic(user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        request = if self.gzip {
            request
                .header(CONTENT_ENCODING, "gzip")
                .body(gzip(body).map_err(|error| SendError::Reject(format!("otlp: gzip: {error}")))?)
        } else {
            request.body(body.to_vec())
        };
        let response = request.send().await.map_err(|error| SendError::Retry(self.describe(url, &error)))?;
        let status = response.status();
        let protobuf = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with(PROTOBUF));
        let answer = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            self.note_partial_success(url, &answer, protobuf);
            return Ok(());
        }
        // OTLP receivers answer a google.rpc.Status in protobuf; others may answer text.
        let text = if protobuf {
            <RpcStatus as prost::Message>::decode(answer.as_ref()).map(|status| status.message).unwrap_or_default()
        } else {
            String::from_utf8_lossy(&answer).into_owned()
        };
        let quoted: String = self.record.secrets.redact_str(text.trim()).chars().take(MAX_QUOTED).collect();
        let quoted = quoted.replace(['\n', '\r'], " ");
        let message = if quoted.is_empty() {
            format!("otlp: {}: {status}", url.path())
        } else {
            format!("otlp: {}: {status}: {quoted}", url.path())
        };
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::Retry(message))
        } else {
            Err(SendError::Reject(message))
        }
    }

    /// Logs what a receiver accepted only in part (a 200 with `partial_success`): it is not sent again.
    fn note_partial_success(&self, url: &reqwest::Url, answer: &[u8], protobuf: bool) {
        if !protobuf || answer.is_empty() {
            return;
        }
        let (rejected, message) = if url.path().ends_with(METRICS_PATH) {
            let partial = <ExportMetricsServiceResponse as prost::Message>::decode(answer)
                .ok()
                .and_then(|response| response.partial_success);
            partial.map(|partial| (partial.rejected_data_points, partial.error_message)).unwrap_or_default()
        } else {
            let partial = <ExportLogsServiceResponse as prost::Message>::decode(answer)
                .ok()
                .and_then(|response| response.partial_success);
            partial.map(|partial| (partial.rejected_log_records, partial.error_message)).unwrap_or_default()
        };
        if rejected > 0 || !message.is_empty() {
            let message: String = self.record.secrets.redact_str(&message).chars().take(MAX_QUOTED).collect();
            tracing::warn!(sink = "otlp", path = url.path(), rejected, %message, "the receiver accepted a request in part");
        }
    }

    /// A transport error with its causes, without anything secret.
    fn describe(&self, url: &reqwest::Url, error: &reqwest::Error) -> String {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        let mut message = format!("otlp: {}: {what} ({})", url.path(), url.host_str().unwrap_or(""));
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        self.record.secrets.redact_str(&message)
    }

    async fn send_batch(&self, batch: &[Event]) -> Result<(), SendError> {
        let (requests, work) = {
            let pairs = lock(&self.pairs);
            let known = |key: &(String, String)| pairs.get(key).cloned();
            let cx = encode::Context {
                resource: &self.resource,
                series: &self.series,
                record: &self.record,
                metrics: self.metrics,
                logs: self.logs,
                max_bytes: self.max_request_bytes,
            };
            encode::encode(batch, &known, &cx)
        };
        let mut sent = Vec::new();
        let bodies = requests
            .metrics
            .iter()
            .map(|body| (&self.metrics_url, body))
            .chain(requests.logs.iter().map(|body| (&self.logs_url, body)));
        let mut outcome = Ok(());
        for (url, body) in bodies {
            if let Err(error) = self.deliver(url, body, &mut sent).await {
                outcome = Err(error);
                break;
            }
        }
        // Retried, the batch is the same bytes again: what went stays remembered, the totals stay as they were.
        if matches!(outcome, Err(SendError::Retry(_))) {
            return outcome;
        }
        // Delivered or refused for good (the queue drops it): the batch is done.
        let mut delivered = lock(&self.delivered);
        for digest in &sent {
            delivered.remove(digest);
        }
        drop(delivered);
        self.commit(work);
        outcome
    }
}

impl Sink for OtlpSink {
    fn kind(&self) -> &'static str {
        "otlp"
    }

    fn shards(&self) -> usize {
        SHARDS
    }

    fn destination(&self) -> String {
        self.endpoint.to_string()
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.send_batch(batch))
    }
}

/// The part of `google.rpc.Status` (google/rpc/status.proto) an OTLP receiver's error answer is read for.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    /// The error message.
    #[prost(string, tag = "2")]
    message: String,
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}
