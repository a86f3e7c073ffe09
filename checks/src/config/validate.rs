//! Validation: raw YAML trees of every file into one ready [`Config`], reporting every error at once.
//!
//! Pure: no file system, network or environment. Secret references are only parsed here;
//! `Config::check_secrets` resolves them later, on the machine that runs the checks.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use super::spec::{RawCheck, RawDefaults, RawFile, RawRegion, RawScheduling};
use super::{
    Check, CheckKind, Config, ConfigErrors, Ctx, KindSpec, Path, Place, Region, Schedule, Scheduling, SecretRef,
    SourceFile, suggest,
};
use crate::kind::{Kind, KindCheck, KindVisitor};
use crate::yaml::{Node, NodeKind};

const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CATCH_UP: Duration = Duration::from_secs(60);
const MAX_CATCH_UP: Duration = Duration::from_secs(3600);
/// Why an empty file is refused.
pub const EMPTY_FILE: &str = "the file is empty (a half-saved edit?); a config file holds at least one section: write `checks: []` to run no checks";

/// The region checks run from when a config declares none.
pub const LOCAL_REGION: &str = "local";

/// Defaults after validation, with the place each came from (for error messages).
#[derive(Debug, Default)]
struct Defaults {
    interval: Option<Duration>,
    timeout: Option<Duration>,
    regions: Option<Vec<String>>,
    catch_up: Option<Duration>,
}

/// Validates every file into one config, or returns every error found in any of them.
pub fn validate(files: &[SourceFile]) -> Result<Config, ConfigErrors> {
    validate_collecting_secrets(files).0
}

/// Like [`validate`], and also returns every secret reference found, even when the config has errors,
/// so that unresolvable secrets can be reported together with the other errors.
pub(crate) fn validate_collecting_secrets(files: &[SourceFile]) -> (Result<Config, ConfigErrors>, Vec<SecretRef>) {
    let mut errors = Vec::new();
    let mut regions: BTreeMap<String, (Region, Place)> = BTreeMap::new();
    let mut defaults_raw: Option<(usize, RawDefaults)> = None;
    let mut scheduling: Option<(usize, Scheduling)> = None;
    let mut exporters = Vec::new();

    // Pass 1: the shape of each file, its regions and defaults.
    let mut shaped = Vec::new();
    let mut secrets = Vec::new();
    let mut warnings = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let mut cx = Ctx::new(&file.name, &file.root);
        let ok = match &file.root.kind {
            NodeKind::Map(_) => cx.deserialize::<RawFile>(&Path::root()).is_some(),
            // An empty file is most often a half-saved edit: taking it as "no checks" would stop every check.
            _ if file.root.is_null() => {
                cx.error(&Path::root(), EMPTY_FILE);
                false
            }
            _ => {
                cx.error(&Path::root(), "a config file is a mapping with `regions`, `defaults` and `checks`");
                false
            }
        };
        if ok || matches!(file.root.kind, NodeKind::Map(_)) {
            shaped.push(index);
            collect_regions(&mut cx, &mut regions);
            exporters.extend(super::exporters::validate_exporters(&mut cx));
            secrets.append(&mut cx.secrets);
            warnings.append(&mut cx.warnings);
            if cx.node(&Path::root().key("scheduling")).is_some() {
                match &scheduling {
                    Some((first, _)) => {
                        let first = &files[*first];
                        let at = first.root.key_mark("scheduling").unwrap_or_default();
                        cx.error_at_key(
                            &Path::root().key("scheduling"),
                            format!("scheduling is already set in {}:{}:{}", first.name, at.line, at.col),
                        );
                    }
                    None => {
                        if let Some(parsed) = validate_scheduling(&mut cx) {
                            scheduling = Some((index, parsed));
                        }
                    }
                }
            }
            if let Some(node) = file.root.get("defaults") {
                if let Some((first, _)) = &defaults_raw {
                    let first = &files[*first];
                    let at = first.root.key_mark("defaults").unwrap_or(node.mark);
                    cx.error_at_key(
                        &Path::root().key("defaults"),
                        format!("defaults are already set in {}:{}:{}", first.name, at.line, at.col),
                    );
                } else if node.is_null() {
                    defaults_raw = Some((index, RawDefaults::default()));
                } else if let Some(raw) = cx.deserialize::<RawDefaults>(&Path::root().key("defaults")) {
                    defaults_raw = Some((index, raw));
                }
            }
        }
        errors.append(&mut cx.errors);
    }

    let declared: Vec<String> = regions.keys().cloned().collect();
    let defaults = match &defaults_raw {
        Some((index, raw)) => {
            let file = &files[*index];
            let mut cx = Ctx::new(&file.name, &file.root);
            let defaults = validate_defaults(&mut cx, raw, &declared);
            errors.append(&mut cx.errors);
            defaults
        }
        None => Defaults::default(),
    };

    // Pass 2: every check of every file.
    let mut checks: Vec<Check> = Vec::new();
    // Where each valid check is written (file index, path), for errors found once every check is known.
    let mut written: Vec<(usize, Path)> = Vec::new();
    let mut names: HashMap<String, Place> = HashMap::new();
    let shaped_files = shaped.clone();
    for index in shaped {
        let file = &files[index];
        let mut cx = Ctx::new(&file.name, &file.root);
        let checks_path = Path::root().key("checks");
        match file.root.get("checks") {
            None => {}
            Some(node) if node.is_null() => {}
            Some(Node { kind: NodeKind::Seq(items), .. }) => {
                for i in 0..items.len() {
                    let path = checks_path.index(i);
                    if let Some(check) = validate_check(&mut cx, &path, &defaults, &declared, &mut names) {
                        checks.push(check);
                        written.push((index, path));
                    }
                }
            }
            Some(node) => cx.error(&checks_path, format!("expected a list of checks, found {}", node.type_name())),
        }
        errors.append(&mut cx.errors);
        secrets.append(&mut cx.secrets);
        warnings.append(&mut cx.warnings);
    }

    validate_dependencies(files, &checks, &written, &names, &mut errors);
    let alerting = super::alerting::validate_alerting(
        files,
        &shaped_files,
        &checks,
        &names,
        &mut errors,
        &mut secrets,
        &mut warnings,
    );
    let maintenance = super::maintenance::validate_maintenance(files, &shaped_files, &checks, &names, &mut errors);
    let check_names: Vec<&str> = checks.iter().map(|check| check.name.as_str()).collect();
    let mut found = Found { errors: &mut errors, secrets: &mut secrets, warnings: &mut warnings };
    let dashboard = set_once(files, &shaped_files, "dashboard", &mut found, |cx| {
        super::dashboard::validate_dashboard(cx, &check_names)
    })
    .unwrap_or_default();
    let objects = set_once(files, &shaped_files, "objects", &mut found, super::objects::validate_objects);
    if !errors.is_empty() {
        return (Err(ConfigErrors(errors).sorted()), secrets);
    }
    let regions = if regions.is_empty() {
        BTreeMap::from([(LOCAL_REGION.to_owned(), Region::default())])
    } else {
        regions.into_iter().map(|(name, (region, _))| (name, region)).collect()
    };
    let scheduling = scheduling.map(|(_, scheduling)| scheduling).unwrap_or_default();
    let (alerts, notifiers, probe_health) = (alerting.alerts, alerting.notifiers, alerting.probe_health);
    let config = Config {
        regions,
        checks,
        secrets: secrets.clone(),
        warnings: ConfigErrors(warnings).sorted().0,
        scheduling,
        exporters,
        alerts,
        notifiers,
        probe_health,
        maintenance,
        dashboard,
        objects,
        checks_written: files.iter().any(|file| file.root.get("checks").is_some()),
    };
    (Ok(config), secrets)
}

/// Where the validation of a section puts what it finds.
struct Found<'a> {
    errors: &'a mut Vec<super::ConfigError>,
    secrets: &'a mut Vec<SecretRef>,
    warnings: &'a mut Vec<super::ConfigError>,
}

/// Validates a top-level section that at most one file may set: the first file setting it gives its value,
/// any other file setting it is an error naming the first.
fn set_once<T>(
    files: &[SourceFile],
    shaped: &[usize],
    key: &str,
    found: &mut Found<'_>,
    mut validate: impl FnMut(&mut Ctx<'_>) -> Option<T>,
) -> Option<T> {
    let mut first: Option<(usize, Option<T>)> = None;
    for &index in shaped {
        let file = &files[index];
        let mut cx = Ctx::new(&file.name, &file.root);
        if cx.node(&Path::root().key(key)).is_none() {
            continue;
        }
        if let Some((at_file, _)) = &first {
            let at = files[*at_file].root.key_mark(key).unwrap_or_default();
            cx.error_at_key(
                &Path::root().key(key),
                format!("{key} is already set in {}:{}:{}", files[*at_file].name, at.line, at.col),
            );
        } else {
            first = Some((index, validate(&mut cx)));
        }
        found.errors.append(&mut cx.errors);
        found.secrets.append(&mut cx.secrets);
        found.warnings.append(&mut cx.warnings);
    }
    first.and_then(|(_, value)| value)
}

fn collect_regions(cx: &mut Ctx<'_>, regions: &mut BTreeMap<String, (Region, Place)>) {
    let base = Path::root().key("regions");
    let Some(node) = cx.node(&base) else { return };
    let NodeKind::Map(entries) = &node.kind else {
        if !node.is_null() {
            cx.error(&base, format!("expected a mapping of region name to options, found {}", node.type_name()));
        }
        return;
    };
    for (key, value) in entries {
        let path = base.key(&key.text);
        if !is_name(&key.text) {
            cx.error_at_key(
                &path,
                format!("{:?} is not a valid region name: use lowercase letters, digits, `-` and `_`", key.text),
            );
            continue;
        }
        let raw = if value.is_null() { Some(RawRegion::default()) } else { cx.deserialize::<RawRegion>(&path) };
        let Some(raw) = raw else { continue };
        let labels = validate_labels(cx, &path.key("labels"), raw.labels.unwrap_or_default());
        // A region's labels go on every series of its results: they may not take a name the series use.
        let labels = labels
            .into_iter()
            .filter(|(name, _)| {
                let taken = crate::metrics::SERIES_LABELS.contains(&name.as_str()) || name.starts_with("label_");
                if taken {
                    let at = path.key("labels").key(name);
                    cx.error_at_key(&at, format!("label {name:?} is reserved: probenet's series use it themselves"));
                }
                !taken
            })
            .collect();
        let place = Place { file: cx.file().to_owned(), line: key.mark.line, col: key.mark.col };
        let region = Region { labels };
        match regions.get(&key.text) {
            // Files of one config may each declare the regions they use, as long as they agree.
            Some((known, _)) if *known == region => {}
            Some((_, first)) => cx.error_at_key(
                &path,
                format!("region {:?} is declared differently at {first}; declare it once", key.text),
            ),
            None => {
                regions.insert(key.text.clone(), (region, place));
            }
        }
    }
}

fn validate_scheduling(cx: &mut Ctx<'_>) -> Option<Scheduling> {
    let base = Path::root().key("scheduling");
    let raw = if cx.node(&base).is_some_and(Node::is_null) {
        RawScheduling::default()
    } else {
        cx.deserialize::<RawScheduling>(&base)?
    };
    let mut ok = true;
    let probers_per_region = raw.probers_per_region.unwrap_or(1);
    if !(1..=5).contains(&probers_per_region) {
        cx.error(
            &base.key("probers_per_region"),
            format!("{probers_per_region} is outside the allowed range of 1 to 5"),
        );
        ok = false;
    }
    let lease = match raw.lease.as_deref() {
        None => Some(Scheduling::default().lease),
        Some(text) => {
            let at = base.key("lease");
            let lease = cx.duration(&at, text)?;
            if !(Duration::from_secs(3)..=Duration::from_secs(300)).contains(&lease) {
                cx.error(&at, format!("{} is outside the allowed range of 3s to 5m", crate::duration::format(lease)));
                None
            } else {
                Some(lease)
            }
        }
    };
    let lease = lease?;
    ok.then_some(Scheduling { probers_per_region, lease })
}

fn validate_defaults(cx: &mut Ctx<'_>, raw: &RawDefaults, declared: &[String]) -> Defaults {
    let base = Path::root().key("defaults");
    let interval = cx.opt_duration(&base.key("interval"), raw.interval.as_deref());
    if let Some(interval) = interval {
        check_interval(cx, &base.key("interval"), interval);
    }
    let timeout = cx.opt_duration(&base.key("timeout"), raw.timeout.as_deref());
    if let (Some(interval), Some(timeout)) = (interval, timeout)
        && timeout > interval
    {
        cx.error(&base.key("timeout"), timeout_message(timeout, interval));
    }
    let regions = raw.regions.as_ref().map(|list| validate_region_list(cx, &base.key("regions"), list, declared));
    let catch_up = validate_catch_up(cx, &base.key("catch_up"), raw.catch_up.as_deref());
    Defaults { interval, timeout, regions, catch_up }
}

/// A `catch_up` window: a duration from `0s` to `1h`.
fn validate_catch_up(cx: &mut Ctx<'_>, at: &Path, text: Option<&str>) -> Option<Duration> {
    let catch_up = cx.opt_duration(at, text)?;
    if catch_up > MAX_CATCH_UP {
        cx.error(at, format!("{} is more than the most, 1h", crate::duration::format(catch_up)));
        return None;
    }
    Some(catch_up)
}

fn validate_check(
    cx: &mut Ctx<'_>,
    path: &Path,
    defaults: &Defaults,
    declared: &[String],
    names: &mut HashMap<String, Place>,
) -> Option<Check> {
    let raw = cx.deserialize::<RawCheck>(path);
    if let Some(raw) = &raw {
        let at = cx.mark(&path.key("name"));
        match names.get(&raw.name) {
            Some(first) => {
                cx.error(&path.key("name"), format!("duplicate check name {:?} (first defined at {first})", raw.name))
            }
            None => {
                let place = Place { file: cx.file().to_owned(), line: at.line, col: at.col };
                names.insert(raw.name.clone(), place);
            }
        }
    }
    // The kind body is validated even when the common fields are wrong, so its errors show too.
    let none = raw.is_some().then(|| format!("no check kind: add one of {}", Kind::keys()));
    let keys = Kind::ALL.map(Kind::key);
    let kind = cx
        .one_of(path, &keys, "check", none)
        .and_then(Kind::from_key)
        .and_then(|kind| validate_kind(cx, &path.key(kind.key()), kind));
    let raw = raw?;

    if !is_name(&raw.name) || raw.name.len() > 63 {
        cx.error(
            &path.key("name"),
            format!(
                "{:?} is not a valid check name: use 1 to 63 lowercase letters, digits, `-` and `_`, starting with a letter or digit",
                raw.name
            ),
        );
    }
    let schedule = validate_schedule(cx, path, &raw, defaults);
    let timeout_path = path.key("timeout");
    let timeout = match raw.timeout.as_deref() {
        Some(text) => cx.duration(&timeout_path, text),
        None => Some(defaults.timeout.unwrap_or(DEFAULT_TIMEOUT)),
    };
    let regions =
        match &raw.regions {
            Some(list) => Some(validate_region_list(cx, &path.key("regions"), list, declared)),
            None => Some(defaults.regions.clone().unwrap_or_else(|| {
                if declared.is_empty() { vec![LOCAL_REGION.to_owned()] } else { declared.to_vec() }
            })),
        };
    let catch_up = validate_catch_up(cx, &path.key("catch_up"), raw.catch_up.as_deref())
        .or(defaults.catch_up)
        .unwrap_or(DEFAULT_CATCH_UP);
    let labels = validate_labels(cx, &path.key("labels"), raw.labels.unwrap_or_default());
    let slo = raw.slo.and_then(|slo| super::alerting::validate_slo(cx, &path.key("slo"), slo));

    let (schedule, mut timeout, regions, kind) = (schedule?, timeout?, regions?, kind?);
    let shortest_gap = match &schedule {
        Schedule::Every(interval) => *interval,
        Schedule::Cron(cron) => shortest_cron_gap(cron),
    };
    if timeout > shortest_gap {
        let explicit = raw.timeout.is_some() || defaults.timeout.is_some();
        if explicit {
            let at = if raw.timeout.is_some() {
                timeout_path
            } else if raw.interval.is_some() {
                path.key("interval")
            } else {
                path.key("schedule")
            };
            let from = if raw.timeout.is_some() { "" } else { " (from defaults)" };
            cx.error(&at, format!("{}{from}", timeout_message(timeout, shortest_gap)));
            return None;
        }
        timeout = shortest_gap;
    }
    if let Some((keys, message)) = kind.timeout_problem(timeout) {
        let body = path.key(kind.key());
        let at = keys.iter().map(|key| body.key(key)).find(|at| cx.node(at).is_some()).unwrap_or(body);
        cx.error(&at, message);
        return None;
    }
    let mark = cx.mark(path);
    Some(Check {
        name: raw.name,
        schedule,
        timeout,
        catch_up,
        regions,
        labels,
        slo,
        depends_on: raw.depends_on.map(Vec::from).unwrap_or_default(),
        alert_sensitivity: raw.alert_sensitivity.unwrap_or_default(),
        kind,
        place: Place { file: cx.file().to_owned(), line: mark.line, col: mark.col },
    })
}

/// Checks the `depends_on` of every valid check, now that every name is known: each names another check, once,
/// and following them never leads back to where it started.
fn validate_dependencies(
    files: &[SourceFile],
    checks: &[Check],
    written: &[(usize, Path)],
    names: &HashMap<String, Place>,
    errors: &mut Vec<super::ConfigError>,
) {
    let entry_path = |cx: &Ctx<'_>, path: &Path, i: usize| {
        let list = path.key("depends_on");
        let entry = list.index(i);
        if cx.node(&entry).is_some() { entry } else { list }
    };
    let mut sound = true;
    for (check, (file, path)) in checks.iter().zip(written) {
        if check.depends_on.is_empty() {
            continue;
        }
        let mut cx = Ctx::new(&files[*file].name, &files[*file].root);
        for (i, name) in check.depends_on.iter().enumerate() {
            let at = entry_path(&cx, path, i);
            if *name == check.name {
                cx.error(&at, format!("check {name:?} cannot depend on itself"));
            } else if check.depends_on[..i].contains(name) {
                cx.error(&at, format!("check {name:?} is listed twice"));
            } else if !names.contains_key(name) {
                let hint = super::suggest(name, names.keys().map(String::as_str))
                    .map(|close| format!(" (did you mean {close:?}?)"))
                    .unwrap_or_default();
                cx.error(&at, format!("unknown check {name:?}{hint}"));
            }
        }
        sound &= cx.errors.is_empty();
        errors.append(&mut cx.errors);
    }
    if !sound {
        return;
    }
    // A cycle is reported once, at the first check of it in file order.
    let by_name: HashMap<&str, usize> = checks.iter().enumerate().map(|(i, check)| (check.name.as_str(), i)).collect();
    let mut reported: std::collections::HashSet<usize> = std::collections::HashSet::new();
    for (start, (file, path)) in written.iter().enumerate() {
        if reported.contains(&start) {
            continue;
        }
        if let Some(cycle) = find_cycle(checks, &by_name, start) {
            reported.extend(cycle.iter().copied());
            let mut cx = Ctx::new(&files[*file].name, &files[*file].root);
            let names: Vec<&str> = cycle.iter().chain([&start]).map(|i| checks[*i].name.as_str()).collect();
            cx.error_at_key(
                &path.key("depends_on"),
                format!("`depends_on` goes round in a circle: {}", names.join(" -> ")),
            );
            errors.append(&mut cx.errors);
        }
    }
}

/// A path of dependencies from `start` back to `start` (the checks on it, `start` first), if there is one.
fn find_cycle(checks: &[Check], by_name: &HashMap<&str, usize>, start: usize) -> Option<Vec<usize>> {
    // Depth-first, each check entered once: with a path stack to report the circle.
    let mut path = vec![start];
    let mut next = vec![0usize];
    let mut done = vec![false; checks.len()];
    while let Some(&at) = path.last() {
        let depth = path.len() - 1;
        let Some(name) = checks[at].depends_on.get(next[depth]) else {
            done[at] = true;
            path.pop();
            next.pop();
            continue;
        };
        next[depth] += 1;
        let Some(&to) = by_name.get(name.as_str()) else { continue };
        if to == start {
            return Some(path);
        }
        if !done[to] && !path.contains(&to) {
            path.push(to);
            next.push(0);
        }
    }
    None
}

fn validate_kind(cx: &mut Ctx<'_>, path: &Path, kind: Kind) -> Option<CheckKind> {
    if cx.node(path).is_some_and(Node::is_null) {
        cx.error(path, "the check's options are missing");
        return None;
    }
    struct Body<'c, 'a, 'p>(&'c mut Ctx<'a>, &'p Path);
    impl KindVisitor for Body<'_, '_, '_> {
        type Output = Option<CheckKind>;
        fn visit<C: KindCheck>(self) -> Option<CheckKind> {
            let Self(cx, path) = self;
            KindSpec::validate(cx.deserialize::<C::Spec>(path)?, cx, path).map(C::wrap)
        }
    }
    kind.visit(Body(cx, path))
}

fn validate_schedule(cx: &mut Ctx<'_>, path: &Path, raw: &RawCheck, defaults: &Defaults) -> Option<Schedule> {
    if raw.timezone.is_some() && raw.schedule.is_none() {
        cx.error_at_key(&path.key("timezone"), "`timezone` only applies to a `schedule`");
    }
    match (&raw.interval, &raw.schedule) {
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("schedule"), "set either `interval` or `schedule`, not both");
            None
        }
        (Some(text), None) => {
            let at = path.key("interval");
            let interval = cx.duration(&at, text)?;
            check_interval(cx, &at, interval).then_some(Schedule::Every(interval))
        }
        (None, Some(expr)) => {
            let at = path.key("schedule");
            let timezone = match raw.timezone.as_deref() {
                None => Some(chrono_tz::UTC),
                Some(name) => chrono_tz::Tz::from_str(name)
                    .map_err(|_| {
                        cx.error(
                            &path.key("timezone"),
                            format!("{name:?} is not a known IANA time zone, such as Europe/Paris"),
                        )
                    })
                    .ok(),
            };
            let cron = parse_cron(expr).map_err(|message| cx.error(&at, message)).ok()?;
            Some(Schedule::Cron(Box::new(super::CronSchedule { expr: expr.clone(), cron, timezone: timezone? })))
        }
        (None, None) => Some(Schedule::Every(defaults.interval.unwrap_or(DEFAULT_INTERVAL))),
    }
}

/// Parses a standard 5-field crontab line or an `@alias`.
pub(crate) fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let trimmed = expr.trim();
    let fields = trimmed.split_whitespace().count();
    if !trimmed.starts_with('@') && fields != 5 {
        return Err(format!(
            "{expr:?} is not a 5-field crontab line (minute hour day-of-month month day-of-week); it has {fields} fields"
        ));
    }
    croner::Cron::from_str(trimmed).map_err(|error| {
        let detail = error.to_string();
        let detail = detail.rsplit(": ").next().unwrap_or(&detail).trim_end_matches('.').to_lowercase();
        format!("{expr:?} is not a valid crontab line: {detail}")
    })
}

/// The shortest gap between two runs of a cron schedule, over its next 100 runs.
fn shortest_cron_gap(cron: &super::CronSchedule) -> Duration {
    use chrono::TimeZone;
    let Some(start) = cron.timezone.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).single() else {
        return MAX_INTERVAL;
    };
    let times: Vec<_> = cron.cron.iter_from(start, croner::Direction::Forward).take(100).collect();
    times.windows(2).filter_map(|pair| (pair[1] - pair[0]).to_std().ok()).min().unwrap_or(MAX_INTERVAL)
}

fn check_interval(cx: &mut Ctx<'_>, path: &Path, interval: Duration) -> bool {
    let ok = (MIN_INTERVAL..=MAX_INTERVAL).contains(&interval);
    if !ok {
        cx.error(path, format!("{} is outside the allowed range of 1s to 1h", crate::duration::format(interval)));
    }
    ok
}

fn timeout_message(timeout: Duration, interval: Duration) -> String {
    format!(
        "the timeout {} is longer than the interval {}; runs would overlap",
        crate::duration::format(timeout),
        crate::duration::format(interval)
    )
}

fn validate_region_list(cx: &mut Ctx<'_>, path: &Path, list: &[String], declared: &[String]) -> Vec<String> {
    if list.is_empty() {
        cx.error(path, "the list of regions is empty");
    }
    let mut out: Vec<String> = Vec::new();
    for (i, name) in list.iter().enumerate() {
        let at = path.index(i);
        if out.contains(name) {
            cx.error(&at, format!("region {name:?} is listed twice"));
        } else if declared.iter().any(|known| known == name) || (declared.is_empty() && name == LOCAL_REGION) {
            out.push(name.clone());
        } else if declared.is_empty() {
            cx.error(&at, format!("unknown region {name:?}: declare it under `regions` first"));
        } else {
            let hint = suggest(name, declared.iter().map(String::as_str))
                .map(|close| format!(" (did you mean {close:?}?)"))
                .unwrap_or_default();
            cx.error(&at, format!("unknown region {name:?}{hint}; declared regions: {}", declared.join(", ")));
        }
    }
    out
}

pub(crate) fn validate_labels(
    cx: &mut Ctx<'_>,
    path: &Path,
    labels: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    const RESERVED: [&str; 3] = ["job", "instance", "probe"];
    let mut out = BTreeMap::new();
    for (name, value) in labels {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            cx.error_at_key(
                &path.key(&name),
                format!("{name:?} is not a valid label name: use letters, digits and `_`"),
            );
        } else if RESERVED.contains(&name.as_str()) || name.starts_with("__") {
            cx.error_at_key(&path.key(&name), format!("label {name:?} is reserved: probenet sets it itself"));
        } else {
            out.insert(name, value);
        }
    }
    out
}

/// Check and region names: `[a-z0-9][a-z0-9_-]*`.
pub(crate) fn is_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
