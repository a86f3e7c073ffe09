//! The raw config as written in YAML: strict serde types whose doc comments are the user documentation.
//!
//! Values that need parsing (durations, cron, regexes, URLs) stay strings here; `validate` turns them into
//! ready types. Each kind's body is deserialized separately (see [`Deferred`]) so one bad check body does
//! not hide the errors of the rest of the file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::Deserialize;

use super::alerting::spec as alerting;
use crate::{api, browser, dns, grpc, http, icmp, tcp, tls, websocket};

/// A probenet config file. Several files (or a directory of `*.yaml`) are merged.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "probenet config")]
pub struct RawFile {
    /// The regions checks run from: a map of region name to its options (`{}` for none).
    /// Without any region, checks run from one implicit region named `local`.
    pub regions: Option<Deferred<BTreeMap<String, RawRegion>>>,
    /// Defaults applied to every check that does not set its own. At most one file may set them.
    pub defaults: Option<Deferred<RawDefaults>>,
    /// The checks.
    pub checks: Option<Deferred<Vec<RawCheck>>>,
    /// How the scheduler spreads checks over probers. At most one file may set it.
    pub scheduling: Option<Deferred<RawScheduling>>,
    /// Where results go besides the scheduler's embedded store: remote write, result logs, Loki, OTLP. Every file may
    /// add exporters.
    pub exporters: Option<Deferred<Vec<super::exporters::RawExporter>>>,
    /// Where alerts are sent: a map of notifier name to exactly one kind (`webhook`, `slack`, `alertmanager`,
    /// `pagerduty`, `email`, `discord`, `teams`, `telegram`, `ntfy`, `opsgenie`, `google_chat`, `mattermost`).
    pub notifiers: Option<Deferred<BTreeMap<String, alerting::RawNotifier>>>,
    /// Alert rules over the checks' results in every region.
    pub alerts: Option<Deferred<Vec<alerting::RawAlert>>>,
    /// The `region-impaired` alert: when a region counts as impaired and who is told. At most one file may set it.
    pub probe_health: Option<Deferred<alerting::RawProbeHealth>>,
    /// Maintenance windows: one-off or recurring (cron, time-zone aware) spans during which the alerts of some
    /// checks are muted, or their runs paused. Every file may add windows.
    pub maintenance: Option<Deferred<Vec<super::maintenance::RawMaintenance>>>,
    /// The dashboard's title and read token, and the public status page. At most one file may set it.
    pub dashboard: Option<Deferred<super::dashboard::RawDashboard>>,
    /// The object store (a bucket) for what must outlive a machine: screenshots, the archive of old results,
    /// backups of the embedded store. At most one file may set it.
    pub objects: Option<Deferred<super::objects::RawObjectsSetting>>,
}

/// How the scheduler spreads checks over probers.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Scheduling")]
pub struct RawScheduling {
    /// How many probers of a region run each of its checks, 1 to 5 (default 1). With 2 or more, the runs of a
    /// check are staggered over its interval, one prober after the other, so a check is probed more often
    /// from the region and keeps being probed when one prober dies.
    pub probers_per_region: Option<u32>,
    /// How long a prober's registration lasts without a heartbeat, `3s` to `5m` (default `15s`); after it, its
    /// checks move to the other probers of its region. A prober whose connection to the scheduler breaks (a
    /// crashed process) and that is not heard from again within 3 s loses its checks then, without waiting
    /// for the lease.
    pub lease: Option<String>,
}

/// Options of one region.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Region")]
pub struct RawRegion {
    /// Labels added to every result from this region (for example `provider: aws`): on every metric series
    /// and every log record of its results. A `geohash` label (such as `u0nd`) places the region on the maps of
    /// Grafana's synthetic-monitoring dashboards. Names probenet's series use themselves (`phase`, `le`, `url`,
    /// `region`...) and `label_*` names are refused.
    pub labels: Option<BTreeMap<String, String>>,
}

/// Defaults for every check.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Defaults")]
pub struct RawDefaults {
    /// How often checks run, from `1s` to `1h` (default `1m`).
    pub interval: Option<String>,
    /// How long a run may take before it fails with reason `timeout` (default `10s`, at most the interval).
    pub timeout: Option<String>,
    /// The regions checks run from (default: every declared region).
    pub regions: Option<super::OneOrMany<String>>,
    /// How far back a check's planned runs that nobody made (its prober crashed or left) are still worth making
    /// (default `1m`, at most `1h`; `0s`: none): the prober that takes the check over makes them, spread over one
    /// interval.
    pub catch_up: Option<String>,
}

/// One check: a name, common options and exactly one kind key (`http`, `dns`, `tls`, `tcp`, `icmp`, `browser`,
/// `websocket`, `api`, `grpc`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Check")]
pub struct RawCheck {
    /// A unique name: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
    pub name: String,
    /// How often the check runs, from `1s` to `1h`, such as `30s` or `5m`. Exclusive with `schedule`.
    pub interval: Option<String>,
    /// A standard 5-field crontab line (`*/5 * * * *`, `0 9 * * MON-FRI`) or `@hourly`. Exclusive with `interval`.
    pub schedule: Option<String>,
    /// The IANA time zone `schedule` is read in (default `UTC`), such as `Europe/Paris`.
    pub timezone: Option<String>,
    /// How long a run may take before it fails with reason `timeout`; at most the interval.
    pub timeout: Option<String>,
    /// The regions this check runs from; each must be declared under `regions`.
    pub regions: Option<super::OneOrMany<String>>,
    /// How far back planned runs nobody made (its prober crashed or left) are made by the prober that takes the
    /// check over, spread over one interval (default `1m`, at most `1h`; `0s`: none).
    pub catch_up: Option<String>,
    /// Labels attached to every result of this check (label names: letters, digits and `_`).
    pub labels: Option<BTreeMap<String, String>>,
    /// A service level objective: the share of runs that must succeed over a window, with burn-rate alerts.
    pub slo: Option<alerting::RawSlo>,
    /// Checks this one needs (a database behind an API, the login page before a journey): while one of them is
    /// down in a region, this check's failures there are put down to it (reason `dependency`) and do not page;
    /// the alert on the dependency names the checks it held back.
    pub depends_on: Option<super::OneOrMany<String>>,
    /// How sensitive the alerts of Grafana synthetic monitoring's legacy recording rules are for this check:
    /// `none` (the default), `low`, `medium` or `high`. Exported as `sm_check_info{alert_sensitivity}`.
    pub alert_sensitivity: Option<AlertSensitivity>,
    /// An HTTP(S) request and what its response must look like.
    pub http: Option<Deferred<http::HttpSpec>>,
    /// A DNS query and what its answer must look like.
    pub dns: Option<Deferred<dns::DnsSpec>>,
    /// A TLS handshake and what the certificate must look like.
    pub tls: Option<Deferred<tls::TlsSpec>>,
    /// A TCP connection.
    pub tcp: Option<Deferred<tcp::TcpSpec>>,
    /// ICMP echo requests (ping).
    pub icmp: Option<Deferred<icmp::IcmpSpec>>,
    /// A scripted journey in a headless browser.
    pub browser: Option<Deferred<browser::BrowserSpec>>,
    /// A WebSocket connection, messages sent and awaited, and its close.
    pub websocket: Option<Deferred<websocket::WebsocketSpec>>,
    /// A sequence of HTTP(S) requests, where later ones use values captured from earlier responses.
    pub api: Option<Deferred<api::ApiSpec>>,
    /// A gRPC server: its health check and, optionally, a unary call described by its reflection service.
    pub grpc: Option<Deferred<grpc::GrpcSpec>>,
}

/// How sensitive Grafana synthetic monitoring's legacy alerts are for a check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertSensitivity {
    /// No legacy alert.
    #[default]
    None,
    /// Alerts when under 75% of runs succeed.
    Low,
    /// Alerts when under 90% of runs succeed.
    Medium,
    /// Alerts when under 95% of runs succeed.
    High,
}

impl AlertSensitivity {
    /// As written in YAML and in the `alert_sensitivity` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// A section deserialized later, on its own, so that its errors do not hide others.
/// Deserializing it only checks that a value is present; its schema is `T`'s.
#[derive(Debug)]
pub struct Deferred<T>(PhantomData<T>);

impl<'de, T> Deserialize<'de> for Deferred<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Self(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Deferred<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// The JSON Schema of the config file, for editors (draft-07, which most YAML language servers read).
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    generator.into_root_schema_for::<RawFile>().to_value()
}
