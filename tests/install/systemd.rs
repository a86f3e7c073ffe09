//! The systemd path, under a real systemd: a machine booted with systemd-nspawn from this host's system (see
//! `probenet_testkit::container`), `probenet install local --yes` into its `/` as root: the `probenet` user,
//! units started and enabled, the packaged services stopped, components running as `probenet`, results; a
//! crashed component restarted by systemd; an upgrade that fails and rolls back, one that succeeds (both through
//! `systemctl restart`); `uninstall --purge` leaving no unit, file or process.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use probenet_testkit::container::{Machine, NSPAWN};

use super::current;
use crate::util::processes::can_create_namespaces;

const STACK: &str = "\
name: sd
checks: [checks.yaml]
scheduler: {host: localhost, listen: '127.0.0.1:17443'}
regions:
  r1: {probers: 2}
store: {listen: '127.0.0.1:18428'}
alerting:
  vmalert: {listen: '127.0.0.1:18880'}
  alertmanager: {listen: '127.0.0.1:19093'}
";

/// A TCP check of the scheduler's own port (the machine's network is its own loopback).
const CHECKS: &str = "\
regions: {r1: {}}
defaults: {interval: 1s, timeout: 700ms}
checks:
  - name: sched
    tcp: {target: '127.0.0.1:17443'}
";

/// Runs `command` in the machine: success, stdout and stderr, after echoing both streams; panics on a failed
/// start.
pub(super) fn run(machine: &Machine, command: &[&str]) -> (bool, String, String) {
    let output = machine.run(command).unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    eprintln!("machine$ {}\n{stdout}{stderr}", command.join(" "));
    (output.status.success(), stdout, stderr)
}

/// Polls a shell condition in the machine every 250 ms, failing after `limit`.
fn wait_until(machine: &Machine, what: &str, script: &str, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if machine.run(&["sh", "-c", script]).is_ok_and(|output| output.status.success()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

#[test]
fn install_upgrade_and_uninstall_under_systemd() {
    if !can_create_namespaces() {
        return;
    }
    assert!(Path::new(NSPAWN).exists(), "{NSPAWN} is missing: install systemd-container (CI does)");
    super::require_packages();
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path();
    let binary = dir.join("probenet");
    std::fs::copy(current(), &binary).unwrap();
    std::fs::write(dir.join("checks.yaml"), CHECKS).unwrap();
    std::fs::write(dir.join("stack.yaml"), STACK).unwrap();
    let machine = match Machine::boot(dir, &dir.join("console.log"), Duration::from_secs(90)) {
        Ok(machine) => machine,
        Err(error) => {
            // Booting a container is this host's capability, not probenet's behaviour.
            eprintln!("skipped: this host cannot boot a systemd machine: {error}");
            return;
        }
    };
    let (probenet, stack) = (binary.to_str().unwrap(), dir.join("stack.yaml"));
    let stack = stack.to_str().unwrap();

    // Install into the machine's /, as root, under systemd.
    let (ok, stdout, stderr) = run(&machine, &[probenet, "install", "local", "-f", stack, "--yes"]);
    assert!(ok, "install failed under systemd");
    assert!(stdout.contains("dashboard: https://localhost:17443/"), "{stdout}");
    assert!(stdout.contains("sched in r1: up"), "first results: {stdout}");
    assert!(stderr.contains("creating system user probenet"), "{stderr}");
    let units = ["probenet-victoria-metrics", "probenet-alertmanager", "probenet-vmalert", "probenet-scheduler"];
    let units: Vec<&str> = units.into_iter().chain(["probenet-prober-r1-1", "probenet-prober-r1-2"]).collect();
    for unit in &units {
        let (active, ..) = run(&machine, &["systemctl", "is-active", unit]);
        let (enabled, ..) = run(&machine, &["systemctl", "is-enabled", unit]);
        assert!(active && enabled, "{unit} is not active and enabled");
        // Every component runs as the probenet user, not root.
        let script = format!("ps -o user= -p $(systemctl show -p MainPID --value {unit})");
        let (_, user, _) = run(&machine, &["sh", "-c", &script]);
        assert_eq!(user.trim(), "probenet", "{unit} runs as {user:?}");
    }
    // The distribution's own services are not what runs: stopped and disabled.
    for packaged in ["victoria-metrics", "prometheus-alertmanager"] {
        let (active, ..) = run(&machine, &["systemctl", "is-active", packaged]);
        assert!(!active, "the packaged {packaged} still runs");
        let (_, enabled, _) = run(&machine, &["systemctl", "is-enabled", packaged]);
        assert_eq!(enabled.trim(), "disabled", "the packaged {packaged} would start at the next boot");
    }
    let (_, modes, _) = run(&machine, &["sh", "-c", "stat -c '%a %n' /etc/probenet/secrets/* /etc/probenet/tls/*key*"]);
    for line in modes.lines() {
        assert!(line.starts_with("600 "), "not private: {line}");
    }
    let (ok, status, _) = run(&machine, &[probenet, "status", "-f", stack]);
    assert!(ok && status.contains("r1: ") && status.contains("(1 up)"), "{status}");
    assert!(!status.contains("UNHEALTHY"), "{status}");

    // systemd restarts a crashed component.
    let (_, pid, _) = run(&machine, &["systemctl", "show", "-p", "MainPID", "--value", "probenet-scheduler"]);
    let pid = pid.trim().to_owned();
    run(&machine, &["kill", "-9", &pid]);
    let restarted = format!(
        "p=$(systemctl show -p MainPID --value probenet-scheduler); [ \"$p\" != 0 ] && [ \"$p\" != {pid} ] && \
         systemctl is-active --quiet probenet-scheduler"
    );
    wait_until(&machine, "systemd restarting the scheduler", &restarted, Duration::from_secs(30));

    // An upgrade to a build that cannot start rolls back through systemctl.
    let broken = dir.join("probenet-broken");
    std::fs::write(
        &broken,
        format!("#!/bin/sh\nif [ \"$1\" = --version ]; then exec {probenet} --version; fi\nexit 3\n"),
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let broken = broken.to_str().unwrap();
    let args = [probenet, "upgrade", "-f", stack, "--binary", broken, "--health-timeout", "8"];
    let (ok, _, stderr) = run(&machine, &args);
    assert!(!ok && stderr.contains("rolled back to the previous binary"), "{stderr}");
    let (same, ..) = run(&machine, &["cmp", "/usr/local/bin/probenet", probenet]);
    assert!(same, "the previous binary is back");
    wait_until(
        &machine,
        "the scheduler after the rollback",
        "systemctl is-active --quiet probenet-scheduler",
        Duration::from_secs(30),
    );

    // A good upgrade: every probenet unit restarted, healthy.
    let (ok, _, stderr) = run(&machine, &[probenet, "upgrade", "-f", stack]);
    assert!(ok && stderr.contains("probenet-prober-r1-2 is healthy again"), "{stderr}");
    let (ok, status, _) = run(&machine, &[probenet, "status", "-f", stack]);
    assert!(ok && !status.contains("UNHEALTHY"), "{status}");

    // Uninstall: no unit, no file, no process of the probenet user.
    let (ok, ..) = run(&machine, &[probenet, "uninstall", "-f", stack, "--purge"]);
    assert!(ok, "uninstall failed");
    let left = "ls /etc/systemd/system | grep probenet; ls -d /etc/probenet /var/lib/probenet /usr/local/bin/probenet \
                2>/dev/null; pgrep -u probenet";
    let (_, left, _) = run(&machine, &["sh", "-c", left]);
    assert!(left.trim().is_empty(), "left behind: {left}");
    let (_, listed, _) = run(&machine, &["systemctl", "list-units", "--all", "--no-legend", "probenet-*"]);
    assert!(listed.trim().is_empty(), "units still loaded: {listed}");
}
