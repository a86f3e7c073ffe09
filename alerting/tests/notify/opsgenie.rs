//! Opsgenie: the exact Alert API v2 requests (create with an alias, close by alias, `GenieKey` auth) for a
//! firing and a resolved alert, and refusals that never show the key.

use std::time::Duration;

use axum::http::StatusCode;
use probenet_alerting::notify::{OpsgenieNotifier, OpsgenieOptions, opsgenie_priority, text};
use probenet_alerting::{DeliveryError, Notifier};
use serde_json::json;

use super::common::{DASHBOARD, answering, resolved, sample};

const KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";

#[tokio::test]
async fn opsgenie_creates_then_closes_by_alias() {
    let receiver =
        answering(StatusCode::ACCEPTED, r#"{"result":"Request will be processed","took":0.302,"requestId":"43a2"}"#)
            .await;
    let notifier = OpsgenieNotifier::new(OpsgenieOptions {
        api_key: KEY.into(),
        api_url: receiver.url("/"),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    notifier.deliver(&sample()).await.unwrap();
    notifier.deliver(&resolved()).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.header("authorization"), Some(format!("GenieKey {KEY}")));
        assert_eq!(request.header("content-type").as_deref(), Some("application/json"));
    }
    assert_eq!(requests[0].line(), ("POST".into(), "/v2/alerts".into()));
    let create = json!({
        "message": "site-down: homepage down in eu-west, us-east",
        "alias": "site-down/homepage",
        "description": text::body(&sample()),
        "tags": ["probenet", "page"],
        "details": {
            "check": "homepage", "target": "https://example.com/", "regions": "eu-west, us-east (2 of 3)",
            "since": "2024-05-01 12:00:00 UTC", "reason": "timeout", "error": "no response within 10s",
            "severity": "page", "labels": "team=web", "dashboard": DASHBOARD, "team": "web",
        },
        "entity": "homepage",
        "source": "probenet",
        "priority": "P1",
    });
    assert_eq!(requests[0].text(), create.to_string());
    // The alias holds a `/`: it is one path segment, percent-encoded.
    assert_eq!(
        requests[1].line(),
        ("POST".into(), "/v2/alerts/site-down%2Fhomepage/close?identifierType=alias".into())
    );
    assert_eq!(
        requests[1].text(),
        json!({"source": "probenet", "note": "site-down: homepage recovered (was down in eu-west, us-east)"})
            .to_string()
    );
    assert_eq!((opsgenie_priority("ticket"), opsgenie_priority("info"), opsgenie_priority("odd")), ("P3", "P5", "P3"));
}

#[tokio::test]
async fn opsgenie_behind_a_path_prefix_and_refusals_without_the_key() {
    let receiver = answering(StatusCode::ACCEPTED, "{}").await;
    let notifier = OpsgenieNotifier::new(OpsgenieOptions {
        api_key: KEY.into(),
        api_url: receiver.url("/opsgenie"),
        ..OpsgenieOptions::default()
    })
    .unwrap();
    receiver
        .then(422, r#"{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty."},"took":0.0,"requestId":"1"}"#)
        .then(401, &format!(r#"{{"message":"Could not authenticate with key {KEY}","took":0.0}}"#))
        .then(429, r#"{"message":"Too many requests","took":0.0}"#);
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Reject(message) if message.starts_with("http 422: ")), "{error:?}");
    assert_eq!(receiver.requests()[0].line(), ("POST".into(), "/opsgenie/v2/alerts".into()));
    let error = notifier.deliver(&resolved()).await.unwrap_err();
    assert_eq!(
        error,
        DeliveryError::Reject(
            r#"http 401: {"message":"Could not authenticate with key <redacted>","took":0.0}"#.into()
        )
    );
    assert!(matches!(notifier.deliver(&sample()).await.unwrap_err(), DeliveryError::Retry(_)));
    assert!(!format!("{notifier:?}").contains(KEY));
}
