//! The whole network, for real: a scheduler and six prober processes in three regions, each region a pair of
//! network namespaces behind a delay line (10, 40 and 80 ms), running 50 checks against targets in the
//! regions' target namespaces. Every (check, region) pair runs exactly once per interval; a prober killed
//! with SIGKILL loses its pairs within a lease; a new prober takes its fair share; a scheduler restart loses
//! no result; tokens are bound to their region; each region's latency shows its delay.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use probenet_testkit::{Region, TARGET_IP};

use crate::util::processes::{self, can_create_namespaces, now_ms, token};
use serde_json::Value;

const CHECKS: usize = 50;
const INTERVAL_MS: i64 = 2_000;
const TARGET_PORT: u16 = 18_080;
const REGIONS: [(&str, u64); 3] = [("eu-west", 10), ("us-east", 40), ("ap-south", 80)];

/// Serves a fixed page on TARGET_IP:TARGET_PORT inside the region's target namespace (bounded: it stops
/// after 50,000 connections or when the test process ends).
fn serve_target(region: &Region) {
    let listener = region.in_target(|| TcpListener::bind((TARGET_IP, TARGET_PORT))).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50_000) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nWelcome");
            });
        }
    });
}

fn config() -> String {
    let regions: Vec<&str> = REGIONS.iter().map(|(name, _)| *name).collect();
    let mut yaml = String::from("scheduling: {lease: 3s}\nregions:\n");
    for name in &regions {
        yaml.push_str(&format!("  {name}: {{}}\n"));
    }
    yaml.push_str(&format!("defaults: {{interval: {}ms, timeout: 1500ms}}\nchecks:\n", INTERVAL_MS));
    for i in 0..CHECKS {
        yaml.push_str(&format!(
            "  - name: check-{i:02}\n    http: {{url: \"http://{TARGET_IP}:{TARGET_PORT}/c{i}\", expect: {{body_contains: Welcome}}}}\n"
        ));
    }
    yaml
}

struct Network {
    dir: tempfile::TempDir,
    port: u16,
    regions: Vec<(String, Region, Ipv4Addr)>,
    scheduler: Option<Child>,
    probers: BTreeMap<String, Child>,
    admin: String,
    /// Trusts the CA the scheduler made on its first start.
    client: Option<reqwest::blocking::Client>,
}

impl Network {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_scheduler(&mut self) {
        let mut command = processes::command();
        command
            .args(["scheduler", "-c"])
            .arg(self.dir.path().join("checks.yaml"))
            .args(["--listen", &format!("0.0.0.0:{}", self.port), "--data"])
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(self.dir.path().join("scheduler.log")).unwrap()));
        for (_, _, host_ip) in &self.regions {
            command.args(["--san", &host_ip.to_string()]);
        }
        self.scheduler = Some(command.spawn().unwrap());
        let port = self.port;
        self.wait("the scheduler to listen", Duration::from_secs(20), |_| {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if self.client.is_none() {
            let ca = reqwest::Certificate::from_pem(&std::fs::read(self.data().join("ca.pem")).unwrap()).unwrap();
            self.client = Some(reqwest::blocking::Client::builder().tls_certs_only([ca]).build().unwrap());
        }
        self.wait("the scheduler to answer", Duration::from_secs(20), |net| net.get("/healthz").is_some());
    }

    fn start_prober(&mut self, region_index: usize, name: &str) {
        let (region_name, region, host_ip) = &self.regions[region_index];
        let token_file = self.dir.path().join(format!("{region_name}.token"));
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = region
            .prober_command(env!("CARGO_BIN_EXE_probenet"))
            .args(["prober", "--scheduler", &format!("https://{host_ip}:{}", self.port), "--region", region_name])
            .arg("--token-file")
            .arg(&token_file)
            .arg("--ca")
            .arg(self.data().join("ca.pem"))
            .args(["--name", name, "--spool"])
            .arg(self.dir.path().join(format!("spool-{name}")))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.probers.insert(name.to_owned(), child);
    }

    fn get(&self, path: &str) -> Option<Value> {
        let url = format!("https://127.0.0.1:{}{path}", self.port);
        let response = self.client.as_ref()?.get(url).bearer_auth(&self.admin).send().ok()?;
        if !response.status().is_success() {
            return None;
        }
        let text = response.text().ok()?;
        Some(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Polls `done` every 200 ms until it holds or `limit` passes (then fails, naming what it waited for).
    fn wait(&self, what: &str, limit: Duration, done: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < limit, "timed out waiting for {what}; logs in {}", self.dir.path().display());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn assignments(&self) -> Vec<Value> {
        self.get("/api/v1/assignments").and_then(|value| value.as_array().cloned()).unwrap_or_default()
    }

    /// Planned times of every result of a pair, oldest first.
    fn planned(&self, check: &str, region: &str) -> Vec<i64> {
        let path = format!("/api/v1/results?check={check}&region={region}&limit=1000");
        let mut planned: Vec<i64> = self
            .get(&path)
            .and_then(|value| value.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|result| result["planned_at_ms"].as_i64())
            .collect();
        planned.sort_unstable();
        planned
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for child in self.probers.values_mut().chain(self.scheduler.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every pair's planned times between `from` and `to` are consecutive grid points: no gap, no duplicate.
fn assert_exactly_once(net: &Network, from: i64, to: i64) {
    let mut problems = Vec::new();
    for i in 0..CHECKS {
        for (region, _) in REGIONS {
            let check = format!("check-{i:02}");
            let planned: Vec<i64> =
                net.planned(&check, region).into_iter().filter(|at| (from..to).contains(at)).collect();
            let unique: BTreeSet<i64> = planned.iter().copied().collect();
            let expected = ((to - from) / INTERVAL_MS) as usize;
            let steps_ok = planned.windows(2).all(|pair| pair[1] - pair[0] == INTERVAL_MS);
            if unique.len() != planned.len() || !steps_ok || planned.len() + 1 < expected {
                problems.push(format!("{check}@{region}: {planned:?} (expected about {expected} runs)"));
            }
        }
    }
    assert!(problems.is_empty(), "{} pairs broke exactly-once:\n{}", problems.len(), problems.join("\n"));
}

/// The planned times of `region`'s pairs between `from` and `to` that have no result, in ms from `kill_ms`
/// (each pair's grid of planned times is read off its own results).
fn lost_runs(net: &Network, region: &str, kill_ms: i64, from: i64, to: i64) -> Vec<i64> {
    let mut lost = Vec::new();
    for i in 0..CHECKS {
        let planned: BTreeSet<i64> = net.planned(&format!("check-{i:02}"), region).into_iter().collect();
        let Some(first) = planned.first() else {
            lost.push(i64::MAX);
            continue;
        };
        let mut at = from + (first - from).rem_euclid(INTERVAL_MS);
        while at < to {
            if !planned.contains(&at) {
                lost.push(at - kill_ms);
            }
            at += INTERVAL_MS;
        }
    }
    lost.sort_unstable();
    lost
}

#[test]
fn the_network_spreads_checks_over_regions_and_survives_failures() {
    if !can_create_namespaces() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("checks.yaml"), config()).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut regions = Vec::new();
    for (name, delay) in REGIONS {
        let region = Region::create(&name[..2], Duration::from_millis(delay)).unwrap();
        serve_target(&region);
        let (host_ip, _) = region.control_link().unwrap();
        regions.push((name.to_owned(), region, host_ip));
    }
    let data = dir.path().join("data");
    for (name, _, _) in &regions {
        std::fs::write(dir.path().join(format!("{name}.token")), token(&data, &["--region", name])).unwrap();
    }
    let admin = token(&data, &["--admin"]);
    let mut net = Network { dir, port, regions, scheduler: None, probers: BTreeMap::new(), admin, client: None };
    net.start_scheduler();

    // Tokens: none, and another region's, are refused.
    let client = net.client.as_ref().unwrap();
    let anonymous = client.get(format!("https://127.0.0.1:{port}/api/v1/probers")).send().unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let wrong = net.regions[0]
        .1
        .prober_command(env!("CARGO_BIN_EXE_probenet"))
        .args(["prober", "--scheduler", &format!("https://{}:{port}", net.regions[0].2), "--region", "eu-west"])
        .arg("--token-file")
        .arg(net.dir.path().join("us-east.token"))
        .arg("--ca")
        .arg(net.data().join("ca.pem"))
        .args(["--name", "intruder"])
        .arg("--spool")
        .arg(net.dir.path().join("spool-intruder"))
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "a prober with another region's token must be refused");

    // Two probers per region.
    for (index, (region, _)) in REGIONS.iter().enumerate() {
        for n in 1..=2 {
            net.start_prober(index, &format!("{region}-{n}"));
        }
    }
    net.wait("six probers", Duration::from_secs(20), |net| {
        net.get("/api/v1/probers").and_then(|v| v.as_array().map(Vec::len)) == Some(6)
    });
    net.wait("every pair assigned", Duration::from_secs(10), |net| {
        let assignments = net.assignments();
        assignments.len() == CHECKS * REGIONS.len() && assignments.iter().all(|a| a["prober"].is_string())
    });

    // Several intervals: every pair runs exactly once per interval.
    let start = now_ms() + INTERVAL_MS;
    std::thread::sleep(Duration::from_millis((4 * INTERVAL_MS + 1_500) as u64));
    assert_exactly_once(&net, start, start + 4 * INTERVAL_MS);

    // Each region's connect phase shows its delay, and the order of the delays.
    let mut medians = Vec::new();
    for (region, delay) in REGIONS {
        let results = net.get(&format!("/api/v1/results?region={region}&limit=200")).unwrap();
        let mut connect: Vec<f64> = results
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| {
                r["outcome"]["phases"].as_array()?.iter().find(|p| p["name"] == "connect")?["seconds"].as_f64()
            })
            .collect();
        connect.sort_by(f64::total_cmp);
        assert!(!connect.is_empty(), "no results from {region}");
        assert!(connect[0] >= delay as f64 / 1000.0, "{region}: connect {} < {delay} ms", connect[0]);
        medians.push(connect[connect.len() / 2]);
    }
    assert!(medians[0] < medians[1] && medians[1] < medians[2], "medians {medians:?}");

    // SIGKILL one prober of eu-west: within a lease its pairs go to the other one.
    let victim = net.probers.get_mut("eu-west-1").unwrap();
    let kill_ms = now_ms();
    victim.kill().unwrap();
    victim.wait().unwrap();
    net.wait("eu-west-1's pairs to move", Duration::from_secs(3 + 5), |net| {
        let assignments = net.assignments();
        !assignments.iter().any(|a| a["prober"] == "eu-west-1")
            && assignments.iter().filter(|a| a["region"] == "eu-west" && a["prober"] == "eu-west-2").count() == CHECKS
    });
    // The runs the killed prober owed are made by the new owner (its catch-up): at most the runs planned within
    // a few seconds of the kill are lost, and none before or after that.
    std::thread::sleep(Duration::from_millis((2 * INTERVAL_MS + 500) as u64));
    let until = now_ms() - 2 * INTERVAL_MS;
    let lost = lost_runs(&net, "eu-west", kill_ms, kill_ms - 3 * INTERVAL_MS, until);
    eprintln!(
        "SIGKILL of a prober: {} of {} runs of eu-west in {} s around it lost, planned at {:?} ms from the kill",
        lost.len(),
        CHECKS as i64 * (until - kill_ms + 3 * INTERVAL_MS) / INTERVAL_MS,
        (until - kill_ms + 3 * INTERVAL_MS) / 1000,
        lost
    );
    assert!(
        lost.iter().all(|offset| offset.abs() <= 3_000),
        "runs lost beyond 3 s of the kill (ms from the kill): {lost:?}"
    );

    // A new prober takes its fair share (about half of eu-west's 50 pairs), no more.
    net.start_prober(0, "eu-west-3");
    net.wait("eu-west-3 to take a share", Duration::from_secs(15), |net| {
        net.assignments().iter().any(|a| a["prober"] == "eu-west-3")
    });
    let share = net.assignments().iter().filter(|a| a["prober"] == "eu-west-3").count();
    assert!((10..=40).contains(&share), "eu-west-3 took {share} of {CHECKS} pairs");

    // A scheduler restart loses no result: the probers spool while it is down and replay afterwards.
    std::thread::sleep(Duration::from_millis((2 * INTERVAL_MS) as u64));
    let outage_start = now_ms();
    let mut scheduler = net.scheduler.take().unwrap();
    scheduler.kill().unwrap();
    scheduler.wait().unwrap();
    std::thread::sleep(Duration::from_millis((2 * INTERVAL_MS) as u64));
    let outage_end = now_ms();
    net.start_scheduler();
    net.wait("the probers to come back", Duration::from_secs(20), |net| {
        net.get("/api/v1/probers").and_then(|v| v.as_array().map(Vec::len)) == Some(6)
    });
    std::thread::sleep(Duration::from_millis((3 * INTERVAL_MS) as u64));
    // Pairs of the two regions whose probers all stayed up have no gap over the outage.
    let mut problems = Vec::new();
    for i in 0..CHECKS {
        for region in ["us-east", "ap-south"] {
            let check = format!("check-{i:02}");
            let planned: Vec<i64> = net
                .planned(&check, region)
                .into_iter()
                .filter(|at| (outage_start - INTERVAL_MS..outage_end + INTERVAL_MS).contains(at))
                .collect();
            let continuous = planned.windows(2).all(|pair| pair[1] - pair[0] == INTERVAL_MS);
            if planned.len() < 3 || !continuous {
                problems.push(format!("{check}@{region}: {planned:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "results lost across the restart:\n{}", problems.join("\n"));
}
