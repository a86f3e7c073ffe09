//! Notifiers from the config's `notifiers` section, with their secrets resolved on this machine.

use std::collections::BTreeMap;
use std::sync::Arc;

use probenet_checks::config::alerting::{self as spec, NotifierSpec, SmtpSecurity};
use probenet_checks::secret::Template;

use super::{
    AlertmanagerNotifier, AlertmanagerOptions, EmailNotifier, EmailOptions, HttpAuth, PagerDutyNotifier,
    PagerDutyOptions, SlackNotifier, SlackOptions, SmtpTls, WebhookNotifier, WebhookOptions,
};
use crate::Notifier;

/// Builds every configured notifier; an error names the notifier and never holds a secret.
pub fn notifiers(specs: &BTreeMap<String, NotifierSpec>) -> Result<BTreeMap<String, Arc<dyn Notifier>>, String> {
    let mut built = BTreeMap::new();
    for (name, spec) in specs {
        let notifier = one(spec).map_err(|message| format!("notifier {name:?} ({}): {message}", spec.kind()))?;
        built.insert(name.clone(), notifier);
    }
    Ok(built)
}

fn resolve(template: &Template) -> Result<String, String> {
    template.resolve(&mut Vec::new()).map_err(|error| error.0)
}

fn auth(auth: Option<&spec::HttpAuth>) -> Result<Option<HttpAuth>, String> {
    Ok(match auth {
        None => None,
        Some(spec::HttpAuth::Bearer(token)) => Some(HttpAuth::Bearer(resolve(token)?)),
        Some(spec::HttpAuth::Basic(username, password)) => {
            Some(HttpAuth::Basic { username: username.clone(), password: resolve(password)? })
        }
    })
}

fn one(spec: &NotifierSpec) -> Result<Arc<dyn Notifier>, String> {
    let built: Arc<dyn Notifier> = match spec {
        NotifierSpec::Webhook(webhook) => {
            let mut headers = Vec::new();
            for (name, value) in &webhook.headers {
                headers.push((name.clone(), resolve(value)?));
            }
            let options = WebhookOptions {
                url: resolve(&webhook.url)?,
                secret: webhook.secret.as_ref().map(resolve).transpose()?,
                headers,
                ..WebhookOptions::default()
            };
            Arc::new(WebhookNotifier::new(options).map_err(|error| error.to_string())?)
        }
        NotifierSpec::Slack(slack) => {
            let options = SlackOptions { url: resolve(&slack.url)?, ..SlackOptions::default() };
            Arc::new(SlackNotifier::new(options).map_err(|error| error.to_string())?)
        }
        NotifierSpec::Alertmanager(alertmanager) => {
            let options = AlertmanagerOptions {
                url: resolve(&alertmanager.url)?,
                auth: auth(alertmanager.auth.as_ref())?,
                ..AlertmanagerOptions::default()
            };
            Arc::new(AlertmanagerNotifier::new(options).map_err(|error| error.to_string())?)
        }
        NotifierSpec::PagerDuty(pagerduty) => {
            let options = PagerDutyOptions {
                routing_key: resolve(&pagerduty.routing_key)?,
                url: resolve(&pagerduty.url)?,
                ..PagerDutyOptions::default()
            };
            Arc::new(PagerDutyNotifier::new(options).map_err(|error| error.to_string())?)
        }
        NotifierSpec::Email(email) => {
            let options = EmailOptions {
                host: email.host.clone(),
                port: email.port,
                tls: match email.security {
                    SmtpSecurity::StartTls => SmtpTls::StartTls,
                    SmtpSecurity::Tls => SmtpTls::Tls,
                    SmtpSecurity::None => SmtpTls::None,
                },
                username: email.username.clone(),
                password: email.password.as_ref().map(resolve).transpose()?,
                from: email.from.clone(),
                to: email.to.clone(),
                ..EmailOptions::default()
            };
            Arc::new(EmailNotifier::new(options).map_err(|error| error.to_string())?)
        }
    };
    Ok(built)
}
