//! Thirty days of one-minute runs replayed through a manual clock: error budget remaining to the exact
//! arithmetic, and which burn-rate alerts fire for a hard outage, a moderate one and a harmless blip.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use probenet_alerting::{Clock, Engine, ManualClock, Options, Rules, Status};
use probenet_checks::config::load_str;
use probenet_checks::outcome::{Outcome, Reason};
use probenet_checks::wire::RunResult;

/// 2026-01-01 00:00 UTC.
const START: i64 = 1_767_225_600_000;
const MINUTES: i64 = 30 * 1440;

const CONFIG: &str = "regions: {eu-west: {}}
defaults: {interval: 1m}
notifiers:
  oncall: {webhook: {url: \"https://hooks.example.com/probenet\"}}
checks:
  - name: steady
    slo: {objective: 99.9, window: 30d}
    tcp: {target: \"db.example.com:5432\"}
  - name: hard
    slo: {objective: 99.9, window: 30d, notify: [oncall]}
    tcp: {target: \"db.example.com:5432\"}
  - name: moderate
    slo: {objective: 99, window: 30d, notify: [oncall]}
    tcp: {target: \"db.example.com:5432\"}
  - name: blip
    slo: {objective: 99, notify: [oncall]}
    tcp: {target: \"db.example.com:5432\"}
";

/// Whether `check`'s run at minute `m` (since START) fails.
fn fails(check: &str, m: i64) -> bool {
    let day = |d: i64| d * 1440;
    match check {
        // 30 minutes down on day 12.
        "hard" => (day(12) + 600..day(12) + 630).contains(&m),
        // One run in ten fails for 12 hours on day 20: a 10x burn of a 1% budget.
        "moderate" => (day(20)..day(20) + 720).contains(&m) && m % 10 == 0,
        // One failed run on day 5.
        "blip" => m == day(5) + 77,
        _ => false,
    }
}

fn name(status: Status) -> &'static str {
    match status {
        Status::Firing => "firing",
        Status::Resolved => "resolved",
    }
}

fn outcome(up: bool) -> Outcome {
    if up { Outcome::up(0.01) } else { Outcome::failed(Reason::Connect, "connection refused") }
}

#[test]
fn thirty_days_of_history_give_the_exact_budget_and_the_right_burn_alerts() {
    let config = load_str("slo.yaml", CONFIG).unwrap_or_else(|errors| panic!("{errors}"));
    let rules = Rules::from_config(&config);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let clock = Arc::new(ManualClock::new(START));
    let open = || Engine::open(rules.clone(), &db, clock.clone(), Options::default()).unwrap();
    let mut engine = open();
    let checks = ["steady", "hard", "moderate", "blip"];
    // (alert key, status) -> minutes it was sent at, and the starts of firing episodes.
    let mut sent: BTreeMap<(String, &str), Vec<i64>> = BTreeMap::new();
    let mut episodes: BTreeMap<String, std::collections::BTreeSet<i64>> = BTreeMap::new();
    let mut bad: BTreeMap<&str, u64> = BTreeMap::new();
    for m in 0..MINUTES {
        // A restart halfway: the buckets of the first fifteen days must survive it.
        if m == 15 * 1440 {
            drop(engine);
            engine = open();
        }
        let now = clock.now_ms();
        for check in checks {
            let failed = fails(check, m);
            *bad.entry(check).or_default() += u64::from(failed);
            engine.observe(&RunResult {
                check: check.to_owned(),
                region: "eu-west".to_owned(),
                planned_at_ms: now,
                started_at_ms: now,
                prober: "p1".to_owned(),
                outcome: outcome(!failed),
            });
        }
        for (notifiers, notification) in engine.evaluate() {
            assert_eq!(notifiers, ["oncall"], "{notification:?}");
            sent.entry((notification.key.clone(), name(notification.status))).or_default().push(m);
            episodes.entry(notification.key.clone()).or_default().insert(notification.since_ms);
        }
        clock.advance(Duration::from_secs(60));
    }
    assert_eq!(bad["hard"], 30);
    assert_eq!(bad["moderate"], 72);
    assert_eq!(bad["blip"], 1);

    let status: BTreeMap<String, _> = engine.slo_status().into_iter().map(|view| (view.check.clone(), view)).collect();
    assert_eq!(status.len(), 4);
    let total = u64::try_from(MINUTES).unwrap();
    for (check, objective) in [("steady", 99.9), ("hard", 99.9), ("moderate", 99.0), ("blip", 99.0)] {
        let view = &status[check];
        assert_eq!(view.window_counts.total, total, "{check}");
        assert_eq!(view.window_counts.bad, bad[check], "{check}");
        let expected = 1.0 - (bad[check] as f64 / total as f64) / (1.0 - objective / 100.0);
        assert!((view.budget_remaining - expected).abs() < 1e-9, "{check}: {} != {expected}", view.budget_remaining);
        assert!(view.alerts_firing.is_empty(), "{check}: {view:?}");
    }
    assert!((status["hard"].budget_remaining - (1.0 - 30.0 / 43.2)).abs() < 1e-9);
    assert!((status["moderate"].budget_remaining - (1.0 - 72.0 / 432.0)).abs() < 1e-9);
    assert_eq!(status["steady"].budget_remaining, 1.0);

    let fired: Vec<&str> = sent.keys().filter(|(_, s)| *s == "firing").map(|(key, _)| key.as_str()).collect();
    assert_eq!(fired, ["slo-fast-burn/hard", "slo-slow-burn/hard", "slo-slow-burn/moderate"], "{sent:?}");
    // Each fired once (a long one is repeated every 4h) and resolved once.
    for key in &fired {
        assert_eq!(episodes[*key].len(), 1, "{key}: {sent:?}");
        assert_eq!(sent[&(key.to_string(), "resolved")].len(), 1, "{key}: {sent:?}");
    }
    // The fast burn fires within minutes of the hard outage; the slow one for the moderate burn within hours.
    let fast = sent[&("slo-fast-burn/hard".to_owned(), "firing")][0];
    assert!((12 * 1440 + 600..12 * 1440 + 610).contains(&fast), "{fast}");
    let slow = sent[&("slo-slow-burn/moderate".to_owned(), "firing")][0];
    assert!((20 * 1440..20 * 1440 + 360).contains(&slow), "{slow}");
    assert!(clock.now_ms() == START + MINUTES * 60_000);
}

#[test]
fn an_overspent_budget_is_exhausted_in_the_summary_never_a_negative_percentage() {
    let config = load_str("slo.yaml", CONFIG).unwrap_or_else(|errors| panic!("{errors}"));
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let mut engine =
        Engine::open(Rules::from_config(&config), &dir.path().join("state.db"), clock.clone(), Options::default())
            .unwrap();
    // Every run of `hard` fails: 1,000 times its 0.1% budget.
    let mut summaries = Vec::new();
    for _ in 0..10 {
        let now = clock.now_ms();
        engine.observe(&RunResult {
            check: "hard".to_owned(),
            region: "eu-west".to_owned(),
            planned_at_ms: now,
            started_at_ms: now,
            prober: "p1".to_owned(),
            outcome: outcome(false),
        });
        summaries.extend(engine.evaluate().into_iter().map(|(_, notification)| notification.summary));
        clock.advance(Duration::from_secs(60));
    }
    assert!(!summaries.is_empty(), "the fast burn fires");
    for summary in &summaries {
        assert!(summary.contains("(objective 99.9% over 720h; the budget exhausted: 1000.0× spent)"), "{summary}");
        assert!(!summary.contains(" -"), "a negative figure: {summary}");
    }
}
