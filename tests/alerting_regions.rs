//! Alerting over real probers: in three network-namespace regions, one failing region does not page, two page
//! once and resolve once, a cut-off region raises one `region-impaired` alert and no check alert; and a real
//! Alertmanager receives the scheduler's alert and then its resolve.

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use probenet_testkit::{Region, TARGET_IP};

use crate::util::processes::{
    Kill, can_create_namespaces, command, notifications, now_ms, plain_prober, plain_scheduler, receiver, serve_ok,
    token, wait_for,
};
use serde_json::Value;

const SECRET: &str = "regions-hook-secret-3f9a";
const TARGET_PORT: u16 = 18_090;
/// Short names and small delays.
const REGIONS: [(&str, u64); 3] = [("r1", 5), ("r2", 10), ("r3", 20)];

/// Short lines naming each notification, for assertion messages.
fn brief(all: &[Value]) -> String {
    let lines: Vec<String> =
        all.iter().map(|n| format!("{} {} {} {}", n["status"], n["alert"], n["key"], n["regions"])).collect();
    lines.join("\n")
}

/// The regions a notification names, as a set.
fn regions_of(notification: &Value) -> BTreeSet<String> {
    let names = notification["regions"].as_array().cloned().unwrap_or_default();
    names.iter().filter_map(|name| name.as_str().map(str::to_owned)).collect()
}

/// Paths a region's target answers 503 on (all others: 200).
type Broken = Arc<Mutex<HashSet<String>>>;

/// Serves TARGET_IP:TARGET_PORT in the region's target namespace: 503 on broken paths, else 200. Bounded: it
/// stops after 50,000 connections or when the test process ends.
fn serve_switchable(region: &Region) -> Broken {
    let broken: Broken = Arc::default();
    let paths = broken.clone();
    let listener = region.in_target(|| TcpListener::bind((TARGET_IP, TARGET_PORT))).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50_000) {
            let Ok(mut stream) = stream else { continue };
            let paths = paths.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let read = stream.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..read]);
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response: &[u8] = if paths.lock().unwrap().contains(&path) {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                };
                let _ = stream.write_all(response);
            });
        }
    });
    broken
}

fn regions_config(hook_port: u16) -> String {
    let mut yaml = String::from("regions: {r1: {}, r2: {}, r3: {}}\ndefaults: {interval: 1s, timeout: 700ms}\n");
    yaml.push_str(&format!(
        "notifiers:\n  hook: {{webhook: {{url: \"http://127.0.0.1:{hook_port}/hook\", secret: \"${{env:HOOK_SECRET}}\"}}}}\n\
         probe_health: {{notify: [hook]}}\nchecks:\n"
    ));
    for i in 0..4 {
        yaml.push_str(&format!("  - name: c{i}\n    http: {{url: \"http://{TARGET_IP}:{TARGET_PORT}/c{i}\"}}\n"));
    }
    yaml.push_str(
        "alerts:\n  - name: site-down\n    checks: [c0]\n    failed_regions: 2\n    for: 2s\n    resolve_after: 3s\n    \
         severity: page\n    notify: [hook]\n  - name: api-down\n    checks: [c1, c2, c3]\n    failed_regions: 1\n    \
         for: 5s\n    severity: ticket\n    notify: [hook]\n",
    );
    yaml
}

/// The scheduler's results API over TLS (trusting the CA it made), as the admin.
struct Api {
    client: reqwest::blocking::Client,
    base: String,
    admin: String,
}

impl Api {
    fn get(&self, path: &str) -> Option<Value> {
        let response = self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.admin).send().ok()?;
        response.status().is_success().then(|| response.json().ok()).flatten()
    }

    /// The newest result of (check, region): its state and planned time.
    fn latest(&self, check: &str, region: &str) -> Option<(String, i64)> {
        let results = self.get(&format!("/api/v1/results?check={check}&region={region}&limit=20"))?;
        let newest = results.as_array()?.iter().max_by_key(|r| r["planned_at_ms"].as_i64().unwrap_or(0))?.clone();
        Some((newest["outcome"]["state"].as_str()?.to_owned(), newest["planned_at_ms"].as_i64()?))
    }

    /// Whether the newest result of (check, region) has `state` and was planned within the last 3 s.
    fn is(&self, check: &str, region: &str, state: &str) -> bool {
        self.latest(check, region).is_some_and(|(s, at)| s == state && now_ms() - at < 3_000)
    }
}

#[test]
fn a_quorum_of_regions_pages_once_and_one_region_does_not() {
    if !can_create_namespaces() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().to_owned();
    let data = dir.path().join("data");
    let (hook_port, got) = receiver();
    let checks = dir.path().join("checks.yaml");
    std::fs::write(&checks, regions_config(hook_port)).unwrap();

    let mut regions: Vec<(&str, Region, Ipv4Addr, Broken)> = Vec::new();
    for (name, delay) in REGIONS {
        let region = Region::create(name, Duration::from_millis(delay)).unwrap();
        let broken = serve_switchable(&region);
        let (host_ip, _) = region.control_link().unwrap();
        regions.push((name, region, host_ip, broken));
    }
    for (name, ..) in &regions {
        std::fs::write(dir.path().join(format!("{name}.token")), token(&data, &["--region", name])).unwrap();
    }
    let admin = token(&data, &["--admin"]);

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = command();
    command
        .env("HOOK_SECRET", SECRET)
        .args(["scheduler", "-c"])
        .arg(&checks)
        .args(["--listen", &format!("0.0.0.0:{port}"), "--data"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("scheduler.log")).unwrap()));
    for (_, _, host_ip, _) in &regions {
        command.args(["--san", &host_ip.to_string()]);
    }
    let scheduler = Kill(command.spawn().unwrap());
    wait_for("the scheduler's CA", Duration::from_secs(20), &logs, || {
        data.join("ca.pem").exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let ca = reqwest::Certificate::from_pem(&std::fs::read(data.join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::blocking::Client::builder().tls_certs_only([ca]).build().unwrap();
    let api = Api { client, base: format!("https://127.0.0.1:{port}"), admin };

    let mut probers = Vec::new();
    for (name, region, host_ip, _) in &regions {
        let log = std::fs::File::create(dir.path().join(format!("prober-{name}.log"))).unwrap();
        let child = region
            .prober_command(env!("CARGO_BIN_EXE_probenet"))
            .args(["prober", "--scheduler", &format!("https://{host_ip}:{port}"), "--region", name])
            .arg("--token-file")
            .arg(dir.path().join(format!("{name}.token")))
            .arg("--ca")
            .arg(data.join("ca.pem"))
            .args(["--name", &format!("p-{name}"), "--spool"])
            .arg(dir.path().join(format!("spool-{name}")))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        probers.push(Kill(child));
    }
    let every_pair =
        |state: &str| (0..4).all(|i| REGIONS.iter().all(|(region, ..)| api.is(&format!("c{i}"), region, state)));
    let broken = |index: usize| regions[index].3.clone();

    // All up for a few seconds: nothing is sent.
    wait_for("every check up in every region", Duration::from_secs(30), &logs, || every_pair("up"));
    std::thread::sleep(Duration::from_secs(3));
    assert!(every_pair("up"), "every check stays up");
    assert_eq!(notifications(&got, SECRET).len(), 0, "all up, nothing sent:\n{}", brief(&notifications(&got, SECRET)));

    // c0 fails in one region (below the quorum of 2) for 8 s: nothing is sent.
    broken(0).lock().unwrap().insert("/c0".into());
    wait_for("c0 down in r1", Duration::from_secs(5), &logs, || api.is("c0", "r1", "down"));
    std::thread::sleep(Duration::from_secs(8));
    assert!(api.is("c0", "r1", "down") && api.is("c0", "r2", "up"), "c0 still fails in r1 alone");
    assert_eq!(
        notifications(&got, SECRET).len(),
        0,
        "one region is no quorum:\n{}",
        brief(&notifications(&got, SECRET))
    );

    // c0 fails in a second region: one firing `site-down`, naming exactly r1 and r2.
    broken(1).lock().unwrap().insert("/c0".into());
    wait_for("site-down to fire", Duration::from_secs(20), &logs, || !got.lock().unwrap().is_empty());
    std::thread::sleep(Duration::from_secs(2));
    let all = notifications(&got, SECRET);
    assert_eq!(all.len(), 1, "one firing notification:\n{}", brief(&all));
    assert_eq!(all[0]["status"], "firing");
    assert_eq!(all[0]["alert"], "site-down");
    assert_eq!(all[0]["check"], "c0");
    assert_eq!(all[0]["severity"], "page");
    assert_eq!(regions_of(&all[0]), BTreeSet::from(["r1".to_owned(), "r2".to_owned()]), "{}", all[0]);
    assert_eq!(all[0]["reason"], "status");

    // Both repaired: one resolve, same key.
    broken(0).lock().unwrap().clear();
    broken(1).lock().unwrap().clear();
    wait_for("site-down to resolve", Duration::from_secs(20), &logs, || got.lock().unwrap().len() >= 2);
    std::thread::sleep(Duration::from_secs(2));
    let all = notifications(&got, SECRET);
    assert_eq!(all.len(), 2, "one resolve:\n{}", brief(&all));
    assert_eq!(all[1]["status"], "resolved");
    assert_eq!(all[1]["alert"], "site-down");
    assert_eq!(all[1]["key"], all[0]["key"]);

    // r3's network is cut: its probers reach no target, every check fails there while the others pass. One
    // `region-impaired` alert names r3, and no `api-down` follows (it would fire in 5 s for one failing region
    // if the impaired region counted in the quorum).
    regions[2].1.cut().unwrap();
    wait_for("region-impaired to fire", Duration::from_secs(20), &logs, || got.lock().unwrap().len() >= 3);
    let impaired_at = Instant::now();
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        (1..4).all(|i| api.is(&format!("c{i}"), "r3", "down") && api.is(&format!("c{i}"), "r1", "up")),
        "r3's probers still report fresh failures 12 s later (else no api-down would prove nothing)"
    );
    let all = notifications(&got, SECRET);
    let after: Vec<&Value> = all[2..].iter().collect();
    assert!(all.iter().all(|n| n["alert"] != "api-down"), "no api-down for an impaired region:\n{}", brief(&all));
    assert_eq!(after.len(), 1, "one region-impaired alert and nothing else:\n{}", brief(&all));
    assert_eq!(after[0]["status"], "firing");
    assert_eq!(after[0]["alert"], "region-impaired");
    assert_eq!(after[0]["key"], "region-impaired/r3");
    assert_eq!(regions_of(after[0]), BTreeSet::from(["r3".to_owned()]), "{}", after[0]);
    assert!(impaired_at.elapsed() >= Duration::from_secs(12));
    regions[2].1.restore().unwrap();

    drop(probers);
    drop(scheduler);
    let log = std::fs::read_to_string(dir.path().join("scheduler.log")).unwrap_or_default();
    assert!(!log.contains(SECRET), "the secret is not logged");
}

/// Alertmanager's alerts named `site-down`, active or not (resolved ones drop out of its API).
fn am_alerts(base: &str) -> Vec<Value> {
    let url = format!("{base}/api/v2/alerts?filter=alertname%3D%22site-down%22");
    let response = reqwest::blocking::get(url).unwrap();
    assert!(response.status().is_success(), "alertmanager answers {}", response.status());
    response.json().unwrap()
}

#[test]
fn alertmanager_receives_the_schedulers_alert_and_its_resolve() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let alertmanager = runtime.block_on(probenet_testkit::stores::alertmanager());
    let dir = tempfile::tempdir().unwrap();
    let logs: PathBuf = dir.path().to_owned();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let target_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let checks = dir.path().join("checks.yaml");
    std::fs::write(
        &checks,
        format!(
            "regions: {{r1: {{}}, r2: {{}}}}\ndefaults: {{interval: 1s, timeout: 500ms}}\n\
             notifiers:\n  am: {{alertmanager: {{url: \"{}\"}}}}\n\
             checks:\n  - name: site\n    http: {{url: \"http://127.0.0.1:{target_port}/\"}}\n\
             alerts:\n  - name: site-down\n    checks: [site]\n    failed_regions: 2\n    for: 1s\n    \
             resolve_after: 2s\n    severity: page\n    notify: [am]\n",
            alertmanager.base
        ),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _scheduler = Kill(plain_scheduler(dir.path(), &checks, &data, port).spawn().unwrap());
    let mut probers = Vec::new();
    for region in ["r1", "r2"] {
        probers.push(Kill(plain_prober(dir.path(), &data, port, region).spawn().unwrap()));
    }

    // Down in both regions (nothing listens): Alertmanager shows the alert, active, with our labels.
    let mut shown = Value::Null;
    wait_for("the alert in alertmanager", Duration::from_secs(40), &logs, || {
        shown = am_alerts(&alertmanager.base).into_iter().next().unwrap_or(Value::Null);
        !shown.is_null()
    });
    for (name, value) in [("alertname", "site-down"), ("check", "site"), ("job", "site"), ("severity", "page")] {
        assert_eq!(shown["labels"][name], value, "label {name} in {shown}");
    }
    assert_eq!(shown["labels"]["key"], "site-down/site", "{shown}");
    assert_eq!(shown["status"]["state"], "active", "{shown}");
    assert_eq!(shown["annotations"]["regions"], "r1, r2", "{shown}");

    // The target answers: the engine resolves after `resolve_after`, posts `endsAt`, and Alertmanager no longer
    // shows the alert as active; it stays that way.
    serve_ok(TcpListener::bind(("127.0.0.1", target_port)).unwrap(), 100_000);
    let active = |base: &str| am_alerts(base).into_iter().filter(|a| a["status"]["state"] == "active").count();
    wait_for("the alert to resolve in alertmanager", Duration::from_secs(30), &logs, || {
        active(&alertmanager.base) == 0
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(active(&alertmanager.base), 0, "no firing again: {:?}", am_alerts(&alertmanager.base));
    drop(probers);
}
