//! Phase timings from the kernel's clocks (`connect` from the SYN round trip, `processing` from the receive
//! stamp of the response's first byte) against real local servers that hold each request for a known time:
//! over HTTP/1.1, and over TLS with HTTP/1.1 and HTTP/2 (where session tickets and SETTINGS come before the
//! response), the stopwatch fallback, and a prober whose every core is kept busy.
//!
//! Bounds are generous and only ones the physics guarantees: a loaded 2-core machine delays every task.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use probenet_checks::{Outcome, load_str, run_once};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How long the servers hold every request before answering.
const HOLD: Duration = Duration::from_millis(100);

/// Loads a one-check config and runs it once.
async fn run(yaml: &str) -> Outcome {
    let config = load_str("test.yaml", yaml).unwrap_or_else(|errors| panic!("invalid test config: {errors:?}"));
    let outcome = run_once(&config.checks[0], "local").await;
    println!("{}", serde_json::to_string(&outcome).unwrap());
    assert!(outcome.success(), "{outcome:?}");
    outcome
}

fn phase(outcome: &Outcome, name: &str) -> Duration {
    let seconds = outcome.phases.iter().find(|phase| phase.name == name).map(|phase| phase.seconds);
    Duration::from_secs_f64(seconds.unwrap_or_else(|| panic!("no {name} phase")))
}

fn clocks(outcome: &Outcome) -> &Value {
    &outcome.details["clocks"]
}

/// When the plain server finished reading a request, when it started writing the answer and when it had
/// written it.
type Holds = Arc<Mutex<Vec<(Instant, Instant, Instant)>>>;

/// An HTTP/1.1 server on loopback that reads a request head, holds it for `HOLD`, then answers `ok`; it notes
/// when it read the request and when it wrote the answer.
async fn plain_server() -> (SocketAddr, Holds) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holds: Holds = Arc::default();
    let noted = holds.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let noted = noted.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                while stream.read_line(&mut line).await.unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let read = Instant::now();
                tokio::time::sleep(HOLD).await;
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let writing = Instant::now();
                if stream.get_mut().write_all(answer).await.is_ok() {
                    noted.lock().unwrap().push((read, writing, Instant::now()));
                }
            });
        }
    });
    (addr, holds)
}

/// An HTTPS server (HTTP/1.1 and HTTP/2 by ALPN, TLS 1.3, a self-signed certificate) whose handler holds each
/// request for `HOLD`.
async fn tls_server() -> SocketAddr {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = service_fn(|_request| async {
                    tokio::time::sleep(HOLD).await;
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn http_connect_and_processing_come_from_the_kernel() {
    let (addr, _) = plain_server().await;
    let outcome = run(&format!("checks:\n  - name: k\n    http: {{url: \"http://{addr}/\"}}\n")).await;
    assert_eq!(
        clocks(&outcome),
        &json!({"resolve": "stopwatch", "connect": "kernel_rtt", "processing": "kernel_rx", "transfer": "stopwatch"})
    );
    let processing = phase(&outcome, "processing");
    assert!(processing >= HOLD && processing < HOLD * 4, "{processing:?}");
    assert!(phase(&outcome, "connect") < Duration::from_millis(50));
}

#[tokio::test]
async fn over_tls_the_response_start_is_found_past_session_tickets_and_http2_settings() {
    let addr = tls_server().await;
    for (version, expected) in [("1.1", "1.1"), ("2", "2")] {
        let yaml = format!(
            "checks:\n  - name: k\n    http: {{url: \"https://{addr}/\", http_version: \"{version}\", \
             tls: {{insecure: true}}}}\n"
        );
        let outcome = run(&yaml).await;
        assert_eq!(outcome.details["http_version"], expected);
        assert_eq!(
            clocks(&outcome),
            &json!({"resolve": "stopwatch", "connect": "kernel_rtt", "tls": "stopwatch", "processing": "kernel_rx",
                    "transfer": "stopwatch"}),
            "HTTP/{version}"
        );
        // The session tickets and the server's SETTINGS arrive within a round trip of the handshake: taken
        // for the response, they would make `processing` far shorter than the hold.
        let processing = phase(&outcome, "processing");
        assert!(processing >= HOLD && processing < HOLD * 4, "HTTP/{version}: {processing:?}");
    }
}

#[tokio::test]
async fn without_the_kernel_clocks_every_phase_is_the_stopwatch_and_says_so() {
    let (addr, _) = plain_server().await;
    probenet_checks::clock::stopwatch_only_on_this_thread(true);
    let outcome = run(&format!("checks:\n  - name: k\n    http: {{url: \"http://{addr}/\"}}\n")).await;
    probenet_checks::clock::stopwatch_only_on_this_thread(false);
    assert_eq!(
        clocks(&outcome),
        &json!({"resolve": "stopwatch", "connect": "stopwatch", "processing": "stopwatch", "transfer": "stopwatch"})
    );
    let processing = phase(&outcome, "processing");
    assert!(processing >= HOLD && processing < HOLD * 4, "{processing:?}");
}

/// Keeps every core busy (two spinning threads per core) until dropped, and for `limit` at most.
struct Burner {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Burner {
    fn start(limit: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let deadline = Instant::now() + limit;
        let threads = (0..cores * 2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        for i in 0..10_000u64 {
                            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
                        }
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn on_a_busy_prober_kernel_processing_stays_within_what_the_server_saw() {
    let (addr, holds) = plain_server().await;
    let yaml = format!("checks:\n  - name: k\n    http: {{url: \"http://{addr}/\"}}\n");
    let burner = Burner::start(Duration::from_secs(8));
    let mut gaps = Vec::new();
    for _ in 0..5 {
        let before = Instant::now();
        let outcome = run(&yaml).await;
        assert_eq!(clocks(&outcome)["processing"], "kernel_rx");
        let processing = phase(&outcome, "processing");
        // The server notes its times after the write, maybe after the client has the answer: wait for them.
        let mut noted = None;
        for _ in 0..2000 {
            noted = holds.lock().unwrap().pop();
            if noted.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (read, writing, written) = noted.unwrap();
        // The truth lies between what the server surely held (from after the request had arrived, as it was
        // read, to before the answer was written) and the time from the run's start (before the request left)
        // to the answer's write (on loopback the answer is in the client's socket when the write returns); a
        // stopwatch would add the prober's scheduling delay after the answer arrived, beyond the upper bound.
        let (held, upper) = (writing - read, written - before);
        let margin = Duration::from_millis(1);
        assert!(processing >= HOLD, "{processing:?}");
        assert!(processing + margin >= held && processing <= upper + margin, "{processing:?} {held:?} {upper:?}");
        gaps.push(processing - held.min(processing));
    }
    drop(burner);
    gaps.sort();
    println!("kernel processing minus the server's hold, busy prober: {gaps:?}");
    assert!(gaps[gaps.len() / 2] < Duration::from_millis(50), "{gaps:?}");
}

#[tokio::test]
async fn a_tcp_check_connects_on_the_kernel_clock_too() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    let yaml = format!("checks:\n  - name: k\n    tcp: {{target: \"{addr}\"}}\n");
    let outcome = run(&yaml).await;
    assert_eq!(clocks(&outcome), &json!({"resolve": "stopwatch", "connect": "kernel_rtt"}));
    probenet_checks::clock::stopwatch_only_on_this_thread(true);
    let outcome = run(&yaml).await;
    probenet_checks::clock::stopwatch_only_on_this_thread(false);
    assert_eq!(clocks(&outcome), &json!({"resolve": "stopwatch", "connect": "stopwatch"}));
}
