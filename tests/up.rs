//! `probenet up --demo`: the quick start on one machine shows real results from every region, including the
//! demo's failures, and stops by itself cleanly.

use crate::util::{REPO, probenet};

#[tokio::test]
async fn up_with_the_demo_shows_the_quick_start_results_and_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = probenet(["up", "--demo", "-c", "examples/quickstart.yaml", "--duration", "18s"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data.path())
        .current_dir(REPO)
        .output_within(std::time::Duration::from_secs(60))
        .await;
    out.assert_code(0);
    assert!(out.stdout.contains("probenet is up: scheduler http://127.0.0.1:"), "{}", out.stdout);
    // The last status table, printed after the probers handed their work back.
    let last = out.stdout.rsplit("CHECK ").next().unwrap_or_default();
    let state = |check: &str, region: &str| -> String {
        last.lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.first() == Some(&check) && cells.get(1) == Some(&region))
            .and_then(|cells| cells.get(2).map(|state| (*state).to_owned()))
            .unwrap_or_else(|| panic!("no row for {check} in {region}:\n{}", out.stdout))
    };
    for region in ["local-a", "local-b"] {
        assert_eq!(state("shop-homepage", region), "UP");
        assert_eq!(state("shop-health", region), "UP");
        assert_eq!(state("shop-search", region), "DEGRADED");
        assert_eq!(state("shop-checkout", region), "DOWN");
        assert_eq!(state("mail-banner", region), "UP");
        assert_eq!(state("shop-dns", region), "UP");
    }
    // The admin token is stored for the next start, readable by its owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(data.path().join("up/admin.token")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the admin token file is private");
    // And so is everything else it wrote: the store, the spool, the certificates (0700 directories, 0600 files).
    let mut open = Vec::new();
    let mut stack = vec![data.path().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.permissions().mode() & 0o077 != 0 {
                open.push(format!("{} {:o}", entry.path().display(), meta.permissions().mode() & 0o777));
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    assert!(open.is_empty(), "readable by others: {open:#?}");
}
