//! The OTLP sink against a real HTTP server on 127.0.0.1 that decodes what it receives with the OTLP schema
//! (opentelemetry-proto's messages): metric names and attributes equal to remote write's, timestamps, the log
//! records, gzip, retries through an outage (fed by the store, with a restart), refusals, request size, redaction.

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use probenet_checks::outcome::{Outcome, Reason, State};
use probenet_checks::wire::RunResult;
use probenet_exporters::fed::{Checks, Feed};
use probenet_exporters::record::{RecordOptions, Secrets};
use probenet_exporters::remote_write::proto as rw;
use probenet_exporters::store::{SqliteStore, Store, StoreOptions};
use probenet_exporters::{
    CheckMeta, Event, OtlpOptions, OtlpSink, QueueOptions, RemoteWriteOptions, RemoteWriteSink, SendError, Sink,
    SinkHandle,
};
use prost::Message;

/// One request as the server saw it, its body gunzipped when it came gzipped.
#[derive(Debug, Clone)]
struct Request {
    status: u16,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Default)]
struct Script {
    /// Answers to give per path, in order; 200 with an empty body once they run out (or always, when up).
    answers: HashMap<String, VecDeque<(u16, Vec<u8>)>>,
    /// While set, every request gets 503.
    down: bool,
    seen: Vec<Request>,
}

struct Server {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new().fallback(capture).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, script, task }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn answer(&self, path: &str, status: u16, body: Vec<u8>) {
        self.script.lock().unwrap().answers.entry(path.to_owned()).or_default().push_back((status, body));
    }

    fn set_down(&self, down: bool) {
        self.script.lock().unwrap().down = down;
    }

    fn seen(&self) -> Vec<Request> {
        self.script.lock().unwrap().seen.clone()
    }

    /// The metrics requests answered with a 2xx, decoded.
    fn metrics(&self) -> Vec<ExportMetricsServiceRequest> {
        self.seen()
            .iter()
            .filter(|request| request.path == "/v1/metrics" && request.status == 200)
            .map(|request| ExportMetricsServiceRequest::decode(request.body.as_slice()).unwrap())
            .collect()
    }

    /// The logs requests answered with a 2xx, decoded.
    fn logs(&self) -> Vec<ExportLogsServiceRequest> {
        self.seen()
            .iter()
            .filter(|request| request.path == "/v1/logs" && request.status == 200)
            .map(|request| ExportLogsServiceRequest::decode(request.body.as_slice()).unwrap())
            .collect()
    }
}

async fn capture(
    Shared(script): Shared<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    let mut body = body.to_vec();
    if headers.get("content-encoding").is_some_and(|value| value == "gzip") {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice()).read_to_end(&mut plain).unwrap();
        body = plain;
    }
    let path = uri.path().to_owned();
    let mut script = script.lock().unwrap();
    let (status, answer) = if script.down {
        (503, Vec::new())
    } else {
        script.answers.get_mut(&path).and_then(VecDeque::pop_front).unwrap_or((200, Vec::new()))
    };
    script.seen.push(Request { status, method, path, headers, body });
    (StatusCode::from_u16(status).unwrap(), [("content-type", "application/x-protobuf")], answer)
}

/// A `google.rpc.Status` with this message, as an OTLP receiver answers an error (google/rpc/status.proto:
/// `int32 code = 1; string message = 2;`).
fn rpc_status(code: i32, message: &str) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    Status { code, message: message.to_owned() }.encode_to_vec()
}

fn check(name: &str) -> Arc<CheckMeta> {
    Arc::new(CheckMeta {
        name: name.into(),
        kind: probenet_checks::Kind::Http,
        target: "http://t/".into(),
        labels: BTreeMap::from([("team".to_owned(), "web".to_owned())]),
    })
}

/// A result of `api` from `region`, planned at 2026-11-18T12:00:`second`Z and started 250 ms later.
fn run(check: &str, region: &str, prober: &str, planned: i64, up: bool) -> RunResult {
    let outcome = if up {
        Outcome::up(0.25)
    } else {
        let mut outcome = Outcome::failed(Reason::Status, "status: expected 200, got 503 (key s3cret-header-value)");
        outcome.state = State::Down;
        outcome
    };
    RunResult {
        check: check.into(),
        region: region.into(),
        planned_at_ms: planned,
        started_at_ms: planned + 250,
        prober: prober.into(),
        outcome,
    }
}

const T0: i64 = 1_795_003_200_000;

fn event(region: &str, prober: &str, second: i64, up: bool) -> Event {
    Event::Result { check: check("api"), result: Arc::new(run("api", region, prober, T0 + second * 1000, up)) }
}

fn fast() -> QueueOptions {
    QueueOptions {
        linger: Duration::from_millis(2),
        min_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        ..QueueOptions::default()
    }
}

fn options(server: &Server) -> OtlpOptions {
    OtlpOptions { endpoint: server.endpoint(), timeout: Duration::from_secs(5), ..OtlpOptions::default() }
}

/// A key-value list as (key, string value) pairs, in order.
fn attributes(list: &[KeyValue]) -> Vec<(String, String)> {
    list.iter()
        .map(|kv| match kv.value.as_ref().and_then(|value| value.value.as_ref()) {
            Some(any_value::Value::StringValue(text)) => (kv.key.clone(), text.clone()),
            other => panic!("{}: not a string: {other:?}", kv.key),
        })
        .collect()
}

/// Every data point of the requests: (metric name, attributes sorted by key, unix ns, value).
type Point = (String, Vec<(String, String)>, u64, u64);

fn points(requests: &[ExportMetricsServiceRequest]) -> BTreeSet<Point> {
    let mut out = BTreeSet::new();
    for request in requests {
        for resource in &request.resource_metrics {
            for scope in &resource.scope_metrics {
                for metric in &scope.metrics {
                    let Some(metric::Data::Gauge(gauge)) = &metric.data else {
                        panic!("{} is not a gauge", metric.name)
                    };
                    for point in &gauge.data_points {
                        let Some(number_data_point::Value::AsDouble(value)) = point.value else {
                            panic!("{} is not a double", metric.name)
                        };
                        let mut attrs = attributes(&point.attributes);
                        attrs.sort();
                        out.insert((metric.name.clone(), attrs, point.time_unix_nano, value.to_bits()));
                    }
                }
            }
        }
    }
    out
}

fn records(requests: &[ExportLogsServiceRequest]) -> Vec<LogRecord> {
    requests
        .iter()
        .flat_map(|request| &request.resource_logs)
        .flat_map(|resource| &resource.scope_logs)
        .flat_map(|scope| scope.log_records.clone())
        .collect()
}

#[tokio::test]
async fn metrics_are_remote_writes_series_as_gauges_and_results_are_log_records() {
    let server = Server::start().await;
    let series = probenet_exporters::SeriesOptions {
        region_labels: BTreeMap::from([("us".to_owned(), BTreeMap::from([("provider".to_owned(), "gcp".to_owned())]))]),
        ..Default::default()
    };
    let sink = OtlpSink::new(OtlpOptions {
        bearer_token: Some("tok-123".into()),
        headers: vec![("x-api-key".into(), "s3cret-header-value".into())],
        gzip: true,
        resource_attributes: BTreeMap::from([("deployment.environment".to_owned(), "prod".to_owned())]),
        series: series.clone(),
        ..options(&server)
    })
    .unwrap();
    let batch = [event("eu", "p1", 0, true), event("us", "p2", 0, false), event("eu", "p1", 10, true)];
    sink.send(&batch).await.unwrap();

    let seen = server.seen();
    assert_eq!(seen.iter().map(|request| request.path.as_str()).collect::<Vec<_>>(), ["/v1/metrics", "/v1/logs"]);
    for request in &seen {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.headers["content-type"], "application/x-protobuf");
        assert_eq!(request.headers["content-encoding"], "gzip");
        assert_eq!(request.headers["authorization"], "Bearer tok-123");
        assert_eq!(request.headers["x-api-key"], "s3cret-header-value");
    }

    // The resource and scope.
    let metrics = server.metrics();
    assert_eq!(metrics.len(), 1);
    let resource = metrics[0].resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(
        attributes(&resource.attributes),
        [("service.name".into(), "probenet".into()), ("deployment.environment".into(), "prod".into())]
    );
    assert_eq!(metrics[0].resource_metrics[0].scope_metrics[0].scope.as_ref().unwrap().name, "probenet");

    // Every sample remote write sends for the same batch is a data point here: same name, same labels (as
    // attributes), same value, the time in nanoseconds.
    let rw_server = Server::start().await;
    let remote_write = RemoteWriteSink::new(RemoteWriteOptions {
        url: format!("{}/api/v1/write", rw_server.endpoint()),
        series,
        ..RemoteWriteOptions::default()
    })
    .unwrap();
    remote_write.send(&batch).await.unwrap();
    let write = rw::decode(&rw_server.seen()[0].body).unwrap();
    let mut expected = BTreeSet::new();
    for series in &write.timeseries {
        let name = series.labels.iter().find(|label| label.name == "__name__").unwrap().value.clone();
        let mut labels: Vec<(String, String)> = series
            .labels
            .iter()
            .filter(|label| label.name != "__name__")
            .map(|label| (label.name.clone(), label.value.clone()))
            .collect();
        labels.sort();
        for sample in series.samples.iter().filter(|sample| !rw::is_stale(sample.value)) {
            let ns = u64::try_from(sample.timestamp).unwrap() * 1_000_000;
            expected.insert((name.clone(), labels.clone(), ns, sample.value.to_bits()));
        }
    }
    let got = points(&metrics);
    let count: usize = metrics[0].resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|metric| match &metric.data {
            Some(metric::Data::Gauge(gauge)) => gauge.data_points.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(count, got.len(), "no data point twice");
    assert!(expected.len() > 100, "{}", expected.len());
    assert_eq!(got, expected);

    // A few of them written out.
    let base = |region: &str| {
        let mut labels = vec![
            ("config_version".to_owned(), probenet_exporters::samples::config_version(&check("api"))),
            ("instance".to_owned(), "http://t/".to_owned()),
            ("job".to_owned(), "api".to_owned()),
            ("probe".to_owned(), region.to_owned()),
        ];
        if region == "us" {
            labels.push(("provider".to_owned(), "gcp".to_owned()));
        }
        labels.sort();
        labels
    };
    let ns = |second: i64| u64::try_from(T0 + second * 1000 + 250).unwrap() * 1_000_000;
    for (region, second, value) in [("eu", 0, 1.0), ("us", 0, 0.0), ("eu", 10, 1.0)] {
        let point = ("probe_success".to_owned(), base(region), ns(second), f64::to_bits(value));
        assert!(got.contains(&point), "{point:?}");
    }
    let mut info = base("eu");
    info.extend([
        ("check_name".to_owned(), "http".to_owned()),
        ("label_team".to_owned(), "web".to_owned()),
        ("region".to_owned(), "eu".to_owned()),
    ]);
    info.sort();
    assert!(got.contains(&("sm_check_info".to_owned(), info, ns(0), 1f64.to_bits())));
    let mut reason = base("us");
    reason.push(("reason".to_owned(), "status".to_owned()));
    reason.sort();
    assert!(got.contains(&("probenet_check_failure_reason".to_owned(), reason, ns(0), 1f64.to_bits())));
    // The running count of the eu pair after its second result.
    assert!(got.contains(&("probe_all_success_count".to_owned(), base("eu"), ns(10), 2f64.to_bits())));
    let described = metrics[0].resource_metrics[0].scope_metrics[0].metrics.iter().find(|m| m.name == "probe_success");
    assert_eq!(described.unwrap().description, "Displays whether or not the probe was a success");

    // One log record per result, in batch order: the Loki line as body, the facts as attributes.
    let logs = server.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].resource_logs[0].resource.as_ref(), Some(resource));
    let records = records(&logs);
    assert_eq!(records.len(), 3);
    let secrets = Secrets::new(["tok-123", "s3cret-header-value"]);
    let record_options = RecordOptions { secrets, ..RecordOptions::default() };
    for (record, event) in records.iter().zip(&batch) {
        let Event::Result { check, result } = event else { unreachable!() };
        assert_eq!(record.time_unix_nano, u64::try_from(result.started_at_ms).unwrap() * 1_000_000);
        let body = match record.body.as_ref().and_then(|body| body.value.as_ref()) {
            Some(any_value::Value::StringValue(body)) => body.clone(),
            other => panic!("body {other:?}"),
        };
        let mut options = record_options.clone();
        options.region_labels =
            BTreeMap::from([("us".to_owned(), BTreeMap::from([("provider".to_owned(), "gcp".to_owned())]))]);
        assert_eq!(body, probenet_exporters::loki::line(check, result, &options));
        let line: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(line.get("ts").is_none() && line.get("check").is_none(), "{line}");
        assert_eq!(line["prober"], result.prober.as_str());
    }
    let up = &records[0];
    assert_eq!((up.severity_number, up.severity_text.as_str()), (9, "INFO"));
    assert_eq!(
        attributes(&up.attributes),
        [
            ("check".into(), "api".into()),
            ("region".into(), "eu".into()),
            ("prober".into(), "p1".into()),
            ("state".into(), "up".into())
        ]
    );
    let down = &records[1];
    assert_eq!((down.severity_number, down.severity_text.as_str()), (17, "ERROR"));
    assert_eq!(
        attributes(&down.attributes),
        [
            ("check".into(), "api".into()),
            ("region".into(), "us".into()),
            ("prober".into(), "p2".into()),
            ("state".into(), "down".into()),
            ("reason".into(), "status".into())
        ]
    );
    // The header's secret, quoted by the result's error, is redacted from the line.
    let body = format!("{:?}", down.body);
    assert!(!body.contains("s3cret-header-value") && body.contains("[redacted]"), "{body}");

    // A batch of a removal only sends nothing; a result sent before is not sent again.
    let removed = Event::Removed { check: check("api"), region: "us".into(), at_ms: T0 + 20_000 };
    sink.send(&[removed, event("eu", "p1", 10, true)]).await.unwrap();
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn a_retried_batch_does_not_send_again_what_was_delivered() {
    let server = Server::start().await;
    server.answer("/v1/logs", 503, rpc_status(14, "unavailable"));
    server.answer("/v1/logs", 429, rpc_status(8, "slow down"));
    let handle = SinkHandle::spawn("otlp", Arc::new(OtlpSink::new(options(&server)).unwrap()), fast());
    for second in 0..3 {
        handle.offer(event("eu", "p1", second, true));
    }
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.retried, counters.dropped), (3, 2, 0), "{counters:?}");
    let paths: Vec<String> = server.seen().into_iter().map(|request| request.path).collect();
    assert_eq!(paths, ["/v1/metrics", "/v1/logs", "/v1/logs", "/v1/logs"]);
    let seen = server.seen();
    assert_eq!(seen[1].body, seen[3].body, "the retry sends the same records");
    assert_eq!(seen[2].body, seen[3].body);
    assert_eq!(records(&server.logs()).len(), 3);
    // The running totals moved once: the count of the last result is 3.
    let got = points(&server.metrics());
    assert!(got.iter().any(|(name, _, _, value)| name == "probe_all_success_count" && *value == 3f64.to_bits()));
}

#[tokio::test]
async fn a_bad_request_is_dropped_and_counted_and_no_secret_is_shown() {
    let server = Server::start().await;
    server.answer("/v1/metrics", 400, rpc_status(3, "invalid key s3cret-header-value / tok-9"));
    let sink = OtlpSink::new(OtlpOptions {
        basic_auth: Some(("user".into(), "pa55word".into())),
        headers: vec![("x-api-key".into(), "s3cret-header-value".into())],
        ..options(&server)
    })
    .unwrap();
    let debug = format!("{sink:?}");
    let handle = SinkHandle::spawn("otlp", Arc::new(sink), fast());
    handle.offer(event("eu", "p1", 0, true));
    handle.offer(event("eu", "p1", 1, false));
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.retried, counters.dropped), (0, 0, 2), "{counters:?}");
    let message = counters.last_error.clone().unwrap();
    assert_eq!(message, "otlp: /v1/metrics: 400 Bad Request: invalid key [redacted] / tok-9");
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "a refused batch is not retried, its logs not sent");
    assert_eq!(seen[0].headers["authorization"], "Basic dXNlcjpwYTU1d29yZA==");
    assert!(seen[0].headers.get("content-encoding").is_none());
    let metrics = format!("{:?}", probenet_exporters::sink_families(std::slice::from_ref(&handle)));
    let options = format!(
        "{:?}",
        OtlpOptions {
            bearer_token: Some("tok-secret".into()),
            headers: vec![("x-api-key".into(), "s3cret-header-value".into())],
            ..options(&server)
        }
    );
    for shown in [&message, &metrics, &debug, &options] {
        for secret in ["s3cret-header-value", "pa55word", "tok-secret", "dXNlcjpwYTU1d29yZA"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
    assert!(metrics.contains("probenet_sink_dropped_total"), "{metrics}");
}

#[tokio::test]
async fn a_connection_failure_is_retried_and_names_no_credentials() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let sink = OtlpSink::new(OtlpOptions {
        endpoint: format!("http://{closed}/otlp/"),
        bearer_token: Some("tok-77x".into()),
        ..OtlpOptions::default()
    })
    .unwrap();
    assert_eq!(sink.metrics_url(), format!("http://{closed}/otlp/v1/metrics"));
    assert_eq!(sink.logs_url(), format!("http://{closed}/otlp/v1/logs"));
    let Err(SendError::Retry(message)) = sink.send(&[event("eu", "p1", 0, true)]).await else {
        panic!("a connection refused is retried")
    };
    assert!(message.starts_with("otlp: /otlp/v1/metrics: cannot connect"), "{message}");
    assert!(!message.contains("tok-77x"), "{message}");
}

#[tokio::test]
async fn requests_stay_under_the_size_bound() {
    let server = Server::start().await;
    let bound = 40_000;
    let sink = OtlpSink::new(OtlpOptions { max_request_bytes: bound, ..options(&server) }).unwrap();
    let batch: Vec<Event> = (0..40).map(|i| event(if i % 2 == 0 { "eu" } else { "us" }, "p1", i, i % 3 != 0)).collect();
    sink.send(&batch).await.unwrap();
    let seen = server.seen();
    let metrics: Vec<&Request> = seen.iter().filter(|request| request.path == "/v1/metrics").collect();
    let logs: Vec<&Request> = seen.iter().filter(|request| request.path == "/v1/logs").collect();
    assert!(metrics.len() > 2, "{} metrics requests", metrics.len());
    for request in &seen {
        assert!(request.body.len() <= bound, "{} bytes to {}", request.body.len(), request.path);
    }
    // Nothing lost in the split: 40 results' probe_success points, 40 records.
    let got = points(&server.metrics());
    assert_eq!(got.iter().filter(|(name, ..)| name == "probe_success").count(), 40);
    assert_eq!(records(&server.logs()).len(), 40);
    assert!(!logs.is_empty());
}

fn now_ms() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// A scheduler's sink fed by the store: the receiver answers 503 for a while, the sink is restarted in the
/// middle of it, and when the receiver is back every stored result arrives, as data points and as records,
/// with nothing dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_a_restart_lose_nothing_when_fed_by_the_store() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("store"), StoreOptions { durable: false, ..StoreOptions::default() })
            .unwrap(),
    );
    let (_delivering, may_deliver) = tokio::sync::watch::channel(true);
    let feed = Feed::new(store.clone(), may_deliver);
    let checks: Checks = Arc::new(RwLock::new(Arc::new(
        ["a", "b", "c"].into_iter().map(|name| (name.to_owned(), check(name))).collect::<HashMap<_, _>>(),
    )));
    let queue =
        QueueOptions { min_backoff: Duration::from_millis(20), max_backoff: Duration::from_millis(100), ..fast() };
    let spawn = || {
        let sink: Arc<dyn Sink> = Arc::new(OtlpSink::new(OtlpOptions { gzip: true, ..options(&server) }).unwrap());
        let cursor = probenet_exporters::fed::cursor_name(sink.as_ref());
        SinkHandle::spawn_fed("otlp", cursor, sink, queue, feed.clone(), checks.clone())
    };
    let mut handle = spawn();
    // Let the new sink take its starting position before anything is stored.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let first = (now_ms() / 1000 - 30) * 1000;
    let mut expected = BTreeSet::new();
    let mut ingest = |rounds: std::ops::Range<i64>| {
        let mut batch = Vec::new();
        for round in rounds {
            for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
                for region in ["eu", "us"] {
                    let planned = first + round * 1000;
                    batch.push(run(name, region, "p1", planned, (round + i as i64) % 4 != 0));
                    expected.insert((name.to_owned(), region.to_owned(), planned + 250));
                }
            }
        }
        let (ingested, _) = store.ingest(batch.clone()).unwrap();
        assert_eq!(ingested.accepted, batch.len());
    };

    server.set_down(true);
    ingest(0..5);
    handle.offer(event("eu", "p1", 0, true));
    let deadline = Instant::now() + Duration::from_secs(20);
    while handle.counters().retried < 3 {
        assert!(Instant::now() < deadline, "the sink retries during the outage: {:?}", handle.counters());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A restart during the outage: the new sink goes on from the saved position.
    handle.close(Duration::from_secs(2)).await;
    assert_eq!(handle.counters().dropped, 0, "{:?}", handle.counters());
    handle = spawn();
    ingest(5..10);
    handle.offer(event("eu", "p1", 0, true));
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.set_down(false);

    let got = |server: &Server| {
        let mut success = BTreeSet::new();
        for (_, attrs, ns, _) in points(&server.metrics()).into_iter().filter(|(name, ..)| name == "probe_success") {
            let get = |key: &str| attrs.iter().find(|(k, _)| k == key).unwrap().1.clone();
            success.insert((get("job"), get("probe"), i64::try_from(ns / 1_000_000).unwrap()));
        }
        let mut logged = BTreeSet::new();
        for record in records(&server.logs()) {
            let attrs: BTreeMap<String, String> = attributes(&record.attributes).into_iter().collect();
            logged.insert((
                attrs["check"].clone(),
                attrs["region"].clone(),
                i64::try_from(record.time_unix_nano / 1_000_000).unwrap(),
            ));
        }
        (success, logged)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (success, logged) = got(&server);
        if (success.is_superset(&expected) && logged.is_superset(&expected)) || Instant::now() > deadline {
            assert_eq!(success, expected, "every result's probe_success arrived");
            assert_eq!(logged, expected, "every result's record arrived");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let counters = handle.counters();
    assert_eq!(counters.dropped, 0, "{counters:?}");
    handle.close(Duration::from_secs(5)).await;
}

/// From the config to the receiver: an `otlp` exporter of a config, built as a prober builds its sinks, sends
/// with the header read from a secret file, gzip and the resource attributes; the region's labels are on
/// every data point.
#[tokio::test]
async fn a_configured_exporter_sends_with_its_secret_header() {
    use probenet_checks::config::exporters::ExportOn;
    use probenet_exporters::Outputs;

    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "k3y-from-file\n").unwrap();
    let yaml = format!(
        "regions: {{eu: {{labels: {{geohash: u0}}}}}}\n\
         exporters:\n  - otlp:\n      endpoint: {}\n      headers: {{x-api-key: \"${{file:{}}}\"}}\n      \
         compression: gzip\n      resource_attributes: {{deployment.environment: test}}\n      on: probers\n\
         checks:\n  - {{name: web, interval: 10s, http: {{url: \"http://127.0.0.1:9/\"}}}}\n",
        server.endpoint(),
        key.display()
    );
    let config = probenet_checks::load_str("checks.yaml", &yaml).unwrap_or_else(|errors| panic!("{errors}"));
    let outputs = Outputs::start(&config, ExportOn::Probers, None).unwrap();
    assert_eq!(outputs.sinks().sinks()[0].kind(), "otlp");
    outputs.publish(&run("web", "eu", "p1", now_ms() - 1000, true));
    outputs.close(Duration::from_secs(10)).await;

    let seen = server.seen();
    assert_eq!(seen.iter().map(|request| request.path.as_str()).collect::<Vec<_>>(), ["/v1/metrics", "/v1/logs"]);
    for request in &seen {
        assert_eq!(request.headers["x-api-key"], "k3y-from-file");
        assert_eq!(request.headers["content-encoding"], "gzip");
    }
    let metrics = server.metrics();
    let resource = metrics[0].resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(
        attributes(&resource.attributes),
        [("service.name".into(), "probenet".into()), ("deployment.environment".into(), "test".into())]
    );
    let got = points(&metrics);
    let success: Vec<&Point> = got.iter().filter(|(name, ..)| name == "probe_success").collect();
    assert_eq!(success.len(), 1);
    assert!(success[0].1.contains(&("geohash".to_owned(), "u0".to_owned())), "{:?}", success[0].1);
    assert_eq!(records(&server.logs()).len(), 1);
}
