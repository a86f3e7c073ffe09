//! A deterministic, seeded in-memory [`Source`]: for tests, the benchmark and demos. The same options always
//! give the same figures; [`DemoSource::set_state`] changes one cell (and the version) to show live updates.

mod detail;
mod png;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use png::{encode_rgb, failure_screenshot};

use crate::model::{
    Alert, Alerts, Artifact, BurnRate, Cell, CheckDetail, CheckRow, DailyUptime, Incident, MaintenanceNotice, Overview,
    Prober, Probers, RECENT_RUNS, Range, RecentRun, RegionProbers, Slo, State, StatusCheck, StatusPage, StatusRegion,
};
use crate::{Source, SourceError, SourceResult};

/// 2026-06-01T12:00:00Z, the default "now".
pub const DEFAULT_NOW_MS: i64 = 1_780_315_200_000;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Every demo check runs every 30 seconds.
const INTERVAL_MS: i64 = 30_000;
/// The `degraded_after` of the demo's HTTP checks, in seconds.
const DEGRADED_AFTER: f64 = 1.0;
/// The demo's check flavours: every kind's key (a test checks it against `Kind::ALL`), and `https` for HTTP
/// over TLS.
const KINDS: [&str; 10] = ["http", "https", "tcp", "dns", "tls", "icmp", "browser", "websocket", "api", "grpc"];
const SERVICES: [&str; 12] =
    ["api", "checkout", "login", "search", "cdn", "db", "mail", "auth", "payments", "docs", "images", "billing"];
const TEAMS: [&str; 4] = ["web", "platform", "payments", "identity"];

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How many checks.
    pub checks: usize,
    /// The regions.
    pub regions: Vec<String>,
    /// The seed: the same seed gives the same data.
    pub seed: u64,
    /// The source's fixed "now".
    pub now_ms: i64,
    /// How long the checks have been running: `None` for months of history; `Some(10 * 60_000)` shows the
    /// first minutes of a new install (a few runs, no hourly history yet).
    pub running_for_ms: Option<i64>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        let regions = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"].map(String::from).to_vec();
        Self { checks: 24, regions, seed: 7, now_ms: DEFAULT_NOW_MS, running_for_ms: None }
    }
}

/// SplitMix64: small, fast and good enough for made-up figures.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..1`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A seed for one thing, mixed from the main seed and some numbers.
fn mix(seed: u64, parts: &[u64]) -> Rng {
    let mut rng = Rng::new(seed);
    for part in parts {
        rng = Rng::new(rng.next() ^ part.wrapping_mul(0x2545_f491_4f6c_dd1d));
    }
    rng
}

/// The phases of a kind, and the typical seconds of each.
fn phases(kind: &str) -> Vec<(&'static str, f64)> {
    match kind {
        "http" => vec![("resolve", 0.002), ("connect", 0.012), ("processing", 0.045), ("transfer", 0.004)],
        "https" | "browser" | "api" => {
            vec![("resolve", 0.002), ("connect", 0.014), ("tls", 0.028), ("processing", 0.06), ("transfer", 0.006)]
        }
        "tcp" => vec![("resolve", 0.002), ("connect", 0.015)],
        "tls" => vec![("resolve", 0.002), ("connect", 0.014), ("tls", 0.03)],
        "dns" => vec![("query", 0.008)],
        "grpc" => vec![("resolve", 0.002), ("connect", 0.014), ("tls", 0.028), ("processing", 0.03)],
        "websocket" => vec![
            ("resolve", 0.002),
            ("connect", 0.014),
            ("tls", 0.028),
            ("handshake", 0.02),
            ("messages", 0.04),
            ("close", 0.01),
        ],
        _ => vec![("rtt", 0.02)],
    }
}

/// The data, shared behind a lock.
#[derive(Debug)]
struct Data {
    overview: Overview,
    index: HashMap<String, usize>,
    fail_with: Option<String>,
}

/// The demo source.
#[derive(Debug)]
pub struct DemoSource {
    options: DemoOptions,
    data: Mutex<Data>,
    version: AtomicU64,
}

impl DemoSource {
    /// The demo's one maintenance window, of its first check (the status page's first service): tomorrow at
    /// 02:00 UTC for an hour, alerts muted.
    pub(super) fn maintenance_of(&self, check: &str) -> MaintenanceNotice {
        let tomorrow = (self.options.now_ms.div_euclid(DAY_MS) + 1) * DAY_MS + 2 * HOUR_MS;
        MaintenanceNotice {
            checks: vec![check.to_owned()],
            mode: "mute".to_owned(),
            start_ms: tomorrow,
            end_ms: tomorrow + HOUR_MS,
            active: false,
        }
    }

    /// Generates the data.
    pub fn new(options: DemoOptions) -> Self {
        let overview = generate_overview(&options);
        let index = overview.checks.iter().enumerate().map(|(i, row)| (row.name.clone(), i)).collect();
        Self { options, data: Mutex::new(Data { overview, index, fail_with: None }), version: AtomicU64::new(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the state of one check in one region and bumps the version; false if there is no such cell.
    pub fn set_state(&self, check: &str, region: &str, state: State) -> bool {
        let mut data = self.lock();
        let Some(&i) = data.index.get(check) else {
            return false;
        };
        let Some(cell) = data.overview.checks[i].cells.iter_mut().find(|cell| cell.region == region) else {
            return false;
        };
        cell.state = state;
        if let Some(newest) = cell.recent.last_mut() {
            newest.state = state;
        }
        self.version.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Makes every query fail with this message (or work again with `None`).
    pub fn fail_with(&self, message: Option<String>) {
        self.lock().fail_with = message;
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    fn check_failing(&self) -> SourceResult<()> {
        match &self.lock().fail_with {
            Some(message) => Err(SourceError::new(message.clone())),
            None => Ok(()),
        }
    }
}

/// Whether a kind has a `degraded_after` in the demo.
fn has_degraded_after(kind: &str) -> bool {
    matches!(kind, "http" | "https" | "browser")
}

/// How many failed runs in a row a down cell has had (one every [`INTERVAL_MS`]), at most.
fn down_streak(check: usize, region: usize) -> i64 {
    if (check + region).is_multiple_of(2) { 19 } else { 7 }
}

/// The error of a failed run of a kind: the reason label and the one-line text.
fn kind_error(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "http" | "https" => ("status", "status 503, expected one of 200"),
        "browser" => ("assertion", "step 4 (expect_text \"Welcome\"): text not found within 5s"),
        "tls" => ("cert_expiring", "certificate expires in 6 days (minimum 14)"),
        "dns" => ("rcode", "answer SERVFAIL, expected NOERROR"),
        "websocket" => ("assertion", "steps[1].expect: no matching message within 2s"),
        "api" => ("status", "step `orders`: status: expected 200, got 503"),
        "grpc" => ("status", "health \"shop.v1.Orders\": expected SERVING, got NOT_SERVING"),
        _ => ("timeout", "no answer within 10s"),
    }
}

fn generate_overview(options: &DemoOptions) -> Overview {
    let now = options.now_ms;
    let started = options.running_for_ms.map(|running| now - running);
    let checks = (0..options.checks)
        .map(|i| {
            let mut rng = mix(options.seed, &[i as u64]);
            let kind = KINDS[i % KINDS.len()];
            let service = SERVICES[rng.below(SERVICES.len())];
            let name = format!("{service}-{kind}-{:03}", i + 1);
            let host = format!("{service}.example.com");
            let target = match kind {
                "http" => format!("http://{host}/health"),
                "https" => format!("https://{host}/"),
                "browser" => format!("https://{host}/login"),
                "tcp" => format!("{host}:5432"),
                "tls" => format!("{host}:443"),
                "websocket" => format!("wss://{host}/socket"),
                "api" => format!("https://{host}/v1/login"),
                "grpc" => format!("{host}:443"),
                "icmp" => format!("10.{}.{}.{}", i / 65_536 % 256, i / 256 % 256, i % 256),
                _ => host,
            };
            let mut labels = BTreeMap::new();
            labels.insert("team".to_owned(), TEAMS[rng.below(TEAMS.len())].to_owned());
            labels.insert("env".to_owned(), if rng.unit() < 0.8 { "prod" } else { "staging" }.to_owned());
            let base: f64 = phases(kind).iter().map(|(_, seconds)| seconds).sum::<f64>() * (0.6 + rng.unit());
            let cells = options
                .regions
                .iter()
                .enumerate()
                .map(|(r, region)| {
                    let mut rng = mix(options.seed, &[i as u64, r as u64, 1]);
                    let roll = rng.unit();
                    let state = match roll {
                        x if x < 0.02 => State::NoData,
                        x if x < 0.06 => State::Down,
                        x if x < 0.10 => State::Degraded,
                        _ => State::Up,
                    };
                    if state == State::NoData {
                        return Cell { region: region.clone(), state, sparkline: vec![None; 24], ..Cell::default() };
                    }
                    let last_run_ms = now - (rng.below(30) as i64 + 1) * 1000;
                    let far = 1.0 + r as f64 * 0.35;
                    let loss = if state == State::Down { 0.05 } else { 0.004 };
                    let mut uptime = |scale: f64| {
                        if rng.unit() < 0.3 {
                            1.0
                        } else {
                            1.0 - (rng.unit().powi(3) * loss * scale * 2000.0).round() / 2000.0
                        }
                    };
                    let (u24, u7, u30) = (uptime(1.0), uptime(0.6), uptime(0.4));
                    let sparkline = (0..24)
                        .map(|h| {
                            let hour_end = now - now.rem_euclid(HOUR_MS) - (22 - h) * HOUR_MS;
                            if state == State::Down && h >= 21 || started.is_some_and(|started| hour_end <= started) {
                                None
                            } else {
                                Some(base * far * (0.85 + 0.3 * rng.unit() + if h % 9 == 4 { 0.4 } else { 0.0 }))
                            }
                        })
                        .collect();
                    let slow = if has_degraded_after(kind) {
                        (base * far * 3.0).max(DEGRADED_AFTER * 1.3)
                    } else {
                        base * far * 3.0
                    };
                    let last_seconds = if state == State::Degraded { slow } else { base * far };
                    let mut recent: Vec<RecentRun> = (0..RECENT_RUNS as i64)
                        .rev()
                        .map(|k| last_run_ms - k * INTERVAL_MS)
                        .filter(|at| started.is_none_or(|started| *at >= started))
                        .map(|at_ms| {
                            let seconds = base * far * (0.8 + 0.4 * rng.unit());
                            if rng.unit() < 0.04 {
                                RecentRun { at_ms, state: State::Down, seconds: None }
                            } else {
                                RecentRun { at_ms, state: State::Up, seconds: Some(seconds) }
                            }
                        })
                        .collect();
                    let streak = down_streak(i, r);
                    for run in &mut recent {
                        if state == State::Down && run.at_ms > last_run_ms - streak * INTERVAL_MS {
                            *run = RecentRun { state: State::Down, seconds: None, ..*run };
                        }
                    }
                    if let Some(newest) = recent.last_mut() {
                        newest.state = state;
                        newest.seconds = (state != State::Down).then_some(last_seconds);
                    }
                    // A new install's uptimes are those of its few runs.
                    let (u24, u7, u30) = if started.is_some() {
                        let good = recent.iter().filter(|run| run.state != State::Down).count();
                        let share = good as f64 / recent.len().max(1) as f64;
                        (share, share, share)
                    } else {
                        (u24, u7, u30)
                    };
                    Cell {
                        region: region.clone(),
                        state,
                        last_run_ms: Some(last_run_ms),
                        last_seconds: Some(last_seconds),
                        uptime_24h: Some(u24),
                        uptime_7d: Some(u7),
                        uptime_30d: Some(u30),
                        sparkline,
                        recent,
                        reason: match state {
                            State::Degraded => Some("duration".to_owned()),
                            State::Down => Some("timeout".to_owned()),
                            State::Up | State::NoData => None,
                        },
                    }
                })
                .collect();
            CheckRow { name, kind: kind.to_owned(), target, labels, cells }
        })
        .collect();
    let uptime_as_of_ms = Some(now.div_euclid(HOUR_MS) * HOUR_MS);
    Overview { generated_at_ms: now, regions: options.regions.clone(), checks, uptime_as_of_ms }
}

impl Source for DemoSource {
    fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    fn now_ms(&self) -> i64 {
        self.options.now_ms
    }

    fn overview(&self) -> SourceResult<Overview> {
        self.check_failing()?;
        Ok(self.lock().overview.clone())
    }

    fn check(&self, name: &str, range: Range) -> SourceResult<Option<CheckDetail>> {
        self.check_failing()?;
        let data = self.lock();
        let Some(&i) = data.index.get(name) else {
            return Ok(None);
        };
        let row = data.overview.checks[i].clone();
        drop(data);
        Ok(Some(self.detail(&row, i, range)))
    }

    fn artifact(&self, path: &str) -> SourceResult<Option<Artifact>> {
        self.check_failing()?;
        if let Some(id) = path.strip_prefix("traceroutes/").and_then(|rest| rest.strip_suffix(".json")) {
            return Ok(demo_traceroute(id, self.options.checks));
        }
        let Some(id) = path.strip_prefix("screenshots/").and_then(|rest| rest.strip_suffix(".png")) else {
            return Ok(None);
        };
        let Some((check, k)) = id.split_once('-') else {
            return Ok(None);
        };
        let (Ok(check), Ok(k)) = (check.parse::<usize>(), k.parse::<u8>()) else {
            return Ok(None);
        };
        if check >= self.options.checks || KINDS[check % KINDS.len()] != "browser" || k > 8 {
            return Ok(None);
        }
        let tint = (check as u8).wrapping_mul(37).wrapping_add(k.wrapping_mul(50));
        Ok(Some(Artifact { media_type: "image/png".to_owned(), data: failure_screenshot(tint) }))
    }

    fn alerts(&self) -> SourceResult<Alerts> {
        self.check_failing()?;
        let data = self.lock();
        let now = self.options.now_ms;
        let mut firing = Vec::new();
        for row in &data.overview.checks {
            for cell in row.cells.iter().filter(|cell| cell.state == State::Down) {
                firing.push(Alert {
                    name: "CheckDown".to_owned(),
                    check: Some(row.name.clone()),
                    regions: vec![cell.region.clone()],
                    severity: "critical".to_owned(),
                    summary: format!("{} is down in {}", row.name, cell.region),
                    started_at_ms: cell.last_run_ms.unwrap_or(now) - 600_000,
                    resolved_at_ms: None,
                });
            }
        }
        firing.truncate(25);
        let mut rng = mix(self.options.seed, &[9]);
        let history = (0..30)
            .filter_map(|n| {
                let row = data.overview.checks.get(rng.below(data.overview.checks.len()))?;
                let started = now - (n as i64 * 5 + 2) * HOUR_MS - rng.below(3_600) as i64 * 1000;
                let slow = rng.unit() < 0.4;
                Some(Alert {
                    name: if slow { "CheckSlow" } else { "CheckDown" }.to_owned(),
                    check: Some(row.name.clone()),
                    regions: row.cells.first().map(|cell| vec![cell.region.clone()]).unwrap_or_default(),
                    severity: if slow { "warning" } else { "critical" }.to_owned(),
                    summary: format!("{} was {}", row.name, if slow { "slow" } else { "down" }),
                    started_at_ms: started,
                    resolved_at_ms: Some(started + (rng.below(50) as i64 + 3) * 60_000),
                })
            })
            .collect();
        Ok(Alerts { firing, history, notifiers: Vec::new() })
    }

    fn probers(&self) -> SourceResult<Probers> {
        self.check_failing()?;
        let now = self.options.now_ms;
        let regions = self
            .options
            .regions
            .iter()
            .enumerate()
            .map(|(r, region)| {
                let mut rng = mix(self.options.seed, &[r as u64, 11]);
                let count = 2 + rng.below(2);
                let probers = (0..count)
                    .map(|n| {
                        let impaired = r + 1 == self.options.regions.len() && n == 0;
                        Prober {
                            name: format!("{region}-{}", n + 1),
                            version: if n == 2 { "0.0.9" } else { "0.1.0" }.to_owned(),
                            last_heartbeat_ms: Some(
                                now - if impaired { 95_000 } else { rng.below(9_000) as i64 + 500 },
                            ),
                            assigned: (self.options.checks / count) as u64,
                            load: Some(((rng.unit() * 0.7 + 0.05) * 100.0).round() / 100.0),
                            impaired,
                            impaired_reason: impaired.then(|| "its own reference check fails (network)".to_owned()),
                            result_delay_seconds: Some(0.4 + rng.unit()),
                            results_pending: Some(rng.below(20) as u64),
                            results_dropped: Some(0),
                            runs_skipped: Some(0),
                            ..Prober::default()
                        }
                    })
                    .collect();
                RegionProbers { region: region.clone(), probers }
            })
            .collect();
        Ok(Probers { regions, schedulers: Vec::new() })
    }

    fn slos(&self) -> SourceResult<Vec<Slo>> {
        self.check_failing()?;
        let data = self.lock();
        let objectives = [0.999, 0.995, 0.99];
        Ok(data
            .overview
            .checks
            .iter()
            .take(8)
            .enumerate()
            .map(|(n, row)| {
                let objective = objectives[n % objectives.len()];
                let values: Vec<f64> = row.cells.iter().filter_map(|cell| cell.uptime_30d).collect();
                let sli = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
                // The second SLO had a bad month: its budget is spent many times over.
                let sli = if n == 1 { sli.map(|sli| sli.min(0.9626)) } else { sli };
                let mut rng = mix(self.options.seed, &[n as u64, 13]);
                let burn_rates = ["1h", "6h", "1d", "3d"]
                    .iter()
                    .map(|window| BurnRate {
                        window: (*window).to_owned(),
                        rate: Some((rng.unit().powi(2) * 300.0).round() / 100.0),
                    })
                    .collect();
                Slo {
                    name: format!("{} availability", row.name),
                    check: row.name.clone(),
                    objective,
                    window_days: 30,
                    sli,
                    budget_remaining: sli.map(|sli| 1.0 - (1.0 - sli) / (1.0 - objective)),
                    burn_rates,
                }
            })
            .collect())
    }

    fn status_page(&self) -> SourceResult<Option<StatusPage>> {
        self.check_failing()?;
        let data = self.lock();
        let today = self.options.now_ms - self.options.now_ms.rem_euclid(DAY_MS);
        let names = ["Website", "API", "Sign-in", "Search", "CDN", "Payments"];
        let checks: Vec<StatusCheck> = data
            .overview
            .checks
            .iter()
            .take(names.len())
            .enumerate()
            .map(|(n, row)| {
                let mut rng = mix(self.options.seed, &[n as u64, 17]);
                StatusCheck {
                    name: row.name.clone(),
                    display_name: names[n].to_owned(),
                    regions: row
                        .cells
                        .iter()
                        .map(|cell| StatusRegion { region: cell.region.clone(), state: cell.state })
                        .collect(),
                    daily: (0..90)
                        .map(|d| DailyUptime {
                            day_ms: today - (89 - d) * DAY_MS,
                            uptime: Some(if rng.unit() < 0.9 {
                                1.0
                            } else {
                                1.0 - (rng.unit().powi(3) * 40.0).round() / 2000.0
                            }),
                        })
                        .collect(),
                    uptime: None,
                }
            })
            .map(|mut check: StatusCheck| {
                // Every day is as long (the days' time weighs the same): the mean of the days.
                let days: Vec<f64> = check.daily.iter().filter_map(|day| day.uptime).collect();
                check.uptime = (!days.is_empty()).then(|| days.iter().sum::<f64>() / days.len() as f64);
                check
            })
            .collect();
        let mut incidents = Vec::new();
        for check in &checks {
            for region in check.regions.iter().filter(|region| region.state == State::Down) {
                // As the store records them: one per region, with the failure's reason label (the dashboard
                // merges them into one incident per service and words the reason).
                let kind = data.overview.checks[data.index[&check.name]].kind.as_str();
                incidents.push(Incident {
                    title: format!("{} down in {}", check.display_name, region.region),
                    checks: vec![check.name.clone()],
                    regions: vec![region.region.clone()],
                    state: State::Down,
                    started_at_ms: self.options.now_ms - 25 * 60_000,
                    resolved_at_ms: None,
                    summary: kind_error(kind).0.to_owned(),
                });
            }
        }
        for (n, check) in checks.iter().enumerate().take(3) {
            let started = self.options.now_ms - (n as i64 * 4 + 2) * DAY_MS - 5 * HOUR_MS;
            incidents.push(Incident {
                title: format!("Elevated latency for {}", check.display_name),
                checks: vec![check.name.clone()],
                regions: check.regions.iter().take(2).map(|region| region.region.clone()).collect(),
                state: State::Degraded,
                started_at_ms: started,
                resolved_at_ms: Some(started + (n as i64 + 1) * 40 * 60_000),
                summary: "Responses took over 2 seconds.".to_owned(),
            });
        }
        let maintenance = checks.first().map(|check| self.maintenance_of(&check.name)).into_iter().collect();
        let uptime_as_of_ms = Some(self.options.now_ms.div_euclid(HOUR_MS) * HOUR_MS);
        Ok(Some(StatusPage {
            title: "Example Inc. status".to_owned(),
            checks,
            incidents,
            maintenance,
            uptime_as_of_ms,
        }))
    }
}

/// The made-up traceroute of a failed tcp check's run `id` (`CHECK-K`): the path stops after hop 2.
fn demo_traceroute(id: &str, checks: usize) -> Option<Artifact> {
    let (check, k) = id.split_once('-')?;
    let (check, k) = (check.parse::<usize>().ok()?, k.parse::<u8>().ok()?);
    if check >= checks || KINDS[check % KINDS.len()] != "tcp" || k > 8 {
        return None;
    }
    let target = format!("192.0.2.{}", 10 + check % 200);
    let evidence = serde_json::json!({
        "traceroute": {
            "target": target,
            "method": "udp",
            "hops": [
                {"ttl": 1, "address": "10.9.0.1", "rtt_ms": [0.41, 0.38, 0.40]},
                {"ttl": 2, "address": "10.9.1.1", "rtt_ms": [3.2 + f64::from(k) / 10.0, 3.1, 3.4]},
                {"ttl": 3, "address": null, "rtt_ms": []},
                {"ttl": 4, "address": null, "rtt_ms": []},
                {"ttl": 5, "address": null, "rtt_ms": []},
            ],
            "reached": false,
            "stopped_at_ttl": 2,
            "summary": "stopped after hop 2 (10.9.1.1): no answer from hop 3 on",
            "duration_ms": 3004.2,
        },
        "in_details": [],
    });
    Some(Artifact { media_type: "application/json".to_owned(), data: serde_json::to_vec(&evidence).ok()? })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_has_a_check_of_every_kind() {
        for kind in probenet_checks::Kind::ALL {
            assert!(super::KINDS.contains(&kind.key()), "the demo has no {kind} check");
        }
    }
}
