//! Region views: every example and a config full of YAML tricks, region by region.

use std::collections::BTreeSet;

use super::*;
use crate::config::{is_stack_file, load_sources};

fn file(name: &str, text: &str) -> ConfigFile {
    ConfigFile { name: name.to_owned(), text: text.to_owned() }
}

fn all_text(view: &[ConfigFile]) -> String {
    view.iter().map(|file| format!("# {}\n{}", file.name, file.text)).collect()
}

/// Whether `word` occurs in `text` with no name character on either side.
fn has_word(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(is_name)
            && !text[at + word.len()..].chars().next().is_some_and(is_name)
    })
}

/// Every string scalar under `node`.
fn strings(node: &Node, out: &mut Vec<String>) {
    match &node.kind {
        NodeKind::Scalar { text, .. } => out.push(text.clone()),
        NodeKind::Seq(items) => items.iter().for_each(|item| strings(item, out)),
        NodeKind::Map(pairs) => pairs.iter().for_each(|(_, value)| strings(value, out)),
    }
}

/// What no view may hold: the values of the scheduler's sections that look like addresses or secrets (URLs,
/// tokens, paths, mail addresses) and the scheduler-side exporters.
fn scheduler_secrets(files: &[ConfigFile]) -> Vec<String> {
    let mut out = Vec::new();
    for source in files {
        let root = yaml::parse(&source.text).unwrap_or_else(|error| panic!("{error}"));
        for section in ["notifiers", "dashboard", "alerts", "probe_health", "objects"] {
            if let Some(node) = root.get(section) {
                strings(node, &mut out);
            }
        }
        if let Some(NodeKind::Seq(items)) = root.get("exporters").map(|node| &node.kind) {
            for item in items.iter().filter(|item| !runs_on_probers(item)) {
                strings(item, &mut out);
            }
        }
    }
    out.retain(|text| text.contains("://") || text.contains('@') || text.contains("token") || text.contains('/'));
    out
}

/// Builds the view of `region`, checks it against the full config, and returns its text.
fn check_view(files: &[ConfigFile], region: &str) -> String {
    let full = load_sources(files).unwrap_or_else(|errors| panic!("{errors}"));
    let view = region_view(files, region).unwrap_or_else(|error| panic!("{region}: {error}"));
    let text = all_text(&view);
    let got =
        load_sources(&view).unwrap_or_else(|errors| panic!("{region}: the view does not validate: {errors}\n{text}"));
    let (mine, others): (Vec<&Check>, Vec<&Check>) =
        full.checks.iter().partition(|check| check.regions.iter().any(|r| r == region));
    let want: Vec<String> = mine.iter().map(|check| comparable(check)).collect();
    let have: Vec<String> = got.checks.iter().map(comparable).collect();
    assert_eq!(have, want, "{region}: the view's checks differ\n{text}");
    let my_targets: BTreeSet<String> = mine.iter().map(|check| check.kind.target()).collect();
    for check in &others {
        assert!(!has_word(&text, &check.name), "{region}: the view names {:?}\n{text}", check.name);
        let target = check.kind.target();
        // A target may be a part of one this region probes too (`host:9` in `http://host:9/`).
        if !my_targets.iter().any(|mine| mine.contains(&target)) {
            assert!(!text.contains(&target), "{region}: the view holds {target:?}\n{text}");
        }
    }
    for secret in scheduler_secrets(files) {
        assert!(!text.contains(&secret), "{region}: the view holds {secret:?}\n{text}");
    }
    for section in ["notifiers", "alerts", "probe_health", "dashboard", "objects"] {
        assert!(!text.contains(&format!("{section}:")), "{region}: the view holds {section}\n{text}");
    }
    text
}

/// Every region of a config, views checked, and each view different from the others when its checks are.
fn check_every_region(files: &[ConfigFile]) {
    let full = load_sources(files).unwrap_or_else(|errors| panic!("{errors}"));
    for region in full.regions.keys() {
        check_view(files, region);
    }
    let outside = check_view(files, "nowhere");
    assert!(!outside.contains("name:"), "a region the config does not declare gets no check\n{outside}");
}

#[test]
fn every_example_gives_each_region_its_own_checks_only() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("{error}")) {
        let path = entry.unwrap_or_else(|error| panic!("{error}")).path();
        if path.extension().is_none_or(|ext| ext != "yaml") || is_stack_file(&path) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{error}"));
        check_every_region(&[file(&path.display().to_string(), &text)]);
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} examples");
}

#[test]
fn the_scheduler_test_config_gives_each_region_its_own_checks_only() {
    let util = include_str!("../../../../scheduler/tests/scheduler/util.rs");
    let start = util.find("pub const CONFIG: &str = \"\\\n").map(|at| at + "pub const CONFIG: &str = \"\\\n".len());
    let config = start.and_then(|start| util[start..].find("\";\n").map(|end| &util[start..start + end]));
    let config = config.unwrap_or_else(|| panic!("no CONFIG in util.rs"));
    let files = [file("checks.yaml", config)];
    check_every_region(&files);
    let eu = check_view(&files, "eu");
    assert!(has_word(&eu, "eu-only"), "{eu}");
    let us = check_view(&files, "us");
    assert!(!has_word(&us, "eu-only") && has_word(&us, "home") && has_word(&us, "api"), "{us}");
}

const TRICKY_A: &str = r#"# Comments do not travel: hunter2-in-a-comment
regions:
  eu: {labels: {provider: hetzner}}
  us:
    labels: {provider: us-private-label}
  ap: {}
defaults: {interval: 30s, timeout: 5s, regions: [eu, us]}
checks:
  - name: us-internal
    regions: [us]
    labels: &team {team: core, note: "two\nlines"}
    http: {url: "http://10.1.2.3:8080/us-only", headers: {X-Key: "${env:US_KEY}"}}
  - &base
    name: inherits
    labels: *team
    http:
      url: https://shop.example.com/
      expect: {status: [200, 301], body_contains: 'a # not a comment: really'}
  - <<: *base
    name: eu-and-ap
    regions: [eu, ap]
    labels:
      description: >
        folded text
        over lines
  - {name: flow-eu, regions: [eu], interval: 10s, tcp: {target: "db.eu.internal:5432"}}
  - name: ap-only
    regions: [ap]
    schedule: "*/5 * * * *"
    timezone: Asia/Tokyo
    tcp: {target: "ap.internal:22"}
"#;

const TRICKY_B: &str = r#"notifiers:
  oncall:
    webhook: {url: "https://hooks.example.com/T0/secret-webhook"}
alerts:
  - name: core-down
    checks: [inherits]
    failed_regions: 1
    notify: [oncall]
probe_health: {notify: [oncall]}
dashboard:
  token: literal-dashboard-token-123
  status_page: {checks: [inherits]}
exporters:
  - remote_write: {url: "https://vm.scheduler.example.com/api/v1/write"}
  - logs: {path: /var/log/probenet/prober.jsonl, on: probers}
checks:
  - name: with-slo
    regions: [eu]
    slo: {objective: 99.5, notify: [oncall]}
    icmp: {host: 192.0.2.1}
"#;

const TRICKY_C: &str = "# Only scheduler business here.\nnotifiers:\n  chat: {slack: {url: \"https://hooks.slack.example.com/services/T0/B0/xyz\"}}\n\
objects:\n  url: s3://shots/prod\n  endpoint: https://s3.internal.example.com\n  \
secret_access_key: ${file:/run/secrets/s3-secret}\n  access_key_id: ${file:/run/secrets/s3-key}\n";

fn tricky() -> Vec<ConfigFile> {
    vec![file("conf.d/a.yaml", TRICKY_A), file("conf.d/b.yaml", TRICKY_B), file("conf.d/c.yaml", TRICKY_C)]
}

#[test]
fn anchors_merges_flow_and_inherited_regions_keep_their_meaning() {
    let files = tricky();
    check_every_region(&files);

    let eu = check_view(&files, "eu");
    for name in ["inherits", "eu-and-ap", "flow-eu", "with-slo"] {
        assert!(has_word(&eu, name), "eu lacks {name}\n{eu}");
    }
    for absent in ["us-internal", "ap-only", "hunter2", "us-private-label", "10.1.2.3", "US_KEY", "secret-webhook"] {
        assert!(!eu.contains(absent), "eu holds {absent}\n{eu}");
    }
    assert!(eu.contains("/var/log/probenet/prober.jsonl") && !eu.contains("vm.scheduler"), "{eu}");
    assert!(eu.contains("hetzner"), "a region keeps its own labels\n{eu}");

    let us = check_view(&files, "us");
    assert!(has_word(&us, "us-internal") && has_word(&us, "inherits") && !has_word(&us, "eu-and-ap"), "{us}");
    assert!(us.contains("${env:US_KEY}") && !us.contains("hetzner"), "{us}");

    let ap = check_view(&files, "ap");
    assert!(has_word(&ap, "ap-only") && has_word(&ap, "eu-and-ap") && !has_word(&ap, "inherits"), "{ap}");
}

#[test]
fn files_are_kept_by_name_and_dropped_when_nothing_of_them_is_left() {
    let view = region_view(&tricky(), "eu").unwrap_or_else(|error| panic!("{error}"));
    let names: Vec<&str> = view.iter().map(|file| file.name.as_str()).collect();
    assert_eq!(names, ["conf.d/a.yaml", "conf.d/b.yaml"]);
    let config = load_sources(&view).unwrap_or_else(|errors| panic!("{errors}"));
    let slo = config.checks.iter().find(|check| check.name == "with-slo").and_then(|check| check.slo.clone());
    assert_eq!(slo.map(|slo| (slo.objective, slo.notify)), Some((99.5, None)));
    assert!(config.notifiers.is_empty() && config.alerts.is_empty() && config.dashboard.token.is_none());
    assert_eq!(
        config.checks.iter().find(|check| check.name == "inherits").map(|check| check.place.file.as_str()),
        Some("conf.d/a.yaml")
    );
}

#[test]
fn views_are_stable_and_differ_between_regions() {
    let files = tricky();
    let views = Views::new(&files).unwrap_or_else(|error| panic!("{error}"));
    let eu = views.region("eu").unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(eu, views.region("eu").unwrap_or_else(|error| panic!("{error}")));
    assert_ne!(eu, views.region("us").unwrap_or_else(|error| panic!("{error}")));
}

#[test]
fn an_invalid_config_gives_no_view() {
    let files = [file("bad.yaml", "checks:\n  - name: x\n    tcp: {target: nope}\n    bogus: 1\n")];
    assert!(matches!(region_view(&files, "local"), Err(ViewError::Invalid(_))));
    let files = [file("bad.yaml", "checks: [\n")];
    assert!(matches!(region_view(&files, "local"), Err(ViewError::Invalid(_))));
}

#[test]
fn pause_windows_reach_the_regions_of_their_checks_narrowed_to_them() {
    let files = [file(
        "c.yaml",
        "regions: {eu: {}, us: {}}\n\
         checks:\n  \
         - {name: web, regions: [eu, us], labels: {team: web}, http: {url: 'https://example.com/'}}\n  \
         - {name: db, regions: [us], labels: {team: web}, tcp: {target: 'db.internal:5432'}}\n\
         maintenance:\n  \
         - {name: upgrade, match: {labels: {team: web}}, start: '2026-12-07T09:00:00Z', duration: 1h, mode: pause,\n     \
            reason: 'ticket OPS-1', created_by: alice}\n  \
         - {name: quiet, checks: [web], schedule: '0 2 * * *', duration: 1h}\n  \
         - {name: db-only, checks: [db], schedule: '0 3 * * *', timezone: Europe/Paris, duration: 1h, mode: pause}\n",
    )];
    check_every_region(&files);
    let windows = |region: &str| {
        let view = region_view(&files, region).unwrap();
        let config = load_sources(&view).unwrap();
        let text = all_text(&view);
        assert!(!text.contains("OPS-1") && !text.contains("alice") && !text.contains("quiet"), "{text}");
        config.maintenance.iter().map(|window| (window.name.clone(), window.checks.join(","))).collect::<Vec<_>>()
    };
    let pair = |name: &str, checks: &str| (name.to_owned(), checks.to_owned());
    assert_eq!(windows("eu"), [pair("upgrade", "web")]);
    assert_eq!(windows("us"), [pair("upgrade", "web,db"), pair("db-only", "db")]);
    assert_eq!(windows("nowhere"), []);
}
