//! The README's Deployment steps as written: `cp examples/stack.yaml examples/quickstart.yaml .` then
//! `probenet install local -f stack.yaml --plan`; and what copying the stack file alone says.

use std::path::Path;

use crate::util::{REPO, probenet};

#[tokio::test]
async fn the_readme_deployment_plan_works_and_a_missing_checks_file_is_named_relative_to_the_stack() {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    assert!(readme.contains("\ncp examples/stack.yaml examples/quickstart.yaml . "), "the README's first step");
    assert!(readme.contains("\nprobenet install local -f stack.yaml --plan "), "the README's second step");
    let dir = tempfile::tempdir().unwrap();

    // The stack file alone: its `checks` entry is not found next to it.
    std::fs::copy(Path::new(REPO).join("examples/stack.yaml"), dir.path().join("stack.yaml")).unwrap();
    let out = probenet(["install", "local", "-f", "stack.yaml", "--plan"]).current_dir(dir.path()).output().await;
    out.assert_code(2);
    let line = out.stderr.lines().next().unwrap_or_default();
    assert!(line.starts_with("stack.yaml:10:10: checks[0]: quickstart.yaml not found: "), "{}", out.stderr);
    assert!(line.contains("relative to the stack file"), "{}", out.stderr);

    // As the README says: both files.
    std::fs::copy(Path::new(REPO).join("examples/quickstart.yaml"), dir.path().join("quickstart.yaml")).unwrap();
    let out = probenet(["install", "local", "-f", "stack.yaml", "--plan"]).current_dir(dir.path()).output().await;
    out.assert_code(0);
    assert!(out.stdout.contains("probenet-scheduler"), "{}", out.stdout);
}
