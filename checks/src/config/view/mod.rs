//! Region views: the part of a config one region's probers may see, as config text that validates to the
//! same checks.
//!
//! A view keeps, from each file: `regions` (every name, since check region lists name them; labels only for
//! the view's region), `defaults`, `scheduling`, the checks that run in the region (every field, but
//! `slo.notify`, which names notifiers), the exporters that run `on: probers`, and the `pause` maintenance windows
//! of those checks (their `checks` narrowed to them, a `match` resolved to names, without `reason` and
//! `created_by`: a prober needs only when not to run). Everything else
//! (`notifiers`, `alerts`, `probe_health`, `dashboard`, scheduler-side exporters, other regions' checks, and
//! any section added later) is left out. The kept trees are written back as canonical YAML (anchors and merges
//! expanded, see [`crate::yaml::emit`]), so comments and YAML tricks of the source never leak or break it.
//!
//! A view is checked before it is handed out: its text must parse back to the same trees and validate to
//! the same checks as the full config for that region (places aside: lines and columns move). When it does
//! not, building it fails; the caller must then give that region nothing rather than the whole config.

use std::collections::BTreeMap;

use super::load::SourceFile;
use super::maintenance::{Maintenance, MaintenanceMode};
use super::{Check, Config, ConfigError, ConfigErrors, validate};
use crate::wire::ConfigFile;
use crate::yaml::{self, Key, Node, NodeKind};

/// The top-level sections a view may keep; any other is left out.
const KEPT: [&str; 6] = ["regions", "defaults", "scheduling", "checks", "exporters", "maintenance"];

/// The keys of a `pause` window a view keeps (besides `checks`, written anew).
const WINDOW_KEYS: [&str; 7] = ["name", "schedule", "timezone", "start", "end", "duration", "mode"];

/// Why a region view could not be built. The caller gives the region nothing and says why.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The full config does not validate (a view is only built from a valid one).
    #[error("the config does not validate: {0}")]
    Invalid(ConfigErrors),
    /// A file's view did not read back as the tree it was written from.
    #[error("{file}: the view of region {region:?} does not read back as written")]
    Unreadable {
        /// The file.
        file: String,
        /// The region.
        region: String,
    },
    /// The view does not validate, or validates to other checks than the full config for the region.
    #[error("the view of region {region:?} differs from the config: {detail}")]
    Differs {
        /// The region.
        region: String,
        /// What differs.
        detail: String,
    },
}

/// A parsed and validated config, from which views of each region are cut.
#[derive(Debug)]
pub struct Views {
    files: Vec<SourceFile>,
    config: Config,
}

/// The view of `files` for `region` (see the module documentation).
pub fn region_view(files: &[ConfigFile], region: &str) -> Result<Vec<ConfigFile>, ViewError> {
    Views::new(files)?.region(region)
}

impl Views {
    /// Parses and validates the full config once.
    pub fn new(files: &[ConfigFile]) -> Result<Self, ViewError> {
        let mut parsed = Vec::with_capacity(files.len());
        for file in files {
            let root = yaml::parse(&file.text).map_err(|error| {
                ViewError::Invalid(ConfigErrors(vec![ConfigError {
                    file: file.name.clone(),
                    line: error.mark.line,
                    col: error.mark.col,
                    path: String::new(),
                    message: error.message,
                }]))
            })?;
            parsed.push(SourceFile { name: file.name.clone(), root });
        }
        let config = validate(&parsed).map_err(ViewError::Invalid)?;
        Ok(Self { files: parsed, config })
    }

    /// The full config, validated.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The view for `region`: a file per source file that keeps anything, in the same order and under the
    /// same names. A region the config does not declare gets a view without checks.
    pub fn region(&self, region: &str) -> Result<Vec<ConfigFile>, ViewError> {
        let runs_here: BTreeMap<&str, bool> = self
            .config
            .checks
            .iter()
            .map(|check| (check.name.as_str(), check.regions.iter().any(|r| r == region)))
            .collect();
        let pauses = pauses_in(&self.config, region);
        let pauses: BTreeMap<&str, Vec<&str>> =
            pauses.iter().map(|(window, checks)| (window.name.as_str(), checks.clone())).collect();
        let mut out = Vec::new();
        let mut trees = Vec::new();
        for file in &self.files {
            let Some(tree) = file_view(&file.root, region, &runs_here, &pauses).map_err(|detail| {
                ViewError::Differs { region: region.to_owned(), detail: format!("{}: {detail}", file.name) }
            })?
            else {
                continue;
            };
            let text = yaml::emit(&tree);
            let unreadable = || ViewError::Unreadable { file: file.name.clone(), region: region.to_owned() };
            let back = yaml::parse(&text).map_err(|_| unreadable())?;
            if !yaml::same_content(&tree, &back) {
                return Err(unreadable());
            }
            trees.push(SourceFile { name: file.name.clone(), root: back });
            out.push(ConfigFile { name: file.name.clone(), text });
        }
        self.check_same(region, &trees)?;
        Ok(out)
    }

    /// The view for any region the config does not declare: regions, defaults, scheduling and the prober
    /// exporters, and no check. (No declared region is named `""`.)
    pub fn outside(&self) -> Result<Vec<ConfigFile>, ViewError> {
        self.region("")
    }

    /// Fails unless the view validates to the same checks, regions and prober exporters as the full config.
    fn check_same(&self, region: &str, trees: &[SourceFile]) -> Result<(), ViewError> {
        let differs = |detail: String| ViewError::Differs { region: region.to_owned(), detail };
        let view = validate(trees).map_err(|errors| differs(format!("it does not validate: {errors}")))?;
        let expected: Vec<&Check> =
            self.config.checks.iter().filter(|check| check.regions.iter().any(|r| r == region)).collect();
        let names = |checks: &[&Check]| checks.iter().map(|check| check.name.clone()).collect::<Vec<_>>();
        let got: Vec<&Check> = view.checks.iter().collect();
        if names(&expected) != names(&got) {
            return Err(differs(format!("checks {:?} instead of {:?}", names(&got), names(&expected))));
        }
        for (want, have) in expected.iter().zip(&got) {
            if comparable(want) != comparable(have) {
                return Err(differs(format!("check {:?} validates differently", want.name)));
            }
        }
        if view.regions.keys().ne(self.config.regions.keys())
            || view.regions.get(region) != self.config.regions.get(region)
        {
            return Err(differs("the regions differ".to_owned()));
        }
        let probers = |config: &Config| {
            config
                .exporters
                .iter()
                .filter(|exporter| exporter.on == super::exporters::ExportOn::Probers)
                .map(|exporter| format!("{:?}", exporter.kind))
                .collect::<Vec<_>>()
        };
        if probers(&view) != probers(&self.config) {
            return Err(differs("the exporters on probers differ".to_owned()));
        }
        if view.scheduling != self.config.scheduling {
            return Err(differs("the scheduling differs".to_owned()));
        }
        fn described(pauses: Vec<(&Maintenance, Vec<&str>)>) -> Vec<String> {
            pauses.into_iter().map(|(window, checks)| format!("{} {checks:?} {:?}", window.name, window.when)).collect()
        }
        if described(pauses_in(&view, region)) != described(pauses_in(&self.config, region)) {
            return Err(differs("the pause windows differ".to_owned()));
        }
        Ok(())
    }
}

/// The `pause` windows of a config that apply to checks running in `region`, each with those checks.
fn pauses_in<'a>(config: &'a Config, region: &str) -> Vec<(&'a Maintenance, Vec<&'a str>)> {
    let here: std::collections::HashSet<&str> = config
        .checks
        .iter()
        .filter(|check| check.regions.iter().any(|r| r == region))
        .map(|check| check.name.as_str())
        .collect();
    config
        .maintenance
        .iter()
        .filter(|window| window.mode == MaintenanceMode::Pause)
        .filter_map(|window| {
            let checks: Vec<&str> =
                window.checks.iter().map(String::as_str).filter(|name| here.contains(name)).collect();
            (!checks.is_empty()).then_some((window, checks))
        })
        .collect()
}

/// A check as the view must reproduce it: everything but where it is written and whom its SLO alerts tell.
pub fn comparable(check: &Check) -> String {
    let mut check = check.clone();
    check.place = super::Place { file: check.place.file.clone(), line: 0, col: 0 };
    if let Some(slo) = &mut check.slo {
        slo.notify = None;
    }
    format!("{check:?}")
}

/// One file's view, or `None` when nothing of it is kept.
fn file_view(
    root: &Node,
    region: &str,
    runs_here: &BTreeMap<&str, bool>,
    pauses: &BTreeMap<&str, Vec<&str>>,
) -> Result<Option<Node>, String> {
    let pairs = match &root.kind {
        NodeKind::Map(pairs) => pairs,
        _ if root.is_null() => return Ok(None),
        _ => return Err("the file is not a mapping".to_owned()),
    };
    let mut kept: Vec<(Key, Node)> = Vec::new();
    for (key, value) in pairs {
        let value = match key.text.as_str() {
            "regions" => Some(regions_view(value, region)),
            "checks" => filter_list(value, |item| check_view(item, runs_here))?,
            "exporters" => filter_list(value, |item| Ok(runs_on_probers(item).then(|| item.clone())))?,
            "maintenance" => filter_list(value, |item| Ok(pause_view(item, pauses)))?,
            name if KEPT.contains(&name) => Some(value.clone()),
            _ => None,
        };
        if let Some(value) = value {
            kept.push((key.clone(), value));
        }
    }
    Ok((!kept.is_empty()).then_some(Node { kind: NodeKind::Map(kept), mark: root.mark }))
}

/// Every region name; the options of `region` only.
fn regions_view(node: &Node, region: &str) -> Node {
    let NodeKind::Map(entries) = &node.kind else { return node.clone() };
    let entries = entries
        .iter()
        .map(|(key, value)| {
            let value = if key.text == region {
                value.clone()
            } else {
                Node { kind: NodeKind::Map(Vec::new()), mark: value.mark }
            };
            (key.clone(), value)
        })
        .collect();
    Node { kind: NodeKind::Map(entries), mark: node.mark }
}

/// The items of a list `keep` keeps; `None` when none is (or it is not a list).
fn filter_list(
    node: &Node,
    mut keep: impl FnMut(&Node) -> Result<Option<Node>, String>,
) -> Result<Option<Node>, String> {
    let NodeKind::Seq(items) = &node.kind else { return Ok(None) };
    let mut kept = Vec::new();
    for item in items {
        if let Some(item) = keep(item)? {
            kept.push(item);
        }
    }
    Ok((!kept.is_empty()).then_some(Node { kind: NodeKind::Seq(kept), mark: node.mark }))
}

/// A check item if it runs in the region, without `slo.notify`.
fn check_view(item: &Node, runs_here: &BTreeMap<&str, bool>) -> Result<Option<Node>, String> {
    let name = match item.get("name").map(|node| &node.kind) {
        Some(NodeKind::Scalar { text, .. }) => text.as_str(),
        _ => return Err("a check without a name".to_owned()),
    };
    match runs_here.get(name) {
        None => Err(format!("check {name:?} is not in the validated config")),
        Some(false) => Ok(None),
        Some(true) => {
            let mut item = item.clone();
            if let NodeKind::Map(pairs) = &mut item.kind
                && let Some((_, slo)) = pairs.iter_mut().find(|(key, _)| key.text == "slo")
                && let NodeKind::Map(fields) = &mut slo.kind
            {
                fields.retain(|(key, _)| key.text != "notify");
            }
            Ok(Some(item))
        }
    }
}

/// A maintenance item if it pauses checks of the region: the keys saying when, and `checks` naming those.
fn pause_view(item: &Node, pauses: &BTreeMap<&str, Vec<&str>>) -> Option<Node> {
    let NodeKind::Map(pairs) = &item.kind else { return None };
    let checks = match item.get("name").map(|node| &node.kind) {
        Some(NodeKind::Scalar { text, .. }) => pauses.get(text.as_str())?,
        _ => return None,
    };
    let mut kept: Vec<(Key, Node)> =
        pairs.iter().filter(|(key, _)| WINDOW_KEYS.contains(&key.text.as_str())).cloned().collect();
    let names = checks
        .iter()
        .map(|name| Node { kind: NodeKind::Scalar { text: (*name).to_owned(), plain: false }, mark: item.mark })
        .collect();
    kept.push((
        Key { text: "checks".to_owned(), mark: item.mark },
        Node { kind: NodeKind::Seq(names), mark: item.mark },
    ));
    Some(Node { kind: NodeKind::Map(kept), mark: item.mark })
}

/// Whether an exporter item's body says `on: probers`.
fn runs_on_probers(item: &Node) -> bool {
    let NodeKind::Map(pairs) = &item.kind else { return false };
    pairs.iter().any(|(_, body)| {
        matches!(body.get("on").map(|on| &on.kind), Some(NodeKind::Scalar { text, .. }) if text == "probers")
    })
}

#[cfg(test)]
mod tests;
