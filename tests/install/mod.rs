//! `probenet install local --yes` below a temp root, run by `probenet supervise`:
//! - local:    probers of two regions in network namespaces, results in VictoriaMetrics, an alert in
//!   Alertmanager, status, an upgrade that fails and rolls back, one that succeeds, uninstall
//! - previous: the previous release (built from its commit) installed, then upgraded to this build
//! - replicas: three schedulers on a PostgreSQL the install runs, two regions, status with the leader, a rolling
//!   upgrade with some replica healthy at every moment, uninstall
//! - nothing:  status and uninstall where nothing is installed say so (status exits 3)
//! - readme:   the README's Deployment steps (`cp`, then `--plan`) as written; a checks path not found
//! - systemd:  the systemd path, in a machine booted with systemd-nspawn: units, restarts, upgrades, uninstall
//! - deb:      the Debian package (cargo-deb) installed with apt-get in such a machine, `up --demo` there, removed
//!
//! Both check that no result is lost across an upgrade: the scheduler's results are planned one interval apart,
//! without a hole, from before the upgrade to after it.

mod deb;
mod local;
mod nothing;
mod previous;
mod readme;
mod replicas;
mod systemd;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use probenet_install::Loaded;
use probenet_install::layout::Layout;
use serde_json::Value;

pub const PACKAGED: [&str; 3] = ["/usr/bin/victoria-metrics", "/usr/bin/vmalert", "/usr/bin/prometheus-alertmanager"];

/// This build.
pub fn current() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_probenet"))
}

/// Fails unless the distribution's packages the stack runs are installed.
pub fn require_packages() {
    for binary in PACKAGED {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: install victoria-metrics and prometheus-alertmanager"
        );
    }
}

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

/// A stack file and its checks in a temp dir, installed below `root`.
pub struct Stack {
    // Dropped first: stops the install before the temp dir goes.
    _guard: Guard,
    pub layout: Layout,
    pub loaded: Loaded,
    pub file: PathBuf,
    pub root: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Stack {
    /// Writes `checks.yaml` and `stack.yaml` (which names it) and reads the stack back.
    pub fn new(checks: &str, stack: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(dir.path().join("checks.yaml"), checks).unwrap();
        let file = dir.path().join("stack.yaml");
        std::fs::write(&file, stack).unwrap();
        let loaded = probenet_install::load(&file).unwrap();
        let layout = Layout::new(&loaded.stack).with_root(&root);
        Self { _guard: Guard { layout: layout.clone() }, layout, loaded, file, root, dir }
    }

    /// `BINARY ARGS -f STACK --root ROOT EXTRA`, its output echoed for the test log.
    pub fn run(&self, binary: &Path, args: &[&str], extra: &[&str]) -> Output {
        let output = std::process::Command::new(binary)
            .env_remove("RUST_LOG")
            .args(args)
            .arg("-f")
            .arg(&self.file)
            .arg("--root")
            .arg(&self.root)
            .args(extra)
            .output()
            .unwrap();
        eprintln!(
            "{} {}:\n{}{}",
            binary.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// An HTTPS client trusting the install's CA, with its client certificate when asked.
    pub fn client(&self, client_cert: bool) -> reqwest::blocking::Client {
        let ca = std::fs::read(self.layout.ca_cert()).unwrap();
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap());
        if client_cert {
            let mut pem = std::fs::read(self.layout.client_cert()).unwrap();
            pem.extend(std::fs::read(self.layout.client_key()).unwrap());
            builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    }

    /// A PromQL query of the installed VictoriaMetrics (HTTPS, basic auth): its `data.result`.
    pub fn store_query(&self, store: u16, query: &str) -> Option<Vec<Value>> {
        let password = read_trimmed(&self.layout.store_password());
        let url =
            reqwest::Url::parse_with_params(&format!("https://127.0.0.1:{store}/api/v1/query"), [("query", query)])
                .ok()?;
        let response = self.client(false).get(url).basic_auth("probenet", Some(&password)).send().ok()?;
        let body: Value = response.json().ok()?;
        body["data"]["result"].as_array().cloned()
    }

    /// The planned times of `check`'s results in `region` the scheduler stored (its admin API), sorted, unique.
    pub fn planned(&self, scheduler: u16, check: &str, region: &str) -> Vec<i64> {
        let token = read_trimmed(&self.layout.admin_token());
        let url = format!("https://127.0.0.1:{scheduler}/api/v1/results?check={check}&region={region}&limit=1000");
        let results: Vec<Value> = self.client(false).get(url).bearer_auth(&token).send().unwrap().json().unwrap();
        let mut planned: Vec<i64> = results.iter().filter_map(|result| result["planned_at_ms"].as_i64()).collect();
        planned.sort_unstable();
        planned.dedup();
        planned
    }

    /// The names of the components this stack runs.
    pub fn components(&self) -> Vec<String> {
        probenet_install::local::components(&self.loaded, &self.layout).into_iter().map(|c| c.name).collect()
    }

    /// The names of probenet's own components: the scheduler and the probers.
    pub fn probenet_components(&self) -> Vec<String> {
        let ours = |name: &String| name == "probenet-scheduler" || name.starts_with("probenet-prober-");
        self.components().into_iter().filter(ours).collect()
    }

    /// `status`'s line for `component`.
    pub fn status_line<'a>(status: &'a str, component: &str) -> &'a str {
        status
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("{component} ")))
            .unwrap_or_else(|| panic!("no line for {component} in:\n{status}"))
    }
}

/// Why `planned` does not hold every interval from `from` to `to` (unix ms, widened by one interval on each
/// side to the nearest planned time), if it does not: it must have at least three results, each `interval_ms`
/// after the one before.
pub fn gap(planned: &[i64], from: i64, to: i64, interval_ms: i64, what: &str) -> Option<String> {
    let window: Vec<i64> =
        planned.iter().copied().filter(|at| *at >= from - 2 * interval_ms && *at <= to + interval_ms).collect();
    if window.len() < 3 {
        return Some(format!("too few results {what}: {window:?}"));
    }
    if !(window.first().is_some_and(|first| *first <= from) && window.last().is_some_and(|last| *last >= to)) {
        return Some(format!("the results {what} do not span {from}..{to}: {window:?}"));
    }
    window
        .windows(2)
        .find(|pair| pair[1] - pair[0] != interval_ms)
        .map(|pair| format!("a result is missing {what} between {} and {}: {window:?}", pair[0], pair[1]))
}

impl Stack {
    /// Asserts [`gap`] finds none in the scheduler's results of `check` in `region`, once the probers had time to send
    /// what they spooled while the scheduler was away (their retries back off up to 5 s, so this waits up to
    /// 20 s for the gap to close; a result refused or lost never fills it). On failure the tails of the
    /// scheduler's and the probers' logs go to the test log first, so a failure on CI says why.
    pub fn assert_no_gap(&self, scheduler: u16, check: &str, region: &str, from: i64, to: i64, what: &str) {
        let started = Instant::now();
        let gap = loop {
            let planned = self.planned(scheduler, check, region);
            match gap(&planned, from, to, 1_000, what) {
                None => return,
                Some(gap) if started.elapsed() >= Duration::from_secs(20) => break gap,
                Some(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        };
        self.print_logs();
        panic!("{gap}");
    }

    /// The last 60 lines of every log of the install.
    pub fn print_logs(&self) {
        let Ok(entries) = std::fs::read_dir(self.layout.log_dir()) else { return };
        let mut paths: Vec<PathBuf> = entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            eprintln!("---- {} (last {} lines) ----\n{tail}", path.display(), lines.len().min(60));
        }
    }
}

pub fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// Polls `probe` every 500 ms until it returns Some, failing after `limit`.
pub fn poll<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(found) = probe() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}
