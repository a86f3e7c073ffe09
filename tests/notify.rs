//! `probenet notify test NAME -c PATH`: one firing test notification through a configured notifier, to a local
//! receiver: delivered (exit 0), refused with a 500 (exit 1, the error, no secret), an unknown or missing name
//! (exit 2, the configured names listed).

use crate::util::processes::{notifications, receiver};
use crate::util::{Config, Output, Server, probenet};

const SECRET: &str = "hook-signing-secret-of-the-notify-test";
const TOKEN: &str = "hook-bearer-token-of-the-notify-test";

/// A config with the notifiers `oncall` (a signed webhook to `ok_url`) and `broken` (a webhook with a bearer
/// token to `bad_url`).
fn config(ok_url: &str, bad_url: &str) -> Config {
    Config::new(&format!(
        "regions: {{a: {{}}}}\nchecks: []\nnotifiers:\n  oncall:\n    webhook: {{url: \"{ok_url}\", secret: \
         \"${{env:HOOK_SECRET}}\"}}\n  broken:\n    webhook:\n      url: \"{bad_url}\"\n      headers: \
         {{Authorization: \"Bearer ${{env:HOOK_TOKEN}}\"}}\n"
    ))
}

async fn notify(config: &Config, name: Option<&str>) -> Output {
    notify_with(config, name, &[]).await
}

async fn notify_with(config: &Config, name: Option<&str>, extra: &[&str]) -> Output {
    probenet(["notify", "test"])
        .env("HOOK_SECRET", SECRET)
        .env("HOOK_TOKEN", TOKEN)
        .args(name)
        .args(extra)
        .arg("-c")
        .arg(&config.path)
        .output()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_notification_is_delivered_or_its_error_shown() {
    let (port, got) = receiver();
    let failing = Server::http1().route("/hook", 500, "receiver broken").start().await;
    let config = config(&format!("http://127.0.0.1:{port}/hook"), &failing.url("/hook"));

    // Delivered: one firing notification, labelled as a test, signed.
    let out = notify(&config, Some("oncall")).await;
    out.assert_code(0);
    assert!(out.stdout.contains("oncall (webhook): test notification delivered"), "{out:?}");
    let sent = notifications(&got, SECRET);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["alert"], "probenet-test");
    assert_eq!(sent[0]["status"], "firing");
    assert!(sent[0]["summary"].as_str().unwrap_or_default().contains("Test notification"), "{}", sent[0]);
    // With --resolve, the same alert fires and then resolves.
    let out = notify_with(&config, Some("oncall"), &["--resolve"]).await;
    out.assert_code(0);
    assert!(out.stdout.contains("oncall (webhook): resolved test notification delivered"), "{out:?}");
    let sent = notifications(&got, SECRET);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!((&sent[1]["status"], &sent[2]["status"]), (&"firing".into(), &"resolved".into()));
    assert_eq!(sent[2]["key"], sent[0]["key"]);

    // A 500: exit 1 with the receiver's answer, never the token.
    let out = notify(&config, Some("broken")).await;
    out.assert_code(1);
    assert!(out.stderr.contains("broken (webhook): test notification not delivered: "), "{out:?}");
    assert!(out.stderr.contains("500"), "{out:?}");
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(!printed.contains(TOKEN) && !printed.contains(SECRET), "{printed}");
    assert_eq!(failing.hits("/hook"), 1, "one attempt");

    // An unknown name, and no name: the configured ones listed, exit 2, nothing sent.
    for name in [Some("on-call"), None] {
        let out = notify(&config, name).await;
        out.assert_code(2);
        assert!(out.stderr.contains("configured notifiers:\n  broken (webhook)\n  oncall (webhook)\n"), "{out:?}");
    }
    let out = notify(&config, Some("on-call")).await;
    assert!(out.stderr.contains("no notifier named \"on-call\" (did you mean \"oncall\"?)"), "{out:?}");
    assert_eq!(got.lock().unwrap().len(), 3);
    assert_eq!(failing.hits("/hook"), 1);
}
