//! Shared helpers of the installer's tests: stacks written to temp dirs with their checks config.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use probenet_install::stack::{self, Loaded};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A temp dir holding `stack.yaml` and `checks.yaml`.
pub fn write(stack: &str, checks: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("checks.yaml"), checks).expect("write checks");
    let path = dir.path().join("stack.yaml");
    std::fs::write(&path, stack).expect("write stack");
    (dir, path)
}

/// Loads a stack and its checks, failing the test with every error.
pub fn load(stack: &str, checks: &str) -> (tempfile::TempDir, Loaded) {
    let (dir, path) = write(stack, checks);
    match stack::load(&path) {
        Ok(loaded) => (dir, loaded),
        Err(errors) => panic!("stack does not load:\n{errors}"),
    }
}

/// Checks with two regions, an alert, and one check of each of several kinds.
pub const CHECKS: &str = "\
regions:
  eu-west: {}
  us-east: {}
defaults: {interval: 60s}
checks:
  - name: web
    http: {url: https://shop.example/}
  - name: api
    interval: 30s
    regions: [eu-west]
    http: {url: http://api.example/health}
  - name: dns
    dns: {query: example.com}
  - name: ping
    interval: 10s
    icmp: {host: example.com}
  - name: nightly
    schedule: '0 3 * * *'
    tcp: {target: 'mail.example:25'}
";

/// A stack over [`CHECKS`].
pub const STACK: &str = "\
name: test
checks: [checks.yaml]
scheduler: {host: probenet.example.com}
regions:
  eu-west: {probers: 2}
  us-east: {probers: 1, netns: pn-us, scheduler_host: 10.9.0.1}
alerting:
  alertmanager:
    receivers:
      ops: {webhook_url: 'https://hooks.example/secret-path'}
";
