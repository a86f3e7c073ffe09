//! Three scheduler replicas on one PostgreSQL: one leader publishes the assignment, every replica serves the same
//! one to the probers that talk to it, and the loss of the leader changes neither who runs what nor the answers;
//! a maintenance window added through one replica's API is in force on the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use probenet_checks::wire::{Assignments, PROTOCOL_VERSION};
use probenet_scheduler::cluster::ReplicaOptions;
use probenet_scheduler::tokens::{self, Scope};
use probenet_scheduler::{ClusterOptions, Options, Running, TlsMode, ha};
use serde_json::{Value, json};

use crate::util::database;

const CONFIG: &str = "\
regions:
  eu: {}
  us: {}
defaults:
  interval: 10s
  timeout: 5s
  regions: [eu, us]
checks:
  - name: home
    http: {url: 'http://127.0.0.1:9/'}
  - name: api
    http: {url: 'http://127.0.0.1:9/api'}
  - name: login
    http: {url: 'http://127.0.0.1:9/login'}
  - name: eu-only
    regions: [eu]
    tcp: {target: '127.0.0.1:9'}
";

/// The lease of these tests: a dead leader is replaced within it.
const LEASE: Duration = Duration::from_secs(2);

pub(crate) struct Replica {
    pub(crate) running: Option<Running>,
    base: String,
}

pub(crate) struct Cluster {
    _dir: tempfile::TempDir,
    client: reqwest::Client,
    pub(crate) replicas: Vec<Replica>,
    pub(crate) tokens: BTreeMap<&'static str, String>,
    pub(crate) admin: String,
}

/// Copies the CA, the server certificate and the tokens of the first replica's data directory: replicas share
/// them (as an install does).
fn copy_shared(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

fn options(data: PathBuf, config: PathBuf, url: &str, name: &str, artifacts_in_database: bool) -> Options {
    Options {
        config: vec![config],
        listen: "127.0.0.1:0".parse().unwrap(),
        data,
        tls: TlsMode::Auto,
        sans: Vec::new(),
        dashboard_url: None,
        metrics_listen: None,
        limits: probenet_scheduler::server::Limits::for_this_process(),
        cluster: Some(ClusterOptions {
            database: ha::Database::parse(url, None, None).unwrap(),
            pool_size: 4,
            replica: ReplicaOptions { name: name.to_owned(), url: String::new(), lease: LEASE },
        }),
        store_dir: None,
        artifacts_in_database,
        per_check_metrics: false,
    }
}

impl Cluster {
    async fn start(url: &str, count: usize) -> Self {
        Self::start_with(url, count, |_| String::new()).await
    }

    /// Like [`Cluster::start`], with more config (made from the test's directory) appended; without any, the
    /// replicas keep artifacts in the database.
    pub(crate) async fn start_with(url: &str, count: usize, extra: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("checks.yaml");
        let extra = extra(dir.path());
        let in_database = extra.is_empty();
        std::fs::write(&config, format!("{CONFIG}{extra}")).unwrap();
        let first = dir.path().join("data-0");
        let mut tokens = BTreeMap::new();
        tokens.insert("eu", tokens::create(&first, &Scope::Region("eu".into())).unwrap());
        tokens.insert("us", tokens::create(&first, &Scope::Region("us".into())).unwrap());
        let admin = tokens::create(&first, &Scope::Admin).unwrap();
        let mut replicas = Vec::new();
        let mut ca = None;
        for index in 0..count {
            let data = dir.path().join(format!("data-{index}"));
            if index > 0 {
                copy_shared(&first, &data);
            }
            let running =
                probenet_scheduler::start(options(data, config.clone(), url, &format!("r{index}"), in_database))
                    .await
                    .unwrap();
            ca.get_or_insert_with(|| running.ca_pem().unwrap().to_owned());
            let base = format!("https://localhost:{}", running.addr().port());
            replicas.push(Replica { running: Some(running), base });
        }
        let ca = reqwest::Certificate::from_pem(ca.unwrap().as_bytes()).unwrap();
        let client = reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(30)).build().unwrap();
        Self { _dir: dir, client, replicas, tokens, admin }
    }

    pub(crate) async fn call(
        &self,
        replica: usize,
        method: &str,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.replicas[replica].base);
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
            }
            Err(error) => (0, Value::String(error.to_string())),
        }
    }

    /// The body of a GET without a token (the dashboard is open on loopback), as bytes.
    pub(crate) async fn bytes(&self, replica: usize, path: &str) -> (u16, Vec<u8>) {
        let url = format!("{}{path}", self.replicas[replica].base);
        match self.client.get(url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.bytes().await.map(|body| body.to_vec()).unwrap_or_default())
            }
            Err(_) => (0, Vec::new()),
        }
    }

    pub(crate) async fn register(&self, replica: usize, region: &'static str, name: &str) {
        let body =
            json!({"protocol": PROTOCOL_VERSION, "name": name, "region": region, "version": "test", "kinds": []});
        let (status, answer) = self.call(replica, "POST", &self.tokens[region], "/v1/register", Some(body)).await;
        assert_eq!(status, 200, "register {name} at r{replica}: {answer}");
    }

    async fn assignments(&self, replica: usize, region: &'static str, name: &str) -> Option<Assignments> {
        let path = format!("/v1/assignments?prober={name}&generation=0");
        let (status, answer) = self.call(replica, "GET", &self.tokens[region], &path, None).await;
        (status == 200).then(|| serde_json::from_value(answer).unwrap())
    }

    async fn cluster(&self, replica: usize) -> Option<Value> {
        let (status, answer) = self.call(replica, "GET", &self.admin, "/api/v1/cluster", None).await;
        (status == 200).then_some(answer)
    }

    fn alive(&self) -> Vec<usize> {
        (0..self.replicas.len()).filter(|index| self.replicas[*index].running.is_some()).collect()
    }

    /// The leader's index, once every live replica names the same one.
    async fn leader(&self) -> Option<usize> {
        let mut named = None;
        for index in self.alive() {
            let view = self.cluster(index).await?;
            let leader = view["leader"].as_str()?.to_owned();
            if named.as_ref().is_some_and(|known| *known != leader) {
                return None;
            }
            named = Some(leader);
        }
        let name = named?;
        let index: usize = name.strip_prefix('r')?.parse().ok()?;
        self.replicas[index].running.is_some().then_some(index)
    }

    /// Every prober's assignment as each live replica answers it, once all agree on one generation that
    /// covers every prober: (generation, pairs by prober).
    pub(crate) async fn agreed(
        &self,
        probers: &[(&'static str, &str)],
    ) -> Option<(u64, BTreeMap<String, Vec<String>>)> {
        let mut agreed: Option<(u64, BTreeMap<String, Vec<String>>)> = None;
        for replica in self.alive() {
            let mut by_prober = BTreeMap::new();
            let mut generation = None;
            for (region, name) in probers {
                let answer = self.assignments(replica, region, name).await?;
                if generation.is_some_and(|known| known != answer.generation) {
                    return None;
                }
                generation = Some(answer.generation);
                let mut pairs: Vec<String> =
                    answer.assigned.iter().map(|a| format!("{}/{}", a.check, a.region)).collect();
                pairs.sort();
                by_prober.insert(format!("{region}/{name}"), pairs);
            }
            let this = (generation?, by_prober);
            match &agreed {
                Some(known) if *known != this => return None,
                _ => agreed = Some(this),
            }
        }
        agreed
    }

    /// Kills replica `index` as `kill -9` would: no step-down, no release, its tasks just end.
    fn crash(&mut self, index: usize) {
        self.replicas[index].running.take().unwrap().crash();
    }
}

pub(crate) async fn within<T>(what: &str, limit: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every (check, region) pair of the config is held by exactly one prober.
fn assert_each_pair_once(by_prober: &BTreeMap<String, Vec<String>>) {
    let mut held: Vec<&String> = by_prober.values().flatten().collect();
    held.sort();
    let expected = ["api/eu", "api/us", "eu-only/eu", "home/eu", "home/us", "login/eu", "login/us"];
    assert_eq!(held, expected, "each pair held once: {by_prober:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_serve_one_assignment_and_outlive_their_leader() {
    let Some(pg) = database("three_replicas_serve_one_assignment_and_outlive_their_leader").await else { return };
    let mut cluster = Cluster::start(&pg.url(), 3).await;

    let leader = within("one leader named by every replica", Duration::from_secs(10), || cluster.leader()).await;
    // Replicas announce themselves every 2 s: on a busy machine the last one may come a round after the leader.
    let view = within("every replica announced", Duration::from_secs(10), || async {
        let view = cluster.cluster(0).await?;
        (view["members"].as_array()?.len() == 3).then_some(view)
    })
    .await;
    let members: Vec<&str> = view["members"].as_array().unwrap().iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(members, ["r0", "r1", "r2"], "{view}");
    assert_eq!(view["members"].as_array().unwrap().iter().filter(|m| m["leader"] == true).count(), 1, "{view}");

    // The dashboard's Probers page lists the replicas, the leader marked.
    let schedulers = within("the dashboard lists three replicas", Duration::from_secs(10), || async {
        let (status, page) = cluster.call(1, "GET", "", "/api/ui/probers", None).await;
        let schedulers = page["schedulers"].as_array().cloned().unwrap_or_default();
        (status == 200 && schedulers.len() == 3).then_some(schedulers)
    })
    .await;
    let leaders: Vec<&str> =
        schedulers.iter().filter(|s| s["leader"] == true).filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(leaders, [format!("r{leader}")], "{schedulers:?}");

    // Two regions of two probers, each registered with another replica.
    let probers = [("eu", "eu-1"), ("eu", "eu-2"), ("us", "us-1"), ("us", "us-2")];
    for (index, (region, name)) in probers.iter().enumerate() {
        cluster.register(index % 3, region, name).await;
    }
    let (before, by_prober) =
        within("every replica serves one assignment", Duration::from_secs(10), || cluster.agreed(&probers)).await;
    assert_each_pair_once(&by_prober);

    // The leader dies: another takes over within a lease (and a renewal period), and the assignment stays.
    let crashed_at = Instant::now();
    cluster.crash(leader);
    let next = within("a new leader", LEASE * 3, || cluster.leader()).await;
    let takeover = crashed_at.elapsed();
    assert_ne!(next, leader);
    assert!(takeover <= LEASE + LEASE / 2, "takeover took {takeover:?}");
    let (after, same) =
        within("the survivors serve the assignment", Duration::from_secs(5), || cluster.agreed(&probers)).await;
    assert_eq!(same, by_prober, "the same probers hold the same pairs across the failover");
    assert!(after >= before);

    // The new leader publishes what changes: a prober leaving moves its pairs to the other one of its region.
    let survivor = cluster.alive()[0];
    let body = json!({"name": "eu-2", "region": "eu"});
    let (status, _) = cluster.call(survivor, "POST", &cluster.tokens["eu"], "/v1/deregister", Some(body)).await;
    assert_eq!(status, 204);
    let left = [("eu", "eu-1"), ("us", "us-1"), ("us", "us-2")];
    let (moved, by_prober) = within("the pairs of eu-2 move", Duration::from_secs(5), || async {
        let (generation, by_prober) = cluster.agreed(&left).await?;
        (generation > after).then_some((generation, by_prober))
    })
    .await;
    assert_each_pair_once(&by_prober);
    assert_eq!(by_prober["eu/eu-1"].len(), 4, "eu-1 holds every eu pair now: {by_prober:?}");
    assert!(moved > after);
    let (status, _) = cluster.call(survivor, "GET", &cluster.tokens["eu"], "/v1/assignments?prober=eu-2", None).await;
    assert_eq!(status, 404, "a deregistered prober is unknown to every replica");

    // A pause added through the API of one replica is listed by the other, and reaches eu's probers through it.
    let (one, other) = (cluster.alive()[0], cluster.alive()[1]);
    let start = probenet_scheduler::time::rfc3339_ms(probenet_scheduler::time::now_ms() - 1_000);
    let window = json!({"name": "eu-move", "checks": ["eu-only"], "start": start, "duration": "1h", "mode": "pause"});
    let (status, created) = cluster.call(one, "POST", &cluster.admin, "/api/v1/maintenance", Some(window)).await;
    assert_eq!(status, 201, "{created}");
    within("the other replica lists the window", Duration::from_secs(10), || async {
        let (_, listed) = cluster.call(other, "GET", &cluster.admin, "/api/v1/maintenance", None).await;
        let windows = listed["windows"].as_array()?;
        windows.iter().any(|window| window["name"] == "eu-move" && window["source"] == "api").then_some(())
    })
    .await;
    cluster.register(other, "eu", "eu-1").await;
    within("eu's view from the other replica pauses eu-only", Duration::from_secs(10), || async {
        let view = cluster.assignments(other, "eu", "eu-1").await?;
        let config = probenet_checks::config::load_sources(&view.config).ok()?;
        config.maintenance.iter().any(|window| window.name == "eu-move" && window.checks == ["eu-only"]).then_some(())
    })
    .await;

    for replica in &mut cluster.replicas {
        if let Some(running) = replica.running.take() {
            running.shutdown().await;
        }
    }
}
