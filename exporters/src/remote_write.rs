//! The Prometheus remote-write 1.0 sink: results become samples (protobuf, snappy), batched per series and
//! ordered by time, retried on 5xx and 429 only, with stale markers when a series ends.

pub mod proto;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use probenet_checks::secret::Redactor;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::samples::{MetricType, SeriesOptions, Totals, family, visit_samples};
use crate::sink::{Event, SendError, Sink};
use probenet_checks::config::exporters::remote_write::RemoteWriteSpec;
use proto::{Label, MetricMetadata};

const USER_AGENT: &str = concat!("probenet/", env!("CARGO_PKG_VERSION"));
/// Requests in flight at once (remote write allows concurrent senders; a series stays on one).
const SHARDS: usize = 4;
/// The most bytes of a receiver's error body kept in a message.
const MAX_BODY_IN_ERROR: usize = 256;

/// Where and how to write.
#[derive(Clone, Default)]
pub struct RemoteWriteOptions {
    /// The receiver, such as `http://127.0.0.1:9090/api/v1/write`. Credentials in it (`user:password@`) are
    /// used as basic auth and removed from the URL.
    pub url: String,
    /// Sent as `Authorization: Bearer TOKEN`.
    pub bearer_token: Option<String>,
    /// Sent as basic auth (user, password).
    pub basic_auth: Option<(String, String)>,
    /// A PEM file of extra CA certificates to trust (besides the system's).
    pub ca_file: Option<PathBuf>,
    /// Accepts any server certificate. For tests only.
    pub insecure_skip_verify: bool,
    /// Extra headers sent with every request (such as `X-Scope-OrgID`).
    pub headers: Vec<(String, String)>,
    /// Timeout of one request; 30 s when zero.
    pub timeout: Duration,
    /// Labels added to every series (a label a series already has wins).
    pub external_labels: Vec<(String, String)>,
    /// Geohashes and frequencies for `sm_check_info`.
    pub series: SeriesOptions,
}

impl fmt::Debug for RemoteWriteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteWriteOptions")
            .field("url", &strip_userinfo(&self.url))
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "<redacted>"))
            .field("basic_auth", &self.basic_auth.as_ref().map(|(user, _)| (user, "<redacted>")))
            .field("ca_file", &self.ca_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("external_labels", &self.external_labels)
            .finish()
    }
}

/// Why a sink could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    /// The URL does not parse or is not http(s).
    #[error("invalid remote write url: {0}")]
    Url(String),
    /// More than one kind of credentials.
    #[error("only one of bearer_token, basic_auth and url credentials may be set")]
    Credentials,
    /// The CA file could not be read.
    #[error("reading ca_file {path}: {error}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("ca_file {0}: no valid PEM certificate")]
    Certificate(String),
    /// A header name or value is invalid.
    #[error("header {0:?}: invalid name or value")]
    Header(String),
    /// The HTTP client could not be built.
    #[error("building the http client: {0}")]
    Client(String),
}

enum Auth {
    Bearer(String),
    Basic(String, String),
}

/// A series' labels (sorted by name, `__name__` among them), shared by the pair that last wrote the series and
/// every batch that carries it: built once per series, not once per sample.
type Labels = Arc<[Label]>;

/// What the sink remembers of a (check, region) pair.
#[derive(Debug, Clone, Default)]
struct Pair {
    totals: Totals,
    /// The series written for its latest result, by [`sample_hash`], so those that vanish (or all, on removal)
    /// get a stale marker. Cloning a pair for a batch copies the table, not the labels.
    series: HashMap<u64, Labels>,
    last_ms: i64,
    removed: bool,
}

/// A series' samples in a batch: (unix ms, value).
type Points = Vec<(i64, f64)>;

/// A hash of a sample's name and labels: which series it belongs to (the sink's external labels are the same
/// for every sample), computed without building the series' labels.
fn sample_hash(base: u64, name: &str, own: &[(&str, &str)]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    base.hash(&mut hasher);
    name.hash(&mut hasher);
    own.hash(&mut hasher);
    hasher.finish()
}

/// The hash of the labels all samples of a result share.
fn hash_of(base: &[(String, String)]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    base.hash(&mut hasher);
    hasher.finish()
}

/// A series in a batch: found by its hash; labels are compared only when two hashes meet, and are then
/// usually the same allocation.
#[derive(Debug)]
struct SeriesKey {
    hash: u64,
    labels: Labels,
}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.labels, &other.labels) || self.labels == other.labels)
    }
}

impl Eq for SeriesKey {}

/// A batch ready to encode: its series in label order, each with its samples oldest first, and the metadata of
/// their families.
struct Built {
    series: Vec<(Labels, Vec<proto::Sample>)>,
    metadata: Vec<MetricMetadata>,
}

/// Writes results to a Prometheus remote-write receiver (Prometheus, VictoriaMetrics, Mimir...).
pub struct RemoteWriteSink {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Option<Auth>,
    external_labels: Vec<(String, String)>,
    series: SeriesOptions,
    /// Replaces the values that must never appear in a message, in any encoding.
    redactor: Redactor,
    pairs: Mutex<HashMap<(String, String), Pair>>,
}

impl fmt::Debug for RemoteWriteSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteWriteSink").field("url", &self.url.as_str()).finish_non_exhaustive()
    }
}

impl RemoteWriteSink {
    /// The sink a config's `remote_write` exporter describes, its credentials resolved on this machine.
    pub fn from_config(spec: &RemoteWriteSpec, series: &SeriesOptions) -> Result<Self, String> {
        let target = &spec.target;
        let resolved = crate::build::Resolved::of(target)?;
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
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options and builds the HTTP client (rustls, the given CA added, the timeout).
    pub fn new(options: RemoteWriteOptions) -> Result<Self, RemoteWriteError> {
        let mut url = reqwest::Url::parse(&options.url)
            .map_err(|error| RemoteWriteError::Url(format!("{}: {error}", strip_userinfo(&options.url))))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RemoteWriteError::Url(format!("unsupported scheme {:?}", url.scheme())));
        }
        let mut secrets = Vec::new();
        let from_url = (!url.username().is_empty() || url.password().is_some())
            .then(|| (percent_decode(url.username()), percent_decode(url.password().unwrap_or_default())));
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let auth = match (options.bearer_token, options.basic_auth, from_url) {
            (None, None, None) => None,
            (Some(token), None, None) => Some(Auth::Bearer(token)),
            (None, Some((user, password)), None) | (None, None, Some((user, password))) => {
                Some(Auth::Basic(user, password))
            }
            _ => return Err(RemoteWriteError::Credentials),
        };
        match &auth {
            Some(Auth::Bearer(token)) => secrets.push(token.clone()),
            Some(Auth::Basic(_, password)) => secrets.push(password.clone()),
            None => {}
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let name = HeaderName::try_from(name.as_str()).map_err(|_| RemoteWriteError::Header(name.clone()))?;
            let mut value =
                HeaderValue::try_from(value.as_str()).map_err(|_| RemoteWriteError::Header(name.to_string()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        secrets.extend(options.headers.iter().map(|(_, value)| value.clone()));
        secrets.retain(|secret| !secret.is_empty());
        let timeout = if options.timeout.is_zero() { Duration::from_secs(30) } else { options.timeout };
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(options.insecure_skip_verify);
        if let Some(path) = &options.ca_file {
            let shown = path.display().to_string();
            let pem = std::fs::read(path).map_err(|error| RemoteWriteError::CaFile { path: shown.clone(), error })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|certs| !certs.is_empty())
                .ok_or(RemoteWriteError::Certificate(shown))?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|error| RemoteWriteError::Client(chain(&error.without_url())))?;
        Ok(Self {
            client,
            url,
            auth,
            external_labels: options.external_labels,
            series: options.series,
            redactor: Redactor::new(&secrets).with_mask("<redacted>"),
            pairs: Mutex::new(HashMap::new()),
        })
    }

    /// The series of a batch (each with its samples, oldest first) and the pairs' state after it.
    fn build(&self, batch: &[Event]) -> (Built, HashMap<(String, String), Pair>) {
        let known = self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut work: HashMap<(String, String), Pair> = HashMap::new();
        let mut series: HashMap<SeriesKey, Points> = HashMap::new();
        let mut names: HashSet<&'static str> = HashSet::new();
        let stale = |series: &mut HashMap<SeriesKey, Points>, hash: u64, labels: Labels, at: i64| {
            series.entry(SeriesKey { hash, labels }).or_default().push((at, proto::stale_nan()));
        };
        for event in batch {
            let key = match event {
                Event::Result { check, result } => (check.name.clone(), result.region.clone()),
                Event::Removed { check, region, .. } => (check.name.clone(), region.clone()),
            };
            let pair = work.entry(key.clone()).or_insert_with(|| known.get(&key).cloned().unwrap_or_default());
            match event {
                Event::Result { check, result } => {
                    if pair.removed {
                        *pair = Pair::default();
                    }
                    if !pair.totals.observe(result) {
                        continue;
                    }
                    let mut now = HashSet::with_capacity(pair.series.len());
                    let at = result.started_at_ms;
                    // The hash of the labels every sample of the result shares, taken at its first sample.
                    let mut base_hash = None;
                    visit_samples(check, result, &pair.totals, &self.series, &mut |name, base, own, value| {
                        names.insert(name);
                        let hash = sample_hash(*base_hash.get_or_insert_with(|| hash_of(base)), name, own);
                        now.insert(hash);
                        let labels = match pair.series.get(&hash) {
                            Some(labels) => labels.clone(),
                            None => {
                                let labels: Labels = self.labels(name, base, own).into();
                                pair.series.insert(hash, labels.clone());
                                labels
                            }
                        };
                        series.entry(SeriesKey { hash, labels }).or_default().push((at, value));
                    });
                    let at = result.started_at_ms.max(pair.last_ms);
                    let gone: Vec<u64> = pair.series.keys().filter(|hash| !now.contains(*hash)).copied().collect();
                    for hash in gone {
                        if let Some(labels) = pair.series.remove(&hash) {
                            stale(&mut series, hash, labels, at);
                        }
                    }
                    pair.last_ms = at;
                }
                Event::Removed { at_ms, .. } => {
                    let at = (*at_ms).max(pair.last_ms + 1);
                    for (hash, labels) in std::mem::take(&mut pair.series) {
                        stale(&mut series, hash, labels, at);
                    }
                    *pair = Pair { removed: true, ..Pair::default() };
                }
            }
        }
        drop(known);
        let mut families = BTreeSet::new();
        for name in names {
            if let Some(family) = family(name) {
                families.insert(family.name);
            }
        }
        // In label order: a batch sent again is the same bytes.
        let mut series: Vec<(Labels, Points)> = series.into_iter().map(|(key, points)| (key.labels, points)).collect();
        series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let series = series
            .into_iter()
            .map(|(labels, mut points)| {
                // Oldest first; of two samples at one time, the later one written wins.
                points.reverse();
                points.sort_by_key(|(at, _)| *at);
                points.dedup_by_key(|(at, _)| *at);
                let samples = points.into_iter().map(|(timestamp, value)| proto::Sample { value, timestamp }).collect();
                (labels, samples)
            })
            .collect();
        let metadata = families.into_iter().filter_map(family).map(metadata).collect();
        (Built { series, metadata }, work)
    }

    /// `__name__`, the sample's labels and the external labels, sorted by name.
    fn labels(&self, name: &str, base: &[(String, String)], own: &[(&str, &str)]) -> Vec<Label> {
        let mut out = Vec::with_capacity(base.len() + own.len() + 1 + self.external_labels.len());
        out.push(Label { name: "__name__".to_owned(), value: name.to_owned() });
        out.extend(base.iter().map(|(name, value)| Label { name: name.clone(), value: value.clone() }));
        out.extend(own.iter().map(|(name, value)| Label { name: (*name).to_owned(), value: (*value).to_owned() }));
        for (name, value) in &self.external_labels {
            if !out.iter().any(|label| &label.name == name) {
                out.push(Label { name: name.clone(), value: value.clone() });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn commit(&self, work: HashMap<(String, String), Pair>) {
        let mut pairs = self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, pair) in work {
            if pair.removed {
                pairs.remove(&key);
            } else {
                pairs.insert(key, pair);
            }
        }
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), SendError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_ENCODING, "snappy")
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body);
        request = match &self.auth {
            Some(Auth::Bearer(token)) => request.bearer_auth(token),
            Some(Auth::Basic(user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        let response = request.send().await.map_err(|error| {
            SendError::Retry(self.redact(&format!("remote write: {}", chain(&error.without_url()))))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let mut end = body.len().min(MAX_BODY_IN_ERROR);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        let message = self.redact(&format!("remote write: {status}: {}", body[..end].trim()));
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(SendError::Retry(message))
        } else {
            Err(SendError::Reject(message))
        }
    }

    fn redact(&self, message: &str) -> String {
        self.redactor.redact(message)
    }
}

impl Sink for RemoteWriteSink {
    fn kind(&self) -> &'static str {
        "remote_write"
    }

    fn shards(&self) -> usize {
        SHARDS
    }

    fn destination(&self) -> String {
        self.url.to_string()
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let (built, work) = self.build(batch);
            if built.series.is_empty() {
                self.commit(work);
                return Ok(());
            }
            let body = proto::encode_parts(&built.series, &built.metadata)
                .map_err(|error| SendError::Reject(format!("snappy: {error}")))?;
            let result = self.post(body).await;
            // A refused batch is dropped by the queue: its series count as written, or stale markers would follow.
            if !matches!(result, Err(SendError::Retry(_))) {
                self.commit(work);
            }
            result
        })
    }
}

fn metadata(family: &crate::samples::Family) -> MetricMetadata {
    let kind = match family.kind {
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::Summary => 5,
    };
    MetricMetadata {
        r#type: kind,
        metric_family_name: family.name.to_owned(),
        help: family.help.to_owned(),
        unit: String::new(),
    }
}

/// An error and its sources, joined with `: `.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// A URL with any `user:password@` removed, for messages.
fn strip_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}{}", &url[..scheme + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// `%XX` sequences decoded (URL user names and passwords are percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
