//! Maintenance windows: the `maintenance` section, validated, and the one pure answer to "which windows are in
//! force for this check at this instant, and when is the next one".
//!
//! A recurring window starts at each occurrence of a crontab line read in its time zone (croner's rules, so a
//! daylight-saving change behaves as a cron job does) and lasts `duration` of real time. On the night clocks go
//! forward, a start at a wall-clock time that does not exist (02:00 in Europe/Paris) starts at the first instant
//! after the gap (03:00 CEST); on the night they go back, a start at a time that happens twice (02:00) starts
//! once, at the earlier of the two instants (02:00 CEST). A one-off window runs from `start` to `end`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::TimeZone as _;
use schemars::JsonSchema;
use serde::Deserialize;

use super::alerting::spec::RawMatch;
use super::validate::is_name;
use super::{Check, ConfigError, Ctx, OneOrMany, Path, Place, SourceFile};
use crate::yaml::{Node, NodeKind};

/// The longest a recurring window may last.
const MAX_RECURRING: Duration = Duration::from_secs(7 * 86_400);

/// One maintenance window: which checks, when, and whether their alerts are muted or their runs paused.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Maintenance")]
pub struct RawMaintenance {
    /// A unique name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// The checks it applies to, by name. Exclusive with `match`; one of them is required.
    pub checks: Option<OneOrMany<String>>,
    /// Selects the checks it applies to by their labels. Exclusive with `checks`.
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    /// A recurring window: a standard 5-field crontab line (`0 2 * * SUN`) or `@daily`, read in `timezone`; each
    /// occurrence starts the window for `duration`. Exclusive with `start`.
    pub schedule: Option<String>,
    /// The IANA time zone `schedule` is read in (default `UTC`), such as `Europe/Paris`. On the night clocks go
    /// forward, a start in the skipped hour happens at the end of the gap; on the night they go back, a start in
    /// the repeated hour happens once, the first time.
    pub timezone: Option<String>,
    /// A one-off window: when it starts, an RFC 3339 time with its offset, such as `2026-12-20T01:00:00+01:00`.
    /// Exclusive with `schedule`.
    pub start: Option<String>,
    /// When a one-off window ends, an RFC 3339 time with its offset. Exclusive with `duration`.
    pub end: Option<String>,
    /// How long the window lasts, in real time, such as `2h`: required with `schedule` (at most `7d`), or instead
    /// of `end` with `start`.
    pub duration: Option<String>,
    /// `mute` (default): the checks run, but their alerts notify nobody while the window lasts (a page that fires
    /// is held, and sent when the window ends if the alert still fires) and their runs are left out of SLOs.
    /// `pause`: the checks do not run; alerts see no data (neither failing nor passing).
    pub mode: Option<String>,
    /// Why: a short free text (at most 500 characters) the API and `/api/v1/maintenance` show, such as the
    /// ticket of the change.
    pub reason: Option<String>,
    /// Who set it up: a short free text (at most 100 characters), such as a name or a team.
    pub created_by: Option<String>,
}

/// The longest `reason`, in characters.
const MAX_REASON: usize = 500;
/// The longest `created_by`, in characters.
const MAX_CREATED_BY: usize = 100;

/// What a window does to its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MaintenanceMode {
    /// They run; their alerts notify nobody and their runs are left out of SLOs.
    Mute,
    /// They do not run; their alerts see no data.
    Pause,
}

impl MaintenanceMode {
    /// As written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mute => "mute",
            Self::Pause => "pause",
        }
    }
}

/// When a window is in force.
#[derive(Debug, Clone)]
pub enum When {
    /// At each occurrence of a crontab line, for a while.
    Recurring {
        /// The schedule of its starts.
        cron: Box<super::CronSchedule>,
        /// How long each lasts, in ms.
        duration_ms: i64,
    },
    /// Once.
    Once {
        /// Start, unix ms.
        start_ms: i64,
        /// End (excluded), unix ms.
        end_ms: i64,
    },
}

/// A validated maintenance window.
#[derive(Debug, Clone)]
pub struct Maintenance {
    /// Its unique name.
    pub name: String,
    /// The checks it applies to (resolved from `checks` or `match`), in config order.
    pub checks: Vec<String>,
    /// When it is in force.
    pub when: When,
    /// What it does.
    pub mode: MaintenanceMode,
    /// Why, as written.
    pub reason: Option<String>,
    /// Who set it up, as written.
    pub created_by: Option<String>,
    /// Where it is written.
    pub place: Place,
}

/// One span of a window: `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Its first instant, unix ms.
    pub start_ms: i64,
    /// The first instant after it, unix ms.
    pub end_ms: i64,
}

impl Span {
    /// Whether `at_ms` is inside.
    pub fn contains(&self, at_ms: i64) -> bool {
        self.start_ms <= at_ms && at_ms < self.end_ms
    }
}

impl Maintenance {
    /// The span in force at `at_ms`, if any.
    pub fn active_span(&self, at_ms: i64) -> Option<Span> {
        self.next_span(at_ms).filter(|span| span.contains(at_ms))
    }

    /// Whether it is in force at `at_ms`.
    pub fn active(&self, at_ms: i64) -> bool {
        self.active_span(at_ms).is_some()
    }

    /// The first span that has not ended at `at_ms`: the one in force, or else the next one (its `start_ms` is
    /// the next start after `at_ms`, its `end_ms` the next end). `None` when it never happens again.
    pub fn next_span(&self, at_ms: i64) -> Option<Span> {
        match &self.when {
            When::Once { start_ms, end_ms } => {
                (at_ms < *end_ms).then_some(Span { start_ms: *start_ms, end_ms: *end_ms })
            }
            When::Recurring { cron, duration_ms } => {
                // The earliest start whose span has not ended: after `at_ms - duration`.
                let from_ms = at_ms.checked_sub(*duration_ms)?.checked_add(1)?;
                let start = next_start(cron, from_ms)?;
                Some(Span { start_ms: start, end_ms: start.checked_add(*duration_ms)? })
            }
        }
    }

    /// Whether it applies to `check`.
    pub fn applies_to(&self, check: &str) -> bool {
        self.checks.iter().any(|name| name == check)
    }
}

/// The first cron occurrence at or after `from_ms` (rounded up to a whole second).
fn next_start(cron: &super::CronSchedule, from_ms: i64) -> Option<i64> {
    let seconds = from_ms.div_euclid(1000) + i64::from(from_ms.rem_euclid(1000) != 0);
    let from = cron.timezone.timestamp_opt(seconds, 0).single()?;
    cron.cron.find_next_occurrence(&from, true).ok().map(|at| at.timestamp_millis())
}

/// The windows in force for `check` at `at_ms`, in config order.
pub fn active_for<'a>(windows: &'a [Maintenance], check: &'a str, at_ms: i64) -> impl Iterator<Item = &'a Maintenance> {
    windows.iter().filter(move |window| window.applies_to(check) && window.active(at_ms))
}

/// Whether `check` is in a window of `mode` at `at_ms`.
pub fn in_mode(windows: &[Maintenance], check: &str, at_ms: i64, mode: MaintenanceMode) -> bool {
    active_for(windows, check, at_ms).any(|window| window.mode == mode)
}

/// Validates the `maintenance` sections of every file, once every check is known.
pub(crate) fn validate_maintenance(
    files: &[SourceFile],
    shaped: &[usize],
    checks: &[Check],
    check_names: &HashMap<String, Place>,
    errors: &mut Vec<ConfigError>,
) -> Vec<Maintenance> {
    let mut out = Vec::new();
    let mut places: HashMap<String, Place> = HashMap::new();
    for &index in shaped {
        let file = &files[index];
        let mut cx = Ctx::new(&file.name, &file.root);
        let base = Path::root().key("maintenance");
        match cx.node(&base).map(|node| &node.kind) {
            None => {}
            Some(NodeKind::Seq(items)) => {
                for i in 0..items.len() {
                    let path = base.index(i);
                    let name_path = path.key("name");
                    let mut duplicate = false;
                    if let Some(NodeKind::Scalar { text, .. }) = cx.node(&name_path).map(|node| &node.kind) {
                        match places.get(text) {
                            Some(first) => {
                                let message =
                                    format!("duplicate maintenance window name {text:?} (first defined at {first})");
                                cx.error(&name_path, message);
                                duplicate = true;
                            }
                            None => {
                                places.insert(text.clone(), cx.place(&name_path));
                            }
                        }
                    }
                    if let Some(window) = validate_window(&mut cx, &path, checks, check_names)
                        && !duplicate
                    {
                        out.push(window);
                    }
                }
            }
            Some(_) if cx.node(&base).is_some_and(Node::is_null) => {}
            Some(_) => {
                let found = cx.node(&base).map(Node::type_name).unwrap_or_default();
                cx.error(&base, format!("expected a list of maintenance windows, found {found}"));
            }
        }
        errors.append(&mut cx.errors);
    }
    out
}

fn validate_window(
    cx: &mut Ctx<'_>,
    path: &Path,
    checks: &[Check],
    check_names: &HashMap<String, Place>,
) -> Option<Maintenance> {
    let raw: RawMaintenance = cx.deserialize(path)?;
    let mut ok = true;
    if !is_name(&raw.name) || raw.name.len() > 63 {
        let message = format!(
            "{:?} is not a valid maintenance window name: use 1 to 63 lowercase letters, digits, `-` and `_`",
            raw.name
        );
        cx.error(&path.key("name"), message);
        ok = false;
    }
    let selected = super::alerting::select_checks(
        cx,
        path,
        "a maintenance window",
        raw.checks.as_ref(),
        raw.matcher.as_ref(),
        checks,
        check_names,
    );
    let mode = match raw.mode.as_deref() {
        None | Some("mute") => Some(MaintenanceMode::Mute),
        Some("pause") => Some(MaintenanceMode::Pause),
        Some(other) => {
            cx.error(&path.key("mode"), format!("{other:?} is not one of mute, pause"));
            None
        }
    };
    let when = validate_when(cx, path, &raw);
    for (key, text, most) in [("reason", &raw.reason, MAX_REASON), ("created_by", &raw.created_by, MAX_CREATED_BY)] {
        if let Some(text) = text
            && (text.chars().count() > most || text.chars().any(char::is_control))
        {
            cx.error(&path.key(key), format!("use at most {most} characters, without control characters"));
            ok = false;
        }
    }
    let place = cx.place(path);
    let (checks, mode, when) = (selected?, mode?, when?);
    ok.then_some(Maintenance {
        name: raw.name,
        checks,
        when,
        mode,
        reason: raw.reason,
        created_by: raw.created_by,
        place,
    })
}

fn validate_when(cx: &mut Ctx<'_>, path: &Path, raw: &RawMaintenance) -> Option<When> {
    if raw.timezone.is_some() && raw.schedule.is_none() {
        cx.error_at_key(
            &path.key("timezone"),
            "`timezone` only applies to a `schedule`; write `start` and `end` with their offset",
        );
    }
    match (&raw.schedule, &raw.start) {
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("start"), "set either `schedule` (recurring) or `start` (one-off), not both");
            None
        }
        (None, None) => {
            cx.error(path, "a maintenance window needs `schedule` and `duration` (recurring) or `start` (one-off)");
            None
        }
        (Some(expr), None) => {
            if raw.end.is_some() {
                cx.error_at_key(&path.key("end"), "`end` only applies to a one-off window (`start`); use `duration`");
            }
            let timezone = match raw.timezone.as_deref() {
                None => Some(chrono_tz::UTC),
                Some(name) => chrono_tz::Tz::from_str(name)
                    .map_err(|_| {
                        let message = format!("{name:?} is not a known IANA time zone, such as Europe/Paris");
                        cx.error(&path.key("timezone"), message);
                    })
                    .ok(),
            };
            let cron = super::validate::parse_cron(expr).map_err(|message| cx.error(&path.key("schedule"), message));
            let duration = match raw.duration.as_deref() {
                None => {
                    cx.error(path, "a recurring maintenance window needs `duration`, such as `2h`");
                    None
                }
                Some(text) => {
                    let at = path.key("duration");
                    cx.duration(&at, text).and_then(|duration| {
                        if duration.is_zero() || duration > MAX_RECURRING {
                            let shown = crate::duration::format(duration);
                            cx.error(&at, format!("{shown} is outside the allowed range of 1s to 7d"));
                            None
                        } else {
                            Some(duration)
                        }
                    })
                }
            };
            let cron = super::CronSchedule { expr: expr.clone(), cron: cron.ok()?, timezone: timezone? };
            Some(When::Recurring { cron: Box::new(cron), duration_ms: millis(duration?) })
        }
        (None, Some(start)) => {
            let start_ms = instant(cx, &path.key("start"), start);
            let end_ms = match (&raw.end, &raw.duration) {
                (Some(_), Some(_)) => {
                    cx.error_at_key(&path.key("duration"), "set either `end` or `duration`, not both");
                    None
                }
                (None, None) => {
                    cx.error(path, "a one-off maintenance window needs `end` or `duration`");
                    None
                }
                (Some(end), None) => instant(cx, &path.key("end"), end),
                (None, Some(text)) => {
                    let at = path.key("duration");
                    let duration = cx.duration(&at, text)?;
                    if duration.is_zero() {
                        cx.error(&at, "0s: a window lasts at least 1s");
                        None
                    } else {
                        start_ms.map(|start| start.saturating_add(millis(duration)))
                    }
                }
            };
            let (start_ms, end_ms) = (start_ms?, end_ms?);
            if end_ms <= start_ms {
                let at = if raw.end.is_some() { path.key("end") } else { path.key("duration") };
                cx.error(&at, format!("the window ends before it starts ({start})"));
                return None;
            }
            Some(When::Once { start_ms, end_ms })
        }
    }
}

/// An RFC 3339 time with its offset, in unix ms.
fn instant(cx: &mut Ctx<'_>, path: &Path, text: &str) -> Option<i64> {
    match chrono::DateTime::parse_from_rfc3339(text.trim()) {
        Ok(at) => Some(at.timestamp_millis()),
        Err(_) => {
            let message =
                format!("{text:?} is not an RFC 3339 time with its offset, such as 2026-12-20T01:00:00+01:00");
            cx.error(path, message);
            None
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
