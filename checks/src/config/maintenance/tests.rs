//! Which windows are in force when, across daylight-saving changes, and the validation of the section.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone as _};

use super::{Maintenance, MaintenanceMode, Span, in_mode};
use crate::config::load_str;

const CHECKS: &str = "checks:
  - {name: db, labels: {team: data}, tcp: {target: \"db.example.com:5432\"}}
  - {name: api, labels: {team: web}, http: {url: \"https://api.example.com/\"}}
  - {name: web, labels: {team: web}, http: {url: \"https://www.example.com/\"}}
";

fn windows(maintenance: &str) -> Vec<Maintenance> {
    let text = format!("{CHECKS}maintenance:\n{maintenance}");
    load_str("m.yaml", &text).unwrap_or_else(|errors| panic!("{errors}")).maintenance
}

fn errors(maintenance: &str) -> String {
    let text = format!("{CHECKS}maintenance:\n{maintenance}");
    load_str("m.yaml", &text).err().map(|errors| errors.to_string()).unwrap_or_default()
}

/// Unix ms of an RFC 3339 time.
fn at(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
}

fn span(start: &str, end: &str) -> Span {
    Span { start_ms: at(start), end_ms: at(end) }
}

const WEEKLY: &str = "  - name: weekly-db
    checks: [db, api]
    schedule: \"0 2 * * SUN\"
    duration: 2h
    timezone: Europe/Paris
    mode: mute
";

#[test]
fn a_weekly_window_is_in_force_from_its_start_to_its_end_for_its_checks_only() {
    let list = windows(WEEKLY);
    let window = &list[0];
    assert_eq!(window.checks, ["db", "api"]);
    assert_eq!(window.mode, MaintenanceMode::Mute);
    // Sunday 2027-01-10, 02:00 in Paris is 01:00 UTC.
    assert!(!window.active(at("2027-01-10T00:59:59Z")));
    assert!(window.active(at("2027-01-10T01:00:00Z")));
    assert!(window.active(at("2027-01-10T02:59:59.999Z")));
    assert!(!window.active(at("2027-01-10T03:00:00Z")));
    assert!(in_mode(&list, "db", at("2027-01-10T02:00:00Z"), MaintenanceMode::Mute));
    assert!(!in_mode(&list, "db", at("2027-01-10T02:00:00Z"), MaintenanceMode::Pause));
    assert!(!in_mode(&list, "web", at("2027-01-10T02:00:00Z"), MaintenanceMode::Mute));
    // Next start and end: from inside, the span in force; from after it, next Sunday's.
    let now = span("2027-01-10T01:00:00Z", "2027-01-10T03:00:00Z");
    assert_eq!(window.next_span(at("2027-01-10T01:30:00Z")), Some(now));
    assert_eq!(window.next_span(at("2027-01-09T12:00:00Z")), Some(now));
    let next = span("2027-01-17T01:00:00Z", "2027-01-17T03:00:00Z");
    assert_eq!(window.next_span(at("2027-01-10T03:00:00Z")), Some(next));
}

#[test]
fn on_the_spring_forward_night_a_0200_start_that_does_not_exist_starts_at_0300_summer_time() {
    // 2027-03-28: at 02:00 CET clocks go to 03:00 CEST (01:00 UTC); 02:00 never shows on a Paris clock.
    let window = &windows(WEEKLY)[0];
    let span = window.next_span(at("2027-03-27T12:00:00Z")).unwrap();
    assert_eq!(span.start_ms, at("2027-03-28T03:00:00+02:00"), "croner starts it at the end of the gap");
    assert_eq!(span.end_ms, at("2027-03-28T05:00:00+02:00"), "two real hours");
    assert!(!window.active(at("2027-03-28T00:59:59Z")));
    assert!(window.active(at("2027-03-28T01:00:00Z")));
    // The Sunday after, 02:00 CEST again.
    let next = window.next_span(span.end_ms).unwrap();
    assert_eq!(next.start_ms, at("2027-04-04T02:00:00+02:00"));
}

#[test]
fn on_the_fall_back_night_a_0200_start_that_happens_twice_starts_once_at_the_first() {
    // 2026-10-25: at 03:00 CEST clocks go back to 02:00 CET; 02:00 happens at 00:00 and 01:00 UTC.
    let window = &windows(WEEKLY)[0];
    let span = window.next_span(at("2026-10-24T12:00:00Z")).unwrap();
    assert_eq!(span.start_ms, at("2026-10-25T02:00:00+02:00"));
    assert_eq!(span.end_ms, at("2026-10-25T03:00:00+01:00"), "two real hours: 02:00 CEST to 03:00 CET");
    assert!(window.active(at("2026-10-25T02:30:00+01:00")), "the second 02:30 is inside");
    let next = window.next_span(span.end_ms).unwrap();
    assert_eq!(next.start_ms, at("2026-11-01T02:00:00+01:00"), "not a second start in the repeated hour");
}

#[test]
fn a_one_off_window_by_end_or_by_duration_and_label_selection() {
    let list = windows(
        "  - name: migration
    checks: [db]
    start: 2026-12-20T01:00:00+01:00
    end: 2026-12-20T03:00:00+01:00
    mode: pause
  - name: web-deploy
    match: {labels: {team: web}}
    start: \"2026-12-21T10:00:00Z\"
    duration: 30m
",
    );
    assert_eq!(list[0].mode, MaintenanceMode::Pause);
    assert_eq!(list[0].next_span(0), Some(span("2026-12-20T00:00:00Z", "2026-12-20T02:00:00Z")));
    assert!(list[0].active(at("2026-12-20T00:00:00Z")));
    assert!(!list[0].active(at("2026-12-20T02:00:00Z")));
    assert_eq!(list[0].next_span(at("2026-12-20T02:00:00Z")), None, "never again");
    assert_eq!(list[1].checks, ["api", "web"]);
    assert_eq!(list[1].mode, MaintenanceMode::Mute, "the default");
    assert!(in_mode(&list, "web", at("2026-12-21T10:29:00Z"), MaintenanceMode::Mute));
    assert!(!in_mode(&list, "web", at("2026-12-21T10:30:00Z"), MaintenanceMode::Mute));
}

#[test]
fn a_window_across_midnight_in_a_time_zone_is_in_force_on_both_days() {
    let list = windows(
        "  - name: nightly
    checks: web
    schedule: \"30 23 * * *\"
    timezone: America/New_York
    duration: 1h
",
    );
    let tz = chrono_tz::America::New_York;
    let inside = tz.with_ymd_and_hms(2027, 1, 6, 0, 15, 0).single().unwrap().timestamp_millis();
    assert!(list[0].active(inside));
}

#[test]
fn every_mistake_is_reported_with_its_place() {
    let text = errors(
        "  - name: a
    checks: [dbb]
    schedule: \"0 2 * * SUN\"
    start: 2026-12-20T01:00:00+01:00
  - name: b
    checks: [db]
    schedule: \"0 2 * * SUN\"
    timezone: Europe/Pariss
    duration: 8d
    mode: off
  - name: b
    checks: [db]
    start: 2026-12-20T03:00:00+01:00
    end: 2026-12-20T01:00:00+01:00
",
    );
    let expected = [
        "m.yaml:7:14: maintenance[0].checks[0]: unknown check \"dbb\" (did you mean \"db\"?)",
        "m.yaml:9:5: maintenance[0].start: set either `schedule` (recurring) or `start` (one-off), not both",
        "m.yaml:13:15: maintenance[1].timezone: \"Europe/Pariss\" is not a known IANA time zone, such as Europe/Paris",
        "m.yaml:14:15: maintenance[1].duration: 192h is outside the allowed range of 1s to 7d",
        "m.yaml:15:11: maintenance[1].mode: \"off\" is not one of mute, pause",
        "m.yaml:16:11: maintenance[2].name: duplicate maintenance window name \"b\" (first defined at m.yaml:10:5)",
        "m.yaml:19:10: maintenance[2].end: the window ends before it starts (2026-12-20T03:00:00+01:00)",
    ];
    assert_eq!(text, expected.join("\n"));
}
