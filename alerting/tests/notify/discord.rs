//! Discord: the exact "Execute Webhook" request for a firing and a resolved alert, and refusals.

use std::time::Duration;

use axum::http::StatusCode;
use probenet_alerting::notify::{DiscordNotifier, DiscordOptions};
use probenet_alerting::{DeliveryError, Notifier};
use serde_json::json;

use super::common::{
    DASHBOARD, FIRING_FACTS, FIRING_SUBJECT, RESOLVED_SUBJECT, answering, firing_then_resolved_json, resolved_facts,
    sample,
};

const TOKEN: &str = "dIsCoRdWeBhOoKtOkEn0123456789";

fn fields(facts: &[(&str, &str)]) -> serde_json::Value {
    let fields: Vec<_> = facts
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value, "inline": !matches!(*name, "Error" | "Labels" | "Target")}))
        .collect();
    json!(fields)
}

#[tokio::test]
async fn discord_gets_a_message_with_one_embed() {
    // Discord answers a webhook without `?wait=true` with 204 No Content.
    let receiver = answering(StatusCode::NO_CONTENT, "").await;
    let notifier = DiscordNotifier::new(DiscordOptions {
        url: receiver.url(&format!("/api/webhooks/1234567890/{TOKEN}")),
        username: Some("probenet".into()),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let requests = firing_then_resolved_json(&notifier, &receiver, &format!("/api/webhooks/1234567890/{TOKEN}")).await;
    let firing = json!({
        "content": FIRING_SUBJECT,
        "username": "probenet",
        "embeds": [{
            "title": FIRING_SUBJECT,
            "url": DASHBOARD,
            "description": "homepage is down in 2 of 3 regions since 12:00 UTC",
            "color": 0xE0_1E5A,
            "fields": fields(&FIRING_FACTS),
            "footer": {"text": "probenet · site-down/homepage"},
            "timestamp": "2024-05-01T12:00:00.000Z",
        }],
        "allowed_mentions": {"parse": []},
    });
    assert_eq!(requests[0].text(), firing.to_string());
    let resolved = json!({
        "content": RESOLVED_SUBJECT,
        "username": "probenet",
        "embeds": [{
            "title": RESOLVED_SUBJECT,
            "url": DASHBOARD,
            "description": "homepage is down in 2 of 3 regions since 12:00 UTC",
            "color": 0x2E_B67D,
            "fields": fields(&resolved_facts()),
            "footer": {"text": "probenet · site-down/homepage"},
            "timestamp": "2024-05-01T12:15:00.000Z",
        }],
        "allowed_mentions": {"parse": []},
    });
    assert_eq!(requests[1].text(), resolved.to_string());
}

#[tokio::test]
async fn discord_refusals_are_failures_without_the_token() {
    let receiver = answering(StatusCode::NO_CONTENT, "").await;
    let notifier = DiscordNotifier::new(DiscordOptions {
        url: receiver.url(&format!("/api/webhooks/1234567890/{TOKEN}")),
        ..DiscordOptions::default()
    })
    .unwrap();
    // An unknown webhook is final; the echo of the token is scrubbed. A rate limit is retried.
    receiver.then(401, &format!(r#"{{"message": "Invalid Webhook Token {TOKEN}", "code": 50027}}"#));
    receiver.then(429, r#"{"message": "You are being rate limited.", "retry_after": 0.5, "global": false}"#);
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert_eq!(
        error,
        DeliveryError::Reject(r#"http 401: {"message": "Invalid Webhook Token <redacted>", "code": 50027}"#.into())
    );
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Retry(message) if message.starts_with("http 429: ")), "{error:?}");
    let debug = format!("{notifier:?}");
    assert!(!debug.contains(TOKEN) && !debug.contains("/api/webhooks"), "{debug}");
    // Without a username the key is left out.
    let body = receiver.requests()[0].json();
    assert!(body.get("username").is_none() && body["allowed_mentions"] == json!({"parse": []}));
}
