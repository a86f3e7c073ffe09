//! The systemd units `probenet install local` writes pass the real `systemd-analyze verify`, and a broken one
//! does not.
//!
//! `systemd-analyze verify` exits 0 for unknown keys, unknown sections and values it cannot parse (it only warns,
//! as systemd itself does when loading a unit), so the output is read too. It checks that every `ExecStart=`
//! program exists and is executable (exit 1 otherwise), but it does not look users up: `User=probenet` passes
//! whether or not that user exists on this machine, only the name's syntax is checked (see
//! `user_names_are_checked_for_syntax_only`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use probenet_install::Layout;
use probenet_install::local;
use probenet_install::plan::{Action, ServiceManager};

const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

/// Programs named by `ExecStart=` besides the probenet binary; installed by the distribution packages.
const PROGRAMS: [&str; 3] = ["/usr/bin/victoria-metrics", "/usr/bin/prometheus-alertmanager", "/usr/bin/vmalert"];

/// What `systemd-analyze verify` says of some unit files.
struct Verdict {
    success: bool,
    output: String,
}

impl Verdict {
    /// The lines that report a problem with a unit.
    fn problems(&self) -> Vec<&str> {
        const SIGNS: [&str; 7] =
            ["Unknown key", "Unknown section", "Invalid", "Failed", "not executable", "Unknown lvalue", "Missing '='"];
        self.output.lines().filter(|line| SIGNS.iter().any(|sign| line.contains(sign))).collect()
    }
}

fn verify(units: &[PathBuf]) -> Verdict {
    assert!(
        Path::new(SYSTEMD_ANALYZE).exists(),
        "{SYSTEMD_ANALYZE} is missing: install systemd (Debian package `systemd`) to verify the units"
    );
    let output = Command::new(SYSTEMD_ANALYZE)
        .args(["verify", "--man=no", "--generators=no"])
        .args(units)
        .output()
        .expect("run systemd-analyze verify");
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    Verdict { success: output.status.success(), output: text }
}

/// The units of `stack` (over `checks`) written below a temp root, with the probenet binary in place
/// (`/bin/true`); returns the dir, the layout and the unit files.
fn write_units(stack: &str, checks: &str) -> (tempfile::TempDir, Layout, Vec<PathBuf>) {
    for program in PROGRAMS {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: install the victoria-metrics, vmalert and prometheus-alertmanager packages"
        );
    }
    let (dir, loaded) = common::load(stack, checks);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    let mut files = Vec::new();
    for action in plan.actions() {
        if let Action::WriteFile { path, contents, .. } = action
            && path.extension().is_some_and(|ext| ext == "service")
        {
            std::fs::create_dir_all(path.parent().expect("a unit dir")).expect("create the unit dir");
            std::fs::write(path, contents).expect("write a unit");
            files.push(path.clone());
        }
    }
    assert_eq!(files.len(), plan.components.len(), "one unit per component");
    let binary = layout.binary();
    std::fs::create_dir_all(binary.parent().expect("a bin dir")).expect("create the bin dir");
    std::fs::copy("/bin/true", &binary).expect("copy /bin/true as the probenet binary");
    (dir, layout, files)
}

fn assert_clean(verdict: &Verdict, what: &str) {
    assert!(verdict.success, "systemd-analyze verify fails on {what}:\n{}", verdict.output);
    assert!(verdict.problems().is_empty(), "systemd-analyze verify warns about {what}:\n{}", verdict.output);
}

#[test]
fn the_units_of_a_full_stack_verify_cleanly() {
    // Store, Alertmanager, vmalert, scheduler, and probers with CAP_NET_RAW (ICMP), one in a network namespace.
    let (_dir, _layout, units) = write_units(common::STACK, common::CHECKS);
    assert_eq!(units.len(), 7);
    let verdict = verify(&units);
    assert_clean(&verdict, "the units of a full stack");
}

#[test]
fn the_units_of_a_stack_without_store_verify_cleanly() {
    // No store nor alerting, and no ICMP check: the probers get an empty capability set.
    let stack = "name: lean\nchecks: [checks.yaml]\nscheduler: {host: 127.0.0.1}\nregions: {eu-west: {}}\n\
                 store: {kind: none}\n";
    let checks = "regions: {eu-west: {}}\nchecks:\n  - name: web\n    http: {url: https://shop.example/}\n";
    let (_dir, _layout, units) = write_units(stack, checks);
    assert_eq!(units.len(), 2, "scheduler and one prober");
    let text = std::fs::read_to_string(&units[1]).expect("read the prober's unit");
    assert!(text.contains("CapabilityBoundingSet=\n"), "{text}");
    let verdict = verify(&units);
    assert_clean(&verdict, "the units of a stack without store");
}

#[test]
fn a_broken_unit_is_reported() {
    let (dir, layout, units) = write_units(common::STACK, common::CHECKS);
    let scheduler = layout.unit_file("probenet-scheduler");
    let good = std::fs::read_to_string(&scheduler).expect("read the scheduler's unit");
    let broken_dir = dir.path().join("broken");
    std::fs::create_dir_all(&broken_dir).expect("create a dir");
    let broken = broken_dir.join("probenet-scheduler.service");

    // A misspelt key and a value systemd cannot parse: exit 0, but both reported with their line.
    let text = good.replacen("Restart=on-failure", "Restart=sometimes", 1).replacen(
        "[Service]\n",
        "[Service]\nExecStartt=/bin/true\n",
        1,
    );
    std::fs::write(&broken, text).expect("write the broken unit");
    let verdict = verify(std::slice::from_ref(&broken));
    let problems = verdict.problems();
    assert_eq!(problems.len(), 2, "{}", verdict.output);
    assert!(problems.iter().any(|line| line.contains("Unknown key") && line.contains("ExecStartt")), "{problems:?}");
    assert!(problems.iter().any(|line| line.contains("sometimes")), "{problems:?}");

    // A section that does not exist.
    std::fs::write(&broken, format!("{good}\n[Servce]\nUser=x\n")).expect("write the broken unit");
    let verdict = verify(std::slice::from_ref(&broken));
    assert!(verdict.problems().iter().any(|line| line.contains("Unknown section 'Servce'")), "{}", verdict.output);

    // The program of ExecStart= missing: an error (exit 1), so the binary put in place above matters.
    std::fs::remove_file(layout.binary()).expect("remove the binary");
    let verdict = verify(&units);
    assert!(!verdict.success, "verify passes without the probenet binary:\n{}", verdict.output);
    assert!(verdict.problems().iter().any(|line| line.contains("is not executable")), "{}", verdict.output);
}

#[test]
fn user_names_are_checked_for_syntax_only() {
    let (dir, layout, _units) = write_units(common::STACK, common::CHECKS);
    let good = std::fs::read_to_string(layout.unit_file("probenet-scheduler")).expect("read the scheduler's unit");
    assert!(good.contains("User=probenet\nGroup=probenet\n"), "{good}");
    let other_dir = dir.path().join("users");
    std::fs::create_dir_all(&other_dir).expect("create a dir");
    let unit = other_dir.join("probenet-scheduler.service");

    // A user this machine surely lacks passes like `probenet`, whether it exists here or not: verify does not
    // read the user database (the user is resolved when the service starts; the install creates it first).
    let absent = "probenet-absent-user-4711";
    assert!(!Command::new("id").arg(absent).output().expect("run id").status.success());
    std::fs::write(&unit, good.replace("=probenet\n", &format!("={absent}\n"))).expect("write the unit");
    let verdict = verify(std::slice::from_ref(&unit));
    assert_clean(&verdict, "a unit whose user does not exist");
    assert!(!verdict.output.contains(absent), "{}", verdict.output);

    // But it reads `User=`: a name that breaks the naming rules is reported.
    std::fs::write(&unit, good.replace("User=probenet\n", "User=no such user!\n")).expect("write the unit");
    let verdict = verify(std::slice::from_ref(&unit));
    assert!(
        verdict.output.lines().any(|line| line.contains("no such user!") && line.contains("user/group name")),
        "{}",
        verdict.output
    );
}
