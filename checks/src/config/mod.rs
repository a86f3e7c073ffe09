//! The config: loading files, the raw YAML model, validation into ready types, and the JSON Schema.

pub mod alerting;
mod context;
pub mod dashboard;
mod error;
pub mod exporters;
mod load;
pub mod maintenance;
pub mod objects;
mod one_or_many;
mod path;
pub mod reference;
pub mod spec;
mod validate;
pub mod view;

use std::collections::BTreeMap;
use std::time::Duration;

pub use context::{
    Ctx, LITERAL_CREDENTIAL, SecretRef, is_credential_header, is_credential_selector, parse_size, split_host_port,
};
pub use error::{ConfigError, ConfigErrors};
pub use load::{
    SourceFile, is_stack_file, load_paths, load_paths_checking_secrets, load_sources, load_str, read_sources,
};
pub use one_or_many::{ONE_OR_MANY, OneOrMany};
pub use path::Path;
pub use validate::validate;
pub use view::{ViewError, Views, region_view};

use crate::kind::{Kind, KindCheck};
use crate::{api, browser, dns, grpc, http, icmp, tcp, tls, websocket};

/// A validated config, ready to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Declared regions (or the implicit `local` one).
    pub regions: BTreeMap<String, Region>,
    /// Every check, in file order.
    pub checks: Vec<Check>,
    /// Every secret reference and where it is written.
    pub secrets: Vec<SecretRef>,
    /// What works but should change, such as credentials written literally; in file and line order.
    pub warnings: Vec<ConfigError>,
    /// How checks are spread over probers.
    pub scheduling: Scheduling,
    /// Where results go besides the embedded store.
    pub exporters: Vec<exporters::Exporter>,
    /// Alert rules, in file order.
    pub alerts: Vec<alerting::AlertRule>,
    /// Notifiers by name.
    pub notifiers: BTreeMap<String, alerting::NotifierSpec>,
    /// The region-impaired alert.
    pub probe_health: alerting::ProbeHealth,
    /// Maintenance windows, in file order.
    pub maintenance: Vec<maintenance::Maintenance>,
    /// The dashboard and the status page.
    pub dashboard: dashboard::Dashboard,
    /// The object store, if one is set.
    pub objects: Option<objects::Objects>,
    /// Whether some file writes a `checks` key (`checks: []` included): a reload to no checks is taken only
    /// then, so a file cut short by a half-saved edit does not stop every check.
    pub checks_written: bool,
}

/// How the scheduler spreads checks over probers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduling {
    /// Probers of a region that run each of its checks.
    pub probers_per_region: u32,
    /// How long a registration lasts without a heartbeat.
    pub lease: Duration,
}

impl Default for Scheduling {
    fn default() -> Self {
        Self { probers_per_region: 1, lease: Duration::from_secs(15) }
    }
}

/// One region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Region {
    /// Labels added to every result from this region.
    pub labels: BTreeMap<String, String>,
}

/// Where something is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A validated check.
#[derive(Debug, Clone)]
pub struct Check {
    /// Unique name.
    pub name: String,
    /// When it runs.
    pub schedule: Schedule,
    /// How long one run may take.
    pub timeout: Duration,
    /// How far back planned runs nobody made are made by the prober that takes the check over.
    pub catch_up: Duration,
    /// Regions it runs from.
    pub regions: Vec<String>,
    /// Labels attached to its results.
    pub labels: BTreeMap<String, String>,
    /// Its service level objective.
    pub slo: Option<alerting::Slo>,
    /// The checks it needs: while one is down in a region, its failures there are that check's doing.
    pub depends_on: Vec<String>,
    /// How sensitive Grafana synthetic monitoring's legacy alerts are for it.
    pub alert_sensitivity: spec::AlertSensitivity,
    /// What it does.
    pub kind: CheckKind,
    /// Where it is defined.
    pub place: Place,
}

/// When a check runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often, on a fixed grid.
    Every(Duration),
    /// On a crontab schedule in a time zone.
    Cron(Box<CronSchedule>),
}

impl Schedule {
    /// The first planned time at or after `at_ms` (ms since the Unix epoch): interval checks on the grid
    /// `k * interval + offset_ms`, cron checks at their next occurrence in their time zone. `None` when a cron
    /// schedule never fires again.
    pub fn planned_at_or_after(&self, offset_ms: u64, at_ms: i64) -> Option<i64> {
        use chrono::TimeZone as _;
        match self {
            Self::Every(interval) => {
                let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).max(1);
                Some(crate::wire::next_planned_ms(at_ms, interval_ms, offset_ms))
            }
            Self::Cron(cron) => {
                // Cron works in whole seconds: start at the first whole second at or after `at_ms`.
                let start_ms = at_ms.div_euclid(1000) * 1000 + if at_ms.rem_euclid(1000) == 0 { 0 } else { 1000 };
                let start = cron.timezone.timestamp_millis_opt(start_ms).single()?;
                let next = cron.cron.find_next_occurrence(&start, true).ok()?;
                let next_ms = next.timestamp_millis();
                (next_ms >= at_ms).then_some(next_ms)
            }
        }
    }

    /// The grid offset of `check` in `region` on this schedule (0 for cron schedules).
    pub fn offset_ms(&self, check: &str, region: &str) -> u64 {
        match self {
            Self::Every(interval) => {
                crate::wire::offset_ms(check, region, u64::try_from(interval.as_millis()).unwrap_or(u64::MAX))
            }
            Self::Cron(_) => 0,
        }
    }

    /// Whether `planned_at_ms` is one of this schedule's planned times for a pair at `offset_ms`.
    pub fn plans(&self, offset_ms: u64, planned_at_ms: i64) -> bool {
        planned_at_ms > i64::MIN / 2
            && planned_at_ms < i64::MAX / 2
            && self.planned_at_or_after(offset_ms, planned_at_ms) == Some(planned_at_ms)
    }
}

/// A parsed crontab schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// The expression as written.
    pub expr: String,
    /// The parsed expression.
    pub cron: croner::Cron,
    /// The time zone it is read in.
    pub timezone: chrono_tz::Tz,
}

/// What a check does: exactly one kind, holding the kind's validated check. A new kind is a folder with a
/// [`KindCheck`] impl, a line in [`Kind`]'s table and a variant here.
#[derive(Debug, Clone)]
pub enum CheckKind {
    /// An HTTP(S) request.
    Http(Box<http::HttpCheck>),
    /// A DNS query.
    Dns(dns::DnsCheck),
    /// A TLS handshake.
    Tls(tls::TlsCheck),
    /// A TCP connection.
    Tcp(tcp::TcpCheck),
    /// ICMP echo requests.
    Icmp(icmp::IcmpCheck),
    /// A browser journey.
    Browser(browser::BrowserCheck),
    /// A WebSocket conversation.
    Websocket(Box<websocket::WebsocketCheck>),
    /// A sequence of HTTP requests.
    Api(Box<api::ApiCheck>),
    /// A gRPC health check or call.
    Grpc(Box<grpc::GrpcCheck>),
}

/// Evaluates `$body` with `$check` bound to a reference to the kind's check (a [`KindCheck`]), whatever the
/// variant: the one exhaustive match that everything common to kinds goes through.
macro_rules! with_check {
    ($kind:expr, $check:ident => $body:expr) => {
        match $kind {
            $crate::config::CheckKind::Http(boxed) => {
                let $check: &$crate::http::HttpCheck = boxed;
                $body
            }
            $crate::config::CheckKind::Dns($check) => $body,
            $crate::config::CheckKind::Tls($check) => $body,
            $crate::config::CheckKind::Tcp($check) => $body,
            $crate::config::CheckKind::Icmp($check) => $body,
            $crate::config::CheckKind::Browser($check) => $body,
            $crate::config::CheckKind::Websocket(boxed) => {
                let $check: &$crate::websocket::WebsocketCheck = boxed;
                $body
            }
            $crate::config::CheckKind::Api(boxed) => {
                let $check: &$crate::api::ApiCheck = boxed;
                $body
            }
            $crate::config::CheckKind::Grpc(boxed) => {
                let $check: &$crate::grpc::GrpcCheck = boxed;
                $body
            }
        }
    };
}
pub(crate) use with_check;

impl CheckKind {
    /// Which kind it is.
    pub fn kind(&self) -> Kind {
        fn of<C: KindCheck>(_: &C) -> Kind {
            C::KIND
        }
        with_check!(self, check => of(check))
    }

    /// The kind key, as written in YAML.
    pub fn key(&self) -> &'static str {
        self.kind().key()
    }

    /// What the check probes, as the `instance` label shows it.
    pub fn target(&self) -> String {
        with_check!(self, check => KindCheck::target(check))
    }

    /// Why this check cannot finish within `timeout` whatever the target does, and the keys of the kind's
    /// body (the first one written is blamed) that make it so.
    pub fn timeout_problem(&self, timeout: Duration) -> Option<(&'static [&'static str], String)> {
        with_check!(self, check => KindCheck::timeout_problem(check, timeout))
    }

    /// The host the check probes and which of its addresses (see [`KindCheck::ip_target`]).
    pub fn ip_target(&self) -> Option<crate::net::IpTarget> {
        with_check!(self, check => KindCheck::ip_target(check))
    }

    /// When a passing run counts as degraded (see [`KindCheck::degraded_after`]).
    pub fn degraded_after(&self) -> Option<Duration> {
        with_check!(self, check => KindCheck::degraded_after(check))
    }

    /// A successful outcome with every detail this check reports (see [`KindCheck::representative`]); with
    /// `ip_strategy: all`, the per-address results of a name with two addresses (one A, one AAAA), so that the
    /// per-address series are counted too.
    pub fn representative(&self) -> crate::Outcome {
        let mut outcome = with_check!(self, check => KindCheck::representative(check));
        if self.ip_target().is_some_and(|target| target.plan != crate::net::IpPlan::First) {
            crate::ips::add_representative(&mut outcome);
        }
        outcome
    }
}

/// A kind's raw YAML body: it validates itself into the kind's ready type.
pub trait KindSpec: serde::de::DeserializeOwned {
    /// The validated check.
    type Check;
    /// Validates the body written at `path`, recording every error in `cx`. Pure: no I/O.
    fn validate(self, cx: &mut Ctx<'_>, path: &Path) -> Option<Self::Check>;
}

impl Schedule {
    /// How many times a day this schedule fires (cron: counted over one day, in its time zone).
    pub fn runs_per_day(&self) -> f64 {
        match self {
            Self::Every(interval) => 86_400.0 / interval.as_secs_f64().max(1.0),
            Self::Cron(cron) => {
                use chrono::TimeZone;
                let Some(start) = cron.timezone.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).single() else {
                    return 0.0;
                };
                let end = start + chrono::Duration::days(1);
                cron.cron.iter_from(start, croner::Direction::Forward).take_while(|at| *at < end).take(1441).count()
                    as f64
            }
        }
    }
}

impl Config {
    /// Runs a day over every check and region (0, never -0, for no check: an empty float `sum()` is -0.0,
    /// which prints as "-0").
    pub fn runs_per_day(&self) -> f64 {
        self.checks
            .iter()
            .map(|check| check.schedule.runs_per_day() * check.regions.len() as f64)
            .fold(0.0, |a, b| a + b)
    }

    /// Checks that every secret reference resolves on this machine; one error per unresolvable one.
    pub fn check_secrets(&self) -> Vec<ConfigError> {
        self.secrets
            .iter()
            .filter_map(|reference| {
                let error = reference.template.check_resolvable().err()?;
                Some(ConfigError { message: error.0, ..reference.place.clone() })
            })
            .collect()
    }
}

/// The closest candidate to `word`, for "did you mean".
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}
