//! The JSON record of one result, shared by the result log and the Loki sink, with secret redaction.

use std::fmt;

use probenet_checks::secret::Redactor;
use probenet_checks::time::rfc3339_ms;
use probenet_checks::wire::RunResult;
use serde_json::{Map, Value, json};

use crate::sink::CheckMeta;

/// What replaces a secret value wherever it shows up.
pub const REDACTED: &str = probenet_checks::secret::MASK;

/// Secret values to keep out of records: every occurrence in any string, in any encoding (percent, JSON,
/// HTML, base64...), is replaced by [`REDACTED`]. Its `Debug` shows only how many there are.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
    redactor: Redactor,
}

impl Secrets {
    /// These values (empty ones are ignored; ones under three bytes are never redacted).
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut values: Vec<String> = values.into_iter().map(Into::into).filter(|value| !value.is_empty()).collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        let redactor = Redactor::new(&values);
        Self { values, redactor }
    }

    /// These secrets and `more`.
    pub fn with<I, S>(&self, more: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(self.values.iter().cloned().chain(more.into_iter().map(Into::into)))
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced.
    pub fn redact_str(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// Replaces every secret in every string of `value`, object keys included.
    pub fn redact(&self, value: &mut Value) {
        if self.redactor.is_empty() {
            return;
        }
        match value {
            Value::String(text) => *text = self.redact_str(text),
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

impl PartialEq for Secrets {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl Eq for Secrets {}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} hidden)", self.values.len())
    }
}

/// How records are built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordOptions {
    /// Values replaced by [`REDACTED`] wherever they occur.
    pub secrets: Secrets,
    /// Adds the outcome's `log` lines (left out by default: they are long and meant for a run's detail view).
    pub include_log: bool,
    /// Each region's labels, the `region_labels` of its results' records.
    pub region_labels: crate::samples::RegionLabels,
}

/// The record of one result. Fields, always present and in this order:
///
/// `ts` (the actual start, RFC 3339 with milliseconds), `check`, `kind`, `target`, `region`, `prober`,
/// `planned_at`, `started_at` (RFC 3339 ms), `lateness_ms`, `success`, `state` (`up`, `degraded`, `down`),
/// `reason` and `error` (null on success), `duration_seconds`, `phases` (name → seconds), `assertions`
/// (`name`, `expected`, `observed`, `passed`), `labels` (the check's), `region_labels` (the region's, `{}` when
/// it has none), `artifacts` (`name`, `media_type`,
/// `path`), `details` (the scalar values of the kind's record keys, `Kind::record_keys`, that the outcome has;
/// read from the JSON, so results stored by any version show what they hold), and `log` only when asked.
pub fn record(check: &CheckMeta, result: &RunResult, options: &RecordOptions) -> Value {
    let outcome = &result.outcome;
    let mut phases = Map::new();
    for phase in &outcome.phases {
        let sum = phases.get(&phase.name).and_then(Value::as_f64).unwrap_or(0.0) + phase.seconds;
        phases.insert(phase.name.clone(), json!(sum));
    }
    let mut details = Map::new();
    if let Value::Object(all) = &outcome.details {
        for key in check.kind.record_keys() {
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
        "region_labels": options.region_labels.get(&result.region).cloned().unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_in_strings_and_keys_longest_first() {
        let secrets = Secrets::new(["hunter2", "hunter22", ""]);
        assert_eq!(format!("{secrets:?}"), "Secrets(2 hidden)");
        let mut value = json!({"a": ["x hunter22 y", {"hunter2": "hunter2hunter2"}], "n": 1, "b": true});
        secrets.redact(&mut value);
        assert_eq!(value, json!({"a": ["x [redacted] y", {"[redacted]": "[redacted][redacted]"}], "n": 1, "b": true}));
        assert_eq!(Secrets::default().redact_str("hunter2"), "hunter2");
    }

    #[test]
    fn secrets_are_replaced_in_their_encodings_too() {
        let secrets = Secrets::new(["pw \"x/y"]);
        let mut value = json!({"url": "https://h/?p=pw%20%22x%2Fy", "body": "{\"p\":\"pw \\\"x\\/y\"}"});
        secrets.redact(&mut value);
        assert_eq!(value, json!({"url": "https://h/?p=[redacted]", "body": "{\"p\":\"[redacted]\"}"}));
    }
}
