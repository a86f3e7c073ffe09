//! probenet's HTTP server for its own endpoints (the scheduler's API and dashboard, the `/metrics` ports of
//! the scheduler and the probers). Serving a router: a TCP accept loop with a cap on connections (in all and per client address), a rustls
//! handshake per connection (or none in plain-HTTP mode), hyper-util's HTTP/1.1 + h2 server, idle connections
//! closed, and a graceful stop.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections get to finish once the scheduler stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Concurrent requests on one HTTP/2 connection.
const H2_STREAMS: u32 = 64;

/// What one scheduler's server allows its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections in all; past it, new ones are closed at once.
    pub max_connections: usize,
    /// Open connections from one client address.
    pub per_address: usize,
    /// How long a connection may stay open with no request in flight.
    pub idle: Duration,
    /// How long reading one request body may take.
    pub body: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_connections: 2048, per_address: 512, idle: Duration::from_secs(30), body: Duration::from_secs(30) }
    }
}

impl Limits {
    /// The defaults, with the connection cap lowered to fit this process's file descriptor limit (half of it,
    /// so the store, the spool of artifacts and the exporters keep theirs).
    pub fn for_this_process() -> Self {
        let mut limits = Self::default();
        if let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            let fit = usize::try_from(soft / 2).unwrap_or(usize::MAX).max(16);
            limits.max_connections = limits.max_connections.min(fit);
            limits.per_address = limits.per_address.min(limits.max_connections * 3 / 4).max(8);
        }
        limits
    }
}

/// Open connections, in all and per client address.
#[derive(Debug, Default)]
struct Census {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// A connection's place in the census, given back when it closes.
struct Admitted {
    census: Arc<Mutex<Census>>,
    address: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut census = self.census.lock().unwrap_or_else(PoisonError::into_inner);
        census.total -= 1;
        if let Some(count) = census.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                census.by_address.remove(&self.address);
            }
        }
    }
}

fn admit(census: &Arc<Mutex<Census>>, address: IpAddr, limits: &Limits) -> Option<Admitted> {
    let mut counts = census.lock().unwrap_or_else(PoisonError::into_inner);
    let of_address = counts.by_address.get(&address).copied().unwrap_or(0);
    if counts.total >= limits.max_connections || of_address >= limits.per_address {
        return None;
    }
    counts.total += 1;
    *counts.by_address.entry(address).or_default() += 1;
    Some(Admitted { census: census.clone(), address })
}

/// Serves `router` on `listener` until `stop` turns true, then lets open connections finish (bounded).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let census = Arc::new(Mutex::new(Census::default()));
    let mut refused_logged = false;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(admitted) = admit(&census, peer.ip(), &limits) else {
                        // Closed at once: a flood of connections cannot take the descriptors the others need.
                        if !refused_logged {
                            tracing::warn!(%peer, "too many open connections; closing new ones until some end");
                            refused_logged = true;
                        }
                        drop(stream);
                        continue;
                    };
                    refused_logged = false;
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, peer, tls.clone(), router.clone(), limits, stop.clone(), admitted));
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(open = connections.len(), "connections still open at stop; closing them");
        connections.abort_all();
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: Limits,
    stop: watch::Receiver<bool>,
    _admitted: Admitted,
) {
    match tls {
        None => http(stream, router, limits, stop).await,
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => http(stream, router, limits, stop).await,
            Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
    }
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    quiet_since: Mutex<Instant>,
}

/// A request in flight; its end starts the idle clock again.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.quiet_since.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    /// Completes once the connection has had no request in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let since = *self.quiet_since.lock().unwrap_or_else(PoisonError::into_inner);
            if self.in_flight.load(Ordering::SeqCst) == 0 && since.elapsed() >= idle {
                return;
            }
            let wait =
                if self.in_flight.load(Ordering::SeqCst) > 0 { idle } else { idle.saturating_sub(since.elapsed()) };
            tokio::time::sleep(wait.max(Duration::from_millis(50))).await;
        }
    }
}

async fn http<S>(stream: S, router: Router, limits: Limits, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity { in_flight: AtomicUsize::new(0), quiet_since: Mutex::new(Instant::now()) });
    let inner = TowerToHyperService::new(router);
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let guard = InFlight::enter(&activity);
            let response = hyper::service::Service::call(&inner, request);
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client gets 30 s to send its request head (no slow-loris), and idle h2 connections are pinged.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .max_concurrent_streams(H2_STREAMS)
        .max_header_list_size(64 << 10);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        // Nothing asked for a while (an idle keep-alive or h2 connection, or a client that never sent a
        // whole request head): closed, so idle connections cannot pile up.
        () = activity.idle_for(limits.idle) => {
            tracing::debug!("idle connection closed");
        }
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Completes once `stop` is true (at once if it already is).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
