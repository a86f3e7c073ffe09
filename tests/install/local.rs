//! From nothing to a working stack: VictoriaMetrics, Alertmanager, vmalert, the scheduler, and two probers in
//! each of two regions, each region's probers in its own network namespace reaching its own target across a
//! delay line. Secrets 0600 and never logged, results of both regions in VictoriaMetrics (each with its
//! region's latency), an alert in Alertmanager, `status` healthy without secrets; an upgrade to a broken build
//! that rolls back, an upgrade that succeeds, neither losing a result; `uninstall --purge` leaving nothing.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::Duration;

use probenet_install::supervise::{self, State};
use probenet_testkit::{Region, TARGET_IP};
use serde_json::Value;

use super::{Stack, current, poll, read_trimmed, require_packages};
use crate::util::processes::{can_create_namespaces, free_port, now_ms, serve_ok};

const TARGET_PORT: u16 = 18_100;
const CLOSED_PORT: u16 = 18_101;
/// Region, added round trip (ms).
const REGIONS: [(&str, u64); 2] = [("ra", 10), ("rb", 80)];

#[test]
fn install_upgrade_and_uninstall_a_stack_with_regions_in_namespaces() {
    if !can_create_namespaces() {
        return;
    }
    require_packages();
    let mut regions = Vec::new();
    let mut region_lines = String::new();
    for (name, delay) in REGIONS {
        let region = Region::create(name, Duration::from_millis(delay)).unwrap();
        let listener = region.in_target(|| TcpListener::bind((TARGET_IP, TARGET_PORT))).unwrap();
        serve_ok(listener, 20_000);
        let (host_ip, _) = region.control_link().unwrap();
        region_lines.push_str(&format!(
            "  {name}: {{probers: 2, netns: {}, scheduler_host: '{host_ip}'}}\n",
            region.prober_ns()
        ));
        regions.push(region);
    }
    let checks = format!(
        "regions: {{ra: {{}}, rb: {{}}}}\ndefaults: {{interval: 1s, timeout: 700ms}}\nchecks:\n  - name: web\n    \
         http: {{url: \"http://{TARGET_IP}:{TARGET_PORT}/\"}}\n  - name: broken\n    \
         http: {{url: \"http://{TARGET_IP}:{CLOSED_PORT}/\"}}\n\
         alerts:\n  - name: broken-everywhere\n    checks: [broken]\n    failed_regions: 2\n    for: 1s\n    severity: page\n"
    );
    let (scheduler, store, vmalert, alertmanager, closed) =
        (free_port(), free_port(), free_port(), free_port(), free_port());
    let stack = Stack::new(
        &checks,
        &format!(
            "name: e2e\nchecks: [checks.yaml]\nscheduler: {{host: localhost, listen: '0.0.0.0:{scheduler}'}}\n\
             regions:\n{region_lines}store: {{listen: '127.0.0.1:{store}'}}\n\
             alerting:\n  vmalert: {{listen: '127.0.0.1:{vmalert}', evaluation_interval: 1s}}\n  alertmanager:\n    \
             listen: '127.0.0.1:{alertmanager}'\n    receiver: pager\n    receivers:\n      \
             pager: {{webhook_url: 'http://127.0.0.1:{closed}/hook'}}\n    \
             routes:\n      - {{match: {{severity: page}}, receiver: pager}}\n"
        ),
    );
    let layout = &stack.layout;

    // Install from nothing.
    let output = stack.run(&current(), &["install", "local", "--yes"], &[]);
    assert!(output.status.success(), "install failed; the network then:\n{}", network_state(&regions));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("dashboard: https://localhost:{scheduler}/")), "{stdout}");
    assert!(stdout.contains("web in ra: up") && stdout.contains("web in rb: up"), "first results: {stdout}");
    // The checks config sets no dashboard token: the install made one, said where, and the dashboard (beyond
    // loopback) serves its pages with it.
    let dashboard_token = layout.dashboard_token();
    assert!(stdout.contains(&format!("dashboard token: in {}", dashboard_token.display())), "{stdout}");
    let overview = stack.client(false).get(format!("https://127.0.0.1:{scheduler}/"));
    let page = overview.bearer_auth(read_trimmed(&dashboard_token)).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("</title>"));
    let supervisor = supervise::running_pid(layout).expect("the supervisor runs");
    for region in &regions {
        let inside = std::process::Command::new("ip").args(["netns", "pids", region.prober_ns()]).output().unwrap();
        let pids = String::from_utf8_lossy(&inside.stdout).lines().count();
        assert_eq!(pids, 2, "two probers run in {}", region.prober_ns());
    }

    // Every secret is private.
    let secrets = [
        layout.admin_token(),
        layout.dashboard_token(),
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

    // Results reach VictoriaMetrics (HTTPS, basic auth) from both regions, each across its own delay line.
    let unauthenticated =
        stack.client(false).get(format!("https://127.0.0.1:{store}/api/v1/query?query=probe_success")).send().unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401, "the store needs its password");
    let durations: Vec<(String, f64)> =
        poll("probe_duration_seconds of both regions in VictoriaMetrics", Duration::from_secs(30), || {
            let series = stack.store_query(store, "probe_duration_seconds{job=\"web\"}")?;
            let found: Vec<(String, f64)> = series
                .iter()
                .filter_map(|s| {
                    Some((s["metric"]["probe"].as_str()?.to_owned(), s["value"][1].as_str()?.parse().ok()?))
                })
                .collect();
            (found.len() == 2).then_some(found)
        });
    for (region, seconds) in &durations {
        let delay = REGIONS.iter().find(|(name, ..)| name == region).map(|(_, delay)| *delay).unwrap();
        // The delay line holds every exchange for at least its delay: a floor no noise can break.
        assert!(*seconds >= delay as f64 / 1000.0, "{region} took {seconds}s across a {delay} ms delay line");
    }

    // The failing check's alert reaches Alertmanager (HTTPS, client certificate).
    let am = stack.client(true);
    poll("the broken-everywhere alert in Alertmanager", Duration::from_secs(45), || {
        let alerts: Value =
            am.get(format!("https://127.0.0.1:{alertmanager}/api/v2/alerts")).send().ok()?.json().ok()?;
        alerts.as_array()?.iter().any(|alert| alert["labels"]["alertname"] == "broken-everywhere").then_some(())
    });
    assert!(
        stack.client(false).get(format!("https://127.0.0.1:{alertmanager}/api/v2/alerts")).send().is_err(),
        "Alertmanager requires a client certificate"
    );

    // Status: every component healthy, probenet's own at the running version, no secret.
    let output = stack.run(&current(), &["status"], &[]);
    assert!(output.status.success(), "status says unhealthy");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let running = format!("probenet {} (running)", env!("CARGO_PKG_VERSION"));
    for component in &stack.components() {
        let line = Stack::status_line(&text, component);
        assert!(line.contains("healthy") && !line.contains("UNHEALTHY"), "{line}");
    }
    for component in &stack.probenet_components() {
        assert!(Stack::status_line(&text, component).contains(&running), "{text}");
    }
    assert!(text.contains("ra: ") && text.contains("rb: ") && text.contains("runs per day"), "{text}");
    assert!(secret_texts.iter().all(|secret| !text.contains(secret.as_str())), "status shows a secret");
    assert!(!text.contains("pnt_"), "status shows a token");

    // Installing again applies a changed checks config: keys, tokens and passwords kept, nothing restarted, the
    // new check run in both regions.
    let kept = [
        layout.admin_token(),
        layout.token_file("ra"),
        layout.token_file("rb"),
        layout.store_password(),
        layout.ca_key(),
        layout.server_key(),
        layout.client_key(),
    ];
    let read_all = || kept.iter().map(|path| std::fs::read(path).unwrap()).collect::<Vec<_>>();
    let (secrets_before, pids_before) = (read_all(), State::read(layout).unwrap().components);
    let again =
        format!("  - name: web-again\n    http: {{url: \"http://{TARGET_IP}:{TARGET_PORT}/again\"}}\nalerts:\n");
    std::fs::write(stack.dir.path().join("checks.yaml"), checks.replace("alerts:\n", &again)).unwrap();
    let output = stack.run(&current(), &["install", "local", "--yes"], &[]);
    assert!(output.status.success(), "installing again failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("web-again in ra: up") && stdout.contains("web-again in rb: up"), "{stdout}");
    assert!(read_all() == secrets_before, "installing again replaced a key, token or password");
    let pids_after = State::read(layout).unwrap().components;
    let pids = |components: &[supervise::ComponentState]| components.iter().map(|c| c.pid).collect::<Vec<_>>();
    assert_eq!(pids(&pids_after), pids(&pids_before), "installing again restarted a component");

    // An upgrade to a build whose scheduler cannot start rolls back: the previous binary is back, the stack
    // healthy, and no result lost while the scheduler was away.
    let installed = std::fs::read(layout.binary()).unwrap();
    let broken = stack.dir.path().join("probenet-broken");
    std::fs::write(
        &broken,
        format!(
            "#!/bin/sh\n# A build that answers --version and fails to start.\n\
             if [ \"$1\" = --version ]; then exec {} --version; fi\necho 'cannot start' >&2\nexit 3\n",
            current().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = now_ms();
    let output = stack.run(&current(), &["upgrade"], &["--binary", broken.to_str().unwrap(), "--health-timeout", "8"]);
    let after = now_ms();
    assert!(!output.status.success(), "an upgrade to a broken build succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rolled back to the previous binary"), "{stderr}");
    assert_eq!(std::fs::read(layout.binary()).unwrap(), installed, "the previous binary is back");
    let output = stack.run(&current(), &["status"], &[]);
    assert!(output.status.success(), "unhealthy after the rollback");
    std::thread::sleep(Duration::from_secs(3));
    for (region, ..) in REGIONS {
        stack.assert_no_gap(scheduler, "web", region, before, after, &format!("in {region}, rollback"));
    }

    // Upgrade to a newer build through a path of its own: no result lost, the same supervisor.
    let newer: PathBuf = stack.dir.path().join("probenet-newer");
    symlink(current(), &newer).unwrap();
    let before = now_ms();
    let output = stack.run(&newer, &["upgrade"], &[]);
    assert!(output.status.success(), "upgrade failed");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&format!("the supervisor runs {} (pid {supervisor})", env!("CARGO_PKG_VERSION"))), "{said}");
    let after = now_ms();
    assert!(layout.previous_binary().exists(), "the previous binary is kept");
    // The supervisor re-executed the installed binary in its own process, keeping its components.
    let state = State::read(layout).unwrap();
    assert_eq!(state.pid, supervisor, "the same supervisor process runs");
    assert_eq!(state.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    let exe = std::fs::read_link(format!("/proc/{supervisor}/exe")).unwrap();
    assert_eq!(exe, layout.binary(), "the supervisor runs the installed binary, not a replaced one");
    // Wait until results planned after the upgrade are in (spooled ones included).
    std::thread::sleep(Duration::from_secs(3));
    for (region, ..) in REGIONS {
        stack.assert_no_gap(scheduler, "web", region, before, after, &format!("in {region}, upgrade"));
    }

    // No secret in any log, after all of that.
    for log in std::fs::read_dir(layout.log_dir()).unwrap() {
        let text = std::fs::read_to_string(log.unwrap().path()).unwrap_or_default();
        assert!(secret_texts.iter().all(|secret| !text.contains(secret.as_str())), "a secret is in a log");
    }

    // Uninstall: nothing runs, nothing is left.
    let pids: Vec<u32> = State::read(layout).unwrap().components.iter().filter_map(|c| c.pid).collect();
    assert_eq!(pids.len(), stack.components().len(), "every component runs");
    let output = stack.run(&current(), &["uninstall", "--purge"], &[]);
    assert!(output.status.success(), "uninstall failed");
    assert!(!supervise::alive(supervisor), "the supervisor is gone");
    for pid in pids {
        assert!(!supervise::alive(pid), "component pid {pid} still runs");
    }
    let left: Vec<PathBuf> = std::fs::read_dir(&stack.root).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The addresses and routes of the host and of each region's prober namespace, and the host's listening TCP
/// sockets: what to read when a prober in a namespace cannot reach its scheduler.
fn network_state(regions: &[Region]) -> String {
    let run = |args: &[&str]| {
        let output = std::process::Command::new(args[0]).args(&args[1..]).output();
        let text = output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        format!("$ {}\n{text}", args.join(" "))
    };
    let mut state = run(&["ip", "-br", "addr"]) + &run(&["ip", "route"]) + &run(&["ss", "-ltnp"]);
    for region in regions {
        let ns = region.prober_ns();
        state += &run(&["ip", "-n", ns, "-br", "addr"]);
        state += &run(&["ip", "-n", ns, "route"]);
    }
    state
}
