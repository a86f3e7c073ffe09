//! Notifier tests against real loopback receivers: the webhook's signature, the exact Slack, PagerDuty, Discord,
//! Teams, Telegram, ntfy, Opsgenie, Google Chat and Mattermost requests, notifiers built from a config, the dispatcher's retries and failure records, SMTP dialogues and a real Alertmanager.
#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

#[path = "notify/alertmanager.rs"]
mod alertmanager;
#[path = "notify/common.rs"]
mod common;
#[path = "notify/config.rs"]
mod config;
#[path = "notify/discord.rs"]
mod discord;
#[path = "notify/email.rs"]
mod email;
#[path = "notify/google_chat.rs"]
mod google_chat;
#[path = "notify/mattermost.rs"]
mod mattermost;
#[path = "notify/ntfy.rs"]
mod ntfy;
#[path = "notify/opsgenie.rs"]
mod opsgenie;
#[path = "notify/smtp_server.rs"]
mod smtp_server;
#[path = "notify/teams.rs"]
mod teams;
#[path = "notify/telegram.rs"]
mod telegram;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::http::StatusCode;
use common::{Received, Receiver, poll, refused_port, resolved, sample};
use probenet_alerting::notify::{
    DeliveryRecord, DeliveryStatus, Dispatcher, DispatcherOptions, PagerDutyNotifier, PagerDutyOptions, SlackNotifier,
    SlackOptions, WebhookNotifier, WebhookOptions,
};
use probenet_alerting::{DeliveryError, Notifier};
use serde_json::json;

const SECRET: &str = "shared-webhook-secret-7f3a";

/// The receiver's side of the documented recipe: the timestamp is recent, and the signature is the HMAC
/// of `timestamp.body` (compared in constant time).
fn verify(secret: &str, request: &Received, now: i64) -> Result<(), &'static str> {
    let timestamp = request.header("x-probenet-timestamp").ok_or("no timestamp")?;
    let timestamp: i64 = timestamp.parse().map_err(|_| "bad timestamp")?;
    if (now - timestamp).abs() > 300 {
        return Err("stale");
    }
    let signature = request.header("x-probenet-signature").ok_or("no signature")?;
    let hex = signature.strip_prefix("sha256=").ok_or("not sha256")?;
    let tag: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| "bad hex")?;
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(&request.body);
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()), &message, &tag).map_err(|_| "mismatch")
}

async fn verifying_receiver() -> Receiver {
    Receiver::with_judge(Arc::new(|request: &Received| match verify(SECRET, request, chrono::Utc::now().timestamp()) {
        Ok(()) => (StatusCode::OK, "ok".into()),
        Err(why) => (StatusCode::UNAUTHORIZED, format!("signature: {why}")),
    }))
    .await
}

fn webhook(url: String, secret: &str) -> WebhookNotifier {
    WebhookNotifier::new(WebhookOptions {
        url,
        secret: Some(secret.into()),
        headers: vec![("X-Team".into(), "web".into())],
        timeout: Duration::from_secs(5),
        ..WebhookOptions::default()
    })
    .unwrap()
}

#[tokio::test]
async fn webhook_is_signed_and_the_receiver_verifies_it() {
    let receiver = verifying_receiver().await;
    let notifier = webhook(receiver.url("/hook"), SECRET);
    notifier.deliver(&sample()).await.expect("a correctly signed delivery is accepted");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!((request.method.as_str(), request.uri.path()), ("POST", "/hook"));
    assert_eq!(request.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(request.header("x-team").as_deref(), Some("web"));
    assert!(request.header("x-probenet-signature").unwrap().starts_with("sha256="));
    let body = request.json();
    assert_eq!(
        body,
        json!({
            "version": 1, "alert": "site-down", "key": "site-down/homepage", "status": "firing",
            "severity": "page", "check": "homepage", "target": "https://example.com/",
            "regions": ["eu-west", "us-east"], "total_regions": 3, "since": "2024-05-01T12:00:00.000Z",
            "ended": null, "reason": "timeout", "error": "no response within 10s", "labels": {"team": "web"},
            "title": "site-down: homepage down in eu-west, us-east",
            "summary": "homepage is down in 2 of 3 regions since 12:00 UTC",
            "dashboard_url": "https://dash.example.com/checks/homepage",
        })
    );

    // The same headers with a tampered body are refused by the receiver.
    let tampered = String::from_utf8(request.body.to_vec()).unwrap().replace("\"firing\"", "\"resolved\"");
    let client = reqwest::Client::new();
    let mut replay = client.post(receiver.url("/hook")).body(tampered);
    for name in ["x-probenet-timestamp", "x-probenet-signature", "content-type"] {
        replay = replay.header(name, request.header(name).unwrap());
    }
    let answer = replay.send().await.unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(answer.text().await.unwrap(), "signature: mismatch");

    // A notifier with another secret is refused, for good, and its error does not hold either secret.
    let wrong = webhook(receiver.url("/hook"), "another-secret-9c1d");
    let error = wrong.deliver(&resolved()).await.unwrap_err();
    assert_eq!(error, DeliveryError::Reject("http 401: signature: mismatch".into()));

    // An unsigned notifier sends no signature headers.
    let unsigned =
        WebhookNotifier::new(WebhookOptions { url: receiver.url("/plain"), ..WebhookOptions::default() }).unwrap();
    assert!(unsigned.deliver(&sample()).await.is_err());
    let last = receiver.requests().pop().unwrap();
    assert_eq!((last.header("x-probenet-signature"), last.header("x-probenet-timestamp")), (None, None));
}

#[tokio::test]
async fn slack_gets_the_documented_webhook_payload() {
    let receiver = Receiver::start().await;
    let notifier = SlackNotifier::new(SlackOptions {
        url: receiver.url("/services/T000/B000/slacktokenXYZ123"),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let mut firing = sample();
    firing.error = Some("expected <200>, got 503 & a body".into());
    notifier.deliver(&firing).await.unwrap();
    notifier.deliver(&resolved()).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].uri.path(), "/services/T000/B000/slacktokenXYZ123");
    assert_eq!(requests[0].header("content-type").as_deref(), Some("application/json"));
    let subject = "[FIRING] site-down: homepage down in eu-west, us-east";
    assert_eq!(
        requests[0].json(),
        json!({
            "text": subject,
            "attachments": [{
                "fallback": subject,
                "color": "#E01E5A",
                "title": subject,
                "title_link": "https://dash.example.com/checks/homepage",
                "text": "homepage is down in 2 of 3 regions since 12:00 UTC",
                "fields": [
                    {"title": "Check", "value": "homepage", "short": true},
                    {"title": "Target", "value": "https://example.com/", "short": false},
                    {"title": "Regions", "value": "eu-west, us-east (2 of 3)", "short": true},
                    {"title": "Since", "value": "2024-05-01 12:00:00 UTC", "short": true},
                    {"title": "Reason", "value": "timeout", "short": true},
                    {"title": "Error", "value": "expected &lt;200&gt;, got 503 &amp; a body", "short": false},
                    {"title": "Severity", "value": "page", "short": true},
                    {"title": "Labels", "value": "team=web", "short": false},
                ],
                "footer": "probenet · site-down/homepage",
                "ts": 1_714_564_800,
            }],
        })
    );
    let resolved = requests[1].json();
    assert_eq!(resolved["text"], "[RESOLVED] site-down: homepage recovered (was down in eu-west, us-east)");
    assert_eq!(resolved["attachments"][0]["color"], "#2EB67D");
    assert_eq!(resolved["attachments"][0]["ts"], 1_714_565_700);
    assert_eq!(
        resolved["attachments"][0]["fields"][4],
        json!({"title": "Ended", "value": "2024-05-01 12:15:00 UTC (after 15m)", "short": true})
    );

    // Slack's own refusals: 404 channel_not_found is for good, 429 is retried; the URL never shows.
    receiver.then(404, "channel_not_found").then(429, "rate_limited");
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert_eq!(error, DeliveryError::Reject("http 404: channel_not_found".into()));
    assert_eq!(notifier.deliver(&sample()).await.unwrap_err(), DeliveryError::Retry("http 429: rate_limited".into()));
    let debug = format!("{notifier:?}");
    assert!(!debug.contains("slacktoken") && !debug.contains("/services"), "{debug}");
}

#[tokio::test]
async fn pagerduty_gets_events_v2_trigger_and_resolve() {
    let receiver = Receiver::with_judge(Arc::new(|_: &Received| {
        (StatusCode::ACCEPTED, r#"{"status":"success","message":"Event processed"}"#.into())
    }))
    .await;
    let routing_key = "R0UT1NGKEY0123456789abcdef012345";
    let notifier = PagerDutyNotifier::new(PagerDutyOptions {
        routing_key: routing_key.into(),
        url: receiver.url("/v2/enqueue"),
        ..PagerDutyOptions::default()
    })
    .unwrap();
    notifier.deliver(&sample()).await.unwrap();
    notifier.deliver(&resolved()).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!((requests[0].method.as_str(), requests[0].uri.path()), ("POST", "/v2/enqueue"));
    assert_eq!(requests[0].header("content-type").as_deref(), Some("application/json"));
    assert_eq!(
        requests[0].json(),
        json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": "site-down/homepage",
            "client": "probenet",
            "client_url": "https://dash.example.com/checks/homepage",
            "payload": {
                "summary": "site-down: homepage down in eu-west, us-east",
                "source": "https://example.com/",
                "severity": "critical",
                "timestamp": "2024-05-01T12:00:00.000Z",
                "component": "homepage",
                "group": "site-down",
                "class": "timeout",
                "custom_details": {
                    "summary": "homepage is down in 2 of 3 regions since 12:00 UTC",
                    "alert": "site-down", "severity": "page", "regions": ["eu-west", "us-east"],
                    "total_regions": 3, "since": "2024-05-01T12:00:00.000Z", "reason": "timeout",
                    "error": "no response within 10s", "labels": {"team": "web"},
                },
            },
            "links": [{"href": "https://dash.example.com/checks/homepage", "text": "probenet dashboard"}],
        })
    );
    assert_eq!(
        requests[1].json(),
        json!({
            "routing_key": routing_key, "event_action": "resolve", "dedup_key": "site-down/homepage",
            "client": "probenet", "client_url": "https://dash.example.com/checks/homepage",
        })
    );
    // PagerDuty's 400 (invalid event) is final and its echo of the key is scrubbed.
    receiver.then(400, &format!(r#"{{"status":"invalid event","errors":["bad routing_key {routing_key}"]}}"#));
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Reject(message) if message.contains("<redacted>")), "{error:?}");
    assert!(!error.to_string().contains(routing_key) && !format!("{notifier:?}").contains(routing_key));
    assert_eq!(probenet_alerting::notify::pagerduty_severity("ticket"), "warning");
}

fn fast() -> DispatcherOptions {
    DispatcherOptions {
        max_attempts: 3,
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(80),
        ..DispatcherOptions::default()
    }
}

fn dispatcher(name: &str, notifier: impl Notifier) -> Dispatcher {
    let notifier: Arc<dyn Notifier> = Arc::new(notifier);
    Dispatcher::new(BTreeMap::from([(name.to_owned(), notifier)]), fast())
}

/// Waits until every record is final, then returns them (oldest first).
async fn settled(dispatcher: &Dispatcher, count: usize) -> Vec<DeliveryRecord> {
    let records = poll(Duration::from_secs(10), || async {
        let records = dispatcher.deliveries();
        let done = records.len() == count
            && records.iter().all(|r| matches!(r.status, DeliveryStatus::Delivered | DeliveryStatus::Failed));
        done.then_some(records)
    })
    .await
    .expect("deliveries settle");
    records.into_iter().rev().collect()
}

#[tokio::test]
async fn dispatcher_retries_a_500_and_keeps_order() {
    let receiver = verifying_receiver().await;
    receiver.then(500, "busy");
    let dispatcher = dispatcher("hook", webhook(receiver.url("/"), SECRET));
    let names = ["hook".to_owned()];
    dispatcher.send(&names, sample());
    dispatcher.send(&names, resolved());
    let records = settled(&dispatcher, 2).await;
    assert_eq!(records[0].status, DeliveryStatus::Delivered);
    assert_eq!((records[0].attempts, records[0].last_error.as_deref()), (2, Some("http 500: busy")));
    assert!(records[0].delivered_at_ms.is_some() && records[0].failed_at_ms.is_none());
    assert_eq!((records[1].status, records[1].attempts), (DeliveryStatus::Delivered, 1));
    let statuses: Vec<String> = receiver.requests().iter().map(|r| r.json()["status"].to_string()).collect();
    assert_eq!(statuses, ["\"firing\"", "\"firing\"", "\"resolved\""]);
    let counters = &dispatcher.counters()["hook"];
    assert_eq!((counters.kind.as_str(), counters.sent, counters.retried, counters.failed), ("webhook", 2, 1, 0));
    dispatcher.close(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn dispatcher_fails_a_400_at_once_and_a_refused_connection_after_retries() {
    let receiver = Receiver::start().await;
    receiver.then(400, "bad payload");
    let refused = format!("http://127.0.0.1:{}/", refused_port());
    let notifiers: BTreeMap<String, Arc<dyn Notifier>> = BTreeMap::from([
        ("bad".to_owned(), Arc::new(webhook(receiver.url("/"), SECRET)) as Arc<dyn Notifier>),
        ("down".to_owned(), Arc::new(webhook(refused, SECRET)) as Arc<dyn Notifier>),
    ]);
    let dispatcher = Dispatcher::new(notifiers, fast());
    dispatcher.send(&["bad".to_owned(), "down".to_owned(), "nobody".to_owned()], sample());
    let records = settled(&dispatcher, 3).await;
    let by_name = |name: &str| records.iter().find(|r| r.notifier == name).unwrap().clone();
    let bad = by_name("bad");
    assert_eq!(
        (bad.status, bad.attempts, bad.last_error.as_deref()),
        (DeliveryStatus::Failed, 1, Some("http 400: bad payload"))
    );
    assert!(bad.failed_at_ms.is_some() && bad.delivered_at_ms.is_none());
    assert_eq!(receiver.requests().len(), 1, "a 400 is not retried");
    let down = by_name("down");
    assert_eq!((down.status, down.attempts), (DeliveryStatus::Failed, 3));
    assert!(down.last_error.as_deref().unwrap().contains("refused"), "{down:?}");
    let nobody = by_name("nobody");
    assert_eq!((nobody.status, nobody.last_error.as_deref()), (DeliveryStatus::Failed, Some("unknown notifier")));
    let counters = dispatcher.counters();
    assert_eq!((counters["bad"].sent, counters["bad"].retried, counters["bad"].failed), (0, 0, 1));
    assert_eq!((counters["down"].sent, counters["down"].retried, counters["down"].failed), (0, 2, 1));
    assert_eq!(counters["down"].pending, 0);
}

#[tokio::test]
async fn dispatcher_close_fails_what_is_left() {
    let refused = format!("http://127.0.0.1:{}/", refused_port());
    let options = DispatcherOptions {
        max_attempts: 1000,
        min_backoff: Duration::from_secs(30),
        max_backoff: Duration::from_secs(30),
        ..DispatcherOptions::default()
    };
    let notifier: Arc<dyn Notifier> = Arc::new(webhook(refused, SECRET));
    let dispatcher = Dispatcher::new(BTreeMap::from([("down".to_owned(), notifier)]), options);
    dispatcher.send(&["down".to_owned()], sample());
    dispatcher.send(&["down".to_owned()], resolved());
    poll(Duration::from_secs(5), || async {
        (dispatcher.deliveries().iter().any(|r| r.status == DeliveryStatus::Retrying)).then_some(())
    })
    .await
    .expect("a first attempt fails");
    dispatcher.close(Duration::from_millis(300)).await;
    let records = dispatcher.deliveries();
    assert!(records.iter().all(|r| r.status == DeliveryStatus::Failed), "{records:?}");
    assert_eq!(dispatcher.counters()["down"].failed, 2);
    dispatcher.send(&["down".to_owned()], sample());
    assert_eq!(dispatcher.deliveries()[0].last_error.as_deref(), Some("dispatcher closed"));
}

#[tokio::test]
async fn secrets_never_show_in_errors_records_or_debug() {
    // The receiver echoes what it got (URL and headers) in its refusal, as some receivers do.
    let receiver = Receiver::with_judge(Arc::new(|request: &Received| {
        (StatusCode::FORBIDDEN, format!("denied {} {:?}", request.uri, request.headers))
    }))
    .await;
    let secrets = ["pathtoken0a1b2c3d4e", "querysecret77", "Bearer headersecret55", SECRET];
    let options = WebhookOptions {
        url: receiver.url("/hooks/pathtoken0a1b2c3d4e?key=querysecret77"),
        secret: Some(SECRET.into()),
        headers: vec![("Authorization".into(), "Bearer headersecret55".into())],
        ..WebhookOptions::default()
    };
    let notifier = WebhookNotifier::new(options.clone()).unwrap();
    let refused = WebhookNotifier::new(WebhookOptions {
        url: format!("http://user:passwordsecret9@127.0.0.1:{}/hooks/pathtoken0a1b2c3d4e", refused_port()),
        ..options.clone()
    })
    .unwrap();
    let notifiers: BTreeMap<String, Arc<dyn Notifier>> = BTreeMap::from([
        ("echo".to_owned(), Arc::new(notifier) as Arc<dyn Notifier>),
        ("gone".to_owned(), Arc::new(refused) as _),
    ]);
    let dispatcher = Dispatcher::new(notifiers, fast());
    dispatcher.send(&["echo".to_owned(), "gone".to_owned()], sample());
    let records = settled(&dispatcher, 2).await;
    assert!(records.iter().all(|r| r.status == DeliveryStatus::Failed && r.last_error.is_some()));
    let shown = format!("{} {:?} {:?} {:?}", serde_json::to_string(&records).unwrap(), records, dispatcher, options);
    assert!(shown.contains("<redacted>"), "the echo is scrubbed: {shown}");
    for secret in secrets.iter().chain(&["headersecret55", "passwordsecret9"]) {
        assert!(!shown.contains(secret), "{secret} shows in {shown}");
    }
}
