//! One alert instance (a rule and a check, a region, or a check's SLO) and its state machine:
//! inactive → pending → firing → resolved, with a hold before firing and a recovery threshold before resolving.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::notification::{Notification, Status};
use crate::quorum::Verdict;

/// Pending or firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The condition holds, but not yet for long enough.
    Pending,
    /// The alert fires.
    Firing,
}

/// How an instance fires and resolves.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long the condition must hold before firing, ms (0: at once).
    pub hold_ms: i64,
    /// How long it must be false before resolving, ms.
    pub resolve_after_ms: i64,
}

/// What an evaluation found for one instance.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Whether the condition holds.
    pub verdict: Verdict,
    /// The regions involved.
    pub regions: Vec<String>,
    /// The failure reason.
    pub reason: Option<String>,
    /// A failure message.
    pub error: Option<String>,
    /// What is wrong, without "since": `homepage is down in 2 of 3 regions (eu-west, us-east)`.
    pub what: String,
}

/// An open alert (pending or firing), as kept in memory and in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Identity: `rule/check`, `region-impaired/region` or `slo-fast-burn/check`.
    pub key: String,
    /// The alert's name.
    pub alert: String,
    /// The check, when about one.
    pub check: Option<String>,
    /// The check's target.
    pub target: Option<String>,
    /// Pending or firing.
    pub phase: Phase,
    /// When the condition started holding, unix ms.
    pub active_since_ms: i64,
    /// When it started firing.
    pub firing_since_ms: Option<i64>,
    /// While firing: since when the condition is false.
    pub clear_since_ms: Option<i64>,
    /// Whether notifiers were told it fires.
    pub notified: bool,
    /// When they were last told.
    pub last_notified_ms: Option<i64>,
    /// The regions involved.
    pub regions: Vec<String>,
    /// The regions the check runs in (or every region).
    pub total_regions: usize,
    /// The failure reason.
    pub reason: Option<String>,
    /// A failure message.
    pub error: Option<String>,
    /// What is wrong.
    pub what: String,
    /// Times it recovered and failed again while firing.
    pub flaps: u32,
    /// Its severity.
    pub severity: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its notifiers.
    pub notify: Vec<String>,
    /// The dashboard link.
    pub dashboard_url: Option<String>,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing worth telling.
    None,
    /// It began firing.
    Fired,
    /// It resolved (and is gone).
    Resolved,
    /// It was pending and the condition went away (it is gone, nobody was told).
    Dropped,
}

impl Instance {
    /// Moves the instance one evaluation forward at `now_ms`.
    pub fn step(&mut self, observed: Observed, timing: Timing, now_ms: i64) -> Change {
        match (self.phase, observed.verdict) {
            (Phase::Pending, Verdict::False) => return Change::Dropped,
            (Phase::Firing, Verdict::False) => {
                let since = *self.clear_since_ms.get_or_insert(now_ms);
                if now_ms - since >= timing.resolve_after_ms {
                    return Change::Resolved;
                }
                return Change::None;
            }
            (_, Verdict::Unknown) => return Change::None,
            (_, Verdict::True) => {
                if self.clear_since_ms.take().is_some() {
                    self.flaps = self.flaps.saturating_add(1);
                }
                self.regions = observed.regions;
                self.reason = observed.reason;
                self.error = observed.error;
                self.what = observed.what;
            }
        }
        if self.phase == Phase::Pending && now_ms - self.active_since_ms >= timing.hold_ms {
            self.phase = Phase::Firing;
            self.firing_since_ms = Some(now_ms);
            return Change::Fired;
        }
        Change::None
    }

    /// The summary line: what, since when, why, and a flapping note.
    pub fn summary(&self) -> String {
        let mut out = format!("{} since {}", self.what, format_time(self.active_since_ms));
        if let Some(why) = why(self.reason.as_deref(), self.error.as_deref()) {
            out.push_str(": ");
            out.push_str(&why);
        }
        if self.flaps >= 2 {
            out.push_str(&format!(" (flapping: recovered and failed again {} times)", self.flaps));
        }
        out
    }

    /// The notification for `status` at `now_ms`.
    pub fn notification(&self, status: Status, now_ms: i64) -> Notification {
        Notification {
            alert: self.alert.clone(),
            key: self.key.clone(),
            status,
            severity: self.severity.clone(),
            check: self.check.clone(),
            target: self.target.clone(),
            regions: self.regions.clone(),
            total_regions: self.total_regions,
            since_ms: self.active_since_ms,
            ended_ms: (status == Status::Resolved).then_some(now_ms),
            reason: self.reason.clone(),
            error: self.error.clone(),
            labels: self.labels.clone(),
            summary: match status {
                Status::Firing => self.summary(),
                Status::Resolved => format!("resolved: {}, until {}", self.summary(), format_time(now_ms)),
            },
            dashboard_url: self.dashboard_url.clone(),
        }
    }
}

/// `2026-01-05 10:02:00 UTC`.
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The reason and the message of a failure as one phrase, without saying the reason twice: a message that
/// starts with it (`status: expected 200, got 500` for reason `status`) is enough alone.
fn why(reason: Option<&str>, error: Option<&str>) -> Option<String> {
    match (reason, error) {
        (Some(reason), Some(error)) if error.starts_with(reason) => Some(error.to_owned()),
        (Some(reason), Some(error)) => Some(format!("{reason}: {error}")),
        (Some(only), None) | (None, Some(only)) => Some(only.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::why;

    #[test]
    fn a_reason_the_message_already_names_is_said_once() {
        assert_eq!(
            why(Some("status"), Some("status: expected 200, got 500")).unwrap(),
            "status: expected 200, got 500"
        );
        assert_eq!(
            why(Some("body"), Some("body_contains: expected \"Welcome\", got not found")).unwrap(),
            "body_contains: expected \"Welcome\", got not found"
        );
        assert_eq!(why(Some("timeout"), Some("no answer in 5s")).unwrap(), "timeout: no answer in 5s");
        assert_eq!(why(Some("connect"), None).unwrap(), "connect");
        assert_eq!(why(None, Some("refused")).unwrap(), "refused");
        assert_eq!(why(None, None), None);
    }
}
