//! Test helpers: a local HTTP target with slow endpoints, and a strict in-test scheduler that implements the
//! wire calls of `probenet_checks::wire` exactly (bearer token, protocol version, region, long poll, acks).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use probenet_checks::wire::{
    Ack, Assignment, Assignments, ConfigFile, Heartbeat, PROTOCOL_VERSION, Register, Registered, ResultBatch, RunResult,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

type Body = Full<Bytes>;

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

fn json<T: serde::Serialize>(value: &T) -> Response<Body> {
    let mut response = respond(StatusCode::OK, serde_json::to_vec(value).unwrap());
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    response
}

/// Runs `handler` for every connection accepted on `listener` (HTTP/1.1, optionally over TLS) until the
/// returned task is aborted, which also closes every open connection.
fn serve<H, F>(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, handler: H) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = handler.clone();
            let tls = tls.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(request).await) }
                });
                let builder = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            });
            while connections.try_join_next().is_some() {}
        }
    })
}

/// A local HTTP target: `/delay/MS/NAME` answers 200 after MS milliseconds. It records how many requests
/// are in flight at most, in total and per name, and every request's path.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    state: Arc<TargetState>,
    task: Arc<JoinHandle<()>>,
}

#[derive(Default)]
struct TargetState {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    per_name: Mutex<HashMap<String, (usize, usize)>>,
    paths: Mutex<Vec<String>>,
}

impl Target {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(TargetState::default());
        let shared = state.clone();
        let task = serve(listener, None, move |request: Request<Incoming>| {
            let state = shared.clone();
            async move {
                let path = request.uri().path().to_owned();
                state.paths.lock().unwrap().push(path.clone());
                let mut parts = path.trim_start_matches('/').split('/');
                let delay = match (parts.next(), parts.next()) {
                    (Some("delay"), Some(ms)) => ms.parse().unwrap_or(0),
                    _ => 0,
                };
                let name = parts.next().unwrap_or("").to_owned();
                let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                state.max_in_flight.fetch_max(now, Ordering::SeqCst);
                {
                    let mut per_name = state.per_name.lock().unwrap();
                    let entry = per_name.entry(name.clone()).or_default();
                    entry.0 += 1;
                    entry.1 = entry.1.max(entry.0);
                }
                tokio::time::sleep(Duration::from_millis(delay)).await;
                state.per_name.lock().unwrap().entry(name).or_default().0 -= 1;
                state.in_flight.fetch_sub(1, Ordering::SeqCst);
                respond(StatusCode::OK, "ok")
            }
        });
        Self { addr, state, task: Arc::new(task) }
    }

    /// The URL of an endpoint answering after `delay_ms`, named `name` for the counters.
    pub fn url(&self, delay_ms: u64, name: &str) -> String {
        format!("http://{}/delay/{delay_ms}/{name}", self.addr)
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// The most requests of `name` in flight at once.
    pub fn max_in_flight_of(&self, name: &str) -> usize {
        self.state.per_name.lock().unwrap().get(name).map_or(0, |entry| entry.1)
    }

    pub fn paths(&self) -> Vec<String> {
        self.state.paths.lock().unwrap().clone()
    }
}

/// The YAML of an HTTP check.
pub fn http_check(name: &str, interval: &str, timeout: &str, url: &str) -> String {
    format!("  - name: {name}\n    interval: {interval}\n    timeout: {timeout}\n    http: {{url: \"{url}\"}}\n")
}

/// A config file made of checks (each from [`http_check`]).
pub fn config(checks: &[String]) -> ConfigFile {
    ConfigFile {
        name: "checks.yaml".to_owned(),
        text: format!("regions:\n  eu-west: {{}}\nchecks:\n{}", checks.concat()),
    }
}

/// A call the scheduler saw: path and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub path: String,
    pub status: u16,
}

/// What survives a scheduler restart: the stored results (as a real scheduler's store would).
#[derive(Default)]
pub struct Store {
    pub results: Vec<RunResult>,
    pub ids: HashSet<(String, String, i64)>,
    pub duplicates: usize,
    pub batches: usize,
}

/// The registry, lost on restart.
#[derive(Default)]
pub struct Registry {
    pub probers: HashMap<String, Register>,
    /// Names held by another registration: registering them answers 409.
    pub squatted: HashSet<String>,
    pub deregistered: Vec<String>,
    pub heartbeats: usize,
    /// The report of the latest heartbeat.
    pub last_report: Option<probenet_checks::wire::ProberReport>,
    pub calls: Vec<Call>,
}

/// What the scheduler hands out.
#[derive(Clone)]
pub struct Setup {
    pub token: String,
    pub region: String,
    pub heartbeat_seconds: f64,
    pub config: Vec<ConfigFile>,
    pub config_hash: String,
    pub assigned: Vec<Assignment>,
}

struct SchedulerState {
    setup: Mutex<Setup>,
    generation: Mutex<u64>,
    changed: Notify,
    registry: Mutex<Registry>,
    store: Arc<Mutex<Store>>,
    down: AtomicBool,
}

/// A strict in-test scheduler speaking the wire protocol.
pub struct Scheduler {
    pub addr: SocketAddr,
    pub url: String,
    state: Arc<SchedulerState>,
    task: Option<JoinHandle<()>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Scheduler {
    pub async fn start(setup: Setup) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), setup, Arc::default(), None).await
    }

    /// Over TLS with a certificate from a fresh CA, whose PEM is written to `ca_path`.
    pub async fn start_tls(setup: Setup, ca_path: &std::path::Path) -> Self {
        let acceptor = tls_acceptor(ca_path);
        Self::start_on("127.0.0.1:0".parse().unwrap(), setup, Arc::default(), Some(acceptor)).await
    }

    /// One replica of a replicated scheduler: results go to `store`, shared with the other replicas (as
    /// their database would be), so a result acknowledged by any of them is seen by all and stored once.
    /// Its registry is its own, as a replica that has not seen the prober yet: the prober registers again.
    pub async fn start_replica(setup: Setup, store: Arc<Mutex<Store>>) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), setup, store, None).await
    }

    /// [`Scheduler::start_replica`] on a chosen address, over TLS with `tls` (see [`tls_acceptor`]).
    pub async fn start_replica_tls(
        addr: SocketAddr,
        setup: Setup,
        store: Arc<Mutex<Store>>,
        tls: tokio_rustls::TlsAcceptor,
    ) -> Self {
        Self::start_on(addr, setup, store, Some(tls)).await
    }

    /// While `down`, every call answers 503 (a replica that is up but not ready: no database, say).
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// The result store, to share with other replicas.
    pub fn shared_store(&self) -> Arc<Mutex<Store>> {
        self.state.store.clone()
    }

    /// Whether `prober` is registered here now.
    pub fn knows(&self, prober: &str) -> bool {
        self.registry().probers.contains_key(prober)
    }

    /// How many results batches this replica acknowledged.
    pub fn acknowledged_batches(&self) -> usize {
        self.calls().iter().filter(|call| call.path == "/v1/results" && call.status == 200).count()
    }

    async fn start_on(
        addr: SocketAddr,
        setup: Setup,
        store: Arc<Mutex<Store>>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        Self::start_with(listener, setup, store, tls)
    }

    fn start_with(
        listener: TcpListener,
        setup: Setup,
        store: Arc<Mutex<Store>>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(SchedulerState {
            setup: Mutex::new(setup),
            generation: Mutex::new(1),
            changed: Notify::new(),
            registry: Mutex::default(),
            store,
            down: AtomicBool::new(false),
        });
        let shared = state.clone();
        let task = serve(listener, tls.clone(), move |request| handle(shared.clone(), request));
        let scheme = if tls.is_some() { "https" } else { "http" };
        Self { addr, url: format!("{scheme}://{addr}"), state, task: Some(task), tls }
    }

    /// Stops: every call answers 503 for a moment (so no request is half-processed), then the listener and
    /// every connection close.
    pub async fn stop(&mut self) {
        self.state.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Dies at once: the listener and every connection close, a request in flight included (its batch may
    /// be stored without the prober seeing the acknowledgement); then connections are refused.
    pub async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Starts again on the same address with an empty registry (a restarted scheduler), the same setup and
    /// the same result store.
    pub async fn restart(&mut self) {
        let setup = self.state.setup.lock().unwrap().clone();
        let store = self.state.store.clone();
        let mut listener = None;
        for _ in 0..50 {
            if let Ok(bound) = TcpListener::bind(self.addr).await {
                listener = Some(bound);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut next = Self::start_with(listener.expect("the address is free again"), setup, store, self.tls.clone());
        self.state = next.state.clone();
        self.task = next.task.take();
    }

    /// Replaces the assignments and bumps the generation (a long poll in progress answers at once).
    pub fn set_assigned(&self, config: Option<Vec<ConfigFile>>, hash: Option<&str>, assigned: Vec<Assignment>) {
        {
            let mut setup = self.state.setup.lock().unwrap();
            if let Some(config) = config {
                setup.config = config;
            }
            if let Some(hash) = hash {
                setup.config_hash = hash.to_owned();
            }
            setup.assigned = assigned;
        }
        *self.state.generation.lock().unwrap() += 1;
        self.state.changed.notify_waiters();
    }

    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.state.store.lock().unwrap()
    }

    pub fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.state.registry.lock().unwrap()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.registry().calls.clone()
    }
}

/// A TLS acceptor with a certificate for `localhost` and `127.0.0.1` from a fresh CA, whose PEM is written to
/// `ca_path`.
pub fn tls_acceptor(ca_path: &std::path::Path) -> tokio_rustls::TlsAcceptor {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "probenet test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(ca_path, ca.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn query(request: &Request<Incoming>) -> HashMap<String, String> {
    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                byte => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (decode(key), decode(value)))
        .collect()
}

async fn handle(state: Arc<SchedulerState>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let response = route(&state, request).await;
    state.registry.lock().unwrap().calls.push(Call { path, status: response.status().as_u16() });
    response
}

async fn body<T: serde::de::DeserializeOwned>(request: Request<Incoming>) -> Result<T, Response<Body>> {
    let is_json = request
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        return Err(respond(StatusCode::UNSUPPORTED_MEDIA_TYPE, "json only"));
    }
    let bytes = request.into_body().collect().await.map_err(|_| respond(StatusCode::BAD_REQUEST, "body"))?.to_bytes();
    serde_json::from_slice(&bytes).map_err(|error| respond(StatusCode::BAD_REQUEST, error.to_string()))
}

async fn route(state: &SchedulerState, request: Request<Incoming>) -> Response<Body> {
    if state.down.load(Ordering::SeqCst) {
        return respond(StatusCode::SERVICE_UNAVAILABLE, "down");
    }
    let setup = state.setup.lock().unwrap().clone();
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("Bearer {}", setup.token));
    if !authorized {
        return respond(StatusCode::UNAUTHORIZED, "bad token");
    }
    let registered =
        Registered { lease_seconds: setup.heartbeat_seconds * 3.0, heartbeat_seconds: setup.heartbeat_seconds };
    let method = request.method().clone();
    match (method.as_str(), request.uri().path()) {
        ("POST", "/v1/register") => {
            let register: Register = match body(request).await {
                Ok(register) => register,
                Err(response) => return response,
            };
            if register.protocol != PROTOCOL_VERSION {
                return respond(StatusCode::BAD_REQUEST, "unsupported protocol version");
            }
            if register.region != setup.region {
                return respond(StatusCode::FORBIDDEN, "token bound to another region");
            }
            if register.name.is_empty() || register.version.is_empty() {
                return respond(StatusCode::BAD_REQUEST, "name and version required");
            }
            if state.registry.lock().unwrap().squatted.contains(&register.name) {
                return respond(StatusCode::CONFLICT, "registered in this region with another token");
            }
            state.registry.lock().unwrap().probers.insert(register.name.clone(), register);
            *state.generation.lock().unwrap() += 1;
            state.changed.notify_waiters();
            json(&registered)
        }
        ("POST", "/v1/heartbeat") | ("POST", "/v1/deregister") => {
            let deregister = request.uri().path() == "/v1/deregister";
            let heartbeat: Heartbeat = match body(request).await {
                Ok(heartbeat) => heartbeat,
                Err(response) => return response,
            };
            if heartbeat.region != setup.region {
                return respond(StatusCode::FORBIDDEN, "token bound to another region");
            }
            let mut registry = state.registry.lock().unwrap();
            if !registry.probers.contains_key(&heartbeat.name) {
                return respond(StatusCode::NOT_FOUND, "unknown prober");
            }
            if deregister {
                registry.probers.remove(&heartbeat.name);
                registry.deregistered.push(heartbeat.name);
                respond(StatusCode::NO_CONTENT, "")
            } else {
                registry.heartbeats += 1;
                registry.last_report = heartbeat.report;
                json(&registered)
            }
        }
        ("GET", "/v1/assignments") => {
            let query = query(&request);
            let (Some(prober), Some(generation), Some(wait)) = (
                query.get("prober").cloned(),
                query.get("generation").and_then(|text| text.parse::<u64>().ok()),
                query.get("wait_seconds").and_then(|text| text.parse::<u64>().ok()),
            ) else {
                return respond(StatusCode::BAD_REQUEST, "prober, generation and wait_seconds required");
            };
            if !state.registry.lock().unwrap().probers.contains_key(&prober) {
                return respond(StatusCode::NOT_FOUND, "unknown prober");
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.min(60));
            loop {
                let notified = state.changed.notified();
                if *state.generation.lock().unwrap() != generation || tokio::time::Instant::now() >= deadline {
                    break;
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    break;
                }
            }
            let setup = state.setup.lock().unwrap().clone();
            json(&Assignments {
                generation: *state.generation.lock().unwrap(),
                config_hash: setup.config_hash,
                config: setup.config,
                assigned: setup.assigned,
            })
        }
        ("POST", "/v1/results") => {
            let batch: ResultBatch = match body(request).await {
                Ok(batch) => batch,
                Err(response) => return response,
            };
            {
                let registry = state.registry.lock().unwrap();
                if !registry.probers.contains_key(&batch.prober) && !registry.deregistered.contains(&batch.prober) {
                    return respond(StatusCode::NOT_FOUND, "unknown prober");
                }
            }
            if batch.results.len() > 500 {
                return respond(StatusCode::PAYLOAD_TOO_LARGE, "batch too large");
            }
            if batch.results.iter().any(|result| result.region != setup.region) {
                return respond(StatusCode::BAD_REQUEST, "a result for another region");
            }
            let mut store = state.store.lock().unwrap();
            store.batches += 1;
            let mut ack = Ack { accepted: 0, duplicates: 0 };
            for result in batch.results {
                if store.ids.insert((result.check.clone(), result.region.clone(), result.planned_at_ms)) {
                    store.results.push(result);
                    ack.accepted += 1;
                } else {
                    store.duplicates += 1;
                    ack.duplicates += 1;
                }
            }
            json(&ack)
        }
        _ => respond(StatusCode::NOT_FOUND, "no such call"),
    }
}

/// Waits until `condition` holds, checking every 20 ms, for at most `limit`.
pub async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A prober running in the test, stopped by [`Running::shutdown`].
pub struct Running {
    pub stats: probenet_prober::StatsHandle,
    stop: tokio::sync::oneshot::Sender<()>,
    pub task: JoinHandle<Result<probenet_prober::Stats, probenet_prober::Error>>,
}

/// Starts a prober with `options`.
pub fn start(options: probenet_prober::Options) -> Running {
    let stats = probenet_prober::StatsHandle::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(probenet_prober::run_with_stats(options, stats.clone(), async {
        let _ = stopped.await;
    }));
    Running { stats, stop, task }
}

impl Running {
    /// Stops it (it hands its work back and flushes) and returns how it ended, within 20 s.
    pub async fn shutdown(self) -> Result<probenet_prober::Stats, probenet_prober::Error> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("shutdown is bounded").unwrap()
    }
}
