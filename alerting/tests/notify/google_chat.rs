//! Google Chat: the exact incoming-webhook request (a text message) for a firing and a resolved alert, and
//! refusals.

use std::time::Duration;

use axum::http::StatusCode;
use probenet_alerting::notify::{GoogleChatNotifier, GoogleChatOptions};
use probenet_alerting::{DeliveryError, Notifier};
use serde_json::json;

use super::common::{
    DASHBOARD, FIRING_FACTS, FIRING_SUBJECT, RESOLVED_SUBJECT, answering, fact_lines, firing_then_resolved_json,
    resolved_facts, sample,
};

const PATH: &str = "/v1/spaces/AAAAbCdEfGh/messages?key=GcHaTkEy0123456789&token=GcHaTtOkEn0123456789";

fn text(subject: &str, facts: &[(&str, &str)]) -> String {
    format!(
        "*{subject}*\nhomepage is down in 2 of 3 regions since 12:00 UTC\n\n{}\n<{DASHBOARD}|Open in probenet>\n",
        fact_lines(facts, |label, value| format!("{label}: {value}"))
    )
}

#[tokio::test]
async fn google_chat_gets_a_text_message() {
    let receiver = answering(StatusCode::OK, r#"{"name": "spaces/AAAAbCdEfGh/messages/1"}"#).await;
    let notifier =
        GoogleChatNotifier::new(GoogleChatOptions { url: receiver.url(PATH), timeout: Duration::from_secs(5) })
            .unwrap();
    let requests = firing_then_resolved_json(&notifier, &receiver, PATH).await;
    assert_eq!(requests[0].text(), json!({"text": text(FIRING_SUBJECT, &FIRING_FACTS)}).to_string());
    assert_eq!(requests[1].text(), json!({"text": text(RESOLVED_SUBJECT, &resolved_facts())}).to_string());
}

#[tokio::test]
async fn google_chat_refusals_are_failures_without_the_key() {
    let receiver = answering(StatusCode::OK, "{}").await;
    let notifier =
        GoogleChatNotifier::new(GoogleChatOptions { url: receiver.url(PATH), ..GoogleChatOptions::default() }).unwrap();
    receiver.then(
        400,
        r#"{"error": {"code": 400, "message": "Invalid token GcHaTtOkEn0123456789", "status": "INVALID_ARGUMENT"}}"#,
    );
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert_eq!(
        error,
        DeliveryError::Reject(
            r#"http 400: {"error": {"code": 400, "message": "Invalid token <redacted>", "status": "INVALID_ARGUMENT"}}"#
                .into()
        )
    );
    receiver.then(503, "unavailable");
    assert_eq!(notifier.deliver(&sample()).await.unwrap_err(), DeliveryError::Retry("http 503: unavailable".into()));
    let debug = format!("{notifier:?}");
    assert!(!debug.contains("GcHaT") && !debug.contains("spaces"), "{debug}");
}
