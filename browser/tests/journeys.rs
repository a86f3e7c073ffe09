//! Journeys in real headless Chromium against pages served on 127.0.0.1: passing and failing steps, console
//! errors, a page that never loads, web vitals, and isolation between runs and checks.

mod util;

use std::time::Duration;

use probenet_checks::{Reason, State};
use util::{PNG_SIGNATURE, Site, journey, run};

fn secret_file(value: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), value).expect("write secret");
    file
}

fn login_steps(site: &Site, password_file: &std::path::Path) -> String {
    format!(
        r##"        - goto: "{login}"
        - fill: {{selector: "#user", text: alice}}
        - fill: {{selector: "#password", text: "${{file:{password}}}"}}
        - click: "#login"
        - expect_text: "Welcome, alice"
          timeout: 3s
        - expect_title: Account
        - expect_url: "/account$"
"##,
        login = site.url("/login"),
        password = password_file.display()
    )
}

#[tokio::test]
async fn a_login_journey_passes_with_each_step_timed() {
    if !util::chromium_present() {
        return;
    }
    util::warm_up().await;
    let site = Site::start().await;
    let password = secret_file("s3cret-pw");
    let check = journey("login", "15s", &login_steps(&site, password.path()), "{no_console_errors: true}");
    let outcome = run(&check).await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.reason, None);
    for (number, action) in [
        (1, "goto"),
        (2, "fill"),
        (3, "fill"),
        (4, "click"),
        (5, "expect_text"),
        (6, "expect_title"),
        (7, "expect_url"),
    ] {
        let seconds = outcome.phase(&format!("step_{number}_{action}"));
        assert!(seconds.is_some_and(|s| (0.0..15.0).contains(&s)), "step {number}: {:?}", outcome.phases);
    }
    assert!(outcome.phase("setup").is_some(), "{:?}", outcome.phases);
    let details = &outcome.details;
    assert_eq!(details["steps"].as_array().map(Vec::len), Some(7), "{details:#}");
    assert!(details["failed_step"].is_null());
    assert!(details["url"].as_str().is_some_and(|url| url.ends_with("/account")), "{details:#}");
    assert_eq!(details["title"], "Account");
    // The first page's navigation timing, in order.
    let navigation = &details["navigation"];
    assert_eq!(navigation["status"], 200, "{details:#}");
    let ttfb = navigation["ttfb_seconds"].as_f64().expect("ttfb");
    let dcl = navigation["dom_content_loaded_seconds"].as_f64().expect("dcl");
    let load = navigation["load_seconds"].as_f64().expect("load");
    assert!(0.0 <= ttfb && ttfb <= dcl && dcl <= load && load < 15.0, "{navigation}");
    // The document request: its duration, and the bytes both ways (as Grafana's browser dashboard shows them).
    let request = navigation["request_seconds"].as_f64().expect("request_seconds");
    assert!((0.0..=load).contains(&request), "{navigation}");
    let received = navigation["received_bytes"].as_u64().expect("received_bytes");
    assert!(received > 100, "headers and body of the login page: {navigation}");
    let sent = navigation["sent_bytes"].as_u64().expect("sent_bytes");
    assert!((40..4000).contains(&sent), "a GET with the browser's headers: {navigation}");
    let fcp = details["web_vitals"]["fcp_seconds"].as_f64().expect("an FCP");
    assert!(fcp > 0.0 && fcp < 15.0, "{details:#}");
    assert!(details["pages"].as_array().is_some_and(|pages| pages.len() >= 2), "{details:#}");
    assert!(outcome.assertions.iter().all(|assertion| assertion.passed), "{:#?}", outcome.assertions);
    assert!(outcome.assertions.iter().any(|assertion| assertion.name == "step_5_expect_text"));
    // The password was typed, and appears nowhere in the outcome.
    let text = format!("{outcome:?}");
    assert!(!text.contains("s3cret-pw"), "the secret leaked: {text}");
}

#[tokio::test]
async fn a_wrong_password_fails_at_the_step_that_expects_the_welcome_with_a_screenshot() {
    if !util::chromium_present() {
        return;
    }
    util::warm_up().await;
    let site = Site::start().await;
    let password = secret_file("wrong-pw");
    let check = journey("login-wrong", "15s", &login_steps(&site, password.path()), "");
    let outcome = run(&check).await;
    assert_eq!(outcome.state, State::Down, "{outcome:#?}");
    assert_eq!(outcome.reason, Some(Reason::Assertion), "{outcome:#?}");
    let error = outcome.error.clone().unwrap_or_default();
    assert!(error.starts_with("step 5 expect_text \"Welcome, alice\": "), "{error}");
    assert!(error.contains("within the step's timeout of 3s"), "{error}");
    assert!(error.contains("/session"), "the error names the page: {error}");
    let failed = &outcome.details["failed_step"];
    assert_eq!(failed["step"], 5, "{failed}");
    assert_eq!(failed["action"], "expect_text");
    assert!(failed["url"].as_str().is_some_and(|url| url.ends_with("/session")), "{failed}");
    assert_eq!(outcome.details["title"], "Login failed");
    // Steps after the failing one did not run.
    assert_eq!(outcome.details["steps"].as_array().map(Vec::len), Some(5));
    assert!(outcome.phase("step_6_expect_title").is_none());
    let assertion = outcome.assertions.iter().find(|a| a.name == "step_5_expect_text").expect("assertion");
    assert!(!assertion.passed);
    assert!(assertion.observed.contains("Wrong password"), "{assertion:?}");
    // A screenshot of the failing page.
    let shot = outcome.artifacts.iter().find(|a| a.name == "failure-step-5.png").expect("a screenshot");
    assert_eq!(shot.media_type, "image/png");
    assert!(shot.data.starts_with(&PNG_SIGNATURE), "not a PNG");
    assert!(shot.data.len() > 1000, "a suspiciously small PNG: {} bytes", shot.data.len());
    assert!(!format!("{outcome:?}").contains("wrong-pw"));
}

#[tokio::test]
async fn a_javascript_error_fails_no_console_errors_and_is_reported() {
    if !util::chromium_present() {
        return;
    }
    util::warm_up().await;
    let site = Site::start().await;
    let steps = format!("        - goto: \"{}\"\n        - expect_text: Broken page\n", site.url("/broken"));
    let check = journey("broken", "10s", &steps, "{no_console_errors: true}");
    let outcome = run(&check).await;
    assert_eq!(outcome.state, State::Down, "{outcome:#?}");
    assert_eq!(outcome.reason, Some(Reason::Assertion));
    assert!(outcome.details["failed_step"].is_null(), "every step passed: {:#}", outcome.details);
    let assertion = outcome.assertions.iter().find(|a| a.name == "no_console_errors").expect("assertion");
    assert!(!assertion.passed);
    assert!(assertion.observed.contains("TypeError"), "{assertion:?}");
    assert_eq!(outcome.details["console_errors"], 1, "{:#}", outcome.details);
    assert!(outcome.error.as_deref().is_some_and(|error| error.starts_with("no_console_errors: ")));

    // Without the assertion, the same page passes and still reports the error.
    let check = journey("broken-tolerated", "10s", &steps, "");
    let outcome = run(&check).await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["console_errors"], 1);
}

#[tokio::test]
async fn a_page_that_never_finishes_loading_is_closed_at_the_timeout_and_the_next_run_works() {
    if !util::chromium_present() {
        return;
    }
    util::warm_up().await;
    let site = Site::start().await;
    let steps = format!("        - goto: \"{}\"\n", site.url("/hang"));
    let check = journey("hanging", "3s", &steps, "");
    let started = std::time::Instant::now();
    let outcome = run(&check).await;
    let took = started.elapsed();
    assert_eq!(outcome.state, State::Down, "{outcome:#?}");
    assert_eq!(outcome.reason, Some(Reason::Timeout), "{outcome:#?}");
    assert!(took >= Duration::from_secs(2) && took <= Duration::from_millis(3500), "took {took:?}");
    let error = outcome.error.clone().unwrap_or_default();
    assert!(error.starts_with("step 1 goto "), "{error}");
    assert!(error.contains("did not finish loading within the check's timeout of 3s"), "{error}");
    assert!(outcome.artifacts.iter().any(|a| a.name == "failure-step-1.png"), "{:?}", outcome.artifacts);
    // The page was closed: the browser dropped its hanging request.
    assert!(site.never_opened.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert!(site.never_closed_within(1, Duration::from_secs(5)).await >= 1, "the hanging request stayed open");

    // The next run of a good page works.
    let password = secret_file("s3cret-pw");
    let check = journey("after-hang", "15s", &login_steps(&site, password.path()), "");
    let outcome = run(&check).await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
}

#[tokio::test]
async fn a_slow_largest_contentful_paint_is_measured() {
    if !util::chromium_present() {
        return;
    }
    util::warm_up().await;
    let site = Site::start().await;
    let steps = format!("        - goto: \"{}\"\n        - wait_for: \"#hero\"\n", site.url("/lcp?delay=800"));
    let check = journey("slow-lcp", "10s", &steps, "{max_lcp: 300ms}");
    let outcome = run(&check).await;
    let lcp = outcome.details["web_vitals"]["lcp_seconds"].as_f64().expect("an LCP");
    assert!((0.8..5.0).contains(&lcp), "LCP {lcp}s for an element shown after 800ms");
    let fcp = outcome.details["web_vitals"]["fcp_seconds"].as_f64().expect("an FCP");
    assert!(fcp <= lcp, "the first paint ({fcp}s) comes before the largest ({lcp}s)");
    assert!(outcome.details["web_vitals"]["cls"].as_f64().is_some(), "{:#}", outcome.details);
    // The limit of 300ms is passed: reason `duration`.
    assert_eq!(outcome.reason, Some(Reason::Duration), "{outcome:#?}");
    let assertion = outcome.assertions.iter().find(|a| a.name == "max_lcp").expect("assertion");
    assert!(!assertion.passed, "{assertion:?}");

    // A fast page passes the same limit.
    let steps = format!("        - goto: \"{}\"\n        - wait_for: \"#hero\"\n", site.url("/lcp?delay=0"));
    let outcome = run(&journey("fast-lcp", "10s", &steps, "{max_lcp: 5s}")).await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    // Well below the slow page's, whatever the machine's load adds to both.
    let fast = outcome.details["web_vitals"]["lcp_seconds"].as_f64().expect("an LCP");
    assert!(fast + 0.5 < lcp, "LCP {fast}s for the page without delay, {lcp}s with 800ms");
}

/// A journey that checks it starts with no cookie or storage, sets its own, and sees only its own.
fn cookie_journey(site: &Site, me: &str, other: &str) -> probenet_checks::Check {
    let steps = format!(
        r##"        - goto: "{show}"
        - expect_text: "cookies: none"
        - eval: "localStorage.getItem('owner') === null"
        - eval: "(localStorage.setItem('owner', '{me}'), true)"
        - goto: "{set}"
        - sleep: 700ms
        - goto: "{show}"
        - expect_text: "seen_{me}=1"
        - eval: "!document.cookie.includes('seen_{other}') && localStorage.getItem('owner') === '{me}'"
"##,
        show = site.url("/show"),
        set = site.url(&format!("/cookie/{me}")),
    );
    journey(&format!("cookie-{me}"), "15s", &steps, "")
}

#[tokio::test]
async fn concurrent_checks_and_successive_runs_share_no_cookies_or_storage() {
    if !util::chromium_present() {
        return;
    }
    util::warm_up().await;
    let site = Site::start().await;
    let (a, b) = (cookie_journey(&site, "a", "b"), cookie_journey(&site, "b", "a"));
    let (first, second) = tokio::join!(run(&a), run(&b));
    assert_eq!(first.state, State::Up, "{first:#?}");
    assert_eq!(second.state, State::Up, "{second:#?}");
    // Again: the first run's cookie and storage are gone.
    let again = run(&a).await;
    assert_eq!(again.state, State::Up, "{again:#?}");
}

#[tokio::test]
async fn every_step_kind_runs() {
    if !util::chromium_present() {
        return;
    }
    util::warm_up().await;
    let site = Site::start().await;
    let steps = format!(
        r##"        - goto: "{url}"
        - fill: {{selector: "#q", text: "blue mug"}}
        - press: Enter
        - wait_for: {{text: "searched: blue mug"}}
        - fill: {{selector: "#q", text: ""}}
        - press: {{key: a, selector: "#q"}}
        - eval: "document.querySelector('#q').value === 'a'"
        - select: {{selector: "#size", value: Large}}
        - expect_text: {{text: "size l", selector: "#chosen"}}
        - click: "#go"
        - wait_for: {{selector: "#result"}}
        - expect_count: {{selector: ".item", count: 3}}
        - expect_count: {{selector: ".item", min: 2, max: 5}}
        - expect_title: Clicked
        - wait_for: {{url: "/steps$"}}
        - sleep: 100ms
        - screenshot: after-click
"##,
        url = site.url("/steps")
    );
    let outcome = run(&journey("all-steps", "20s", &steps, "{max_failed_requests: 0}")).await;
    assert_eq!(outcome.state, State::Up, "{outcome:#?}");
    assert_eq!(outcome.details["steps"].as_array().map(Vec::len), Some(17));
    assert!(outcome.phase("step_16_sleep").is_some_and(|s| s >= 0.1), "{:?}", outcome.phases);
    let shot = outcome.artifacts.iter().find(|a| a.name == "after-click.png").expect("a screenshot");
    assert!(shot.data.starts_with(&PNG_SIGNATURE));
    assert!(outcome.details["web_vitals"]["inp_seconds"].as_f64().is_some(), "{:#}", outcome.details);
}

#[tokio::test]
async fn network_and_status_failures_have_their_reasons() {
    if !util::chromium_present() {
        return;
    }
    util::warm_up().await;
    let port = util::closed_port().await;
    let steps = format!("        - goto: \"http://127.0.0.1:{port}/\"\n");
    let outcome = run(&journey("refused", "10s", &steps, "")).await;
    assert_eq!(outcome.reason, Some(Reason::Connect), "{outcome:#?}");
    assert!(outcome.error.as_deref().is_some_and(|e| e.contains("ERR_CONNECTION_REFUSED")), "{outcome:#?}");

    let site = Site::start().await;
    let steps = format!("        - goto: \"{}\"\n", site.url("/gone"));
    let outcome = run(&journey("gone", "10s", &steps, "")).await;
    assert_eq!(outcome.reason, Some(Reason::Status), "{outcome:#?}");
    assert!(outcome.error.as_deref().is_some_and(|e| e.contains("HTTP 404")), "{outcome:#?}");

    // A selector that cannot match fails at once, not at the timeout.
    let steps = format!("        - goto: \"{}\"\n        - click: \"##\"\n", site.url("/steps"));
    let started = std::time::Instant::now();
    let outcome = run(&journey("bad-selector", "10s", &steps, "")).await;
    assert_eq!(outcome.reason, Some(Reason::Assertion), "{outcome:#?}");
    assert!(outcome.error.as_deref().is_some_and(|e| e.contains("invalid CSS selector")), "{outcome:#?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A journey on the secret form: `fill` the token field (`text`, a secret template or not), take a screenshot,
/// check the field still holds what was typed, then fail at an assertion (which takes the failure screenshot).
fn secret_form_journey(site: &Site, name: &str, password: &str, text: &str, length: usize) -> probenet_checks::Check {
    let steps = format!(
        r##"        - goto: "{url}"
        - fill: {{selector: "#token", text: "{text}"}}
        - screenshot: filled
        - eval: "document.querySelector('#token').value.length === {length}"
        - expect_title: Never
          timeout: 300ms
"##,
        url = site.url(&format!("/secret-form?pw={password}")),
    );
    journey(name, "15s", &steps, "")
}

fn artifact<'a>(outcome: &'a probenet_checks::Outcome, name: &str) -> &'a [u8] {
    let shot = outcome.artifacts.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("no {name}: {outcome:#?}"));
    assert!(shot.data.starts_with(&PNG_SIGNATURE), "{name} is not a PNG");
    &shot.data
}

#[tokio::test]
async fn screenshots_hide_fields_filled_with_secrets_and_password_fields() {
    if !util::chromium_present() {
        return;
    }
    util::warm_up().await;
    let site = Site::start().await;
    let secret = secret_file("TOPSECRET-42");
    let from_file = format!("${{file:{}}}", secret.path().display());
    // The secret typed into a plain text field, next to a password field the page filled.
    let hidden = run(&secret_form_journey(&site, "secret-hidden", "hunter2", &from_file, 12)).await;
    // The same page with both fields empty.
    let empty = run(&secret_form_journey(&site, "secret-empty", "", "", 0)).await;
    // The same text typed as a plain value (no secret): it shows.
    let shown = run(&secret_form_journey(&site, "secret-shown", "hunter2", "TOPSECRET-42", 12)).await;
    for outcome in [&hidden, &empty, &shown] {
        assert_eq!(outcome.reason, Some(Reason::Assertion), "{outcome:#?}");
        // The field held the typed text again after the screenshot step: masking gave it back.
        assert_eq!(outcome.details["failed_step"]["step"], 5, "{:#}", outcome.details);
    }
    assert!(!format!("{hidden:?}").contains("TOPSECRET-42"), "the secret leaked into the outcome");
    // Pixel for pixel, the screenshots of the secret journey are those of empty fields.
    assert!(artifact(&hidden, "filled.png") == artifact(&empty, "filled.png"), "the step's screenshot shows a field");
    assert!(
        artifact(&hidden, "failure-step-5.png") == artifact(&empty, "failure-step-5.png"),
        "the failure screenshot shows a field"
    );
    // A text that is no secret is visible: the comparison can tell.
    assert!(artifact(&shown, "filled.png") != artifact(&empty, "filled.png"), "the plain text does not show");
}
