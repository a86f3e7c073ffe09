//! Credentials written literally in the config (rather than as `${env:..}` / `${file:..}` references) give a
//! warning at their place; the config is still valid.
#![allow(clippy::unwrap_used)]

use probenet_checks::config::LITERAL_CREDENTIAL;
use probenet_checks::load_str;

fn warnings(yaml: &str) -> Vec<String> {
    let config = load_str("test.yaml", yaml).unwrap_or_else(|errors| panic!("invalid test config: {errors}"));
    config.warnings.iter().map(ToString::to_string).collect()
}

fn at(place: &str) -> String {
    format!("test.yaml:{place}: {LITERAL_CREDENTIAL}")
}

#[test]
fn a_literal_authorization_header_gives_one_warning_at_its_line() {
    let yaml = r#"checks:
  - name: api
    http:
      url: https://api.example.com/
      headers:
        Accept: application/json
        Authorization: "Bearer abc123"
"#;
    assert_eq!(warnings(yaml), [at("7:24: checks[0].http.headers.Authorization")]);
    assert!(warnings(&yaml.replace("Bearer abc123", "Bearer ${env:TOKEN}")).is_empty());
    assert!(warnings(&yaml.replace("Bearer abc123", "${file:/run/secrets/token}")).is_empty());
}

#[test]
fn every_kind_of_credential_field_is_covered() {
    let yaml = r##"checks:
  - name: basic
    http: {url: "https://a.example/", basic_auth: {username: u, password: hunter22}}
  - name: bearer
    http: {url: "https://a.example/", bearer_token: tok, headers: {X-Api-Key: k1, X-Trace: t}}
  - name: login
    browser:
      steps:
        - goto: https://a.example/login
        - fill: {selector: "#email", text: me@example.com}
        - fill: {selector: "input[type=password]", text: hunter22}
notifiers:
  chat:
    slack: {url: "https://hooks.slack.com/services/T0/B0/XYZ"}
  pager:
    pagerduty: {routing_key: R0UT1NG}
  am:
    alertmanager: {url: "http://am.example:9093/", basic_auth: {username: u, password: pw}}
exporters:
  - remote_write: {url: "https://vm.example/api/v1/write", bearer_token: tok}
dashboard:
  token: dash-token
"##;
    let paths: Vec<String> = warnings(yaml)
        .iter()
        .map(|warning| warning.trim_end_matches(&format!(": {LITERAL_CREDENTIAL}")).to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "test.yaml:3:75: checks[0].http.basic_auth.password",
            "test.yaml:5:53: checks[1].http.bearer_token",
            "test.yaml:5:79: checks[1].http.headers.X-Api-Key",
            "test.yaml:11:58: checks[2].browser.steps[2].fill.text",
            "test.yaml:14:18: notifiers.chat.slack.url",
            "test.yaml:16:30: notifiers.pager.pagerduty.routing_key",
            "test.yaml:18:88: notifiers.am.alertmanager.basic_auth.password",
            "test.yaml:20:74: exporters[0].remote_write.bearer_token",
            "test.yaml:22:10: dashboard.token",
        ]
    );
}

#[test]
fn credentials_of_the_chat_and_paging_notifiers_are_covered() {
    let yaml = r#"notifiers:
  discord: {discord: {url: "https://discord.com/api/webhooks/1/tok"}}
  teams: {teams: {url: "https://prod.westeurope.logic.azure.com/workflows/1?sig=abc"}}
  telegram: {telegram: {bot_token: "42:tok", chat_id: 42}}
  ntfy: {ntfy: {url: "https://ntfy.sh/ops", token: tk_abc}}
  ntfy-open: {ntfy: {url: "https://ntfy.example.com/ops"}}
  genie: {opsgenie: {api_key: k3y}}
  chat: {google_chat: {url: "https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=t"}}
  mm: {mattermost: {url: "https://mm.example.com/hooks/k3y"}}
  safe: {telegram: {bot_token: "${env:TG}", chat_id: "@ops_alerts", api_url: "http://127.0.0.1:8081"}}
checks:
  - name: homepage
    http: {url: "http://127.0.0.1/"}
"#;
    let paths: Vec<String> = warnings(yaml)
        .iter()
        .map(|warning| warning.trim_end_matches(&format!(": {LITERAL_CREDENTIAL}")).to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "test.yaml:2:28: notifiers.discord.discord.url",
            "test.yaml:3:24: notifiers.teams.teams.url",
            "test.yaml:4:36: notifiers.telegram.telegram.bot_token",
            "test.yaml:5:52: notifiers.ntfy.ntfy.token",
            "test.yaml:7:31: notifiers.genie.opsgenie.api_key",
            "test.yaml:8:29: notifiers.chat.google_chat.url",
            "test.yaml:9:26: notifiers.mm.mattermost.url",
        ]
    );
}
