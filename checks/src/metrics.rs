//! The metric series a run is exposed as: the family type every exporter writes, the writer a kind fills with
//! its own series ([`crate::KindCheck::series`]), and the families several kinds share.
//!
//! A kind declares the families only it writes beside its executor (`checks/src/<kind>/metrics.rs`), as
//! blackbox_exporter's `prober/<kind>.go` declares its `probe_<kind>_*` gauges; the exporters add the series
//! every result has (`probe_success`, `sm_check_info`, the `probe_all_*` totals, `probenet_check_*`).

use crate::Outcome;
use crate::tls::ChainDetails;

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

/// A gauge family.
pub const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family { name, help, kind: MetricType::Gauge }
}

/// Where a kind writes the series of one outcome; the exporter adds the check's labels and the time.
pub trait SeriesWriter {
    /// One series of `name` with its own `labels` (beyond the check's) and its value.
    fn push(&mut self, name: &'static str, labels: &[(&str, &str)], value: f64);

    /// One series without labels of its own.
    fn gauge(&mut self, name: &'static str, value: f64) {
        self.push(name, &[], value);
    }

    /// One series per phase (`{phase="connect"}`), 0 for a phase the run did not reach.
    fn phases(&mut self, name: &'static str, outcome: &Outcome, phases: &[&str]) {
        for phase in phases {
            self.push(name, &[("phase", phase)], outcome.phase(phase).unwrap_or(0.0));
        }
    }
}

/// The label names probenet's series and log streams use besides `job`, `instance` and `probe` (which no
/// configured label may take): a region's labels, which go on every series of its results, may not take them
/// either, nor a `label_` name (a check's labels on `sm_check_info`). `exporters/tests/metrics.rs` checks
/// that every label the series of recorded results carry is in this list.
pub const SERIES_LABELS: &[&str] = &[
    "config_version",
    "phase",
    "step",
    "serving_status",
    "le",
    "version",
    "cipher",
    "fingerprint_sha256",
    "issuer",
    "serialnumber",
    "subject",
    "subjectalternative",
    "check_name",
    "region",
    "frequency",
    "alert_sensitivity",
    "reason",
    "url",
    "success",
    "ip",
];

/// 1 for true, 0 for false.
pub fn flag(value: bool) -> f64 {
    if value { 1.0 } else { 0.0 }
}

/// The families that more than one kind writes, in exposition order: the name lookup, the IP protocol, the
/// regex verdict, the per-address series of `ip_strategy: all` (see [`per_ip`]) and the TLS session and
/// certificate series (of `http`, `tcp` and `tls`).
pub const SHARED: &[Family] = &[
    gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds"),
    gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6"),
    gauge("probe_failed_due_to_regex", "Indicates if probe failed due to regex"),
    gauge("probenet_ip_success", "Whether the probe of one address of the target succeeded (ip_strategy: all)"),
    gauge("probenet_ip_duration_seconds", "How long the probe of one address of the target took in seconds"),
];

/// `probenet_ip_success{ip}` and `probenet_ip_duration_seconds{ip}`, one pair per address a run with
/// `ip_strategy: all` probed (bounded by [`crate::net::MAX_IPS`]); nothing for a run that probed one address.
/// Written by the runtime for every kind, from the details' `ips` (see [`crate::ips`]).
pub fn per_ip(out: &mut dyn SeriesWriter, outcome: &Outcome) {
    for result in crate::ips::of(&outcome.details).iter().take(crate::net::MAX_IPS) {
        out.push("probenet_ip_success", &[("ip", &result.ip)], flag(result.success()));
        out.push("probenet_ip_duration_seconds", &[("ip", &result.ip)], result.duration_seconds);
    }
}

/// The TLS families (see [`tls_series`]), after each kind's own in exposition order.
pub const TLS: &[Family] = &[
    gauge("probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime"),
    gauge("probe_ssl_last_chain_expiry_timestamp_seconds", "Returns last SSL chain expiry in timestamp"),
    gauge("probe_ssl_last_chain_info", "Contains SSL leaf certificate information"),
    gauge("probe_tls_version_info", "Returns the TLS version used or NaN when unknown"),
    gauge("probe_tls_cipher_info", "Returns the TLS cipher negotiated during handshake"),
];

/// `probe_dns_lookup_time_seconds`: the `resolve` phase (0 when the target was an address).
pub fn lookup(out: &mut dyn SeriesWriter, outcome: &Outcome) {
    out.gauge("probe_dns_lookup_time_seconds", outcome.phase("resolve").unwrap_or(0.0));
}

/// `probe_ip_protocol`, when the details hold the address probed (`host:port` or an IP address).
pub fn ip_protocol(out: &mut dyn SeriesWriter, address: Option<&str>) {
    if let Some(ip) = address.and_then(ip_of) {
        out.gauge("probe_ip_protocol", if ip.is_ipv4() { 4.0 } else { 6.0 });
    }
}

fn ip_of(address: &str) -> Option<std::net::IpAddr> {
    address.parse::<std::net::SocketAddr>().map(|addr| addr.ip()).or_else(|_| address.parse()).ok()
}

/// The certificate and session series, when there is a chain, a TLS version or a cipher suite.
pub fn tls_series(
    out: &mut dyn SeriesWriter,
    chain: Option<&ChainDetails>,
    version: Option<&str>,
    cipher: Option<&str>,
) {
    if let Some(expiry) = chain.and_then(|chain| chain.earliest_expiry_unix) {
        out.gauge("probe_ssl_earliest_cert_expiry", expiry as f64);
    }
    if let Some(expiry) = chain.and_then(|chain| chain.last_chain_expiry_unix) {
        out.gauge("probe_ssl_last_chain_expiry_timestamp_seconds", expiry as f64);
    }
    if let Some(leaf) = chain.and_then(|chain| chain.chain.first()).filter(|leaf| leaf.parse_error.is_none()) {
        let sans = leaf.sans.join(",");
        out.push(
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
        out.push("probe_tls_version_info", &[("version", &version)], 1.0);
    }
    if let Some(cipher) = cipher {
        // Go's names, as blackbox_exporter shows them: `TLS_AES_128_GCM_SHA256`.
        let cipher = cipher.strip_prefix("TLS13_").map_or_else(|| cipher.to_owned(), |rest| format!("TLS_{rest}"));
        out.push("probe_tls_cipher_info", &[("cipher", &cipher)], 1.0);
    }
}

/// The TLS series of a kind that speaks TLS on its own connection (`http`, `tcp`).
pub fn tls_part(out: &mut dyn SeriesWriter, part: &crate::tls::TlsPart) {
    let session = part.session.clone().unwrap_or_default();
    tls_series(out, part.chain(), session.tls_version.as_deref(), session.cipher_suite.as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_writes_one_pair_per_address_and_nothing_without_addresses() {
        let ips = serde_json::json!([
            {"ip": "127.0.0.1", "address": "127.0.0.1:80", "state": "up", "duration_seconds": 0.01},
            {"ip": "::1", "address": "[::1]:80", "state": "down", "reason": "connect", "error": "[::1]:80: connect", "duration_seconds": 0.02},
        ]);
        let outcome = Outcome { details: serde_json::json!({"status_code": 200, "ips": ips}), ..Outcome::up(0.0) };
        let mut written = SeriesNames::default();
        per_ip(&mut written, &outcome);
        assert_eq!(
            written.0,
            [
                "probenet_ip_success{ip=127.0.0.1}",
                "probenet_ip_duration_seconds{ip=127.0.0.1}",
                "probenet_ip_success{ip=::1}",
                "probenet_ip_duration_seconds{ip=::1}",
            ]
        );
        let mut none = SeriesNames::default();
        per_ip(&mut none, &Outcome::up(0.0));
        assert!(none.0.is_empty());
        // Through a kind's series, as the exporters write them.
        let mut all = SeriesNames::default();
        crate::Kind::Http.series(&outcome, &mut all);
        assert!(all.0.contains(&"probenet_ip_success{ip=::1}".to_owned()), "{:?}", all.0);
        assert!(all.0.contains(&"probe_http_status_code{}".to_owned()), "{:?}", all.0);
    }
}

/// For tests: collects each series written as `name{key=value,...}`.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct SeriesNames(pub(crate) Vec<String>);

#[cfg(test)]
impl SeriesWriter for SeriesNames {
    fn push(&mut self, name: &'static str, labels: &[(&str, &str)], _: f64) {
        let labels: Vec<String> = labels.iter().map(|(key, value)| format!("{key}={value}")).collect();
        self.0.push(format!("{name}{{{}}}", labels.join(",")));
    }
}
