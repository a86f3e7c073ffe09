//! The dashboard's data: the running config, the embedded store, the registry and the alert engine behind
//! `probenet_dashboard::Source`. The overview is computed at most every few seconds and shared by every viewer.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use probenet_checks::wire::RunResult;
use probenet_checks::{Check, Schedule};
use probenet_dashboard::model::{
    Alert, Alerts, Artifact, BurnRate, Cell, CheckDetail, CheckRow, DailyUptime, Delivery, Failure, Incident,
    LatencyPoint, MaintenanceNotice, NotifierStatus, Overview, Prober, Probers, RECENT_RUNS, Range, RecentRun,
    RegionDetail, RegionProbers, ReloadProblem, Slo, State, StatusCheck, StatusPage, StatusRegion,
};
use probenet_dashboard::{Source, SourceError, SourceResult};
use probenet_exporters::store::{LedgerMs, LedgerSum, ResultQuery, Store};

use crate::state::Shared;
use crate::time::now_ms;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// How long a computed overview is served again.
const OVERVIEW_TTL: Duration = Duration::from_secs(5);
/// How long the overview's sums of ledger hours are used again while no newer hour is closed (an hour computed
/// again for late results shows within this).
const LEDGER_TTL: Duration = Duration::from_secs(60);

/// Uptimes by check and region (`None`: the check as a whole).
type LedgerUptimes = HashMap<(String, Option<String>), f64>;

/// The overview's ledger uptimes over 24 h, 7 d and 30 d, as of the end of the closed hours.
#[derive(Debug)]
struct OverviewUptimes {
    at: Instant,
    as_of_ms: i64,
    windows: [LedgerUptimes; 3],
}

/// The scheduler as a dashboard source.
#[derive(Debug)]
pub struct UiSource {
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    overview: Mutex<Option<(Instant, Overview)>>,
    uptimes: Mutex<Option<OverviewUptimes>>,
}

impl UiSource {
    /// A source over the scheduler's state and store.
    pub fn new(shared: Arc<Shared>, store: Arc<dyn Store>) -> Self {
        Self { shared, store, overview: Mutex::new(None), uptimes: Mutex::new(None) }
    }
}

/// The day rows of one check and region (`None`: the check as a whole) as the daily bars of the days from
/// `first_day` to `last_day` (each included), and their uptime together.
fn daily_bars(
    days: &[LedgerSum],
    region: Option<&str>,
    first_day: i64,
    last_day: i64,
) -> (Vec<DailyUptime>, Option<f64>) {
    let mut total = LedgerMs::default();
    let mut bars = Vec::new();
    let mut day = first_day;
    while day <= last_day {
        let row = days.iter().find(|row| row.start_ms == day && row.region.as_deref() == region);
        if let Some(row) = row {
            total.add(&row.ms);
        }
        bars.push(DailyUptime { day_ms: day, uptime: row.and_then(|row| row.ms.uptime()) });
        day += DAY_MS;
    }
    (bars, total.uptime())
}

fn failed(error: impl std::fmt::Display) -> SourceError {
    SourceError::new(format!("the store cannot answer: {error}"))
}

/// A config error as the dashboard shows it: located, with every quoted value elided. A value written in the
/// file may be a credential the dashboard's readers are not given (a webhook URL with its token, a check URL
/// with a password, a header, a value a rejected edit meant as a secret reference), and an error about a file
/// that does not run is not redacted as a running check's definition is. The terminal and the admin API show
/// the errors whole.
fn dashboard_error(error: &probenet_checks::ConfigError) -> String {
    let message = elide_quoted(&error.message);
    probenet_checks::ConfigError { message, ..error.clone() }.to_string()
}

/// `"..."` quoted parts (Rust's debug quoting, with its escapes) replaced by `"…"`.
fn elide_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        out.push_str("…\"");
        let mut escaped = false;
        for inner in chars.by_ref() {
            match (escaped, inner) {
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => escaped = false,
            }
        }
    }
    out
}

/// A stored run's state.
fn run_state(result: &RunResult) -> State {
    match result.outcome.state {
        probenet_checks::State::Up => State::Up,
        probenet_checks::State::Degraded => State::Degraded,
        probenet_checks::State::Down => State::Down,
    }
}

/// The state a result shows: none older than three intervals and a timeout (it no longer tells).
fn state_of(check: &Check, latest: Option<&RunResult>, now: i64) -> State {
    let run = latest.map(|result| {
        let state = match result.outcome.state {
            probenet_checks::State::Up => 0,
            probenet_checks::State::Degraded => 1,
            probenet_checks::State::Down => 2,
        };
        (result.planned_at_ms, state)
    });
    state_of_run(check, run, now)
}

/// [`state_of`] from a run's planned time and state code (0 up, 1 degraded, 2 down).
fn state_of_run(check: &Check, run: Option<(i64, u8)>, now: i64) -> State {
    let Some((planned_at_ms, state)) = run else { return State::NoData };
    if let Schedule::Every(interval) = &check.schedule {
        let window = i64::try_from(3 * interval.as_millis() + check.timeout.as_millis()).unwrap_or(i64::MAX / 2);
        if planned_at_ms < now - window {
            return State::NoData;
        }
    }
    match state {
        0 => State::Up,
        1 => State::Degraded,
        _ => State::Down,
    }
}

impl UiSource {
    /// The end of the closed ledger hours: the figures are as of then.
    fn uptime_as_of(&self) -> SourceResult<Option<i64>> {
        Ok(self.store.ledger_last_hour().map_err(failed)?.map(|last| last + HOUR_MS))
    }

    /// Uptimes by time (the ledger's) of the closed hours starting in `[from, to)`.
    fn ledger_uptimes(&self, check: Option<&str>, from: i64, to: i64) -> SourceResult<LedgerUptimes> {
        let rows = self.store.ledger_sums(check, from, to).map_err(failed)?;
        Ok(rows.into_iter().filter_map(|row| row.ms.uptime().map(|uptime| ((row.check, row.region), uptime))).collect())
    }

    /// The overview's uptimes over the last 24 hours, 7 and 30 days of closed hours, and their end: summed
    /// again when a newer hour is closed, or after [`LEDGER_TTL`].
    fn overview_uptimes(&self) -> SourceResult<(Option<i64>, [LedgerUptimes; 3])> {
        let Some(as_of) = self.uptime_as_of()? else { return Ok((None, Default::default())) };
        let mut cached = self.uptimes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = cached.as_ref()
            && known.as_of_ms == as_of
            && known.at.elapsed() < LEDGER_TTL
        {
            return Ok((Some(as_of), known.windows.clone()));
        }
        let windows = [
            self.ledger_uptimes(None, as_of - DAY_MS, as_of)?,
            self.ledger_uptimes(None, as_of - 7 * DAY_MS, as_of)?,
            self.ledger_uptimes(None, as_of - 30 * DAY_MS, as_of)?,
        ];
        *cached = Some(OverviewUptimes { at: Instant::now(), as_of_ms: as_of, windows: windows.clone() });
        Ok((Some(as_of), windows))
    }

    fn compute_overview(&self) -> SourceResult<Overview> {
        let config = self.shared.config();
        let now = now_ms();
        let (uptime_as_of_ms, [day, week, month]) = self.overview_uptimes()?;
        let db = &self.store;
        // Two statements for every pair at once: the latest runs and the last day's hourly medians.
        let latest: HashMap<(String, String), (i64, u8, f64)> = db
            .latest_runs()
            .map_err(failed)?
            .into_iter()
            .map(|run| ((run.check, run.region), (run.planned_at_ms, run.state, run.seconds)))
            .collect();
        let since = (now - 23 * HOUR_MS).div_euclid(HOUR_MS) * HOUR_MS;
        let mut sparklines: HashMap<(String, String), Vec<Option<f64>>> = HashMap::new();
        for hour in db.hourly_latency(since, now).map_err(failed)? {
            let slot = usize::try_from((hour.start_ms - since) / HOUR_MS).unwrap_or(usize::MAX);
            let line = sparklines.entry((hour.check, hour.region)).or_insert_with(|| vec![None; 24]);
            if let Some(point) = line.get_mut(slot) {
                *point = hour.p50;
            }
        }
        let mut checks = Vec::new();
        for check in &config.config.checks {
            // The last runs of every region: one query per check, over the span its last runs take.
            let since = match &check.schedule {
                Schedule::Every(interval) => {
                    let span = interval.as_millis() * (RECENT_RUNS as u128 + 1) + check.timeout.as_millis();
                    now - i64::try_from(span).unwrap_or(DAY_MS)
                }
                _ => now - DAY_MS,
            };
            let mut recent: HashMap<String, Vec<RecentRun>> = HashMap::new();
            let mut reasons: HashMap<String, String> = HashMap::new();
            let runs = db
                .results(&ResultQuery {
                    check: Some(check.name.clone()),
                    region: None,
                    since_ms: Some(since),
                    until_ms: None,
                    only_failures: false,
                    limit: RECENT_RUNS * check.regions.len().max(1),
                    oldest_first: false,
                })
                .map_err(failed)?;
            for run in runs {
                let line = recent.entry(run.region.clone()).or_default();
                if line.is_empty()
                    && run_state(&run) != State::Up
                    && let Some(reason) = run.outcome.reason
                {
                    reasons.insert(run.region.clone(), reason.as_str().to_owned());
                }
                if line.len() < RECENT_RUNS {
                    let seconds = Some(run.outcome.duration_seconds).filter(|seconds| seconds.is_finite());
                    line.push(RecentRun { at_ms: run.planned_at_ms, state: run_state(&run), seconds });
                }
            }
            let mut cells = Vec::new();
            for region in &check.regions {
                let key = (check.name.clone(), region.clone());
                let uptime_key = (check.name.clone(), Some(region.clone()));
                let last = latest.get(&key).copied();
                let mut recent = recent.remove(region).unwrap_or_default();
                recent.reverse();
                let state = state_of_run(check, last.map(|(planned, state, _)| (planned, state)), now);
                cells.push(Cell {
                    region: region.clone(),
                    state,
                    last_run_ms: last.map(|(planned, _, _)| planned),
                    last_seconds: last.map(|(_, _, seconds)| seconds),
                    uptime_24h: day.get(&uptime_key).copied(),
                    uptime_7d: week.get(&uptime_key).copied(),
                    uptime_30d: month.get(&uptime_key).copied(),
                    sparkline: sparklines.remove(&key).unwrap_or_else(|| vec![None; 24]),
                    reason: reasons.remove(region).filter(|_| matches!(state, State::Degraded | State::Down)),
                    recent,
                });
            }
            checks.push(CheckRow {
                name: check.name.clone(),
                kind: check.kind.key().to_owned(),
                target: check.kind.target(),
                labels: check.labels.clone(),
                cells,
            });
        }
        Ok(Overview {
            generated_at_ms: now,
            regions: config.config.regions.keys().cloned().collect(),
            checks,
            uptime_as_of_ms,
        })
    }

    fn definition(&self, check: &Check) -> String {
        let config = self.shared.config();
        let Some(file) = config.files.iter().find(|file| file.name == check.place.file) else {
            return String::new();
        };
        // The check's item: from its line to the next item at the same indentation.
        let lines: Vec<&str> = file.text.lines().collect();
        let start = check.place.line.saturating_sub(1);
        let indent = check.place.col.saturating_sub(1);
        let mut end = start + 1;
        while end < lines.len() {
            let line = lines[end];
            let leading = line.len() - line.trim_start().len();
            if !line.trim().is_empty() && leading <= indent.saturating_sub(2) {
                break;
            }
            if leading == indent.saturating_sub(2) && line.trim_start().starts_with("- ") {
                break;
            }
            end += 1;
        }
        lines.get(start.saturating_sub(0)..end).map(|slice| slice.join("\n")).unwrap_or_default()
    }
}

impl Source for UiSource {
    fn auth(&self) -> Option<probenet_dashboard::Auth> {
        self.shared.dashboard_token().map(probenet_dashboard::Auth::Token)
    }

    fn reload_problem(&self) -> Option<ReloadProblem> {
        let reload = self.shared.last_reload()?;
        let crate::state::ReloadOutcome::Rejected { errors } = &reload.outcome else { return None };
        Some(ReloadProblem { at_ms: reload.at_ms, errors: errors.iter().map(dashboard_error).collect() })
    }

    fn version(&self) -> u64 {
        self.shared.ui_version.load(Ordering::Relaxed)
    }

    fn overview(&self) -> SourceResult<Overview> {
        let mut cached = self.overview.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, overview)) = cached.as_ref()
            && at.elapsed() < OVERVIEW_TTL
        {
            return Ok(overview.clone());
        }
        let overview = self.compute_overview()?;
        *cached = Some((Instant::now(), overview.clone()));
        Ok(overview)
    }

    fn check(&self, name: &str, range: Range) -> SourceResult<Option<CheckDetail>> {
        let config = self.shared.config();
        let Some(check) = config.check(name) else { return Ok(None) };
        let db = &self.store;
        let now = now_ms();
        let span = (range.to_ms - range.from_ms).max(60_000);
        let step = (span / 120).max(60_000);
        let latency_rows = db.latency(name, None, range.from_ms, range.to_ms).map_err(failed)?;
        let mut phases: Vec<String> = Vec::new();
        for row in &latency_rows {
            for phase in row.phases.keys() {
                if !phases.contains(phase) {
                    phases.push(phase.clone());
                }
            }
        }
        let order = ["resolve", "connect", "tls", "processing", "transfer", "request", "setup", "rtt"];
        phases.sort_by_key(|phase| order.iter().position(|known| known == phase).unwrap_or(order.len()));
        // Uptime over as many closed hours as the range holds, up to its end or the last closed hour.
        let uptime_as_of_ms = self.uptime_as_of()?;
        let uptimes = match uptime_as_of_ms {
            Some(as_of) => {
                let to = range.to_ms.div_euclid(HOUR_MS).saturating_mul(HOUR_MS).min(as_of);
                let hours = ((range.to_ms - range.from_ms).max(1) + HOUR_MS - 1) / HOUR_MS;
                self.ledger_uptimes(Some(name), to - hours * HOUR_MS, to)?
            }
            None => LedgerUptimes::new(),
        };
        let day_start = (now - 30 * DAY_MS).div_euclid(DAY_MS) * DAY_MS;
        let today = now.div_euclid(DAY_MS) * DAY_MS;
        let days = db.ledger_days(Some(name), day_start, today + DAY_MS).map_err(failed)?;
        let mut regions = Vec::new();
        for region in &check.regions {
            let latest = db.latest(name, region).map_err(failed)?;
            let series = db.latency_series(name, Some(region), range.from_ms, range.to_ms, step).map_err(failed)?;
            let buckets = db.uptime_buckets(name, Some(region), range.from_ms, range.to_ms, step).map_err(failed)?;
            let failures_at: BTreeMap<i64, i64> = buckets.iter().map(|bucket| (bucket.start_ms, bucket.down)).collect();
            let latency = series
                .iter()
                .map(|point| LatencyPoint {
                    at_ms: point.start_ms,
                    seconds: point.p50,
                    phases: phases.iter().map(|phase| point.phases.get(phase).copied()).collect(),
                    failures: u32::try_from(failures_at.get(&point.start_ms).copied().unwrap_or(0)).unwrap_or(0),
                })
                .collect();
            let (daily, daily_uptime) = daily_bars(&days, Some(region), day_start, today);
            let state = state_of(check, latest.as_ref(), now);
            let reason = match state {
                State::Degraded | State::Down => latest.as_ref().and_then(|run| run.outcome.error.clone()),
                State::Up | State::NoData => None,
            };
            regions.push(RegionDetail {
                reason,
                region: region.clone(),
                state,
                uptime: uptimes.get(&(name.to_owned(), Some(region.clone()))).copied(),
                latency,
                daily,
                daily_uptime,
            });
        }
        let first_run_ms = db
            .results(&ResultQuery {
                check: Some(name.to_owned()),
                region: None,
                since_ms: None,
                until_ms: None,
                only_failures: false,
                limit: 1,
                oldest_first: true,
            })
            .map_err(failed)?
            .first()
            .map(|run| run.planned_at_ms);
        let failures = db
            .results(&ResultQuery {
                check: Some(name.to_owned()),
                region: None,
                since_ms: Some(range.from_ms),
                until_ms: Some(range.to_ms),
                only_failures: true,
                limit: 30,
                oldest_first: false,
            })
            .map_err(failed)?
            .into_iter()
            .map(|result| Failure {
                region: result.region.clone(),
                planned_at_ms: result.planned_at_ms,
                reason: result.outcome.reason.map(|reason| reason.as_str().to_owned()).unwrap_or_default(),
                error: result.outcome.error.clone().unwrap_or_default(),
                assertions: result.outcome.assertions.clone(),
                screenshot: result
                    .outcome
                    .artifacts
                    .iter()
                    .find(|artifact| artifact.media_type.starts_with("image/"))
                    .and_then(|artifact| artifact.path.clone()),
                traceroute: result
                    .outcome
                    .artifacts
                    .iter()
                    .find(|artifact| artifact.name == probenet_checks::evidence::TRACEROUTE_ARTIFACT)
                    .and_then(|artifact| artifact.path.clone()),
            })
            .collect();
        Ok(Some(CheckDetail {
            name: check.name.clone(),
            kind: check.kind.key().to_owned(),
            target: check.kind.target(),
            labels: check.labels.clone(),
            definition: self.definition(check),
            from_ms: range.from_ms,
            to_ms: range.to_ms,
            phases,
            regions,
            failures,
            first_run_ms,
            degraded_after_seconds: check.kind.degraded_after().map(|after| after.as_secs_f64()),
            maintenance: maintenance_notices(
                &config.config.maintenance,
                &[(check.name.clone(), check.name.clone())],
                now,
            ),
            uptime_as_of_ms,
        }))
    }

    fn artifact(&self, path: &str) -> SourceResult<Option<Artifact>> {
        let found = match &self.shared.artifacts {
            Some(artifacts) if probenet_exporters::store::artifacts::is_object_key(path) => {
                artifacts.read(path).map_err(SourceError::new)?
            }
            _ => self.store.artifact(path).map_err(failed)?,
        };
        let Some(data) = found else { return Ok(None) };
        let media_type = if path.ends_with(".png") {
            "image/png"
        } else if path.ends_with(".json") {
            "application/json"
        } else {
            "application/octet-stream"
        };
        Ok(Some(Artifact { media_type: media_type.to_owned(), data }))
    }

    fn alerts(&self) -> SourceResult<Alerts> {
        let view = self.shared.alerting.view();
        let firing = view["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|alert| alert["state"] == "firing")
            .map(|alert| Alert {
                name: alert["alert"].as_str().unwrap_or_default().to_owned(),
                check: alert["check"].as_str().map(str::to_owned),
                regions: strings(&alert["regions"]),
                severity: alert["severity"].as_str().unwrap_or_default().to_owned(),
                summary: alert["summary"].as_str().unwrap_or_default().to_owned(),
                started_at_ms: alert["firing_since_ms"].as_i64().or(alert["since_ms"].as_i64()).unwrap_or(0),
                resolved_at_ms: None,
            })
            .collect();
        // History entries are state changes: a resolve closes the firing of the same key.
        let mut history: Vec<Alert> = Vec::new();
        let mut started: HashMap<String, i64> = HashMap::new();
        let mut entries: Vec<&serde_json::Value> = view["history"].as_array().into_iter().flatten().collect();
        entries.sort_by_key(|entry| entry["at_ms"].as_i64().unwrap_or(0));
        for entry in entries {
            let key = entry["key"].as_str().unwrap_or_default().to_owned();
            let at = entry["at_ms"].as_i64().unwrap_or(0);
            if entry["status"] == "firing" {
                started.entry(key).or_insert(at);
            } else {
                history.push(Alert {
                    name: entry["alert"].as_str().unwrap_or_default().to_owned(),
                    check: entry["check"].as_str().map(str::to_owned),
                    regions: strings(&entry["regions"]),
                    severity: String::new(),
                    summary: entry["summary"].as_str().unwrap_or_default().to_owned(),
                    started_at_ms: started.remove(&key).unwrap_or(at),
                    resolved_at_ms: Some(at),
                });
            }
        }
        history.reverse();
        Ok(Alerts { firing, history, notifiers: self.notifiers()? })
    }

    fn notifiers(&self) -> SourceResult<Vec<NotifierStatus>> {
        use probenet_alerting::notify::DeliveryStatus;
        let config = self.shared.config();
        let (deliveries, counters) = self.shared.alerting.deliveries();
        Ok(config
            .config
            .notifiers
            .iter()
            .map(|(name, spec)| {
                // The newest delivery that has an outcome (a queued one has none yet).
                let last = deliveries.iter().filter(|record| &record.notifier == name).find_map(|record| {
                    let (state, at_ms) = match record.status {
                        DeliveryStatus::Queued => return None,
                        DeliveryStatus::Retrying => ("retrying", record.queued_at_ms),
                        DeliveryStatus::Delivered => {
                            ("delivered", record.delivered_at_ms.unwrap_or(record.queued_at_ms))
                        }
                        DeliveryStatus::Failed => ("failed", record.failed_at_ms.unwrap_or(record.queued_at_ms)),
                    };
                    Some(Delivery {
                        alert: record.alert.clone(),
                        state: state.to_owned(),
                        error: record.last_error.clone().filter(|_| state != "delivered"),
                        at_ms,
                    })
                });
                let counted = counters.get(name);
                NotifierStatus {
                    name: name.clone(),
                    kind: spec.kind().to_owned(),
                    last,
                    sent: counted.map_or(0, |counters| counters.sent),
                    failed: counted.map_or(0, |counters| counters.failed),
                }
            })
            .collect())
    }

    fn probers(&self) -> SourceResult<Probers> {
        let plan = self.shared.plan_now();
        let view = self.shared.alerting.view();
        let impaired: HashMap<String, String> = view["impaired_regions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| {
                let region = row["region"].as_str()?.to_owned();
                let failing = row["failing_checks"].as_array().map_or(0, Vec::len);
                let reason = row["reason"].as_str().unwrap_or("failures");
                Some((region, format!("{failing} checks fail here ({reason}) while other regions pass them")))
            })
            .collect();
        let mut by_region: BTreeMap<String, Vec<Prober>> =
            plan.config.config.regions.keys().map(|region| (region.clone(), Vec::new())).collect();
        let now = std::time::Instant::now();
        for (index, prober) in plan.probers.iter().enumerate() {
            let seen = self.shared.health.seen(&prober.region, &prober.name, now);
            let report = seen.report.clone().unwrap_or_default();
            let reported = seen.report.is_some();
            by_region.entry(prober.region.clone()).or_default().push(Prober {
                name: prober.name.clone(),
                version: prober.version.clone(),
                last_heartbeat_ms: Some(prober.last_heartbeat_ms),
                assigned: plan.table.assigned(index) as u64,
                load: None,
                impaired: impaired.contains_key(&prober.region),
                impaired_reason: impaired.get(&prober.region).cloned(),
                late: seen.late(),
                result_delay_seconds: seen.worst_delay_seconds,
                results_pending: reported.then_some(report.results_pending),
                results_dropped: reported.then_some(report.results_dropped_total),
                runs_skipped: reported.then_some(report.runs_skipped_total),
            });
        }
        let schedulers = self.shared.cluster().map(|cluster| cluster.members()).unwrap_or_default();
        Ok(Probers {
            regions: by_region.into_iter().map(|(region, probers)| RegionProbers { region, probers }).collect(),
            schedulers,
        })
    }

    fn slos(&self) -> SourceResult<Vec<Slo>> {
        let view = self.shared.alerting.view();
        Ok(view["slos"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|slo| {
                let counts = &slo["window_counts"];
                let total = counts["total"].as_f64().unwrap_or(0.0);
                let good = total - counts["bad"].as_f64().unwrap_or(0.0);
                let check = slo["check"].as_str().unwrap_or_default().to_owned();
                Slo {
                    name: check.clone(),
                    check,
                    objective: slo["objective"].as_f64().unwrap_or(0.0) / 100.0,
                    window_days: u32::try_from(slo["window_ms"].as_i64().unwrap_or(0) / DAY_MS).unwrap_or(0),
                    sli: (total > 0.0).then(|| good / total),
                    budget_remaining: slo["budget_remaining"].as_f64(),
                    burn_rates: ["5m", "30m", "1h", "6h"]
                        .iter()
                        .map(|window| BurnRate {
                            window: (*window).to_owned(),
                            rate: slo["burn_rates"][*window].as_f64(),
                        })
                        .collect(),
                }
            })
            .collect())
    }

    fn status_page(&self) -> SourceResult<Option<StatusPage>> {
        let config = self.shared.config();
        let Some(page) = &config.config.dashboard.status_page else { return Ok(None) };
        let db = &self.store;
        let now = now_ms();
        let day_start = (now - 29 * DAY_MS).div_euclid(DAY_MS) * DAY_MS;
        let today = now.div_euclid(DAY_MS) * DAY_MS;
        let mut checks = Vec::new();
        let mut incidents = Vec::new();
        for (name, shown) in &page.checks {
            let Some(check) = config.check(name) else { continue };
            let mut regions = Vec::new();
            for region in &check.regions {
                let latest = db.latest(name, region).map_err(failed)?;
                regions.push(StatusRegion { region: region.clone(), state: state_of(check, latest.as_ref(), now) });
            }
            // The check as a whole: its quorum view.
            let days = db.ledger_days(Some(name), day_start, today + DAY_MS).map_err(failed)?;
            let (daily, uptime) = daily_bars(&days, None, day_start, today);
            checks.push(StatusCheck { name: name.clone(), display_name: shown.clone(), regions, daily, uptime });
            for incident in db.incidents(Some(name), None, now - 30 * DAY_MS, now).map_err(failed)? {
                incidents.push(Incident {
                    title: format!("{shown} down in {}", incident.region),
                    checks: vec![name.clone()],
                    regions: vec![incident.region.clone()],
                    state: State::Down,
                    started_at_ms: incident.start_ms,
                    resolved_at_ms: incident.end_ms,
                    summary: incident.reason.unwrap_or_default(),
                });
            }
        }
        incidents.sort_by_key(|incident| std::cmp::Reverse(incident.started_at_ms));
        incidents.truncate(50);
        let maintenance = maintenance_notices(&config.config.maintenance, &page.checks, now);
        let uptime_as_of_ms = self.uptime_as_of()?;
        Ok(Some(StatusPage { title: page.title.clone(), checks, incidents, maintenance, uptime_as_of_ms }))
    }
}

/// The maintenance of these checks (name, shown name) in progress at `now` or starting within a week, soonest
/// first: for the status page and a check's page.
fn maintenance_notices(
    windows: &[probenet_checks::config::maintenance::Maintenance],
    shown: &[(String, String)],
    now: i64,
) -> Vec<MaintenanceNotice> {
    let mut notices: Vec<MaintenanceNotice> = windows
        .iter()
        .filter_map(|window| {
            let checks: Vec<String> =
                shown.iter().filter(|(name, _)| window.applies_to(name)).map(|(name, _)| name.clone()).collect();
            let span = window.next_span(now).filter(|span| span.start_ms <= now + 7 * DAY_MS)?;
            (!checks.is_empty()).then(|| MaintenanceNotice {
                checks,
                mode: window.mode.as_str().to_owned(),
                start_ms: span.start_ms,
                end_ms: span.end_ms,
                active: span.contains(now),
            })
        })
        .collect();
    notices.sort_by_key(|notice| (notice.start_ms, notice.end_ms));
    notices
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|item| item.as_str().map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(path: &str, message: &str) -> probenet_checks::ConfigError {
        probenet_checks::ConfigError {
            file: "c.yaml".into(),
            line: 3,
            col: 5,
            path: path.into(),
            message: message.into(),
        }
    }

    #[test]
    fn the_status_page_announces_maintenance_of_its_checks_within_a_week() {
        let config = probenet_checks::config::load_str(
            "c.yaml",
            "checks:\n  - {name: web, http: {url: 'https://example.com/'}}\n  - {name: db, tcp: {target: 'example.com:5432'}}\n\
             maintenance:\n  \
             - {name: now, checks: [web], start: '2026-12-07T09:00:00Z', end: '2026-12-07T11:00:00Z'}\n  \
             - {name: weekly, checks: [web, db], schedule: '0 2 * * SUN', duration: 1h, mode: pause}\n  \
             - {name: far, checks: [web], start: '2027-03-01T00:00:00Z', duration: 1h}\n  \
             - {name: other, checks: [db], start: '2026-12-07T09:00:00Z', duration: 1h}\n  \
             - {name: over, checks: [web], start: '2026-12-01T00:00:00Z', duration: 1h}\n",
        )
        .unwrap();
        // Monday 2026-12-07 10:00 UTC; only `web` is on the page.
        let now = 1_796_637_600_000;
        let notices = maintenance_notices(&config.maintenance, &[("web".into(), "Website".into())], now);
        let seen: Vec<(&str, bool, i64, i64)> =
            notices.iter().map(|n| (n.mode.as_str(), n.active, n.start_ms, n.end_ms)).collect();
        assert_eq!(
            seen,
            [
                ("mute", true, now - 3_600_000, now + 3_600_000),
                ("pause", false, now + 6 * DAY_MS - 8 * 3_600_000, now + 6 * DAY_MS - 7 * 3_600_000)
            ],
            "in progress, then next Sunday 02:00; not the one in March, not db's, not the one over"
        );
        assert!(notices.iter().all(|n| n.checks == ["web"]), "only the page's checks: {notices:?}");
    }

    #[test]
    fn the_status_page_announces_a_window_of_the_api_like_one_of_the_config() {
        use crate::maintenance::ApiWindow;
        let checks = "checks:\n  - {name: web, http: {url: 'https://example.com/'}}\n";
        let files = vec![probenet_checks::wire::ConfigFile { name: "c.yaml".into(), text: checks.into() }];
        let serde_json::Value::Object(window) = serde_json::json!({
            "name": "db-upgrade", "checks": ["web"], "start": "2026-12-07T09:00:00Z", "end": "2026-12-07T11:00:00Z",
            "mode": "pause", "reason": "OPS-7", "created_by": "alice"
        }) else {
            panic!("not an object")
        };
        let api = ApiWindow { name: "db-upgrade".into(), window, token: "0123456789ab".into(), created_at_ms: 0 };
        let loaded = crate::config::Loaded::build(files, &[api]).unwrap();
        // Monday 2026-12-07 10:00 UTC.
        let now = 1_796_637_600_000;
        let notices = maintenance_notices(&loaded.config.maintenance, &[("web".into(), "Website".into())], now);
        let seen: Vec<(&str, bool, i64, i64)> =
            notices.iter().map(|n| (n.mode.as_str(), n.active, n.start_ms, n.end_ms)).collect();
        assert_eq!(seen, [("pause", true, now - 3_600_000, now + 3_600_000)]);
        assert_eq!(notices[0].checks, ["web"]);
    }

    #[test]
    fn the_dashboard_elides_quoted_values() {
        let hook = r#""https://hooks.example/T0/B0/s3cr\"et" is not a valid URL: invalid port number"#;
        let shown = dashboard_error(&error("notifiers.slack.url", hook));
        assert_eq!(shown, r#"c.yaml:3:5: notifiers.slack.url: "…" is not a valid URL: invalid port number"#);
        assert!(!shown.contains("s3cr"), "{shown}");
        let unclosed = dashboard_error(&error("", r#"found "token: abc"#));
        assert_eq!(unclosed, r#"c.yaml:3:5: found "…""#);
        // In a check too: a URL with a password written in it is refused, and must not reach the page.
        let url = error("checks[0].http.url", r#""http://ops:hunter22@x:99999/" is not a valid URL"#);
        assert_eq!(dashboard_error(&url), r#"c.yaml:3:5: checks[0].http.url: "…" is not a valid URL"#);
    }
}
