//! Every file (or folder) under `tests/invalid/` is a broken config; its `# error:` comments list the exact
//! errors, with line and column, that loading it must report: no more, no fewer.

use std::path::{Path, PathBuf};

use probenet_checks::config::load_paths_checking_secrets;

const DIR: &str = "tests/invalid";

fn expected_errors(fixture: &Path) -> Vec<String> {
    let files: Vec<PathBuf> = if fixture.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(fixture)
            .map(|entries| entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
    } else {
        vec![fixture.to_owned()]
    };
    files
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.strip_prefix("# error: ").map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn actual_errors(fixture: &Path) -> Vec<String> {
    match load_paths_checking_secrets(&[fixture.to_owned()]) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.iter().map(|error| error.to_string().replace(&format!("{DIR}/"), "")).collect(),
    }
}

#[test]
fn every_invalid_fixture_reports_exactly_its_errors() {
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(DIR)
        .map(|entries| entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect())
        .unwrap_or_default();
    fixtures.sort();
    assert!(fixtures.len() >= 20, "expected the fixture folder to hold at least 20 fixtures");
    let mut failures = Vec::new();
    for fixture in &fixtures {
        let expected = expected_errors(fixture);
        if expected.is_empty() {
            failures.push(format!("{}: the fixture lists no `# error:` line", fixture.display()));
            continue;
        }
        let actual = actual_errors(fixture);
        if actual != expected {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  actual:\n    {}",
                fixture.display(),
                expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
