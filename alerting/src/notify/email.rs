//! Email over SMTP: one plain-text message per notification, with the subject
//! `[FIRING] site-down: homepage down in eu-west, us-east` and the facts in the body.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::BoxFuture;

use super::BuildError;
use super::http::Redactor;
use super::resolve;
pub use super::smtp::SmtpTls;
use super::smtp::{self, Session};
use super::text;
use crate::{DeliveryError, Notification, Notifier};
use probenet_checks::config::alerting::notifiers::email::{EmailSpec, SmtpSecurity};

/// The longest line a message may have (RFC 5322), without its CRLF.
const MAX_LINE: usize = 998;

/// How an [`EmailNotifier`] is set up.
#[derive(Clone)]
pub struct EmailOptions {
    /// The SMTP server's host name (also the name its certificate must carry).
    pub host: String,
    /// Its port: 25 or 587 for plain text and STARTTLS, 465 for implicit TLS.
    pub port: u16,
    /// How the connection is secured.
    pub tls: SmtpTls,
    /// The user name to authenticate with (AUTH PLAIN, else LOGIN), if any.
    pub username: Option<String>,
    /// The password (a secret, never shown).
    pub password: Option<String>,
    /// The sender: `alerts@example.com` or `probenet <alerts@example.com>`.
    pub from: String,
    /// The recipients' addresses.
    pub to: Vec<String>,
    /// The name given in EHLO; `localhost` when unset.
    pub hello_name: Option<String>,
    /// The whole session's timeout; zero means 30 s.
    pub timeout: Duration,
    /// A PEM file of roots to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    pub insecure_skip_verify: bool,
}

impl Default for EmailOptions {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::StartTls,
            username: None,
            password: None,
            from: String::new(),
            to: Vec::new(),
            hello_name: None,
            timeout: Duration::from_secs(30),
            ca_file: None,
            insecure_skip_verify: false,
        }
    }
}

impl fmt::Debug for EmailOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish_non_exhaustive()
    }
}

/// Mails each notification through one SMTP server.
pub struct EmailNotifier {
    session: Session,
    /// The From header as configured (with its display name).
    from_header: String,
    timeout: Duration,
    redactor: Redactor,
}

impl fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("host", &self.session.host)
            .field("port", &self.session.port)
            .field("tls", &self.session.tls)
            .field("username", &self.session.credentials.as_ref().map(|(username, _)| username))
            .field("from", &self.session.from)
            .field("to", &self.session.to)
            .finish_non_exhaustive()
    }
}

/// The bare address of `name <address>` or `address`; `None` when it is not a plausible address.
fn address(text: &str) -> Option<String> {
    let text = text.trim();
    let bare = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => text.get(open + 1..text.len() - 1)?,
        _ => text,
    };
    let (local, domain) = bare.rsplit_once('@')?;
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';');
    (!local.is_empty() && !domain.is_empty() && !bare.contains(bad)).then(|| bare.to_owned())
}

impl EmailNotifier {
    /// Builds the notifier a config's `email` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &EmailSpec) -> Result<Self, String> {
        let options = EmailOptions {
            host: spec.host.clone(),
            port: spec.port,
            tls: match spec.security {
                SmtpSecurity::StartTls => SmtpTls::StartTls,
                SmtpSecurity::Tls => SmtpTls::Tls,
                SmtpSecurity::None => SmtpTls::None,
            },
            username: spec.username.clone(),
            password: spec.password.as_ref().map(resolve).transpose()?,
            from: spec.from.clone(),
            to: spec.to.clone(),
            ..EmailOptions::default()
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options (host, addresses, credentials); nothing is contacted yet.
    pub fn new(options: EmailOptions) -> Result<Self, BuildError> {
        let host = options.host.trim().to_owned();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(BuildError::Invalid("email: host is empty or invalid".into()));
        }
        if options.port == 0 {
            return Err(BuildError::Invalid("email: port is 0".into()));
        }
        let from = address(&options.from)
            .ok_or_else(|| BuildError::Invalid(format!("email: from {:?} is no address", options.from)))?;
        if options.from.contains(|c: char| c.is_control()) {
            return Err(BuildError::Invalid("email: from holds a control character".into()));
        }
        if options.to.is_empty() {
            return Err(BuildError::Invalid("email: no recipient".into()));
        }
        let to = options
            .to
            .iter()
            .map(|to| address(to).ok_or_else(|| BuildError::Invalid(format!("email: to {to:?} is no address"))))
            .collect::<Result<Vec<_>, _>>()?;
        let credentials = match (options.username, options.password) {
            (Some(username), Some(password)) if !username.is_empty() => Some((username, password)),
            (Some(username), None) if !username.is_empty() => {
                return Err(BuildError::Invalid("email: username without password".into()));
            }
            (None, Some(_)) => return Err(BuildError::Invalid("email: password without username".into())),
            _ => None,
        };
        let hello_name =
            options.hello_name.filter(|name| !name.trim().is_empty()).unwrap_or_else(|| "localhost".into());
        if hello_name.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(BuildError::Invalid("email: hello_name holds a space or control character".into()));
        }
        let mut secrets = Vec::new();
        if let Some((username, password)) = &credentials {
            secrets.push(password.clone());
            secrets.push(BASE64.encode(format!("\0{username}\0{password}")));
            secrets.push(BASE64.encode(password));
        }
        let timeout = if options.timeout.is_zero() { Duration::from_secs(30) } else { options.timeout };
        Ok(Self {
            session: Session {
                host,
                port: options.port,
                tls: options.tls,
                ca_file: options.ca_file,
                insecure: options.insecure_skip_verify,
                hello_name,
                credentials,
                from,
                to,
            },
            from_header: options.from.trim().to_owned(),
            timeout,
            redactor: Redactor::new(secrets),
        })
    }

    /// The whole message (headers and body, CRLF line ends) for a notification, dated `now`.
    pub fn message(&self, notification: &Notification, now: chrono::DateTime<chrono::Utc>) -> String {
        let body = text::body(notification);
        let domain = self.session.from.rsplit_once('@').map_or("probenet", |(_, domain)| domain);
        let mut random = [0u8; 8];
        // Without randomness the time alone still makes the ID unique enough for one sender.
        let _ = aws_lc_rs::rand::fill(&mut random);
        let random: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        let headers = [
            ("Date", now.to_rfc2822()),
            ("From", self.from_header.clone()),
            ("To", self.session.to.join(", ")),
            ("Subject", encode_header(&text::subject(notification))),
            ("Message-ID", format!("<{}.{random}@{domain}>", now.timestamp_millis())),
            ("MIME-Version", "1.0".to_owned()),
            ("Content-Type", "text/plain; charset=utf-8".to_owned()),
            ("Content-Transfer-Encoding", if body.is_ascii() { "7bit" } else { "8bit" }.to_owned()),
            ("X-Probenet-Alert-Key", text::one_line(&notification.key)),
        ];
        let mut message = String::new();
        for (name, value) in headers {
            message.push_str(&format!("{name}: {value}\r\n"));
        }
        message.push_str("\r\n");
        for line in body.lines() {
            for piece in split_long(line) {
                message.push_str(piece);
                message.push_str("\r\n");
            }
        }
        message
    }
}

/// A header value as is when ASCII, else as RFC 2047 encoded words (base64, UTF-8), folded.
fn encode_header(value: &str) -> String {
    let value = text::one_line(value);
    if value.is_ascii() {
        return fold(&value);
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", BASE64.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", BASE64.encode(&chunk)));
    }
    words.join("\r\n ")
}

/// An ASCII header value folded at spaces so that lines stay near 78 characters.
fn fold(value: &str) -> String {
    let mut out = String::new();
    let mut line_len = "Subject: ".len();
    for (index, word) in value.split(' ').enumerate() {
        if index > 0 {
            if line_len + 1 + word.len() > 78 {
                out.push_str("\r\n");
                line_len = 0;
            }
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

/// A body line cut into pieces of at most [`MAX_LINE`] bytes, at character boundaries.
fn split_long(line: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = line;
    while rest.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}

impl Notifier for EmailNotifier {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let message = self.message(notification, chrono::Utc::now());
            let result = match tokio::time::timeout(self.timeout, smtp::deliver(&self.session, &message)).await {
                Ok(result) => result,
                Err(_) => Err(DeliveryError::Retry(format!("smtp: no answer within {:?}", self.timeout))),
            };
            result.map_err(|error| self.redactor.error(error))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_headers() {
        assert_eq!(address("probenet <alerts@example.com>").as_deref(), Some("alerts@example.com"));
        assert_eq!(address("ops@example.com").as_deref(), Some("ops@example.com"));
        assert_eq!(address("not an address"), None);
        assert_eq!(address("a@b>\r\nBcc: x@y"), None);
        assert_eq!(encode_header("[FIRING] a: b"), "[FIRING] a: b");
        assert_eq!(encode_header("é"), "=?UTF-8?B?w6k=?=");
        assert_eq!(split_long(&"x".repeat(2000)).len(), 3);
    }
}
