//! Replicated schedulers for real: three `probenet scheduler --store postgres://...` processes on one PostgreSQL
//! (Debian's, started by the test in a temporary directory on a free port), two regions of two prober processes
//! each, talking to different replicas. Killing the leader with SIGKILL, killing the replica probers talk to, and
//! stopping PostgreSQL for 30 s lose no planned run and store none twice; an alert that fires before the leader
//! dies and one that starts as it dies are each paged once and resolved once (a real webhook receiver counts);
//! tokens made with `token create --store` work on every replica; remote write goes on from where the dead leader
//! stopped, and every stored run reaches VictoriaMetrics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use probenet_testkit::postgres::Postgres;
use serde_json::Value;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::util::processes::{self, Kill, free_port, notifications, now_ms, receiver};

const REGIONS: [&str; 2] = ["ra", "rb"];
const CHECKS: [&str; 4] = ["home", "api", "login", "search"];
const INTERVAL_MS: i64 = 1_000;
/// The replicas' leader lease.
const LEASE_S: u64 = 2;

/// The files replicas share: the CA and the server certificate (copies, as an install makes them).
const SHARED_FILES: [&str; 4] = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"];

struct Cluster {
    dir: tempfile::TempDir,
    pg: Postgres,
    url: String,
    checks: PathBuf,
    ports: Vec<u16>,
    replicas: Vec<Option<Kill>>,
    probers: BTreeMap<String, Kill>,
    admin: String,
    client: Option<reqwest::blocking::Client>,
}

impl Cluster {
    fn new(pg: Postgres, target: u16, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let checks = dir.path().join("checks.yaml");
        let mut yaml = String::from("scheduling: {lease: 4s}\nregions:\n  ra: {}\n  rb: {}\n");
        yaml.push_str(&format!(
            "defaults: {{interval: {INTERVAL_MS}ms, timeout: 800ms, regions: [ra, rb]}}\nchecks:\n"
        ));
        for check in CHECKS {
            yaml.push_str(&format!("  - name: {check}\n    http: {{url: \"http://127.0.0.1:{target}/{check}\"}}\n"));
        }
        yaml.push_str(extra);
        std::fs::write(&checks, yaml).unwrap();
        let url = format!("{}?application_name=probenet-test", pg.url());
        let ports = (0..3).map(|_| free_port()).collect();
        Self {
            dir,
            pg,
            url,
            checks,
            ports,
            replicas: Vec::new(),
            probers: BTreeMap::new(),
            admin: String::new(),
            client: None,
        }
    }

    fn data(&self, index: usize) -> PathBuf {
        self.dir.path().join(format!("data-{index}"))
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join(format!("{name}.log"))).unwrap()
    }

    /// `probenet token create --store URL SCOPE...`: the token.
    fn token(&self, scope: &[&str]) -> String {
        let output = processes::command().args(["token", "create", "--store", &self.url]).args(scope).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().trim().to_owned()
    }

    fn start_replica(&mut self, index: usize) {
        let data = self.data(index);
        if index > 0 && !data.exists() {
            std::fs::create_dir_all(&data).unwrap();
            for file in SHARED_FILES {
                std::fs::copy(self.data(0).join(file), data.join(file)).unwrap();
            }
        }
        let child = processes::command()
            .args(["scheduler", "-c"])
            .arg(&self.checks)
            .args(["--listen", &format!("127.0.0.1:{}", self.ports[index]), "--data"])
            .arg(&data)
            .args(["--store", &self.url, "--replica-name", &format!("r{index}"), "--lease", &LEASE_S.to_string()])
            .arg("--artifacts-in-database")
            .env("HOOK_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::from(self.log(&format!("replica-{index}"))))
            .spawn()
            .unwrap();
        while self.replicas.len() <= index {
            self.replicas.push(None);
        }
        self.replicas[index] = Some(Kill(child));
        let ca = self.data(0).join("ca.pem");
        self.wait("the replica's certificate", Duration::from_secs(20), |_| ca.exists());
        if self.client.is_none() {
            let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
            let client = reqwest::blocking::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(5));
            self.client = Some(client.build().unwrap());
        }
        self.wait("the replica to be healthy", Duration::from_secs(20), |cluster| cluster.healthy(index));
    }

    fn start_prober(&mut self, region: &str, name: &str, first: usize) {
        let token_file = self.dir.path().join(format!("{region}.token"));
        // Each prober lists the replicas starting with another one, so they talk to different replicas.
        let urls: Vec<String> = (0..3).map(|i| format!("https://localhost:{}", self.ports[(first + i) % 3])).collect();
        let child = processes::command()
            .args(["prober", "--scheduler", &urls.join(","), "--region", region, "--token-file"])
            .arg(&token_file)
            .arg("--ca")
            .arg(self.data(0).join("ca.pem"))
            .args(["--name", name, "--spool"])
            .arg(self.dir.path().join(format!("spool-{name}")))
            .stdout(Stdio::null())
            .stderr(Stdio::from(self.log(name)))
            .spawn()
            .unwrap();
        self.probers.insert(name.to_owned(), Kill(child));
    }

    fn get(&self, index: usize, path: &str) -> Option<(u16, Value)> {
        let url = format!("https://localhost:{}{path}", self.ports[index]);
        let response = self.client.as_ref()?.get(url).bearer_auth(&self.admin).send().ok()?;
        let status = response.status().as_u16();
        let text = response.text().ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// Who holds each pair, as replica `index` answers: (check, region, prober), sorted.
    fn assignments(&self, index: usize) -> Vec<(String, String, String)> {
        let Some((200, Value::Array(rows))) = self.get(index, "/api/v1/assignments") else { return Vec::new() };
        let mut held: Vec<(String, String, String)> = rows
            .iter()
            .map(|row| {
                let field = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
                (field("check"), field("region"), field("prober"))
            })
            .collect();
        held.sort();
        held
    }

    fn healthy(&self, index: usize) -> bool {
        self.get(index, "/healthz").is_some_and(|(status, _)| status == 200)
    }

    fn alive(&self) -> Vec<usize> {
        (0..self.replicas.len()).filter(|index| self.replicas[*index].is_some()).collect()
    }

    /// The replica every live replica names as leader.
    fn leader(&self) -> Option<usize> {
        let mut named = None;
        for index in self.alive() {
            let (status, view) = self.get(index, "/api/v1/cluster")?;
            if status != 200 {
                return None;
            }
            let leader = view["leader"].as_str()?.to_owned();
            if named.as_ref().is_some_and(|known| *known != leader) {
                return None;
            }
            named = Some(leader);
        }
        let index: usize = named?.strip_prefix('r')?.parse().ok()?;
        self.replicas.get(index)?.as_ref().map(|_| index)
    }

    fn kill_replica(&mut self, index: usize) {
        // Dropping a `Kill` sends SIGKILL and reaps the process.
        drop(self.replicas[index].take());
    }

    /// Planned times of a pair's stored results, as any live replica answers.
    fn planned(&self, check: &str, region: &str) -> Vec<i64> {
        let index = self.alive()[0];
        let path = format!("/api/v1/results?check={check}&region={region}&limit=1000");
        let Some((200, Value::Array(results))) = self.get(index, &path) else { return Vec::new() };
        let mut planned: Vec<i64> = results.iter().filter_map(|r| r["planned_at_ms"].as_i64()).collect();
        planned.sort_unstable();
        planned
    }

    fn wait(&self, what: &str, limit: Duration, done: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            if start.elapsed() >= limit {
                self.print_logs();
                panic!("timed out after {limit:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn print_logs(&self) {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("---- {} ----\n{}", path.display(), lines[lines.len().saturating_sub(40)..].join("\n"));
        }
    }

    /// Every pair ran every planned time from `from` to `to` exactly once: no gap, no duplicate.
    fn assert_every_run_once(&self, from: i64, to: i64, what: &str) {
        let mut problems = Vec::new();
        for check in CHECKS {
            for region in REGIONS {
                let planned: Vec<i64> =
                    self.planned(check, region).into_iter().filter(|at| (from..to).contains(at)).collect();
                let expected = usize::try_from((to - from) / INTERVAL_MS).unwrap_or(0);
                let steps_ok = planned.windows(2).all(|pair| pair[1] - pair[0] == INTERVAL_MS);
                if !steps_ok || planned.len() + 1 < expected {
                    problems
                        .push(format!("{check}@{region}: {} runs (expected {expected}): {planned:?}", planned.len()));
                }
            }
        }
        if !problems.is_empty() {
            self.print_logs();
            panic!("{what}: {} pairs lost or repeated runs:\n{}", problems.len(), problems.join("\n"));
        }
    }

    /// Waits until every pair's runs from `from` to `to` are stored (the spool catching up), or fails.
    fn wait_every_run_once(&self, from: i64, to: i64, what: &str) {
        let start = Instant::now();
        loop {
            let complete = CHECKS.iter().all(|check| {
                REGIONS.iter().all(|region| {
                    let runs = self.planned(check, region).into_iter().filter(|at| (from..to).contains(at)).count();
                    runs + 1 >= usize::try_from((to - from) / INTERVAL_MS).unwrap_or(0)
                })
            });
            if complete || start.elapsed() > Duration::from_secs(30) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        self.assert_every_run_once(from, to, what);
    }
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|line| line.starts_with(name) && !line.starts_with('#'))?.rsplit(' ').next()?.parse().ok()
}

/// The secret of the alert test's webhook.
const SECRET: &str = "hook-secret-of-the-ha-test";

/// Paths of the target that answer 500 while their flag is down (`/flaky`, `/late`); every other path answers
/// 200. Bounded: 200,000 connections.
#[derive(Default)]
struct Target {
    flaky_up: AtomicBool,
    late_up: AtomicBool,
}

fn serve_target(listener: std::net::TcpListener, target: Arc<Target>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200_000) {
            let Ok(mut stream) = stream else { continue };
            let target = target.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let read = stream.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..read]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let up = match path {
                    "/flaky" => target.flaky_up.load(Ordering::SeqCst),
                    "/late" => target.late_up.load(Ordering::SeqCst),
                    _ => true,
                };
                let status = if up { "200 OK" } else { "500 Internal Server Error" };
                let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            });
        }
    });
}

fn start(test: &str) -> Option<Cluster> {
    start_with(test, "", Arc::new(Target::default())).map(|(cluster, _)| cluster)
}

fn start_with(test: &str, extra: &str, target: Arc<Target>) -> Option<(Cluster, Arc<Target>)> {
    let pg = Postgres::start_or_skip(test)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target_port = listener.local_addr().unwrap().port();
    serve_target(listener, target.clone());
    let extra = extra.replace("TARGET", &target_port.to_string());
    let mut cluster = Cluster::new(pg, target_port, &extra);
    // The first replica makes the CA; the tokens are made in the database, as with a running cluster.
    cluster.start_replica(0);
    cluster.admin = cluster.token(&["--admin"]);
    for region in REGIONS {
        let token = cluster.token(&["--region", region]);
        std::fs::write(cluster.dir.path().join(format!("{region}.token")), token).unwrap();
    }
    cluster.start_replica(1);
    cluster.start_replica(2);
    for (index, (region, name)) in [("ra", "ra-1"), ("ra", "ra-2"), ("rb", "rb-1"), ("rb", "rb-2")].iter().enumerate() {
        cluster.start_prober(region, name, index % 3);
    }
    // Results of every pair arrive.
    cluster.wait("results of every pair", Duration::from_secs(30), |cluster| {
        CHECKS.iter().all(|check| REGIONS.iter().all(|region| cluster.planned(check, region).len() >= 3))
    });
    Some((cluster, target))
}

#[test]
fn three_replicas_lose_no_run_when_the_leader_or_a_prober_s_replica_is_killed() {
    let Some(mut cluster) = start("three_replicas_lose_no_run_when_the_leader_or_a_prober_s_replica_is_killed") else {
        return;
    };
    // Every pair is held by exactly one prober, whichever replica answers.
    let held = cluster.assignments(0);
    assert_eq!(held.len(), CHECKS.len() * REGIONS.len(), "{held:?}");
    for index in 1..3 {
        assert_eq!(cluster.assignments(index), held, "replica r{index} serves the same assignment");
    }

    // SIGKILL of the leader: a new one within a lease and a renewal; no run lost, none twice.
    let from = now_ms() - 3 * INTERVAL_MS;
    let leader = cluster.leader().expect("a leader");
    let (_, metrics) = cluster.get(leader, "/metrics").unwrap();
    assert_eq!(metric(metrics.as_str().unwrap_or_default(), "probenet_scheduler_leader"), Some(1.0));
    let killed_at = Instant::now();
    cluster.kill_replica(leader);
    cluster.wait("a new leader", Duration::from_secs(3 * LEASE_S), |cluster| cluster.leader().is_some());
    let takeover = killed_at.elapsed();
    assert!(takeover < Duration::from_millis(LEASE_S * 1000 * 3 / 2), "takeover took {takeover:?}");
    let next = cluster.leader().unwrap();
    let (_, metrics) = cluster.get(next, "/metrics").unwrap();
    assert_eq!(metric(metrics.as_str().unwrap_or_default(), "probenet_scheduler_leader"), Some(1.0));
    std::thread::sleep(Duration::from_secs(5));
    let to = now_ms() - 2 * INTERVAL_MS;
    cluster.wait_every_run_once(from, to, "across the leader's death");
    for index in cluster.alive() {
        assert_eq!(cluster.assignments(index), held, "the same probers hold the same pairs after the failover");
    }
    eprintln!("takeover after SIGKILL of the leader: {takeover:?}");

    // SIGKILL of another replica (probers talking to it move on); then it comes back and rejoins.
    let from = now_ms() - 2 * INTERVAL_MS;
    let victim = cluster.alive().into_iter().find(|index| *index != next).unwrap();
    cluster.kill_replica(victim);
    std::thread::sleep(Duration::from_secs(5));
    let to = now_ms() - 2 * INTERVAL_MS;
    cluster.wait_every_run_once(from, to, "across the death of a prober's replica");
    cluster.start_replica(victim);
    cluster.start_replica(leader);
    cluster.wait("three members", Duration::from_secs(10), |cluster| {
        cluster
            .get(victim, "/api/v1/cluster")
            .is_some_and(|(_, view)| view["members"].as_array().is_some_and(|members| members.len() == 3))
    });

    // A token made and revoked against the running cluster: every replica takes it, then every one refuses it.
    let reader = cluster.token(&["--admin"]);
    let store = |args: &[&str]| {
        let output = processes::command().args(["token"]).args(args).args(["--store", &cluster.url]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let status_with = |index: usize, token: &str| {
        let url = format!("https://localhost:{}/api/v1/version", cluster.ports[index]);
        cluster.client.as_ref().unwrap().get(url).bearer_auth(token).send().map_or(0, |r| r.status().as_u16())
    };
    for index in 0..3 {
        assert_eq!(status_with(index, &reader), 200, "replica r{index} takes a token made a moment ago");
    }
    let listed = store(&["list"]);
    assert!(!listed.contains(&reader), "a token is never listed: {listed}");
    let id = listed.lines().last().and_then(|line| line.split_whitespace().next()).unwrap().to_owned();
    assert!(store(&["revoke", &id]).starts_with(&format!("revoked {id}")));
    assert!(!store(&["list"]).contains(&id), "revoked tokens are not listed");
    cluster.wait("every replica refuses the revoked token", Duration::from_secs(5), |cluster| {
        (0..3).all(|index| {
            let url = format!("https://localhost:{}/api/v1/version", cluster.ports[index]);
            cluster.client.as_ref().unwrap().get(url).bearer_auth(&reader).send().is_ok_and(|r| r.status() == 401)
        })
    });
}

#[test]
fn postgresql_down_for_30_s_loses_no_result_and_stores_none_twice() {
    let Some(cluster) = start("postgresql_down_for_30_s_loses_no_result_and_stores_none_twice") else { return };
    let from = now_ms() - 2 * INTERVAL_MS;
    cluster.pg.stop_immediate();
    let stopped = Instant::now();
    // Every replica reports itself unhealthy while the database is away; probers spool.
    cluster.wait("every replica unhealthy", Duration::from_secs(10), |cluster| {
        cluster.alive().iter().all(|index| cluster.get(*index, "/healthz").is_some_and(|(status, _)| status == 503))
    });
    std::thread::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed()));
    cluster.pg.start();
    cluster.wait("every replica healthy again", Duration::from_secs(20), |cluster| {
        cluster.alive().iter().all(|index| cluster.healthy(*index))
    });
    cluster.wait("a leader again", Duration::from_secs(3 * LEASE_S), |cluster| cluster.leader().is_some());
    std::thread::sleep(Duration::from_secs(3));
    let to = now_ms() - 2 * INTERVAL_MS;
    cluster.wait_every_run_once(from, to, "across 30 s without PostgreSQL");
}

#[test]
fn an_alert_is_sent_once_and_resolved_once_across_a_failover() {
    let (hook_port, got) = receiver();
    let extra = format!(
        "  - name: flaky\n    http: {{url: \"http://127.0.0.1:TARGET/flaky\"}}\n\
         \x20 - name: late\n    http: {{url: \"http://127.0.0.1:TARGET/late\"}}\n\
         notifiers:\n  oncall: {{webhook: {{url: \"http://127.0.0.1:{hook_port}/hook\", secret: \"${{env:HOOK_SECRET}}\"}}}}\n\
         alerts:\n\
         \x20 - {{name: flaky-down, checks: [flaky], failed_regions: 2, for: 2s, resolve_after: 3s, notify: [oncall]}}\n\
         \x20 - {{name: late-down, checks: [late], failed_regions: 2, for: 2s, resolve_after: 3s, notify: [oncall]}}\n"
    );
    let target = Arc::new(Target { flaky_up: AtomicBool::new(false), late_up: AtomicBool::new(true) });
    let Some((mut cluster, target)) =
        start_with("an_alert_is_sent_once_and_resolved_once_across_a_failover", &extra, target)
    else {
        return;
    };
    let sent = |alert: &str, status: &str| {
        notifications(&got, SECRET).iter().filter(|n| n["alert"] == alert && n["status"] == status).count()
    };
    // `flaky` is down in both regions: one page.
    cluster.wait("the page of flaky", Duration::from_secs(30), |_| sent("flaky-down", "firing") == 1);

    // `late` goes down and the leader is killed at once: the new leader pages for it once, and does not page
    // again for flaky.
    target.late_up.store(false, Ordering::SeqCst);
    let leader = cluster.leader().expect("a leader");
    cluster.kill_replica(leader);
    cluster.wait("a new leader", Duration::from_secs(3 * LEASE_S), |cluster| cluster.leader().is_some());
    cluster.wait("the page of late", Duration::from_secs(30), |_| sent("late-down", "firing") >= 1);

    // Both recover: one resolve each.
    target.flaky_up.store(true, Ordering::SeqCst);
    target.late_up.store(true, Ordering::SeqCst);
    cluster.wait("both resolves", Duration::from_secs(30), |_| {
        sent("flaky-down", "resolved") >= 1 && sent("late-down", "resolved") >= 1
    });
    std::thread::sleep(Duration::from_secs(4));
    let all = notifications(&got, SECRET);
    let summary: Vec<String> = all
        .iter()
        .map(|n| format!("{} {}", n["alert"].as_str().unwrap_or(""), n["status"].as_str().unwrap_or("")))
        .collect();
    for (alert, status) in
        [("flaky-down", "firing"), ("flaky-down", "resolved"), ("late-down", "firing"), ("late-down", "resolved")]
    {
        assert_eq!(sent(alert, status), 1, "{alert} {status} once across the failover: {summary:?}");
    }
    assert_eq!(all.len(), 4, "{summary:?}");
}

/// Every `probe_success` sample VictoriaMetrics holds, as (check, region, unix ms).
fn exported(vm: &str) -> std::collections::BTreeSet<(String, String, i64)> {
    let url = format!("{vm}/api/v1/export?match[]=probe_success");
    let text = reqwest::blocking::get(url).and_then(|response| response.text()).unwrap_or_default();
    let mut samples = std::collections::BTreeSet::new();
    for row in text.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()) {
        let label = |name: &str| row["metric"][name].as_str().unwrap_or_default().to_owned();
        for at in row["timestamps"].as_array().into_iter().flatten().filter_map(Value::as_i64) {
            samples.insert((label("job"), label("probe"), at));
        }
    }
    samples
}

#[test]
fn remote_write_goes_on_from_the_shared_position_across_a_failover() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vm = runtime.block_on(probenet_testkit::stores::victoria_metrics());
    let extra = format!("exporters:\n  - remote_write: {{url: \"{}/api/v1/write\"}}\n", vm.base);
    let test = "remote_write_goes_on_from_the_shared_position_across_a_failover";
    let Some((mut cluster, _)) = start_with(test, &extra, Arc::new(Target::default())) else { return };
    // The stored runs of every pair, with when they started (the samples' time).
    let stored = |cluster: &Cluster| {
        let index = cluster.alive()[0];
        let mut runs = std::collections::BTreeSet::new();
        for check in CHECKS {
            for region in REGIONS {
                let path = format!("/api/v1/results?check={check}&region={region}&limit=1000");
                if let Some((200, Value::Array(results))) = cluster.get(index, &path) {
                    for result in results {
                        let at = result["started_at_ms"].as_i64().unwrap_or_default();
                        runs.insert((check.to_owned(), region.to_owned(), at));
                    }
                }
            }
        }
        runs
    };
    // The leader delivers (about 10 s behind, once results are settled in the database).
    cluster.wait("samples in VictoriaMetrics", Duration::from_secs(40), |_| exported(&vm.base).len() >= 8);
    let leader = cluster.leader().expect("a leader");
    cluster.kill_replica(leader);
    cluster.wait("a new leader", Duration::from_secs(3 * LEASE_S), |cluster| cluster.leader().is_some());
    std::thread::sleep(Duration::from_secs(5));
    // Every result stored up to now, before and after the failover, reaches VictoriaMetrics.
    let runs = stored(&cluster);
    assert!(runs.len() >= 8 * 10, "{} runs stored", runs.len());
    let start = Instant::now();
    let missing = loop {
        let have = exported(&vm.base);
        let missing: Vec<_> = runs.iter().filter(|run| !have.contains(*run)).cloned().collect();
        if missing.is_empty() || start.elapsed() > Duration::from_secs(60) {
            break missing;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    if !missing.is_empty() {
        cluster.print_logs();
    }
    assert!(
        missing.is_empty(),
        "{} of {} stored runs never reached VictoriaMetrics: {missing:?}",
        missing.len(),
        runs.len()
    );
}
