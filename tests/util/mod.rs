//! The harness: local HTTP(S) test servers, certificates made on the fly, and running the real binary.

pub mod processes;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// The repository root, where `examples/` lives.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// No single run of the binary may take longer than this; a hang fails the test instead of the suite.
const RUN_LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------------------

/// A `probenet` command line, run as a child process.
#[derive(Debug)]
pub struct Probenet {
    command: tokio::process::Command,
}

/// `probenet ARGS...`, with the secrets the tests use removed from its environment.
pub fn probenet<I, S>(args: I) -> Probenet
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_probenet"));
    probenet_as(command, args)
}

/// `probenet ARGS...` run through `command` (which ends with the program that execs probenet's arguments).
fn probenet_as<I, S>(mut command: tokio::process::Command, args: I) -> Probenet
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    command.args(args).kill_on_drop(true);
    for name in ["ORDERS_API_KEY", "ADMIN_PASSWORD", "SHOP_USER", "PROBE_TEST_TOKEN", "PROBE_TEST_PASSWORD", "RUST_LOG"]
    {
        command.env_remove(name);
    }
    Probenet { command }
}

impl Probenet {
    /// Sets an environment variable for this run only.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.command.env(name, value);
        self
    }

    /// Runs in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    /// Runs to the end and captures everything it printed.
    pub async fn output(self) -> Output {
        self.output_within(RUN_LIMIT).await
    }

    /// Like [`Self::output`], for a run that is meant to last longer than usual.
    pub async fn output_within(mut self, limit: Duration) -> Output {
        let output = tokio::time::timeout(limit, self.command.output())
            .await
            .unwrap_or_else(|_| panic!("probenet did not finish within {limit:?}: {:?}", self.command))
            .unwrap();
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Output {
    /// The exit code.
    pub code: i32,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl Output {
    /// Asserts the exit code, showing everything printed when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Every stdout line parsed as JSON (`--output json`).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}")))
            .collect()
    }

    /// The one JSON result printed.
    #[track_caller]
    pub fn only(&self) -> Value {
        let mut lines = self.json_lines();
        assert_eq!(lines.len(), 1, "expected one result\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        lines.remove(0)
    }

    /// The JSON result of the check named `name`.
    #[track_caller]
    pub fn check(&self, name: &str) -> Value {
        self.json_lines()
            .into_iter()
            .find(|line| line["check"] == name)
            .unwrap_or_else(|| panic!("no result for {name:?} in:\n{}", self.stdout))
    }
}

/// A config written to a temporary directory, with room for more files beside it (CA files, ...).
#[derive(Debug)]
pub struct Config {
    dir: tempfile::TempDir,
    /// The config file.
    pub path: PathBuf,
}

impl Config {
    /// Writes `yaml` as `checks.yaml` in a fresh temporary directory.
    pub fn new(yaml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checks.yaml");
        std::fs::write(&path, yaml).unwrap();
        Self { dir, path }
    }

    /// The directory holding the config.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `probenet run CONFIG --output json` plus `extra` arguments.
    pub async fn run_json(&self, extra: &[&str]) -> Output {
        self.command(&["--output", "json"], extra).output().await
    }

    /// `probenet run CONFIG` (table output) plus `extra` arguments.
    pub async fn run_table(&self, extra: &[&str]) -> Output {
        self.command(&[], extra).output().await
    }

    /// `probenet run CONFIG ARGS... EXTRA...`, not yet started (to add environment variables).
    pub fn command(&self, args: &[&str], extra: &[&str]) -> Probenet {
        let path = self.path.to_str().unwrap();
        probenet(["run", path].iter().chain(args).chain(extra))
    }
}

/// A hosts file that the `probenet` runs of a test see as `/etc/hosts`, so that a test can give a name several
/// addresses: each run gets a private mount namespace (`unshare --mount`) with the file bind-mounted over
/// `/etc/hosts`, as `ip netns exec` does with `/etc/netns/NS/hosts`. The machine's own `/etc/hosts` is never
/// touched, and the mount goes with the run's process.
#[derive(Debug)]
pub struct Hosts {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Hosts {
    /// A hosts file of `lines` (`127.0.0.2 multi.test`...), or `None` after printing a `skip:` line when this
    /// machine cannot mount it for a run (not root, no `unshare`).
    pub fn new_or_skip(test: &str, lines: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, lines).unwrap();
        let probe = std::process::Command::new("unshare")
            .args(["--mount", "--", "sh", "-c", "mount --bind \"$0\" /etc/hosts"])
            .arg(&path)
            .output();
        match probe {
            Ok(output) if output.status.success() => Some(Self { _dir: dir, path }),
            Ok(output) => {
                println!("skip: {test}: cannot mount a hosts file: {}", String::from_utf8_lossy(&output.stderr).trim());
                None
            }
            Err(error) => {
                println!("skip: {test}: no `unshare`: {error}");
                None
            }
        }
    }

    /// `probenet run CONFIG --output json EXTRA...` seeing this hosts file as `/etc/hosts`.
    pub async fn run_json(&self, config: &Config, extra: &[&str]) -> Output {
        let mut command = tokio::process::Command::new("unshare");
        command
            .args(["--mount", "--", "sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\""])
            .arg(&self.path)
            .arg(env!("CARGO_BIN_EXE_probenet"));
        let path = config.path.to_str().unwrap();
        probenet_as(command, ["run", path, "--output", "json"].iter().chain(extra)).output().await
    }
}

/// Writes `yaml` to a temporary config and runs it with `--output json`.
pub async fn run_json(yaml: &str) -> Output {
    Config::new(yaml).run_json(&[]).await
}

/// A one-check config: an `http` check `name` on `url` with a 5s timeout; `http_extra` holds more lines of its
/// `http` block, written unindented (`method: POST\nexpect: {status: [201]}`).
pub fn http_check(name: &str, url: &str, http_extra: &str) -> String {
    let mut yaml = format!("checks:\n  - name: {name}\n    timeout: 5s\n    http:\n      url: \"{url}\"\n");
    for line in http_extra.lines().filter(|line| !line.trim().is_empty()) {
        yaml.push_str("      ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    yaml
}

/// A port on 127.0.0.1 that nothing listens on (it was bound, then released).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// The phase `name` of a JSON result, in seconds (panics when the phase is missing).
#[track_caller]
pub fn phase(result: &Value, name: &str) -> f64 {
    result["phases"][name].as_f64().unwrap_or_else(|| panic!("no phase {name:?} in {result}"))
}

/// The assertion `name` of a JSON result.
#[track_caller]
pub fn assertion<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["assertions"]
        .as_array()
        .and_then(|all| all.iter().find(|assertion| assertion["name"] == name))
        .unwrap_or_else(|| panic!("no assertion {name:?} in {result}"))
}

// ---------------------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------------------

/// A test certificate authority.
#[derive(Debug)]
pub struct Pki {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate (signed by a [`Pki`]) and its key.
#[derive(Debug)]
pub struct Leaf {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Leaf {
    /// A rustls server configuration presenting this certificate (for servers that are not [`Server`]s).
    pub fn server_config(self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert], key)
            .unwrap();
        Arc::new(config)
    }
}

impl Pki {
    /// A fresh CA, valid from 2000 to 2099.
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "probenet test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2099, 12, 31);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `names` (DNS names or IP addresses), valid between the two dates (year, month, day).
    pub fn leaf(&self, names: &[&str], not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Leaf {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "probenet test server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert: cert.der().clone(), key: key.serialize_der() }
    }

    /// A valid leaf for `localhost` and `127.0.0.1`.
    pub fn valid_leaf(&self) -> Leaf {
        self.leaf(&["localhost", "127.0.0.1"], (2000, 1, 1), (2099, 12, 31))
    }

    /// A leaf for `localhost` and `127.0.0.1` that expired in 2001.
    pub fn expired_leaf(&self) -> Leaf {
        self.leaf(&["localhost", "127.0.0.1"], (2000, 1, 1), (2001, 1, 1))
    }

    /// A valid leaf for `other.test` only.
    pub fn wrong_host_leaf(&self) -> Leaf {
        self.leaf(&["other.test"], (2000, 1, 1), (2099, 12, 31))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------------------

/// What a path answers.
#[derive(Debug, Clone)]
enum Route {
    /// A fixed status, headers and body.
    Fixed { status: u16, headers: Vec<(String, String)>, body: String },
    /// A redirect to `location`.
    Redirect { status: u16, location: String },
    /// Sleeps before sending the response head.
    SlowHead { delay: Duration, body: String },
    /// Sends the head, then `chunks` chunks, sleeping `gap` before each.
    Trickle { chunks: usize, gap: Duration },
    /// Streams `bytes` bytes of `x`.
    Huge { bytes: usize },
    /// Answers 200 with the request method, path, headers and body as text.
    Echo,
    /// Answers 200 only when the `Authorization` header is exactly this, else 401.
    Auth { authorization: String },
}

/// How the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocols {
    /// HTTP/1.1 and HTTP/2 (over TLS chosen by ALPN, over TCP by the client's preface).
    Both,
    /// HTTP/1.1 only (over TLS, only `http/1.1` is offered by ALPN).
    Http1Only,
}

/// A test server being configured; [`ServerBuilder::start`] starts it.
#[derive(Debug)]
pub struct ServerBuilder {
    routes: HashMap<String, Route>,
    tls: Option<Leaf>,
    protocols: Protocols,
}

/// A running test server on 127.0.0.1; it stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    _task: AbortOnDrop,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Server {
    /// A plain-TCP server (HTTP/1.1, and HTTP/2 with prior knowledge).
    pub fn http1() -> ServerBuilder {
        ServerBuilder { routes: HashMap::new(), tls: None, protocols: Protocols::Both }
    }

    /// A TLS server with `leaf`, offering `h2` and `http/1.1` by ALPN.
    pub fn tls(leaf: Leaf) -> ServerBuilder {
        ServerBuilder { routes: HashMap::new(), tls: Some(leaf), protocols: Protocols::Both }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` on this server, such as `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl ServerBuilder {
    fn with(mut self, path: &str, route: Route) -> Self {
        self.routes.insert(path.to_owned(), route);
        self
    }

    /// `path` answers `status` with `body`.
    pub fn route(self, path: &str, status: u16, body: &str) -> Self {
        self.route_with_headers(path, status, &[], body)
    }

    /// `path` answers `status` with these headers and `body`.
    pub fn route_with_headers(self, path: &str, status: u16, headers: &[(&str, &str)], body: &str) -> Self {
        let headers = headers.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        self.with(path, Route::Fixed { status, headers, body: body.to_owned() })
    }

    /// `path` answers 200 with a JSON `body` and `Content-Type: application/json`.
    pub fn json(self, path: &str, body: &str) -> Self {
        self.route_with_headers(path, 200, &[("Content-Type", "application/json")], body)
    }

    /// `path` redirects with `status` to `location` (as written in the `Location` header, where `{origin}`
    /// stands for this server's own `scheme://127.0.0.1:PORT`).
    pub fn redirect(self, path: &str, status: u16, location: &str) -> Self {
        self.with(path, Route::Redirect { status, location: location.to_owned() })
    }

    /// `path` waits `delay` before it answers 200 with `body`.
    pub fn slow_head(self, path: &str, delay: Duration, body: &str) -> Self {
        self.with(path, Route::SlowHead { delay, body: body.to_owned() })
    }

    /// `path` sends its head at once, then `chunks` small chunks with `gap` before each.
    pub fn trickle(self, path: &str, chunks: usize, gap: Duration) -> Self {
        self.with(path, Route::Trickle { chunks, gap })
    }

    /// `path` streams a body of `bytes` bytes.
    pub fn huge(self, path: &str, bytes: usize) -> Self {
        self.with(path, Route::Huge { bytes })
    }

    /// `path` echoes the request (method, path, headers, body) into a text body.
    pub fn echo(self, path: &str) -> Self {
        self.with(path, Route::Echo)
    }

    /// `path` answers 200 when the request's `Authorization` is exactly `authorization`, else 401.
    pub fn auth(self, path: &str, authorization: &str) -> Self {
        self.with(path, Route::Auth { authorization: authorization.to_owned() })
    }

    /// Over TLS, offer only `http/1.1` by ALPN, and speak only HTTP/1.1.
    pub fn http1_only(mut self) -> Self {
        self.protocols = Protocols::Http1Only;
        self
    }

    /// Binds 127.0.0.1 on a free port and serves in the background.
    pub async fn start(self) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = self.tls.map(|leaf| tls_acceptor(leaf, self.protocols));
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let origin = format!("{scheme}://{addr}");
        let state = Arc::new(State { routes: self.routes, hits: hits.clone(), origin });
        let protocols = self.protocols;
        let task = tokio::spawn(async move {
            // Dropping this set (when the accept loop is aborted) aborts every connection too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (state, acceptor) = (state.clone(), acceptor.clone());
                connections.spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), request));
                    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    if protocols == Protocols::Http1Only {
                        builder = builder.http1_only();
                    }
                    match acceptor {
                        Some(acceptor) => {
                            // Handshake failures are expected in the tests that present a bad certificate.
                            let Ok(stream) = acceptor.accept(stream).await else { return };
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Server { addr, scheme, hits, _task: AbortOnDrop(task) }
    }
}

fn tls_acceptor(leaf: Leaf, protocols: Protocols) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.cert], key)
        .unwrap();
    config.alpn_protocols = match protocols {
        Protocols::Both => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Protocols::Http1Only => vec![b"http/1.1".to_vec()],
    };
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[derive(Debug)]
struct State {
    routes: HashMap<String, Route>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    origin: String,
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<TestBody>, Infallible> {
    let path = request.uri().path().to_owned();
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let Some(route) = state.routes.get(&path).cloned() else {
        return Ok(respond(404, &[], TestBody::text("no such route")));
    };
    let response = match route {
        Route::Fixed { status, headers, body } => {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            respond(status, &headers, TestBody::text(&body))
        }
        Route::Redirect { status, location } => {
            let location = location.replace("{origin}", &state.origin);
            respond(status, &[("Location", &location)], TestBody::text(""))
        }
        Route::SlowHead { delay, body } => {
            tokio::time::sleep(delay).await;
            respond(200, &[], TestBody::text(&body))
        }
        Route::Trickle { chunks, gap } => {
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                for i in 0..chunks {
                    tokio::time::sleep(gap).await;
                    if tx.send(Bytes::from(format!("chunk {i}\n"))).await.is_err() {
                        return;
                    }
                }
            });
            respond(200, &[], TestBody::Channel(rx))
        }
        Route::Huge { bytes } => {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                const CHUNK: usize = 64 << 10;
                let chunk = Bytes::from(vec![b'x'; CHUNK]);
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(CHUNK);
                    // The client stops reading at its body limit; then this send fails and streaming stops.
                    if tx.send(chunk.slice(..n)).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            });
            respond(200, &[], TestBody::Channel(rx))
        }
        Route::Echo => {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.map(|body| body.to_bytes()).unwrap_or_default();
            let mut text = format!("{} {}\n", parts.method, parts.uri.path());
            for (name, value) in &parts.headers {
                text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
            }
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&body));
            respond(200, &[], TestBody::text(&text))
        }
        Route::Auth { authorization } => {
            let given = request.headers().get(http::header::AUTHORIZATION).map(|value| value.as_bytes().to_vec());
            if given.as_deref() == Some(authorization.as_bytes()) {
                respond(200, &[], TestBody::text("authorized"))
            } else {
                respond(401, &[("WWW-Authenticate", "Basic realm=\"test\"")], TestBody::text("unauthorized"))
            }
        }
    };
    Ok(response)
}

fn respond(status: u16, headers: &[(&str, &str)], body: TestBody) -> Response<TestBody> {
    let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(body).unwrap()
}

/// A response body: all at once, or chunks from a channel as a task produces them.
#[derive(Debug)]
enum TestBody {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
}

impl TestBody {
    fn text(text: &str) -> Self {
        Self::Full(Some(Bytes::from(text.to_owned())))
    }
}

impl hyper::body::Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(body) => Poll::Ready(body.take().map(|bytes| Ok(Frame::data(bytes)))),
            Self::Channel(rx) => rx.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(body) => SizeHint::with_exact(body.as_ref().map_or(0, |bytes| bytes.len() as u64)),
            Self::Channel(_) => SizeHint::default(),
        }
    }
}
