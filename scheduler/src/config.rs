//! The running config: loaded from files with the checks crate's loader, the view of it each region's probers
//! receive with the hash they use to skip re-parsing, and the file stamps whose change triggers a reload.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use probenet_checks::config::{Views, load_sources, read_sources};
use probenet_checks::wire::{self, ConfigFile};
use probenet_checks::{Config, ConfigErrors};

use crate::maintenance::{self, ApiWindow};

/// A validated config and what it was loaded from.
#[derive(Debug)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// The files, as read (the scheduler's alone: probers receive their region's view).
    pub files: Vec<ConfigFile>,
    /// A hash of the files (hex), the API's maintenance windows included.
    pub hash: String,
    /// A hash of the config files alone (what `probenet validate` reads), without the API's windows.
    pub files_hash: String,
    /// The API's maintenance windows this config leaves out, by name, with why: the config files no longer
    /// accept them (their checks were removed, a window of the files took the name).
    pub api_left_out: Vec<(String, String)>,
    /// The API's maintenance windows it was built with (those left out included).
    pub api: Vec<ApiWindow>,
    /// When it was loaded, unix ms.
    pub loaded_at_ms: i64,
    /// Check index by name.
    checks: HashMap<String, usize>,
    /// The view of each declared region, built once per config; an error says why a region gets none.
    views: BTreeMap<String, Result<RegionView, String>>,
    /// The view of any region the config does not declare (no checks).
    outside: Result<RegionView, String>,
}

/// What the probers of one region receive: their part of the config (see `probenet_checks::config::view`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionView {
    /// The view's files.
    pub files: Vec<ConfigFile>,
    /// Their hash (hex), the `config_hash` the region's probers get.
    pub hash: String,
}

impl Loaded {
    /// Reads and validates the config at `paths`.
    pub fn load(paths: &[PathBuf]) -> Result<Self, ConfigErrors> {
        Self::load_with(paths, &[])
    }

    /// Reads and validates the config at `paths` with the API's maintenance windows (see [`Loaded::build`]).
    pub fn load_with(paths: &[PathBuf], api: &[ApiWindow]) -> Result<Self, ConfigErrors> {
        Self::build(read_sources(paths)?, api)
    }

    /// Validates config files with the API's maintenance windows as one more source ([`maintenance::SOURCE`]).
    /// A window the files no longer accept is left out (logged, and listed in `api_left_out`) rather than
    /// refusing the files; errors of the files refuse the whole.
    pub fn build(files: Vec<ConfigFile>, api: &[ApiWindow]) -> Result<Self, ConfigErrors> {
        let mut kept: Vec<ApiWindow> = api.to_vec();
        let mut left_out = Vec::new();
        loop {
            let mut all = files.clone();
            all.extend(maintenance::source(&kept));
            let errors = match load_sources(&all) {
                Ok(config) => {
                    for warning in &config.warnings {
                        tracing::warn!("{warning}");
                    }
                    let mut loaded = Self::new(config, all);
                    loaded.api_left_out = left_out;
                    loaded.api = api.to_vec();
                    return Ok(loaded);
                }
                Err(errors) => errors,
            };
            // Each error of the API's source with the window it is about (none: the source as a whole).
            let bad: Option<Vec<(Option<usize>, String)>> = errors
                .0
                .iter()
                .map(|error| {
                    if error.file != maintenance::SOURCE {
                        return None;
                    }
                    Some(match maintenance::located(error).filter(|(index, _)| *index < kept.len()) {
                        Some((index, path)) => (Some(index), maintenance::describe(&path, &error.message)),
                        None => (None, error.message.clone()),
                    })
                })
                .collect();
            // An error of the files refuses the whole.
            let Some(mut bad) = bad else { return Err(errors) };
            if let Some((_, why)) = bad.iter().find(|(index, _)| index.is_none()) {
                let why = why.clone();
                bad = (0..kept.len()).map(|index| (Some(index), why.clone())).collect();
            }
            if bad.is_empty() {
                return Err(errors);
            }
            bad.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
            bad.dedup_by_key(|(index, _)| *index);
            for (index, why) in bad {
                let window = kept.remove(index.unwrap_or_default());
                tracing::warn!(window = %window.name, %why, "a maintenance window of the API is not in force");
                left_out.push((window.name, why));
            }
        }
    }

    /// Wraps a validated config and its files.
    pub fn new(config: Config, files: Vec<ConfigFile>) -> Self {
        let checks = config.checks.iter().enumerate().map(|(index, check)| (check.name.clone(), index)).collect();
        let (views, outside) = region_views(&config, &files);
        let own: Vec<ConfigFile> = files.iter().filter(|file| file.name != maintenance::SOURCE).cloned().collect();
        Self {
            hash: hash_files(&files),
            files_hash: hash_files(&own),
            api_left_out: Vec::new(),
            api: Vec::new(),
            config,
            files,
            loaded_at_ms: crate::time::now_ms(),
            checks,
            views,
            outside,
        }
    }

    /// The config files, as read (without the API's windows).
    pub fn config_files(&self) -> Vec<ConfigFile> {
        self.files.iter().filter(|file| file.name != maintenance::SOURCE).cloned().collect()
    }

    /// The view the probers of `region` receive, or why there is none (they must then get nothing).
    pub fn view(&self, region: &str) -> Result<&RegionView, &str> {
        self.views.get(region).unwrap_or(&self.outside).as_ref().map_err(String::as_str)
    }

    /// Whether (check, region) is a pair of this config.
    pub fn has_pair(&self, check: &str, region: &str) -> bool {
        self.checks.get(check).is_some_and(|index| self.config.checks[*index].regions.iter().any(|r| r == region))
    }

    /// A check by name.
    pub fn check(&self, name: &str) -> Option<&probenet_checks::Check> {
        self.checks.get(name).map(|index| &self.config.checks[*index])
    }

    /// Every (check, region) pair, in config order.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.config
            .checks
            .iter()
            .flat_map(|check| check.regions.iter().map(|region| (check.name.as_str(), region.as_str())))
            .collect()
    }
}

/// The views of every declared region and of the undeclared ones; a view that cannot be built is logged and
/// kept as its error (fail closed: that region's probers are refused, never given the whole config).
fn region_views(
    config: &Config,
    files: &[ConfigFile],
) -> (BTreeMap<String, Result<RegionView, String>>, Result<RegionView, String>) {
    let views = Views::new(files).map_err(|error| error.to_string());
    let build = |region: Option<&str>| {
        let views = views.as_ref().map_err(Clone::clone)?;
        let view = match region {
            Some(region) => views.region(region),
            None => views.outside(),
        };
        let files = view.map_err(|error| error.to_string())?;
        Ok(RegionView { hash: hash_files(&files), files })
    };
    let log = |region: &str, view: &Result<RegionView, String>| {
        if let Err(error) = view {
            tracing::error!(region, %error, "no config view for the region; its probers get none until this is fixed");
        }
    };
    let mut out = BTreeMap::new();
    for region in config.regions.keys() {
        let view = build(Some(region));
        log(region, &view);
        out.insert(region.clone(), view);
    }
    let outside = build(None);
    log("(undeclared)", &outside);
    (out, outside)
}

/// A stable hash of config files (names and texts), 16 hex digits.
pub fn hash_files(files: &[ConfigFile]) -> String {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(files.len() * 4);
    for file in files {
        parts.extend([file.name.as_bytes(), b"\0", file.text.as_bytes(), b"\0"]);
    }
    format!("{:016x}", wire::stable_hash(&parts))
}

/// What a set of config paths looks like on disk: every file and directory under them with its modification
/// time and size. Two equal stamps mean nothing changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamps(Vec<(PathBuf, Option<(SystemTime, u64)>)>);

/// The most entries looked at under the config paths.
const MAX_ENTRIES: usize = 10_000;

impl Stamps {
    /// Takes the stamps of `paths` (directories recursively, hidden entries skipped).
    pub fn take(paths: &[PathBuf]) -> Self {
        let mut out = Vec::new();
        for path in paths {
            stamp(path, &mut out);
        }
        Self(out)
    }
}

fn stamp(path: &Path, out: &mut Vec<(PathBuf, Option<(SystemTime, u64)>)>) {
    if out.len() >= MAX_ENTRIES {
        return;
    }
    let metadata = std::fs::metadata(path).ok();
    out.push((
        path.to_owned(),
        metadata.as_ref().map(|meta| (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len())),
    ));
    if !metadata.is_some_and(|meta| meta.is_dir()) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|child| !child.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.')))
        .collect();
    children.sort();
    for child in children {
        stamp(&child, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_change_with_files_and_hashes_with_contents() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let paths = vec![dir.path().to_owned()];
        let before = Stamps::take(&paths);
        assert_eq!(before, Stamps::take(&paths));
        std::fs::write(dir.path().join("a.yaml"), "checks: []\n").unwrap_or_else(|error| panic!("{error}"));
        let after = Stamps::take(&paths);
        assert_ne!(before, after);
        // Hidden entries are not looked at (their directory's time still moves).
        std::fs::write(dir.path().join(".hidden.yaml"), "x").unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(Stamps::take(&paths).0.len(), 2);

        let file = |name: &str, text: &str| ConfigFile { name: name.into(), text: text.into() };
        assert_eq!(hash_files(&[file("a", "x")]), hash_files(&[file("a", "x")]));
        assert_ne!(hash_files(&[file("a", "x")]), hash_files(&[file("a", "y")]));
        assert_ne!(hash_files(&[file("a", "x")]), hash_files(&[file("b", "x")]));
        assert_eq!(hash_files(&[]).len(), 16);
    }
}
