//! One run's result as metric samples: blackbox_exporter's series, Grafana synthetic monitoring's, and ours.

use std::collections::BTreeMap;

use probenet_checks::browser::BrowserDetails;
use probenet_checks::details::Details;
use probenet_checks::dns::DnsDetails;
use probenet_checks::http::HttpDetails;
use probenet_checks::icmp::IcmpDetails;
use probenet_checks::tcp::TcpDetails;
use probenet_checks::tls::{ChainDetails, TlsDetails, TlsPart};
use probenet_checks::wire::RunResult;
use probenet_checks::{Kind, Outcome, Reason, State};

use crate::sink::CheckMeta;

/// How a metric family is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that goes up and down.
    Gauge,
    /// A running total.
    Counter,
    /// `_sum` and `_count` series.
    Summary,
    /// `_bucket`, `_sum` and `_count` series.
    Histogram,
}

impl MetricType {
    /// The word in a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Counter => "counter",
            Self::Summary => "summary",
            Self::Histogram => "histogram",
        }
    }
}

/// A metric family: its name, help text and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The family name (without `_sum`, `_count`, `_bucket`).
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The type.
    pub kind: MetricType,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family { name, help, kind: MetricType::Gauge }
}

/// Every family [`samples`] produces, in exposition order.
pub const FAMILIES: &[Family] = &[
    gauge("probe_success", "Displays whether or not the probe was a success"),
    gauge("probe_duration_seconds", "Returns how long the probe took to complete in seconds"),
    gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds"),
    gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6"),
    gauge("probe_failed_due_to_regex", "Indicates if probe failed due to regex"),
    gauge("probe_http_duration_seconds", "Duration of http request by phase, summed over all redirects"),
    gauge("probe_http_status_code", "Response HTTP status code"),
    gauge("probe_http_version", "Returns the version of HTTP of the probe response"),
    gauge("probe_http_ssl", "Indicates if SSL was used for the final redirect"),
    gauge("probe_http_redirects", "The number of redirects"),
    gauge("probe_http_content_length", "Length of http content response"),
    gauge("probe_http_uncompressed_body_length", "Length of uncompressed response body"),
    gauge("probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime"),
    gauge("probe_ssl_last_chain_expiry_timestamp_seconds", "Returns last SSL chain expiry in timestamp"),
    gauge("probe_ssl_last_chain_info", "Contains SSL leaf certificate information"),
    gauge("probe_tls_version_info", "Returns the TLS version used or NaN when unknown"),
    gauge("probe_tls_cipher_info", "Returns the TLS cipher negotiated during handshake"),
    gauge("probe_dns_duration_seconds", "Duration of DNS request by phase"),
    gauge("probe_dns_answer_rrs", "Returns number of entries in the answer resource record list"),
    gauge("probe_dns_authority_rrs", "Returns number of entries in the authority resource record list"),
    gauge("probe_dns_additional_rrs", "Returns number of entries in the additional resource record list"),
    gauge("probe_dns_query_succeeded", "Displays whether or not the query was executed successfully"),
    gauge("probe_dns_serial", "Returns the serial number of the zone"),
    gauge("probe_icmp_duration_seconds", "Duration of icmp request by phase"),
    gauge("probe_icmp_duration_rtt_min_seconds", "Minimum duration of round trip time phase"),
    gauge("probe_icmp_duration_rtt_max_seconds", "Maximum duration of round trip time phase"),
    gauge("probe_icmp_duration_rtt_stddev_seconds", "Standard deviation of round trip time phase"),
    gauge("sm_check_info", "Provides information about a single check configuration"),
    Family {
        name: "probe_all_success",
        help: "Displays whether or not the probe was a success (summary)",
        kind: MetricType::Summary,
    },
    Family {
        name: "probe_all_duration_seconds",
        help: "Returns how long the probe took to complete in seconds (histogram)",
        kind: MetricType::Histogram,
    },
    gauge("probenet_check_state", "State of the latest run: 0 up, 1 degraded, 2 down"),
    gauge("probenet_check_degraded", "Whether the latest run passed but was slower than degraded_after"),
    gauge("probenet_check_failure_reason", "Why the latest run failed (1 for its reason, 0 for the others)"),
    gauge("probenet_check_assertions", "Number of assertions the latest run evaluated"),
    gauge("probenet_check_assertions_failed", "Number of assertions of the latest run that failed"),
    gauge("probenet_check_last_run_timestamp_seconds", "When the latest run started, in unixtime"),
    gauge("probenet_icmp_packets_sent", "Number of ICMP echo requests sent by the latest run"),
    gauge("probenet_icmp_packets_received", "Number of ICMP echo replies received by the latest run"),
    gauge("probenet_browser_navigation_seconds", "Navigation timing of the first page, by phase"),
    gauge("probenet_browser_web_vital_seconds", "Web vitals of the first page measured in seconds (lcp, inp)"),
    gauge("probenet_browser_cumulative_layout_shift", "Cumulative layout shift of the first page"),
    gauge("probenet_browser_console_errors", "Number of console errors and uncaught exceptions"),
    gauge("probenet_browser_failed_requests", "Number of failed network requests"),
];

/// Every [`Reason`], in the order of the one-hot `probenet_check_failure_reason` series.
pub const REASONS: [Reason; 21] = [
    Reason::Timeout,
    Reason::Dns,
    Reason::Connect,
    Reason::Tls,
    Reason::CertExpired,
    Reason::CertNotYetValid,
    Reason::CertUntrusted,
    Reason::CertHostname,
    Reason::CertExpiring,
    Reason::Status,
    Reason::Body,
    Reason::Header,
    Reason::Duration,
    Reason::Redirects,
    Reason::Rcode,
    Reason::Loss,
    Reason::Assertion,
    Reason::Protocol,
    Reason::Secret,
    Reason::Unsupported,
    Reason::BrowserUnavailable,
];

/// The upper bounds of `probe_all_duration_seconds` (client_golang's defaults, as synthetic monitoring uses).
pub const DURATION_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The family a series name belongs to (`probe_all_success_sum` belongs to `probe_all_success`).
pub fn family(series: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|family| family.name == series).or_else(|| {
        ["_sum", "_count", "_bucket"].iter().find_map(|suffix| {
            let base = series.strip_suffix(suffix)?;
            FAMILIES.iter().find(|family| {
                family.name == base
                    && match family.kind {
                        MetricType::Summary => *suffix != "_bucket",
                        MetricType::Histogram => true,
                        MetricType::Gauge | MetricType::Counter => false,
                    }
            })
        })
    })
}

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name (`probe_all_success_sum` for a summary's sum).
    pub name: &'static str,
    /// Labels without `__name__`: `job`, `instance`, `probe`, `config_version` first, then the metric's own.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Unix milliseconds.
    pub timestamp_ms: i64,
}

/// Per-process facts that label series beyond the check and the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesOptions {
    /// The geohash of each region, for `sm_check_info{geohash}` (Grafana's maps); omitted when unknown.
    pub geohash: BTreeMap<String, String>,
    /// Each check's interval in milliseconds, for `sm_check_info{frequency}`; omitted when unknown.
    pub frequency_ms: BTreeMap<String, u64>,
}

/// The running totals of one (check, region) pair behind the cumulative `probe_all_*` series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Runs observed.
    pub runs: u64,
    /// Runs that succeeded (up or degraded).
    pub successes: u64,
    /// Sum of their durations, in seconds.
    pub duration_sum: f64,
    /// Runs per [`DURATION_BUCKETS`] bound (not cumulative).
    pub buckets: [u64; DURATION_BUCKETS.len()],
    /// The latest run observed (`planned_at_ms`), so a replayed or older result is not counted twice.
    pub last_planned_ms: Option<i64>,
}

impl Totals {
    /// Counts a result; returns false (and counts nothing) when it is not newer than the last one counted.
    pub fn observe(&mut self, result: &RunResult) -> bool {
        if self.last_planned_ms.is_some_and(|last| result.planned_at_ms <= last) {
            return false;
        }
        self.last_planned_ms = Some(result.planned_at_ms);
        self.runs += 1;
        self.successes += u64::from(result.outcome.success());
        let seconds = result.outcome.duration_seconds.max(0.0);
        self.duration_sum += seconds;
        if let Some(i) = DURATION_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i] += 1;
        }
        true
    }
}

/// A hash of what labels a check (kind, target, labels): the `config_version` label that synthetic
/// monitoring's dashboards join on. It changes when one of them changes.
pub fn config_version(check: &CheckMeta) -> String {
    let mut parts: Vec<&[u8]> = vec![check.kind.key().as_bytes(), b"\0", check.target.as_bytes()];
    for (name, value) in &check.labels {
        parts.extend([b"\0".as_slice(), name.as_bytes(), b"=", value.as_bytes()]);
    }
    format!("{:016x}", probenet_checks::wire::stable_hash(&parts))
}

/// Builds the samples of a series set at one time.
struct Builder {
    base: Vec<(String, String)>,
    at: i64,
    out: Vec<Sample>,
}

impl Builder {
    fn push(&mut self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        let mut all = self.base.clone();
        all.extend(labels.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
        self.out.push(Sample { name, labels: all, value, timestamp_ms: self.at });
    }

    fn gauge(&mut self, name: &'static str, value: f64) {
        self.push(name, &[], value);
    }

    fn phases(&mut self, name: &'static str, outcome: &Outcome, phases: &[&str]) {
        for phase in phases {
            self.push(name, &[("phase", phase)], outcome.phase(phase).unwrap_or(0.0));
        }
    }
}

fn flag(value: bool) -> f64 {
    if value { 1.0 } else { 0.0 }
}

/// The samples of one result, at its start time, given the pair's totals (already updated with it).
pub fn samples(check: &CheckMeta, result: &RunResult, totals: &Totals, options: &SeriesOptions) -> Vec<Sample> {
    let outcome = &result.outcome;
    let base = vec![
        ("job".to_owned(), check.name.clone()),
        ("instance".to_owned(), check.target.clone()),
        ("probe".to_owned(), result.region.clone()),
        ("config_version".to_owned(), config_version(check)),
    ];
    let mut b = Builder { base, at: result.started_at_ms, out: Vec::with_capacity(64) };
    b.gauge("probe_success", flag(outcome.success()));
    b.gauge("probe_duration_seconds", outcome.duration_seconds);
    if check.kind != Kind::Browser {
        b.gauge("probe_dns_lookup_time_seconds", outcome.phase("resolve").unwrap_or(0.0));
    }
    // Each kind's own series, from its details type.
    match check.kind {
        Kind::Http => http(&mut b, outcome, &HttpDetails::read(&outcome.details)),
        Kind::Dns => dns(&mut b, outcome, &DnsDetails::read(&outcome.details)),
        Kind::Tcp => {
            let details = TcpDetails::read(&outcome.details);
            ip_protocol(&mut b, details.address());
            b.gauge("probe_failed_due_to_regex", flag(outcome.reason == Some(Reason::Assertion)));
            tls_part(&mut b, &details.tls);
        }
        Kind::Tls => {
            let details = TlsDetails::read(&outcome.details);
            ip_protocol(&mut b, details.address());
            tls(&mut b, details.chain.as_ref(), details.version.as_deref(), details.cipher_suite.as_deref());
        }
        Kind::Icmp => icmp(&mut b, outcome, &IcmpDetails::read(&outcome.details)),
        Kind::Browser => browser(&mut b, &BrowserDetails::read(&outcome.details)),
    }
    check_info(&mut b, check, result, options);
    summaries(&mut b, totals);
    own(&mut b, outcome, result.started_at_ms);
    b.out
}

/// `probe_ip_protocol`, when the details hold the address probed.
fn ip_protocol(b: &mut Builder, address: Option<&str>) {
    if let Some(ip) = address.and_then(ip_of) {
        b.gauge("probe_ip_protocol", if ip.is_ipv4() { 4.0 } else { 6.0 });
    }
}

fn ip_of(address: &str) -> Option<std::net::IpAddr> {
    address.parse::<std::net::SocketAddr>().map(|addr| addr.ip()).or_else(|_| address.parse()).ok()
}

fn http(b: &mut Builder, outcome: &Outcome, details: &HttpDetails) {
    ip_protocol(b, details.address());
    let response = details.response.clone().unwrap_or_default();
    b.phases("probe_http_duration_seconds", outcome, &["resolve", "connect", "tls", "processing", "transfer"]);
    b.gauge("probe_http_status_code", f64::from(response.status_code));
    b.gauge("probe_http_version", response.http_version.parse::<f64>().unwrap_or(0.0));
    b.gauge("probe_http_ssl", flag(response.tls));
    b.gauge("probe_http_redirects", f64::from(response.redirects));
    let length = response.content_length as f64;
    b.gauge("probe_http_content_length", length);
    b.gauge("probe_http_uncompressed_body_length", length);
    b.gauge("probe_failed_due_to_regex", flag(matches!(outcome.reason, Some(Reason::Body | Reason::Header))));
    tls_part(b, &details.tls);
}

/// The TLS series of a kind that speaks TLS on its own connection.
fn tls_part(b: &mut Builder, part: &TlsPart) {
    let session = part.session.clone().unwrap_or_default();
    tls(b, part.chain(), session.tls_version.as_deref(), session.cipher_suite.as_deref());
}

/// The certificate and session series, when there is a chain, a TLS version or a cipher suite.
fn tls(b: &mut Builder, chain: Option<&ChainDetails>, version: Option<&str>, cipher: Option<&str>) {
    if let Some(expiry) = chain.and_then(|chain| chain.earliest_expiry_unix) {
        b.gauge("probe_ssl_earliest_cert_expiry", expiry as f64);
    }
    if let Some(expiry) = chain.and_then(|chain| chain.last_chain_expiry_unix) {
        b.gauge("probe_ssl_last_chain_expiry_timestamp_seconds", expiry as f64);
    }
    if let Some(leaf) = chain.and_then(|chain| chain.chain.first()).filter(|leaf| leaf.parse_error.is_none()) {
        let sans = leaf.sans.join(",");
        b.push(
            "probe_ssl_last_chain_info",
            &[
                ("fingerprint_sha256", &leaf.sha256_fingerprint),
                ("issuer", &leaf.issuer),
                ("serialnumber", &leaf.serial),
                ("subject", &leaf.subject),
                ("subjectalternative", &sans),
            ],
            1.0,
        );
    }
    if let Some(version) = version {
        // blackbox_exporter's spelling: `TLS 1.3`.
        let version = version.strip_prefix("TLSv").map_or_else(|| version.to_owned(), |v| format!("TLS {v}"));
        b.push("probe_tls_version_info", &[("version", &version)], 1.0);
    }
    if let Some(cipher) = cipher {
        // Go's names, as blackbox_exporter shows them: `TLS_AES_128_GCM_SHA256`.
        let cipher = cipher.strip_prefix("TLS13_").map_or_else(|| cipher.to_owned(), |rest| format!("TLS_{rest}"));
        b.push("probe_tls_cipher_info", &[("cipher", &cipher)], 1.0);
    }
}

fn dns(b: &mut Builder, outcome: &Outcome, details: &DnsDetails) {
    ip_protocol(b, details.address());
    let answer = details.answer.clone().unwrap_or_default();
    b.phases("probe_dns_duration_seconds", outcome, &["resolve", "connect", "request"]);
    b.gauge("probe_dns_answer_rrs", answer.answer_rrs as f64);
    b.gauge("probe_dns_authority_rrs", answer.authority_rrs as f64);
    b.gauge("probe_dns_additional_rrs", answer.additional_rrs as f64);
    b.gauge("probe_dns_query_succeeded", flag(answer.rcode.is_some()));
    if let Some(serial) = answer.serial {
        b.gauge("probe_dns_serial", f64::from(serial));
    }
}

fn icmp(b: &mut Builder, outcome: &Outcome, details: &IcmpDetails) {
    ip_protocol(b, details.address());
    b.phases("probe_icmp_duration_seconds", outcome, &["resolve", "setup", "rtt"]);
    if let Some(rtt) = details.rtt_seconds {
        b.gauge("probe_icmp_duration_rtt_min_seconds", rtt.min);
        b.gauge("probe_icmp_duration_rtt_max_seconds", rtt.max);
        b.gauge("probe_icmp_duration_rtt_stddev_seconds", rtt.stddev);
    }
    b.gauge("probenet_icmp_packets_sent", details.sent as f64);
    b.gauge("probenet_icmp_packets_received", details.received as f64);
}

fn browser(b: &mut Builder, details: &BrowserDetails) {
    let navigation = details.navigation.clone().unwrap_or_default();
    for (phase, seconds) in [
        ("ttfb", navigation.ttfb_seconds),
        ("dom_content_loaded", navigation.dom_content_loaded_seconds),
        ("load", navigation.load_seconds),
    ] {
        if let Some(seconds) = seconds {
            b.push("probenet_browser_navigation_seconds", &[("phase", phase)], seconds);
        }
    }
    let vitals = details.web_vitals.clone().unwrap_or_default();
    for (vital, seconds) in [("lcp", vitals.lcp_seconds), ("inp", vitals.inp_seconds)] {
        if let Some(seconds) = seconds {
            b.push("probenet_browser_web_vital_seconds", &[("vital", vital)], seconds);
        }
    }
    if let Some(cls) = vitals.cls {
        b.gauge("probenet_browser_cumulative_layout_shift", cls);
    }
    b.gauge("probenet_browser_console_errors", details.console_errors as f64);
    b.gauge("probenet_browser_failed_requests", details.failed_requests as f64);
}

/// `sm_check_info`: the check's kind as `check_name`, the region, and the check's labels as `label_NAME`.
fn check_info(b: &mut Builder, check: &CheckMeta, result: &RunResult, options: &SeriesOptions) {
    // Grafana synthetic monitoring's names for the kinds.
    let kind = match check.kind {
        Kind::Icmp => "ping",
        Kind::Http | Kind::Dns | Kind::Tls | Kind::Tcp | Kind::Browser => check.kind.key(),
    };
    let mut labels: Vec<(String, String)> =
        vec![("check_name".to_owned(), kind.to_owned()), ("region".to_owned(), result.region.clone())];
    if let Some(frequency) = options.frequency_ms.get(&check.name) {
        labels.push(("frequency".to_owned(), frequency.to_string()));
    }
    if let Some(geohash) = options.geohash.get(&result.region) {
        labels.push(("geohash".to_owned(), geohash.clone()));
    }
    labels.extend(check.labels.iter().map(|(name, value)| (format!("label_{}", sanitize(name)), value.clone())));
    let refs: Vec<(&str, &str)> = labels.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    b.push("sm_check_info", &refs, 1.0);
}

/// A label name made of `[a-zA-Z0-9_]` only.
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn summaries(b: &mut Builder, totals: &Totals) {
    b.gauge("probe_all_success_sum", totals.successes as f64);
    b.gauge("probe_all_success_count", totals.runs as f64);
    let mut cumulative = 0;
    for (bound, count) in DURATION_BUCKETS.iter().zip(totals.buckets) {
        cumulative += count;
        b.push("probe_all_duration_seconds_bucket", &[("le", &bound.to_string())], cumulative as f64);
    }
    b.push("probe_all_duration_seconds_bucket", &[("le", "+Inf")], totals.runs as f64);
    b.gauge("probe_all_duration_seconds_sum", totals.duration_sum);
    b.gauge("probe_all_duration_seconds_count", totals.runs as f64);
}

fn own(b: &mut Builder, outcome: &Outcome, started_at_ms: i64) {
    let state = match outcome.state {
        State::Up => 0.0,
        State::Degraded => 1.0,
        State::Down => 2.0,
    };
    b.gauge("probenet_check_state", state);
    b.gauge("probenet_check_degraded", flag(outcome.state == State::Degraded));
    for reason in REASONS {
        b.push("probenet_check_failure_reason", &[("reason", reason.as_str())], flag(outcome.reason == Some(reason)));
    }
    b.gauge("probenet_check_assertions", outcome.assertions.len() as f64);
    let failed = outcome.assertions.iter().filter(|assertion| !assertion.passed).count();
    b.gauge("probenet_check_assertions_failed", failed as f64);
    b.gauge("probenet_check_last_run_timestamp_seconds", started_at_ms as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails to compile when a reason is added without being listed in [`REASONS`].
    fn listed(reason: Reason) -> bool {
        match reason {
            Reason::Timeout
            | Reason::Dns
            | Reason::Connect
            | Reason::Tls
            | Reason::CertExpired
            | Reason::CertNotYetValid
            | Reason::CertUntrusted
            | Reason::CertHostname
            | Reason::CertExpiring
            | Reason::Status
            | Reason::Body
            | Reason::Header
            | Reason::Duration
            | Reason::Redirects
            | Reason::Rcode
            | Reason::Loss
            | Reason::Assertion
            | Reason::Protocol
            | Reason::Secret
            | Reason::Unsupported
            | Reason::BrowserUnavailable => REASONS.contains(&reason),
        }
    }

    #[test]
    fn every_reason_is_listed_once() {
        assert!(REASONS.iter().all(|reason| listed(*reason)));
        let names: std::collections::BTreeSet<&str> = REASONS.iter().map(|reason| reason.as_str()).collect();
        assert_eq!(names.len(), REASONS.len());
    }

    #[test]
    fn series_names_find_their_family() {
        assert_eq!(family("probe_all_success_sum").map(|f| f.name), Some("probe_all_success"));
        assert_eq!(family("probe_all_success_bucket"), None);
        assert_eq!(family("probe_all_duration_seconds_bucket").map(|f| f.name), Some("probe_all_duration_seconds"));
        assert_eq!(family("probe_success_count"), None);
        assert_eq!(family("probe_http_ssl").map(|f| f.kind), Some(MetricType::Gauge));
    }

    #[test]
    fn config_version_follows_what_labels_the_check() {
        let mut check =
            CheckMeta { name: "a".into(), kind: Kind::Http, target: "http://x/".into(), labels: BTreeMap::new() };
        let first = config_version(&check);
        check.name = "b".into();
        assert_eq!(config_version(&check), first, "the name is the job label, not part of the version");
        check.labels.insert("team".into(), "web".into());
        assert_ne!(config_version(&check), first);
    }
}
