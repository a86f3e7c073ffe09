//! Notifiers in the config: one module per kind (its YAML type, its spec and its validation) and one table,
//! [`notifiers!`], that makes [`RawNotifier`], [`NotifierSpec`], the kind keys and the dispatch from them.
//!
//! A new notifier is a module here plus one line in the table; its sender, in `probenet-alerting`, is one arm
//! of an exhaustive match over [`NotifierSpec`], so the compiler asks for it.

pub mod alertmanager;
pub mod discord;
pub mod email;
pub mod google_chat;
pub mod mattermost;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};

use crate::config::validate::is_name;
use crate::config::{Ctx, LITERAL_CREDENTIAL, Path, Place};
use crate::http::BasicAuthSpec;
use crate::secret::Template;
use crate::yaml::{Node, NodeKind};

/// Declares the notifier kinds, one line each: `Variant = key: RawType => SpecType;`, where `key` is the YAML
/// key and the module (`notifiers/<key>.rs`) holding both types and `validate(cx, at, raw) -> Option<Spec>`.
/// The doc comment becomes the key's documentation in the schema and in docs/config.md.
macro_rules! notifiers {
    ($($(#[$doc:meta])* $variant:ident = $key:ident: $raw:ident => $spec:ident;)*) => {
        /// One notifier: a name (the map key) and exactly one kind key.
        #[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(rename = "Notifier")]
        pub struct RawNotifier {
            $($(#[$doc])* pub $key: Option<$key::$raw>,)*
        }

        /// Where notifications go: a validated notifier of one kind.
        #[derive(Debug, Clone)]
        pub enum NotifierSpec {
            $($(#[$doc])* $variant($key::$spec),)*
        }

        impl NotifierSpec {
            /// The kind key, as written in YAML.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($key),)*
                }
            }
        }

        /// The kind keys, in the order the docs list them.
        pub const NOTIFIER_KINDS: [&str; [$(stringify!($key)),*].len()] = [$(stringify!($key)),*];

        /// The spec of the one kind `raw` holds (`kind`, found by [`Ctx::one_of`]), validated.
        fn validate_kind(cx: &mut Ctx<'_>, path: &Path, kind: &str, raw: RawNotifier) -> Option<NotifierSpec> {
            $(if let Some(raw) = raw.$key {
                return $key::validate(cx, &path.key(stringify!($key)), raw).map(NotifierSpec::$variant);
            })*
            // The key is written with no value (`slack:`, `slack: null`).
            cx.error_at_key(&path.key(kind), format!("`{kind}` has no options: write them as a mapping under it"));
            None
        }
    };
}

notifiers! {
    /// A generic webhook: a JSON `POST` of each notification, signed with HMAC-SHA256 when `secret` is set.
    Webhook = webhook: RawWebhook => WebhookSpec;
    /// A Slack incoming webhook.
    Slack = slack: RawSlack => SlackSpec;
    /// A Prometheus Alertmanager, through its v2 API.
    Alertmanager = alertmanager: RawAlertmanager => AlertmanagerSpec;
    /// PagerDuty, through the Events API v2.
    PagerDuty = pagerduty: RawPagerDuty => PagerDutySpec;
    /// Email over SMTP.
    Email = email: RawEmail => EmailSpec;
    /// A Discord channel's webhook: a message with an embed.
    Discord = discord: RawDiscord => DiscordSpec;
    /// A Microsoft Teams channel, through a Workflows webhook: an Adaptive Card.
    Teams = teams: RawTeams => TeamsSpec;
    /// A Telegram chat, through a bot (Bot API `sendMessage`).
    Telegram = telegram: RawTelegram => TelegramSpec;
    /// An ntfy topic: a push notification with a title, priority and tags.
    Ntfy = ntfy: RawNtfy => NtfySpec;
    /// Opsgenie, through the Alert API v2: created when firing, closed when resolved.
    Opsgenie = opsgenie: RawOpsgenie => OpsgenieSpec;
    /// A Google Chat space's incoming webhook: a text message.
    GoogleChat = google_chat: RawGoogleChat => GoogleChatSpec;
    /// A Mattermost incoming webhook: a Markdown message.
    Mattermost = mattermost: RawMattermost => MattermostSpec;
}

pub(in crate::config) fn collect_notifiers(
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
    let kind = cx.one_of(
        path,
        &NOTIFIER_KINDS,
        "notifier",
        Some(format!("a notifier needs one of {}", NOTIFIER_KINDS.join(", "))),
    )?;
    validate_kind(cx, path, kind, raw)
}

/// Credentials for an HTTP notifier.
#[derive(Debug, Clone)]
pub enum HttpAuth {
    /// `Authorization: Bearer ...`.
    Bearer(Template),
    /// Basic authentication: user name and password.
    Basic(String, Template),
}

/// `bearer` (written under `bearer_key`) or `basic_auth`, not both: `Err` after reporting both.
fn http_auth(
    cx: &mut Ctx<'_>,
    at: &Path,
    bearer_key: &str,
    bearer: Option<&str>,
    basic: Option<BasicAuthSpec>,
) -> Result<Option<HttpAuth>, ()> {
    let bearer = bearer.and_then(|text| cx.credential(&at.key(bearer_key), text));
    let basic = basic.and_then(|auth| {
        let password = cx.credential(&at.key("basic_auth").key("password"), &auth.password)?;
        Some((auth.username, password))
    });
    match (bearer, basic) {
        (Some(_), Some(_)) => {
            cx.error_at_key(&at.key(bearer_key), format!("set either `basic_auth` or `{bearer_key}`, not both"));
            Err(())
        }
        (Some(token), None) => Ok(Some(HttpAuth::Bearer(token))),
        (None, Some((user, password))) => Ok(Some(HttpAuth::Basic(user, password))),
        (None, None) => Ok(None),
    }
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

/// An optional base URL (`api_url`): the default when not written.
fn base_url(cx: &mut Ctx<'_>, path: &Path, text: Option<&str>, default: &str) -> Option<Template> {
    match text {
        Some(text) => url_template(cx, path, text, Credential::WithQuery),
        None => Some(Template::literal(default)),
    }
}
