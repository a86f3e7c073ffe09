//! A minimal SMTP server for tests: EHLO, STARTTLS or implicit TLS (with the fixture certificate), AUTH
//! PLAIN and LOGIN, MAIL, RCPT, DATA, QUIT. It records every client line and every message as received.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

pub const CA_PEM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/notify/ca.pem");

/// How the server behaves.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// AUTH mechanisms offered (offered only over TLS when `starttls` is on).
    pub auth: Vec<&'static str>,
    /// The credentials accepted.
    pub credentials: Option<(&'static str, &'static str)>,
    /// Offer STARTTLS.
    pub starttls: bool,
    /// TLS from the first byte.
    pub implicit_tls: bool,
    /// The reply to every RCPT, instead of `250 ok`.
    pub rcpt_reply: Option<&'static str>,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    /// Client lines, in order, with `[tls]` marking the start of TLS.
    pub dialogue: Arc<Mutex<Vec<String>>>,
    /// Messages: the raw DATA lines (still dot-stuffed) joined with CRLF.
    pub messages: Arc<Mutex<Vec<String>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

fn acceptor() -> TlsAcceptor {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/notify/");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{dir}localhost.pem")).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}localhost.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

impl SmtpServer {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dialogue: Arc<Mutex<Vec<String>>> = Arc::default();
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let (log, store) = (dialogue.clone(), messages.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let state = State { behaviour: behaviour.clone(), log: log.clone(), store: store.clone() };
                tokio::spawn(async move { state.connection(stream).await });
            }
        });
        Self { addr, dialogue, messages, task: Arc::new(task) }
    }

    pub fn dialogue(&self) -> Vec<String> {
        self.dialogue.lock().unwrap().clone()
    }

    /// The commands only (first word, upper case).
    pub fn verbs(&self) -> Vec<String> {
        self.dialogue().iter().map(|line| line.split(' ').next().unwrap_or("").to_ascii_uppercase()).collect()
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

struct State {
    behaviour: Behaviour,
    log: Arc<Mutex<Vec<String>>>,
    store: Arc<Mutex<Vec<String>>>,
}

enum Next {
    Done,
    StartTls,
}

impl State {
    async fn connection(self, stream: TcpStream) {
        if self.behaviour.implicit_tls {
            let Ok(tls) = acceptor().accept(stream).await else { return };
            self.log.lock().unwrap().push("[tls]".into());
            let mut io = BufReader::new(tls);
            self.session(&mut io, true, true).await;
            return;
        }
        let mut io = BufReader::new(stream);
        if let Next::StartTls = self.session(&mut io, false, true).await {
            let Ok(tls) = acceptor().accept(io.into_inner()).await else { return };
            self.log.lock().unwrap().push("[tls]".into());
            let mut io = BufReader::new(tls);
            self.session(&mut io, true, false).await;
        }
    }

    async fn session<S: AsyncRead + AsyncWrite + Unpin>(&self, io: &mut BufReader<S>, tls: bool, greet: bool) -> Next {
        if greet && io.get_mut().write_all(b"220 test.local ESMTP ready\r\n").await.is_err() {
            return Next::Done;
        }
        loop {
            let Some(line) = self.line(io).await else { return Next::Done };
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let reply: String = match verb.as_str() {
                "EHLO" => {
                    let mut reply = "250-test.local hello\r\n".to_owned();
                    if self.behaviour.starttls && !tls {
                        reply.push_str("250-STARTTLS\r\n");
                    }
                    if !self.behaviour.auth.is_empty() && (tls || !self.behaviour.starttls) {
                        reply.push_str(&format!("250-AUTH {}\r\n", self.behaviour.auth.join(" ")));
                    }
                    reply.push_str("250 8BITMIME\r\n");
                    reply
                }
                "STARTTLS" if self.behaviour.starttls && !tls => {
                    if io.get_mut().write_all(b"220 2.0.0 go ahead\r\n").await.is_err() {
                        return Next::Done;
                    }
                    return Next::StartTls;
                }
                "AUTH" => {
                    let mut words = line.split(' ').skip(1);
                    let given = match words.next().map(str::to_ascii_uppercase).as_deref() {
                        Some("PLAIN") => {
                            let decoded = BASE64.decode(words.next().unwrap_or("")).unwrap_or_default();
                            let decoded = String::from_utf8(decoded).unwrap_or_default();
                            let mut parts = decoded.split('\0').skip(1);
                            Some((parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned()))
                        }
                        Some("LOGIN") => {
                            let _ = io.get_mut().write_all(b"334 VXNlcm5hbWU6\r\n").await;
                            let user = self.line(io).await.unwrap_or_default();
                            let _ = io.get_mut().write_all(b"334 UGFzc3dvcmQ6\r\n").await;
                            let pass = self.line(io).await.unwrap_or_default();
                            let decode =
                                |s: &str| String::from_utf8(BASE64.decode(s).unwrap_or_default()).unwrap_or_default();
                            Some((decode(&user), decode(&pass)))
                        }
                        _ => None,
                    };
                    let ok = matches!((&given, self.behaviour.credentials), (Some((u, p)), Some((eu, ep))) if u == eu && p == ep);
                    if ok { "235 2.7.0 authenticated\r\n".into() } else { "535 5.7.8 authentication failed\r\n".into() }
                }
                "MAIL" => "250 2.1.0 ok\r\n".into(),
                "RCPT" => format!("{}\r\n", self.behaviour.rcpt_reply.unwrap_or("250 2.1.5 ok")),
                "DATA" => {
                    if io.get_mut().write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.is_err() {
                        return Next::Done;
                    }
                    let mut lines = Vec::new();
                    loop {
                        let mut raw = String::new();
                        if io.read_line(&mut raw).await.unwrap_or(0) == 0 {
                            return Next::Done;
                        }
                        let raw = raw.strip_suffix("\r\n").expect("CRLF line ends").to_owned();
                        if raw == "." {
                            break;
                        }
                        lines.push(raw);
                    }
                    self.store.lock().unwrap().push(lines.join("\r\n"));
                    "250 2.0.0 queued\r\n".into()
                }
                "QUIT" => {
                    let _ = io.get_mut().write_all(b"221 2.0.0 bye\r\n").await;
                    return Next::Done;
                }
                _ => "502 5.5.2 unknown command\r\n".into(),
            };
            if io.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return Next::Done;
            }
        }
    }

    async fn line<S: AsyncRead + AsyncWrite + Unpin>(&self, io: &mut BufReader<S>) -> Option<String> {
        let mut line = String::new();
        if io.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        self.log.lock().unwrap().push(line.clone());
        Some(line)
    }
}
