//! `probenet validate` and `probenet schema`: the examples, secrets, and every error of a broken config.

use std::ffi::OsStr;

use crate::util::{Config, REPO, probenet};

const EXAMPLE_SECRETS: [&str; 7] = [
    "ORDERS_API_KEY",
    "ADMIN_PASSWORD",
    "SHOP_USER",
    "REDIS_PASSWORD",
    "SLACK_HOOK",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
];

/// How many checks the example files hold, counted from their text (`  - name:` items under `checks:`).
fn example_checks() -> usize {
    std::fs::read_dir(format!("{REPO}/examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        // The stack file describes a deployment (tested with the installer), not checks.
        .filter(|path| !probenet_checks::config::is_stack_file(path))
        .map(|path| {
            std::fs::read_to_string(path).unwrap().lines().filter(|line| line.starts_with("  - name: ")).count()
        })
        .sum()
}

#[tokio::test]
async fn examples_validate_when_their_secrets_are_set() {
    let mut command = probenet(["validate", "examples/"]).current_dir(REPO);
    for name in EXAMPLE_SECRETS {
        command = command.env(name, "set-for-the-test");
    }
    let out = command.output().await;
    out.assert_code(0);
    assert!(out.stdout.starts_with(&format!("ok: {} checks, ", example_checks())), "{}", out.stdout);
    assert_eq!(out.stderr, "");
}

#[tokio::test]
async fn examples_without_their_secrets_name_each_missing_one() {
    let out = probenet(["validate", "examples/"]).current_dir(REPO).output().await;
    out.assert_code(1);
    assert_eq!(out.stdout, "");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "examples/alerting.yaml:15:18: notifiers.team-chat.slack.url: secret ${env:SLACK_HOOK}: \
             environment variable SLACK_HOOK is not set",
            "examples/api.yaml:13:17: checks[0].api.steps[0].body: secret ${env:ORDERS_API_KEY}: \
             environment variable ORDERS_API_KEY is not set",
            "examples/browser.yaml:9:44: checks[0].browser.steps[1].fill.text: secret ${env:SHOP_USER}: \
             environment variable SHOP_USER is not set",
            "examples/http.yaml:25:20: checks[1].http.headers.X-Api-Key: secret ${env:ORDERS_API_KEY}: \
             environment variable ORDERS_API_KEY is not set",
            "examples/http.yaml:36:49: checks[2].http.basic_auth.password: secret ${env:ADMIN_PASSWORD}: \
             environment variable ADMIN_PASSWORD is not set",
            "examples/objects.yaml:8:18: objects.access_key_id: secret ${env:S3_ACCESS_KEY_ID}: \
             environment variable S3_ACCESS_KEY_ID is not set",
            "examples/objects.yaml:9:22: objects.secret_access_key: secret ${env:S3_SECRET_ACCESS_KEY}: \
             environment variable S3_SECRET_ACCESS_KEY is not set",
            "examples/tcp.yaml:22:17: checks[2].tcp.script[0].send: secret ${env:REDIS_PASSWORD}: \
             environment variable REDIS_PASSWORD is not set",
            "probenet: 8 errors in the config; nothing was applied",
        ]
    );
    // Setting only some of them reports only the others.
    let out = probenet(["validate", "examples/"]).current_dir(REPO).env("SHOP_USER", "x").output().await;
    out.assert_code(1);
    assert!(!out.stderr.contains("SHOP_USER"), "{}", out.stderr);
    assert!(out.stderr.contains("ORDERS_API_KEY") && out.stderr.contains("ADMIN_PASSWORD"), "{}", out.stderr);
}

#[tokio::test]
async fn a_literal_credential_is_a_warning_at_its_place_and_a_secret_reference_is_not() {
    let check = |authorization: &str| {
        format!(
            "checks:\n  - name: api\n    http:\n      url: https://api.example.com/\n      headers:\n        \
             Authorization: \"{authorization}\"\n"
        )
    };
    let config = Config::new(&check("Bearer abc123"));
    let out = probenet(["validate", "checks.yaml"]).current_dir(config.dir()).output().await;
    out.assert_code(0);
    assert!(out.stdout.starts_with("ok: 1 check, "), "{}", out.stdout);
    assert_eq!(
        out.stderr,
        format!(
            "checks.yaml:6:24: checks[0].http.headers.Authorization: a credential written literally in the config; \
             write it as a secret reference, ${{env:NAME}} or ${{file:PATH}}\nprobenet: 1 warning in the config\n"
        )
    );

    std::fs::write(&config.path, check("Bearer ${env:TOKEN}")).unwrap();
    let out = probenet(["validate", "checks.yaml"]).current_dir(config.dir()).env("TOKEN", "abc123").output().await;
    out.assert_code(0);
    assert_eq!(out.stderr, "");
}

#[tokio::test]
async fn skip_secrets_validates_examples_without_them() {
    let out = probenet(["validate", "--skip-secrets", "examples/"]).current_dir(REPO).output().await;
    out.assert_code(0);
    let expected = format!("ok: {} checks, ", example_checks());
    assert!(out.stdout.starts_with(&expected), "{}", out.stdout);
}

#[tokio::test]
async fn every_example_file_validates_on_its_own() {
    let mut files: Vec<_> = std::fs::read_dir(format!("{REPO}/examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        // The stack file describes a deployment (tested with the installer), not checks.
        .filter(|path| !probenet_checks::config::is_stack_file(path))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "expected the quick start and one example per kind, found {files:?}");
    for file in files {
        let out = probenet([OsStr::new("validate"), OsStr::new("--skip-secrets"), file.as_os_str()]).output().await;
        assert_eq!(out.code, 0, "{} does not validate:\n{}", file.display(), out.stderr);
        assert!(out.stdout.starts_with("ok: "), "{}: {}", file.display(), out.stdout);
    }
}

/// Five mistakes in three checks: each is reported once, at its own line and column.
const FIVE_MISTAKES: &str = r#"regions:
  eu-west: {}
checks:
  - name: home
    interval: 30 seconds
    http: {url: "http://127.0.0.1:8000/"}
  - name: api
    regions: [eu-wets]
    http:
      url: http://127.0.0.1:8000/api
      retries: 3
  - name: home
    http:
      url: http://127.0.0.1:8000/health
      expect:
        body_regex: "ok("
"#;

#[tokio::test]
async fn a_file_with_five_mistakes_lists_all_five_where_they_are() {
    let config = Config::new(FIVE_MISTAKES);
    let out = probenet(["validate", "checks.yaml"]).current_dir(config.dir()).output().await;
    out.assert_code(1);
    assert_eq!(out.stdout, "");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "checks.yaml:5:15: checks[0].interval: \"30 seconds\" is not a duration; \
             write for example 500ms, 30s, 5m or 1h30m",
            "checks.yaml:8:15: checks[1].regions[0]: unknown region \"eu-wets\" (did you mean \"eu-west\"?); \
             declared regions: eu-west",
            "checks.yaml:11:7: checks[1].http.retries: unknown field \"retries\"; expected one of: url, method, \
             headers, body, basic_auth, bearer_token, follow_redirects, max_redirects, ip_version, ip_strategy, \
             ip_verdict, http_version, body_limit, tls, expect",
            "checks.yaml:12:11: checks[2].name: duplicate check name \"home\" (first defined at checks.yaml:4:11)",
            "checks.yaml:16:21: checks[2].http.expect.body_regex: \"ok(\" is not a valid regular expression: \
             unclosed group",
            "probenet: 5 errors in the config; nothing was applied",
        ]
    );
}

#[tokio::test]
async fn schema_is_json_with_a_checks_property() {
    let out = probenet(["schema"]).output().await;
    out.assert_code(0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(schema["properties"]["checks"].is_object(), "{schema}");
    assert!(schema["properties"]["regions"].is_object(), "{schema}");
}

#[tokio::test]
async fn an_unknown_field_does_not_hide_the_other_mistakes_of_its_check() {
    let config = Config::new(
        r#"checks:
  - name: home
    http: {url: "http://127.0.0.1:8000/"}
  - name: home
    retries: 3
    interval: 5 minutes
    http: {url: "http://127.0.0.1:8000/"}
"#,
    );
    let out = probenet(["validate", "checks.yaml"]).current_dir(config.dir()).output().await;
    out.assert_code(1);
    assert!(out.stderr.contains("checks.yaml:5:5: checks[1].retries: unknown field \"retries\""), "{}", out.stderr);
    assert!(out.stderr.contains("checks.yaml:4:11: checks[1].name: duplicate check name"), "{}", out.stderr);
    assert!(
        out.stderr.contains("checks.yaml:6:15: checks[1].interval: \"5 minutes\" is not a duration"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_empty_config_runs_0_times_a_day_not_minus_0() {
    let config = Config::new("checks: []\n");
    let out = probenet(["validate"]).arg(&config.path).output().await;
    out.assert_code(0);
    assert_eq!(out.stdout, "ok: 0 checks, 1 region, 0 runs a day\n");
}
