//! Maintenance windows of the config through a manual clock: a recurring Paris window across the March change to
//! summer time holds a page and lets it out when it ends, a resolve inside it is never sent, a pause makes a
//! check no data, and muted runs stay out of the SLO.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use probenet_alerting::{Engine, ManualClock, Options, Outgoing, Phase, Status};
use probenet_checks::config::load_str;
use probenet_checks::outcome::{Outcome, Reason};
use probenet_checks::wire::RunResult;

const MINUTE: i64 = 60_000;
const REGIONS: [&str; 3] = ["ap-south", "eu-west", "us-east"];

fn config(maintenance: &str) -> String {
    format!(
        "regions: {{ap-south: {{}}, eu-west: {{}}, us-east: {{}}}}
defaults: {{interval: 1m}}
notifiers:
  oncall: {{webhook: {{url: \"https://hooks.example.com/probenet\"}}}}
checks:
  - name: db
    slo: {{objective: 99.9, window: 30d}}
    tcp: {{target: \"db.example.com:5432\"}}
  - name: web
    http: {{url: \"https://www.example.com/\"}}
alerts:
  - name: site-down
    checks: [db, web]
    failed_regions: 2
    for: 2m
    severity: page
    notify: [oncall]
maintenance:
{maintenance}"
    )
}

/// Sunday 02:00 in Paris for two hours, muting `db`.
const WEEKLY_MUTE: &str = "  - name: weekly-db
    checks: [db]
    schedule: \"0 2 * * SUN\"
    timezone: Europe/Paris
    duration: 2h
    mode: mute
";

fn at(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
}

struct World {
    clock: Arc<ManualClock>,
    engine: Engine,
    _dir: tempfile::TempDir,
}

impl World {
    fn new(maintenance: &str, start: &str) -> Self {
        let config = load_str("m.yaml", &config(maintenance)).unwrap_or_else(|errors| panic!("{errors}"));
        let clock = Arc::new(ManualClock::new(at(start)));
        let dir = tempfile::tempdir().unwrap();
        let rules = probenet_alerting::Rules::from_config(&config);
        let engine = Engine::open(rules, &dir.path().join("state.db"), clock.clone(), Options::default()).unwrap();
        Self { clock, engine, _dir: dir }
    }

    /// `count` minutes where each check runs in every region, `down` ones failing in eu-west and us-east.
    fn minutes(&mut self, count: usize, down: &[&str]) -> Vec<Outgoing> {
        use probenet_alerting::Clock as _;
        let mut sent = Vec::new();
        for _ in 0..count {
            let now = self.clock.now_ms();
            for check in ["db", "web"] {
                for region in REGIONS {
                    let failing = down.contains(&check) && region != "ap-south";
                    let outcome = if failing {
                        Outcome::failed(Reason::Connect, "connection refused")
                    } else {
                        Outcome::up(0.01)
                    };
                    let result = RunResult {
                        check: check.to_owned(),
                        region: region.to_owned(),
                        planned_at_ms: now,
                        started_at_ms: now,
                        prober: format!("prober-{region}"),
                        outcome,
                    };
                    self.engine.observe(&result);
                }
            }
            sent.extend(self.engine.evaluate());
            self.clock.advance(Duration::from_millis(MINUTE as u64));
        }
        sent
    }
}

/// What `site-down` sent (the SLO burn alerts of db's failures outside windows are another matter).
fn keys(sent: &[Outgoing]) -> Vec<(String, Status)> {
    sent.iter().filter(|(_, n)| n.alert == "site-down").map(|(_, n)| (n.key.clone(), n.status)).collect()
}

#[test]
fn a_paris_window_on_the_spring_forward_night_holds_the_page_until_it_ends_two_real_hours_later() {
    // 2026-03-29: 02:00 CET does not exist in Paris; the window starts at 03:00 CEST (01:00 UTC) and ends two
    // real hours later, 05:00 CEST (03:00 UTC).
    let mut world = World::new(WEEKLY_MUTE, "2026-03-29T00:30:00Z");
    assert!(world.minutes(30, &[]).is_empty());
    // Inside the window db goes down: the alert fires, silently.
    let sent = world.minutes(30, &["db"]);
    assert!(sent.is_empty(), "{sent:?}");
    let views = world.engine.alerts();
    let db = views.iter().find(|view| view.key == "site-down/db").unwrap();
    assert!(db.state == Phase::Firing && db.silenced && !db.notified, "{db:?}");
    // A web outage at the same time is not muted.
    let sent = world.minutes(90, &["db", "web"]);
    assert_eq!(keys(&sent), [("site-down/web".to_owned(), Status::Firing)]);
    // 03:00 UTC: the window is over, db still fails: the held page goes out at once.
    let sent = world.minutes(1, &["db", "web"]);
    assert_eq!(keys(&sent), [("site-down/db".to_owned(), Status::Firing)]);
    let sent = world.minutes(15, &[]);
    let mut resolved = keys(&sent);
    resolved.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        resolved,
        [("site-down/db".to_owned(), Status::Resolved), ("site-down/web".to_owned(), Status::Resolved)]
    );
    // A week later (summer time) the window is 00:00 to 02:00 UTC.
    world.clock.set(at("2026-04-04T23:50:00Z"));
    assert!(keys(&world.minutes(15, &[])).is_empty());
    let sent = world.minutes(60, &["db"]);
    assert!(keys(&sent).is_empty(), "00:05 to 01:05 UTC on 2026-04-05 is inside: {sent:?}");
}

#[test]
fn an_outage_that_starts_and_ends_inside_a_mute_window_is_never_sent() {
    let mut world = World::new(WEEKLY_MUTE, "2026-01-04T00:55:00Z");
    assert!(world.minutes(10, &[]).is_empty());
    assert!(world.minutes(20, &["db"]).is_empty());
    assert!(world.minutes(120, &[]).is_empty(), "its firing was never sent, so neither is its resolve");
    assert!(world.engine.alerts().is_empty());
}

#[test]
fn a_page_sent_before_a_window_is_resolved_during_it() {
    let mut world = World::new(WEEKLY_MUTE, "2026-01-04T00:50:00Z");
    let sent = world.minutes(5, &["db"]);
    assert_eq!(keys(&sent), [("site-down/db".to_owned(), Status::Firing)]);
    world.minutes(10, &["db"]);
    // Inside the window db recovers: the people paged before it are told.
    let sent = world.minutes(5, &[]);
    assert_eq!(keys(&sent), [("site-down/db".to_owned(), Status::Resolved)]);
}

#[test]
fn a_pause_window_makes_the_check_no_data_and_a_still_failing_check_pages_after_it() {
    let pause = "  - name: migration
    checks: [db]
    start: 2026-01-10T01:00:00+01:00
    end: 2026-01-10T02:00:00+01:00
    mode: pause
";
    let mut world = World::new(pause, "2026-01-09T23:50:00Z");
    assert!(world.minutes(10, &[]).is_empty());
    // 00:00 UTC: the pause starts; failures (of runs made anyway) are not heard.
    let sent = world.minutes(60, &["db"]);
    assert!(sent.is_empty(), "{sent:?}");
    assert!(world.engine.alerts().is_empty(), "no data, not failing");
    // After the pause db still fails: it pages after its `for` of 2m.
    let sent = world.minutes(3, &["db"]);
    assert_eq!(keys(&sent), [("site-down/db".to_owned(), Status::Firing)]);
}

#[test]
fn runs_inside_a_window_stay_out_of_the_slo() {
    let mut world = World::new(WEEKLY_MUTE, "2026-01-04T00:00:00Z");
    world.minutes(60, &[]);
    world.minutes(120, &["db"]);
    world.minutes(60, &[]);
    let slo = world.engine.slo_status().into_iter().find(|slo| slo.check == "db").unwrap();
    assert_eq!(slo.window_counts.total, 3 * 120, "the 120 minutes of the window are left out");
    assert_eq!(slo.window_counts.bad, 0);
}
