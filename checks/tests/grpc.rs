//! `grpc` checks against a real tonic server on 127.0.0.1 with the health and reflection services and a tiny
//! echo service whose descriptor is built by hand (no `protoc`): health answers, a call through reflection
//! judged with JSONPath, statuses, a server with only `v1alpha` reflection, and metadata secrets.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use probenet_checks::{Outcome, Reason, State, load_str, run_once};
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
    ServiceDescriptorProto,
};
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

/// `test.EchoRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct EchoRequest {
    #[prost(string, tag = "1")]
    text: String,
    #[prost(int32, tag = "2")]
    times: i32,
}

/// `test.EchoReply`.
#[derive(Clone, PartialEq, prost::Message)]
struct EchoReply {
    #[prost(string, tag = "1")]
    text: String,
    #[prost(int32, tag = "2")]
    count: i32,
    #[prost(string, repeated, tag = "3")]
    words: Vec<String>,
}

fn field(name: &str, number: i32, kind: Type, repeated: bool) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(if repeated { Label::Repeated } else { Label::Optional } as i32),
        r#type: Some(kind as i32),
        json_name: None,
        ..FieldDescriptorProto::default()
    }
}

/// `test/echo.proto`: `service Echo { rpc Say(EchoRequest) returns (EchoReply); rpc Watch(...) returns (stream ...) }`.
fn echo_file() -> FileDescriptorProto {
    let message =
        |name: &str, fields| DescriptorProto { name: Some(name.to_owned()), field: fields, ..Default::default() };
    let method = |name: &str, streaming: bool| MethodDescriptorProto {
        name: Some(name.to_owned()),
        input_type: Some(".test.EchoRequest".to_owned()),
        output_type: Some(".test.EchoReply".to_owned()),
        server_streaming: Some(streaming),
        ..Default::default()
    };
    FileDescriptorProto {
        name: Some("test/echo.proto".to_owned()),
        package: Some("test".to_owned()),
        syntax: Some("proto3".to_owned()),
        message_type: vec![
            message("EchoRequest", vec![field("text", 1, Type::String, false), field("times", 2, Type::Int32, false)]),
            message(
                "EchoReply",
                vec![
                    field("text", 1, Type::String, false),
                    field("count", 2, Type::Int32, false),
                    field("words", 3, Type::String, true),
                ],
            ),
        ],
        service: vec![ServiceDescriptorProto {
            name: Some("Echo".to_owned()),
            method: vec![method("Say", false), method("Watch", true)],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// What the server saw: the `authorization` metadata of each call.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// The echo service, written by hand as tonic's generated code would be.
#[derive(Clone, Default)]
struct Echo {
    seen: Seen,
}

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

/// `Say`: the text `times` times; `fail` is NOT_FOUND; `leak` says the caller's authorization back.
struct Say;

impl tonic::server::UnaryService<EchoRequest> for Say {
    type Response = EchoReply;
    type Future = BoxFuture<'static, Result<tonic::Response<EchoReply>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let auth = request.metadata().get("authorization").map(|v| v.to_str().unwrap_or("").to_owned());
        let request = request.into_inner();
        Box::pin(async move {
            match request.text.as_str() {
                "fail" => Err(tonic::Status::not_found("no such text")),
                "leak" => Ok(tonic::Response::new(EchoReply { text: auth.unwrap_or_default(), ..Default::default() })),
                text => {
                    let words = vec![text.to_owned(); usize::try_from(request.times).unwrap_or(0)];
                    Ok(tonic::Response::new(EchoReply { text: words.join(" "), count: request.times, words }))
                }
            }
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let auth = request.headers().get("authorization").map(|v| v.to_str().unwrap_or("").to_owned());
        self.seen.lock().unwrap().push(auth);
        Box::pin(async move {
            if request.uri().path() != "/test.Echo/Say" {
                return Ok(tonic::Status::unimplemented("no such method").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<EchoReply, EchoRequest>::default());
            Ok(grpc.unary(Say, request).await)
        })
    }
}

/// Which reflection service the server offers.
#[derive(Clone, Copy, PartialEq)]
enum Reflection {
    V1,
    V1alpha,
}

/// A tonic server on 127.0.0.1: health (`test.Echo` SERVING, `test.Sick` NOT_SERVING), reflection and echo.
struct Server {
    addr: SocketAddr,
    seen: Seen,
}

impl Server {
    async fn start(reflection: Reflection) -> Self {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_service_status("test.Echo", ServingStatus::Serving).await;
        reporter.set_service_status("test.Sick", ServingStatus::NotServing).await;
        let set = FileDescriptorSet { file: vec![echo_file()] }.encode_to_vec();
        let builder = tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(&set);
        let echo = Echo::default();
        let seen = echo.seen.clone();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let router = tonic::transport::Server::builder().add_service(health).add_service(echo);
        let router = match reflection {
            Reflection::V1 => router.add_service(builder.build_v1().unwrap()),
            Reflection::V1alpha => router.add_service(builder.build_v1alpha().unwrap()),
        };
        tokio::spawn(async move {
            let _keep = reporter;
            router.serve_with_incoming(incoming).await.unwrap();
        });
        Self { addr, seen }
    }
}

/// Loads a one-check config and runs it once.
async fn run(yaml: &str) -> Outcome {
    let config = load_str("test.yaml", yaml).unwrap_or_else(|errors| panic!("invalid test config: {errors:?}"));
    let outcome = run_once(&config.checks[0], "local").await;
    println!("{}", serde_json::to_string(&serde_json::json!({"kind": "grpc", "details": outcome.details})).unwrap());
    println!("{}", serde_json::to_string_pretty(&outcome).unwrap());
    outcome
}

/// A plaintext check of `addr` with this body (YAML flow mapping entries).
async fn check(addr: SocketAddr, body: &str) -> Outcome {
    run(&format!("checks:\n  - name: g\n    timeout: 5s\n    grpc: {{target: \"{addr}\", plaintext: true, {body}}}\n"))
        .await
}

fn phases(outcome: &Outcome) -> Vec<&str> {
    outcome.phases.iter().map(|phase| phase.name.as_str()).collect()
}

#[tokio::test]
async fn a_serving_service_passes_and_reports_its_status() {
    let server = Server::start(Reflection::V1).await;
    let outcome = check(server.addr, "health: {service: test.Echo}").await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert_eq!(outcome.details["serving_status"], "SERVING");
    assert_eq!(outcome.details["status_code"], 0);
    assert_eq!(outcome.details["remote_address"], server.addr.to_string());
    assert_eq!(phases(&outcome), ["resolve", "connect", "processing"]);
    // Without `health` or `call`: the server as a whole.
    let outcome =
        run(&format!("checks:\n  - name: g\n    grpc: {{target: \"{}\", plaintext: true}}\n", server.addr)).await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
}

#[tokio::test]
async fn a_service_not_serving_fails_naming_the_status() {
    let server = Server::start(Reflection::V1).await;
    let outcome = check(server.addr, "health: {service: test.Sick}").await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Status));
    assert_eq!(outcome.error.as_deref(), Some("health \"test.Sick\": expected SERVING, got NOT_SERVING"));
    assert_eq!(outcome.details["serving_status"], "NOT_SERVING");
    // Unless NOT_SERVING is what is expected.
    let outcome = check(server.addr, "health: {service: test.Sick, expect: not_serving}").await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
}

#[tokio::test]
async fn an_unknown_service_fails_saying_so() {
    let server = Server::start(Reflection::V1).await;
    let outcome = check(server.addr, "health: {service: test.Nobody}").await;
    assert_eq!(outcome.reason, Some(Reason::Status));
    assert_eq!(
        outcome.error.as_deref(),
        Some(
            "health \"test.Nobody\": expected SERVING, got SERVICE_UNKNOWN (the server does not know the service \"test.Nobody\")"
        )
    );
    assert_eq!(outcome.details["serving_status"], "SERVICE_UNKNOWN");
    assert_eq!(outcome.details["status_code"], 5);
}

#[tokio::test]
async fn a_call_through_reflection_is_judged_with_jsonpath() {
    let server = Server::start(Reflection::V1).await;
    let outcome = check(
        server.addr,
        r#"call: {method: test.Echo/Say, request: {text: hi, times: 2}, expect: {json: [{path: "$.text", equals: "hi hi"}, {path: "$.count", equals: 2}, {path: "$.words[1]", regex: "^h"}]}}"#,
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert_eq!(outcome.assertions.len(), 4);
    assert_eq!(outcome.details["method"], "test.Echo/Say");
    assert_eq!(outcome.details["response"], r#"{"text":"hi hi","count":2,"words":["hi","hi"]}"#);
    assert!(outcome.details.get("serving_status").is_none());

    // A wrong answer fails naming the assertion.
    let outcome = check(
        server.addr,
        r#"health: {service: test.Echo}, call: {method: test.Echo/Say, request: {text: hi, times: 1}, expect: {json: [{path: "$.text", equals: "bye"}]}}"#,
    )
    .await;
    assert_eq!(outcome.reason, Some(Reason::Body));
    assert_eq!(outcome.error.as_deref(), Some("json $.text: expected a node equal to \"bye\", got \"hi\""));
    assert_eq!(outcome.details["serving_status"], "SERVING");

    // Defaults are in the JSON: zero times is `count: 0` and no words.
    let outcome = check(
        server.addr,
        r#"call: {method: test.Echo/Say, request: {text: x}, expect: {json: [{path: "$.count", equals: 0}, {path: "$.words[0]", exists: false}]}}"#,
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
}

#[tokio::test]
async fn call_statuses_are_judged_and_unknown_methods_and_fields_named() {
    let server = Server::start(Reflection::V1).await;
    let outcome = check(server.addr, "call: {method: test.Echo/Say, request: {text: fail}}").await;
    assert_eq!(outcome.reason, Some(Reason::Status));
    assert_eq!(outcome.error.as_deref(), Some("test.Echo/Say status: expected OK, got NOT_FOUND no such text"));
    assert_eq!(outcome.details["status_code"], 5);
    let outcome =
        check(server.addr, "call: {method: test.Echo/Say, request: {text: fail}, expect: {status: NOT_FOUND}}").await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);

    let outcome = check(server.addr, "call: {method: test.Echo/Shout}").await;
    assert_eq!(outcome.error.as_deref(), Some("the service \"test.Echo\" has no method \"Shout\""));
    let outcome = check(server.addr, "call: {method: test.Nobody/Say}").await;
    assert_eq!(outcome.reason, Some(Reason::Status));
    assert_eq!(
        outcome.error.as_deref(),
        Some(
            "reflection: the server does not know the service \"test.Nobody\": NOT_FOUND symbol 'test.Nobody' not found"
        )
    );
    let outcome = check(server.addr, "call: {method: test.Echo/Watch}").await;
    assert_eq!(outcome.reason, Some(Reason::Unsupported));
    let outcome = check(server.addr, "call: {method: test.Echo/Say, request: {txt: hi}}").await;
    assert_eq!(outcome.reason, Some(Reason::Protocol));
    assert!(
        outcome.error.as_deref().unwrap().starts_with("test.Echo/Say: the request does not fit test.EchoRequest"),
        "{:?}",
        outcome.error
    );
}

#[tokio::test]
async fn an_answer_larger_than_max_message_size_is_refused() {
    let server = Server::start(Reflection::V1).await;
    let word = "x".repeat(100);
    let call = format!("call: {{method: test.Echo/Say, request: {{text: {word}, times: 20}}}}");
    let outcome = check(server.addr, &format!("max_message_size: 1KiB, {call}")).await;
    assert_eq!(outcome.reason, Some(Reason::Protocol));
    assert_eq!(
        outcome.error.as_deref(),
        Some("/test.Echo/Say: the response is larger than max_message_size (1024 bytes)")
    );
    let outcome = check(server.addr, &call).await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
}

#[tokio::test]
async fn v1alpha_reflection_is_used_when_v1_is_missing() {
    let server = Server::start(Reflection::V1alpha).await;
    let outcome = check(
        server.addr,
        r#"call: {method: test.Echo/Say, request: {text: ok, times: 1}, expect: {json: [{path: "$.text", equals: "ok"}]}}"#,
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
}

#[tokio::test]
async fn a_metadata_secret_reaches_the_server_but_never_the_result() {
    const SECRET: &str = "s3cr3t-grpc-7d2a";
    let server = Server::start(Reflection::V1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let outcome = check(
        server.addr,
        &format!(
            r#"metadata: {{authorization: "Bearer ${{file:{}}}"}}, call: {{method: test.Echo/Say, request: {{text: leak}}, expect: {{json: [{{path: "$.text", equals: nobody}}]}}}}"#,
            file.display()
        ),
    )
    .await;
    assert!(server.seen.lock().unwrap().contains(&Some(format!("Bearer {SECRET}"))));
    // The server said the secret back: it shows redacted everywhere.
    assert_eq!(outcome.reason, Some(Reason::Body));
    let text = serde_json::to_string(&outcome).unwrap();
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
}

#[tokio::test]
async fn nothing_listening_is_connect_and_a_non_grpc_server_is_protocol() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outcome = check(addr, "health: {}").await;
    assert_eq!(outcome.reason, Some(Reason::Connect));
    assert_eq!(outcome.details["remote_address"], addr.to_string());
}

/// A TLS front for `backend` on 127.0.0.1 (ALPN `h2`, a leaf for `localhost` signed by a fresh CA): its address
/// and the CA's PEM.
async fn tls_front(backend: SocketAddr) -> (SocketAddr, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let at = |days: i64| epoch + std::time::Duration::from_secs((now.as_secs() as i64 + days * 86_400) as u64);
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (ca_params.not_before, ca_params.not_after) = (at(-1), at(30));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    (params.not_before, params.not_after) = (at(-1), at(30));
    let leaf = params.signed_by(&key, &Issuer::from_params(&ca_params, &ca_key)).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, ca.pem())
}

#[tokio::test]
async fn over_tls_a_trusted_certificate_passes_and_an_untrusted_one_fails_before_any_call() {
    let server = Server::start(Reflection::V1).await;
    let (front, ca) = tls_front(server.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let outcome = run(&format!(
        "checks:\n  - name: g\n    timeout: 5s\n    grpc: {{target: \"localhost:{}\", ip_version: ipv4, tls: {{ca_file: \"{}\"}}, \
         call: {{method: test.Echo/Say, request: {{text: tls, times: 1}}, expect: {{json: [{{path: \"$.text\", equals: tls}}]}}}}}}\n",
        front.port(),
        ca_file.display()
    ))
    .await;
    assert_eq!(outcome.state, State::Up, "{:?}", outcome.error);
    assert!(outcome.details["tls_version"].as_str().unwrap().starts_with("TLSv1."), "{}", outcome.details);
    assert_eq!(phases(&outcome), ["resolve", "connect", "tls", "processing"]);

    let before = server.seen.lock().unwrap().len();
    let outcome = run(&format!(
        "checks:\n  - name: g\n    timeout: 5s\n    grpc: {{target: \"localhost:{}\", ip_version: ipv4}}\n",
        front.port()
    ))
    .await;
    assert_eq!(outcome.reason, Some(Reason::CertUntrusted), "{:?}", outcome.error);
    assert!(outcome.details.get("serving_status").is_none());
    assert_eq!(server.seen.lock().unwrap().len(), before);
}

#[test]
fn the_example_file_validates() {
    let config =
        probenet_checks::load_paths(&["../examples/grpc.yaml".into()]).unwrap_or_else(|errors| panic!("{errors:?}"));
    assert!(config.checks.iter().all(|check| check.kind.key() == "grpc"));
    assert!(!config.checks.is_empty());
}
