//! The JSON record of one result, shared by the result log and the Loki sink, with secret redaction.

use std::fmt;

use probenet_checks::wire::RunResult;
use serde_json::{Map, Value, json};

use crate::sink::CheckMeta;

/// What replaces a secret value wherever it shows up.
pub const REDACTED: &str = "[redacted]";

/// The keys of an outcome's `details` copied into a record when their value is a string, number or bool:
/// the few facts worth searching logs for (HTTP status, addresses, DNS rcode, TLS version, ICMP loss...).
pub const DETAIL_KEYS: &[&str] = &[
    "status_code",
    "http_version",
    "redirects",
    "final_url",
    "content_length",
    "body_truncated",
    "address",
    "remote_address",
    "local_address",
    "server",
    "transport",
    "rcode",
    "answer_rrs",
    "version",
    "cipher_suite",
    "alpn",
    "verdict",
    "earliest_expiry",
    "last_chain_expiry",
    "sent",
    "received",
    "loss",
    "failed_step",
    "url",
    "title",
];

/// Secret values to keep out of records: every occurrence in any string is replaced by [`REDACTED`].
/// Its `Debug` shows only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// These values (empty ones are ignored), longest first so a secret containing another is replaced whole.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut values: Vec<String> = values.into_iter().map(Into::into).filter(|value| !value.is_empty()).collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Self(values)
    }

    /// These secrets and `more`.
    pub fn with<I, S>(&self, more: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(self.0.iter().cloned().chain(more.into_iter().map(Into::into)))
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every secret replaced.
    pub fn redact_str(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }

    /// Replaces every secret in every string of `value`, object keys included.
    pub fn redact(&self, value: &mut Value) {
        if self.0.is_empty() {
            return;
        }
        match value {
            Value::String(text) => {
                if self.0.iter().any(|secret| text.contains(secret.as_str())) {
                    *text = self.redact_str(text);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact(item)),
            Value::Object(map) => {
                let old = std::mem::take(map);
                for (key, mut item) in old {
                    self.redact(&mut item);
                    map.insert(self.redact_str(&key), item);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

/// How records are built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordOptions {
    /// Values replaced by [`REDACTED`] wherever they occur.
    pub secrets: Secrets,
    /// Adds the outcome's `log` lines (left out by default: they are long and meant for a run's detail view).
    pub include_log: bool,
}

/// The record of one result. Fields, always present and in this order:
///
/// `ts` (the actual start, RFC 3339 with milliseconds), `check`, `kind`, `target`, `region`, `prober`,
/// `planned_at`, `started_at` (RFC 3339 ms), `lateness_ms`, `success`, `state` (`up`, `degraded`, `down`),
/// `reason` and `error` (null on success), `duration_seconds`, `phases` (name → seconds), `assertions`
/// (`name`, `expected`, `observed`, `passed`), `labels` (the check's), `artifacts` (`name`, `media_type`,
/// `path`), `details` (the scalar values of [`DETAIL_KEYS`] the outcome has), and `log` only when asked.
pub fn record(check: &CheckMeta, result: &RunResult, options: &RecordOptions) -> Value {
    let outcome = &result.outcome;
    let mut phases = Map::new();
    for phase in &outcome.phases {
        let sum = phases.get(&phase.name).and_then(Value::as_f64).unwrap_or(0.0) + phase.seconds;
        phases.insert(phase.name.clone(), json!(sum));
    }
    let mut details = Map::new();
    if let Value::Object(all) = &outcome.details {
        for key in DETAIL_KEYS {
            if let Some(value @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) = all.get(*key) {
                details.insert((*key).to_owned(), value.clone());
            }
        }
    }
    let artifacts: Vec<Value> = outcome
        .artifacts
        .iter()
        .map(|artifact| json!({"name": artifact.name, "media_type": artifact.media_type, "path": artifact.path}))
        .collect();
    let started_at = rfc3339_ms(result.started_at_ms);
    let mut record = json!({
        "ts": started_at,
        "check": check.name,
        "kind": check.kind,
        "target": check.target,
        "region": result.region,
        "prober": result.prober,
        "planned_at": rfc3339_ms(result.planned_at_ms),
        "started_at": started_at,
        "lateness_ms": result.started_at_ms.saturating_sub(result.planned_at_ms),
        "success": outcome.success(),
        "state": outcome.state,
        "reason": outcome.reason.map(|reason| reason.as_str()),
        "error": outcome.error,
        "duration_seconds": outcome.duration_seconds,
        "phases": phases,
        "assertions": outcome.assertions,
        "labels": check.labels,
        "artifacts": artifacts,
        "details": details,
    });
    if options.include_log
        && let Value::Object(map) = &mut record
    {
        map.insert("log".to_owned(), json!(outcome.log));
    }
    options.secrets.redact(&mut record);
    record
}

/// A unix time in milliseconds as RFC 3339 in UTC with milliseconds, such as `2026-11-24T10:00:00.123Z`.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let in_day = unix_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1_000 % 60, in_day % 1_000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// The proleptic Gregorian date of a day counted from 1970-01-01: (year, month 1-12, day 1-31), after
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_003_200_123), "2026-11-18T12:00:00.123Z");
        assert_eq!(rfc3339_ms(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339_ms(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn rfc3339_agrees_with_chrono_over_centuries() {
        // probenet_checks formats whole seconds with chrono: both must agree on every date.
        let mut unix: i64 = -2_208_988_800; // 1900-01-01
        let mut steps = 0;
        while unix < 7_258_118_400 && steps < 200_000 {
            let ours = rfc3339_ms(unix * 1_000 + 7);
            let theirs = probenet_checks::tls::rfc3339(unix);
            assert_eq!(ours.replace(".007Z", "Z"), theirs, "at {unix}");
            unix += 86_400 * 3 + 3_601;
            steps += 1;
        }
    }

    #[test]
    fn secrets_are_replaced_in_strings_and_keys_longest_first() {
        let secrets = Secrets::new(["hunter2", "hunter22", ""]);
        assert_eq!(format!("{secrets:?}"), "Secrets(2 hidden)");
        let mut value = json!({"a": ["x hunter22 y", {"hunter2": "hunter2hunter2"}], "n": 1, "b": true});
        secrets.redact(&mut value);
        assert_eq!(value, json!({"a": ["x [redacted] y", {"[redacted]": "[redacted][redacted]"}], "n": 1, "b": true}));
        assert_eq!(Secrets::default().redact_str("hunter2"), "hunter2");
    }
}
