//! `probenet status`: each component's health and version, the supervisor's view of it, the last result time
//! per region (from the scheduler's API) and the cost of the configured checks. Never shows a secret: tokens and
//! passwords are only ever read from their files into request headers.

use std::collections::BTreeMap;
use std::fmt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::apply::{admin_get, admin_get_at, admin_read, api_of, check_health};
use crate::http::Http;
use crate::layout::Layout;
use crate::local::{Component, Role};
use crate::plan::Plan;
use crate::supervise::{ComponentState, State};

/// One component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatus {
    /// Its name.
    pub name: String,
    /// Whether it answers its health check, or why not.
    pub health: Result<(), String>,
    /// Its version: what the running process reports (probenet's scheduler and probers, through the
    /// scheduler's API), else the installed program's.
    pub version: String,
    /// What the supervisor says of it (without systemd).
    pub supervised: Option<ComponentState>,
    /// A scheduler replica's part: `leader` or `follower` (from `/api/v1/cluster`).
    pub part: Option<String>,
}

/// The replicated schedulers as `/api/v1/cluster` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The leader's name, if there is one.
    pub leader: Option<String>,
    /// The lease generation.
    pub lease_generation: Option<i64>,
    /// The replicas it lists (name, version).
    pub members: Vec<(String, String)>,
}

/// One region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionStatus {
    /// The region.
    pub region: String,
    /// When its latest result was planned (unix ms), if any.
    pub last_result_ms: Option<i64>,
    /// Its check pairs by state (`up`, `down`, `degraded`, `unknown`).
    pub states: BTreeMap<String, usize>,
}

/// What `probenet status` shows.
#[derive(Debug, Clone)]
pub struct Status {
    /// The stack's name.
    pub stack: String,
    /// Every component, in start order.
    pub components: Vec<ComponentStatus>,
    /// Every region, or why they could not be read.
    pub regions: Result<Vec<RegionStatus>, String>,
    /// The cost of the configured checks.
    pub cost: crate::cost::Cost,
    /// The replicated schedulers (None with one scheduler on its embedded store), or why they could not be read.
    pub cluster: Option<Result<ClusterStatus, String>>,
}

impl Status {
    /// Whether every component is healthy.
    pub fn healthy(&self) -> bool {
        self.components.iter().all(|component| component.health.is_ok())
    }
}

/// The first line a program prints for its version flag, or its package's version.
fn version(component: &Component) -> String {
    let Some(program) = component.exec.first() else { return String::new() };
    let package = match component.role {
        Role::Store | Role::Vmalert | Role::Backup => Some("victoria-metrics"),
        Role::Alertmanager => Some("prometheus-alertmanager"),
        Role::Database => return package_version(crate::local::POSTGRES_PACKAGE),
        Role::Scheduler | Role::Prober { .. } => None,
    };
    let output = Command::new(program).arg("--version").stdin(Stdio::null()).stderr(Stdio::piped()).output();
    let text =
        output.map(|out| format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    let line = text.unwrap_or_default().lines().next().unwrap_or_default().trim().to_owned();
    if !line.is_empty() && !line.contains("flag provided but not defined") {
        return line;
    }
    let Some(package) = package else { return "unknown".to_owned() };
    package_version(package)
}

/// `PACKAGE VERSION` from dpkg, or `unknown`.
fn package_version(package: &str) -> String {
    let output = Command::new("dpkg-query").args(["-W", "-f=${Version}", package]).stderr(Stdio::null()).output();
    match output {
        Ok(out) if out.status.success() => format!("{package} {}", String::from_utf8_lossy(&out.stdout).trim()),
        _ => "unknown".to_owned(),
    }
}

/// The versions the running scheduler and probers report, by component name: the scheduler's own from
/// `/api/v1/version` (absent before 0.2.0), each registered prober's from `/api/v1/probers`.
fn running_versions(layout: &Layout, components: &[Component], http: &dyn Http) -> BTreeMap<String, String> {
    let mut running = BTreeMap::new();
    let read = |path: &str| match admin_read(layout, components, http, path) {
        Ok((200, body)) => serde_json::from_str::<serde_json::Value>(&body).ok(),
        _ => None,
    };
    for scheduler in components.iter().filter(|component| component.role == Role::Scheduler) {
        let Some(base) = api_of(scheduler) else { continue };
        let answer = match http.get(&admin_get_at(layout, &base, "/api/v1/version")) {
            Ok((200, body)) => serde_json::from_str::<serde_json::Value>(&body).ok(),
            _ => None,
        };
        if let Some(version) = answer.as_ref().and_then(|answer| answer["version"].as_str()) {
            running.insert(scheduler.name.clone(), version.to_owned());
        }
    }
    let probers = read("/api/v1/probers").and_then(|answer| answer.as_array().cloned()).unwrap_or_default();
    for component in components {
        let Some(name) = component.role.prober_name() else { continue };
        if let Some(version) = probers.iter().find(|p| p["name"] == name.as_str()).and_then(|p| p["version"].as_str()) {
            running.insert(component.name.clone(), version.to_owned());
        }
    }
    running
}

/// Reads the scheduler's `/api/v1/checks` (with the admin token).
pub fn checks(layout: &Layout, components: &[Component], http: &dyn Http) -> Result<Vec<serde_json::Value>, String> {
    let (status, body) = admin_read(layout, components, http, "/api/v1/checks")?;
    if status != 200 {
        return Err(format!("the scheduler answered {status}"));
    }
    let value: serde_json::Value = serde_json::from_str(&body).map_err(|error| error.to_string())?;
    Ok(value.as_array().cloned().unwrap_or_default())
}

/// The replicated schedulers from any replica's `/api/v1/cluster`, when the stack has replicas.
pub fn cluster(layout: &Layout, components: &[Component], http: &dyn Http) -> Option<Result<ClusterStatus, String>> {
    let replicated = components
        .iter()
        .any(|component| component.role == Role::Scheduler && component.name != crate::local::SCHEDULER);
    if !replicated {
        return None;
    }
    let read = || -> Result<ClusterStatus, String> {
        let (status, body) = admin_read(layout, components, http, "/api/v1/cluster")?;
        if status != 200 {
            return Err(format!("the schedulers answered {status}"));
        }
        let view: serde_json::Value = serde_json::from_str(&body).map_err(|error| error.to_string())?;
        let members = view["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|member| {
                Some((member["name"].as_str()?.to_owned(), member["version"].as_str().unwrap_or("?").to_owned()))
            })
            .collect();
        Ok(ClusterStatus {
            leader: view["leader"].as_str().map(str::to_owned),
            lease_generation: view["lease_generation"].as_i64(),
            members,
        })
    };
    Some(read())
}

/// The status of the install of `plan`.
pub fn status(plan: &Plan, layout: &Layout, http: &dyn Http) -> Status {
    let supervised = State::read(layout);
    let cluster = cluster(layout, &plan.components, http);
    let leader = cluster.as_ref().and_then(|cluster| cluster.as_ref().ok()).and_then(|c| c.leader.clone());
    let mut versions: BTreeMap<String, String> = BTreeMap::new();
    let running = running_versions(layout, &plan.components, http);
    let components = plan
        .components
        .iter()
        .map(|component| {
            let program = component.exec.first().cloned().unwrap_or_default();
            let version = match running.get(&component.name) {
                Some(version) => format!("probenet {version} (running)"),
                None => versions.entry(program).or_insert_with(|| version(component)).clone(),
            };
            ComponentStatus {
                name: component.name.clone(),
                health: check_health(&component.health, layout, &plan.components, http),
                version,
                supervised: supervised.as_ref().and_then(|state| state.component(&component.name).cloned()),
                part: match (&cluster, component.role == Role::Scheduler) {
                    (Some(Ok(_)), true) if leader.as_deref() == Some(component.name.as_str()) => {
                        Some("leader".to_owned())
                    }
                    (Some(Ok(_)), true) => Some("follower".to_owned()),
                    _ => None,
                },
            }
        })
        .collect();
    let regions = checks(layout, &plan.components, http).map(|checks| {
        let mut regions: BTreeMap<String, RegionStatus> = BTreeMap::new();
        for component in &plan.components {
            if let Role::Prober { region, .. } = &component.role {
                regions.entry(region.clone()).or_insert_with(|| RegionStatus {
                    region: region.clone(),
                    last_result_ms: None,
                    states: BTreeMap::new(),
                });
            }
        }
        for check in checks {
            let Some(region) = check["region"].as_str() else { continue };
            let entry = regions.entry(region.to_owned()).or_insert_with(|| RegionStatus {
                region: region.to_owned(),
                last_result_ms: None,
                states: BTreeMap::new(),
            });
            *entry.states.entry(check["state"].as_str().unwrap_or("unknown").to_owned()).or_default() += 1;
            if let Some(at) = check["last_result"]["planned_at_ms"].as_i64() {
                entry.last_result_ms = Some(entry.last_result_ms.map_or(at, |known| known.max(at)));
            }
        }
        regions.into_values().collect()
    });
    Status { stack: plan.stack.clone(), components, regions, cost: plan.cost.clone(), cluster }
}

/// Unix ms as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(ms: i64) -> String {
    probenet_scheduler::time::rfc3339_ms(ms)
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stack {:?}:", self.stack)?;
        let width = self.components.iter().map(|component| component.name.len()).max().unwrap_or(0);
        for component in &self.components {
            let health = match &component.health {
                Ok(()) => "healthy".to_owned(),
                Err(error) => format!("UNHEALTHY ({error})"),
            };
            let supervised = match &component.supervised {
                Some(state) => format!(
                    ", {:?}{}, {} restarts",
                    state.state,
                    state.pid.map(|pid| format!(" pid {pid}")).unwrap_or_default(),
                    state.restarts
                )
                .to_lowercase(),
                None => String::new(),
            };
            let part = component.part.as_ref().map(|part| format!(", {part}")).unwrap_or_default();
            writeln!(f, "  {:width$}  {health}, {}{part}{supervised}", component.name, component.version)?;
        }
        match &self.cluster {
            None => {}
            Some(Ok(cluster)) => {
                let members: Vec<&str> = cluster.members.iter().map(|(name, _)| name.as_str()).collect();
                writeln!(
                    f,
                    "schedulers: leader {} (lease generation {}), {} replicas: {}",
                    cluster.leader.as_deref().unwrap_or("none"),
                    cluster.lease_generation.map_or_else(|| "?".to_owned(), |generation| generation.to_string()),
                    members.len(),
                    members.join(", ")
                )?;
            }
            Some(Err(error)) => writeln!(f, "schedulers: cannot read /api/v1/cluster: {error}")?,
        }
        match &self.regions {
            Ok(regions) => {
                writeln!(f, "last result per region:")?;
                for region in regions {
                    let at = region.last_result_ms.map_or_else(|| "none yet".to_owned(), rfc3339);
                    let states: Vec<String> = region.states.iter().map(|(state, n)| format!("{n} {state}")).collect();
                    writeln!(f, "  {}: {at} ({})", region.region, states.join(", "))?;
                }
            }
            Err(error) => writeln!(f, "last result per region: cannot read the scheduler: {error}")?,
        }
        write!(f, "{}", self.cost)
    }
}

/// Waits (bounded) until the scheduler runs the config its files hold now (it re-reads them within seconds of a
/// change): the config hash it reports equals the one of its `-c` paths. A config it refused comes back as its
/// located errors (it keeps running the previous one).
pub fn wait_config(
    layout: &Layout,
    components: &[Component],
    http: &dyn Http,
    timeout: Duration,
) -> Result<(), String> {
    let Some(scheduler) = components.iter().find(|component| component.role == Role::Scheduler) else {
        return Ok(());
    };
    let paths: Vec<std::path::PathBuf> = scheduler
        .exec
        .windows(2)
        .filter(|pair| pair[0] == "-c" || pair[0] == "--config")
        .map(|pair| pair[1].clone().into())
        .collect();
    let expected = probenet_scheduler::config::Loaded::load(&paths).map_err(|errors| errors.to_string())?.hash;
    let get = admin_get(layout, components, "/api/v1/config").ok_or_else(|| "no scheduler API".to_owned())?;
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < timeout {
        if let Ok((200, body)) = http.get(&get) {
            let view: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            // The files' hash: the maintenance windows added through the API are not in the files.
            if view["files_hash"] == expected.as_str() || view["config_hash"] == expected.as_str() {
                return Ok(());
            }
            let errors: Vec<&str> =
                view["errors"].as_array().into_iter().flatten().filter_map(|e| e["text"].as_str()).collect();
            if !errors.is_empty() {
                return Err(format!(
                    "the scheduler refused the config and runs the previous one:\n{}",
                    errors.join("\n")
                ));
            }
            last = view["config_hash"].as_str().unwrap_or_default().to_owned();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("the scheduler still runs config {last} after {}s, not {expected}", timeout.as_secs()))
}

/// Waits (bounded) until every check pair has a result, then returns one line per pair.
pub fn first_results(layout: &Layout, components: &[Component], http: &dyn Http, timeout: Duration) -> Vec<String> {
    let started = Instant::now();
    let mut checks_now = Vec::new();
    while started.elapsed() < timeout {
        if let Ok(found) = checks(layout, components, http) {
            checks_now = found;
            if !checks_now.is_empty() && checks_now.iter().all(|check| !check["last_result"].is_null()) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    checks_now
        .iter()
        .map(|check| {
            let result = &check["last_result"];
            let detail = if result.is_null() {
                "no result yet".to_owned()
            } else {
                let at = result["planned_at_ms"].as_i64().map(rfc3339).unwrap_or_default();
                let error = result["outcome"]["error"].as_str().map(|e| format!(": {e}")).unwrap_or_default();
                format!("{} at {at}{error}", check["state"].as_str().unwrap_or("unknown"))
            };
            format!(
                "{} in {}: {detail}",
                check["check"].as_str().unwrap_or("?"),
                check["region"].as_str().unwrap_or("?")
            )
        })
        .collect()
}
