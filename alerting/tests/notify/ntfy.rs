//! ntfy: the exact publish request (topic path, Title/Priority/Tags/Click headers, plain-text body, bearer or
//! basic credentials) for a firing and a resolved alert, and refusals.

use std::time::Duration;

use axum::http::StatusCode;
use probenet_alerting::notify::{HttpAuth, NtfyNotifier, NtfyOptions};
use probenet_alerting::{DeliveryError, Notifier};

use super::common::{
    DASHBOARD, FIRING_FACTS, FIRING_SUBJECT, RESOLVED_SUBJECT, answering, fact_lines, resolved, resolved_facts, sample,
};

const TOKEN: &str = "tk_NtFyAcCeSsToKeN0123456789";
const TOPIC: &str = "/probenet-alerts-x7f2k9";

fn body(facts: &[(&str, &str)]) -> String {
    format!(
        "homepage is down in 2 of 3 regions since 12:00 UTC\n\n{}",
        fact_lines(facts, |label, value| format!("{label}: {value}"))
    )
}

#[tokio::test]
async fn ntfy_gets_title_priority_and_tags_headers() {
    let receiver = answering(StatusCode::OK, r#"{"id":"sPs71M8A2T","event":"message"}"#).await;
    let notifier = NtfyNotifier::new(NtfyOptions {
        url: receiver.url(TOPIC),
        auth: Some(HttpAuth::Bearer(TOKEN.into())),
        priority: 5,
        tags: vec!["probenet".into()],
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    notifier.deliver(&sample()).await.unwrap();
    notifier.deliver(&resolved()).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.line(), ("POST".into(), TOPIC.into()));
        assert_eq!(request.header("content-type").as_deref(), Some("text/plain; charset=utf-8"));
        assert_eq!(request.header("authorization"), Some(format!("Bearer {TOKEN}")));
        assert_eq!(request.header("click").as_deref(), Some(DASHBOARD));
    }
    let firing = &requests[0];
    assert_eq!(firing.header("title").as_deref(), Some(FIRING_SUBJECT));
    assert_eq!(firing.header("priority").as_deref(), Some("5"));
    assert_eq!(firing.header("tags").as_deref(), Some("rotating_light,probenet"));
    assert_eq!(firing.text(), body(&FIRING_FACTS));
    let resolved = &requests[1];
    assert_eq!(resolved.header("title").as_deref(), Some(RESOLVED_SUBJECT));
    assert_eq!(resolved.header("priority").as_deref(), Some("3"));
    assert_eq!(resolved.header("tags").as_deref(), Some("white_check_mark,probenet"));
    assert_eq!(resolved.text(), body(&resolved_facts()));
}

#[tokio::test]
async fn ntfy_basic_auth_and_refusals_without_secrets() {
    let receiver = answering(StatusCode::OK, "{}").await;
    let notifier = NtfyNotifier::new(NtfyOptions {
        url: receiver.url(TOPIC),
        auth: Some(HttpAuth::Basic { username: "probenet".into(), password: "nTfYpAsSwOrD99".into() }),
        ..NtfyOptions::default()
    })
    .unwrap();
    notifier.deliver(&sample()).await.unwrap();
    let request = receiver.requests().pop().unwrap();
    // base64("probenet:nTfYpAsSwOrD99"); the default priority of a firing alert is high (4).
    assert_eq!(request.header("authorization").as_deref(), Some("Basic cHJvYmVuZXQ6blRmWXBBc1N3T3JEOTk="));
    assert_eq!(
        (request.header("priority").as_deref(), request.header("tags").as_deref()),
        (Some("4"), Some("rotating_light"))
    );

    receiver.then(
        403,
        r#"{"code":40301,"http":403,"error":"forbidden","link":"https://ntfy.sh/docs/publish/#authentication"}"#,
    );
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Reject(message) if message.starts_with("http 403: ")), "{error:?}");
    receiver.then(507, &format!("topic {TOPIC} over quota, user probenet:nTfYpAsSwOrD99"));
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Retry(_)), "{error:?}");
    assert!(!error.to_string().contains("x7f2k9") && !error.to_string().contains("nTfYpAsSwOrD99"), "{error}");
    let debug = format!("{notifier:?}");
    assert!(!debug.contains("x7f2k9") && !debug.contains("nTfYpAsSwOrD99"), "{debug}");
}
