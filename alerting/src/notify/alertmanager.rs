//! Prometheus Alertmanager through its v2 API: `POST /api/v2/alerts` with one alert carrying our labels and
//! annotations. A firing alert is valid for a while (`endsAt`), so the sender must post it again before it
//! lapses; a resolved one carries its end time.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use super::BuildError;
use super::http::{self, Redactor};
use super::resolve;
use super::text;
use crate::{DeliveryError, Notification, Notifier, Status};
use probenet_checks::config::alerting::notifiers::{self, alertmanager::AlertmanagerSpec};

/// Credentials for an HTTP API.
#[derive(Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic ...`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

impl HttpAuth {
    /// The credentials a notifier's spec holds, resolved on this machine (the error never holds a secret).
    pub fn resolve(spec: Option<&notifiers::HttpAuth>) -> Result<Option<Self>, String> {
        Ok(match spec {
            None => None,
            Some(notifiers::HttpAuth::Bearer(token)) => Some(Self::Bearer(resolve(token)?)),
            Some(notifiers::HttpAuth::Basic(username, password)) => {
                Some(Self::Basic { username: username.clone(), password: resolve(password)? })
            }
        })
    }
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Basic { username, .. } => write!(f, "Basic {{ username: {username:?}, password: <redacted> }}"),
        }
    }
}

/// How an [`AlertmanagerNotifier`] is set up.
#[derive(Clone, Debug)]
pub struct AlertmanagerOptions {
    /// Alertmanager's base URL (`http://alertmanager:9093`, or with a path prefix); `/api/v2/alerts` is added
    /// unless the URL already ends with it.
    pub url: String,
    /// Credentials, if Alertmanager sits behind an authenticating proxy or has `web.config` auth.
    pub auth: Option<HttpAuth>,
    /// The whole request's timeout; zero means 10 s.
    pub timeout: Duration,
    /// A PEM file of extra roots to trust for https.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    pub insecure_skip_verify: bool,
    /// How often the engine re-sends a firing alert. A firing alert is posted with `endsAt` four of these
    /// ahead, so Alertmanager resolves it by itself only when probenet stops sending it.
    pub resend_interval: Duration,
    /// The alert's `generatorURL` when a notification has no dashboard link.
    pub generator_url: Option<String>,
}

impl Default for AlertmanagerOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            auth: None,
            timeout: Duration::from_secs(10),
            ca_file: None,
            insecure_skip_verify: false,
            resend_interval: Duration::from_secs(60),
            generator_url: None,
        }
    }
}

/// Posts each notification as one alert to Alertmanager.
pub struct AlertmanagerNotifier {
    url: reqwest::Url,
    auth: Option<HttpAuth>,
    client: reqwest::Client,
    resend_interval: Duration,
    generator_url: Option<String>,
    redactor: Redactor,
}

impl fmt::Debug for AlertmanagerNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertmanagerNotifier")
            .field("origin", &http::origin(&self.url))
            .field("auth", &self.auth)
            .field("resend_interval", &self.resend_interval)
            .finish_non_exhaustive()
    }
}

impl AlertmanagerNotifier {
    /// Builds the notifier a config's `alertmanager` describes, resolving its secrets on this machine.
    pub fn from_spec(spec: &AlertmanagerSpec) -> Result<Self, String> {
        let options = AlertmanagerOptions {
            url: resolve(&spec.url)?,
            auth: HttpAuth::resolve(spec.auth.as_ref())?,
            ..AlertmanagerOptions::default()
        };
        Self::new(options).map_err(|error| error.to_string())
    }

    /// Checks the options and builds the HTTP client.
    pub fn new(options: AlertmanagerOptions) -> Result<Self, BuildError> {
        let mut url = http::parse_url("alertmanager url", &options.url)?;
        if !url.path().trim_end_matches('/').ends_with("/api/v2/alerts") {
            let path = format!("{}/api/v2/alerts", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        let mut secrets = Redactor::url_parts(&url);
        match &options.auth {
            Some(HttpAuth::Bearer(token)) => secrets.push(token.clone()),
            Some(HttpAuth::Basic { password, .. }) => secrets.push(password.clone()),
            None => {}
        }
        let client = http::client(options.timeout, options.ca_file.as_deref(), options.insecure_skip_verify)?;
        let resend_interval =
            if options.resend_interval.is_zero() { Duration::from_secs(60) } else { options.resend_interval };
        Ok(Self {
            url,
            auth: options.auth,
            client,
            resend_interval,
            generator_url: options.generator_url,
            redactor: Redactor::new(secrets),
        })
    }

    /// How often a firing alert must be sent again to stay active in Alertmanager (the engine's repeat
    /// interval for this notifier should not exceed it).
    pub fn resend_interval(&self) -> Duration {
        self.resend_interval
    }

    /// The JSON array posted for a notification, with `now_ms` as the current time.
    pub fn payload(&self, notification: &Notification, now_ms: i64) -> serde_json::Value {
        let ends_at = match notification.status {
            Status::Resolved => notification.ended_ms.unwrap_or(now_ms),
            Status::Firing => {
                let validity = i64::try_from(self.resend_interval.as_millis()).unwrap_or(i64::MAX / 8);
                now_ms.saturating_add(validity.saturating_mul(4))
            }
        };
        let generator = notification.dashboard_url.clone().or_else(|| self.generator_url.clone());
        let mut alert = json!({
            "labels": labels(notification),
            "annotations": annotations(notification),
            "startsAt": text::rfc3339_ms(notification.since_ms),
            "endsAt": text::rfc3339_ms(ends_at),
        });
        if let (Some(generator), Some(object)) = (generator, alert.as_object_mut()) {
            object.insert("generatorURL".to_owned(), json!(generator));
        }
        json!([alert])
    }
}

/// The alert's labels: the notification's labels, then ours over them: `alertname`, `severity`, `key`,
/// `check` and `job` (the check), `instance` (its target), and `region` for an alert about one region and no check.
pub fn labels(notification: &Notification) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = notification
        .labels
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (label_name(name), value.clone()))
        .collect();
    labels.insert("alertname".into(), notification.alert.clone());
    labels.insert("severity".into(), notification.severity.clone());
    labels.insert("key".into(), notification.key.clone());
    if let Some(check) = &notification.check {
        labels.insert("check".into(), check.clone());
        labels.insert("job".into(), check.clone());
    }
    if let Some(target) = &notification.target {
        labels.insert("instance".into(), target.clone());
    }
    if let (None, [region]) = (&notification.check, notification.regions.as_slice()) {
        labels.insert("region".into(), region.clone());
    }
    labels.retain(|_, value| !value.is_empty());
    labels
}

/// A label name as Prometheus accepts it: `[a-zA-Z_][a-zA-Z0-9_]*`, other characters turned into `_`.
fn label_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The alert's annotations: `summary` (the title), `description` (the summary and the facts), `dashboard`,
/// and `regions`, `since`, `reason`, `error` (which change while the alert fires, so they are no labels).
pub fn annotations(notification: &Notification) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".into(), text::title(notification));
    let facts: Vec<String> = text::fields(notification)
        .into_iter()
        .filter(|(label, _)| !matches!(*label, "Labels" | "Dashboard"))
        .map(|(label, value)| format!("{label}: {value}"))
        .collect();
    annotations.insert("description".into(), format!("{}\n{}", notification.summary.trim(), facts.join("\n")));
    if let Some(url) = &notification.dashboard_url {
        annotations.insert("dashboard".into(), url.clone());
    }
    if !notification.regions.is_empty() {
        annotations.insert("regions".into(), notification.regions.join(", "));
    }
    annotations.insert("since".into(), text::rfc3339_ms(notification.since_ms));
    if let Some(reason) = &notification.reason {
        annotations.insert("reason".into(), reason.clone());
    }
    if let Some(error) = &notification.error {
        annotations.insert("error".into(), text::one_line(error));
    }
    annotations
}

impl Notifier for AlertmanagerNotifier {
    fn kind(&self) -> &'static str {
        "alertmanager"
    }

    fn resend_interval(&self) -> Option<Duration> {
        Some(self.resend_interval)
    }

    fn deliver<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let body = self.payload(notification, chrono::Utc::now().timestamp_millis());
            let mut request = self.client.post(self.url.clone()).json(&body);
            request = match &self.auth {
                Some(HttpAuth::Bearer(token)) => request.bearer_auth(token),
                Some(HttpAuth::Basic { username, password }) => request.basic_auth(username, Some(password)),
                None => request,
            };
            http::send(request, &self.redactor).await.map(drop)
        })
    }
}
