//! A small SMTP client over Tokio: greeting, EHLO, STARTTLS or implicit TLS (rustls), AUTH PLAIN or LOGIN,
//! one message to a list of recipients, QUIT. 4xx replies and network failures are retried, 5xx refused.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use probenet_checks::tls::Verdict;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::DeliveryError;

/// The longest reply line read, and the most lines of one reply.
const MAX_LINE: u64 = 4096;
const MAX_REPLY_LINES: usize = 100;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// Plain text all along (port 25 inside a trusted network; credentials travel in clear).
    None,
    /// Plain text, upgraded with `STARTTLS` before anything else is sent (port 587); the server must offer it.
    #[default]
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Everything one session needs.
#[derive(Clone)]
pub(crate) struct Session {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub hello_name: String,
    pub credentials: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
}

/// One reply: its code and its text lines.
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join(" ")
    }
}

struct Conn<S> {
    io: BufReader<S>,
}

fn retry(message: impl Into<String>) -> DeliveryError {
    DeliveryError::Retry(message.into())
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Self {
        Self { io: BufReader::new(stream) }
    }

    async fn read_reply(&mut self, step: &str) -> Result<Reply, DeliveryError> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = AsyncReadExt::take(&mut self.io, MAX_LINE)
                .read_line(&mut line)
                .await
                .map_err(|error| retry(format!("smtp {step}: {error}")))?;
            if read == 0 {
                return Err(retry(format!("smtp {step}: connection closed")));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line.get(..3).and_then(|code| code.parse::<u16>().ok()).filter(|code| (200..600).contains(code));
            let Some(code) = code else {
                return Err(retry(format!("smtp {step}: malformed reply")));
            };
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(retry(format!("smtp {step}: reply too long")));
            }
        }
    }

    async fn write(&mut self, data: &[u8], step: &str) -> Result<(), DeliveryError> {
        let io = self.io.get_mut();
        io.write_all(data).await.map_err(|error| retry(format!("smtp {step}: {error}")))?;
        io.flush().await.map_err(|error| retry(format!("smtp {step}: {error}")))
    }

    /// Sends a command and reads the reply, which must have one of the `ok` codes. `shown` is what errors
    /// call the command (never the credentials it may carry).
    async fn command(&mut self, line: &str, shown: &str, ok: &[u16]) -> Result<Reply, DeliveryError> {
        self.write(format!("{line}\r\n").as_bytes(), shown).await?;
        let reply = self.read_reply(shown).await?;
        expect(reply, shown, ok)
    }
}

/// A reply with one of the `ok` codes, or the error it means: 4xx retry, anything else refused.
fn expect(reply: Reply, step: &str, ok: &[u16]) -> Result<Reply, DeliveryError> {
    if ok.contains(&reply.code) {
        return Ok(reply);
    }
    let message = format!("smtp {step}: {} {}", reply.code, super::text::one_line(&reply.text()));
    Err(if (400..500).contains(&reply.code) { DeliveryError::Retry(message) } else { DeliveryError::Reject(message) })
}

/// What the server offers after EHLO.
#[derive(Debug, Default)]
struct Extensions {
    starttls: bool,
    auth: Vec<String>,
    eight_bit: bool,
}

async fn hello<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Conn<S>, name: &str) -> Result<Extensions, DeliveryError> {
    conn.write(format!("EHLO {name}\r\n").as_bytes(), "ehlo").await?;
    let reply = conn.read_reply("ehlo").await?;
    if reply.code >= 500 {
        // A server without ESMTP: HELO, and no extension.
        conn.command(&format!("HELO {name}"), "helo", &[250]).await?;
        return Ok(Extensions::default());
    }
    let reply = expect(reply, "ehlo", &[250])?;
    let mut extensions = Extensions::default();
    for line in reply.lines.iter().skip(1) {
        let mut words = line.split_whitespace();
        match words.next().map(str::to_ascii_uppercase).as_deref() {
            Some("STARTTLS") => extensions.starttls = true,
            Some("8BITMIME") => extensions.eight_bit = true,
            Some("AUTH") => extensions.auth.extend(words.map(str::to_ascii_uppercase)),
            _ => {}
        }
    }
    Ok(extensions)
}

async fn tls_connect(
    stream: TcpStream,
    session: &Session,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, DeliveryError> {
    let (config, verifier) = probenet_checks::tls::client_config(session.ca_file.as_deref(), &[], None)
        .map_err(|error| DeliveryError::Reject(format!("smtp tls: {error}")))?;
    let name = ServerName::try_from(session.host.clone())
        .map_err(|_| DeliveryError::Reject("smtp tls: invalid server name".to_owned()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = connector
        .connect(name, stream)
        .await
        .map_err(|error| retry(format!("smtp tls handshake: {}", probenet_checks::net::describe(&error))))?;
    if !session.insecure {
        let report = verifier.report();
        match report {
            Some(report) if report.verdict == Verdict::Ok => {}
            Some(report) => {
                let why =
                    report.problems.first().map_or_else(|| report.verdict.as_str().to_owned(), |p| p.message.clone());
                return Err(retry(format!("smtp tls: server certificate refused: {why}")));
            }
            None => return Err(retry("smtp tls: the server presented no certificate")),
        }
    }
    Ok(stream)
}

/// Delivers one message (`data`: headers and body, CRLF line ends, not yet dot-stuffed).
pub(crate) async fn deliver(session: &Session, data: &str) -> Result<(), DeliveryError> {
    let stream = TcpStream::connect((session.host.as_str(), session.port))
        .await
        .map_err(|error| retry(format!("smtp connect: {error}")))?;
    match session.tls {
        SmtpTls::Tls => {
            let stream = tls_connect(stream, session).await?;
            let mut conn = Conn::new(stream);
            let reply = conn.read_reply("greeting").await?;
            expect(reply, "greeting", &[220])?;
            let extensions = hello(&mut conn, &session.hello_name).await?;
            transaction(&mut conn, &extensions, session, data).await
        }
        SmtpTls::StartTls => {
            let mut conn = Conn::new(stream);
            let reply = conn.read_reply("greeting").await?;
            expect(reply, "greeting", &[220])?;
            let extensions = hello(&mut conn, &session.hello_name).await?;
            if !extensions.starttls {
                return Err(DeliveryError::Reject("smtp: the server does not offer STARTTLS".to_owned()));
            }
            conn.command("STARTTLS", "starttls", &[220]).await?;
            if !conn.io.buffer().is_empty() {
                return Err(retry("smtp starttls: the server sent data before the handshake"));
            }
            let stream = tls_connect(conn.io.into_inner(), session).await?;
            let mut conn = Conn::new(stream);
            let extensions = hello(&mut conn, &session.hello_name).await?;
            transaction(&mut conn, &extensions, session, data).await
        }
        SmtpTls::None => {
            let mut conn = Conn::new(stream);
            let reply = conn.read_reply("greeting").await?;
            expect(reply, "greeting", &[220])?;
            let extensions = hello(&mut conn, &session.hello_name).await?;
            transaction(&mut conn, &extensions, session, data).await
        }
    }
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    extensions: &Extensions,
    username: &str,
    password: &str,
) -> Result<(), DeliveryError> {
    let offers = |mechanism: &str| extensions.auth.iter().any(|offered| offered == mechanism);
    if offers("PLAIN") {
        let token = BASE64.encode(format!("\0{username}\0{password}"));
        conn.command(&format!("AUTH PLAIN {token}"), "auth plain", &[235]).await?;
    } else if offers("LOGIN") {
        conn.command("AUTH LOGIN", "auth login", &[334]).await?;
        conn.command(&BASE64.encode(username), "auth login (user name)", &[334]).await?;
        conn.command(&BASE64.encode(password), "auth login (password)", &[235]).await?;
    } else {
        let offered = if extensions.auth.is_empty() { "none".to_owned() } else { extensions.auth.join(" ") };
        return Err(DeliveryError::Reject(format!("smtp auth: the server offers neither PLAIN nor LOGIN ({offered})")));
    }
    Ok(())
}

async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    extensions: &Extensions,
    session: &Session,
    data: &str,
) -> Result<(), DeliveryError> {
    if let Some((username, password)) = &session.credentials {
        authenticate(conn, extensions, username, password).await?;
    }
    let body = if extensions.eight_bit && !data.is_ascii() { " BODY=8BITMIME" } else { "" };
    conn.command(&format!("MAIL FROM:<{}>{body}", session.from), "mail from", &[250]).await?;
    for to in &session.to {
        conn.command(&format!("RCPT TO:<{to}>"), "rcpt to", &[250, 251]).await?;
    }
    conn.command("DATA", "data", &[354]).await?;
    conn.write(dot_stuff(data).as_bytes(), "data").await?;
    let reply = conn.read_reply("end of data").await?;
    expect(reply, "end of data", &[250])?;
    // The message is accepted: a failing QUIT changes nothing.
    let _ = conn.command("QUIT", "quit", &[221]).await;
    Ok(())
}

/// The message as sent after DATA: CRLF line ends, a dot doubled at the start of a line, and the final
/// `.` line.
pub(crate) fn dot_stuff(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 16);
    for line in data.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if data.ends_with('\n') {
        // split gave one empty piece after the last line end.
        out.truncate(out.len() - 2);
    }
    out.push_str(".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_the_data() {
        assert_eq!(dot_stuff("a\r\n.b\r\n..\r\n"), "a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(dot_stuff("a\n."), "a\r\n..\r\n.\r\n");
    }
}
