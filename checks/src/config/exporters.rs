//! The `exporters` section: where results go besides the scheduler's embedded store (remote write, result
//! logs, Loki), and whether the scheduler or every prober sends them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Ctx, Path, Place};
use crate::http::BasicAuthSpec;
use crate::secret::Template;
use crate::yaml::NodeKind;

/// One exporter: exactly one kind key (`remote_write`, `logs`, `loki`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Exporter")]
pub struct RawExporter {
    /// Prometheus remote write (1.0, protobuf and snappy) to VictoriaMetrics, Prometheus, Mimir or Thanos.
    pub remote_write: Option<RawRemoteWrite>,
    /// One JSON record per result, to a rotating file or to standard output.
    pub logs: Option<RawLogs>,
    /// One log line per result pushed to Grafana Loki (labels `job`, `probe`, `success`).
    pub loki: Option<RawLoki>,
}

/// Prometheus remote write.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteWrite {
    /// The receiver's URL, such as `http://127.0.0.1:8428/api/v1/write` (VictoriaMetrics) or
    /// `http://prometheus:9090/api/v1/write` (Prometheus with `--web.enable-remote-write-receiver`).
    pub url: String,
    /// A bearer token, as a secret reference: `${env:NAME}` or `${file:PATH}`.
    pub bearer_token: Option<String>,
    /// Basic authentication; the password as a secret reference.
    pub basic_auth: Option<BasicAuthSpec>,
    /// Extra request headers (values may hold secrets), such as `X-Scope-OrgID`.
    pub headers: Option<BTreeMap<String, String>>,
    /// A PEM file of CA certificates to trust besides the system's, for an `https://` receiver.
    pub ca_file: Option<String>,
    /// Accept any certificate from the receiver. Only for tests; never in production.
    pub insecure_skip_verify: Option<bool>,
    /// How long one request may take (default `30s`).
    pub timeout: Option<String>,
    /// Labels added to every series (for example `cluster: prod`).
    pub external_labels: Option<BTreeMap<String, String>>,
    /// Where it runs: `scheduler` (default: every result, once) or `probers` (each prober sends its own).
    pub on: Option<String>,
}

/// Result logs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLogs {
    /// The file to append to, such as `/var/log/probenet/results.jsonl`; `-` for standard output.
    pub path: String,
    /// Rotate when the file passes this size (default `100MiB`).
    pub max_size: Option<String>,
    /// Rotated files kept (default 5).
    pub max_files: Option<u32>,
    /// Where it runs: `scheduler` (default) or `probers`.
    pub on: Option<String>,
}

/// Grafana Loki's push API.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoki {
    /// The push URL, such as `http://loki:3100/loki/api/v1/push`.
    pub url: String,
    /// The tenant, sent as `X-Scope-OrgID`.
    pub tenant: Option<String>,
    /// A bearer token, as a secret reference.
    pub bearer_token: Option<String>,
    /// Basic authentication; the password as a secret reference.
    pub basic_auth: Option<BasicAuthSpec>,
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca_file: Option<String>,
    /// How long one request may take (default `30s`).
    pub timeout: Option<String>,
    /// Labels added to every stream (keep them few: each value is a stream).
    pub labels: Option<BTreeMap<String, String>>,
    /// Where it runs: `scheduler` (default) or `probers`.
    pub on: Option<String>,
}

/// A validated exporter.
#[derive(Debug, Clone)]
pub struct Exporter {
    /// What it is.
    pub kind: ExporterKind,
    /// Where it runs.
    pub on: ExportOn,
    /// Where it is written.
    pub place: Place,
}

/// Where an exporter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportOn {
    /// In the scheduler, for every result of every prober.
    Scheduler,
    /// In every prober, for its own results.
    Probers,
}

/// The kinds of exporters.
#[derive(Debug, Clone, PartialEq)]
pub enum ExporterKind {
    /// Prometheus remote write.
    RemoteWrite(HttpTarget),
    /// JSON lines to a file (`None`: standard output).
    Logs {
        /// The file, or `None` for standard output.
        path: Option<PathBuf>,
        /// Rotation size in bytes.
        max_bytes: u64,
        /// Rotated files kept.
        max_files: u32,
    },
    /// Loki push.
    Loki {
        /// Where and how to send.
        target: HttpTarget,
        /// The tenant.
        tenant: Option<String>,
    },
}

impl ExporterKind {
    /// The kind key, as written in YAML.
    pub fn key(&self) -> &'static str {
        match self {
            Self::RemoteWrite(_) => "remote_write",
            Self::Logs { .. } => "logs",
            Self::Loki { .. } => "loki",
        }
    }
}

/// An HTTP receiver and its credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTarget {
    /// The URL.
    pub url: url::Url,
    /// A bearer token.
    pub bearer_token: Option<Template>,
    /// Basic authentication.
    pub basic_auth: Option<(String, Template)>,
    /// Extra headers.
    pub headers: BTreeMap<String, Template>,
    /// Extra CA certificates.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate.
    pub insecure_skip_verify: bool,
    /// Request timeout.
    pub timeout: Duration,
    /// Labels added to every series or stream.
    pub labels: BTreeMap<String, String>,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
const DEFAULT_MAX_FILES: u32 = 5;

/// Validates the `exporters` list of one file.
pub(super) fn validate_exporters(cx: &mut Ctx<'_>) -> Vec<Exporter> {
    let base = Path::root().key("exporters");
    let Some(node) = cx.node(&base) else { return Vec::new() };
    let items = match &node.kind {
        NodeKind::Seq(items) => items.len(),
        _ if node.is_null() => return Vec::new(),
        _ => {
            cx.error(&base, format!("expected a list of exporters, found {}", node.type_name()));
            return Vec::new();
        }
    };
    (0..items).filter_map(|i| validate_exporter(cx, &base.index(i))).collect()
}

fn validate_exporter(cx: &mut Ctx<'_>, path: &Path) -> Option<Exporter> {
    let errors_before = cx.errors.len();
    let raw = cx.deserialize::<RawExporter>(path)?;
    let place = {
        let mark = cx.mark(path);
        Place { file: cx.file().to_owned(), line: mark.line, col: mark.col }
    };
    if cx.written(path, &["remote_write", "logs", "loki"], false).len() != 1 {
        // An unknown key was already reported; "exactly one" would only repeat it.
        if cx.errors.len() > errors_before {
            return None;
        }
        cx.error(path, "an exporter has exactly one of `remote_write`, `logs` or `loki`");
        return None;
    }
    let (kind, on) = if let Some(raw) = raw.remote_write {
        let path = path.key("remote_write");
        let on = export_on(cx, &path, raw.on.as_deref());
        let target = http_target(
            cx,
            &path,
            HttpParts {
                url: &raw.url,
                bearer_token: raw.bearer_token.as_deref(),
                basic_auth: raw.basic_auth,
                headers: raw.headers.unwrap_or_default(),
                ca_file: raw.ca_file,
                insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
                timeout: raw.timeout.as_deref(),
                labels: raw.external_labels.unwrap_or_default(),
                labels_key: "external_labels",
            },
        );
        (ExporterKind::RemoteWrite(target?), on?)
    } else if let Some(raw) = raw.logs {
        let path = path.key("logs");
        let on = export_on(cx, &path, raw.on.as_deref());
        let max_bytes = match raw.max_size.as_deref() {
            None => Some(DEFAULT_MAX_BYTES),
            Some(text) => cx.size(&path.key("max_size"), text),
        };
        let max_files = raw.max_files.unwrap_or(DEFAULT_MAX_FILES);
        if !(1..=1000).contains(&max_files) {
            cx.error(&path.key("max_files"), format!("{max_files} is outside the allowed range of 1 to 1000"));
        }
        if raw.path.trim().is_empty() {
            cx.error(&path.key("path"), "the path is empty: name a file, or `-` for standard output");
            return None;
        }
        let file = (raw.path != "-").then(|| PathBuf::from(&raw.path));
        (ExporterKind::Logs { path: file, max_bytes: max_bytes?, max_files }, on?)
    } else {
        let raw = raw.loki?;
        let path = path.key("loki");
        let on = export_on(cx, &path, raw.on.as_deref());
        let target = http_target(
            cx,
            &path,
            HttpParts {
                url: &raw.url,
                bearer_token: raw.bearer_token.as_deref(),
                basic_auth: raw.basic_auth,
                headers: BTreeMap::new(),
                ca_file: raw.ca_file,
                insecure_skip_verify: false,
                timeout: raw.timeout.as_deref(),
                labels: raw.labels.unwrap_or_default(),
                labels_key: "labels",
            },
        );
        (ExporterKind::Loki { target: target?, tenant: raw.tenant }, on?)
    };
    Some(Exporter { kind, on, place })
}

fn export_on(cx: &mut Ctx<'_>, path: &Path, text: Option<&str>) -> Option<ExportOn> {
    match text {
        None | Some("scheduler") => Some(ExportOn::Scheduler),
        Some("probers") => Some(ExportOn::Probers),
        Some(other) => {
            cx.error(&path.key("on"), format!("{other:?} is not `scheduler` or `probers`"));
            None
        }
    }
}

struct HttpParts<'a> {
    url: &'a str,
    bearer_token: Option<&'a str>,
    basic_auth: Option<BasicAuthSpec>,
    headers: BTreeMap<String, String>,
    ca_file: Option<String>,
    insecure_skip_verify: bool,
    timeout: Option<&'a str>,
    labels: BTreeMap<String, String>,
    labels_key: &'static str,
}

fn http_target(cx: &mut Ctx<'_>, path: &Path, parts: HttpParts<'_>) -> Option<HttpTarget> {
    let url = match url::Url::parse(parts.url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(_) => {
            cx.error(&path.key("url"), format!("{:?} is not an http:// or https:// URL with a host", parts.url));
            None
        }
        Err(error) => {
            cx.error(&path.key("url"), format!("{:?} is not a valid URL: {error}", parts.url));
            None
        }
    };
    if url.as_ref().is_some_and(|url| url.password().is_some()) {
        cx.error(&path.key("url"), "put credentials in `basic_auth` with a secret reference, not in the URL");
    }
    let bearer_token = parts.bearer_token.and_then(|text| cx.credential(&path.key("bearer_token"), text));
    let basic_auth = parts.basic_auth.and_then(|auth| {
        let password = cx.credential(&path.key("basic_auth").key("password"), &auth.password)?;
        Some((auth.username, password))
    });
    if bearer_token.is_some() && basic_auth.is_some() {
        cx.error_at_key(&path.key("bearer_token"), "set either `basic_auth` or `bearer_token`, not both");
    }
    let mut headers = BTreeMap::new();
    for (name, value) in parts.headers {
        let at = path.key("headers").key(&name);
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            cx.error_at_key(&at, format!("{name:?} is not a valid header name"));
            continue;
        }
        if let Some(template) = cx.header_value(&at, &name, &value) {
            headers.insert(name, template);
        }
    }
    for name in parts.labels.keys() {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with("__");
        if !valid {
            cx.error_at_key(
                &path.key(parts.labels_key).key(name),
                format!(
                    "{name:?} is not a valid label name: letters, digits and `_`, not starting with a digit or `__`"
                ),
            );
        }
    }
    let timeout = match parts.timeout {
        None => Some(DEFAULT_TIMEOUT),
        Some(text) => cx.duration(&path.key("timeout"), text),
    };
    Some(HttpTarget {
        url: url?,
        bearer_token,
        basic_auth,
        headers,
        ca_file: parts.ca_file.map(PathBuf::from),
        insecure_skip_verify: parts.insecure_skip_verify,
        timeout: timeout?,
        labels: parts.labels,
    })
}
