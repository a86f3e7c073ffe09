//! The stack file: every error located (`FILE:LINE:COL: PATH: MESSAGE`), defaults, and agreement with the
//! checks config it deploys.

mod common;

use std::path::Path;
use std::time::Duration;

use probenet_install::stack::{self, Receiver, StoreKind};

fn errors(text: &str) -> Vec<String> {
    match stack::parse_str("stack.yaml", text, Path::new("/srv")) {
        Ok(stack) => panic!("expected errors, got {stack:?}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

/// The cases of `fixtures/invalid-stacks.txt`: (name, file, expected errors).
fn fixture_cases() -> Vec<(String, String, Vec<String>)> {
    let text = include_str!("fixtures/invalid-stacks.txt");
    let mut cases = Vec::new();
    for case in text.split("=== ").skip(1) {
        let (name, rest) = case.split_once('\n').expect("a case name line");
        let (file, errors) = rest.split_once("--- errors\n").expect("an errors section");
        cases.push((name.to_owned(), file.to_owned(), errors.lines().map(str::to_owned).collect()));
    }
    cases
}

#[test]
fn invalid_stack_files_report_every_error_where_it_is_written() {
    let cases = fixture_cases();
    assert!(cases.len() >= 10, "the fixture has {} cases", cases.len());
    let mut failures = Vec::new();
    for (name, text, expected) in &cases {
        let got = errors(text);
        if got != *expected {
            failures.push(format!("{name}: expected {expected:#?}\ngot {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn defaults_fill_what_is_not_written() {
    let text = "name: x\nchecks: [c.yaml, dir]\nscheduler: {host: probe.example}\nregions: {eu: {}}\n";
    let stack = stack::parse_str("stack.yaml", text, Path::new("/srv/stack")).expect("valid");
    assert_eq!(stack.checks, vec![Path::new("/srv/stack/c.yaml"), Path::new("/srv/stack/dir")]);
    assert_eq!(stack.scheduler.listen.to_string(), "0.0.0.0:7443");
    assert_eq!(stack.scheduler.data_dir, Path::new("/var/lib/probenet"));
    assert_eq!(stack.scheduler.dashboard_url, "https://probe.example:7443/");
    assert_eq!(stack.scheduler.url(), "https://probe.example:7443");
    let eu = &stack.regions["eu"];
    assert_eq!((eu.probers, eu.netns.as_deref(), eu.namespace.as_str()), (1, None, "probenet-eu"));
    assert_eq!(stack.store.kind, StoreKind::VictoriaMetrics);
    assert_eq!((stack.store.retention_days(), stack.store.listen.to_string()), (30, "127.0.0.1:8428".to_owned()));
    let alerting = stack.alerting.expect("alerting by default with the store");
    assert_eq!(alerting.evaluation_interval, Duration::from_secs(30));
    assert_eq!(alerting.receiver, "null");
    assert_eq!(alerting.receivers["null"], Receiver::Null);
    assert_eq!(stack.kubernetes.namespace, "probenet");
    assert!(stack.kubernetes.image.starts_with("ghcr.io/probenet/probenet:"), "{}", stack.kubernetes.image);
    assert!(stack.kubernetes.images.vmstorage.starts_with("victoriametrics/vmstorage:v1."));
    assert!(stack.kubernetes.images.vmstorage.ends_with("-cluster"));
}

#[test]
fn probers_reach_the_scheduler_and_serve_metrics_where_their_region_says() {
    let text = "name: x\nchecks: [c.yaml]\nscheduler: {host: probe.example, listen: '0.0.0.0:7443'}\nregions:\n  \
                a: {probers: 2}\n  b: {probers: 2, metrics_port: 9600, scheduler_host: 10.1.0.1}\n  c: {}\n";
    let stack = stack::parse_str("stack.yaml", text, Path::new("/srv")).expect("valid");
    let metrics: Vec<(String, u32, String)> =
        stack.prober_metrics().into_iter().map(|(region, index, at)| (region, index, at.to_string())).collect();
    let expected = [("a", 1, "127.0.0.1:9470"), ("a", 2, "127.0.0.1:9471"), ("b", 1, "127.0.0.1:9600")];
    let expected: Vec<(String, u32, String)> = expected
        .iter()
        .chain(&[("b", 2, "127.0.0.1:9601"), ("c", 1, "127.0.0.1:9472")])
        .map(|(region, index, at)| ((*region).to_owned(), *index, (*at).to_owned()))
        .collect();
    assert_eq!(metrics, expected, "a region's metrics_port and up, the others counting on from 9470");
    assert_eq!(stack.scheduler.url_for(&stack.regions["a"]), "https://probe.example:7443");
    assert_eq!(stack.scheduler.url_for(&stack.regions["b"]), "https://10.1.0.1:7443");
}

#[test]
fn the_example_stack_validates_against_the_quickstart_checks() {
    let loaded = stack::load(&common::repo().join("examples/stack.yaml")).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(loaded.stack.name, "demo");
    assert_eq!(loaded.stack.regions.keys().collect::<Vec<_>>(), ["local-a", "local-b"]);
    assert_eq!(loaded.stack.regions["local-a"].probers, 2);
    assert_eq!(loaded.config.checks.len(), 9);
    assert_eq!(loaded.sources.len(), 1);
    let alerting = loaded.stack.alerting.expect("alerting");
    assert_eq!(alerting.receiver, "ops");
    assert_eq!(alerting.routes.len(), 1);
}

#[test]
fn regions_must_agree_with_the_checks_config() {
    let checks = "regions: {eu-west: {}, us-east: {}}\nscheduling: {probers_per_region: 2}\nchecks: []\n";
    let stack = "name: x\nchecks: [checks.yaml]\nscheduler: {host: a}\nregions:\n  eu-wset: {probers: 2}\n  asia: {probers: 2}\n  us-east: {}\n";
    let (dir, path) = common::write(stack, checks);
    let errors = stack::load(&path).expect_err("regions disagree");
    let file = path.display().to_string();
    let got: Vec<String> = errors.0.iter().map(|error| error.to_string().replacen(&file, "stack.yaml", 1)).collect();
    assert_eq!(
        got,
        [
            "stack.yaml:4:1: regions: the checks config declares region \"eu-west\" but the stack runs no prober there",
            "stack.yaml:5:3: regions.eu-wset: region \"eu-wset\" is not declared in the checks config; did you mean \"eu-west\"?",
            "stack.yaml:6:3: regions.asia: region \"asia\" is not declared in the checks config (its regions: eu-west, us-east)",
            "stack.yaml:7:3: regions.us-east: 1 prober(s) but the checks config's scheduling.probers_per_region is 2",
        ]
    );
    drop(dir);
}

#[test]
fn errors_of_the_checks_config_come_through_located() {
    let (_dir, path) = common::write(common::STACK, "checks:\n  - name: a\n    htp: {}\n");
    let errors = stack::load(&path).expect_err("broken checks");
    let text = errors.to_string();
    assert!(text.contains("checks.yaml:3:5"), "{text}");
}

#[test]
fn a_checks_path_not_found_names_its_entry_and_says_paths_are_relative_to_the_stack_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let path = dir.path().join("stack.yaml");
    std::fs::copy(common::repo().join("examples/stack.yaml"), &path).unwrap_or_else(|error| panic!("{error}"));
    let errors = stack::load(&path).expect_err("quickstart.yaml is not next to the copy");
    let got: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    let dir = dir.path().display();
    assert_eq!(
        got,
        [format!(
            "{dir}/stack.yaml:10:10: checks[0]: {dir}/quickstart.yaml not found: the paths in `checks` are \
             relative to the stack file, whose directory is {dir}"
        )]
    );
}
