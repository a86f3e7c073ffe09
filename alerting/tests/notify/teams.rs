//! Microsoft Teams: the exact Workflows webhook request (a message with an Adaptive Card) for a firing and a
//! resolved alert, and refusals.

use std::time::Duration;

use axum::http::StatusCode;
use probenet_alerting::notify::{TeamsNotifier, TeamsOptions};
use probenet_alerting::{DeliveryError, Notifier};
use serde_json::json;

use super::common::{
    DASHBOARD, FIRING_FACTS, FIRING_SUBJECT, RESOLVED_SUBJECT, answering, firing_then_resolved_json, resolved_facts,
    sample,
};

const PATH: &str = "/workflows/0a1b2c3d/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=TeAmSsIgNaTuRe0123456789";

fn card(subject: &str, color: &str, facts: &[(&str, &str)]) -> serde_json::Value {
    let facts: Vec<_> = facts.iter().map(|(title, value)| json!({"title": title, "value": value})).collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": subject, "weight": "Bolder", "size": "Medium", "color": color,
                     "wrap": true},
                    {"type": "TextBlock", "text": "homepage is down in 2 of 3 regions since 12:00 UTC", "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
                "actions": [{"type": "Action.OpenUrl", "title": "Open in probenet", "url": DASHBOARD}],
            },
        }],
    })
}

#[tokio::test]
async fn teams_gets_an_adaptive_card() {
    // A workflow trigger answers 202 Accepted.
    let receiver = answering(StatusCode::ACCEPTED, "").await;
    let notifier =
        TeamsNotifier::new(TeamsOptions { url: receiver.url(PATH), timeout: Duration::from_secs(5) }).unwrap();
    let requests = firing_then_resolved_json(&notifier, &receiver, PATH).await;
    assert_eq!(requests[0].text(), card(FIRING_SUBJECT, "Attention", &FIRING_FACTS).to_string());
    assert_eq!(requests[1].text(), card(RESOLVED_SUBJECT, "Good", &resolved_facts()).to_string());
}

#[tokio::test]
async fn teams_refusals_are_failures_without_the_signature() {
    let receiver = answering(StatusCode::ACCEPTED, "").await;
    let notifier = TeamsNotifier::new(TeamsOptions { url: receiver.url(PATH), ..TeamsOptions::default() }).unwrap();
    receiver
        .then(401, r#"{"error":{"code":"DirectApiAuthorizationRequired","message":"sig=TeAmSsIgNaTuRe0123456789 is not valid"}}"#)
        .then(502, "Bad Gateway");
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Reject(message) if message.starts_with("http 401: ")), "{error:?}");
    assert!(!error.to_string().contains("TeAmSsIgNaTuRe") && error.to_string().contains("<redacted>"), "{error}");
    assert_eq!(notifier.deliver(&sample()).await.unwrap_err(), DeliveryError::Retry("http 502: Bad Gateway".into()));
    let debug = format!("{notifier:?}");
    assert!(!debug.contains("TeAmSsIgNaTuRe") && !debug.contains("workflows"), "{debug}");
}
