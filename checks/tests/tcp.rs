//! TCP checks against real servers on loopback: an SMTP-like banner server, a Redis-like responder, a refused
//! port, a silent server, one that closes at once and one that floods; `ip_strategy: all` over `localhost`.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use probenet_checks::{Outcome, Reason, State, load_str, run_once};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Loads a one-check config and runs it once.
async fn run(yaml: &str) -> Outcome {
    let config = load_str("test.yaml", yaml).unwrap_or_else(|errors| panic!("invalid test config: {errors:?}"));
    let outcome = run_once(&config.checks[0], "local").await;
    println!("{}", serde_json::to_string_pretty(&outcome).unwrap());
    outcome
}

/// Serves every connection accepted on a loopback port with `serve`, until the test ends.
async fn server<F, Fut>(ip: &str, serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    addr
}

/// An SMTP-like server: a 220 banner, a multi-line 250 to EHLO, 221 to QUIT (then it closes), 500 otherwise.
async fn smtp(stream: TcpStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 probe.test ESMTP ready\r\n").await.is_err() {
        return;
    }
    for _ in 0..20 {
        let Ok(Some(line)) = lines.next_line().await else { return };
        let reply: &[u8] = if line.starts_with("EHLO ") {
            b"250-probe.test greets you\r\n250-SIZE 1000000\r\n250 HELP\r\n"
        } else if line == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else {
            b"500 unknown command\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// A Redis-like server: `AUTH s3cret` gives +OK, `PING` gives +PONG, anything else an error that echoes it.
async fn redis(stream: TcpStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    for _ in 0..20 {
        let Ok(Some(line)) = lines.next_line().await else { return };
        let reply = match line.trim_end_matches('\r') {
            "PING" => "+PONG\r\n".to_owned(),
            "AUTH s3cret" => "+OK\r\n".to_owned(),
            other => format!("-ERR unknown command '{other}'\r\n"),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn names_and_results(outcome: &Outcome) -> Vec<(String, bool)> {
    outcome.assertions.iter().map(|a| (a.name.clone(), a.passed)).collect()
}

#[tokio::test]
async fn smtp_script_passes_and_reports_banner_bytes_and_addresses() {
    let addr = server("127.0.0.1", smtp).await;
    let outcome = run(&format!(
        r#"
checks:
  - name: smtp
    timeout: 5s
    tcp:
      target: "{addr}"
      script:
        - expect: "^220 "
        - send: "EHLO probenet\r\n"
        - expect: "^250 HELP$"
        - send: "QUIT\r\n"
        - expect: "^221"
"#
    ))
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert_eq!(outcome.reason, None);
    assert_eq!(
        names_and_results(&outcome),
        vec![("script[0].expect".into(), true), ("script[2].expect".into(), true), ("script[4].expect".into(), true)]
    );
    assert_eq!(outcome.assertions[0].expected, "/^220 /");
    assert_eq!(outcome.assertions[0].observed, "\"220 probe.test ESMTP ready\"");
    assert_eq!(outcome.assertions[1].observed, "\"250 HELP\"");
    let details = &outcome.details;
    assert_eq!(details["banner"], "220 probe.test ESMTP ready");
    assert_eq!(details["bytes_sent"], ("EHLO probenet\r\n".len() + "QUIT\r\n".len()) as u64);
    let received = ("220 probe.test ESMTP ready\r\n".len()
        + "250-probe.test greets you\r\n250-SIZE 1000000\r\n250 HELP\r\n".len()
        + "221 2.0.0 bye\r\n".len()) as u64;
    assert_eq!(details["bytes_received"], received);
    assert_eq!(details["remote_address"], addr.to_string());
    let local: SocketAddr = details["local_address"].as_str().unwrap().parse().unwrap();
    assert!(local.ip().is_loopback() && local.port() != addr.port());
    assert_eq!(details["steps_run"], 5);
    let phases: Vec<&str> = outcome.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, ["resolve", "connect", "script"]);
    assert!(outcome.phases.iter().all(|p| p.seconds >= 0.0));
}

#[tokio::test]
async fn expect_skips_lines_of_a_multi_line_reply_until_one_matches() {
    let addr = server("127.0.0.1", smtp).await;
    // `^250` matches the first line of the EHLO reply; `^221` must skip the two other 250 lines.
    let outcome = run(&format!(
        "checks:\n  - name: smtp\n    timeout: 5s\n    tcp:\n      target: \"{addr}\"\n      script:\n        \
         - {{expect: \"^220\"}}\n        - {{send: \"EHLO x\\r\\n\"}}\n        - {{expect: \"^250\"}}\n        \
         - {{send: \"QUIT\\r\\n\"}}\n        - {{expect: \"^221\", timeout: 2s}}\n"
    ))
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert_eq!(outcome.assertions[1].observed, "\"250-probe.test greets you\"");
    assert_eq!(outcome.assertions[2].observed, "\"221 2.0.0 bye\"");
}

#[tokio::test]
async fn smtp_failing_expect_reports_what_was_read_and_later_steps_as_not_reached() {
    let addr = server("127.0.0.1", smtp).await;
    let started = Instant::now();
    let outcome = run(&format!(
        r#"
checks:
  - name: smtp
    timeout: 5s
    tcp:
      target: "{addr}"
      script:
        - expect: "^220"
        - send: "EHLO probenet\r\n"
        - expect: "^554 "
          timeout: 300ms
        - send: "QUIT\r\n"
        - expect: "^221"
"#
    ))
    .await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    let error = outcome.error.as_deref().unwrap();
    assert!(error.starts_with("script[2].expect: /^554 / did not match: no match within 300ms"), "{error}");
    assert!(error.contains("250-probe.test greets you"), "the error shows what was read: {error}");
    assert_eq!(
        names_and_results(&outcome),
        vec![("script[0].expect".into(), true), ("script[2].expect".into(), false), ("script[4].expect".into(), false)]
    );
    assert_eq!(outcome.assertions[1].observed, "\"250 HELP\"", "observed is the last line read");
    assert!(outcome.assertions[2].observed.contains("not reached"));
    assert_eq!(outcome.details["steps_run"], 2);
    assert_eq!(outcome.details["bytes_sent"], "EHLO probenet\r\n".len() as u64, "QUIT was never sent");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(4), "{elapsed:?}");
}

#[tokio::test]
async fn redis_ping_pong_with_a_secret_password() {
    let addr = server("127.0.0.1", redis).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("redis-password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let outcome = run(&format!(
        r#"
checks:
  - name: redis
    timeout: 5s
    tcp:
      target: "{addr}"
      script:
        - send: "AUTH ${{file:{}}}\r\n"
        - expect: "^\\+OK$"
        - send: "PING\r\n"
        - expect: "^\\+PONG$"
"#,
        secret.display()
    ))
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert_eq!(outcome.assertions.len(), 2);
    assert_eq!(outcome.assertions[1].observed, "\"+PONG\"");
    assert_eq!(outcome.details["banner"], "+OK", "the first line received");
    assert_eq!(outcome.details["bytes_sent"], ("AUTH s3cret\r\n".len() + "PING\r\n".len()) as u64);
}

#[tokio::test]
async fn a_secret_echoed_by_the_server_is_redacted_from_the_failure() {
    let addr = server("127.0.0.1", redis).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("redis-password");
    std::fs::write(&secret, "hunter22").unwrap();
    let outcome = run(&format!(
        r#"
checks:
  - name: redis
    timeout: 5s
    tcp:
      target: "{addr}"
      script:
        - send: "AUTH ${{file:{}}}\r\n"
        - expect: "^\\+OK"
          timeout: 300ms
"#,
        secret.display()
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    let text = serde_json::to_string(&outcome).unwrap();
    assert!(!text.contains("hunter22"), "the secret leaked: {text}");
    assert!(outcome.error.as_deref().unwrap().contains("-ERR unknown command 'AUTH [redacted]'"));
}

#[tokio::test]
async fn a_refused_connection_fails_with_reason_connect() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let outcome = run(&format!("checks:\n  - name: closed\n    tcp: {{target: \"{addr}\"}}\n")).await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Connect));
    assert!(outcome.error.as_deref().unwrap().starts_with(&format!("connect to {addr}: ")));
    assert!(outcome.assertions.is_empty());
}

#[tokio::test]
async fn connect_only_passes_without_reading() {
    let addr = server("127.0.0.1", |stream| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(stream);
    })
    .await;
    let outcome = run(&format!("checks:\n  - name: open\n    tcp: {{target: \"{addr}\"}}\n")).await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert!(outcome.assertions.is_empty());
    assert_eq!(outcome.details["banner"], serde_json::Value::Null);
    assert_eq!(outcome.details["bytes_received"], 0);
    assert!(outcome.phase("connect").is_some() && outcome.phase("script").is_none());
}

/// Accepts and holds connections without sending a byte.
async fn silent(stream: TcpStream) {
    tokio::time::sleep(Duration::from_secs(30)).await;
    drop(stream);
}

#[tokio::test]
async fn a_silent_server_fails_the_expect_at_the_step_timeout() {
    let addr = server("127.0.0.1", silent).await;
    let started = Instant::now();
    let outcome = run(&format!(
        "checks:\n  - name: silent\n    timeout: 5s\n    tcp:\n      target: \"{addr}\"\n      script:\n        \
         - {{expect: \"^220\", timeout: 300ms}}\n"
    ))
    .await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert!(outcome.error.as_deref().unwrap().ends_with("no match within 300ms; nothing read"));
    assert_eq!(outcome.assertions[0].observed, "nothing");
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(4), "{elapsed:?}");
}

#[tokio::test]
async fn a_silent_server_without_a_step_timeout_hits_the_check_timeout() {
    let addr = server("127.0.0.1", silent).await;
    let started = Instant::now();
    let outcome = run(&format!(
        "checks:\n  - name: silent\n    timeout: 1s\n    tcp:\n      target: \"{addr}\"\n      script:\n        \
         - {{expect: \"^220\"}}\n"
    ))
    .await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.reason, Some(Reason::Timeout));
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(outcome.phase("connect").is_some());
}

#[tokio::test]
async fn a_server_that_closes_at_once_fails_the_expect() {
    let addr = server("127.0.0.1", |stream| async move { drop(stream) }).await;
    let outcome = run(&format!(
        "checks:\n  - name: closing\n    timeout: 5s\n    tcp:\n      target: \"{addr}\"\n      script:\n        \
         - {{expect: \"^220\"}}\n"
    ))
    .await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    let error = outcome.error.as_deref().unwrap();
    assert!(error.contains("the connection closed") || error.contains("reading failed"), "{error}");
    assert_eq!(outcome.details["bytes_received"], 0);
}

#[tokio::test]
async fn a_flood_without_a_match_stops_at_64_kib() {
    let addr = server("127.0.0.1", |mut stream: TcpStream| async move {
        let _ = stream.write_all(&vec![b'x'; 100 * 1024]).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let outcome = run(&format!(
        "checks:\n  - name: flood\n    timeout: 5s\n    tcp:\n      target: \"{addr}\"\n      script:\n        \
         - {{expect: \"^220\"}}\n"
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert!(outcome.error.as_deref().unwrap().contains("64 KiB read without a match"));
    assert_eq!(outcome.details["bytes_received"], 64 * 1024);
    assert!(outcome.error.as_deref().unwrap().len() < 400, "the error stays short");
}

#[tokio::test]
async fn ipv6_loopback_when_available() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        println!("note: no IPv6 loopback here; skipping");
        return;
    };
    drop(listener);
    let addr = server("::1", smtp).await;
    let outcome = run(&format!(
        "checks:\n  - name: smtp6\n    timeout: 5s\n    tcp:\n      target: \"[::1]:{}\"\n      ip_version: ipv6\n      \
         script: [{{expect: \"^220\"}}]\n",
        addr.port()
    ))
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert_eq!(outcome.details["remote_address"], format!("[::1]:{}", addr.port()));
}

#[test]
fn script_steps_are_validated_with_located_errors() {
    let errors = load_str(
        "t.yaml",
        "checks:\n  - name: a\n    tcp:\n      target: \"127.0.0.1:1\"\n      ip_version: ipv6\n      script:\n        \
         - {send: \"x\", expect: \"y\"}\n        - {}\n        - {expect: \"(\"}\n        - {send: \"x\", timeout: 1s}\n",
    )
    .unwrap_err();
    let text: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    println!("{text:#?}");
    assert_eq!(text.len(), 5);
    assert!(text[0].contains("tcp.ip_version: the target 127.0.0.1 is an IPv4 address, but `ip_version` is ipv6"));
    assert!(text[1].contains("script[0].send: a step has either `send` or `expect`, not both"));
    assert!(text[2].contains("script[1]: a step needs `send`"));
    assert!(text[3].contains("script[2].expect: \"(\" is not a valid regular expression"));
    assert!(text[4].contains("script[3].timeout: `timeout` only applies to an `expect` step"));
}

/// A CA and a leaf for `localhost`/127.0.0.1 with the given validity (years), as PEM CA and rustls parts.
fn pki(not_before: i32, not_after: i32) -> (String, rustls::ServerConfig) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "probenet tcp test CA");
    ca_params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf_params.distinguished_name.push(rcgen::DnType::CommonName, "probenet tcp test server");
    leaf_params.not_before = rcgen::date_time_ymd(not_before, 1, 1);
    leaf_params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    (ca.pem(), config)
}

/// A Redis-like server behind TLS (as on port 6380).
async fn tls_redis(config: rustls::ServerConfig) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    server("127.0.0.1", move |stream| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(stream) = acceptor.accept(stream).await else { return };
            let (read, mut write) = tokio::io::split(stream);
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: &[u8] = if line.trim_end() == "PING" { b"+PONG\r\n" } else { b"-ERR\r\n" };
                if write.write_all(reply).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_script_runs_inside_tls_and_a_bad_certificate_stops_it_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let (ca, valid) = pki(2000, 2099);
    std::fs::write(&ca_path, ca).unwrap();
    let good = tls_redis(valid).await;
    let yaml = |addr: SocketAddr, extra: &str| {
        format!(
            "checks:\n  - name: redis-tls\n    timeout: 5s\n    tcp:\n      target: \"{addr}\"\n      tls: {{ca_file: \"{}\"{extra}}}\n      script: [{{send: \"PING\\r\\n\"}}, {{expect: \"^\\\\+PONG\"}}]\n",
            ca_path.display()
        )
    };
    let outcome = run(&yaml(good, "")).await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert!(outcome.phase("tls").is_some_and(|seconds| seconds > 0.0));
    assert!(outcome.details["tls_version"].as_str().unwrap().starts_with("TLSv1."));
    assert_eq!(outcome.details["certificate"]["verdict"], "ok");
    assert_eq!(names_and_results(&outcome), vec![("script[1].expect".to_owned(), true)]);

    // An expired leaf from the same CA: fails as expired, the script never runs, unless insecure.
    let (_, expired) = pki(2000, 2001);
    let bad = tls_redis(expired).await;
    let outcome = run(&yaml(bad, "")).await;
    assert_eq!(outcome.reason, Some(Reason::CertExpired), "{:?}", outcome.error);
    assert_eq!(outcome.details["certificate"]["verdict"], "expired");
    assert!(outcome.assertions.iter().all(|a| a.name != "script[1].expect"));
    let outcome = run(&yaml(bad, ", insecure: true")).await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);

    // Speaking TLS to a plain server fails the handshake with reason tls.
    let plain = server("127.0.0.1", |stream| async move {
        let mut stream = stream;
        let _ = stream.write_all(b"220 plain text\r\n").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    })
    .await;
    let outcome = run(&yaml(plain, "")).await;
    assert_eq!(outcome.reason, Some(Reason::Tls), "{:?}", outcome.error);
}

/// `ip_strategy: all` goes through the runtime's per-address path even for a name with one address
/// (`localhost` here; names with several are tested in the root crate's `run` tests): the kind's details stay,
/// with the address's own result added, and the script ran over the pinned address.
#[tokio::test]
async fn ip_strategy_all_over_a_name_keeps_the_kind_details_and_adds_one_result_per_address() {
    let addr = server("127.0.0.1", smtp).await;
    let yaml = format!(
        "checks:\n  - name: mail\n    timeout: 5s\n    tcp:\n      target: \"localhost:{}\"\n      ip_version: ipv4\n      ip_strategy: all\n      script: [{{expect: \"^220 \"}}, {{send: \"QUIT\\r\\n\"}}, {{expect: \"^221\"}}]\n",
        addr.port()
    );
    let outcome = run(&yaml).await;
    assert_eq!((outcome.state, outcome.reason), (State::Up, None), "{outcome:?}");
    assert_eq!(outcome.details["remote_address"], addr.to_string());
    assert_eq!(outcome.details["banner"], "220 probe.test ESMTP ready");
    assert_eq!(outcome.assertions.len(), 2);
    let ips = probenet_checks::ips::of(&outcome.details);
    assert_eq!(ips.len(), 1, "{outcome:?}");
    assert_eq!((ips[0].ip.as_str(), ips[0].address.as_str()), ("127.0.0.1", addr.to_string().as_str()));
    assert_eq!((ips[0].state, ips[0].reason), (State::Up, None));
    assert!(ips[0].phases.iter().any(|phase| phase.name == "connect"), "{ips:?}");
    assert!(outcome.phase("resolve").is_some() && outcome.phase("connect").is_some(), "{outcome:?}");
    // The details read back as the kind's, `ips` included, byte for byte.
    let rewritten = probenet_checks::Kind::Tcp.rewrite_details(&outcome.details).unwrap();
    assert_eq!(serde_json::to_string(&rewritten).unwrap(), serde_json::to_string(&outcome.details).unwrap());
}

#[tokio::test]
async fn ip_strategy_all_fails_naming_the_refusing_address() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let yaml = format!(
        "checks:\n  - {{name: refused, timeout: 5s, tcp: {{target: \"localhost:{port}\", ip_version: ipv4, ip_strategy: all, ip_verdict: any}}}}\n"
    );
    let outcome = run(&yaml).await;
    assert_eq!((outcome.state, outcome.reason), (State::Down, Some(Reason::Connect)), "{outcome:?}");
    let error = outcome.error.unwrap_or_default();
    assert!(error.starts_with(&format!("1 of 1 addresses down: connect to 127.0.0.1:{port}: ")), "{error}");
    let ips = probenet_checks::ips::of(&outcome.details);
    assert_eq!(ips.len(), 1);
    assert_eq!(ips[0].reason, Some(Reason::Connect));
}
