//! Validation of notifiers: exactly one kind each, URLs, secrets, SMTP settings.

use std::collections::{BTreeMap, HashMap};

use super::spec::{RawEmail, RawNotifier};
use super::{
    AlertmanagerSpec, EmailSpec, HttpAuth, NotifierSpec, PAGERDUTY_URL, PagerDutySpec, SlackSpec, SmtpSecurity,
    WebhookSpec,
};
use crate::config::validate::is_name;
use crate::config::{Ctx, LITERAL_CREDENTIAL, Path, Place};
use crate::secret::Template;
use crate::yaml::{Node, NodeKind};

const NOTIFIER_KINDS: [&str; 5] = ["webhook", "slack", "alertmanager", "pagerduty", "email"];

pub(super) fn collect_notifiers(
    cx: &mut Ctx<'_>,
    notifiers: &mut BTreeMap<String, NotifierSpec>,
    places: &mut HashMap<String, Place>,
) {
    let base = Path::root().key("notifiers");
    let Some(node) = cx.node(&base) else { return };
    let NodeKind::Map(entries) = &node.kind else {
        if !node.is_null() {
            cx.error(&base, format!("expected a mapping of notifier name to its options, found {}", node.type_name()));
        }
        return;
    };
    for (key, _) in entries {
        let path = base.key(&key.text);
        if !is_name(&key.text) {
            cx.error_at_key(
                &path,
                format!("{:?} is not a valid notifier name: use lowercase letters, digits, `-` and `_`", key.text),
            );
            continue;
        }
        if let Some(first) = places.get(&key.text) {
            cx.error_at_key(&path, format!("notifier {:?} is already defined at {first}", key.text));
            continue;
        }
        places.insert(key.text.clone(), Place { file: cx.file().to_owned(), line: key.mark.line, col: key.mark.col });
        if let Some(spec) = validate_notifier(cx, &path) {
            notifiers.insert(key.text.clone(), spec);
        }
    }
}

fn validate_notifier(cx: &mut Ctx<'_>, path: &Path) -> Option<NotifierSpec> {
    if cx.node(path).is_some_and(Node::is_null) {
        cx.error(path, format!("a notifier needs one of {}", NOTIFIER_KINDS.join(", ")));
        return None;
    }
    let raw = cx.deserialize::<RawNotifier>(path)?;
    cx.node(path)?;
    cx.one_of(
        path,
        &NOTIFIER_KINDS,
        "notifier",
        Some(format!("a notifier needs one of {}", NOTIFIER_KINDS.join(", "))),
    )?;
    if let Some(raw) = raw.webhook {
        let at = path.key("webhook");
        let url = url_template(cx, &at.key("url"), &raw.url, Credential::WithQuery);
        let secret = raw.secret.as_deref().and_then(|text| cx.credential(&at.key("secret"), text));
        let mut headers = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            let header = at.key("headers").key(&name);
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                cx.error_at_key(&header, format!("{name:?} is not a valid header name"));
            } else if let Some(value) = cx.header_value(&header, &name, &value) {
                headers.push((name, value));
            }
        }
        return Some(NotifierSpec::Webhook(WebhookSpec { url: url?, secret, headers }));
    }
    if let Some(raw) = raw.slack {
        let url = url_template(cx, &path.key("slack").key("url"), &raw.url, Credential::Always)?;
        return Some(NotifierSpec::Slack(SlackSpec { url }));
    }
    if let Some(raw) = raw.alertmanager {
        let at = path.key("alertmanager");
        let url = url_template(cx, &at.key("url"), &raw.url, Credential::WithQuery);
        let bearer = raw.bearer_token.as_deref().and_then(|text| cx.credential(&at.key("bearer_token"), text));
        let basic = raw.basic_auth.and_then(|auth| {
            let password = cx.credential(&at.key("basic_auth").key("password"), &auth.password)?;
            Some((auth.username, password))
        });
        let auth = match (bearer, basic) {
            (Some(_), Some(_)) => {
                cx.error_at_key(&at.key("bearer_token"), "set either `basic_auth` or `bearer_token`, not both");
                return None;
            }
            (Some(token), None) => Some(HttpAuth::Bearer(token)),
            (None, Some((user, password))) => Some(HttpAuth::Basic(user, password)),
            (None, None) => None,
        };
        return Some(NotifierSpec::Alertmanager(AlertmanagerSpec { url: url?, auth }));
    }
    if let Some(raw) = raw.pagerduty {
        let at = path.key("pagerduty");
        let routing_key = cx.credential(&at.key("routing_key"), &raw.routing_key);
        let url = match raw.url.as_deref() {
            Some(text) => url_template(cx, &at.key("url"), text, Credential::WithQuery),
            None => Some(Template::literal(PAGERDUTY_URL)),
        };
        return Some(NotifierSpec::PagerDuty(PagerDutySpec { routing_key: routing_key?, url: url? }));
    }
    let raw = raw.email?;
    validate_email(cx, &path.key("email"), raw).map(NotifierSpec::Email)
}

fn validate_email(cx: &mut Ctx<'_>, at: &Path, raw: RawEmail) -> Option<EmailSpec> {
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

/// When a URL written literally is a credential, to be warned about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    /// Always: the URL is itself the key (Slack's incoming webhooks).
    Always,
    /// When it has a query string, where tokens usually go.
    WithQuery,
}

/// A URL that may hold secrets; checked now when it holds none, and warned about when it is a credential
/// written literally.
fn url_template(cx: &mut Ctx<'_>, path: &Path, text: &str, credential: Credential) -> Option<Template> {
    let template = cx.template(path, text)?;
    if template.has_secrets() {
        return Some(template);
    }
    match url::Url::parse(text) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            cx.error(path, format!("{text:?}: scheme {:?} is not http or https", url.scheme()));
            None
        }
        Ok(url) if url.host().is_none() => {
            cx.error(path, format!("{text:?} has no host"));
            None
        }
        Ok(url) if url.password().is_some() => {
            cx.error(path, "put credentials in a secret reference, not in the URL");
            None
        }
        Ok(url) => {
            if credential == Credential::Always || url.query().is_some() {
                cx.warn(path, LITERAL_CREDENTIAL);
            }
            Some(template)
        }
        Err(error) => {
            cx.error(path, format!("{text:?} is not a valid URL: {error}"));
            None
        }
    }
}
