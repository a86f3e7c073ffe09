//! The plain view types a [`Source`](crate::Source) returns: what every page shows, with no storage in them.
//!
//! Times are milliseconds since the Unix epoch (UTC); durations are seconds; uptimes are fractions in `0..=1`
//! (the share of successful runs: up or degraded). `None` always means "no data", never zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use probenet_checks::Assertion;

/// The state of one check in one region, as shown by a coloured dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The last run succeeded.
    Up,
    /// The last run succeeded but was slow (or the check is flapping: the source decides).
    Degraded,
    /// The last run failed.
    Down,
    /// No run yet, or the last one is too old to tell.
    #[default]
    NoData,
}

impl State {
    /// Every state, in the order of the compact overview encoding (`0` is up, `3` is no data).
    pub const ALL: [State; 4] = [State::Up, State::Degraded, State::Down, State::NoData];

    /// The JSON name: `up`, `degraded`, `down` or `no_data`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::NoData => "no_data",
        }
    }

    /// The index in [`State::ALL`], used by the compact overview encoding.
    pub fn index(self) -> u8 {
        match self {
            Self::Up => 0,
            Self::Degraded => 1,
            Self::Down => 2,
            Self::NoData => 3,
        }
    }
}

/// Everything the overview page shows: every check against every region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Overview {
    /// The source's "now": the time the figures were computed at.
    pub generated_at_ms: i64,
    /// The regions, in display order (the columns of the overview).
    pub regions: Vec<String>,
    /// The checks, in display order (the rows).
    pub checks: Vec<CheckRow>,
    /// The end of the closed hours the uptimes sum (the uptime ledger's hours, `docs/uptime.md`): the 24 h
    /// uptime is that of the 24 hours before it. `None` when no hour is closed yet.
    #[serde(default)]
    pub uptime_as_of_ms: Option<i64>,
}

/// One check in the overview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckRow {
    /// The check's unique name.
    pub name: String,
    /// Its kind: `http`, `tcp`, `dns`, `tls`, `icmp`, `browser`...
    pub kind: String,
    /// What it probes (a URL, `host:port`, a name), never holding a secret.
    pub target: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// One cell per region the check runs in. A region of [`Overview::regions`] without a cell is shown as not
    /// assigned (blank), which differs from [`State::NoData`].
    pub cells: Vec<Cell>,
}

/// One check in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Cell {
    /// The region, one of [`Overview::regions`].
    pub region: String,
    /// The current state.
    pub state: State,
    /// When the last run was planned.
    pub last_run_ms: Option<i64>,
    /// How long the last run took, in seconds.
    pub last_seconds: Option<f64>,
    /// Uptime by time (up / (up + down), the uptime ledger's) over the last 24 closed hours.
    pub uptime_24h: Option<f64>,
    /// The same over the last 7 days of closed hours.
    pub uptime_7d: Option<f64>,
    /// The same over the last 30 days of closed hours.
    pub uptime_30d: Option<f64>,
    /// Latency in seconds, oldest first, evenly spaced (for example the median of each of the last 24 hours);
    /// `None` for a slot without a successful run. Up to 60 points are drawn.
    pub sparkline: Vec<Option<f64>>,
    /// The last runs, oldest first (up to [`RECENT_RUNS`]): the overview's bar of recent results, which has
    /// something to show from the first run on (a sparkline of hourly medians needs hours).
    #[serde(default)]
    pub recent: Vec<RecentRun>,
    /// Why the last run was degraded or down (its reason, such as `duration` or `status`); `None` when it was
    /// up or there is none.
    #[serde(default)]
    pub reason: Option<String>,
}

/// How many recent runs a cell keeps for the overview's bar.
pub const RECENT_RUNS: usize = 12;

/// One recent run of a check in a region.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct RecentRun {
    /// When it was planned.
    pub at_ms: i64,
    /// Its outcome: up, degraded or down.
    pub state: State,
    /// How long it took, in seconds.
    pub seconds: Option<f64>,
}

/// A time range asked for by the check page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// The start, inclusive.
    pub from_ms: i64,
    /// The end, exclusive.
    pub to_ms: i64,
}

/// Everything the page of one check shows, for one time range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckDetail {
    /// The check's name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// What it probes.
    pub target: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The check's definition as the user wrote it (YAML), secrets left as references.
    pub definition: String,
    /// The range the series cover.
    pub from_ms: i64,
    /// The end of the range.
    pub to_ms: i64,
    /// The names of the latency phases, in the order they happen (`resolve`, `connect`, `tls`, `processing`,
    /// `transfer`...): [`LatencyPoint::phases`] follows this order.
    pub phases: Vec<String>,
    /// Latency and state per region.
    pub regions: Vec<RegionDetail>,
    /// The most recent failed runs, newest first (a few dozen at most).
    pub failures: Vec<Failure>,
    /// When the oldest stored run of the check was planned (`None`: no run yet). The check page picks its
    /// default range from it, so that a check a few minutes old does not open on an empty 24 hours.
    #[serde(default)]
    pub first_run_ms: Option<i64>,
    /// The duration above which a successful run counts as degraded (`degraded_after`), in seconds: drawn on
    /// the latency chart.
    #[serde(default)]
    pub degraded_after_seconds: Option<f64>,
    /// Its maintenance windows in progress or starting within a week, soonest first.
    #[serde(default)]
    pub maintenance: Vec<MaintenanceNotice>,
    /// The end of the closed hours the uptimes sum (see [`Overview::uptime_as_of_ms`]).
    #[serde(default)]
    pub uptime_as_of_ms: Option<i64>,
}

/// One region of a check's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RegionDetail {
    /// The region.
    pub region: String,
    /// The current state.
    pub state: State,
    /// Uptime by time over the closed hours of the asked range: as many hours as the range holds (rounded up),
    /// up to its end or [`CheckDetail::uptime_as_of_ms`], whichever is earlier.
    pub uptime: Option<f64>,
    /// Latency over the range, oldest first: one point per bucket (a few hundred at most).
    pub latency: Vec<LatencyPoint>,
    /// Uptime per UTC day, oldest first (the last 30 days, say).
    pub daily: Vec<DailyUptime>,
    /// Uptime by time over the days of [`RegionDetail::daily`] together.
    #[serde(default)]
    pub daily_uptime: Option<f64>,
    /// Why the current state is what it is, when it is not up: for a degraded run the limit it passed
    /// (`took 1.31 s, over degraded_after 1 s`), for a failed one its error. Never holds a secret.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The latency of one bucket of time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LatencyPoint {
    /// The start of the bucket.
    pub at_ms: i64,
    /// The total duration in seconds (the median of the bucket's successful runs, say); `None` if none.
    pub seconds: Option<f64>,
    /// Seconds per phase, in the order of [`CheckDetail::phases`]; `None` for a phase that did not happen.
    pub phases: Vec<Option<f64>>,
    /// Failed runs in the bucket.
    pub failures: u32,
}

/// The uptime of one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DailyUptime {
    /// Midnight UTC at the start of the day.
    pub day_ms: i64,
    /// Uptime by time that day (its closed hours); `None` if it was neither up nor down.
    pub uptime: Option<f64>,
}

/// One failed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Failure {
    /// The region it ran in.
    pub region: String,
    /// When it was planned.
    pub planned_at_ms: i64,
    /// The failure reason label (`timeout`, `status`, `cert_expired`...: `probenet_checks::Reason::as_str`).
    pub reason: String,
    /// The one-line error text.
    pub error: String,
    /// Every assertion evaluated, with what was observed.
    pub assertions: Vec<Assertion>,
    /// The artifact path of the browser screenshot, served by [`Source::artifact`](crate::Source::artifact) at
    /// `{base}/api/ui/artifacts/{path}`.
    pub screenshot: Option<String>,
    /// The artifact path of the traceroute the prober captured for this failure (`traceroute.json`, see
    /// `probenet_checks::evidence`), served like the screenshot; absent on old results, for up runs and for
    /// failures within the prober's rate limit.
    #[serde(default)]
    pub traceroute: Option<String>,
}

/// A file served from the store, such as a screenshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Artifact {
    /// Its media type, such as `image/png`.
    pub media_type: String,
    /// The content.
    pub data: Vec<u8>,
}

/// A config reload that was refused: every dashboard page shows it until a reload succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReloadProblem {
    /// When the reload was tried.
    pub at_ms: i64,
    /// Its errors, one a line as `probenet validate` prints them (values that may hold a credential elided).
    pub errors: Vec<String>,
}

/// Alerts now and before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Alerts {
    /// The alerts firing now, most severe and oldest first.
    pub firing: Vec<Alert>,
    /// Resolved alerts, newest first (a few hundred at most).
    pub history: Vec<Alert>,
    /// Every configured notifier and how its last delivery went.
    #[serde(default)]
    pub notifiers: Vec<NotifierStatus>,
}

/// A configured notifier and its last delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NotifierStatus {
    /// Its name in the config.
    pub name: String,
    /// Its kind (`webhook`, `slack`...).
    pub kind: String,
    /// The last notification it delivered, gave up or is retrying; `None` before the first.
    pub last: Option<Delivery>,
    /// Notifications delivered since the scheduler started (or the config last changed).
    pub sent: u64,
    /// Notifications given up since then.
    pub failed: u64,
}

/// How one notification's delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Delivery {
    /// The alert it told of.
    pub alert: String,
    /// `delivered`, `failed` (given up) or `retrying`.
    pub state: String,
    /// The last failure's message (never holds a secret).
    pub error: Option<String>,
    /// When it was delivered or given up (for one retrying: queued).
    pub at_ms: i64,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Alert {
    /// The alert rule's name.
    pub name: String,
    /// The check it is about, if any.
    pub check: Option<String>,
    /// The regions it is about (empty: all, or not region-bound).
    pub regions: Vec<String>,
    /// Its severity, such as `critical`, `warning`, `info`.
    pub severity: String,
    /// A one-line summary.
    pub summary: String,
    /// When it started firing.
    pub started_at_ms: i64,
    /// When it resolved; `None` while it fires.
    pub resolved_at_ms: Option<i64>,
}

/// The probers of every region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Probers {
    /// One entry per region, in display order.
    pub regions: Vec<RegionProbers>,
    /// The scheduler replicas seen lately (empty for a single scheduler).
    #[serde(default)]
    pub schedulers: Vec<Scheduler>,
}

/// One scheduler replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Scheduler {
    /// Its name.
    pub name: String,
    /// Where probers and readers reach it.
    pub url: String,
    /// The probenet version it runs.
    pub version: String,
    /// When it last announced itself.
    pub last_seen_ms: i64,
    /// Whether it leads (assigns, evaluates alerts).
    pub leader: bool,
}

/// The probers of one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RegionProbers {
    /// The region.
    pub region: String,
    /// Its probers.
    pub probers: Vec<Prober>,
}

/// One prober.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Prober {
    /// Its name.
    pub name: String,
    /// The probenet version it runs.
    pub version: String,
    /// Its last heartbeat; `None` if it never sent one.
    pub last_heartbeat_ms: Option<i64>,
    /// How many check/region pairs it is assigned.
    pub assigned: u64,
    /// Its load, `0..=1` (the share of its run capacity in use).
    pub load: Option<f64>,
    /// Whether it is marked impaired (its own failures are not counted against checks).
    pub impaired: bool,
    /// Why it is impaired, if it is.
    pub impaired_reason: Option<String>,
    /// Why its results arrive late, if they do (they arrived more than 15 s after their run in the last minute).
    #[serde(default)]
    pub late: Option<String>,
    /// The latest arrival of its results after their run ended, over the last minute, in seconds.
    #[serde(default)]
    pub result_delay_seconds: Option<f64>,
    /// Results it holds unacknowledged (memory and spool), from its last heartbeat.
    #[serde(default)]
    pub results_pending: Option<u64>,
    /// Results it lost since it started, from its last heartbeat.
    #[serde(default)]
    pub results_dropped: Option<u64>,
    /// Planned runs it did not make since it started, from its last heartbeat.
    #[serde(default)]
    pub runs_skipped: Option<u64>,
}

/// One service level objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Slo {
    /// Its name.
    pub name: String,
    /// The check it measures.
    pub check: String,
    /// The objective, such as `0.999`.
    pub objective: f64,
    /// The window, in days (30, say).
    pub window_days: u32,
    /// The uptime over the window so far.
    pub sli: Option<f64>,
    /// The share of the error budget left, `1` untouched, `0` spent, negative overspent.
    pub budget_remaining: Option<f64>,
    /// Burn rates over the usual windows (`1h`, `6h`, `1d`, `3d`...), in display order: `1` spends the budget
    /// exactly over the window.
    pub burn_rates: Vec<BurnRate>,
}

/// A burn rate over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct BurnRate {
    /// The window as written, such as `1h`.
    pub window: String,
    /// The rate; `None` if there is no data.
    pub rate: Option<f64>,
}

/// The public status page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StatusPage {
    /// Its title, such as `Example Inc. status`.
    pub title: String,
    /// The checks chosen for it, in display order.
    pub checks: Vec<StatusCheck>,
    /// Incidents, newest first (ongoing ones included).
    pub incidents: Vec<Incident>,
    /// Maintenance of its checks in progress or starting within a week, soonest first.
    #[serde(default)]
    pub maintenance: Vec<MaintenanceNotice>,
    /// The end of the closed hours the uptimes sum (see [`Overview::uptime_as_of_ms`]).
    #[serde(default)]
    pub uptime_as_of_ms: Option<i64>,
}

/// A maintenance window as the status page announces it: when, and which of its checks (never the window's own
/// name, which is an operator's word).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MaintenanceNotice {
    /// The check names it concerns (display names are looked up on the page).
    pub checks: Vec<String>,
    /// `mute` (the checks still run) or `pause` (they do not).
    pub mode: String,
    /// When it starts (or started).
    pub start_ms: i64,
    /// When it ends.
    pub end_ms: i64,
    /// Whether it is in progress.
    pub active: bool,
}

/// A check on the status page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StatusCheck {
    /// The check's name.
    pub name: String,
    /// The name shown to the public.
    pub display_name: String,
    /// The state per region.
    pub regions: Vec<StatusRegion>,
    /// Uptime per day, oldest first, the check as a whole (its quorum view; for the bars of the last 30 or 90
    /// days).
    pub daily: Vec<DailyUptime>,
    /// Uptime by time over the days of [`StatusCheck::daily`] together.
    #[serde(default)]
    pub uptime: Option<f64>,
}

/// The state of a status-page check in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StatusRegion {
    /// The region.
    pub region: String,
    /// Its state.
    pub state: State,
}

/// An incident shown on the status page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Incident {
    /// A short title.
    pub title: String,
    /// The check names it concerns (display names are looked up on the page).
    pub checks: Vec<String>,
    /// The regions it concerned.
    pub regions: Vec<String>,
    /// `down` or `degraded`.
    pub state: State,
    /// When it started.
    pub started_at_ms: i64,
    /// When it ended; `None` while ongoing.
    pub resolved_at_ms: Option<i64>,
    /// Free text, such as the error seen.
    pub summary: String,
}
