//! The scheduler's HTTP client: the calls of `probenet_checks::wire` with the prober's bearer token, the CA it
//! trusts, the classification of failures (replica down, transient, unknown prober, refused), the move to the
//! next replica, and retry backoff.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use probenet_checks::Kind;
use probenet_checks::wire::{
    Ack, Assignments, Heartbeat, PROTOCOL_VERSION, ProberReport, Register, Registered, ResultBatch, RunResult,
};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::replicas::{Replica, Replicas, expand, parse_list};

/// How long to wait for a TCP (and TLS) connection to the scheduler.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call other than the long poll may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Extra time a long poll may take beyond the wait it asks for.
const POLL_SLACK: Duration = Duration::from_secs(15);

/// Why a call to the scheduler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// 401 or 403: the token is wrong, revoked or bound to another region. Fatal.
    #[error("the scheduler refused this prober's token (HTTP {0}); check the token file and the token's region")]
    Unauthorized(u16),
    /// 404 or 410: the scheduler does not know this prober (it restarted, or the lease expired).
    #[error("the scheduler does not know this prober (HTTP {0})")]
    Unknown(u16),
    /// A connection error, a timeout, a 5xx, 408 or 429: worth retrying.
    #[error("{0}")]
    Transient(String),
    /// Another 4xx: the request itself is refused; retrying it will not help.
    #[error("the scheduler refused the request (HTTP {status}): {body}")]
    Rejected {
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
}

/// Why a [`Client`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The scheduler URL is not usable.
    #[error("invalid scheduler url {url:?}: {message}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use the CA file {path}: {message}")]
    Ca {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The token cannot be sent in a header.
    #[error("the token is empty or holds characters that cannot be sent in a header")]
    Token,
    /// The HTTP client could not be built.
    #[error("cannot build the http client: {0}")]
    Build(String),
}

/// A client of the scheduler replicas, for one prober. Cheap to share behind an `Arc`.
///
/// Every call goes to the replica in use; on a connection error, a timeout or a 5xx it moves on to the next
/// replica and tries again there, each replica at most once per call, so a call makes at most as many
/// attempts as there are replicas before its error goes back to the caller (who backs off). While a replica
/// answers, every call sticks to it.
pub struct Client {
    replicas: Replicas,
    auth: HeaderValue,
    name: String,
    region: String,
    /// Whether the last call reached a scheduler (an answer, even a refusal) rather than no replica at all.
    reachable: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of every log line.
        let replicas: Vec<String> = (0..self.replicas.len()).map(|index| self.replicas.get(index).describe()).collect();
        f.debug_struct("Client").field("replicas", &replicas).field("name", &self.name).finish_non_exhaustive()
    }
}

/// Why an attempt on one replica failed.
enum Failure {
    /// The replica did not answer usefully (connection error, timeout, 5xx): try the next one.
    Down(String),
    /// An answer that another replica would give too (refused token, unknown prober, conflict...).
    Call(CallError),
}

impl Client {
    /// A client for the scheduler replicas `schedulers` (each `https://host:port`, or `http://` to a loopback
    /// address only, so a token never crosses a network in clear; an item may be a comma-separated list),
    /// trusting only the certificates of `ca` if given (else the system's roots). Names are resolved at each
    /// connection; [`Client::resolving`] turns a name with several addresses into several replicas.
    pub fn new(
        schedulers: &[impl AsRef<str>],
        token: &str,
        ca: Option<&Path>,
        name: &str,
        region: &str,
    ) -> Result<Self, ClientError> {
        let targets = parse_list(schedulers)?.into_iter().map(|url| (url, None)).collect();
        Self::build(targets, token, ca, name, region, Arc::default())
    }

    /// [`Client::new`], with each scheduler name that resolves to several addresses (`overrides`, host name
    /// to addresses, replacing DNS for the names it holds) made one replica per address: connections go to
    /// that address while TLS and the `Host` header keep the name. Moves between replicas are counted in
    /// `switches`.
    pub(crate) async fn resolving(
        schedulers: &[impl AsRef<str>],
        overrides: &HashMap<String, Vec<SocketAddr>>,
        token: &str,
        ca: Option<&Path>,
        identity: (&str, &str),
        switches: Arc<AtomicU64>,
    ) -> Result<Self, ClientError> {
        let urls = parse_list(schedulers)?;
        let targets = expand(urls, overrides).await;
        Self::build(targets, token, ca, identity.0, identity.1, switches)
    }

    fn build(
        targets: Vec<(Url, Option<SocketAddr>)>,
        token: &str,
        ca: Option<&Path>,
        name: &str,
        region: &str,
        switches: Arc<AtomicU64>,
    ) -> Result<Self, ClientError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::Token);
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::Token)?;
        auth.set_sensitive(true);
        let certs = match ca {
            Some(path) => {
                let ca_error = |message: String| ClientError::Ca { path: path.display().to_string(), message };
                let pem = std::fs::read(path).map_err(|error| ca_error(error.to_string()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| ca_error(error.to_string()))?;
                if certs.is_empty() {
                    return Err(ca_error("no PEM certificate in it".to_owned()));
                }
                Some(certs)
            }
            None => None,
        };
        let mut list = Vec::with_capacity(targets.len());
        for (base, addr) in targets {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .user_agent(concat!("probenet-prober/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none());
            if let Some(certs) = &certs {
                builder = builder.tls_certs_only(certs.clone());
            }
            if let (Some(addr), Some(host)) = (addr, base.host_str()) {
                builder = builder.resolve(host, addr);
            }
            let http = builder.build().map_err(|error| ClientError::Build(describe(&error)))?;
            list.push(Replica { base, addr, http });
        }
        Ok(Self {
            replicas: Replicas::new(list, switches),
            auth,
            name: name.to_owned(),
            region: region.to_owned(),
            reachable: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The prober's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The replica in use: its URL, and the address it is pinned to if any.
    pub fn current(&self) -> String {
        self.replicas.get(self.replicas.current()).describe()
    }

    /// The `probenet_prober_scheduler_*` families that say which replica is in use.
    /// Whether the last call reached a scheduler replica.
    pub(crate) fn reachable(&self) -> bool {
        self.reachable.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn families(&self) -> Vec<probenet_exporters::FamilySamples> {
        self.replicas.families()
    }

    /// `POST /v1/register`.
    pub async fn register(&self) -> Result<Registered, CallError> {
        let body = Register {
            name: self.name.clone(),
            region: self.region.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: PROTOCOL_VERSION,
            kinds: Kind::ALL.to_vec(),
        };
        self.json(Method::POST, "v1/register", &body, CALL_TIMEOUT).await
    }

    /// `POST /v1/heartbeat`: renews the lease, and tells how the prober is doing.
    pub async fn heartbeat(&self, report: ProberReport) -> Result<Registered, CallError> {
        let beat = Heartbeat { report: Some(report), ..self.identity() };
        self.json(Method::POST, "v1/heartbeat", &beat, CALL_TIMEOUT).await
    }

    /// `POST /v1/deregister`: hands the prober's work back at once. `timeout` bounds the whole call, moves
    /// between replicas included.
    pub async fn deregister(&self, timeout: Duration) -> Result<(), CallError> {
        let identity = self.identity();
        let call = self.call(|replica| {
            let identity = &identity;
            async move {
                let request = replica.http.post(url(replica, "v1/deregister")?).json(identity).timeout(timeout);
                self.send(request).await.map(drop)
            }
        });
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or_else(|_| Err(CallError::Transient("the scheduler did not answer in time".to_owned())))
    }

    /// `GET /v1/assignments`: answers at once when the scheduler's generation differs from `generation`,
    /// else holds up to `wait` for a change.
    pub async fn assignments(&self, generation: u64, wait: Duration) -> Result<Assignments, CallError> {
        self.call(|replica| async move {
            let mut url = url(replica, "v1/assignments")?;
            url.query_pairs_mut()
                .append_pair("prober", &self.name)
                .append_pair("generation", &generation.to_string())
                .append_pair("wait_seconds", &wait.as_secs().to_string());
            let request = replica.http.get(url).timeout(wait + POLL_SLACK);
            let response = self.send(request).await?;
            decode(response).await
        })
        .await
    }

    /// `POST /v1/results` with a batch already serialized by [`encode_batch`]. A batch a replica did not
    /// acknowledge goes to the next one: ingest is idempotent on the run, so a batch that reached two
    /// replicas counts once.
    pub async fn results(&self, body: Vec<u8>) -> Result<Ack, CallError> {
        let body = bytes::Bytes::from(body);
        self.call(|replica| {
            let body = body.clone();
            async move {
                let request = replica
                    .http
                    .post(url(replica, "v1/results")?)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .timeout(CALL_TIMEOUT);
                let response = self.send(request).await?;
                decode(response).await
            }
        })
        .await
    }

    fn identity(&self) -> Heartbeat {
        Heartbeat { name: self.name.clone(), region: self.region.clone(), report: None }
    }

    async fn json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, CallError> {
        self.call(|replica| {
            let method = method.clone();
            async move {
                let request = replica.http.request(method, url(replica, path)?).json(body).timeout(timeout);
                let response = self.send(request).await?;
                decode(response).await
            }
        })
        .await
    }

    /// Makes `attempt` on the replica in use; when that replica is down, moves on and makes it on the next,
    /// each replica at most once.
    async fn call<'s, T, F, Fut>(&'s self, attempt: F) -> Result<T, CallError>
    where
        F: Fn(&'s Replica) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut index = self.replicas.current();
        let mut last = String::new();
        for _ in 0..self.replicas.len() {
            match attempt(self.replicas.get(index)).await {
                Ok(value) => {
                    self.replicas.answered(index);
                    self.reachable.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Ok(value);
                }
                Err(Failure::Call(error)) => {
                    self.replicas.answered(index);
                    self.reachable.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(error);
                }
                Err(Failure::Down(message)) => {
                    index = self.replicas.fail_over(index, &message);
                    last = message;
                }
            }
        }
        self.reachable.store(false, std::sync::atomic::Ordering::Relaxed);
        if self.replicas.len() > 1 {
            last = format!("no scheduler replica answers (the last: {last})");
        }
        Err(CallError::Transient(last))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        let response = request
            .header(AUTHORIZATION, self.auth.clone())
            .send()
            .await
            .map_err(|error| Failure::Down(describe(&error)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let code = status.as_u16();
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Failure::Call(CallError::Unauthorized(code)),
            StatusCode::NOT_FOUND | StatusCode::GONE => Failure::Call(CallError::Unknown(code)),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Failure::Call(CallError::Transient(format!("the scheduler answered {status}")))
            }
            // The name is held by another registration (a restarted prober's old lease, or a squatter): it
            // frees when that lease ends, so this is retried, never a reason to stop (nor to move: every
            // replica shares the registry).
            StatusCode::CONFLICT => {
                let text: String = response.text().await.unwrap_or_default().chars().take(300).collect();
                Failure::Call(CallError::Transient(format!("the scheduler answered {status}: {text}")))
            }
            // A 5xx, 503 "not ready" included: this replica cannot serve now; another may. The reason travels to
            // the log (a region without a config view is refused with 503 and why).
            _ if status.is_server_error() => {
                let text: String = response.text().await.unwrap_or_default().chars().take(300).collect();
                Failure::Down(format!("the scheduler answered {status}: {text}"))
            }
            _ => {
                let text = response.text().await.unwrap_or_default();
                Failure::Call(CallError::Rejected { status: code, body: text.chars().take(300).collect() })
            }
        })
    }
}

fn url(replica: &Replica, path: &str) -> Result<Url, Failure> {
    replica.base.join(path).map_err(|error| Failure::Call(CallError::Transient(format!("bad url: {error}"))))
}

/// Serializes a batch of results as `POST /v1/results` sends it, keeping the results for the caller (they
/// go to the spool if the post fails).
pub fn encode_batch(prober: &str, results: &mut Vec<RunResult>) -> Vec<u8> {
    let batch = ResultBatch { prober: prober.to_owned(), results: std::mem::take(results) };
    let body = serde_json::to_vec(&batch).unwrap_or_default();
    *results = batch.results;
    body
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, Failure> {
    // An answer cut short is a replica going away; an answer that does not parse is not.
    let bytes = response.bytes().await.map_err(|error| Failure::Down(describe(&error)))?;
    serde_json::from_slice(&bytes).map_err(|error| {
        Failure::Call(CallError::Transient(format!("the scheduler's answer is not what the protocol says: {error}")))
    })
}

/// A readable message for a reqwest error, with its causes (never a header: the token stays out).
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut message = if error.is_timeout() {
        "the scheduler did not answer in time".to_owned()
    } else if error.is_connect() {
        "cannot connect to the scheduler".to_owned()
    } else {
        "request to the scheduler failed".to_owned()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Capped exponential backoff with jitter: each delay is drawn from [d/2, d], d doubling up to the cap.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max, next: min }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let current = self.next;
        self.next = (current * 2).min(self.max);
        let half = current / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_millis(random_u64() % jitter_ms)
    }

    /// After a success: the next failure starts from the minimum again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// A random number for jitter, from the standard library's per-process random hash keys.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
        assert!(delays.iter().all(|delay| *delay <= Duration::from_secs(2)));
        assert!(delays[9] >= Duration::from_secs(1));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let client = Client::new(&["http://127.0.0.1:1"], " s3cr3t-token\n", None, "p1", "eu").unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t"));
        assert!(Client::new(&["http://127.0.0.1:1"], "  \n", None, "p1", "eu").is_err());
        assert!(Client::new(&["http://127.0.0.1:1"], "a\nb", None, "p1", "eu").is_err());
    }

    #[test]
    fn encoding_a_batch_keeps_the_results() {
        let mut results = Vec::new();
        let body = encode_batch("p1", &mut results);
        let batch: ResultBatch = serde_json::from_slice(&body).unwrap();
        assert_eq!(batch.prober, "p1");
        assert!(results.is_empty());
    }
}
