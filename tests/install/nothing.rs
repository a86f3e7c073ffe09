//! `probenet status` and `probenet uninstall` where nothing is installed say so plainly: status exits 3 (1 is
//! "installed, something unhealthy"), uninstall exits 0 and touches nothing but data it is asked to purge.

use std::process::Command;

use super::current;
use crate::util::REPO;

fn run(args: &[&str], root: &std::path::Path) -> (i32, String, String) {
    let output = Command::new(current())
        .args(args)
        .args(["-f", "examples/stack.yaml", "--root"])
        .arg(root)
        .current_dir(REPO)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

#[test]
fn status_and_uninstall_with_nothing_installed_say_so() {
    let root = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&["status"], root.path());
    assert_eq!(code, 3, "{out}{err}");
    let expected = format!(
        "stack \"demo\" is not installed below {0}: no {0}/etc/probenet, no {0}/usr/local/bin/probenet. `probenet \
         install local -f examples/stack.yaml --root {0}` installs it.\n",
        root.path().display()
    );
    assert_eq!(out, expected);
    assert!(!out.contains("UNHEALTHY") && !out.contains("cost"), "{out}");

    let (code, _, err) = run(&["uninstall"], root.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        format!("probenet: nothing to uninstall: stack \"demo\" is not installed below {}\n", root.path().display())
    );
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0, "nothing was created");

    // Data left by an uninstall without --purge: named, and removed with --purge.
    let data = root.path().join("var/lib/probenet");
    std::fs::create_dir_all(&data).unwrap();
    let (code, _, err) = run(&["uninstall"], root.path());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("its data is still in {} (`--purge` removes it)", data.display())), "{err}");
    assert!(data.exists());
    let (code, _, err) = run(&["uninstall", "--purge"], root.path());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("removed {}", data.display())), "{err}");
    assert!(!data.exists());
}
