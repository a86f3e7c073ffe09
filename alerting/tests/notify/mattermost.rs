//! Mattermost: the exact incoming-webhook request (Markdown text, channel and name) for a firing and a resolved
//! alert, and refusals.

use std::time::Duration;

use axum::http::StatusCode;
use probenet_alerting::notify::{MattermostNotifier, MattermostOptions};
use probenet_alerting::{DeliveryError, Notifier};
use serde_json::json;

use super::common::{
    DASHBOARD, FIRING_FACTS, FIRING_SUBJECT, RESOLVED_SUBJECT, answering, fact_lines, firing_then_resolved_json,
    resolved_facts, sample,
};

const KEY: &str = "mAtTeRmOsThOoKkEy0123456789";

fn text(subject: &str, facts: &[(&str, &str)]) -> String {
    format!(
        "**{subject}**\nhomepage is down in 2 of 3 regions since 12:00 UTC\n\n{}\n[Open in probenet]({DASHBOARD})\n",
        fact_lines(facts, |label, value| format!("**{label}:** {value}"))
    )
}

#[tokio::test]
async fn mattermost_gets_markdown_text_with_channel_and_username() {
    let receiver = answering(StatusCode::OK, "ok").await;
    let notifier = MattermostNotifier::new(MattermostOptions {
        url: receiver.url(&format!("/hooks/{KEY}")),
        channel: Some("ops-alerts".into()),
        username: Some("probenet".into()),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let requests = firing_then_resolved_json(&notifier, &receiver, &format!("/hooks/{KEY}")).await;
    let expected = |subject, facts: &[(&str, &str)]| {
        json!({"text": text(subject, facts), "channel": "ops-alerts", "username": "probenet"}).to_string()
    };
    assert_eq!(requests[0].text(), expected(FIRING_SUBJECT, &FIRING_FACTS));
    assert_eq!(requests[1].text(), expected(RESOLVED_SUBJECT, &resolved_facts()));
}

#[tokio::test]
async fn mattermost_refusals_are_failures_without_the_key() {
    let receiver = answering(StatusCode::OK, "ok").await;
    let notifier = MattermostNotifier::new(MattermostOptions {
        url: receiver.url(&format!("/hooks/{KEY}")),
        ..MattermostOptions::default()
    })
    .unwrap();
    notifier.deliver(&sample()).await.unwrap();
    assert_eq!(receiver.requests()[0].json(), json!({"text": text(FIRING_SUBJECT, &FIRING_FACTS)}));
    receiver.then(
        400,
        &format!(
            r#"{{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook {KEY}.","status_code":400}}"#
        ),
    );
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Reject(message) if message.contains("Invalid webhook <redacted>.")),
        "{error:?}"
    );
    assert!(!error.to_string().contains(KEY));
    receiver.then(500, "");
    assert_eq!(notifier.deliver(&sample()).await.unwrap_err(), DeliveryError::Retry("http 500".into()));
    assert!(!format!("{notifier:?}").contains(KEY));
}
