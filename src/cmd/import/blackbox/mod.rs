//! `probenet import blackbox MODULES TARGETS`: every (scrape job, target) pair of a Prometheus config that
//! probes through blackbox_exporter becomes one check of its module's kind.

use std::collections::BTreeMap;
use std::path::Path;

mod modules;

use self::modules::{Kind, Module};
use super::out::{CheckOut, Line, Out};
use super::read_input;
use super::source::{Y, parse_yaml};
use super::value::{Map, label_name, parse_duration, s, split_userinfo};

/// blackbox_exporter's module when a scrape job names none.
const DEFAULT_MODULE: &str = "http_2xx";

pub fn import(modules: &Path, targets: &Path) -> Result<Out, Vec<Line>> {
    let modules_file = modules.display().to_string();
    let targets_file = targets.display().to_string();
    let modules_text = read_input(modules)?;
    let targets_text = read_input(targets)?;
    let modules_root = parse_yaml(&modules_file, &modules_text)?;
    let targets_root = parse_yaml(&targets_file, &targets_text)?;
    let modules_doc = Y::root(&modules_file, &modules_root);
    let prometheus = Y::root(&targets_file, &targets_root);

    let Some(defined) = modules_doc.get("modules").filter(Y::is_map) else {
        return Err(vec![modules_doc.line("no `modules:` mapping: is this blackbox_exporter's config file?")]);
    };
    let Some(jobs) = prometheus.get("scrape_configs") else {
        return Err(vec![prometheus.line("no `scrape_configs:`: is this a Prometheus config file?")]);
    };
    let mut out = Out::new(
        "blackbox",
        format!("the blackbox_exporter modules of {modules_file} and the scrape jobs of {targets_file}"),
    );
    let global = prometheus.get("global");
    let global_interval = global.as_ref().and_then(|g| g.get("scrape_interval"));
    let global_timeout = global.as_ref().and_then(|g| g.get("scrape_timeout"));

    let mut errors = Vec::new();
    let mut compiled: BTreeMap<String, Module> = BTreeMap::new();
    let mut other_jobs = Vec::new();
    for job in jobs.items() {
        let job_name = job.get("job_name").and_then(|y| y.str()).unwrap_or("job").to_owned();
        if job.get("metrics_path").and_then(|y| y.str()) != Some("/probe") {
            other_jobs.push(job_name);
            continue;
        }
        let named = job_module(&job, &mut out);
        let (name, at) = named.clone().unwrap_or_else(|| (DEFAULT_MODULE.to_owned(), job.clone()));
        let Some(definition) = defined.get(&name) else {
            let known: Vec<&str> = defined.entries().into_iter().map(|(k, _)| k).collect();
            let hint = probenet_checks::config::suggest(&name, known.iter().copied())
                .map(|close| format!(" (did you mean {close:?}?)"))
                .unwrap_or_default();
            let what = if named.is_some() {
                format!("names module {name:?}")
            } else {
                format!("names no module (`params: {{module: [...]}}`), so blackbox_exporter's default {name:?}")
            };
            errors.push(at.line(format!(
                "job {job_name:?} {what}, which {modules_file} does not define{hint}; it defines: {}",
                known.join(", ")
            )));
            continue;
        };
        let module =
            compiled.entry(name.clone()).or_insert_with(|| Module::compile(&name, &definition, &mut out)).clone();
        job_checks(&job, &job_name, &module, &mut out, global_interval.as_ref(), global_timeout.as_ref());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if !other_jobs.is_empty() {
        out.note(format!(
            "Scrape jobs that do not probe through blackbox_exporter (no `metrics_path: /probe`) were skipped: {}.",
            other_jobs.join(", ")
        ));
    }
    let unused: Vec<&str> =
        defined.entries().into_iter().map(|(k, _)| k).filter(|k| !compiled.contains_key(*k)).collect();
    if !unused.is_empty() {
        out.note(format!("Modules no scrape job uses were not written: {}.", unused.join(", ")));
    }
    Ok(out)
}

/// The module a job names in `params.module` and where; modules after the first are not carried over
/// (blackbox_exporter only reads the first).
fn job_module<'a>(job: &Y<'a>, out: &mut Out) -> Option<(String, Y<'a>)> {
    let params = job.get("params")?;
    for (key, value) in params.entries() {
        if key != "module" && key != "target" {
            out.drop(value.place(), "probe parameter not carried over");
        }
    }
    let items = params.get("module")?.items();
    for extra in items.iter().skip(1) {
        out.drop(extra.place(), "blackbox_exporter uses the first module only; this one is ignored");
    }
    let first = items.into_iter().next()?;
    Some((first.str()?.to_owned(), first))
}

/// One check per target of a job, of its module's kind.
fn job_checks(
    job: &Y<'_>,
    job_name: &str,
    module: &Module,
    out: &mut Out,
    global_interval: Option<&Y<'_>>,
    global_timeout: Option<&Y<'_>>,
) {
    for (key, value) in job.entries() {
        if key.ends_with("_sd_configs") {
            out.drop(value.place(), "targets from service discovery are not carried over; list them in static_configs");
        }
    }
    let relabels = job.get("relabel_configs").map(|y| y.items()).unwrap_or_default();
    let mut target_relabel = false;
    for rule in &relabels {
        let source: Vec<&str> =
            rule.get("source_labels").map(|y| y.items().iter().filter_map(Y::str).collect()).unwrap_or_default();
        let target_label = rule.get("target_label").and_then(|y| y.str());
        let plain =
            rule.get("regex").is_none() && rule.get("action").and_then(|y| y.str()).is_none_or(|a| a == "replace");
        match (source.as_slice(), target_label) {
            (["__address__"], Some("__param_target")) if plain => target_relabel = true,
            // The instance label and the exporter's address are Prometheus's business, not the check's.
            (_, Some("instance" | "__address__")) => {}
            _ => out.drop(rule.place(), "relabeling rule not carried over: targets are taken as written"),
        }
    }
    let from_params: Vec<Y<'_>> =
        job.get("params").and_then(|p| p.get("target")).map(|y| y.items()).unwrap_or_default();
    let mut targets: Vec<(Y<'_>, Vec<(String, String)>)> = Vec::new();
    if !target_relabel && !from_params.is_empty() {
        targets.extend(from_params.into_iter().map(|y| (y, Vec::new())));
    } else {
        if !target_relabel {
            out.drop(job.place(), "no relabeling copies __address__ into __param_target: the static targets are taken as the probed targets");
        }
        for group in job.get("static_configs").map(|y| y.items()).unwrap_or_default() {
            let mut labels = Vec::new();
            for (name, value) in group.get("labels").map(|y| y.entries()).unwrap_or_default() {
                match (label_name(name), value.str()) {
                    (Some(label), Some(text)) if label == name => labels.push((label, text.to_owned())),
                    _ => out.drop(value.place(), "label not carried over: probenet sets job, instance and probe itself, and label names are letters, digits and `_`"),
                }
            }
            for target in group.get("targets").map(|y| y.items()).unwrap_or_default() {
                targets.push((target, labels.clone()));
            }
        }
    }
    let duration = |y: Option<Y<'_>>| y.and_then(|y| y.str().and_then(parse_duration).map(|ms| (ms, y.place())));
    let interval = duration(job.get("scrape_interval")).or_else(|| duration(global_interval.cloned()));
    let timeout = module
        .timeout
        .clone()
        .or_else(|| duration(job.get("scrape_timeout")).or_else(|| duration(global_timeout.cloned())));
    for (target_y, labels) in targets {
        let Some(written) = target_y.str() else {
            out.drop(target_y.place(), "not a target");
            continue;
        };
        // A user and password in a target URL go to `basic_auth`, the password to an environment variable.
        let (target, user) = match split_userinfo(written) {
            Some((user, has_password, bare)) => (bare, has_password.then_some(user)),
            None => (written.to_owned(), None),
        };
        let target = target.as_str();
        let (fields, Some(kind)) = (
            match &module.kind {
                Kind::Unsupported(why) => {
                    out.drop(target_y.place(), format!("module {:?} {why}: no check written", module.name));
                    continue;
                }
                Kind::Http => {
                    let url = if target.contains("://") { target.to_owned() } else { format!("http://{target}") };
                    vec![("url", s(&url))]
                }
                Kind::Tcp => {
                    if probenet_checks::config::split_host_port(target, None).is_err() {
                        out.drop(target_y.place(), "a TCP target needs a port (host:port): no check written");
                        continue;
                    }
                    vec![("target", s(target))]
                }
                Kind::Icmp => vec![("host", s(target))],
                Kind::Dns => vec![("server", s(target))],
            },
            module.kind.key(),
        ) else {
            continue;
        };
        let bare = target.split_once("://").map_or(target, |(_, rest)| rest);
        let name = out.name(&format!("{job_name}-{bare}"), job_name);
        let (interval, timeout) = out.schedule(interval.clone(), timeout.clone());
        let mut spec = Map::default();
        for (key, node) in fields {
            spec.set(key, node);
        }
        if let (Kind::Http, Some(user)) = (&module.kind, user) {
            let used_at = format!("http.basic_auth.password of check {name}");
            let password = out.secret(&name, "password", used_at, target_y.place());
            spec.set("basic_auth", Map::default().with("username", s(&user)).with("password", s(&password)).node());
        }
        spec.extend(module.spec.clone());
        let mut label_map = Map::default();
        for (label, value) in labels {
            label_map.set(&label, s(&value));
        }
        out.push(CheckOut { name, interval, timeout, labels: label_map, kind, spec, from: target_y.place() });
    }
}
