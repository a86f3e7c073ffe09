//! Alertmanager tests: the real Debian `prometheus-alertmanager` receives our alert, shows it in its API with
//! our labels, routes it to a webhook receiver, and resolves it; plus the auth header and a refused alert.

use std::time::Duration;

use probenet_alerting::notify::{AlertmanagerNotifier, AlertmanagerOptions, HttpAuth};
use probenet_alerting::{DeliveryError, Notifier};
use probenet_testkit::stores::{Store, alertmanager_with};

use super::common::{Receiver, poll, resolved, sample};

/// A real Alertmanager routing every alert to `webhook` quickly, resolves included.
async fn start_alertmanager(webhook: &str) -> Store {
    let config = format!(
        "route:\n  receiver: w\n  group_by: [alertname, check]\n  group_wait: 100ms\n  group_interval: 500ms\n  \
         repeat_interval: 1h\nreceivers:\n  - name: w\n    webhook_configs:\n      - url: {webhook}\n        \
         send_resolved: true\n"
    );
    alertmanager_with(&config).await
}

/// Our alerts in Alertmanager's API now.
async fn alerts(url: &str) -> Vec<serde_json::Value> {
    let response = reqwest::Client::new()
        .get(format!("{url}/api/v2/alerts?filter=alertname%3D%22site-down%22&active=true"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    response.json::<Vec<serde_json::Value>>().await.unwrap()
}

/// The webhook notifications Alertmanager sent, as JSON.
fn routed(receiver: &Receiver) -> Vec<serde_json::Value> {
    receiver.requests().iter().map(|request| request.json()).collect()
}

#[tokio::test]
async fn real_alertmanager_shows_routes_and_resolves_our_alert() {
    let receiver = Receiver::start().await;
    let alertmanager = start_alertmanager(&receiver.url("/")).await;
    let notifier = AlertmanagerNotifier::new(AlertmanagerOptions {
        url: alertmanager.base.clone(),
        resend_interval: Duration::from_secs(30),
        ..AlertmanagerOptions::default()
    })
    .unwrap();
    assert_eq!(notifier.resend_interval(), Duration::from_secs(30));

    notifier.deliver(&sample()).await.expect("alertmanager accepts the alert");
    let shown = poll(Duration::from_secs(10), || async { alerts(&alertmanager.base).await.into_iter().next() })
        .await
        .expect("the alert shows in the API");
    let labels = &shown["labels"];
    for (name, value) in [
        ("alertname", "site-down"),
        ("severity", "page"),
        ("check", "homepage"),
        ("job", "homepage"),
        ("instance", "https://example.com/"),
        ("team", "web"),
        ("key", "site-down/homepage"),
    ] {
        assert_eq!(labels[name], value, "label {name} in {shown}");
    }
    let annotations = &shown["annotations"];
    assert_eq!(annotations["summary"], "site-down: homepage down in eu-west, us-east");
    assert_eq!(annotations["dashboard"], "https://dash.example.com/checks/homepage");
    assert_eq!(annotations["regions"], "eu-west, us-east");
    assert_eq!(annotations["reason"], "timeout");
    assert!(annotations["description"].as_str().unwrap().contains("Since: 2024-05-01 12:00:00 UTC"));
    assert_eq!(shown["status"]["state"], "active");
    assert_eq!(shown["generatorURL"], "https://dash.example.com/checks/homepage");
    assert_eq!(shown["startsAt"], "2024-05-01T12:00:00.000Z");

    // Routed to the webhook receiver with our labels.
    let firing =
        poll(Duration::from_secs(10), || async { routed(&receiver).into_iter().find(|n| n["status"] == "firing") })
            .await
            .expect("alertmanager routes the firing alert");
    assert_eq!(firing["alerts"][0]["labels"]["check"], "homepage");
    assert_eq!(firing["alerts"][0]["labels"]["team"], "web");
    assert_eq!(firing["alerts"][0]["annotations"]["reason"], "timeout");

    let mut ended = resolved();
    ended.ended_ms = Some(chrono::Utc::now().timestamp_millis());
    notifier.deliver(&ended).await.expect("alertmanager accepts the resolve");
    let gone =
        poll(Duration::from_secs(10), || async { alerts(&alertmanager.base).await.is_empty().then_some(()) }).await;
    assert!(gone.is_some(), "the alert is still active: {:?}", alerts(&alertmanager.base).await);
    let resolution =
        poll(Duration::from_secs(10), || async { routed(&receiver).into_iter().find(|n| n["status"] == "resolved") })
            .await
            .expect("alertmanager routes the resolution");
    assert_eq!(resolution["alerts"][0]["labels"]["key"], "site-down/homepage");

    // An alert Alertmanager refuses (ending before it starts) is a final failure with its reason.
    let mut backwards = resolved();
    backwards.ended_ms = Some(backwards.since_ms - 60_000);
    let error = notifier.deliver(&backwards).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Reject(message) if message.starts_with("http 400")), "{error:?}");
}

#[tokio::test]
async fn alertmanager_wire_format_and_auth() {
    let receiver = Receiver::start().await;
    let notifier = AlertmanagerNotifier::new(AlertmanagerOptions {
        url: receiver.url("/am/"),
        auth: Some(HttpAuth::Bearer("am-bearer-token-4d2e".into())),
        resend_interval: Duration::from_secs(60),
        ..AlertmanagerOptions::default()
    })
    .unwrap();
    let before = chrono::Utc::now().timestamp_millis();
    notifier.deliver(&sample()).await.unwrap();
    notifier.deliver(&resolved()).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests[0].uri.path(), "/am/api/v2/alerts");
    assert_eq!(requests[0].header("authorization").as_deref(), Some("Bearer am-bearer-token-4d2e"));
    let firing = requests[0].json();
    let ends = chrono::DateTime::parse_from_rfc3339(firing[0]["endsAt"].as_str().unwrap()).unwrap().timestamp_millis();
    assert!(ends >= before + 4 * 60_000, "a firing alert stays valid for four resend intervals");
    assert_eq!(requests[1].json()[0]["endsAt"], "2024-05-01T12:15:00.000Z");
    assert!(!format!("{notifier:?}").contains("am-bearer-token"));

    let basic = AlertmanagerNotifier::new(AlertmanagerOptions {
        url: receiver.url(""),
        auth: Some(HttpAuth::Basic { username: "probenet".into(), password: "am-password-8c1f".into() }),
        ..AlertmanagerOptions::default()
    })
    .unwrap();
    basic.deliver(&sample()).await.unwrap();
    let last = receiver.requests().pop().unwrap();
    assert_eq!(last.uri.path(), "/api/v2/alerts");
    let expected = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "probenet:am-password-8c1f");
    assert_eq!(last.header("authorization"), Some(format!("Basic {expected}")));
    assert!(!format!("{basic:?}").contains("am-password"));
}
