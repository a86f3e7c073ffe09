//! Running a DNS check: find the server, send one query over UDP or TCP, wait for its answer, judge it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Instant;

use crate::details::Details as _;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::details::{DnsAnswer, DnsDetails, Flags};
use super::judge::{Rendered, judge};
use super::render;
use super::spec::{DnsCheck, DnsServer};
use crate::outcome::Failure;
use crate::outcome::{Outcome, Reason};
use crate::run::{Execute, RunContext};

/// The file the system resolver's servers are read from when a check names no server.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// The most packets that do not answer the query (wrong id, wrong question, not DNS) skipped before giving up.
const MAX_IGNORED: usize = 16;

impl Execute for DnsCheck {
    async fn execute(&self, cx: &RunContext) -> Outcome {
        let mut details = DnsDetails {
            query: self.name.to_ascii(),
            record: self.record.clone(),
            class: self.class.to_string(),
            transport: if self.tcp { "tcp" } else { "udp" }.to_owned(),
            server: None,
            answer: None,
        };
        match run(self, cx, &mut details).await {
            Ok(outcome) => outcome,
            Err(failure) => Outcome { details: details.to_value(), ..Outcome::failed(failure.reason, failure.message) },
        }
    }
}

/// Adds the time from its creation to its drop to a phase, so a phase cut short by the timeout still counts.
struct PhaseTimer<'a> {
    cx: &'a RunContext,
    name: &'static str,
    start: Instant,
}

impl<'a> PhaseTimer<'a> {
    fn start(cx: &'a RunContext, name: &'static str) -> Self {
        Self { cx, name, start: Instant::now() }
    }
}

impl Drop for PhaseTimer<'_> {
    fn drop(&mut self) {
        self.cx.phase(self.name, self.start.elapsed());
    }
}

/// A response that answers the query, and what it took to get it.
struct Received {
    message: Message,
    bytes: usize,
    ignored: usize,
}

async fn run(check: &DnsCheck, cx: &RunContext, details: &mut DnsDetails) -> Result<Outcome, Failure> {
    let timer = PhaseTimer::start(cx, "resolve");
    let addr = locate(check.server.as_ref()).await?;
    drop(timer);
    details.server = Some(addr.to_string());

    let mut query = Message::query();
    query.metadata.recursion_desired = check.recursion;
    let mut question = Query::query(check.name.clone(), check.record_type);
    question.set_query_class(check.class);
    query.add_query(question);
    let packet =
        query.to_vec().map_err(|error| Failure::new(Reason::Protocol, format!("encoding the query: {error}")))?;
    let transport = if check.tcp { "tcp" } else { "udp" };
    cx.log(format!("asking {addr} over {transport} for {} {} {}", check.name.to_ascii(), check.class, check.record));

    let received = if check.tcp {
        exchange_tcp(cx, addr, &query, &packet).await?
    } else {
        exchange_udp(cx, addr, &query, &packet).await?
    };
    let message = &received.message;
    let flags = &message.metadata;
    if flags.truncation {
        cx.log("the answer is truncated (TC flag); it is judged as received, not retried over tcp");
    }
    let rendered = Rendered {
        rcode: render::rcode(flags.response_code),
        authoritative: flags.authoritative,
        values: message
            .answers
            .iter()
            .map(|record| {
                let exact = matches!(record.record_type(), RecordType::TXT | RecordType::CAA);
                (render::value(&record.data), exact)
            })
            .collect(),
        answer: message.answers.iter().map(render::line).collect(),
        authority: message.authorities.iter().map(render::line).collect(),
        additional: message.additionals.iter().map(render::line).collect(),
    };
    let serial = message.answers.iter().find_map(|record| match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    });
    let judged = judge(&check.expect, &rendered);
    details.answer = Some(DnsAnswer {
        rcode: Some(rendered.rcode.clone()),
        flags: Flags {
            aa: flags.authoritative,
            tc: flags.truncation,
            rd: flags.recursion_desired,
            ra: flags.recursion_available,
            ad: flags.authentic_data,
            cd: flags.checking_disabled,
        },
        truncated: flags.truncation,
        answer_rrs: rendered.answer.len(),
        authority_rrs: rendered.authority.len(),
        additional_rrs: rendered.additional.len(),
        answer_values: rendered.values.iter().map(|(value, _)| value.clone()).collect(),
        answer: rendered.answer,
        authority: rendered.authority,
        additional: rendered.additional,
        serial,
        response_bytes: received.bytes,
        ignored_responses: received.ignored,
    });
    Ok(judged.into_outcome(details.to_value()))
}

/// The server's address: as written, resolved from its host name, or the system resolver's first nameserver.
async fn locate(server: Option<&DnsServer>) -> Result<SocketAddr, Failure> {
    match server {
        Some(DnsServer::Addr(addr)) => Ok(*addr),
        Some(DnsServer::Host(host, port)) => {
            let mut addrs = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|error| Failure::new(Reason::Dns, format!("resolving the server {host}: {error}")))?;
            addrs.next().ok_or_else(|| Failure::new(Reason::Dns, format!("the server {host} has no address")))
        }
        None => {
            let text = tokio::fs::read_to_string(RESOLV_CONF).await.map_err(|error| {
                Failure::new(Reason::Dns, format!("no server given and {RESOLV_CONF} cannot be read: {error}"))
            })?;
            first_nameserver(&text).ok_or_else(|| {
                Failure::new(Reason::Dns, format!("no server given and {RESOLV_CONF} names no usable nameserver"))
            })
        }
    }
}

/// The first usable `nameserver` of a resolv.conf, on port 53. IPv6 zones must be numeric (`fe80::1%2`).
pub(super) fn first_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            return None;
        }
        let address = words.next()?;
        let (ip, zone) = match address.split_once('%') {
            Some((ip, zone)) => (ip, Some(zone.parse::<u32>().ok()?)),
            None => (address, None),
        };
        match (ip.parse::<IpAddr>().ok()?, zone) {
            (IpAddr::V6(ip), Some(zone)) => Some(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, zone))),
            (_, Some(_)) => None,
            (ip, None) => Some(SocketAddr::new(ip, 53)),
        }
    })
}

/// One query over a connected UDP socket; packets that do not answer it are skipped.
async fn exchange_udp(cx: &RunContext, addr: SocketAddr, query: &Message, packet: &[u8]) -> Result<Received, Failure> {
    let timer = PhaseTimer::start(cx, "connect");
    let local: SocketAddr =
        if addr.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|error| Failure::new(Reason::Connect, format!("udp socket for {addr}: {error}")))?;
    socket.connect(addr).await.map_err(|error| Failure::new(Reason::Connect, format!("udp to {addr}: {error}")))?;
    drop(timer);

    let _timer = PhaseTimer::start(cx, "request");
    let io = |error: std::io::Error| Failure::new(Reason::Connect, format!("udp exchange with {addr}: {error}"));
    socket.send(packet).await.map_err(io)?;
    let mut buffer = vec![0u8; 65_535];
    let mut ignored = 0;
    loop {
        let size = socket.recv(&mut buffer).await.map_err(io)?;
        match accept(query, &buffer[..size]) {
            Verdict::Answer(message) => return Ok(Received { message: *message, bytes: size, ignored }),
            Verdict::Broken(why) => {
                return Err(Failure::new(Reason::Protocol, format!("the answer from {addr} is not valid: {why}")));
            }
            Verdict::Ignore(why) => skip(cx, addr, &why, &mut ignored)?,
        }
    }
}

/// One query over a fresh TCP connection, framed by a two-byte length; frames that do not answer it are skipped.
async fn exchange_tcp(cx: &RunContext, addr: SocketAddr, query: &Message, packet: &[u8]) -> Result<Received, Failure> {
    let timer = PhaseTimer::start(cx, "connect");
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|error| Failure::new(Reason::Connect, format!("connect to {addr}: {error}")))?;
    drop(timer);
    stream.set_nodelay(true).ok();

    let _timer = PhaseTimer::start(cx, "request");
    let length = u16::try_from(packet.len()).map_err(|_| Failure::new(Reason::Protocol, "the query is too long"))?;
    let mut framed = Vec::with_capacity(packet.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(packet);
    let io = |error: std::io::Error| {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            Failure::new(Reason::Protocol, format!("{addr} closed the connection before answering"))
        } else {
            Failure::new(Reason::Connect, format!("tcp exchange with {addr}: {error}"))
        }
    };
    stream.write_all(&framed).await.map_err(io)?;
    let mut ignored = 0;
    loop {
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await.map_err(io)?;
        let size = usize::from(u16::from_be_bytes(prefix));
        let mut buffer = vec![0u8; size];
        stream.read_exact(&mut buffer).await.map_err(io)?;
        match accept(query, &buffer) {
            Verdict::Answer(message) => return Ok(Received { message: *message, bytes: size, ignored }),
            Verdict::Broken(why) => {
                return Err(Failure::new(Reason::Protocol, format!("the answer from {addr} is not valid: {why}")));
            }
            Verdict::Ignore(why) => skip(cx, addr, &why, &mut ignored)?,
        }
    }
}

/// Logs a skipped packet; fails once too many were skipped.
fn skip(cx: &RunContext, addr: SocketAddr, why: &str, ignored: &mut usize) -> Result<(), Failure> {
    *ignored += 1;
    cx.log(format!("ignored a packet from {addr}: {why}"));
    if *ignored >= MAX_IGNORED {
        return Err(Failure::new(
            Reason::Protocol,
            format!("{ignored} packets from {addr} did not answer the query; the last: {why}"),
        ));
    }
    Ok(())
}

/// What to make of one received packet.
#[derive(Debug)]
enum Verdict {
    /// It answers the query.
    Answer(Box<Message>),
    /// It carries the query's id but cannot be decoded: the server's answer is broken.
    Broken(String),
    /// It is not an answer to the query (another id, another question, not DNS): skip it.
    Ignore(String),
}

/// Decides whether `packet` answers `query`: same id, a response, and the same question.
fn accept(query: &Message, packet: &[u8]) -> Verdict {
    let id = query.metadata.id;
    let message = match Message::from_vec(packet) {
        Ok(message) => message,
        Err(error) if packet.len() >= 2 && u16::from_be_bytes([packet[0], packet[1]]) == id => {
            return Verdict::Broken(error.to_string());
        }
        Err(error) => return Verdict::Ignore(format!("not a dns message: {error}")),
    };
    if message.metadata.id != id {
        return Verdict::Ignore(format!("id {} instead of {id}", message.metadata.id));
    }
    if message.metadata.message_type != MessageType::Response {
        return Verdict::Ignore("a query, not a response".to_owned());
    }
    let asked = &query.queries;
    match message.queries.as_slice() {
        // Some servers leave out the question when they refuse or fail it.
        [] if message.metadata.response_code != ResponseCode::NoError => {}
        [] => return Verdict::Ignore("no question section".to_owned()),
        [question] if asked.first().is_some_and(|asked| same_question(asked, question)) => {}
        other => {
            let questions: Vec<String> = other
                .iter()
                .map(|q| format!("{} {} {}", q.name().to_ascii(), q.query_class(), q.query_type()))
                .collect();
            return Verdict::Ignore(format!("answers another question: {}", questions.join(", ")));
        }
    }
    Verdict::Answer(Box::new(message))
}

fn same_question(asked: &Query, answered: &Query) -> bool {
    asked.name() == answered.name()
        && asked.query_type() == answered.query_type()
        && asked.query_class() == answered.query_class()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::Name;

    use super::*;

    fn query() -> Message {
        let mut message = Message::query();
        message.add_query(Query::query(Name::from_str("www.example.com.").unwrap(), RecordType::A));
        message
    }

    fn response_to(query: &Message) -> Message {
        let mut response = Message::response(query.metadata.id, query.metadata.op_code);
        response.add_queries(query.queries.clone());
        response
    }

    #[test]
    fn resolv_conf_gives_the_first_usable_nameserver() {
        let text =
            "# comment\nsearch example.com\nnameserver fe80::1%eth0\nnameserver 10.0.0.2 \nnameserver 10.0.0.3\n";
        assert_eq!(first_nameserver(text), Some("10.0.0.2:53".parse().unwrap()));
        assert_eq!(first_nameserver("nameserver ::1\n"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(first_nameserver("nameserver fe80::1%2\n"), Some("[fe80::1%2]:53".parse().unwrap()));
        assert_eq!(first_nameserver("options ndots:1\n; nameserver 10.0.0.1\nnameserver\n"), None);
        assert_eq!(first_nameserver(""), None);
    }

    #[test]
    fn only_the_answer_to_the_question_is_accepted() {
        let query = query();
        let good = response_to(&query);
        assert!(matches!(accept(&query, &good.to_vec().unwrap()), Verdict::Answer(_)));

        let mut wrong_id = good.clone();
        wrong_id.metadata.id = query.metadata.id.wrapping_add(1);
        assert!(matches!(accept(&query, &wrong_id.to_vec().unwrap()), Verdict::Ignore(_)));

        let mut other = Message::query();
        other.metadata.id = query.metadata.id;
        other.add_query(Query::query(Name::from_str("other.example.com.").unwrap(), RecordType::A));
        let other = response_to(&other);
        assert!(matches!(accept(&query, &other.to_vec().unwrap()), Verdict::Ignore(_)));

        let mut echoed = query.clone();
        echoed.metadata.message_type = MessageType::Query;
        assert!(matches!(accept(&query, &echoed.to_vec().unwrap()), Verdict::Ignore(_)));

        let mut refused = Message::error_msg(query.metadata.id, query.metadata.op_code, ResponseCode::Refused);
        assert!(matches!(accept(&query, &refused.to_vec().unwrap()), Verdict::Answer(_)));
        refused.metadata.response_code = ResponseCode::NoError;
        assert!(matches!(accept(&query, &refused.to_vec().unwrap()), Verdict::Ignore(_)));

        let id = query.metadata.id.to_be_bytes();
        assert!(matches!(accept(&query, &[id[0], id[1], 0x81]), Verdict::Broken(_)));
        assert!(matches!(accept(&query, &[id[0].wrapping_add(1), id[1], 0x81]), Verdict::Ignore(_)));
    }
}
