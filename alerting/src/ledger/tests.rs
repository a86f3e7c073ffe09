//! The ledger against figures computed by hand: a 30-day month with a regional quorum, retries, both kinds of
//! maintenance, a prober outage and an impaired region; then each rule of the policy alone.

use std::collections::BTreeMap;
use std::time::Duration;

use probenet_checks::config::Place;
use probenet_checks::config::alerting::{AlertRule, FailingState, Hold, RegionQuorum};
use probenet_checks::config::maintenance::{Maintenance, MaintenanceMode, When};
use probenet_checks::outcome::State;

use super::*;
use crate::rules::{CheckInfo, Rules};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// Midnight UTC, the start of the month.
const T0: i64 = 20_000 * DAY;

fn at(day: i64, hour: i64, minute: i64) -> i64 {
    T0 + day * DAY + hour * HOUR + minute * MIN
}

fn sample(check: &str, region: &str, planned_ms: i64, down: Option<&str>) -> Sample {
    Sample {
        check: check.into(),
        region: region.into(),
        planned_ms,
        state: if down.is_some() { State::Down } else { State::Up },
        reason: down.map(str::to_owned),
        error: down.map(|reason| format!("{reason} failure")),
    }
}

fn policy(regions: &[&str], quorum: RegionQuorum, retries: u32) -> CheckPolicy {
    CheckPolicy {
        name: "web".into(),
        regions: regions.iter().map(|region| (*region).to_owned()).collect(),
        interval_ms: MIN,
        quorum,
        retries,
    }
}

fn window(name: &str, mode: MaintenanceMode, start_ms: i64, end_ms: i64) -> Maintenance {
    Maintenance {
        name: name.into(),
        checks: vec!["web".into()],
        when: When::Once { start_ms, end_ms },
        mode,
        reason: None,
        created_by: None,
        place: Place { file: "c.yaml".into(), line: 1, col: 1 },
    }
}

fn ledger(checks: &[CheckPolicy], samples: &[Sample], windows: &[Maintenance], impaired: &[ImpairedSpan]) -> Ledger {
    compute(&Input { checks, samples, maintenance: windows, impaired, from_ms: T0, to_ms: T0 + 30 * DAY })
}

/// Every second of the window is in exactly one of up, down, unknown and maintenance.
fn assert_whole(figures: &Figures, length_seconds: f64) {
    let sum = figures.up_seconds + figures.down_seconds + figures.unknown_seconds + figures.maintenance_seconds;
    assert!((sum - length_seconds).abs() < 1e-6, "{sum} != {length_seconds}: {figures:#?}");
}

#[test]
#[allow(clippy::float_cmp)]
fn thirty_days_match_the_figures_computed_by_hand() {
    // One check, `web`, every minute from eu, us and ap; down when 2 of the 3 regions are (50% of 3, rounded up),
    // one retry (`consecutive: 2`). The month is 30 × 86 400 = 2 592 000 s.
    let regions = ["eu", "us", "ap"];
    let checks = [policy(&regions, RegionQuorum::Percent(50.0), 1)];
    let pause = (at(9, 2, 0), at(9, 4, 0)); // day 10, 02:00-04:00: 7 200 s paused
    let mute = (at(11, 3, 0), at(11, 4, 0)); // day 12, 03:00-04:00: 3 600 s muted
    let ap_outage = (at(19, 0, 0), at(19, 6, 0)); // day 20: ap's prober sends nothing for 6 h = 21 600 s
    let us_impaired = ImpairedSpan { region: "us".into(), start_ms: at(23, 0, 0), end_ms: at(23, 1, 0) };
    let windows =
        [window("db", MaintenanceMode::Pause, pause.0, pause.1), window("m", MaintenanceMode::Mute, mute.0, mute.1)];
    let mut samples = Vec::new();
    for minute in 0..30 * 1440 {
        let t = T0 + minute * MIN;
        for region in regions {
            if (pause.0..pause.1).contains(&t) || (region == "ap" && (ap_outage.0..ap_outage.1).contains(&t)) {
                continue;
            }
            let both = region != "ap";
            let down = if both && (at(1, 10, 0)..at(1, 10, 30)).contains(&t) {
                // Day 2, 10:00-10:30: eu and us fail 30 runs each: 1 800 s down in both, so for the check.
                Some("status")
            } else if region == "eu" && t == at(4, 12, 0) {
                // Day 5, 12:00: one failed run in eu, passed at 12:01: forgiven by the retry, 0 s.
                Some("timeout")
            } else if region == "us" && (t == at(4, 13, 0) || t == at(4, 13, 1)) {
                // Day 5, 13:00 and 13:01: two in a row in us, more than one retry: 120 s down in us only.
                Some("connect")
            } else if both && (at(11, 3, 0)..at(11, 3, 20)).contains(&t) {
                // Day 12, 03:00-03:20, inside the mute window: 1 200 s down in eu, us and the check, muted.
                Some("status")
            } else if region == "us" && (us_impaired.start_ms..us_impaired.end_ms).contains(&t) {
                // Day 24, 00:00-01:00: us fails while impaired: 3 600 s unknown there, never down.
                Some("connect")
            } else {
                None
            };
            samples.push(sample("web", region, t, down));
        }
    }
    // A run planned inside the pause by a prober that did not know of it yet: ignored.
    samples.push(sample("web", "eu", at(9, 2, 30), Some("status")));
    let ledger = ledger(&checks, &samples, &windows, std::slice::from_ref(&us_impaired));
    assert_eq!(ledger.policy, 1);
    let web = &ledger.checks[0];
    let region = |name: &str| &web.regions.iter().find(|row| row.region == name).unwrap().figures;
    // eu: down 1 800 + 1 200 = 3 000 s; paused 7 200 s; up 2 592 000 - 3 000 - 7 200 = 2 581 800 s.
    let eu = region("eu");
    assert_eq!(
        (eu.up_seconds, eu.down_seconds, eu.unknown_seconds, eu.maintenance_seconds),
        (2_581_800.0, 3_000.0, 0.0, 7_200.0)
    );
    assert_eq!(eu.uptime, Some(2_581_800.0 / 2_584_800.0));
    assert_eq!(eu.muted_seconds, 3_600.0);
    // us: down 1 800 + 120 + 1 200 = 3 120 s; unknown 3 600 s (impaired); paused 7 200 s;
    // up 2 592 000 - 3 120 - 3 600 - 7 200 = 2 578 080 s.
    let us = region("us");
    assert_eq!(
        (us.up_seconds, us.down_seconds, us.unknown_seconds, us.maintenance_seconds),
        (2_578_080.0, 3_120.0, 3_600.0, 7_200.0)
    );
    assert_eq!(us.downtime.len(), 3, "{:#?}", us.downtime);
    assert_eq!((us.downtime[1].start_ms, us.downtime[1].end_ms), (at(4, 13, 0), at(4, 13, 2)));
    assert_eq!(us.downtime[1].reason.as_deref(), Some("connect"));
    // ap: never down; unknown 21 600 s (the outage); paused 7 200 s; up 2 592 000 - 21 600 - 7 200 = 2 563 200 s.
    let ap = region("ap");
    assert_eq!(
        (ap.up_seconds, ap.down_seconds, ap.unknown_seconds, ap.maintenance_seconds),
        (2_563_200.0, 0.0, 21_600.0, 7_200.0)
    );
    assert_eq!(ap.uptime, Some(1.0));
    // The check: down only where eu and us both are (1 800 + 1 200 = 3 000 s). During ap's outage eu and us
    // pass (1 failing + 1 unknown < 2): up. While us is impaired, the quorum is of eu and ap, which pass: up.
    let overall = &web.overall;
    assert_eq!(
        (overall.up_seconds, overall.down_seconds, overall.unknown_seconds, overall.maintenance_seconds),
        (2_581_800.0, 3_000.0, 0.0, 7_200.0)
    );
    assert_eq!(overall.uptime, Some(2_581_800.0 / 2_584_800.0));
    // SLOs leave the mute window out: 3 600 s, of which 1 200 down and 2 400 up.
    // (2 581 800 - 2 400) / (2 581 800 - 2 400 + 3 000 - 1 200) = 2 579 400 / 2 581 200.
    assert_eq!(overall.muted_seconds, 3_600.0);
    assert_eq!(overall.slo_uptime, Some(2_579_400.0 / 2_581_200.0));
    assert_eq!(overall.downtime.len(), 2, "{:#?}", overall.downtime);
    let first = &overall.downtime[0];
    assert_eq!((first.start_ms, first.end_ms, first.seconds), (at(1, 10, 0), at(1, 10, 30), 1_800.0));
    assert_eq!(
        (first.regions.clone(), first.reason.as_deref(), first.muted),
        (vec!["eu".to_owned(), "us".to_owned()], Some("status"), false)
    );
    assert_eq!(first.error.as_deref(), Some("status failure"));
    let second = &overall.downtime[1];
    assert_eq!((second.start_ms, second.seconds, second.muted), (at(11, 3, 0), 1_200.0, true));
    let modes: Vec<(&str, &str, i64, i64)> =
        web.maintenance.iter().map(|span| (span.window.as_str(), span.mode, span.start_ms, span.end_ms)).collect();
    assert_eq!(modes, [("db", "pause", pause.0, pause.1), ("m", "mute", mute.0, mute.1)]);
    for figures in std::iter::once(overall).chain(web.regions.iter().map(|row| &row.figures)) {
        assert_whole(figures, 2_592_000.0);
    }
}

#[test]
#[allow(clippy::float_cmp)]
fn a_gap_is_unknown_and_silent_regions_make_the_quorum_unknown() {
    let checks = [policy(&["eu", "us", "ap"], RegionQuorum::Count(2), 0)];
    // eu fails at 00:00 and 00:01 then nothing: each covers one interval (60 s), then unknown.
    // us passes at 00:00 only. ap sends nothing.
    let samples = [
        sample("web", "eu", at(0, 0, 0), Some("timeout")),
        sample("web", "eu", at(0, 0, 1), Some("timeout")),
        sample("web", "us", at(0, 0, 0), None),
    ];
    let ledger = compute(&Input {
        checks: &checks,
        samples: &samples,
        maintenance: &[],
        impaired: &[],
        from_ms: T0,
        to_ms: T0 + HOUR,
    });
    let web = &ledger.checks[0];
    let eu = &web.regions[0].figures;
    assert_eq!((eu.down_seconds, eu.unknown_seconds, eu.uptime), (120.0, 3_480.0, Some(0.0)));
    // 00:00-00:01: eu down, us up, ap unknown: 1 failing + 1 unknown = 2 = the quorum: unknown, not down.
    // 00:01-00:02: eu down, us and ap unknown: 1 + 2 >= 2: unknown. Then all unknown.
    let overall = &web.overall;
    assert_eq!((overall.up_seconds, overall.down_seconds, overall.unknown_seconds), (0.0, 0.0, 3_600.0));
    assert_eq!(overall.uptime, None);
    assert_whole(overall, 3_600.0);
}

#[test]
#[allow(clippy::float_cmp)]
fn retries_forgive_only_failures_followed_by_a_pass() {
    let checks = [policy(&["eu"], RegionQuorum::Count(1), 2)];
    // Two failures then a pass: forgiven. Three failures then a pass: 180 s down. Two failures at the end of the
    // data, with nothing after: no retry passed, 120 s down.
    let mut samples = Vec::new();
    let states = ["down", "down", "up", "down", "down", "down", "up", "up", "down", "down"];
    for (minute, state) in (0..).zip(states) {
        samples.push(sample("web", "eu", at(0, 0, minute), (state == "down").then_some("status")));
    }
    let ledger = compute(&Input {
        checks: &checks,
        samples: &samples,
        maintenance: &[],
        impaired: &[],
        from_ms: T0,
        to_ms: T0 + 10 * MIN,
    });
    let eu = &ledger.checks[0].regions[0].figures;
    assert_eq!((eu.up_seconds, eu.down_seconds), (300.0, 300.0));
    let spans: Vec<(i64, i64)> = eu.downtime.iter().map(|down| (down.start_ms, down.end_ms)).collect();
    assert_eq!(spans, [(at(0, 0, 3), at(0, 0, 6)), (at(0, 0, 8), at(0, 0, 10))]);
}

#[test]
#[allow(clippy::float_cmp)]
fn a_result_before_the_window_covers_its_start_and_a_recurring_pause_is_cut_at_the_edges() {
    let checks = [policy(&["eu"], RegionQuorum::Count(1), 0)];
    // The window starts at 00:00:30; the run of 00:00 covers until 00:01, so 30 s of it count.
    let samples: Vec<Sample> = (0..10).map(|minute| sample("web", "eu", at(0, 0, minute), None)).collect();
    let yaml = "checks:\n  - name: web\n    tcp: {target: \"127.0.0.1:1\"}\nmaintenance:\n  - name: hourly\n    \
                checks: [web]\n    schedule: \"5 * * * *\"\n    duration: 2m\n    mode: pause\n";
    let config = probenet_checks::load_str("c.yaml", yaml).unwrap();
    let hourly = Rules::from_config(&config).maintenance.remove(0);
    assert!(matches!(hourly.when, When::Recurring { .. }));
    let ledger = compute(&Input {
        checks: &checks,
        samples: &samples,
        maintenance: std::slice::from_ref(&hourly),
        impaired: &[],
        from_ms: T0 + 30_000,
        to_ms: T0 + 6 * MIN,
    });
    let web = &ledger.checks[0];
    // 00:00:30-00:05 up (270 s), 00:05-00:06 paused (60 s: the window runs to 00:07, cut at the end).
    let eu = &web.regions[0].figures;
    assert_eq!((eu.up_seconds, eu.maintenance_seconds), (270.0, 60.0));
    assert_eq!(web.maintenance.len(), 1);
    assert_eq!((web.maintenance[0].start_ms, web.maintenance[0].end_ms), (at(0, 0, 5), at(0, 0, 6)));
}

#[test]
fn the_policy_of_a_check_comes_from_its_first_down_rule() {
    let info = |name: &str| CheckInfo {
        name: name.into(),
        regions: vec!["eu".into(), "us".into()],
        interval_ms: MIN,
        labels: BTreeMap::new(),
        target: String::new(),
        slo: None,
        slo_notify: Vec::new(),
        depends_on: Vec::new(),
    };
    let rule = |checks: &[&str], state: FailingState, hold: Hold, failed_regions: RegionQuorum| AlertRule {
        name: "r".into(),
        checks: checks.iter().map(|check| (*check).to_owned()).collect(),
        failed_regions,
        hold,
        resolve_after: Duration::from_secs(60),
        state,
        severity: "page".into(),
        labels: BTreeMap::new(),
        notify: Vec::new(),
        place: Place { file: "c.yaml".into(), line: 1, col: 1 },
    };
    let rules = Rules {
        checks: ["a", "b", "c"].into_iter().map(|name| (name.to_owned(), info(name))).collect(),
        alerts: vec![
            rule(&["a", "b"], FailingState::Degraded, Hold::Consecutive(9), RegionQuorum::Count(1)),
            rule(&["a"], FailingState::Down, Hold::Consecutive(3), RegionQuorum::Count(2)),
            rule(&["b"], FailingState::Down, Hold::For(Duration::from_secs(150)), RegionQuorum::Percent(100.0)),
        ],
        ..Rules::default()
    };
    let policies = CheckPolicy::from_rules(&rules);
    let found: Vec<(&str, String, u32)> =
        policies.iter().map(|policy| (policy.name.as_str(), policy.quorum.to_string(), policy.retries)).collect();
    // a: consecutive 3 -> 2 retries; b: for 150 s at 60 s -> 3 runs fit, 2 retries; c: no rule -> 50%, none.
    assert_eq!(found, [("a", "2".to_owned(), 2), ("b", "100%".to_owned(), 2), ("c", "50%".to_owned(), 0)]);
}

#[test]
#[allow(clippy::float_cmp)]
fn a_count_quorum_larger_than_the_regions_left_is_never_reached() {
    // As for alerts: with `failed_regions: 2` and us impaired, eu failing alone does not make the check down.
    let checks = [policy(&["eu", "us"], RegionQuorum::Count(2), 0)];
    let samples: Vec<Sample> = (0..10)
        .flat_map(|minute| {
            // us fails for `status` twice, then for `tls`: over 00:00-00:05, 7 runs of `status`, 3 of `tls`.
            let us = if minute < 2 { "status" } else { "tls" };
            [sample("web", "eu", at(0, 0, minute), Some("status")), sample("web", "us", at(0, 0, minute), Some(us))]
        })
        .collect();
    let impaired = [ImpairedSpan { region: "us".into(), start_ms: at(0, 0, 5), end_ms: at(0, 0, 10) }];
    let ledger = compute(&Input {
        checks: &checks,
        samples: &samples,
        maintenance: &[],
        impaired: &impaired,
        from_ms: T0,
        to_ms: T0 + 10 * MIN,
    });
    let web = &ledger.checks[0];
    // 00:00-00:05 both down: 300 s down. 00:05-00:10 us impaired (unknown there), eu down alone: up.
    assert_eq!((web.overall.down_seconds, web.overall.up_seconds), (300.0, 300.0));
    let down = &web.overall.downtime[0];
    assert_eq!(
        (down.regions.clone(), down.reason.as_deref()),
        (vec!["eu".to_owned(), "us".to_owned()], Some("status"))
    );
    let us = &web.regions[1].figures;
    assert_eq!((us.down_seconds, us.unknown_seconds), (300.0, 300.0));
}

#[test]
#[allow(clippy::float_cmp)]
fn hours_read_through_fetch_window_add_up_to_the_whole() {
    // Two regions, quorum 2, two retries; streaks of failures straddle the hour edges: a streak of 3 (not
    // forgiven) whose last run is in the next hour, a streak of 2 (forgiven) across an edge, a mute window.
    let checks = [policy(&["eu", "us"], RegionQuorum::Count(2), 2)];
    let mut samples = Vec::new();
    for minute in 0..180 {
        let eu_down = (58..61).contains(&minute) || (119..121).contains(&minute) || (150..160).contains(&minute);
        let us_down = (59..62).contains(&minute) || (150..155).contains(&minute);
        samples.push(sample("web", "eu", at(0, 0, minute), eu_down.then_some("status")));
        if minute != 30 {
            samples.push(sample("web", "us", at(0, 0, minute), us_down.then_some("timeout")));
        }
    }
    let windows = [window("m", MaintenanceMode::Mute, at(0, 2, 20), at(0, 2, 40))];
    let run = |from_ms: i64, to_ms: i64| {
        let (lo, hi) = fetch_window(&checks, from_ms, to_ms);
        let read: Vec<Sample> =
            samples.iter().filter(|sample| lo <= sample.planned_ms && sample.planned_ms < hi).cloned().collect();
        compute(&Input { checks: &checks, samples: &read, maintenance: &windows, impaired: &[], from_ms, to_ms })
    };
    let whole = run(T0, T0 + 3 * HOUR);
    let hours: Vec<Ledger> = (0..3).map(|hour| run(T0 + hour * HOUR, T0 + (hour + 1) * HOUR)).collect();
    let values = |figures: &Figures| {
        [
            figures.up_seconds,
            figures.down_seconds,
            figures.unknown_seconds,
            figures.maintenance_seconds,
            figures.muted_seconds,
        ]
    };
    type View = fn(&Ledger) -> &Figures;
    let views: [(&str, View); 3] = [
        ("overall", |ledger| &ledger.checks[0].overall),
        ("eu", |ledger| &ledger.checks[0].regions[0].figures),
        ("us", |ledger| &ledger.checks[0].regions[1].figures),
    ];
    for (name, pick) in views {
        let mut sums = [0.0; 5];
        for hour in &hours {
            for (sum, value) in sums.iter_mut().zip(values(pick(hour))) {
                *sum += value;
            }
        }
        assert_eq!(sums, values(pick(&whole)), "{name}");
    }
    let eu = &whole.checks[0].regions[0].figures;
    assert_eq!(eu.down_seconds, 180.0 + 600.0, "the streak of 3 across 01:00 is down, the 2 across 02:00 forgiven");
}
