//! Telegram: the exact Bot API `sendMessage` request (HTML, MarkdownV2) for a firing and a resolved alert, and
//! refusals that never show the bot token.

use std::time::Duration;

use axum::http::StatusCode;
use probenet_alerting::notify::{TelegramNotifier, TelegramOptions, TelegramParseMode};
use probenet_alerting::{DeliveryError, Notifier};
use serde_json::json;

use super::common::{
    DASHBOARD, FIRING_FACTS, FIRING_SUBJECT, RESOLVED_SUBJECT, answering, fact_lines, firing_then_resolved_json,
    resolved, resolved_facts, sample,
};

const TOKEN: &str = "123456789:AAHfTeLeGrAmBoTtOkEn0123456789abc";

fn notifier(api_url: String, chat_id: &str, parse_mode: TelegramParseMode) -> TelegramNotifier {
    TelegramNotifier::new(TelegramOptions {
        bot_token: TOKEN.into(),
        chat_id: chat_id.into(),
        parse_mode,
        api_url,
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn html(subject: &str, facts: &[(&str, &str)]) -> String {
    format!(
        "<b>{subject}</b>\nhomepage is down in 2 of 3 regions since 12:00 UTC\n\n{}\n<a href=\"{DASHBOARD}\">Open in \
         probenet</a>",
        fact_lines(facts, |label, value| format!("<b>{label}:</b> {}", value.replace('<', "&lt;")))
    )
}

#[tokio::test]
async fn telegram_gets_send_message_in_html() {
    let receiver = answering(StatusCode::OK, r#"{"ok":true,"result":{"message_id":7}}"#).await;
    let notifier = notifier(receiver.url("/tg"), "-1001234567890", TelegramParseMode::Html);
    let requests = firing_then_resolved_json(&notifier, &receiver, &format!("/tg/bot{TOKEN}/sendMessage")).await;
    let body = |text: String| {
        json!({"chat_id": -1_001_234_567_890_i64, "text": text, "parse_mode": "HTML",
               "link_preview_options": {"is_disabled": true}})
        .to_string()
    };
    assert_eq!(requests[0].text(), body(html(FIRING_SUBJECT, &FIRING_FACTS)));
    assert_eq!(requests[1].text(), body(html(RESOLVED_SUBJECT, &resolved_facts())));

    // Markup in the facts is escaped; a channel name is sent as a string.
    let mut firing = sample();
    firing.error = Some("expected <200>, got 503 & a body".into());
    let notifier = self::notifier(receiver.url(""), "@probenet_alerts", TelegramParseMode::Html);
    notifier.deliver(&firing).await.unwrap();
    let request = receiver.requests().pop().unwrap();
    assert_eq!(request.line().1, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(request.json()["chat_id"], "@probenet_alerts");
    let text = request.json()["text"].as_str().unwrap().to_owned();
    assert!(text.contains("<b>Error:</b> expected &lt;200&gt;, got 503 &amp; a body\n"), "{text}");
}

#[tokio::test]
async fn telegram_markdown_v2_escapes_and_plain_text_has_no_parse_mode() {
    let receiver = answering(StatusCode::OK, r#"{"ok":true}"#).await;
    notifier(receiver.url(""), "42", TelegramParseMode::MarkdownV2).deliver(&sample()).await.unwrap();
    notifier(receiver.url(""), "42", TelegramParseMode::None).deliver(&resolved()).await.unwrap();
    let requests = receiver.requests();
    let markdown = format!(
        "*\\[FIRING\\] site\\-down: homepage down in eu\\-west, us\\-east*\nhomepage is down in 2 of 3 regions since \
         12:00 UTC\n\n{}\n[Open in probenet]({DASHBOARD})",
        [
            "*Check:* homepage",
            "*Target:* https://example\\.com/",
            "*Regions:* eu\\-west, us\\-east \\(2 of 3\\)",
            "*Since:* 2024\\-05\\-01 12:00:00 UTC",
            "*Reason:* timeout",
            "*Error:* no response within 10s",
            "*Severity:* page",
            "*Labels:* team\\=web",
        ]
        .join("\n")
    );
    assert_eq!(
        requests[0].text(),
        json!({"chat_id": 42, "text": markdown, "parse_mode": "MarkdownV2", "link_preview_options": {"is_disabled": true}})
            .to_string()
    );
    let plain = format!(
        "{RESOLVED_SUBJECT}\nhomepage is down in 2 of 3 regions since 12:00 UTC\n\n{}\nDashboard: {DASHBOARD}",
        fact_lines(&resolved_facts(), |label, value| format!("{label}: {value}"))
    );
    assert_eq!(
        requests[1].text(),
        json!({"chat_id": 42, "text": plain, "link_preview_options": {"is_disabled": true}}).to_string()
    );
}

#[tokio::test]
async fn telegram_refusals_are_failures_without_the_token() {
    let receiver = answering(StatusCode::OK, r#"{"ok":true}"#).await;
    let notifier = notifier(receiver.url(""), "-1001234567890", TelegramParseMode::Html);
    receiver
        .then(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#)
        .then(404, &format!(r#"{{"ok":false,"error_code":404,"description":"Not Found: /bot{TOKEN}/sendMessage"}}"#))
        .then(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3"}"#);
    assert_eq!(
        notifier.deliver(&sample()).await.unwrap_err(),
        DeliveryError::Reject(
            r#"http 400: {"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#.into()
        )
    );
    let error = notifier.deliver(&sample()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Reject(message) if message.contains("<redacted>")), "{error:?}");
    assert!(!error.to_string().contains(TOKEN) && !error.to_string().contains("AAHfTeLeGrAm"), "{error}");
    assert!(matches!(notifier.deliver(&sample()).await.unwrap_err(), DeliveryError::Retry(_)));
    let debug = format!("{notifier:?}");
    assert!(!debug.contains("AAHfTeLeGrAm") && !debug.contains("/bot"), "{debug}");
}
