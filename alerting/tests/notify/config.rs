//! Notifiers built from a config (`notify::notifiers`): every kind added with the notifier table reaches its
//! sender, secrets are read from files on this machine, and the default endpoints are the real services'.

use std::collections::BTreeMap;

use super::common::{Receiver, sample};

#[tokio::test]
async fn every_new_kind_is_built_from_the_config_and_delivers() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        format!("${{file:{}}}", path.display())
    };
    let base = receiver.url("");
    let yaml = format!(
        r#"notifiers:
  discord: {{discord: {{url: "{discord}"}}}}
  teams: {{teams: {{url: "{teams}"}}}}
  telegram: {{telegram: {{bot_token: "{bot}", chat_id: -100200300, api_url: "{base}/telegram"}}}}
  ntfy: {{ntfy: {{url: "{base}/alerts", token: "{ntfy}", priority: urgent, tags: [probenet]}}}}
  opsgenie: {{opsgenie: {{api_key: "{genie}", api_url: "{base}/opsgenie"}}}}
  opsgenie-eu: {{opsgenie: {{api_key: "{genie}", region: eu}}}}
  chat: {{google_chat: {{url: "{chat}"}}}}
  mattermost: {{mattermost: {{url: "{mattermost}", channel: ops}}}}
checks:
  - name: homepage
    http: {{url: "http://127.0.0.1/"}}
"#,
        discord = secret("discord", &format!("{base}/api/webhooks/1/discordtoken")),
        teams = secret("teams", &format!("{base}/workflows/1?sig=teamssig")),
        bot = secret("bot", "42:telegramtoken"),
        ntfy = secret("ntfy", "tk_ntfytoken"),
        genie = secret("genie", "geniekey-0123"),
        chat = secret("chat", &format!("{base}/v1/spaces/S/messages?key=k&token=chattoken")),
        mattermost = secret("mattermost", &format!("{base}/hooks/mattermostkey")),
    );
    let config = probenet_checks::load_str("test.yaml", &yaml).unwrap_or_else(|errors| panic!("{errors}"));
    let built = probenet_alerting::notify::notifiers(&config.notifiers).unwrap();
    let kinds: BTreeMap<&str, &str> = built.iter().map(|(name, notifier)| (name.as_str(), notifier.kind())).collect();
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("chat", "google_chat"),
            ("discord", "discord"),
            ("mattermost", "mattermost"),
            ("ntfy", "ntfy"),
            ("opsgenie", "opsgenie"),
            ("opsgenie-eu", "opsgenie"),
            ("telegram", "telegram"),
            ("teams", "teams"),
        ])
    );
    // The EU instance is Opsgenie's real EU endpoint; nothing is sent to it here.
    assert!(format!("{:?}", built["opsgenie-eu"]).contains("https://api.eu.opsgenie.com"));
    for (name, notifier) in &built {
        if name != "opsgenie-eu" {
            notifier.deliver(&sample()).await.unwrap_or_else(|error| panic!("{name}: {error}"));
        }
    }
    let mut paths: Vec<String> = receiver.requests().iter().map(|request| request.line().1).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/alerts",
            "/api/webhooks/1/discordtoken",
            "/hooks/mattermostkey",
            "/opsgenie/v2/alerts",
            "/telegram/bot42:telegramtoken/sendMessage",
            "/v1/spaces/S/messages?key=k&token=chattoken",
            "/workflows/1?sig=teamssig",
        ]
    );
    let ntfy = receiver.requests().into_iter().find(|request| request.uri.path() == "/alerts").unwrap();
    assert_eq!(ntfy.header("priority").as_deref(), Some("5"));
    let telegram = receiver.requests().into_iter().find(|request| request.uri.path().starts_with("/telegram")).unwrap();
    assert_eq!(telegram.json()["chat_id"], -100_200_300);

    // A secret that cannot be read fails the build, naming the notifier, never the value.
    std::fs::remove_file(dir.path().join("bot")).unwrap();
    let error = probenet_alerting::notify::notifiers(&config.notifiers).unwrap_err();
    assert!(error.starts_with("notifier \"telegram\" (telegram): "), "{error}");
}
