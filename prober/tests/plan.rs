//! From assignments to pairs: planned times on the grid and in cron time zones, the config parsed once per
//! hash, a bad config keeping the previous one, unknown checks skipped.
#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

use probenet_checks::wire::{self, Assignment, Assignments, ConfigFile};
use probenet_prober::plan::{Planner, next_planned_ms};

const CONFIG: &str = "regions:\n  eu-west: {}\n  us-east: {}\nchecks:\n  - name: web\n    interval: 30s\n    tcp: {target: \"127.0.0.1:80\"}\n  - name: nightly\n    schedule: \"0 2 * * *\"\n    timezone: America/New_York\n    tcp: {target: \"127.0.0.1:80\"}\n";

fn assignments(hash: &str, text: &str, assigned: &[(&str, &str)]) -> Assignments {
    Assignments {
        generation: 1,
        config_hash: hash.to_owned(),
        config: vec![ConfigFile { name: "checks.yaml".to_owned(), text: text.to_owned() }],
        assigned: assigned
            .iter()
            .map(|(check, region)| Assignment {
                check: (*check).to_owned(),
                region: (*region).to_owned(),
                offset_ms: if *check == "web" { wire::offset_ms(check, region, 30_000) } else { 0 },
                resume_after_ms: None,
            })
            .collect(),
    }
}

#[test]
fn interval_pairs_run_on_their_grid() {
    let mut planner = Planner::new();
    let plan = planner.update(&assignments("h1", CONFIG, &[("web", "eu-west"), ("web", "us-east")]));
    assert_eq!(plan.pairs.len(), 2);
    assert!(plan.config_changed);
    let now = 1_767_571_234_567;
    for pair in &plan.pairs {
        let first = pair.next_at(now).unwrap();
        assert!(first >= now && first < now + 30_000);
        assert_eq!(first.rem_euclid(30_000) as u64, pair.offset_ms, "on the grid of the pair's offset");
        assert_eq!(pair.next_at(first + 1), Some(first + 30_000), "one interval later, nothing in between");
        assert_eq!(first, wire::next_planned_ms(now, 30_000, pair.offset_ms));
    }
    assert_ne!(plan.pairs[0].offset_ms, plan.pairs[1].offset_ms, "regions are spread over the interval");
}

#[test]
fn cron_pairs_run_at_their_next_occurrence_in_their_time_zone() {
    let mut planner = Planner::new();
    let plan = planner.update(&assignments("h1", CONFIG, &[("nightly", "eu-west")]));
    let pair = &plan.pairs[0];
    // 2026-01-05T00:00:00Z: 02:00 in New York (UTC-5 in winter) is 07:00 UTC.
    let midnight = 1_767_571_200_000;
    assert_eq!(pair.next_at(midnight), Some(midnight + 7 * 3_600_000));
    // 2026-07-06T00:00:00Z: in summer (UTC-4) it is 06:00 UTC.
    let summer = midnight + 182 * 86_400_000;
    assert_eq!(pair.next_at(summer), Some(summer + 6 * 3_600_000));
    // Exactly at an occurrence it is that occurrence; a millisecond later, the next day's.
    let at = midnight + 7 * 3_600_000;
    assert_eq!(next_planned_ms(&pair.check.schedule, 0, at), Some(at));
    assert_eq!(next_planned_ms(&pair.check.schedule, 0, at + 1), Some(at + 86_400_000));
}

#[test]
fn the_config_is_parsed_once_per_hash() {
    let mut planner = Planner::new();
    planner.update(&assignments("h1", CONFIG, &[("web", "eu-west")]));
    assert_eq!(planner.parses(), 1);
    // Same hash: the text is not even looked at (here it would not parse).
    let plan = planner.update(&assignments("h1", "checks: [oops", &[("web", "eu-west"), ("nightly", "eu-west")]));
    assert_eq!(planner.parses(), 1);
    assert!(!plan.config_changed);
    assert_eq!(plan.pairs.len(), 2);
    assert!(plan.config_errors.is_empty());
}

#[test]
fn a_config_that_does_not_validate_keeps_the_previous_one() {
    let mut planner = Planner::new();
    let first = planner.update(&assignments("h1", CONFIG, &[("web", "eu-west")]));
    let bad = planner.update(&assignments(
        "h2",
        "checks:\n  - name: web\n    interval: 5 parsecs\n    tcp: {}\n",
        &[("web", "eu-west")],
    ));
    assert!(!bad.config_errors.is_empty());
    assert!(bad.config_errors.iter().any(|error| error.contains("checks.yaml:")), "{:?}", bad.config_errors);
    assert!(!bad.config_changed);
    assert_eq!(bad.pairs.len(), 1, "the previous config still defines the pair");
    assert!(std::sync::Arc::ptr_eq(&bad.pairs[0].check, &first.pairs[0].check));
    // The same bad hash again: not parsed again, errors not repeated.
    let again = planner.update(&assignments("h2", "whatever", &[("web", "eu-west")]));
    assert!(again.config_errors.is_empty());
    assert_eq!(planner.parses(), 2);
    // A good new config is taken.
    let text = CONFIG.replace("interval: 30s", "interval: 1m");
    let good = planner.update(&assignments("h3", &text, &[("web", "eu-west")]));
    assert!(good.config_changed);
    assert_eq!(good.pairs[0].check.schedule.runs_per_day(), 1440.0);
}

#[test]
fn a_first_config_that_does_not_validate_gives_no_pairs() {
    let mut planner = Planner::new();
    let plan = planner.update(&assignments("h1", "checks: [", &[("web", "eu-west")]));
    assert!(!plan.config_errors.is_empty());
    assert!(plan.pairs.is_empty());
    assert_eq!(plan.unknown, ["web"]);
}

#[test]
fn unknown_checks_are_skipped_and_reported() {
    let mut planner = Planner::new();
    let plan = planner.update(&assignments("h1", CONFIG, &[("web", "eu-west"), ("ghost", "eu-west")]));
    assert_eq!(plan.pairs.len(), 1);
    assert_eq!(plan.pairs[0].check.name, "web");
    assert_eq!(plan.unknown, ["ghost"]);
}
