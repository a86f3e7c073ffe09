//! Notifiers from the config's `notifiers` section: each notifier's module builds it from its spec
//! (`WebhookNotifier::from_spec`...), resolving its secrets on this machine; this is the one match over kinds.

use std::collections::BTreeMap;
use std::sync::Arc;

use probenet_checks::config::alerting::NotifierSpec;

use super::{
    AlertmanagerNotifier, DiscordNotifier, EmailNotifier, GoogleChatNotifier, MattermostNotifier, NtfyNotifier,
    OpsgenieNotifier, PagerDutyNotifier, SlackNotifier, TeamsNotifier, TelegramNotifier, WebhookNotifier,
};
use crate::Notifier;

/// Builds every configured notifier; an error names the notifier and never holds a secret.
pub fn notifiers(specs: &BTreeMap<String, NotifierSpec>) -> Result<BTreeMap<String, Arc<dyn Notifier>>, String> {
    let mut built = BTreeMap::new();
    for (name, spec) in specs {
        built.insert(name.clone(), notifier(name, spec)?);
    }
    Ok(built)
}

/// Builds the notifier `name` of the config (its secrets resolved on this machine); an error names it and never
/// holds a secret.
pub fn notifier(name: &str, spec: &NotifierSpec) -> Result<Arc<dyn Notifier>, String> {
    one(spec).map_err(|message| format!("notifier {name:?} ({}): {message}", spec.kind()))
}

fn one(spec: &NotifierSpec) -> Result<Arc<dyn Notifier>, String> {
    Ok(match spec {
        NotifierSpec::Webhook(spec) => Arc::new(WebhookNotifier::from_spec(spec)?),
        NotifierSpec::Slack(spec) => Arc::new(SlackNotifier::from_spec(spec)?),
        NotifierSpec::Alertmanager(spec) => Arc::new(AlertmanagerNotifier::from_spec(spec)?),
        NotifierSpec::PagerDuty(spec) => Arc::new(PagerDutyNotifier::from_spec(spec)?),
        NotifierSpec::Email(spec) => Arc::new(EmailNotifier::from_spec(spec)?),
        NotifierSpec::Discord(spec) => Arc::new(DiscordNotifier::from_spec(spec)?),
        NotifierSpec::Teams(spec) => Arc::new(TeamsNotifier::from_spec(spec)?),
        NotifierSpec::Telegram(spec) => Arc::new(TelegramNotifier::from_spec(spec)?),
        NotifierSpec::Ntfy(spec) => Arc::new(NtfyNotifier::from_spec(spec)?),
        NotifierSpec::Opsgenie(spec) => Arc::new(OpsgenieNotifier::from_spec(spec)?),
        NotifierSpec::GoogleChat(spec) => Arc::new(GoogleChatNotifier::from_spec(spec)?),
        NotifierSpec::Mattermost(spec) => Arc::new(MattermostNotifier::from_spec(spec)?),
    })
}
