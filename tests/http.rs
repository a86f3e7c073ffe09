//! The HTTP executor end to end: redirects, slow servers and timeouts, big bodies, assertions, duration
//! limits, TLS and HTTP/2, and secrets that reach the server but are never printed.

use std::time::Duration;

use serde_json::Value;

use crate::util::{Config, Leaf, Pki, Server, assertion, http_check, phase, run_json};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn seconds(result: &Value) -> f64 {
    result["duration_seconds"].as_f64().unwrap()
}

fn error(result: &Value) -> &str {
    result["error"].as_str().unwrap_or_else(|| panic!("no error in {result}"))
}

// ---------------------------------------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------------------------------------

/// `/start` -302-> `/middle` (a relative location) -301-> `/end` (an absolute one) -> 200 "arrived".
async fn two_hops() -> Server {
    Server::http1()
        .redirect("/start", 302, "/middle")
        .redirect("/middle", 301, "{origin}/end")
        .route("/end", 200, "arrived")
        .start()
        .await
}

#[tokio::test]
async fn two_redirects_are_followed_to_the_final_url() {
    let srv = two_hops().await;
    let out = run_json(&http_check("hops", &srv.url("/start"), "expect: {body_contains: arrived}")).await;
    out.assert_code(0);
    let result = out.only();
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["target"], srv.url("/start"));
    assert_eq!(result["details"]["redirects"], 2);
    assert_eq!(result["details"]["final_url"], srv.url("/end"));
    assert_eq!(result["details"]["status_code"], 200);
    // One phase per name, summed over the three hops.
    assert!(phase(&result, "connect") > 0.0);
    assert!(phase(&result, "processing") > 0.0);
    assert_eq!((srv.hits("/start"), srv.hits("/middle"), srv.hits("/end")), (1, 1, 1));
}

#[tokio::test]
async fn follow_redirects_false_judges_the_redirect_itself() {
    let srv = two_hops().await;
    let out =
        run_json(&http_check("no-follow", &srv.url("/start"), "follow_redirects: false\nexpect: {status: [302]}"))
            .await;
    out.assert_code(0);
    let result = out.only();
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["details"]["status_code"], 302);
    assert_eq!(result["details"]["redirects"], 0);
    assert_eq!(result["details"]["final_url"], srv.url("/start"));
    assert_eq!(srv.hits("/middle"), 0);
}

#[tokio::test]
async fn a_redirect_loop_fails_with_reason_redirects() {
    let srv = Server::http1().redirect("/a", 302, "/b").redirect("/b", 307, "{origin}/a").start().await;
    let out = run_json(&http_check("loop", &srv.url("/a"), "")).await;
    out.assert_code(1);
    let result = out.only();
    assert_eq!(result["reason"], "redirects", "{result}");
    assert!(error(&result).contains("loop"), "{result}");
    assert_eq!((srv.hits("/a"), srv.hits("/b")), (1, 1), "a loop is noticed, not followed up to the limit");
}

#[tokio::test]
async fn more_hops_than_max_redirects_fail_with_reason_redirects() {
    let srv = two_hops().await;
    let out = run_json(&http_check("too-many", &srv.url("/start"), "max_redirects: 1")).await;
    out.assert_code(1);
    let result = out.only();
    assert_eq!(result["success"], false);
    assert_eq!(result["reason"], "redirects", "{result}");
    assert_eq!(error(&result), "more than 1 redirects");
    assert_eq!(srv.hits("/end"), 0);
}

#[tokio::test]
async fn a_post_becomes_a_get_after_302_but_stays_a_post_after_307() {
    let srv = Server::http1()
        .redirect("/found", 302, "/echo")
        .redirect("/temporary", 307, "/echo")
        .echo("/echo")
        .start()
        .await;
    let yaml = format!(
        r#"checks:
  - name: after-302
    http:
      url: "{}"
      method: POST
      body: "payload-1"
      expect: {{body_regex: '\A(GET|POST) /echo\n', body_not_contains: payload-1}}
  - name: after-307
    http:
      url: "{}"
      method: POST
      body: "payload-2"
      expect: {{body_regex: '\A(GET|POST) /echo\n', body_contains: payload-2}}
"#,
        srv.url("/found"),
        srv.url("/temporary")
    );
    let out = run_json(&yaml).await;
    out.assert_code(0);
    assert_eq!(assertion(&out.check("after-302"), "body_regex")["observed"], "\"GET /echo\\n\"");
    assert_eq!(assertion(&out.check("after-307"), "body_regex")["observed"], "\"POST /echo\\n\"");
}

#[tokio::test]
async fn credentials_are_not_sent_to_another_origin_on_redirect() {
    let other = Server::http1().echo("/echo").start().await;
    let srv = Server::http1().redirect("/go", 302, &other.url("/echo")).start().await;
    let check = http_check(
        "cross-origin",
        &srv.url("/go"),
        "bearer_token: \"${env:PROBE_TEST_TOKEN}\"\nexpect: {body_contains: \"GET /echo\", body_not_contains: authorization}",
    );
    let out = Config::new(&check)
        .command(&["--output", "json"], &[])
        .env("PROBE_TEST_TOKEN", "tok-cross-origin")
        .output()
        .await;
    out.assert_code(0);
    assert_eq!(other.hits("/echo"), 1);
}

// ---------------------------------------------------------------------------------------------------------
// Slow servers, timeouts and duration limits
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_first_byte_later_than_the_timeout_fails_with_reason_timeout() {
    let srv = Server::http1().slow_head("/slow", ms(3000), "late").start().await;
    let yaml = format!("checks:\n  - name: slow\n    timeout: 1s\n    http: {{url: \"{}\"}}\n", srv.url("/slow"));
    let out = run_json(&yaml).await;
    out.assert_code(1);
    let result = out.only();
    assert_eq!(result["reason"], "timeout", "{result}");
    assert_eq!(error(&result), "no result within the timeout of 1s");
    // The run is cut at the timeout, not when the server finally answers 3s later.
    assert!((1.0..2.5).contains(&seconds(&result)), "{result}");
    assert!(phase(&result, "connect") >= 0.0, "phases before the timeout are kept: {result}");
}

#[tokio::test]
async fn a_slow_first_byte_within_the_timeout_is_timed_as_processing() {
    let srv = Server::http1().slow_head("/slow", ms(300), "late but fine").start().await;
    let out = run_json(&http_check("slow", &srv.url("/slow"), "")).await;
    out.assert_code(0);
    let result = out.only();
    assert_eq!(result["success"], true, "{result}");
    assert!(phase(&result, "processing") >= 0.3, "{result}");
    assert!(phase(&result, "transfer") < phase(&result, "processing"), "{result}");
    assert!(seconds(&result) >= phase(&result, "processing"), "{result}");
}

#[tokio::test]
async fn a_trickling_body_is_timed_as_transfer() {
    let srv = Server::http1().trickle("/trickle", 5, ms(100)).start().await;
    let out = run_json(&http_check("trickle", &srv.url("/trickle"), "expect: {body_contains: chunk 4}")).await;
    out.assert_code(0);
    let result = out.only();
    assert_eq!(result["success"], true, "{result}");
    assert!(phase(&result, "transfer") >= 0.4, "{result}");
    assert!(phase(&result, "processing") < phase(&result, "transfer"), "{result}");
}

#[tokio::test]
async fn slower_than_degraded_after_is_a_degraded_success() {
    let srv = Server::http1().slow_head("/slow", ms(300), "ok").start().await;
    let out = run_json(&http_check("degraded", &srv.url("/slow"), "expect: {degraded_after: 100ms}")).await;
    out.assert_code(0);
    let result = out.only();
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["state"], "degraded", "{result}");
    assert_eq!(result["reason"], "duration", "{result}");
    assert!(assertion(&result, "status")["passed"] == true);
}

#[tokio::test]
async fn slower_than_max_duration_fails_with_reason_duration() {
    let srv = Server::http1().slow_head("/slow", ms(300), "ok").start().await;
    let out = run_json(&http_check("too-slow", &srv.url("/slow"), "expect: {max_duration: 100ms}")).await;
    out.assert_code(1);
    let result = out.only();
    assert_eq!(result["success"], false);
    assert_eq!(result["state"], "down");
    assert_eq!(result["reason"], "duration", "{result}");
    let max = assertion(&result, "max_duration");
    assert_eq!(max["passed"], false);
    assert_eq!(max["expected"], "at most 0.100s");
}

// ---------------------------------------------------------------------------------------------------------
// Bodies and assertions
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_huge_body_is_read_only_up_to_the_body_limit() {
    let srv = Server::http1().huge("/huge", 20 << 20).route("/small", 200, &"y".repeat(1000)).start().await;
    let yaml = format!(
        r#"checks:
  - name: default-limit
    http: {{url: "{huge}"}}
  - name: small-limit
    http: {{url: "{huge}", body_limit: 64KiB}}
  - name: under-the-limit
    http: {{url: "{small}"}}
"#,
        huge = srv.url("/huge"),
        small = srv.url("/small")
    );
    let out = run_json(&yaml).await;
    out.assert_code(0);
    let details = |name: &str| out.check(name)["details"].clone();
    assert_eq!(details("default-limit")["body_truncated"], true);
    assert_eq!(details("default-limit")["content_length"], 1 << 20);
    assert_eq!(details("small-limit")["body_truncated"], true);
    assert_eq!(details("small-limit")["content_length"], 64 << 10);
    assert_eq!(details("under-the-limit")["body_truncated"], false);
    assert_eq!(details("under-the-limit")["content_length"], 1000);
}

const API_BODY: &str = r#"{"status": "ok", "version": "v12", "items": []}"#;

#[tokio::test]
async fn json_body_regex_and_header_assertions_pass() {
    let srv = Server::http1().json("/api", API_BODY).start().await;
    let extra = r#"expect:
  status: [200]
  body_regex: '"version":\s*"v[0-9]+"'
  body_not_regex: '"error"'
  headers: {Content-Type: "^application/json$"}"#;
    let out = run_json(&http_check("api", &srv.url("/api"), extra)).await;
    out.assert_code(0);
    let result = out.only();
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(assertion(&result, "body_regex")["observed"], r#"""version": "v12"""#);
    assert_eq!(assertion(&result, "body_not_regex")["passed"], true);
    let header = assertion(&result, "header content-type");
    assert_eq!((header["passed"].clone(), header["observed"].clone()), (true.into(), "\"application/json\"".into()));
}

#[tokio::test]
async fn failing_body_and_header_assertions_give_their_reason() {
    let srv = Server::http1().json("/api", API_BODY).start().await;
    let yaml = format!(
        r#"checks:
  - name: wrong-type
    http: {{url: "{url}", expect: {{headers: {{Content-Type: "^text/html"}}}}}}
  - name: missing-header
    http: {{url: "{url}", expect: {{headers: {{X-Request-Id: "."}}}}}}
  - name: no-match
    http: {{url: "{url}", expect: {{body_regex: '"version":\s*"v2[0-9]"'}}}}
  - name: forbidden-match
    http: {{url: "{url}", expect: {{body_not_regex: '"status":\s*"ok"'}}}}
"#,
        url = srv.url("/api")
    );
    let out = run_json(&yaml).await;
    out.assert_code(1);
    let wrong = out.check("wrong-type");
    assert_eq!(wrong["reason"], "header", "{wrong}");
    assert_eq!(assertion(&wrong, "header content-type")["observed"], "\"application/json\"");
    let missing = out.check("missing-header");
    assert_eq!(missing["reason"], "header", "{missing}");
    assert_eq!(assertion(&missing, "header x-request-id")["observed"], "absent");
    let no_match = out.check("no-match");
    assert_eq!(no_match["reason"], "body", "{no_match}");
    assert_eq!(assertion(&no_match, "body_regex")["observed"], "no match");
    let forbidden = out.check("forbidden-match");
    assert_eq!(forbidden["reason"], "body", "{forbidden}");
    let not_regex = assertion(&forbidden, "body_not_regex");
    assert_eq!(
        (not_regex["passed"].clone(), not_regex["observed"].clone()),
        (false.into(), r#"""status": "ok"""#.into())
    );
    for line in out.json_lines() {
        assert_eq!(line["success"], false, "{line}");
        assert_eq!(assertion(&line, "status")["passed"], true, "only the named assertion fails: {line}");
    }
}

#[tokio::test]
async fn a_post_with_a_body_reaches_the_server() {
    let srv = Server::http1().echo("/echo").start().await;
    let extra = r#"method: POST
headers: {Content-Type: application/json}
body: '{"dry_run": true}'
expect:
  body_regex: '(?s)\APOST /echo\n.*content-type: application/json\n.*\n\n\{"dry_run": true\}\z'"#;
    let out = run_json(&http_check("post", &srv.url("/echo"), extra)).await;
    out.assert_code(0);
    assert_eq!(out.only()["success"], true, "{}", out.stdout);
    assert_eq!(srv.hits("/echo"), 1);
}

// ---------------------------------------------------------------------------------------------------------
// TLS and HTTP versions
// ---------------------------------------------------------------------------------------------------------

/// A config whose checks all target `url` and trust the test CA, one per `(name, extra http options)`.
fn tls_config(pki: &Pki, url: &str, checks: &[(&str, &str)]) -> Config {
    let config = Config::new("");
    let ca = config.dir().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let mut yaml = String::from("checks:\n");
    for (name, extra) in checks {
        let extra = extra.replace("CA_FILE", &ca.display().to_string());
        yaml.push_str(&format!("  - name: {name}\n    timeout: 5s\n    http: {{url: \"{url}\"{extra}}}\n"));
    }
    std::fs::write(&config.path, yaml).unwrap();
    config
}

async fn tls_server(leaf: Leaf) -> Server {
    Server::tls(leaf).route("/", 200, "secure hello").start().await
}

#[tokio::test]
async fn https_with_the_test_ca_succeeds_with_each_http_version() {
    let pki = Pki::new();
    let srv = tls_server(pki.valid_leaf()).await;
    let checks = [
        ("auto", ", tls: {ca_file: \"CA_FILE\"}"),
        ("forced-2", ", http_version: \"2\", tls: {ca_file: \"CA_FILE\"}"),
        ("forced-1-1", ", http_version: \"1.1\", tls: {ca_file: \"CA_FILE\"}"),
        ("by-name", ", tls: {ca_file: \"CA_FILE\", server_name: localhost}"),
    ];
    let out = tls_config(&pki, &srv.url("/"), &checks).run_json(&[]).await;
    out.assert_code(0);
    for (name, version) in [("auto", "2"), ("forced-2", "2"), ("forced-1-1", "1.1"), ("by-name", "2")] {
        let result = out.check(name);
        assert_eq!(result["success"], true, "{result}");
        assert_eq!(result["details"]["tls"], true, "{result}");
        assert_eq!(result["details"]["http_version"], version, "{result}");
        assert!(phase(&result, "tls") > 0.0, "{result}");
    }
    assert_eq!(srv.hits("/"), 4);
}

#[tokio::test]
async fn against_an_http1_only_server_auto_uses_1_1_and_forced_2_fails() {
    let pki = Pki::new();
    let srv = Server::tls(pki.valid_leaf()).http1_only().route("/", 200, "old school").start().await;
    let checks =
        [("auto", ", tls: {ca_file: \"CA_FILE\"}"), ("forced-2", ", http_version: \"2\", tls: {ca_file: \"CA_FILE\"}")];
    let out = tls_config(&pki, &srv.url("/"), &checks).run_json(&[]).await;
    out.assert_code(1);
    let auto = out.check("auto");
    assert_eq!(auto["success"], true, "{auto}");
    assert_eq!(auto["details"]["http_version"], "1.1");
    // The client offers only h2 by ALPN; a server without h2 refuses the handshake.
    let forced = out.check("forced-2");
    assert_eq!(forced["success"], false);
    assert_eq!(forced["reason"], "tls", "{forced}");
    assert!(error(&forced).contains("NoApplicationProtocol"), "{forced}");
    assert_eq!(srv.hits("/"), 1);
}

#[tokio::test]
async fn plain_http_version_2_uses_prior_knowledge() {
    let srv = Server::http1().route("/", 200, "h2c").start().await;
    let out = run_json(&http_check("h2c", &srv.url("/"), "http_version: \"2\"")).await;
    out.assert_code(0);
    let result = out.only();
    assert_eq!(result["details"]["http_version"], "2", "{result}");
    assert_eq!(result["details"]["tls"], false);
}

#[tokio::test]
async fn https_without_the_ca_fails_as_untrusted_and_sends_nothing() {
    let pki = Pki::new();
    let srv = tls_server(pki.valid_leaf()).await;
    let out = tls_config(&pki, &srv.url("/"), &[("system-roots", "")]).run_json(&[]).await;
    out.assert_code(1);
    let result = out.only();
    assert_eq!(result["reason"], "cert_untrusted", "{result}");
    assert!(error(&result).to_lowercase().contains("unknown"), "{result}");
    // The chain is reported even though it is not trusted.
    assert_eq!(result["details"]["certificate"]["chain"].as_array().map(Vec::len), Some(1), "{result}");
    assert_eq!(srv.hits("/"), 0);
}

#[tokio::test]
async fn an_expired_certificate_fails_unless_insecure() {
    let pki = Pki::new();
    let srv = tls_server(pki.expired_leaf()).await;
    let checks = [("strict", ", tls: {ca_file: \"CA_FILE\"}"), ("insecure", ", tls: {insecure: true}")];
    let out = tls_config(&pki, &srv.url("/"), &checks).run_json(&[]).await;
    out.assert_code(1);
    let strict = out.check("strict");
    assert_eq!(strict["reason"], "cert_expired", "{strict}");
    assert!(error(&strict).contains("expired"), "{strict}");
    let insecure = out.check("insecure");
    assert_eq!(insecure["success"], true, "{insecure}");
    assert_eq!(insecure["details"]["tls"], true);
    assert_eq!(srv.hits("/"), 1);
}

#[tokio::test]
async fn a_certificate_for_another_host_fails_unless_server_name_says_so() {
    let pki = Pki::new();
    let srv = tls_server(pki.wrong_host_leaf()).await;
    let checks = [
        ("by-address", ", tls: {ca_file: \"CA_FILE\"}"),
        ("named", ", tls: {ca_file: \"CA_FILE\", server_name: other.test}"),
    ];
    let out = tls_config(&pki, &srv.url("/"), &checks).run_json(&[]).await;
    out.assert_code(1);
    let by_address = out.check("by-address");
    assert_eq!(by_address["reason"], "cert_hostname", "{by_address}");
    assert!(error(&by_address).contains("not valid for"), "{by_address}");
    assert_eq!(out.check("named")["success"], true, "{}", out.stdout);
}

// ---------------------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------------------

const TOKEN: &str = "tok-5d1e9a3b-never-printed";

#[tokio::test]
async fn a_header_secret_is_sent_but_never_printed() {
    let srv = Server::http1().echo("/echo").start().await;
    // The body regex makes the token part of an observed value, so only redaction keeps it out of the output.
    let sent = format!(
        "headers: {{X-Token: \"${{env:PROBE_TEST_TOKEN}}\"}}\nexpect: {{body_contains: \"{TOKEN}\", body_regex: \"x-token: .*\"}}"
    );
    let config = Config::new(&http_check("token", &srv.url("/echo"), &sent));
    let out = config.command(&["--output", "json"], &[]).env("PROBE_TEST_TOKEN", TOKEN).output().await;
    out.assert_code(0);
    let result = out.only();
    assert_eq!(result["success"], true, "the token reached the server: {result}");
    assert_eq!(assertion(&result, "body_regex")["observed"], "\"x-token: [redacted]\"");
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN), "{}{}", out.stdout, out.stderr);

    let failing = format!("{sent}\n").replace("expect: {", "expect: {status: [201], ");
    let config = Config::new(&http_check("token", &srv.url("/echo"), &failing));
    for output in [&["--output", "json"][..], &["--output", "table"]] {
        let out = config.command(output, &[]).env("PROBE_TEST_TOKEN", TOKEN).output().await;
        out.assert_code(1);
        assert!(out.stdout.contains("status: expected 201, got 200"), "{}", out.stdout);
        assert!(!out.stdout.contains(TOKEN), "{output:?} printed the secret:\n{}", out.stdout);
        assert!(!out.stderr.contains(TOKEN), "{output:?} printed the secret:\n{}", out.stderr);
    }
    assert_eq!(srv.hits("/echo"), 3);
}

#[tokio::test]
async fn a_bearer_token_secret_reaches_the_server() {
    let srv = Server::http1().auth("/private", &format!("Bearer {TOKEN}")).start().await;
    let config = Config::new(&http_check("bearer", &srv.url("/private"), "bearer_token: \"${env:PROBE_TEST_TOKEN}\""));
    let out = config.command(&["--output", "json"], &[]).env("PROBE_TEST_TOKEN", TOKEN).output().await;
    out.assert_code(0);
    assert_eq!(out.only()["details"]["status_code"], 200, "{}", out.stdout);
    let out = config.command(&["--output", "json"], &[]).env("PROBE_TEST_TOKEN", "tok-wrong").output().await;
    out.assert_code(1);
    assert_eq!(out.only()["details"]["status_code"], 401, "{}", out.stdout);

    // The same token from a file: its trailing newline is not part of it.
    let config = Config::new("");
    let token_file = config.dir().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let extra = format!("bearer_token: \"${{file:{}}}\"", token_file.display());
    std::fs::write(&config.path, http_check("bearer-file", &srv.url("/private"), &extra)).unwrap();
    let out = config.run_json(&[]).await;
    out.assert_code(0);
    assert!(!out.stdout.contains(TOKEN), "{}", out.stdout);
}

#[tokio::test]
async fn basic_auth_with_a_secret_password_reaches_the_server() {
    // base64("monitor:pw-7f3a9c1e-basic"), computed independently of probenet.
    let srv = Server::http1().auth("/admin", "Basic bW9uaXRvcjpwdy03ZjNhOWMxZS1iYXNpYw==").start().await;
    let extra = "basic_auth: {username: monitor, password: \"${env:PROBE_TEST_PASSWORD}\"}";
    let config = Config::new(&http_check("basic", &srv.url("/admin"), extra));
    let out = config.command(&["--output", "json"], &[]).env("PROBE_TEST_PASSWORD", "pw-7f3a9c1e-basic").output().await;
    out.assert_code(0);
    assert_eq!(out.only()["details"]["status_code"], 200, "{}", out.stdout);
    let out = config.command(&["--output", "json"], &[]).env("PROBE_TEST_PASSWORD", "pw-wrong").output().await;
    out.assert_code(1);
    assert_eq!(out.only()["reason"], "status", "{}", out.stdout);
}

#[tokio::test]
async fn an_unset_secret_fails_the_run_with_reason_secret() {
    let srv = Server::http1().echo("/echo").start().await;
    let config =
        Config::new(&http_check("unset", &srv.url("/echo"), "headers: {X-Token: \"${env:PROBE_TEST_TOKEN}\"}"));
    let out = config.run_json(&[]).await;
    out.assert_code(1);
    let result = out.only();
    assert_eq!(result["reason"], "secret", "{result}");
    assert_eq!(error(&result), "secret ${env:PROBE_TEST_TOKEN}: environment variable PROBE_TEST_TOKEN is not set");
    assert_eq!(srv.hits("/echo"), 0, "nothing is sent without the secret");
}

// ---------------------------------------------------------------------------------------------------------
// Known product bugs: each test shows one and is ignored until it is fixed (run with `--ignored`).
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn basic_auth_credentials_are_never_printed_even_encoded() {
    const ENCODED: &str = "bW9uaXRvcjpwdy03ZjNhOWMxZS1iYXNpYw=="; // base64("monitor:pw-7f3a9c1e-basic")
    let srv = Server::http1().echo("/echo").start().await;
    let extra = "basic_auth: {username: monitor, password: \"${env:PROBE_TEST_PASSWORD}\"}
expect: {status: [201], body_regex: \"authorization: .*\"}";
    let config = Config::new(&http_check("basic", &srv.url("/echo"), extra));
    let out = config.command(&["--output", "json"], &[]).env("PROBE_TEST_PASSWORD", "pw-7f3a9c1e-basic").output().await;
    out.assert_code(1);
    assert_eq!(out.only()["reason"], "status");
    assert!(!out.stdout.contains("pw-7f3a9c1e-basic"), "{}", out.stdout);
    assert!(!out.stdout.contains(ENCODED), "the encoded credentials were printed:\n{}", out.stdout);
}

#[tokio::test]
async fn a_secret_is_redacted_even_when_escaped_or_cut_in_an_observed_value() {
    const QUOTED: &str = r#"tok"5d1e-with-a-quote"#;
    const LONG: &str = "tok-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let srv = Server::http1().echo("/echo").start().await;
    let yaml = format!(
        r#"checks:
  - name: quoted
    http: {{url: "{url}", headers: {{X-Token: "${{env:PROBE_TEST_TOKEN}}"}}, expect: {{body_regex: "x-token: .*"}}}}
  - name: long
    http: {{url: "{url}", headers: {{X-Token: "${{env:PROBE_TEST_PASSWORD}}"}}, expect: {{body_regex: "user-agent: (.|\\n)*x-token: .*"}}}}
"#,
        url = srv.url("/echo")
    );
    let out = Config::new(&yaml)
        .command(&["--output", "json"], &[])
        .env("PROBE_TEST_TOKEN", QUOTED)
        .env("PROBE_TEST_PASSWORD", LONG)
        .output()
        .await;
    out.assert_code(0);
    let observed = |name: &str| assertion(&out.check(name), "body_regex")["observed"].as_str().unwrap().to_owned();
    let (quoted, long) = (observed("quoted"), observed("long"));
    let mut leaks = Vec::new();
    if quoted.contains(&QUOTED.replace('"', "\\\"")) {
        leaks.push(format!("the secret, escaped: {quoted}"));
    }
    if long.contains(&LONG[..20]) {
        leaks.push(format!("the start of a cut secret: {long}"));
    }
    assert!(leaks.is_empty(), "printed {}", leaks.join("\nprinted "));
}

#[tokio::test]
async fn secret_headers_are_not_sent_to_another_origin_on_redirect() {
    let other = Server::http1().echo("/echo").start().await;
    let srv = Server::http1().redirect("/go", 302, &other.url("/echo")).start().await;
    let extra = "headers: {X-Api-Key: \"${env:PROBE_TEST_TOKEN}\"}\nexpect: {body_not_contains: x-api-key}";
    let config = Config::new(&http_check("cross-origin", &srv.url("/go"), extra));
    let out = config.command(&["--output", "json"], &[]).env("PROBE_TEST_TOKEN", TOKEN).output().await;
    assert_eq!(other.hits("/echo"), 1);
    out.assert_code(0);
}

#[tokio::test]
async fn a_certificate_expiring_soon_fails_min_days_remaining_after_the_request() {
    let pki = Pki::new();
    // Valid now, but only until the end of next year: fewer than 1,000 days left.
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let now = 1970 + i32::try_from(seconds / 31_556_952).unwrap();
    let srv = tls_server(pki.leaf(&["127.0.0.1", "localhost"], (now - 1, 1, 1), (now + 1, 12, 31))).await;
    let checks = [
        ("soon", ", tls: {ca_file: \"CA_FILE\"}, expect: {min_days_remaining: 1000}"),
        ("fine", ", tls: {ca_file: \"CA_FILE\"}, expect: {min_days_remaining: 7}"),
    ];
    let out = tls_config(&pki, &srv.url("/"), &checks).run_json(&[]).await;
    out.assert_code(1);
    let soon = out.check("soon");
    assert_eq!(soon["reason"], "cert_expiring", "{soon}");
    let days = assertion(&soon, "min_days_remaining");
    assert_eq!(days["passed"], false, "{soon}");
    assert!(days["observed"].as_str().unwrap().contains("days"), "{soon}");
    // The chain is trusted, so the request was made and judged too.
    assert_eq!(assertion(&soon, "status")["passed"], true, "{soon}");
    let fine = out.check("fine");
    assert_eq!(fine["success"], true, "{fine}");
    assert_eq!(fine["details"]["certificate"]["verdict"], "ok", "{fine}");
    assert!(fine["details"]["certificate"]["earliest_expiry_unix"].as_i64().unwrap() > 0, "{fine}");
    assert!(fine["details"]["tls_version"].as_str().unwrap().starts_with("TLSv1."), "{fine}");
    assert_eq!(srv.hits("/"), 2);
}
