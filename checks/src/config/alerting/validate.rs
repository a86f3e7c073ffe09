//! Validation of notifiers, alert rules, SLOs and probe health, once every check of every file is known.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use super::spec::{RawAlert, RawEmail, RawNotifier, RawProbeHealth, RawSlo, RegionCount};
use super::{
    AlertRule, Alerting, AlertmanagerSpec, EmailSpec, FailingState, Hold, HttpAuth, NotifierSpec, PAGERDUTY_URL,
    PagerDutySpec, ProbeHealth, RESERVED_ALERTS, RegionQuorum, SlackSpec, Slo, SmtpSecurity, WebhookSpec,
    parse_percent,
};
use crate::config::validate::{is_name, validate_labels};
use crate::config::{Check, ConfigError, Ctx, Path, Place, Schedule, SecretRef, SourceFile, suggest};
use crate::secret::Template;
use crate::yaml::{Node, NodeKind};

const NOTIFIER_KINDS: [&str; 5] = ["webhook", "slack", "alertmanager", "pagerduty", "email"];
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
    ok.then_some(Slo { objective: raw.objective, window, notify: raw.notify })
}

/// Validates the alerting sections of every file, given the checks (valid ones) and every check name written.
pub(crate) fn validate_alerting(
    files: &[SourceFile],
    shaped: &[usize],
    checks: &[Check],
    check_names: &HashMap<String, Place>,
    errors: &mut Vec<ConfigError>,
    secrets: &mut Vec<SecretRef>,
) -> Alerting {
    let mut alerting = Alerting::default();
    // Notifiers first: rules in any file may name them.
    let mut notifier_places: HashMap<String, Place> = HashMap::new();
    for &index in shaped {
        let file = &files[index];
        let mut cx = Ctx::new(&file.name, &file.root);
        collect_notifiers(&mut cx, &mut alerting.notifiers, &mut notifier_places);
        errors.append(&mut cx.errors);
        secrets.append(&mut cx.secrets);
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

fn collect_notifiers(
    cx: &mut Ctx<'_>,
    notifiers: &mut BTreeMap<String, NotifierSpec>,
    places: &mut HashMap<String, Place>,
) {
    let base = Path::root().key("notifiers");
    let Some(node) = cx.node(&base) else { return };
    let NodeKind::Map(entries) = &node.kind else {
        if !node.is_null() {
            cx.error(&base, format!("expected a mapping of notifier name to its options, found {}", node.type_name()));
        }
        return;
    };
    for (key, _) in entries {
        let path = base.key(&key.text);
        if !is_name(&key.text) {
            cx.error_at_key(
                &path,
                format!("{:?} is not a valid notifier name: use lowercase letters, digits, `-` and `_`", key.text),
            );
            continue;
        }
        if let Some(first) = places.get(&key.text) {
            cx.error_at_key(&path, format!("notifier {:?} is already defined at {first}", key.text));
            continue;
        }
        places.insert(key.text.clone(), Place { file: cx.file().to_owned(), line: key.mark.line, col: key.mark.col });
        if let Some(spec) = validate_notifier(cx, &path) {
            notifiers.insert(key.text.clone(), spec);
        }
    }
}

fn validate_notifier(cx: &mut Ctx<'_>, path: &Path) -> Option<NotifierSpec> {
    if cx.node(path).is_some_and(Node::is_null) {
        cx.error(path, format!("a notifier needs one of {}", NOTIFIER_KINDS.join(", ")));
        return None;
    }
    let raw = cx.deserialize::<RawNotifier>(path)?;
    let node = cx.node(path)?;
    let mut present: Vec<_> = NOTIFIER_KINDS.iter().filter_map(|key| Some((node.key_mark(key)?, *key))).collect();
    present.sort();
    match present.as_slice() {
        [] => {
            cx.error(path, format!("a notifier needs one of {}", NOTIFIER_KINDS.join(", ")));
            return None;
        }
        [_] => {}
        [(_, first), (_, second), ..] => {
            cx.error_at_key(
                &path.key(second),
                format!("a notifier has exactly one kind, but this one has both `{first}` and `{second}`"),
            );
            return None;
        }
    }
    if let Some(raw) = raw.webhook {
        let at = path.key("webhook");
        let url = url_template(cx, &at.key("url"), &raw.url);
        let secret = raw.secret.as_deref().and_then(|text| cx.template(&at.key("secret"), text));
        let mut headers = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            let header = at.key("headers").key(&name);
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                cx.error_at_key(&header, format!("{name:?} is not a valid header name"));
            } else if let Some(value) = cx.template(&header, &value) {
                headers.push((name, value));
            }
        }
        return Some(NotifierSpec::Webhook(WebhookSpec { url: url?, secret, headers }));
    }
    if let Some(raw) = raw.slack {
        let url = url_template(cx, &path.key("slack").key("url"), &raw.url)?;
        return Some(NotifierSpec::Slack(SlackSpec { url }));
    }
    if let Some(raw) = raw.alertmanager {
        let at = path.key("alertmanager");
        let url = url_template(cx, &at.key("url"), &raw.url);
        let bearer = raw.bearer_token.as_deref().and_then(|text| cx.template(&at.key("bearer_token"), text));
        let basic = raw.basic_auth.and_then(|auth| {
            let password = cx.template(&at.key("basic_auth").key("password"), &auth.password)?;
            Some((auth.username, password))
        });
        let auth = match (bearer, basic) {
            (Some(_), Some(_)) => {
                cx.error_at_key(&at.key("bearer_token"), "set either `basic_auth` or `bearer_token`, not both");
                return None;
            }
            (Some(token), None) => Some(HttpAuth::Bearer(token)),
            (None, Some((user, password))) => Some(HttpAuth::Basic(user, password)),
            (None, None) => None,
        };
        return Some(NotifierSpec::Alertmanager(AlertmanagerSpec { url: url?, auth }));
    }
    if let Some(raw) = raw.pagerduty {
        let at = path.key("pagerduty");
        let routing_key = cx.template(&at.key("routing_key"), &raw.routing_key);
        let url = match raw.url.as_deref() {
            Some(text) => url_template(cx, &at.key("url"), text),
            None => Some(Template::literal(PAGERDUTY_URL)),
        };
        return Some(NotifierSpec::PagerDuty(PagerDutySpec { routing_key: routing_key?, url: url? }));
    }
    let raw = raw.email?;
    validate_email(cx, &path.key("email"), raw).map(NotifierSpec::Email)
}

fn validate_email(cx: &mut Ctx<'_>, at: &Path, raw: RawEmail) -> Option<EmailSpec> {
    let security = match raw.security.as_deref() {
        None | Some("starttls") => Some(SmtpSecurity::StartTls),
        Some("tls") => Some(SmtpSecurity::Tls),
        Some("none") => Some(SmtpSecurity::None),
        Some(other) => {
            cx.error(&at.key("security"), format!("{other:?} is not one of starttls, tls, none"));
            None
        }
    };
    let default_port = match security {
        Some(SmtpSecurity::Tls) => 465,
        Some(SmtpSecurity::None) => 25,
        _ => 587,
    };
    let server = cx.host_port(&at.key("smtp"), &raw.smtp, Some(default_port));
    let password = raw.password.as_deref().and_then(|text| cx.template(&at.key("password"), text));
    if raw.username.is_some() != raw.password.is_some() {
        let key = if raw.username.is_some() { "username" } else { "password" };
        cx.error_at_key(&at.key(key), "set both `username` and `password`, or neither");
    }
    let mut ok = check_address(cx, &at.key("from"), &raw.from);
    if raw.to.is_empty() {
        cx.error(&at.key("to"), "the list of recipients is empty");
        ok = false;
    }
    for (i, address) in raw.to.iter().enumerate() {
        ok &= check_address(cx, &at.key("to").index(i), address);
    }
    let (host, port) = server?;
    let security = security?;
    ok.then_some(EmailSpec { host, port, security, username: raw.username, password, from: raw.from, to: raw.to })
}

fn check_address(cx: &mut Ctx<'_>, path: &Path, address: &str) -> bool {
    let valid = address.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !address.contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if !valid {
        cx.error(path, format!("{address:?} is not an email address such as oncall@example.com"));
    }
    valid
}

/// A URL that may hold secrets; checked now when it holds none.
fn url_template(cx: &mut Ctx<'_>, path: &Path, text: &str) -> Option<Template> {
    let template = cx.template(path, text)?;
    if template.has_secrets() {
        return Some(template);
    }
    match url::Url::parse(text) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            cx.error(path, format!("{text:?}: scheme {:?} is not http or https", url.scheme()));
            None
        }
        Ok(url) if url.host().is_none() => {
            cx.error(path, format!("{text:?} has no host"));
            None
        }
        Ok(url) if url.password().is_some() => {
            cx.error(path, "put credentials in a secret reference, not in the URL");
            None
        }
        Ok(_) => Some(template),
        Err(error) => {
            cx.error(path, format!("{text:?} is not a valid URL: {error}"));
            None
        }
    }
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
    let watched = select_checks(cx, path, &raw, checks, check_names);
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
        notify,
        place,
    })
}

/// The checks a rule watches, from `checks` or `match`.
fn select_checks(
    cx: &mut Ctx<'_>,
    path: &Path,
    raw: &RawAlert,
    checks: &[Check],
    check_names: &HashMap<String, Place>,
) -> Option<Vec<String>> {
    match (&raw.checks, &raw.matcher) {
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("match"), "set either `checks` or `match`, not both");
            None
        }
        (None, None) => {
            cx.error(path, "an alert rule needs `checks` (a list of check names) or `match` (labels)");
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
        notify: raw.notify,
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
