//! The Debian package (`[package.metadata.deb]`, what `scripts/deb` builds with cargo-deb), made from the debug
//! binary this test run already built (`cargo deb --no-build --profile dev`: no second build, see `package`),
//! installed with `apt-get install ./probenet.deb` in a machine booted with systemd-nspawn from this host's system
//! (`probenet_testkit::container`, with `/usr` and `/var` overlaid so dpkg can write there), then `probenet
//! --version` and `probenet up --demo` for 25 s from an empty directory there: results from both regions and the
//! dashboard answering; `dpkg -r` leaves no file of the package behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use probenet_testkit::container::{Machine, NSPAWN};

use super::systemd::run;

use super::current;
use crate::util::processes::can_create_namespaces;

/// The cargo-deb CI installs (scripts/prerequisites and scripts/deb name the same one).
const CARGO_DEB: &str = "cargo install --locked cargo-deb --version 3.8.0";

/// The scheduler's and the demo's ports in the machine (its network is its own: nothing else listens there).
const LISTEN: &str = "127.0.0.1:17070";
const DEMO_PORT: &str = "18000";

/// Whether the tools that make the package are here; prints a `skip:` line naming how to get them when not
/// (and fails with CI set, where scripts/prerequisites installs them).
fn packaging_tools() -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let missing = if !Command::new(&cargo).args(["deb", "--version"]).output().is_ok_and(|out| out.status.success()) {
        format!("cargo-deb is missing ({CARGO_DEB}, or sudo scripts/prerequisites)")
    } else if !Command::new("sh").args(["-c", "command -v dpkg-shlibdeps"]).status().is_ok_and(|s| s.success()) {
        "dpkg-shlibdeps is missing (sudo apt-get install dpkg-dev)".to_owned()
    } else {
        return true;
    };
    assert!(std::env::var_os("CI").is_none(), "deb: {missing} on CI");
    println!("skip: deb: {missing}");
    false
}

/// `cargo deb --no-build --profile dev --fast` of this build's binary into `out`: the package's path.
///
/// cargo-deb packages `target/release/probenet` (the asset in Cargo.toml), which `--profile dev` turns into the
/// dev profile's `target/debug/probenet`: the binary the tests run, so the package costs no second build, only
/// cargo-deb's own work (strip, Depends from dpkg-shlibdeps, `--fast` compression). cargo-deb warns that the
/// dev profile is unsupported for releases; it is fine for a test of the packaging. `scripts/deb` makes the
/// release package from the same metadata.
fn package(out: &Path) -> PathBuf {
    let binary = current();
    let profile_dir = binary.parent().unwrap();
    assert_eq!(profile_dir.file_name().unwrap(), "debug", "a dev-profile build: {}", binary.display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    let output = Command::new(cargo)
        .args(["deb", "--no-build", "--profile", "dev", "--fast", "--locked", "--output"])
        .arg(out)
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("cargo deb ({:.1?}):\n{stdout}{}", started.elapsed(), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "cargo deb failed");
    let deb = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(deb.is_file(), "cargo deb named no package: {stdout}");
    deb
}

/// `dpkg-deb ARGS DEB`'s stdout.
fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let output = Command::new("dpkg-deb").args(args).arg(deb).output().unwrap();
    assert!(output.status.success(), "dpkg-deb {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_debian_package_installs_runs_the_demo_and_removes_cleanly() {
    if !can_create_namespaces() || !packaging_tools() {
        return;
    }
    assert!(Path::new(NSPAWN).exists(), "{NSPAWN} is missing: install systemd-container (CI does)");
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path();
    let deb = package(dir);

    // What apt is told: the version, what the binary links, the optional extras; the binary and the docs.
    let version = env!("CARGO_PKG_VERSION");
    let fields = dpkg_deb(&["--field"], &deb);
    eprintln!("control:\n{fields}");
    assert!(fields.contains("Package: probenet\n"), "{fields}");
    assert!(fields.contains(&format!("Version: {version}-1\n")), "{fields}");
    let depends = fields.lines().find(|line| line.starts_with("Depends: ")).unwrap_or_default();
    assert!(depends.contains("libc6"), "Depends from dpkg-shlibdeps: {fields}");
    assert!(fields.contains("Recommends: ca-certificates, chromium\n"), "{fields}");
    let contents = dpkg_deb(&["--contents"], &deb);
    for path in [
        "./usr/bin/probenet",
        "./usr/share/doc/probenet/README.md",
        "./usr/share/doc/probenet/CHANGELOG.md",
        "./usr/share/doc/probenet/examples/quickstart.yaml",
        "./usr/share/doc/probenet/examples/stack.yaml",
    ] {
        assert!(contents.lines().any(|line| line.ends_with(path)), "{path} is not in the package:\n{contents}");
    }

    let overlays = ["/usr", "/var"];
    let machine = match Machine::boot_overlaying(dir, &dir.join("console.log"), Duration::from_secs(90), &overlays) {
        Ok(machine) => machine,
        Err(error) => {
            // Booting a container is this host's capability, not probenet's behaviour.
            eprintln!("skipped: this host cannot boot a systemd machine: {error}");
            return;
        }
    };

    // Installed as a user would (apt resolves Depends against the machine's packages; no network there, so
    // Recommends are left to the user).
    let deb_path = deb.to_str().unwrap();
    let install =
        ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "--no-install-recommends", deb_path];
    let started = Instant::now();
    let (ok, ..) = run(&machine, &install);
    assert!(ok, "apt-get install of the package failed");
    eprintln!("installed in {:.1?}", started.elapsed());
    let (_, which, _) = run(&machine, &["sh", "-c", "command -v probenet"]);
    assert_eq!(which.trim(), "/usr/bin/probenet");
    let (ok, stdout, _) = run(&machine, &["probenet", "--version"]);
    assert!(ok && stdout.contains(version), "{stdout}");

    // The demo from an empty directory, for 25 s; meanwhile the dashboard answers and the API has results.
    let up = format!(
        "mkdir -p /tmp/empty && cd /tmp/empty && exec probenet up --demo --duration 25s --listen {LISTEN} \
         --demo-port {DEMO_PORT} --data /tmp/pn-data"
    );
    let checks = format!(
        "curl -sf -H \"Authorization: Bearer $(cat /tmp/pn-data/up/admin.token)\" http://{LISTEN}/api/v1/checks"
    );
    let (up, seen) = std::thread::scope(|scope| {
        let up = scope.spawn(|| run(&machine, &["sh", "-c", &up]));
        let started = Instant::now();
        let mut seen = (false, String::new());
        while started.elapsed() < Duration::from_secs(30) && !(seen.0 && seen.1.contains("\"state\":\"up\"")) {
            std::thread::sleep(Duration::from_millis(500));
            let dashboard = machine.run(&["curl", "-sf", "-o", "/dev/null", &format!("http://{LISTEN}/")]);
            seen.0 |= dashboard.is_ok_and(|out| out.status.success());
            if let Ok(out) = machine.run(&["sh", "-c", &checks]) {
                seen.1 = String::from_utf8_lossy(&out.stdout).into_owned();
            }
        }
        (up.join().unwrap(), seen)
    });
    let (ok, stdout, _) = up;
    assert!(ok, "probenet up --demo failed in the machine");
    assert!(stdout.contains(&format!("probenet is up: scheduler http://{LISTEN}")), "{stdout}");
    assert!(seen.0, "the dashboard at http://{LISTEN}/ never answered");
    assert!(seen.1.contains("\"state\":\"up\""), "no check up in the read API: {}", seen.1);
    // The last status table: the healthy page is up in both regions, the broken checkout down.
    let table = stdout.rsplit("\nCHECK ").next().unwrap_or_default();
    for region in ["local-a", "local-b"] {
        let state = |check: &str| {
            table
                .lines()
                .map(|line| line.split_whitespace().collect::<Vec<_>>())
                .find(|cells| cells.len() > 2 && cells[0] == check && cells[1] == region)
                .map(|cells| cells[2].to_owned())
        };
        assert_eq!(state("shop-homepage").as_deref(), Some("UP"), "{stdout}");
        assert_eq!(state("shop-checkout").as_deref(), Some("DOWN"), "{stdout}");
    }

    // Removed: no file of the package is left, and dpkg no longer lists it as installed.
    let (ok, ..) = run(&machine, &["dpkg", "-r", "probenet"]);
    assert!(ok, "dpkg -r failed");
    let (_, left, _) = run(&machine, &["sh", "-c", "ls -d /usr/bin/probenet /usr/share/doc/probenet 2>/dev/null"]);
    assert!(left.trim().is_empty(), "left behind: {left}");
    let (_, status, _) = run(&machine, &["sh", "-c", "dpkg-query -W -f='${Status}' probenet 2>&1"]);
    assert!(!status.contains("ok installed"), "{status}");
}
