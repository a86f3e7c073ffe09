//! The step shapes a journey accepts, short and long, and what they validate into.

use std::time::Duration;

use super::{Action, BrowserCheck, WaitFor};
use crate::KindCheck as _;
use crate::config::CheckKind;

fn journey(steps: &str, expect: &str) -> BrowserCheck {
    let yaml = format!("checks:\n  - name: j\n    browser:\n      steps:\n{steps}      expect: {{{expect}}}\n");
    match crate::load_str("test.yaml", &yaml) {
        Ok(config) => match config.checks.into_iter().next().map(|check| check.kind) {
            Some(CheckKind::Browser(check)) => check,
            other => panic!("not a browser check: {other:?}"),
        },
        Err(errors) => panic!("{errors:?}"),
    }
}

#[test]
fn short_and_long_forms_validate_into_their_actions() {
    let check = journey(
        r##"        - goto: https://shop.example.com/
        - press: Enter
        - press: {key: Tab, selector: "#q"}
        - wait_for: "#cart"
        - wait_for: {text: Welcome}
        - wait_for: {url: "/done$"}
        - expect_text: Thanks
        - expect_text: {text: Total, selector: "#sum"}
        - expect_count: {selector: li, count: 3}
        - expect_count: {selector: li, min: 1}
        - sleep: 250ms
        - click: "#buy"
          timeout: 5s
"##,
        "",
    );
    let actions: Vec<&Action> = check.steps.iter().map(|step| &step.action).collect();
    assert!(matches!(actions[0], Action::Goto(url) if url.as_str() == "https://shop.example.com/"));
    assert!(matches!(actions[1], Action::Press { key, selector: None } if key == "Enter"));
    assert!(matches!(actions[2], Action::Press { key, selector: Some(s) } if key == "Tab" && s == "#q"));
    assert!(matches!(actions[3], Action::WaitFor(WaitFor::Selector(s)) if s == "#cart"));
    assert!(matches!(actions[4], Action::WaitFor(WaitFor::Text(t)) if t == "Welcome"));
    assert!(matches!(actions[5], Action::WaitFor(WaitFor::Url(r)) if r.is_match("https://x/done")));
    assert!(matches!(actions[6], Action::ExpectText { text, selector: None } if text == "Thanks"));
    assert!(matches!(actions[7], Action::ExpectText { selector: Some(s), .. } if s == "#sum"));
    assert!(matches!(actions[8], Action::ExpectCount { min: 3, max: Some(3), .. }));
    assert!(matches!(actions[9], Action::ExpectCount { min: 1, max: None, .. }));
    assert!(matches!(actions[10], Action::Sleep(d) if *d == Duration::from_millis(250)));
    assert_eq!(check.steps[11].timeout, Some(Duration::from_secs(5)));
    assert_eq!(check.steps[10].timeout, None);
    assert_eq!(check.target(), "https://shop.example.com/");
    assert!(!check.expect.no_console_errors);
    assert_eq!(check.expect.max_failed_requests, None);
}

#[test]
fn the_expect_block_and_names() {
    let check = journey(
        "        - goto: http://127.0.0.1/\n",
        "no_console_errors: true, max_failed_requests: 2, max_lcp: 2500ms, max_cls: 0.1",
    );
    assert!(check.expect.no_console_errors);
    assert_eq!(check.expect.max_failed_requests, Some(2));
    assert_eq!(check.expect.max_lcp, Some(Duration::from_millis(2500)));
    assert_eq!(check.expect.max_cls, Some(0.1));
    assert_eq!(check.steps[0].action.name(), "goto");
}

#[test]
fn a_fill_target_never_shows_its_text() {
    let check = journey("        - goto: http://127.0.0.1/\n        - fill: {selector: \"#pw\", text: hunter2}\n", "");
    assert_eq!(check.steps[1].action.target(), "#pw");
}
