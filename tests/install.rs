//! `probenet install local --yes` from nothing to a working stack below a temp root (VictoriaMetrics,
//! Alertmanager, vmalert, the scheduler, two probers in each of two regions, run by `probenet supervise`):
//! secrets 0600, results in VictoriaMetrics, an alert in Alertmanager, `probenet status` healthy without
//! secrets; then `probenet upgrade` with no gap in the results, and `probenet uninstall --purge` leaving nothing.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use probenet_install::layout::Layout;
use probenet_install::supervise::{self, State};
use serde_json::Value;

use crate::util::processes::{command, free_port, now_ms};

const PACKAGED: [&str; 3] = ["/usr/bin/victoria-metrics", "/usr/bin/vmalert", "/usr/bin/prometheus-alertmanager"];

/// Stops whatever the install started, even when the test fails: the supervisor (which stops the
/// components), then any component process left.
struct Guard {
    layout: Layout,
}

impl Drop for Guard {
    fn drop(&mut self) {
        probenet_install::uninstall::stop_supervisor(&self.layout, Duration::from_secs(30));
    }
}

/// Answers 200 to every request on a loopback port; bounded to 20,000 connections.
fn serve_ok() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20_000) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    port
}

fn client(layout: &Layout, client_cert: bool) -> reqwest::blocking::Client {
    let ca = std::fs::read(layout.ca_cert()).unwrap();
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap());
    if client_cert {
        let mut pem = std::fs::read(layout.client_cert()).unwrap();
        pem.extend(std::fs::read(layout.client_key()).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// Polls `probe` every 500 ms until it returns Some, failing after `limit`.
fn poll<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(found) = probe() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

fn run(args: &[&str], root: &Path, stack: &Path) -> std::process::Output {
    let output = command().args(args).arg("-f").arg(stack).arg("--root").arg(root).output().unwrap();
    eprintln!(
        "probenet {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn install_upgrade_and_uninstall_a_local_stack() {
    for binary in PACKAGED {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: install victoria-metrics and prometheus-alertmanager"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let target = serve_ok();
    let closed = free_port();
    let checks = format!(
        "regions: {{ra: {{}}, rb: {{}}}}\ndefaults: {{interval: 1s, timeout: 700ms}}\nchecks:\n  - name: web\n    \
         http: {{url: \"http://127.0.0.1:{target}/\"}}\n  - name: broken\n    http: {{url: \"http://127.0.0.1:{closed}/\"}}\n\
         alerts:\n  - name: broken-everywhere\n    checks: [broken]\n    failed_regions: 2\n    for: 1s\n    severity: page\n"
    );
    std::fs::write(dir.path().join("checks.yaml"), checks).unwrap();
    let (scheduler, store, vmalert, alertmanager) = (free_port(), free_port(), free_port(), free_port());
    let stack_text = format!(
        "name: e2e\nchecks: [checks.yaml]\nscheduler: {{host: localhost, listen: '127.0.0.1:{scheduler}'}}\n\
         regions:\n  ra: {{probers: 2}}\n  rb: {{probers: 2}}\nstore: {{listen: '127.0.0.1:{store}'}}\n\
         alerting:\n  vmalert: {{listen: '127.0.0.1:{vmalert}', evaluation_interval: 1s}}\n  alertmanager:\n    \
         listen: '127.0.0.1:{alertmanager}'\n    receiver: pager\n    receivers:\n      pager: {{webhook_url: 'http://127.0.0.1:{closed}/hook'}}\n    \
         routes:\n      - {{match: {{severity: page}}, receiver: pager}}\n"
    );
    let stack = dir.path().join("stack.yaml");
    std::fs::write(&stack, stack_text).unwrap();
    let loaded = probenet_install::load(&stack).unwrap();
    let layout = Layout::new(&loaded.stack).with_root(&root);
    let _guard = Guard { layout: layout.clone() };

    // Install from nothing.
    let output = run(&["install", "local", "--yes"], &root, &stack);
    assert!(output.status.success(), "install failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("dashboard: https://localhost:{scheduler}/")), "{stdout}");
    assert!(stdout.contains("web in ra: up"), "first results: {stdout}");
    let supervisor = supervise::running_pid(&layout).expect("the supervisor runs");

    // Every secret is private.
    let secrets = [
        layout.admin_token(),
        layout.token_file("ra"),
        layout.token_file("rb"),
        layout.store_password(),
        layout.store_env(),
        layout.ca_key(),
        layout.server_key(),
        layout.client_key(),
        layout.alertmanager_config(),
        layout.supervisor_file(),
        layout.data().join("tokens.json"),
    ];
    for secret in &secrets {
        let mode = std::fs::metadata(secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", secret.display());
    }
    let secret_texts: Vec<String> =
        [layout.admin_token(), layout.token_file("ra"), layout.token_file("rb"), layout.store_password()]
            .iter()
            .map(|path| read_trimmed(path))
            .collect();
    for log in std::fs::read_dir(layout.log_dir()).unwrap() {
        let text = std::fs::read_to_string(log.unwrap().path()).unwrap_or_default();
        assert!(secret_texts.iter().all(|secret| !text.contains(secret.as_str())), "a secret is in a log");
    }

    // Results reach VictoriaMetrics (HTTPS, basic auth) from both regions.
    let password = read_trimmed(&layout.store_password());
    let http = client(&layout, false);
    let unauthenticated =
        http.get(format!("https://127.0.0.1:{store}/api/v1/query?query=probe_success")).send().unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401, "the store needs its password");
    poll("probe_success of both regions in VictoriaMetrics", Duration::from_secs(30), || {
        let response = http
            .get(format!("https://127.0.0.1:{store}/api/v1/query?query=probe_success{{job=\"web\"}}"))
            .basic_auth("probenet", Some(&password))
            .send()
            .ok()?;
        let body: Value = response.json().ok()?;
        let probes: Vec<&str> =
            body["data"]["result"].as_array()?.iter().filter_map(|series| series["metric"]["probe"].as_str()).collect();
        (probes.contains(&"ra") && probes.contains(&"rb")).then_some(())
    });

    // The failing check's alert reaches Alertmanager (HTTPS, client certificate).
    let am = client(&layout, true);
    poll("the broken-everywhere alert in Alertmanager", Duration::from_secs(45), || {
        let alerts: Value =
            am.get(format!("https://127.0.0.1:{alertmanager}/api/v2/alerts")).send().ok()?.json().ok()?;
        alerts.as_array()?.iter().any(|alert| alert["labels"]["alertname"] == "broken-everywhere").then_some(())
    });
    assert!(
        client(&layout, false).get(format!("https://127.0.0.1:{alertmanager}/api/v2/alerts")).send().is_err(),
        "Alertmanager requires a client certificate"
    );

    // Status: every component healthy, no secret.
    let output = run(&["status"], &root, &stack);
    assert!(output.status.success(), "status says unhealthy");
    let text = String::from_utf8_lossy(&output.stdout);
    for component in &loaded_components(&loaded, &layout) {
        let line = text.lines().find(|line| line.trim_start().starts_with(component.as_str())).unwrap();
        assert!(line.contains("healthy") && !line.contains("UNHEALTHY"), "{line}");
    }
    assert!(text.contains("ra: ") && text.contains("rb: ") && text.contains("runs per day"), "{text}");
    assert!(secret_texts.iter().all(|secret| !text.contains(secret.as_str())), "status shows a secret");
    assert!(!text.contains("pnt_"), "status shows a token");

    // Upgrade to a "newer" build: no result lost.
    let before_upgrade = now_ms();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_probenet"));
    let output = command()
        .arg("upgrade")
        .arg("-f")
        .arg(&stack)
        .arg("--root")
        .arg(&root)
        .arg("--binary")
        .arg(&binary)
        .output()
        .unwrap();
    eprintln!("upgrade:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "upgrade failed");
    let after_upgrade = now_ms();
    assert!(layout.previous_binary().exists(), "the previous binary is kept");
    let state = State::read(&layout).unwrap();
    assert_eq!(state.pid, supervisor, "the same supervisor runs");
    // Wait until results planned after the upgrade are in (spooled ones included).
    std::thread::sleep(Duration::from_secs(3));
    let token = read_trimmed(&layout.admin_token());
    for region in ["ra", "rb"] {
        let url = format!("https://127.0.0.1:{scheduler}/api/v1/results?check=web&region={region}&limit=1000");
        let results: Vec<Value> = http.get(url).bearer_auth(&token).send().unwrap().json().unwrap();
        let mut planned: Vec<i64> = results.iter().filter_map(|result| result["planned_at_ms"].as_i64()).collect();
        planned.sort_unstable();
        planned.dedup();
        let window: Vec<i64> = planned
            .iter()
            .copied()
            .filter(|at| *at >= before_upgrade - 2_000 && *at <= after_upgrade + 1_000)
            .collect();
        assert!(window.len() >= 3, "results across the upgrade in {region}: {window:?}");
        for pair in window.windows(2) {
            assert_eq!(pair[1] - pair[0], 1_000, "a gap in {region} across the upgrade: {window:?}");
        }
    }

    // Uninstall: nothing runs, nothing is left.
    let pids: Vec<u32> = State::read(&layout).unwrap().components.iter().filter_map(|c| c.pid).collect();
    assert_eq!(pids.len(), loaded_components(&loaded, &layout).len(), "every component runs");
    let output = run(&["uninstall", "--purge"], &root, &stack);
    assert!(output.status.success(), "uninstall failed");
    assert!(!supervise::alive(supervisor), "the supervisor is gone");
    for pid in pids {
        assert!(!supervise::alive(pid), "component pid {pid} still runs");
    }
    let left: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn loaded_components(loaded: &probenet_install::Loaded, layout: &Layout) -> Vec<String> {
    probenet_install::local::components(loaded, layout).into_iter().map(|component| component.name).collect()
}
