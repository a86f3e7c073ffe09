//! The rule engine over synthetic results and a manual clock: quorum, impairment, flapping, restarts,
//! silences and repeats, each as it would page a human.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use probenet_alerting::{Clock, Engine, ManualClock, Matchers, Options, Outgoing, Rules, Silence, Status};
use probenet_checks::config::load_str;
use probenet_checks::outcome::{Outcome, Reason, State};
use probenet_checks::wire::RunResult;

/// 2026-01-01 00:00 UTC.
const START: i64 = 1_767_225_600_000;
const MINUTE: i64 = 60_000;
const CHECKS: [&str; 5] = ["homepage", "api", "search", "cart", "login"];
const REGIONS: [&str; 3] = ["ap-south", "eu-west", "us-east"];

fn config_text(alerts: &str) -> String {
    let mut text = String::from(
        "regions: {ap-south: {}, eu-west: {}, us-east: {}}\ndefaults: {interval: 1m}\nnotifiers:\n  \
         oncall: {webhook: {url: \"https://hooks.example.com/probenet\"}}\n  \
         team-chat: {slack: {url: \"https://hooks.slack.example.com/services/T0/B0/x\"}}\nchecks:\n",
    );
    for check in CHECKS {
        text.push_str(&format!(
            "  - name: {check}\n    labels: {{team: web}}\n    http: {{url: \"https://{check}.example.com/\"}}\n"
        ));
    }
    text.push_str(alerts);
    text
}

const SITE_DOWN: &str = "alerts:
  - name: site-down
    checks: [homepage, api]
    failed_regions: 2
    for: 2m
    severity: page
    notify: [oncall, team-chat]
";

fn outcome(up: bool) -> Outcome {
    if up { Outcome::up(0.1) } else { Outcome::failed(Reason::Timeout, "no answer within 10s") }
}

struct World {
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    rules: Rules,
    options: Options,
    engine: Option<Engine>,
}

impl World {
    fn new(alerts: &str) -> Self {
        Self::with_options(alerts, Options::default())
    }

    fn with_options(alerts: &str, options: Options) -> Self {
        Self::with_config(&config_text(alerts), options)
    }

    fn with_config(text: &str, options: Options) -> Self {
        let config = load_str("alerting.yaml", text).unwrap_or_else(|errors| panic!("{errors}"));
        let mut world = Self {
            clock: Arc::new(ManualClock::new(START)),
            dir: tempfile::tempdir().unwrap(),
            rules: Rules::from_config(&config),
            options,
            engine: None,
        };
        world.open();
        world
    }

    fn open(&mut self) {
        let path = self.dir.path().join("state.db");
        let engine = Engine::open(self.rules.clone(), &path, self.clock.clone(), self.options.clone()).unwrap();
        self.engine = Some(engine);
    }

    fn engine(&mut self) -> &mut Engine {
        self.engine.as_mut().unwrap()
    }

    /// One minute: every check runs in every region (down where listed, and not at all in `silent` regions),
    /// the engine evaluates, the clock moves on.
    fn minute_with(&mut self, down: &[(&str, &str)], silent: &[&str]) -> Vec<Outgoing> {
        let now = self.clock.now_ms();
        for check in CHECKS {
            for region in REGIONS.iter().filter(|region| !silent.contains(region)) {
                let up = !down.iter().any(|(c, r)| (*c == check || *c == "*") && r == region);
                let result = RunResult {
                    check: check.to_owned(),
                    region: (*region).to_owned(),
                    planned_at_ms: now,
                    started_at_ms: now,
                    prober: format!("prober-{region}"),
                    outcome: outcome(up),
                };
                self.engine().observe(&result);
            }
        }
        let sent = self.engine().evaluate();
        self.clock.advance(Duration::from_millis(MINUTE as u64));
        sent
    }

    fn minutes(&mut self, count: usize, down: &[(&str, &str)]) -> Vec<Outgoing> {
        (0..count).flat_map(|_| self.minute_with(down, &[])).collect()
    }
}

fn keys(sent: &[Outgoing]) -> Vec<(String, Status)> {
    sent.iter().map(|(_, n)| (n.key.clone(), n.status)).collect()
}

#[test]
fn down_in_two_of_three_regions_fires_once_naming_both_and_resolves_once() {
    let mut world = World::with_options(
        SITE_DOWN,
        Options { dashboard_url: Some("https://probenet.example.com/".into()), ..Options::default() },
    );
    let mut sent = world.minutes(5, &[]);
    assert!(sent.is_empty(), "{sent:?}");
    let outage_start = world.clock.now_ms();
    let down = [("homepage", "eu-west"), ("homepage", "us-east")];
    // Pending for 2m, then firing.
    let first = world.minutes(2, &down);
    assert!(first.is_empty(), "pending must not notify: {first:?}");
    assert_eq!(world.engine().alerts().len(), 1);
    sent.extend(world.minutes(20, &down));
    sent.extend(world.minutes(10, &[]));
    assert_eq!(
        keys(&sent),
        [("site-down/homepage".to_owned(), Status::Firing), ("site-down/homepage".to_owned(), Status::Resolved)]
    );
    let (notifiers, firing) = &sent[0];
    assert_eq!(notifiers, &["oncall", "team-chat"]);
    assert_eq!(firing.regions, ["eu-west", "us-east"]);
    assert_eq!(firing.total_regions, 3);
    assert_eq!(firing.since_ms, outage_start);
    assert_eq!(firing.severity, "page");
    assert_eq!(firing.check.as_deref(), Some("homepage"));
    assert_eq!(firing.target.as_deref(), Some("https://homepage.example.com/"));
    assert_eq!(firing.reason.as_deref(), Some("timeout"));
    assert_eq!(firing.labels.get("team").map(String::as_str), Some("web"));
    assert_eq!(firing.dashboard_url.as_deref(), Some("https://probenet.example.com/checks/homepage"));
    assert!(firing.summary.contains("homepage is down in 2 of 3 regions (eu-west, us-east)"), "{}", firing.summary);
    assert!(firing.summary.contains("2026-01-01 00:05:00 UTC"), "{}", firing.summary);
    let resolved = &sent[1].1;
    assert_eq!(resolved.since_ms, outage_start);
    assert!(resolved.ended_ms.is_some_and(|ended| ended > outage_start + 22 * MINUTE));
    assert!(world.engine().alerts().is_empty());
    let history = world.engine().history(10).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].status, Status::Resolved);
}

#[test]
fn down_in_one_of_three_regions_does_not_page() {
    let mut world = World::new(SITE_DOWN);
    let sent = world.minutes(30, &[("homepage", "eu-west"), ("api", "us-east")]);
    assert!(sent.is_empty(), "{sent:?}");
    assert!(world.engine().alerts().is_empty());
}

#[test]
fn a_region_failing_everything_raises_one_region_impaired_alert_and_no_check_alert() {
    let rules = "alerts:
  - name: any-region-down
    match: {labels: {team: web}}
    failed_regions: 1
    for: 1m
    severity: page
    notify: [oncall]
";
    let mut world = World::new(rules);
    let mut sent = world.minutes(3, &[]);
    sent.extend(world.minutes(15, &[("*", "eu-west")]));
    let impaired = world.engine().impaired_regions();
    assert_eq!(impaired.len(), 1);
    assert_eq!(impaired[0].region, "eu-west");
    assert_eq!(impaired[0].failing_checks.len(), 5);
    sent.extend(world.minutes(10, &[]));
    assert_eq!(
        keys(&sent),
        [
            ("region-impaired/eu-west".to_owned(), Status::Firing),
            ("region-impaired/eu-west".to_owned(), Status::Resolved)
        ]
    );
    let (notifiers, firing) = &sent[0];
    assert_eq!(notifiers, &["oncall"], "probe health defaults to the rules' notifiers");
    assert_eq!(firing.alert, "region-impaired");
    assert_eq!(firing.severity, "warning");
    assert_eq!(firing.regions, ["eu-west"]);
    assert!(firing.summary.contains("5 of its 5 checks"), "{}", firing.summary);
    assert!(world.engine().impaired_regions().is_empty());

    // The same rule pages for a real outage in one region of one check.
    let sent = world.minutes(3, &[("homepage", "us-east")]);
    assert_eq!(keys(&sent), [("any-region-down/homepage".to_owned(), Status::Firing)]);
}

#[test]
fn a_target_down_in_two_of_three_regions_is_not_mistaken_for_impaired_regions() {
    let mut world = World::new(SITE_DOWN);
    let down: Vec<(&str, &str)> = CHECKS.iter().flat_map(|c| [(*c, "eu-west"), (*c, "us-east")]).collect();
    let sent = world.minutes(5, &down);
    assert!(world.engine().impaired_regions().is_empty());
    let mut fired: Vec<String> = keys(&sent).into_iter().map(|(key, _)| key).collect();
    fired.sort();
    assert_eq!(fired, ["site-down/api", "site-down/homepage"]);
}

#[test]
fn a_flapping_target_fires_at_most_once_and_notes_the_flapping() {
    let rules = "alerts:
  - name: site-down
    checks: [homepage]
    failed_regions: 2
    for: 2m
    notify: [oncall]
  - name: site-down-fast
    checks: [homepage]
    failed_regions: 2
    notify: [oncall]
";
    let mut world = World::new(rules);
    let down = [("homepage", "eu-west"), ("homepage", "us-east")];
    let mut sent = Vec::new();
    for minute in 0..60 {
        let now_down: &[(&str, &str)] = if minute % 2 == 0 { &down } else { &[] };
        sent.extend(world.minute_with(now_down, &[]));
    }
    assert_eq!(keys(&sent), [("site-down-fast/homepage".to_owned(), Status::Firing)]);
    let views = world.engine().alerts();
    assert_eq!(views.len(), 1);
    assert!(views[0].flaps >= 20, "{views:?}");
    assert!(views[0].summary.contains("flapping"), "{}", views[0].summary);
    let after = world.minutes(5, &[]);
    assert_eq!(keys(&after), [("site-down-fast/homepage".to_owned(), Status::Resolved)]);
}

#[test]
fn a_restart_keeps_a_firing_alert_without_a_second_notification_and_still_resolves_it() {
    let mut world = World::new(SITE_DOWN);
    let down = [("homepage", "eu-west"), ("homepage", "us-east")];
    let sent = world.minutes(5, &down);
    assert_eq!(keys(&sent), [("site-down/homepage".to_owned(), Status::Firing)]);
    world.engine = None;
    world.clock.advance(Duration::from_secs(30));
    world.open();
    assert_eq!(world.engine().alerts().len(), 1, "the firing alert survives the restart");
    // Before any result comes in, and while the target stays down: nothing is sent again.
    let again = world.engine().evaluate();
    assert!(again.is_empty(), "{again:?}");
    let again = world.minutes(10, &down);
    assert!(again.is_empty(), "{again:?}");
    let sent = world.minutes(5, &[]);
    assert_eq!(keys(&sent), [("site-down/homepage".to_owned(), Status::Resolved)]);
}

#[test]
fn a_silence_suppresses_firing_and_its_resolve_and_an_ended_silence_lets_a_firing_through() {
    let mut world = World::new(SITE_DOWN);
    let now = world.clock.now_ms();
    let silence = Silence {
        id: 0,
        matchers: Matchers { check: Some("homepage".into()), ..Matchers::default() },
        starts_ms: now,
        ends_ms: now + 60 * MINUTE,
        comment: "deploy".into(),
        created_by: "test".into(),
        maintenance: false,
    };
    let id = world.engine().add_silence(silence).unwrap();
    assert_eq!(world.engine().silences().len(), 1);
    let down = [("homepage", "eu-west"), ("homepage", "us-east"), ("api", "eu-west"), ("api", "us-east")];
    let sent = world.minutes(5, &down);
    assert_eq!(keys(&sent), [("site-down/api".to_owned(), Status::Firing)], "homepage is silenced, api is not");
    let views = world.engine().alerts();
    let homepage = views.iter().find(|view| view.key == "site-down/homepage").unwrap();
    assert!(homepage.silenced && !homepage.notified, "{homepage:?}");
    // Recovery of the silenced alert sends nothing: its firing was never sent.
    let sent = world.minutes(5, &[("api", "eu-west"), ("api", "us-east")]);
    assert!(sent.is_empty(), "{sent:?}");
    // Firing again, then the silence is expired: the firing goes out.
    let sent = world.minutes(3, &down);
    assert!(sent.is_empty(), "{sent:?}");
    assert!(world.engine().expire_silence(id).unwrap());
    assert!(!world.engine().expire_silence(id).unwrap());
    let sent = world.minutes(1, &down);
    assert_eq!(keys(&sent), [("site-down/homepage".to_owned(), Status::Firing)]);
    assert!(world.engine().silences().is_empty());
    let sent = world.minutes(5, &[]);
    let mut resolved = keys(&sent);
    resolved.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        resolved,
        [("site-down/api".to_owned(), Status::Resolved), ("site-down/homepage".to_owned(), Status::Resolved)]
    );
}

#[test]
fn a_long_outage_is_sent_again_after_the_repeat_interval() {
    let options = Options { repeat_interval: Duration::from_secs(3600), ..Options::default() };
    let mut world = World::with_options(SITE_DOWN, options);
    let down = [("homepage", "eu-west"), ("homepage", "us-east")];
    let sent = world.minutes(150, &down);
    let times: Vec<i64> = sent.iter().map(|(_, n)| n.since_ms).collect();
    assert_eq!(keys(&sent).len(), 3, "fired at 2m, again at 1h2m and 2h2m: {sent:?}");
    assert!(sent.iter().all(|(_, n)| n.status == Status::Firing && n.since_ms == START));
    assert_eq!(times.len(), 3);
}

#[test]
fn consecutive_failures_and_stale_regions() {
    let rules = "alerts:
  - name: three-in-a-row
    checks: [homepage]
    failed_regions: \"50%\"
    consecutive: 3
    notify: [oncall]
";
    let mut world = World::new(rules);
    let down = [("homepage", "eu-west"), ("homepage", "us-east")];
    assert!(world.minutes(2, &down).is_empty());
    // One region passing breaks its streak.
    assert!(world.minute_with(&[("homepage", "eu-west")], &[]).is_empty());
    assert!(world.minutes(2, &down).is_empty());
    let sent = world.minutes(1, &down);
    assert_eq!(keys(&sent), [("three-in-a-row/homepage".to_owned(), Status::Firing)]);
    // Regions that stop reporting are no data, not a recovery: the alert stays open.
    let mut quiet = Vec::new();
    for _ in 0..10 {
        quiet.extend(world.minute_with(&[], &["eu-west", "us-east"]));
    }
    assert!(quiet.is_empty(), "{quiet:?}");
    assert_eq!(world.engine().alerts().len(), 1);
}

/// One minute where `search` has the given state per region (the other checks up).
fn minute_of_states(world: &mut World, search: &[(&str, State)]) -> Vec<Outgoing> {
    let now = world.clock.now_ms();
    for check in CHECKS {
        for region in REGIONS {
            let state =
                search.iter().find(|(r, _)| check == "search" && *r == region).map_or(State::Up, |(_, state)| *state);
            let mut outcome = outcome(state != State::Down);
            if state == State::Degraded {
                outcome.state = State::Degraded;
                outcome.reason = Some(Reason::Duration);
            }
            let result = RunResult {
                check: check.to_owned(),
                region: region.to_owned(),
                planned_at_ms: now,
                started_at_ms: now,
                prober: format!("prober-{region}"),
                outcome,
            };
            world.engine().observe(&result);
        }
    }
    let sent = world.engine().evaluate();
    world.clock.advance(Duration::from_millis(MINUTE as u64));
    sent
}

#[test]
fn a_degraded_rule_fires_on_slow_runs_by_share_of_regions_while_the_down_rule_stays_quiet() {
    let mut world = World::new(
        "alerts:
  - name: search-slow
    checks: [search]
    state: degraded
    failed_regions: \"50%\"
    for: 2m
    severity: ticket
    notify: [team-chat]
  - name: search-down
    checks: [search]
    failed_regions: \"50%\"
    for: 2m
    notify: [oncall]
",
    );
    // Slow in one region of three (33%): under the share, nothing.
    let mut sent = Vec::new();
    for _ in 0..5 {
        sent.extend(minute_of_states(&mut world, &[("eu-west", State::Degraded)]));
    }
    assert!(sent.is_empty(), "{sent:?}");
    // Slow in two of three (67%): the degraded rule fires once, to its own notifier; slow is not down.
    let slow = [("eu-west", State::Degraded), ("us-east", State::Degraded)];
    for _ in 0..10 {
        sent.extend(minute_of_states(&mut world, &slow));
    }
    assert_eq!(keys(&sent), [("search-slow/search".to_owned(), Status::Firing)]);
    assert_eq!(sent[0].0, ["team-chat"]);
    assert_eq!(sent[0].1.severity, "ticket");
    assert_eq!(sent[0].1.regions, ["eu-west", "us-east"]);
    // Fast again: one resolve.
    for _ in 0..10 {
        sent.extend(minute_of_states(&mut world, &[]));
    }
    assert_eq!(
        keys(&sent),
        [("search-slow/search".to_owned(), Status::Firing), ("search-slow/search".to_owned(), Status::Resolved)]
    );
}

const EVERYTHING_DOWN: &str = "alerts:
  - name: check-down
    checks: [homepage, api, search, cart, login]
    failed_regions: 2
    for: 2m
    severity: page
    notify: [oncall]
";

/// The usual five checks, where `homepage` needs `api`, and `api` and `search` need `login`.
fn dependent_world() -> World {
    let text = config_text(EVERYTHING_DOWN)
        .replace("  - name: homepage\n", "  - name: homepage\n    depends_on: api\n")
        .replace("  - name: api\n", "  - name: api\n    depends_on: [login]\n")
        .replace("  - name: search\n", "  - name: search\n    depends_on: [login]\n");
    assert_eq!(text.matches("depends_on").count(), 3, "{text}");
    World::with_config(&text, Options::default())
}

fn everywhere(checks: &[&'static str]) -> Vec<(&'static str, &'static str)> {
    checks.iter().flat_map(|check| REGIONS.iter().map(move |region| (*check, *region))).collect()
}

#[test]
fn a_dependency_outage_pages_once_naming_the_root_and_the_checks_it_held_back() {
    let mut world = dependent_world();
    assert!(world.minutes(2, &[]).is_empty());
    // `login` goes down everywhere, and with it everything that needs it, directly or through `api`.
    let down = everywhere(&["login", "api", "search", "homepage"]);
    let sent = world.minutes(6, &down);
    assert_eq!(keys(&sent), vec![("check-down/login".to_owned(), Status::Firing)], "one page, for the root");
    let summary = &sent[0].1.summary;
    assert!(summary.contains("login is down in 3 of 3 regions"), "{summary}");
    assert!(summary.contains("3 dependent checks held back (not paged): api, homepage, search"), "{summary}");

    // `login` comes back while `api` stays down: `api` pages on its own after its hold, naming `homepage`,
    // which it still holds back; `search` recovered with `login`. `login` resolves.
    let down = everywhere(&["api", "homepage"]);
    let sent = world.minutes(5, &down);
    let mut got = keys(&sent);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![("check-down/api".to_owned(), Status::Firing), ("check-down/login".to_owned(), Status::Resolved)]
    );
    let api = sent.iter().find(|(_, n)| n.key == "check-down/api").map(|(_, n)| n.summary.clone()).unwrap();
    assert!(api.contains("1 dependent check held back (not paged): homepage"), "{api}");
}

#[test]
fn a_dependency_down_in_one_region_holds_back_only_that_region() {
    let mut world = dependent_world();
    // `login` fails in eu-west only (not enough to page). `search` fails in eu-west and us-east: eu-west is put
    // down to `login`, so one region of its own is left, short of the two the rule needs: no page.
    let down = vec![("login", "eu-west"), ("search", "eu-west"), ("search", "us-east")];
    assert!(world.minutes(6, &down).is_empty());
    // Once `search` also fails in ap-south, two regions of its own fail: it pages, naming those two only.
    let mut down = down;
    down.push(("search", "ap-south"));
    let sent = world.minutes(4, &down);
    assert_eq!(keys(&sent), vec![("check-down/search".to_owned(), Status::Firing)]);
    assert!(
        sent[0].1.summary.contains("search is down in 2 of 3 regions (ap-south, us-east)"),
        "{}",
        sent[0].1.summary
    );
    // Without `depends_on` the same failures page at once: the check alone decides.
    let mut plain = World::new(EVERYTHING_DOWN);
    let sent = plain.minutes(6, &[("login", "eu-west"), ("search", "eu-west"), ("search", "us-east")]);
    assert_eq!(keys(&sent), vec![("check-down/search".to_owned(), Status::Firing)]);
}
