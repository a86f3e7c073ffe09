//! The harness: a database with the schema, contenders on their own pools, bounded waits, and a TCP proxy
//! that can freeze (a database that stops answering without closing anything).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use probenet_scheduler::ha::{self, Elector, LeaderHandle, Lease, Tls};
use probenet_testkit::postgres::Postgres;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The lease the tests run with: short, so takeovers take seconds.
pub const LEASE: Duration = Duration::from_secs(2);

/// A fresh server with the schema, or `None` (after a `skip:` line) when PostgreSQL is not installed.
pub async fn database(test: &str) -> Option<Postgres> {
    let pg = blocking(move || Postgres::start_or_skip(test))?;
    let pool = pool(&pg.url());
    let mut client = pool.get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    ha::migrate(&mut client).await.unwrap_or_else(|error| panic!("migrate: {error}"));
    Some(pg)
}

/// A pool of its own (one per contender: each is a replica).
pub fn pool(url: &str) -> Pool {
    ha::connect(url, Tls::Disabled, 4).unwrap_or_else(|error| panic!("pool: {error}"))
}

/// A contender named `holder` on its own pool to `url`.
pub fn contender(url: &str, holder: &str) -> LeaderHandle {
    Elector::new(Lease::new(holder, LEASE), pool(url)).spawn()
}

/// Runs blocking work (starting or stopping the server) without stalling the runtime's other tasks.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Polls `check` every 10 ms until it holds; panics after `within`. Returns how long it took.
pub async fn until(what: &str, within: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    for _ in 0..=within.as_millis() / 10 {
        if check() {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within {within:?}");
}

/// The one leader among `handles` (index and generation), asserting there is at most one.
pub fn leader(handles: &[&LeaderHandle]) -> Option<(usize, u64)> {
    let leaders: Vec<(usize, u64)> =
        handles.iter().enumerate().filter_map(|(i, handle)| handle.generation().map(|g| (i, g))).collect();
    assert!(leaders.len() <= 1, "more than one leader: {leaders:?}");
    leaders.first().copied()
}

/// Awaits `future`, panicking after `within`.
pub async fn bounded<T>(what: &str, within: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(within, future).await.unwrap_or_else(|_| panic!("{what}: not within {within:?}"))
}

/// A loopback TCP proxy to `upstream`; [`freeze`](Self::freeze) stops moving bytes in both directions on every
/// connection while keeping them open, as a database behind a dead network path would.
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    frozen: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("bind: {error}"));
        let port = listener.local_addr().unwrap_or_else(|error| panic!("addr: {error}")).port();
        let frozen = Arc::new(watch::channel(false).0);
        let sender = frozen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pipe(client_read, server_write, sender.subscribe()));
                tokio::spawn(pipe(server_read, client_write, sender.subscribe()));
            }
        });
        Self { port, frozen, task }
    }

    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// The URL of database `postgres` through this proxy.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if frozen.wait_for(|frozen| !frozen).await.is_err() {
            return;
        }
        let Ok(n) = from.read(&mut buf).await else { return };
        if n == 0 {
            return;
        }
        if frozen.wait_for(|frozen| !frozen).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
