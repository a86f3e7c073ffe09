//! The `exporters` section: where results go besides the scheduler's embedded store (remote write, result
//! logs, Loki, OTLP), and whether the scheduler or every prober sends them. One module per kind (its YAML type, its
//! spec and its validation) and one table, [`exporters!`], that makes [`RawExporter`], [`ExporterKind`], the
//! kind keys and the dispatch from them.
//!
//! A new exporter is a module here plus one line in the table; its sink, in `probenet-exporters`, is one arm
//! of an exhaustive match over [`ExporterKind`], so the compiler asks for it.

pub mod logs;
pub mod loki;
pub mod otlp;
pub mod remote_write;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{Ctx, Path, Place};
use crate::http::BasicAuthSpec;
use crate::secret::Template;
use crate::yaml::NodeKind;

/// Declares the exporter kinds, one line each: `Variant = key: RawType => SpecType;`, where `key` is the YAML
/// key and the module (`exporters/<key>.rs`) holding both types and `validate(cx, at, raw) -> Option<Spec>`.
/// The doc comment becomes the key's documentation in the schema and in docs/config.md. Every raw type has
/// an `on: Option<String>` field, validated here for all kinds (before the kind's own fields).
macro_rules! exporters {
    // The keys as prose: "`remote_write`, `logs`, `loki`".
    (@keys $first:ident $($rest:ident)*) => {
        concat!("`", stringify!($first), "`" $(, ", `", stringify!($rest), "`")*)
    };
    ($($(#[$doc:meta])* $variant:ident = $key:ident: $raw:ident => $spec:ident;)*) => {
        #[doc = concat!("One exporter: exactly one kind key (", exporters!(@keys $($key)*), ").")]
        #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(rename = "Exporter")]
        pub struct RawExporter {
            $($(#[$doc])* pub $key: Option<$key::$raw>,)*
        }

        /// The kinds of exporters, each with its validated spec (`PartialEq`: the outputs component compares
        /// them to know when to rebuild its sinks).
        #[derive(Debug, Clone, PartialEq)]
        pub enum ExporterKind {
            $($(#[$doc])* $variant($key::$spec),)*
        }

        impl ExporterKind {
            /// The kind key, as written in YAML.
            pub fn key(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($key),)*
                }
            }
        }

        /// The kind keys, in the order the docs list them.
        pub const EXPORTER_KINDS: [&str; [$(stringify!($key)),*].len()] = [$(stringify!($key)),*];

        /// The one kind `raw` holds, validated, and where it runs.
        fn validate_kind(
            cx: &mut Ctx<'_>,
            path: &Path,
            kind: &str,
            raw: RawExporter,
        ) -> Option<(ExporterKind, ExportOn)> {
            $(if kind == stringify!($key) {
                let at = path.key(kind);
                let Some(raw) = raw.$key else {
                    // The key is written with no value (`logs:`, `logs: null`).
                    cx.error_at_key(&at, format!("`{kind}` has no options: write them as a mapping under it"));
                    return None;
                };
                let on = export_on(cx, &at, raw.on.as_deref());
                let spec = $key::validate(cx, &at, raw);
                return Some((ExporterKind::$variant(spec?), on?));
            })*
            None
        }
    };
}

exporters! {
    /// Prometheus remote write (1.0, protobuf and snappy) to VictoriaMetrics, Prometheus, Mimir or Thanos.
    RemoteWrite = remote_write: RawRemoteWrite => RemoteWriteSpec;
    /// One JSON record per result, to a rotating file or to standard output.
    Logs = logs: RawLogs => LogsSpec;
    /// One log line per result pushed to Grafana Loki (labels `job`, `probe`, `success`).
    Loki = loki: RawLoki => LokiSpec;
    /// OpenTelemetry (OTLP over HTTP, protobuf) to a Collector or any OTLP receiver: every result as gauges
    /// and as a log record.
    Otlp = otlp: RawOtlp => OtlpSpec;
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
    // An unknown key was already reported; "none of the kinds" would only repeat it.
    let none = (cx.errors.len() == errors_before).then(exactly_one);
    let kind = cx.one_of(path, &EXPORTER_KINDS, "exporter", none)?;
    let (kind, on) = validate_kind(cx, path, kind, raw)?;
    Some(Exporter { kind, on, place })
}

/// "an exporter has exactly one of `remote_write`, `logs` or `loki`", from [`EXPORTER_KINDS`].
fn exactly_one() -> String {
    let keys: Vec<String> = EXPORTER_KINDS.iter().map(|key| format!("`{key}`")).collect();
    match keys.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("an exporter has exactly one of {} or {last}", rest.join(", "))
        }
        _ => format!("an exporter has exactly one of {}", keys.join("")),
    }
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
    /// The YAML key of the URL (`url`, or `endpoint` for OTLP), for error locations.
    url_key: &'static str,
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
            cx.error(
                &path.key(parts.url_key),
                format!("{:?} is not an http:// or https:// URL with a host", parts.url),
            );
            None
        }
        Err(error) => {
            cx.error(&path.key(parts.url_key), format!("{:?} is not a valid URL: {error}", parts.url));
            None
        }
    };
    if url.as_ref().is_some_and(|url| url.password().is_some()) {
        cx.error(&path.key(parts.url_key), "put credentials in `basic_auth` with a secret reference, not in the URL");
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
