//! A batch of results as OTLP requests: each result's series (the remote-write samples, same names and labels)
//! as gauge data points, and the result itself as a log record; split so no request passes a size bound.
//!
//! The messages are `opentelemetry-proto`'s, generated from opentelemetry-proto's
//! `opentelemetry/proto/collector/{metrics,logs}/v1/*_service.proto`, `metrics/v1/metrics.proto`,
//! `logs/v1/logs.proto`, `common/v1/common.proto` and `resource/v1/resource.proto`.

use std::collections::{BTreeMap, BTreeSet};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use probenet_checks::State;
use probenet_checks::wire::RunResult;
use prost::Message;

use crate::record::RecordOptions;
use crate::samples::{SeriesOptions, Totals, family, samples};
use crate::sink::{CheckMeta, Event};

/// Bytes of framing (tags and lengths) a metric adds besides its name and description: an upper bound, so the
/// estimate of a request's size stays above its real size.
const METRIC_FRAMING: usize = 32;
/// Bytes of framing of a request besides its resource and scope.
const REQUEST_FRAMING: usize = 64;

/// What the requests of a batch carry besides the results.
#[derive(Debug, Clone)]
pub(crate) struct Context<'a> {
    /// The resource of every request (`service.name` and the configured attributes).
    pub(crate) resource: &'a Resource,
    /// Region labels, intervals and sensitivities for the series.
    pub(crate) series: &'a SeriesOptions,
    /// Secrets and region labels for the log lines.
    pub(crate) record: &'a RecordOptions,
    /// Whether to make metrics requests.
    pub(crate) metrics: bool,
    /// Whether to make logs requests.
    pub(crate) logs: bool,
    /// The most bytes a request should hold (a single result larger than it still goes, alone).
    pub(crate) max_bytes: usize,
}

/// The running totals of the pairs a batch touches after it: `None` for a pair that was removed.
pub(crate) type Work = BTreeMap<(String, String), Option<Totals>>;

/// One result's part of the requests.
struct Unit {
    points: Vec<(&'static str, NumberDataPoint)>,
    record: Option<LogRecord>,
}

/// The encoded requests of a batch, metrics then logs, each under `max_bytes` as far as one result allows.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    /// `ExportMetricsServiceRequest` bodies, uncompressed.
    pub(crate) metrics: Vec<Vec<u8>>,
    /// `ExportLogsServiceRequest` bodies, uncompressed.
    pub(crate) logs: Vec<Vec<u8>>,
}

/// The requests of `batch`, given the pairs' totals before it (`known`), and the totals after it.
pub(crate) fn encode(
    batch: &[Event],
    known: &dyn Fn(&(String, String)) -> Option<Totals>,
    cx: &Context<'_>,
) -> (Requests, Work) {
    let mut work = Work::new();
    let mut units = Vec::new();
    for event in batch {
        match event {
            Event::Result { check, result } => {
                let key = (check.name.clone(), result.region.clone());
                let totals = work.entry(key.clone()).or_insert_with(|| known(&key)).get_or_insert_with(Totals::default);
                // A result replayed, or older than one already sent, is not sent again.
                if !totals.observe(result) {
                    continue;
                }
                let points = if cx.metrics { points(check, result, totals, cx.series) } else { Vec::new() };
                let record = cx.logs.then(|| log_record(check, result, cx.record));
                units.push(Unit { points, record });
            }
            Event::Removed { check, region, .. } => {
                work.insert((check.name.clone(), region.clone()), None);
            }
        }
    }
    let mut requests = Requests::default();
    if cx.metrics {
        for group in pack(&units, cx, |unit| {
            // Every metric may appear in each result: its framing counts per result (an upper bound).
            unit.points.iter().map(|(name, point)| point.encoded_len() + name.len() + 8).sum::<usize>()
                + metric_overhead(unit)
        }) {
            requests.metrics.push(metrics_request(group, cx).encode_to_vec());
        }
    }
    if cx.logs {
        for group in pack(&units, cx, |unit| unit.record.as_ref().map_or(0, |record| record.encoded_len() + 8)) {
            requests.logs.push(logs_request(group, cx).encode_to_vec());
        }
    }
    (requests, work)
}

/// Consecutive units grouped so that each group's estimated size (`size` of each, plus the request's framing,
/// resource and scope) stays under `cx.max_bytes`; units of size 0 are left out.
fn pack<'u>(units: &'u [Unit], cx: &Context<'_>, size: impl Fn(&Unit) -> usize) -> Vec<&'u [Unit]> {
    let overhead = REQUEST_FRAMING + cx.resource.encoded_len() + scope().encoded_len();
    let mut groups = Vec::new();
    let (mut start, mut bytes, mut any) = (0, overhead, false);
    for (at, unit) in units.iter().enumerate() {
        let own = size(unit);
        if own == 0 {
            continue;
        }
        if any && bytes + own > cx.max_bytes {
            groups.push(&units[start..at]);
            (start, bytes) = (at, overhead);
        }
        bytes += own;
        any = true;
    }
    if any {
        groups.push(&units[start..]);
    }
    groups
}

/// What the metrics of a unit's points may add besides the points: each distinct name's framing, name and
/// description (counted for every unit, though a request holds each metric once: an upper bound).
fn metric_overhead(unit: &Unit) -> usize {
    let names: BTreeSet<&str> = unit.points.iter().map(|(name, _)| *name).collect();
    names.into_iter().map(|name| METRIC_FRAMING + name.len() + family(name).map_or(0, |family| family.help.len())).sum()
}

/// A result's series as data points: the remote-write samples (names and labels from [`samples`]), the labels
/// as attributes, the time in unix nanoseconds.
fn points(
    check: &CheckMeta,
    result: &RunResult,
    totals: &Totals,
    series: &SeriesOptions,
) -> Vec<(&'static str, NumberDataPoint)> {
    samples(check, result, totals, series)
        .into_iter()
        .map(|sample| {
            let point = NumberDataPoint {
                attributes: sample.labels.into_iter().map(|(key, value)| string(key, value)).collect(),
                time_unix_nano: nanos(sample.timestamp_ms),
                value: Some(number_data_point::Value::AsDouble(sample.value)),
                ..NumberDataPoint::default()
            };
            (sample.name, point)
        })
        .collect()
}

/// A result as a log record: the Loki line as body, the facts to filter on as attributes.
fn log_record(check: &CheckMeta, result: &RunResult, options: &RecordOptions) -> LogRecord {
    let (severity, text, state) = match result.outcome.state {
        State::Up => (SeverityNumber::Info, "INFO", "up"),
        State::Degraded => (SeverityNumber::Warn, "WARN", "degraded"),
        State::Down => (SeverityNumber::Error, "ERROR", "down"),
    };
    let redact = |text: &str| options.secrets.redact_str(text);
    let mut attributes = vec![
        string("check".to_owned(), redact(&check.name)),
        string("region".to_owned(), redact(&result.region)),
        string("prober".to_owned(), redact(&result.prober)),
        string("state".to_owned(), state.to_owned()),
    ];
    if let Some(reason) = result.outcome.reason {
        attributes.push(string("reason".to_owned(), reason.as_str().to_owned()));
    }
    let at = nanos(result.started_at_ms);
    LogRecord {
        time_unix_nano: at,
        observed_time_unix_nano: at,
        severity_number: severity as i32,
        severity_text: text.to_owned(),
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(crate::loki::line(check, result, options))) }),
        attributes,
        ..LogRecord::default()
    }
}

fn metrics_request(units: &[Unit], cx: &Context<'_>) -> ExportMetricsServiceRequest {
    let mut by_name: BTreeMap<&'static str, Vec<NumberDataPoint>> = BTreeMap::new();
    for unit in units {
        for (name, point) in &unit.points {
            by_name.entry(name).or_default().push(point.clone());
        }
    }
    let metrics = by_name
        .into_iter()
        .map(|(name, data_points)| Metric {
            name: name.to_owned(),
            description: family(name).map(|family| family.help.to_owned()).unwrap_or_default(),
            data: Some(metric::Data::Gauge(Gauge { data_points })),
            ..Metric::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(cx.resource.clone()),
            scope_metrics: vec![ScopeMetrics { scope: Some(scope()), metrics, ..ScopeMetrics::default() }],
            ..ResourceMetrics::default()
        }],
    }
}

fn logs_request(units: &[Unit], cx: &Context<'_>) -> ExportLogsServiceRequest {
    let log_records = units.iter().filter_map(|unit| unit.record.clone()).collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(cx.resource.clone()),
            scope_logs: vec![ScopeLogs { scope: Some(scope()), log_records, ..ScopeLogs::default() }],
            ..ResourceLogs::default()
        }],
    }
}

/// The resource of every request: `service.name=probenet`, then `attributes` by name.
pub(crate) fn resource(attributes: &BTreeMap<String, String>) -> Resource {
    let mut all =
        vec![string(probenet_checks::config::exporters::otlp::SERVICE_NAME.to_owned(), "probenet".to_owned())];
    all.extend(attributes.iter().map(|(key, value)| string(key.clone(), value.clone())));
    Resource { attributes: all, ..Resource::default() }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "probenet".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..InstrumentationScope::default()
    }
}

fn string(key: String, value: String) -> KeyValue {
    KeyValue { key, value: Some(AnyValue { value: Some(any_value::Value::StringValue(value)) }), ..KeyValue::default() }
}

/// Unix milliseconds as unix nanoseconds (0 before 1970, which OTLP reads as unknown).
fn nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}
