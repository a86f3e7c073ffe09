//! The Loki sink: results pushed as JSON log lines to Loki's `/loki/api/v1/push`, labelled `job`, `probe`
//! and `success`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value};

use crate::record::{RecordOptions, Secrets, record};
use crate::samples::SeriesOptions;
use crate::sink::{CheckMeta, Event, SendError, Sink};
use probenet_checks::config::exporters::loki::LokiSpec;
use probenet_checks::wire::RunResult;

/// The push endpoint's path, appended to a base URL.
pub const PUSH_PATH: &str = "/loki/api/v1/push";
/// The stream labels every line carries; configured labels may not use these names.
pub const LABELS: [&str; 3] = ["job", "probe", "success"];
/// Record fields left out of a pushed line: the labels carry them (`check` is `job`, `region` is `probe`, the
/// region's labels are stream labels) and the entry's timestamp is `ts`. A `| json` over the line then extracts
/// no field clashing with a label.
pub const LINE_OMITS: [&str; 5] = ["ts", "check", "region", "success", "region_labels"];
/// The longest piece of a response body quoted in an error.
const MAX_QUOTED: usize = 200;

/// A stream's labels, in the order they are sent.
type LabelSet = Vec<(String, String)>;

/// Where and how to push.
#[derive(Clone)]
pub struct LokiOptions {
    /// Loki's base URL (`http://loki:3100`) or the full push URL (ending in `/loki/api/v1/push`). Credentials
    /// go in `bearer_token` or `basic_auth`, never in the URL.
    pub url: String,
    /// The tenant, sent as `X-Scope-OrgID`.
    pub tenant: Option<String>,
    /// Sent as `Authorization: Bearer ...`.
    pub bearer_token: Option<String>,
    /// User and password, sent as `Authorization: Basic ...`.
    pub basic_auth: Option<(String, String)>,
    /// PEM certificates to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Labels added to every stream (low-cardinality, such as `source: probenet`).
    pub labels: BTreeMap<String, String>,
    /// The whole request's time limit.
    pub timeout: Duration,
    /// Values redacted from every line and label (the token and password are added to them).
    pub secrets: Secrets,
    /// Adds each outcome's `log` lines to its line.
    pub include_log: bool,
    /// Each region's labels, stream labels of its results (a configured label of the same name gives way).
    pub region_labels: crate::samples::RegionLabels,
}

impl Default for LokiOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            tenant: None,
            bearer_token: None,
            basic_auth: None,
            ca_file: None,
            labels: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            secrets: Secrets::default(),
            include_log: false,
            region_labels: crate::samples::RegionLabels::new(),
        }
    }
}

impl std::fmt::Debug for LokiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiOptions")
            .field("url", &self.url)
            .field("tenant", &self.tenant)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "[redacted]"))
            .field("basic_auth", &self.basic_auth.as_ref().map(|(user, _)| (user, "[redacted]")))
            .field("ca_file", &self.ca_file)
            .field("labels", &self.labels)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a Loki sink could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LokiError {
    /// The URL does not parse or is not http(s).
    #[error("loki url: {0}")]
    Url(String),
    /// The URL holds a user or password.
    #[error("loki url: credentials belong in bearer_token or basic_auth, not in the url")]
    UrlCredentials,
    /// Both a bearer token and basic auth were given.
    #[error("loki: bearer_token and basic_auth cannot both be set")]
    TwoAuths,
    /// A header value holds characters HTTP does not allow.
    #[error("loki: {0} holds characters not allowed in an http header")]
    Header(&'static str),
    /// A configured label is reserved or not a valid label name.
    #[error("loki label {0:?}: {1}")]
    Label(String, &'static str),
    /// The CA file cannot be used.
    #[error("loki ca_file {path}: {message}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("loki: http client: {0}")]
    Client(String),
}

/// The Loki sink (`kind` `loki`): one request per batch, one stream per distinct label set, lines in time
/// order within a stream. [`Event::Removed`] sends nothing.
pub struct LokiSink {
    http: reqwest::Client,
    url: reqwest::Url,
    headers: Vec<(&'static str, HeaderValue)>,
    labels: BTreeMap<String, String>,
    record: RecordOptions,
}

impl std::fmt::Debug for LokiSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiSink").field("url", &self.url.as_str()).finish_non_exhaustive()
    }
}

impl LokiSink {
    /// The sink a config's `loki` exporter describes, its credentials resolved on this machine (and kept out
    /// of every record it sends).
    pub fn from_config(spec: &LokiSpec, series: &SeriesOptions) -> Result<Self, String> {
        let target = &spec.target;
        let resolved = crate::build::Resolved::of(target)?;
        let options = LokiOptions {
            url: target.url.to_string(),
            tenant: spec.tenant.clone(),
            bearer_token: resolved.bearer_token,
            basic_auth: resolved.basic_auth,
            ca_file: target.ca_file.clone(),
            labels: target.labels.clone(),
            timeout: target.timeout,
            secrets: Secrets::new(resolved.secrets.iter()),
            region_labels: series.region_labels.clone(),
            ..LokiOptions::default()
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options and builds the client.
    pub fn new(options: LokiOptions) -> Result<Self, LokiError> {
        let mut url = reqwest::Url::parse(options.url.trim()).map_err(|error| LokiError::Url(error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LokiError::Url(format!("scheme {} is not http or https", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(LokiError::UrlCredentials);
        }
        if !url.path().ends_with(PUSH_PATH) {
            let path = format!("{}{PUSH_PATH}", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        for name in options.labels.keys() {
            if LABELS.contains(&name.as_str()) {
                return Err(LokiError::Label(name.clone(), "reserved for the sink's own labels"));
            }
            if !valid_label_name(name) {
                return Err(LokiError::Label(name.clone(), "must be letters, digits and _, not starting with a digit"));
            }
        }
        let mut headers = vec![(CONTENT_TYPE.as_str(), HeaderValue::from_static("application/json"))];
        if let Some(tenant) = &options.tenant {
            headers.push(("x-scope-orgid", HeaderValue::from_str(tenant).map_err(|_| LokiError::Header("tenant"))?));
        }
        let mut secrets = options.secrets.clone();
        let auth = match (&options.bearer_token, &options.basic_auth) {
            (Some(_), Some(_)) => return Err(LokiError::TwoAuths),
            (Some(token), None) => {
                secrets = secrets.with([token.clone()]);
                Some(HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| LokiError::Header("bearer_token"))?)
            }
            (None, Some((user, password))) => {
                secrets = secrets.with([password.clone()]);
                let credentials = base64(format!("{user}:{password}").as_bytes());
                Some(
                    HeaderValue::from_str(&format!("Basic {credentials}"))
                        .map_err(|_| LokiError::Header("basic_auth"))?,
                )
            }
            (None, None) => None,
        };
        if let Some(mut auth) = auth {
            auth.set_sensitive(true);
            headers.push((AUTHORIZATION.as_str(), auth));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("probenet/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.ca_file {
            let ca_error = |message: String| LokiError::Ca { path: path.display().to_string(), message };
            let pem = std::fs::read(path).map_err(|error| ca_error(error.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| ca_error(error.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in it".to_owned()));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|error| LokiError::Client(error.to_string()))?;
        Ok(Self {
            http,
            url,
            headers,
            labels: options.labels,
            record: RecordOptions { secrets, include_log: options.include_log, region_labels: options.region_labels },
        })
    }

    /// The URL pushed to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The request body for a batch, `None` when it holds no result.
    pub fn body(&self, batch: &[Event]) -> Option<Vec<u8>> {
        let secrets = &self.record.secrets;
        // Streams in the order their first line appears; entries as (unix ns, line).
        let mut streams: Vec<(LabelSet, Vec<(i128, String)>)> = Vec::new();
        let mut index: HashMap<LabelSet, usize> = HashMap::new();
        for event in batch {
            let Event::Result { check, result } = event else { continue };
            let mut labels = vec![
                ("job".to_owned(), secrets.redact_str(&check.name)),
                ("probe".to_owned(), secrets.redact_str(&result.region)),
                ("success".to_owned(), result.outcome.success().to_string()),
            ];
            let region = self.record.region_labels.get(&result.region);
            labels.extend(
                region
                    .iter()
                    .flat_map(|labels| labels.iter())
                    .map(|(name, value)| (name.clone(), secrets.redact_str(value))),
            );
            labels.extend(
                self.labels
                    .iter()
                    .filter(|(name, _)| !region.is_some_and(|region| region.contains_key(*name)))
                    .map(|(name, value)| (name.clone(), secrets.redact_str(value))),
            );
            let entry = (i128::from(result.started_at_ms) * 1_000_000, line(check, result, &self.record));
            let at = *index.entry(labels.clone()).or_insert_with(|| {
                streams.push((labels, Vec::new()));
                streams.len() - 1
            });
            if let Some((_, entries)) = streams.get_mut(at) {
                entries.push(entry);
            }
        }
        if streams.is_empty() {
            return None;
        }
        let streams: Vec<Value> = streams
            .into_iter()
            .map(|(labels, mut entries)| {
                entries.sort_by_key(|(ns, _)| *ns);
                let stream: Map<String, Value> =
                    labels.into_iter().map(|(name, value)| (name, Value::String(value))).collect();
                let values: Vec<Value> = entries
                    .into_iter()
                    .map(|(ns, line)| Value::Array(vec![Value::String(ns.to_string()), Value::String(line)]))
                    .collect();
                let mut object = Map::new();
                object.insert("stream".to_owned(), Value::Object(stream));
                object.insert("values".to_owned(), Value::Array(values));
                Value::Object(object)
            })
            .collect();
        let mut body = Map::new();
        body.insert("streams".to_owned(), Value::Array(streams));
        Some(Value::Object(body).to_string().into_bytes())
    }

    async fn push(&self, body: Vec<u8>) -> Result<(), SendError> {
        let mut request = self.http.post(self.url.clone()).body(body);
        for (name, value) in &self.headers {
            request = request.header(*name, value.clone());
        }
        let response = request.send().await.map_err(|error| SendError::Retry(self.describe(&error)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let quoted: String = self.record.secrets.redact_str(text.trim()).chars().take(MAX_QUOTED).collect();
        let quoted = quoted.replace(['\n', '\r'], " ");
        let message = if quoted.is_empty() { format!("loki: {status}") } else { format!("loki: {status}: {quoted}") };
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::Retry(message))
        } else {
            Err(SendError::Reject(message))
        }
    }

    /// A transport error with its causes, without the URL's query or anything secret.
    fn describe(&self, error: &reqwest::Error) -> String {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        let mut message = format!("loki: {what} ({})", self.url.host_str().unwrap_or(""));
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        self.record.secrets.redact_str(&message)
    }
}

impl Sink for LokiSink {
    fn kind(&self) -> &'static str {
        "loki"
    }

    fn destination(&self) -> String {
        self.url.to_string()
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            match self.body(batch) {
                Some(body) => self.push(body).await,
                None => Ok(()),
            }
        })
    }
}

/// The line pushed for a result: its [`record`] (secrets redacted) without the [`LINE_OMITS`] fields, as JSON.
/// The OTLP sink sends the same line as its log records' body.
pub fn line(check: &CheckMeta, result: &RunResult, options: &RecordOptions) -> String {
    match record(check, result, options) {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(key, _)| !LINE_OMITS.contains(&key.as_str())).collect())
        }
        other => other,
    }
    .to_string()
}

/// A Loki (Prometheus) label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`.
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Standard base64 with padding, for the basic auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn options_are_checked() {
        let options = |url: &str| LokiOptions { url: url.to_owned(), ..LokiOptions::default() };
        let sink = LokiSink::new(options("http://127.0.0.1:3100")).map(|sink| sink.url().to_owned());
        assert_eq!(sink.as_deref(), Ok("http://127.0.0.1:3100/loki/api/v1/push"));
        let sink = LokiSink::new(options("https://logs.example/loki/api/v1/push")).map(|sink| sink.url().to_owned());
        assert_eq!(sink.as_deref(), Ok("https://logs.example/loki/api/v1/push"));
        assert_eq!(LokiSink::new(options("http://u:secret@h/")).err(), Some(LokiError::UrlCredentials));
        assert!(matches!(LokiSink::new(options("ftp://h/")), Err(LokiError::Url(_))));
        let label = |name: &str| LokiOptions {
            labels: BTreeMap::from([(name.to_owned(), "x".to_owned())]),
            ..options("http://h")
        };
        assert!(matches!(LokiSink::new(label("job")), Err(LokiError::Label(..))));
        assert!(matches!(LokiSink::new(label("1a")), Err(LokiError::Label(..))));
        assert!(matches!(LokiSink::new(label("__x")), Err(LokiError::Label(..))));
        assert!(LokiSink::new(label("source")).is_ok());
        let both = LokiOptions {
            bearer_token: Some("t".into()),
            basic_auth: Some(("u".into(), "p".into())),
            ..options("http://h")
        };
        assert_eq!(LokiSink::new(both).err(), Some(LokiError::TwoAuths));
        let debug = format!(
            "{:?}",
            LokiOptions {
                bearer_token: Some("s3cr3t".into()),
                basic_auth: Some(("u".into(), "pw9".into())),
                ..options("http://h")
            }
        );
        assert!(!debug.contains("s3cr3t") && !debug.contains("pw9"), "{debug}");
    }
}
