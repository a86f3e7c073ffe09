//! The email notifier's config: the SMTP server, how it is secured, credentials, sender and recipients.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, Path};
use crate::secret::Template;

/// Email over SMTP.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Email")]
pub struct RawEmail {
    /// The SMTP server as `host:port`, such as `smtp.example.com:587`.
    pub smtp: String,
    /// How the connection is secured: `starttls` (default), `tls` (implicit TLS, usually port 465) or `none`.
    pub security: Option<String>,
    /// The user name for SMTP authentication.
    pub username: Option<String>,
    /// The password for SMTP authentication. Write it as a secret reference.
    pub password: Option<String>,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with `STARTTLS` (required).
    StartTls,
    /// TLS from the first byte.
    Tls,
    /// No TLS (only for a local relay).
    None,
}

/// Email over SMTP, validated.
#[derive(Debug, Clone)]
pub struct EmailSpec {
    /// The SMTP server's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// The user name, when the server wants authentication.
    pub username: Option<String>,
    /// The password.
    pub password: Option<Template>,
    /// The sender.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawEmail) -> Option<EmailSpec> {
    let security = match raw.security.as_deref() {
        None | Some("starttls") => Some(SmtpSecurity::StartTls),
        Some("tls") => Some(SmtpSecurity::Tls),
        Some("none") => Some(SmtpSecurity::None),
        Some(other) => {
            cx.error(&at.key("security"), format!("{other:?} is not one of starttls, tls, none"));
            None
        }
    };
    let default_port = match security {
        Some(SmtpSecurity::Tls) => 465,
        Some(SmtpSecurity::None) => 25,
        _ => 587,
    };
    let server = cx.host_port(&at.key("smtp"), &raw.smtp, Some(default_port));
    let password = raw.password.as_deref().and_then(|text| cx.credential(&at.key("password"), text));
    if raw.username.is_some() != raw.password.is_some() {
        let key = if raw.username.is_some() { "username" } else { "password" };
        cx.error_at_key(&at.key(key), "set both `username` and `password`, or neither");
    }
    let mut ok = check_address(cx, &at.key("from"), &raw.from);
    if raw.to.is_empty() {
        cx.error(&at.key("to"), "the list of recipients is empty");
        ok = false;
    }
    for (i, address) in raw.to.iter().enumerate() {
        ok &= check_address(cx, &at.key("to").index(i), address);
    }
    let (host, port) = server?;
    let security = security?;
    ok.then_some(EmailSpec { host, port, security, username: raw.username, password, from: raw.from, to: raw.to })
}

fn check_address(cx: &mut Ctx<'_>, path: &Path, address: &str) -> bool {
    let valid = address.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !address.contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if !valid {
        cx.error(path, format!("{address:?} is not an email address such as oncall@example.com"));
    }
    valid
}
