//! `probenet up --demo`: the built-in quick start on one machine, from any directory with no file, shows real
//! results from every region (the demo's failures, a degraded check and its reason), a firing alert with its
//! regions, SLO budgets, a resolve, and stops by itself cleanly; the demo's ports follow what is free; beyond
//! loopback without a dashboard token the terminal and `/` say how to set one; the default title.

use std::time::Duration;

use crate::util::{Config, Output, probenet};

/// `probenet up ARGS --listen 127.0.0.1:PORT --data DATA`, run in an empty directory for `duration`.
async fn up(args: &[&str], duration: &str, data: &std::path::Path) -> Output {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cwd = tempfile::tempdir().unwrap();
    let limit = probenet_checks::duration::parse(duration).unwrap() + Duration::from_secs(40);
    probenet(["up"])
        .args(args)
        .args(["--duration", duration, "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .current_dir(cwd.path())
        .output_within(limit)
        .await
}

/// The row of `check` in `region` of the last status table: its cells.
#[track_caller]
fn row(out: &Output, check: &str, region: &str) -> Vec<String> {
    let last = out.stdout.rsplit("\nCHECK ").next().unwrap_or_default();
    last.lines()
        .map(|line| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cells| {
            cells.first().map(String::as_str) == Some(check) && cells.get(1).map(String::as_str) == Some(region)
        })
        .unwrap_or_else(|| panic!("no row for {check} in {region}:\n{}", out.stdout))
}

/// The line of the last status table that starts with `first` (an alert key, an SLO's check).
#[track_caller]
fn line<'a>(out: &'a Output, table: &str, first: &str) -> &'a str {
    let last = out.stdout.rsplit(&format!("\n{table} ")).next().unwrap_or_default();
    last.lines()
        .find(|line| line.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no {table} line for {first}:\n{}", out.stdout))
}

#[tokio::test]
async fn up_with_the_demo_needs_no_file_and_shows_alerts_slos_and_degraded_checks() {
    let data = tempfile::tempdir().unwrap();
    let out = up(&["--demo"], "40s", data.path()).await;
    out.assert_code(0);
    assert!(out.stdout.contains("probenet is up: scheduler http://127.0.0.1:"), "{}", out.stdout);
    assert!(out.stdout.contains("config: the built-in quick start, written to "), "{}", out.stdout);
    for region in ["local-a", "local-b"] {
        let state = |check: &str| row(&out, check, region)[2].clone();
        assert_eq!(state("shop-homepage"), "UP");
        assert_eq!(state("shop-health"), "UP");
        assert_eq!(state("shop-checkout"), "DOWN");
        assert_eq!(state("mail-banner"), "UP");
        assert_eq!(state("shop-dns"), "UP");
        // The slow page: degraded, with its reason.
        let search = row(&out, "shop-search", region);
        assert_eq!((search[2].as_str(), search[4].as_str()), ("DEGRADED", "duration"), "{}", out.stdout);
    }
    // The broken checkout fails in both regions: the rule fires, the demo's receiver prints the notification,
    // and the status shows the alert with its regions.
    assert!(
        out.stdout.contains(
            "demo service: notification received: FIRING web-down/shop-checkout in 2 of 2 regions (local-a, \
             local-b), reason status"
        ),
        "{}",
        out.stdout
    );
    let alert: Vec<&str> = line(&out, "ALERT", "web-down/shop-checkout").split_whitespace().collect();
    assert_eq!(alert[1..5], ["FIRING", "local-a,", "local-b", "(2"], "{}", out.stdout);
    // SLOs with their budgets: the healthy home page keeps all of it.
    let slo: Vec<&str> = line(&out, "SLO", "shop-homepage").split_whitespace().collect();
    assert_eq!((slo[1], slo[2], slo[4]), ("99.5%", "1d", "100%"), "{}", out.stdout);
    // The flaky page (one request in three fails) has overspent its 1% budget, said as such (not "-300%").
    let slo: Vec<&str> = line(&out, "SLO", "shop-recommendations").split_whitespace().collect();
    assert_eq!((slo[1], slo[4]), ("99%", "exhausted"), "{}", out.stdout);

    // The config it ran is written for the user to copy, on the demo's ports.
    let written = std::fs::read_to_string(data.path().join("up/quickstart.yaml")).unwrap();
    let ports = out.stdout.lines().find(|line| line.starts_with("demo service: http://")).unwrap();
    let http = ports.split_whitespace().nth(2).unwrap().trim_start_matches("http://");
    assert!(written.contains(&format!("url: http://{http}/broken")), "{written}");

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

#[tokio::test]
async fn the_demo_inventory_alert_fires_then_resolves() {
    let data = tempfile::tempdir().unwrap();
    // Down for its first 45 s: fires within 30 s; passing for 30 s after that resolves it, by about 91 s in the
    // worst case (its first passing run up to one 15 s interval after it recovers), so it runs 120 s.
    let out = up(&["--demo"], "120s", data.path()).await;
    out.assert_code(0);
    let firing = out.stdout.find("notification received: FIRING web-down/shop-inventory in 2 of 2 regions");
    let resolved = out.stdout.find("notification received: RESOLVED web-down/shop-inventory");
    assert!(firing.is_some() && resolved > firing, "{}", out.stdout);
    assert_eq!(row(&out, "shop-inventory", "local-a")[2], "UP");
}

#[tokio::test]
async fn a_busy_demo_port_falls_back_to_free_ports_or_is_named_when_chosen() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    // Chosen with --demo-port: an error naming the port, before anything starts.
    let out = up(&["--demo", "--demo-port", &busy.to_string()], "5s", data.path()).await;
    out.assert_code(1);
    assert_eq!(
        out.stderr,
        format!(
            "probenet: demo service: cannot listen on 127.0.0.1:{busy}: the port is in use by another program; \
             choose other ports with --demo-port BASE, or leave it out\n"
        )
    );
    // The scheduler's own port, taken: named too.
    let config = Config::new("checks:\n  - name: a\n    http: {url: \"http://127.0.0.1:9/\"}\n");
    let out = probenet(["up", "-c", config.path.to_str().unwrap(), "--listen", &format!("127.0.0.1:{busy}"), "--data"])
        .arg(data.path())
        .output()
        .await;
    out.assert_code(1);
    assert!(out.stderr.starts_with(&format!("probenet: cannot listen on 127.0.0.1:{busy}: ")), "{}", out.stderr);
    assert!(out.stderr.ends_with("; choose another address or port with --listen ADDRESS:PORT\n"), "{}", out.stderr);
    // With a config of one's own, the quick start's ports are needed: a busy one is named too. (Other tests'
    // demos may hold 8000 already; then this part is left out.)
    let Ok(quickstart) = std::net::TcpListener::bind("127.0.0.1:8000") else {
        eprintln!("note: 127.0.0.1:8000 is held by another program: the cases that need it busy are skipped");
        return;
    };
    let config = Config::new("checks:\n  - name: a\n    http: {url: \"http://127.0.0.1:8000/\"}\n");
    let out = up(&["--demo", "-c", config.path.to_str().unwrap()], "5s", data.path()).await;
    out.assert_code(1);
    assert!(
        out.stderr.starts_with("probenet: demo service: cannot listen on 127.0.0.1:8000: the port is in use"),
        "{}",
        out.stderr
    );
    // The built-in quick start follows free ports instead.
    let out = up(&["--demo"], "3s", data.path()).await;
    out.assert_code(0);
    assert!(out.stdout.contains("the demo uses free ports instead, and the built-in quick start follows them"));
    drop(quickstart);
}

#[tokio::test]
async fn beyond_loopback_without_a_token_the_dashboard_says_how_to_set_one() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = Config::new("checks:\n  - name: a\n    interval: 1m\n    tcp: {target: \"127.0.0.1:9\"}\n");
    let mut child = crate::util::processes::command()
        .args(["up", "-c"])
        .arg(&config.path)
        .args(["--listen", &format!("0.0.0.0:{port}"), "--duration", "20s", "--data"])
        .arg(data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _child = crate::util::processes::Kill(child);
    let first_lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.starts_with("stop with Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        lines.join("\n")
    });
    let text = tokio::time::timeout(Duration::from_secs(30), first_lines).await.unwrap().unwrap();
    let dashboard = text.lines().find(|line| line.starts_with("dashboard: ")).unwrap_or_else(|| panic!("{text}"));
    assert!(dashboard.starts_with("dashboard: off: beyond loopback the dashboard needs a read token"), "{text}");
    assert!(dashboard.contains("`token: \"${env:DASHBOARD_TOKEN}\"` under `dashboard:`"), "{text}");

    let ca = reqwest::Certificate::from_pem(&std::fs::read(data.path().join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    let page = client.get(format!("https://127.0.0.1:{port}/")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let body = page.text().await.unwrap();
    assert!(body.contains("<h1>The dashboard is off</h1>") && body.contains("token: \"${env:DASHBOARD_TOKEN}\""));
    // Other paths and the API keep their JSON 404s.
    let other = client.get(format!("https://127.0.0.1:{port}/checks/a")).send().await.unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn the_dashboard_title_is_probenet_when_the_config_sets_none() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = Config::new("checks:\n  - name: a\n    interval: 1m\n    tcp: {target: \"127.0.0.1:9\"}\n");
    let _up = crate::util::processes::Kill(
        crate::util::processes::command()
            .args(["up", "-c"])
            .arg(&config.path)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--duration", "20s", "--data"])
            .arg(data.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let start = std::time::Instant::now();
    let page = loop {
        if let Ok(page) = client.get(format!("http://127.0.0.1:{port}/")).send().await {
            break page.text().await.unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(15), "the dashboard did not answer");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(page.contains(" · probenet</title>"), "{page}");
}
