//! The `dns` kind against real DNS servers on loopback: a hickory-server authoritative zone over UDP and TCP,
//! plus tiny hand-made responders (SERVFAIL, wrong id first, silence).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use probenet_checks::{Outcome, Reason, State, load_str, run_once};
use tokio::net::{TcpListener, UdpSocket};

/// The zone every authoritative test asks.
const ZONE: &str = "probenet.test.";

fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

/// An authoritative server for `probenet.test.` on `ip`, over UDP and TCP on the same port.
struct Authoritative {
    addr: SocketAddr,
    _server: Server<Catalog>,
}

async fn authoritative(ip: std::net::IpAddr) -> Authoritative {
    let origin = name(ZONE);
    let mut zone: InMemoryZoneHandler = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let serial = 2024010101;
    let soa = SOA::new(name("ns1.probenet.test."), name("admin.probenet.test."), serial, 3600, 600, 86400, 300);
    let records = [
        Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)),
        Record::from_rdata(origin.clone(), 3600, RData::NS(NS(name("ns1.probenet.test.")))),
        Record::from_rdata(name("ns1.probenet.test."), 3600, RData::A(A::new(192, 0, 2, 53))),
        Record::from_rdata(name("www.probenet.test."), 300, RData::A(A::new(192, 0, 2, 10))),
        Record::from_rdata(name("www.probenet.test."), 300, RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10))),
        Record::from_rdata(origin.clone(), 300, RData::MX(MX::new(10, name("mail.probenet.test.")))),
        Record::from_rdata(name("mail.probenet.test."), 300, RData::A(A::new(192, 0, 2, 25))),
        Record::from_rdata(origin.clone(), 300, RData::TXT(TXT::new(vec!["v=spf1 -all".to_owned()]))),
        Record::from_rdata(name("alias.probenet.test."), 300, RData::CNAME(CNAME(name("www.probenet.test.")))),
    ];
    for record in records {
        assert!(zone.upsert_mut(record, serial));
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
    // The UDP and TCP servers share a port: take a free UDP port and retry when its TCP twin is taken.
    let mut attempt = 0;
    let (udp, tcp, addr) = loop {
        attempt += 1;
        let udp = UdpSocket::bind((ip, 0)).await.unwrap();
        let addr = udp.local_addr().unwrap();
        match TcpListener::bind(addr).await {
            Ok(tcp) => break (udp, tcp, addr),
            Err(error) if attempt < 50 => eprintln!("port {} taken for TCP ({error}); trying another", addr.port()),
            Err(error) => panic!("no port free for both UDP and TCP: {error}"),
        }
    };
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 64);
    Authoritative { addr, _server: server }
}

/// How a hand-made UDP responder answers.
#[derive(Clone, Copy)]
enum Mode {
    /// SERVFAIL to everything.
    ServFail,
    /// First a reply with another id, then the real answer (one A record).
    WrongIdFirst,
    /// Only replies with other ids, 20 of them.
    OnlyWrongIds,
    /// An empty NOERROR answer with the TC flag set.
    Truncated,
}

/// A UDP responder built from hickory-proto messages; it records the RD flag of every query it saw.
async fn responder(mode: Mode) -> (SocketAddr, Arc<Mutex<Vec<bool>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        for _ in 0..32 {
            let Ok((size, peer)) = socket.recv_from(&mut buffer).await else { return };
            let Ok(query) = Message::from_vec(&buffer[..size]) else { continue };
            record.lock().unwrap().push(query.metadata.recursion_desired);
            let mut response = Message::response(query.metadata.id, query.metadata.op_code);
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.add_queries(query.queries.clone());
            match mode {
                Mode::ServFail => response.metadata.response_code = ResponseCode::ServFail,
                Mode::WrongIdFirst => {
                    let mut decoy = response.clone();
                    decoy.metadata.id = query.metadata.id.wrapping_add(1);
                    decoy.add_answer(Record::from_rdata(name("www.probenet.test."), 60, RData::A(A::new(6, 6, 6, 6))));
                    socket.send_to(&decoy.to_vec().unwrap(), peer).await.unwrap();
                    let question = query.queries[0].name().clone();
                    response.add_answer(Record::from_rdata(question, 60, RData::A(A::new(192, 0, 2, 10))));
                }
                Mode::OnlyWrongIds => {
                    for step in 1..=20u16 {
                        response.metadata.id = query.metadata.id.wrapping_add(step);
                        socket.send_to(&response.to_vec().unwrap(), peer).await.unwrap();
                    }
                    continue;
                }
                Mode::Truncated => response.metadata.truncation = true,
            }
            socket.send_to(&response.to_vec().unwrap(), peer).await.unwrap();
        }
    });
    (addr, seen)
}

/// Runs one dns check whose body is `body` (YAML flow mapping content) with the given timeout.
async fn run(body: &str, timeout: &str) -> Outcome {
    let yaml = format!("checks:\n  - name: probe\n    timeout: {timeout}\n    dns: {{{body}}}\n");
    let config = load_str("dns.yaml", &yaml).unwrap_or_else(|errors| panic!("{yaml}\n{errors:?}"));
    let outcome = run_once(&config.checks[0], "local").await;
    assert!(outcome.duration_seconds < 5.0, "a run took {}s", outcome.duration_seconds);
    outcome
}

fn assertion<'a>(outcome: &'a Outcome, name: &str) -> &'a probenet_checks::Assertion {
    outcome.assertions.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("no {name} in {outcome:#?}"))
}

#[tokio::test]
async fn an_a_record_matches_its_expected_answer() {
    let server = authoritative([127, 0, 0, 1].into()).await;
    let outcome = run(
        &format!(
            "query: www.probenet.test, server: '{}', expect: {{answers: ['192.0.2.10'], min_answers: 1}}",
            server.addr
        ),
        "5s",
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.reason, None);
    let names: Vec<&str> = outcome.phases.iter().map(|phase| phase.name.as_str()).collect();
    assert_eq!(names, ["resolve", "connect", "request"]);
    let details = &outcome.details;
    assert_eq!(details["rcode"], "NOERROR");
    assert_eq!(details["transport"], "udp");
    assert_eq!(details["server"], server.addr.to_string());
    assert_eq!(details["query"], "www.probenet.test.");
    assert_eq!(details["answer_rrs"], 1);
    assert_eq!(details["answer"][0], "www.probenet.test.\t300\tIN\tA\t192.0.2.10");
    assert_eq!(details["flags"]["aa"], true);
    assert_eq!(details["flags"]["tc"], false);
    assert_eq!(details["truncated"], false);
    assert_eq!(details["ignored_responses"], 0);
    assert!(outcome.assertions.iter().all(|a| a.passed));
    assert_eq!(outcome.assertions.len(), 3);
}

#[tokio::test]
async fn a_wrong_expected_answer_fails_with_the_observed_values() {
    let server = authoritative([127, 0, 0, 1].into()).await;
    let outcome = run(
        &format!(
            "query: www.probenet.test, record: AAAA, server: '{}', expect: {{answers: ['2001:db8::10', '192.0.2.99']}}",
            server.addr
        ),
        "5s",
    )
    .await;
    assert_eq!(outcome.state, State::Down);
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    let answers: Vec<_> = outcome.assertions.iter().filter(|a| a.name == "answers").collect();
    assert_eq!(answers.len(), 2);
    assert!(answers[0].passed, "{answers:?}");
    assert!(!answers[1].passed);
    assert_eq!(answers[1].observed, "[\"2001:db8::10\"]");
    let error = outcome.error.unwrap();
    assert!(error.contains("192.0.2.99") && error.contains("2001:db8::10"), "{error}");
}

#[tokio::test]
async fn nxdomain_fails_by_default_and_passes_when_expected() {
    let server = authoritative([127, 0, 0, 1].into()).await;
    let body = format!("query: missing.probenet.test, server: '{}'", server.addr);
    let outcome = run(&body, "5s").await;
    assert_eq!(outcome.reason, Some(Reason::Rcode), "{outcome:#?}");
    assert_eq!(assertion(&outcome, "rcode").observed, "NXDOMAIN");
    assert_eq!(assertion(&outcome, "rcode").expected, "NOERROR");

    let soa = r"^probenet\.test\.\t\d+\tIN\tSOA\tns1\.probenet\.test\. admin\.probenet\.test\. 2024010101 ";
    let outcome =
        run(&format!("{body}, expect: {{rcode: [NXDOMAIN], authority_regex: ['{soa}'], min_answers: 0}}"), "5s").await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["authority_rrs"], 1);
    assert_eq!(outcome.details["answer_rrs"], 0);
    assert!(assertion(&outcome, "authority_regex").observed.contains("SOA"));

    let outcome =
        run(&format!("{body}, expect: {{rcode: [NXDOMAIN], authority_not_regex: ['\\tSOA\\t']}}"), "5s").await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert!(!assertion(&outcome, "authority_not_regex").passed);
}

#[tokio::test]
async fn servfail_gives_reason_rcode_and_the_rd_flag_reaches_the_server() {
    let (addr, seen) = responder(Mode::ServFail).await;
    let outcome = run(&format!("query: www.probenet.test, server: '{addr}'"), "5s").await;
    assert_eq!(outcome.reason, Some(Reason::Rcode));
    assert_eq!(assertion(&outcome, "rcode").observed, "SERVFAIL");
    assert_eq!(outcome.details["flags"]["rd"], true);

    let outcome = run(&format!("query: www.probenet.test, server: '{addr}', recursion: false"), "5s").await;
    assert_eq!(outcome.reason, Some(Reason::Rcode));
    assert_eq!(outcome.details["flags"]["rd"], false);
    assert_eq!(*seen.lock().unwrap(), [true, false]);

    let outcome =
        run(&format!("query: www.probenet.test, server: '{addr}', expect: {{rcode: [SERVFAIL, REFUSED]}}"), "5s").await;
    assert_eq!(outcome.state, State::Up);
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_check_timeout() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let sink = tokio::spawn(async move {
        let mut buffer = [0u8; 512];
        for _ in 0..16 {
            if socket.recv_from(&mut buffer).await.is_err() {
                return;
            }
        }
    });
    let outcome = run(&format!("query: www.probenet.test, server: '{addr}'"), "1s").await;
    sink.abort();
    assert_eq!(outcome.reason, Some(Reason::Timeout), "{outcome:#?}");
    assert!(outcome.duration_seconds >= 0.9 && outcome.duration_seconds < 3.0, "{}", outcome.duration_seconds);
    assert!(outcome.phase("connect").is_some());
    assert!(outcome.phase("request").is_some_and(|seconds| seconds >= 0.9), "{:?}", outcome.phases);
}

#[tokio::test]
async fn tcp_transport_asks_over_tcp() {
    let server = authoritative([127, 0, 0, 1].into()).await;
    let outcome = run(
        &format!(
            "query: www.probenet.test, transport: tcp, server: '{}', expect: {{answers: ['192.0.2.10']}}",
            server.addr
        ),
        "5s",
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["transport"], "tcp");
    assert!(outcome.phase("connect").is_some() && outcome.phase("request").is_some());
}

#[tokio::test]
async fn mx_and_txt_render_for_answers_and_regexes() {
    let server = authoritative([127, 0, 0, 1].into()).await;
    let addr = server.addr;
    let outcome = run(
        &format!(
            "query: probenet.test, record: mx, server: '{addr}', expect: {{answers: ['10 mail.probenet.test'], \
             answer_regex: ['\\tMX\\t10 mail\\.probenet\\.test\\.$'], \
             additional_regex: ['^mail\\.probenet\\.test\\.\\s+\\d+\\s+IN\\s+A\\s+192\\.0\\.2\\.25$']}}"
        ),
        "5s",
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["answer_values"][0], "10 mail.probenet.test");

    let outcome = run(
        &format!(
            "query: probenet.test, record: TXT, server: '{addr}', expect: {{answers: ['v=spf1 -all'], \
             answer_regex: ['IN\\tTXT\\t\"v=spf1 -all\"$'], answer_not_regex: ['~all']}}"
        ),
        "5s",
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");

    let outcome = run(
        &format!(
            "query: probenet.test, record: TXT, server: '{addr}', \
             expect: {{answer_regex: ['v=DMARC1'], answer_not_regex: ['-all']}}"
        ),
        "5s",
    )
    .await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert_eq!(
        assertion(&outcome, "answer_regex").observed,
        "no match in [\"probenet.test.\\t300\\tIN\\tTXT\\t\\\"v=spf1 -all\\\"\"]"
    );
    assert!(!assertion(&outcome, "answer_not_regex").passed);
}

#[tokio::test]
async fn ns_answers_carry_glue_and_cname_renders_without_the_dot() {
    let server = authoritative([127, 0, 0, 1].into()).await;
    let addr = server.addr;
    let outcome = run(
        &format!(
            "query: probenet.test, record: NS, server: '{addr}', \
             expect: {{answers: [ns1.probenet.test.], additional_regex: ['^ns1\\.probenet\\.test\\..*\\tA\\t192\\.0\\.2\\.53$']}}"
        ),
        "5s",
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert!(outcome.details["additional_rrs"].as_u64().unwrap() >= 1);

    let outcome = run(
        &format!(
            "query: alias.probenet.test, record: CNAME, server: '{addr}', expect: {{answers: [www.probenet.test]}}"
        ),
        "5s",
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["answer_values"][0], "www.probenet.test");
}

#[tokio::test]
async fn the_authoritative_flag_is_asserted() {
    let server = authoritative([127, 0, 0, 1].into()).await;
    let body = format!("query: www.probenet.test, server: '{}'", server.addr);
    let outcome = run(&format!("{body}, expect: {{authoritative: true}}"), "5s").await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    let outcome = run(&format!("{body}, expect: {{authoritative: false}}"), "5s").await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert_eq!(assertion(&outcome, "authoritative").observed, "true");

    let (addr, _) = responder(Mode::ServFail).await;
    let outcome = run(
        &format!("query: www.probenet.test, server: '{addr}', expect: {{rcode: [SERVFAIL], authoritative: true}}"),
        "5s",
    )
    .await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert_eq!(assertion(&outcome, "authoritative").observed, "false");
}

#[tokio::test]
async fn a_reply_with_another_id_is_ignored() {
    let (addr, _) = responder(Mode::WrongIdFirst).await;
    let outcome =
        run(&format!("query: www.probenet.test, server: '{addr}', expect: {{answers: ['192.0.2.10']}}"), "5s").await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["ignored_responses"], 1);
    assert!(outcome.log.iter().any(|line| line.contains("ignored a packet")), "{:?}", outcome.log);
    assert_eq!(outcome.details["answer_rrs"], 1);
}

#[tokio::test]
async fn a_closed_port_fails_with_reason_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outcome = run(&format!("query: www.probenet.test, transport: tcp, server: '{addr}'"), "5s").await;
    assert_eq!(outcome.reason, Some(Reason::Connect), "{outcome:#?}");
    assert_eq!(outcome.details["server"], addr.to_string());

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    drop(socket);
    let outcome = run(&format!("query: www.probenet.test, server: '{addr}'"), "2s").await;
    assert_eq!(outcome.reason, Some(Reason::Connect), "{outcome:#?}");
}

#[tokio::test]
async fn a_server_host_name_is_resolved_first() {
    let first = tokio::net::lookup_host("localhost:0").await.unwrap().next().unwrap();
    let server = authoritative(first.ip()).await;
    let outcome = run(
        &format!(
            "query: www.probenet.test, server: 'localhost:{}', expect: {{answers: ['192.0.2.10']}}",
            server.addr.port()
        ),
        "5s",
    )
    .await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["server"], server.addr.to_string());
    assert!(outcome.phase("resolve").is_some());
}

#[tokio::test]
async fn too_many_unrelated_replies_fail_with_reason_protocol() {
    let (addr, _) = responder(Mode::OnlyWrongIds).await;
    let outcome = run(&format!("query: www.probenet.test, server: '{addr}'"), "5s").await;
    assert_eq!(outcome.reason, Some(Reason::Protocol), "{outcome:#?}");
    assert!(outcome.error.unwrap().contains("16 packets"));
    assert!(outcome.duration_seconds < 2.0);
}

#[tokio::test]
async fn a_truncated_answer_is_reported_as_it_is() {
    let (addr, seen) = responder(Mode::Truncated).await;
    let outcome = run(&format!("query: www.probenet.test, server: '{addr}'"), "5s").await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["truncated"], true);
    assert_eq!(outcome.details["flags"]["tc"], true);
    assert!(outcome.log.iter().any(|line| line.contains("truncated")), "{:?}", outcome.log);
    let outcome = run(&format!("query: www.probenet.test, server: '{addr}', expect: {{min_answers: 1}}"), "5s").await;
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert_eq!(assertion(&outcome, "min_answers").observed, "0");
    assert_eq!(seen.lock().unwrap().len(), 2, "one query per run, no retry");
}
