//! Validation of notifiers, alert rules, SLOs and probe health, once every check of every file is known.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::spec::{RawAlert, RawMatch, RawProbeHealth, RawSlo, RegionCount};
use super::{AlertRule, Alerting, FailingState, Hold, ProbeHealth, RESERVED_ALERTS, RegionQuorum, Slo, parse_percent};
use crate::config::validate::{is_name, validate_labels};
use crate::config::{Check, ConfigError, Ctx, OneOrMany, Path, Place, Schedule, SecretRef, SourceFile, suggest};
use crate::yaml::{Node, NodeKind};

const MIN_SLO_WINDOW: Duration = Duration::from_secs(86_400);
const MAX_SLO_WINDOW: Duration = Duration::from_secs(90 * 86_400);
const DEFAULT_SLO_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// Validates the `slo` of the check at `path` (its `notify` names are checked later, with the notifiers).
pub(crate) fn validate_slo(cx: &mut Ctx<'_>, path: &Path, raw: RawSlo) -> Option<Slo> {
    let mut ok = true;
    if !(raw.objective > 0.0 && raw.objective < 100.0) {
        cx.error(
            &path.key("objective"),
            format!("{} is not a percentage between 0 and 100, such as 99.9", raw.objective),
        );
        ok = false;
    }
    let window = match raw.window.as_deref() {
        None => Some(DEFAULT_SLO_WINDOW),
        Some(text) => {
            let at = path.key("window");
            let window = cx.duration(&at, text)?;
            if (MIN_SLO_WINDOW..=MAX_SLO_WINDOW).contains(&window) {
                Some(window)
            } else {
                cx.error(&at, format!("{} is outside the allowed range of 1d to 90d", crate::duration::format(window)));
                None
            }
        }
    };
    let window = window?;
    ok.then_some(Slo { objective: raw.objective, window, notify: raw.notify.map(Vec::from) })
}

/// Validates the alerting sections of every file, given the checks (valid ones) and every check name written.
pub(crate) fn validate_alerting(
    files: &[SourceFile],
    shaped: &[usize],
    checks: &[Check],
    check_names: &HashMap<String, Place>,
    errors: &mut Vec<ConfigError>,
    secrets: &mut Vec<SecretRef>,
    warnings: &mut Vec<ConfigError>,
) -> Alerting {
    let mut alerting = Alerting::default();
    // Notifiers first: rules in any file may name them.
    let mut notifier_places: HashMap<String, Place> = HashMap::new();
    for &index in shaped {
        let file = &files[index];
        let mut cx = Ctx::new(&file.name, &file.root);
        super::notifiers::collect_notifiers(&mut cx, &mut alerting.notifiers, &mut notifier_places);
        errors.append(&mut cx.errors);
        secrets.append(&mut cx.secrets);
        warnings.append(&mut cx.warnings);
    }
    let notifier_names: Vec<&str> = notifier_places.keys().map(String::as_str).collect();
    let mut probe_health_at: Option<Place> = None;
    let mut alert_places: HashMap<String, Place> = HashMap::new();
    for &index in shaped {
        let file = &files[index];
        let mut cx = Ctx::new(&file.name, &file.root);
        let base = Path::root().key("alerts");
        match cx.node(&base).map(|node| &node.kind) {
            None => {}
            Some(NodeKind::Seq(items)) => {
                for i in 0..items.len() {
                    let name_path = base.index(i).key("name");
                    let duplicate = match cx.node(&name_path).map(|node| &node.kind) {
                        Some(NodeKind::Scalar { text, .. }) => match alert_places.get(text) {
                            Some(first) => {
                                cx.error(
                                    &name_path,
                                    format!("duplicate alert name {text:?} (first defined at {first})"),
                                );
                                true
                            }
                            None => {
                                let at = cx.mark(&name_path);
                                let place = Place { file: cx.file().to_owned(), line: at.line, col: at.col };
                                alert_places.insert(text.clone(), place);
                                false
                            }
                        },
                        _ => false,
                    };
                    let rule = validate_rule(&mut cx, &base.index(i), checks, check_names, &notifier_names);
                    if let Some(rule) = rule.filter(|_| !duplicate) {
                        alerting.alerts.push(rule);
                    }
                }
            }
            Some(_) if cx.node(&base).is_some_and(Node::is_null) => {}
            Some(_) => {
                let found = cx.node(&base).map(Node::type_name).unwrap_or_default();
                cx.error(&base, format!("expected a list of alert rules, found {found}"));
            }
        }
        let health = Path::root().key("probe_health");
        if cx.node(&health).is_some() {
            match &probe_health_at {
                Some(first) => cx.error_at_key(&health, format!("probe_health is already set in {first}")),
                None => {
                    let at = cx.key_mark(&health);
                    probe_health_at = Some(Place { file: cx.file().to_owned(), line: at.line, col: at.col });
                    if let Some(parsed) = validate_probe_health(&mut cx, &health, &notifier_names) {
                        alerting.probe_health = parsed;
                    }
                }
            }
        }
        check_slo_notifiers(&mut cx, &notifier_names);
        errors.append(&mut cx.errors);
    }
    alerting
}

fn validate_rule(
    cx: &mut Ctx<'_>,
    path: &Path,
    checks: &[Check],
    check_names: &HashMap<String, Place>,
    notifier_names: &[&str],
) -> Option<AlertRule> {
    let raw: RawAlert = cx.deserialize(path)?;
    let mut ok = true;
    if !is_name(&raw.name) || raw.name.len() > 63 {
        cx.error(
            &path.key("name"),
            format!("{:?} is not a valid alert name: use 1 to 63 lowercase letters, digits, `-` and `_`", raw.name),
        );
        ok = false;
    } else if RESERVED_ALERTS.contains(&raw.name.as_str()) {
        cx.error(&path.key("name"), format!("alert name {:?} is reserved: probenet raises it itself", raw.name));
        ok = false;
    }
    let watched =
        select_checks(cx, path, "an alert rule", raw.checks.as_ref(), raw.matcher.as_ref(), checks, check_names);
    let failed_regions = match &raw.failed_regions {
        None => Some(RegionQuorum::Percent(50.0)),
        Some(RegionCount::Count(count)) if *count >= 1 => Some(RegionQuorum::Count(usize::try_from(*count).ok()?)),
        Some(RegionCount::Count(count)) => {
            cx.error(&path.key("failed_regions"), format!("{count} regions: at least 1 must fail"));
            None
        }
        Some(RegionCount::Text(text)) => match parse_percent(text) {
            Some(percent) => Some(RegionQuorum::Percent(percent)),
            None => {
                cx.error(
                    &path.key("failed_regions"),
                    format!("{text:?} is not a count of regions or a percentage such as \"50%\""),
                );
                None
            }
        },
    };
    if let (Some(RegionQuorum::Count(count)), Some(watched)) = (failed_regions, &watched) {
        let selected = checks.iter().filter(|check| watched.contains(&check.name));
        if let Some(check) = selected.filter(|check| check.regions.len() < count).min_by_key(|c| c.regions.len()) {
            let n = check.regions.len();
            cx.error(
                &path.key("failed_regions"),
                format!(
                    "{count} regions can never fail: check {:?} runs in {n} region{} ({})",
                    check.name,
                    if n == 1 { "" } else { "s" },
                    check.regions.join(", ")
                ),
            );
            ok = false;
        }
    }
    let hold = match (&raw.hold, raw.consecutive) {
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("consecutive"), "set either `for` or `consecutive`, not both");
            None
        }
        (Some(text), None) => cx.duration(&path.key("for"), text).map(Hold::For),
        (None, Some(count)) if (1..=1000).contains(&count) => Some(Hold::Consecutive(count)),
        (None, Some(count)) => {
            cx.error(&path.key("consecutive"), format!("{count} is outside the allowed range of 1 to 1000"));
            None
        }
        (None, None) => Some(Hold::For(Duration::ZERO)),
    };
    let resolve_after = match raw.resolve_after.as_deref() {
        Some(text) => cx.duration(&path.key("resolve_after"), text),
        None => {
            let slowest = checks
                .iter()
                .filter(|check| watched.as_ref().is_some_and(|names| names.contains(&check.name)))
                .map(check_interval)
                .max()
                .unwrap_or(Duration::from_secs(60));
            Some((slowest * 2).max(Duration::from_secs(60)))
        }
    };
    let state = match raw.state.as_deref() {
        None | Some("down") => Some(FailingState::Down),
        Some("degraded") => Some(FailingState::Degraded),
        Some(other) => {
            cx.error(&path.key("state"), format!("{other:?} is not one of down, degraded"));
            None
        }
    };
    let severity = raw.severity.clone().unwrap_or_else(|| "warning".to_owned());
    ok &= check_severity(cx, &path.key("severity"), &severity);
    let mut labels = validate_labels(cx, &path.key("labels"), raw.labels.unwrap_or_default());
    if labels.remove("severity").is_some() {
        cx.error_at_key(&path.key("labels").key("severity"), "set the severity with `severity`, not as a label");
        ok = false;
    }
    let notify = raw.notify.unwrap_or_default();
    ok &= check_notifier_names(cx, &path.key("notify"), &notify, notifier_names);
    let mark = cx.mark(path);
    let place = Place { file: cx.file().to_owned(), line: mark.line, col: mark.col };
    let (checks, failed_regions, hold, resolve_after, state) =
        (watched?, failed_regions?, hold?, resolve_after?, state?);
    ok.then_some(AlertRule {
        name: raw.name,
        checks,
        failed_regions,
        hold,
        resolve_after,
        state,
        severity,
        labels,
        notify: notify.into(),
        place,
    })
}

/// The checks selected by `checks` or `match` (of an alert rule or a maintenance window: `what`).
pub(crate) fn select_checks(
    cx: &mut Ctx<'_>,
    path: &Path,
    what: &str,
    names: Option<&OneOrMany<String>>,
    matcher: Option<&RawMatch>,
    checks: &[Check],
    check_names: &HashMap<String, Place>,
) -> Option<Vec<String>> {
    match (names, matcher) {
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("match"), "set either `checks` or `match`, not both");
            None
        }
        (None, None) => {
            cx.error(path, format!("{what} needs `checks` (a list of check names) or `match` (labels)"));
            None
        }
        (Some(names), None) => {
            if names.is_empty() {
                cx.error(&path.key("checks"), "the list of checks is empty");
                return None;
            }
            let mut out: Vec<String> = Vec::new();
            let mut ok = true;
            for (i, name) in names.iter().enumerate() {
                let at = path.key("checks").index(i);
                if out.contains(name) {
                    cx.error(&at, format!("check {name:?} is listed twice"));
                    ok = false;
                } else if check_names.contains_key(name) {
                    out.push(name.clone());
                } else {
                    let hint = suggest(name, check_names.keys().map(String::as_str))
                        .map(|close| format!(" (did you mean {close:?}?)"))
                        .unwrap_or_default();
                    cx.error(&at, format!("unknown check {name:?}{hint}"));
                    ok = false;
                }
            }
            ok.then_some(out)
        }
        (None, Some(matcher)) => {
            let at = path.key("match").key("labels");
            if matcher.labels.is_empty() {
                cx.error(&at, "the label selector is empty");
                return None;
            }
            let known: BTreeSet<&str> =
                checks.iter().flat_map(|check| check.labels.keys()).map(String::as_str).collect();
            let mut ok = true;
            for name in matcher.labels.keys() {
                if !known.contains(name.as_str()) {
                    let hint = suggest(name, known.iter().copied())
                        .map(|close| format!(" (did you mean {close:?}?)"))
                        .unwrap_or_default();
                    cx.error_at_key(&at.key(name), format!("no check has label {name:?}{hint}"));
                    ok = false;
                }
            }
            if !ok {
                return None;
            }
            let selected: Vec<String> = checks
                .iter()
                .filter(|check| matcher.labels.iter().all(|(name, value)| check.labels.get(name) == Some(value)))
                .map(|check| check.name.clone())
                .collect();
            if selected.is_empty() {
                cx.error(&at, "no check has all of these labels");
                return None;
            }
            Some(selected)
        }
    }
}

/// How often a check runs (cron: its average gap over a day).
pub(crate) fn check_interval(check: &Check) -> Duration {
    match &check.schedule {
        Schedule::Every(interval) => *interval,
        Schedule::Cron(_) => Duration::from_secs_f64(86_400.0 / check.schedule.runs_per_day().max(1.0)),
    }
}

fn check_severity(cx: &mut Ctx<'_>, path: &Path, severity: &str) -> bool {
    let valid = is_name(severity) && severity.len() <= 32;
    if !valid {
        cx.error(path, format!("{severity:?} is not a valid severity: use lowercase letters, digits, `-` and `_`"));
    }
    valid
}

fn check_notifier_names(cx: &mut Ctx<'_>, path: &Path, names: &[String], known: &[&str]) -> bool {
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        if known.contains(&name.as_str()) {
            continue;
        }
        ok = false;
        let at = path.index(i);
        if known.is_empty() {
            cx.error(&at, format!("unknown notifier {name:?}: declare it under `notifiers` first"));
        } else {
            let hint = suggest(name, known.iter().copied())
                .map(|close| format!(" (did you mean {close:?}?)"))
                .unwrap_or_default();
            let mut sorted = known.to_vec();
            sorted.sort_unstable();
            cx.error(&at, format!("unknown notifier {name:?}{hint}; declared notifiers: {}", sorted.join(", ")));
        }
    }
    ok
}

fn validate_probe_health(cx: &mut Ctx<'_>, path: &Path, known: &[&str]) -> Option<ProbeHealth> {
    let raw = if cx.node(path).is_some_and(Node::is_null) {
        RawProbeHealth::default()
    } else {
        cx.deserialize::<RawProbeHealth>(path)?
    };
    let defaults = ProbeHealth::default();
    let mut ok = true;
    if let Some(notify) = &raw.notify {
        ok &= check_notifier_names(cx, &path.key("notify"), notify, known);
    }
    let severity = raw.severity.unwrap_or(defaults.severity);
    ok &= check_severity(cx, &path.key("severity"), &severity);
    let min_failing_checks = raw.min_failing_checks.unwrap_or(3);
    if min_failing_checks == 0 {
        cx.error(&path.key("min_failing_checks"), "0 is outside the allowed range of 1 or more");
        ok = false;
    }
    let mut share = |key: &str, text: Option<String>, default: f64| match text {
        None => Some(default),
        Some(text) => match parse_percent(&text) {
            Some(percent) => Some(percent / 100.0),
            None => {
                cx.error(&path.key(key), format!("{text:?} is not a percentage such as \"50%\""));
                None
            }
        },
    };
    let min_failing_share = share("min_failing_share", raw.min_failing_share, defaults.min_failing_share);
    let min_passing_elsewhere =
        share("min_passing_elsewhere", raw.min_passing_elsewhere, defaults.min_passing_elsewhere);
    ok.then_some(ProbeHealth {
        notify: raw.notify.map(Vec::from),
        severity,
        min_failing_checks: usize::try_from(min_failing_checks).ok()?,
        min_failing_share: min_failing_share?,
        min_passing_elsewhere: min_passing_elsewhere?,
    })
}

/// Checks the notifier names of every `checks[i].slo.notify` of one file.
fn check_slo_notifiers(cx: &mut Ctx<'_>, known: &[&str]) {
    let base = Path::root().key("checks");
    let Some(Node { kind: NodeKind::Seq(items), .. }) = cx.node(&base) else { return };
    for i in 0..items.len() {
        let at = base.index(i).key("slo").key("notify");
        let Some(Node { kind: NodeKind::Seq(names), .. }) = cx.node(&at) else { continue };
        let names: Vec<String> = names
            .iter()
            .map(|node| match &node.kind {
                NodeKind::Scalar { text, .. } => text.clone(),
                _ => String::new(),
            })
            .collect();
        check_notifier_names(cx, &at, &names, known);
    }
}
