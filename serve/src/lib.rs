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

/// A response body that keeps its request in flight until it has been sent or dropped.
struct Counted {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Counted {
    type Data = <axum::body::Body as hyper::body::Body>::Data;
    type Error = <axum::body::Body as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
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
                // In flight until its body has been sent: a server-sent event stream is a request, not an idle
                // connection to close after `limits.idle`.
                let response = response.await;
                response.map(|response| response.map(|body| Counted { body, _in_flight: guard }))
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

/// A `/metrics` answer in the Prometheus text format, sent piece by piece (each piece dropped once written),
/// so a large exposition is never copied into one more buffer.
pub fn exposition(chunks: Vec<String>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let body =
        axum::body::Body::from_stream(futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>)));
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// Completes once `stop` is true (at once if it already is).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use axum::body::Bytes;
    use hyper::body::Frame;
    use std::future::Future as _;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A body of five chunks 300 ms apart (an event stream, a slow download).
    struct Slow {
        left: u32,
        sleep: Pin<Box<tokio::time::Sleep>>,
    }

    impl hyper::body::Body for Slow {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.left -= 1;
            self.sleep.as_mut().reset(Instant::now() + Duration::from_millis(300));
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"tick\n")))))
        }
    }

    #[tokio::test]
    async fn a_response_still_being_sent_keeps_its_connection_open_past_the_idle_limit() {
        let router = Router::new().route(
            "/slow",
            axum::routing::get(|| async {
                axum::body::Body::new(Slow { left: 5, sleep: Box::pin(tokio::time::sleep(Duration::ZERO)) })
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
        let addr = listener.local_addr().unwrap_or_else(|error| panic!("{error}"));
        let (_stop, stopped) = watch::channel(false);
        let limits = Limits { idle: Duration::from_millis(500), ..Limits::default() };
        tokio::spawn(serve(listener, None, router, limits, stopped));

        let mut client = TcpStream::connect(addr).await.unwrap_or_else(|error| panic!("{error}"));
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let mut response = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut response)).await;
        assert!(read.is_ok(), "the response did not end");
        let text = String::from_utf8_lossy(&response);
        // Every chunk and the end of the chunked body, 1.2 s after the start (more than the idle 500 ms).
        assert_eq!(text.matches("tick").count(), 5, "{text}");
        assert!(text.ends_with("0\r\n\r\n"), "{text}");
    }
}
