//! Artifact files (browser screenshots...): named from the run's ids, written and fsynced before the batch's
//! commit, resolved safely from their stored relative path.

use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use super::rollup::DAY_MS;
use super::{SqliteStore, StoreError};

/// The relative path of a run's `index`th artifact: `DAY/CHECK-REGION-PLANNED-INDEX-NAME`, where DAY is the
/// UTC day number of `planned_at_ms` (retention removes whole days) and NAME is the artifact name, sanitised.
pub(crate) fn relative_path(check: i64, region: i64, planned_at_ms: i64, index: usize, name: &str) -> String {
    let day = planned_at_ms.div_euclid(DAY_MS);
    format!("{day}/{check}-{region}-{planned_at_ms}-{index}-{}", clean(name, "artifact"))
}

/// Where an artifact goes in the object store: `artifacts/DAY/CHECK/REGION/PLANNED-INDEX-NAME` (DAY as in
/// [`relative_path`], so retention deletes whole days; names sanitised). Also the path recorded in the
/// result, so any replica finds it from the result alone.
pub fn object_key(check: &str, region: &str, planned_at_ms: i64, index: usize, name: &str) -> String {
    let day = planned_at_ms.div_euclid(DAY_MS);
    let (check, region, name) = (clean(check, "check"), clean(region, "region"), clean(name, "artifact"));
    format!("{OBJECT_FOLDER}/{day}/{check}/{region}/{planned_at_ms}-{index}-{name}")
}

/// The object store folder of artifacts; a result's artifact path starting with it names an object.
pub const OBJECT_FOLDER: &str = "artifacts";

/// Whether a recorded artifact path names an object (see [`object_key`]) rather than a file of the store.
pub fn is_object_key(path: &str) -> bool {
    path.strip_prefix(OBJECT_FOLDER).is_some_and(|rest| rest.starts_with('/')) && is_plain(path)
}

/// The UTC day number of an object key's folder (what retention compares), if it is one.
pub fn object_key_day(path: &str) -> Option<i64> {
    path.strip_prefix(OBJECT_FOLDER)?.strip_prefix('/')?.split('/').next()?.parse().ok()
}

/// A name made safe for a path segment: ASCII letters, digits, `.`, `-` and `_` (others become `_`), at most
/// 64 characters, never empty, `.` or `..` (then `fallback`).
fn clean(name: &str, fallback: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(64)
        .collect();
    if clean.trim_matches('.').is_empty() { fallback.to_owned() } else { clean }
}

/// Writes one artifact file and fsyncs it; returns its directory (to fsync once per batch).
pub fn write(root: &Path, relative: &str, data: &[u8]) -> Result<PathBuf, StoreError> {
    let path = root.join(relative);
    let dir = path.parent().map_or_else(|| root.to_path_buf(), Path::to_path_buf);
    std::fs::create_dir_all(&dir).map_err(StoreError::io(format!("writing artifact {relative}")))?;
    let mut file = File::create(&path).map_err(StoreError::io(format!("writing artifact {relative}")))?;
    file.write_all(data).map_err(StoreError::io(format!("writing artifact {relative}")))?;
    file.sync_all().map_err(StoreError::io(format!("syncing artifact {relative}")))?;
    Ok(dir)
}

/// Fsyncs a directory, so the names of files created in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(StoreError::io(format!("syncing directory {}", dir.display())))
}

/// Whether a stored relative path is plain: relative, only normal components (no `..`, no root).
pub fn is_plain(relative: &str) -> bool {
    let path = Path::new(relative);
    !relative.is_empty() && path.components().all(|component| matches!(component, Component::Normal(_)))
}

impl SqliteStore {
    /// The file of a stored artifact path (as in `outcome.artifacts[].path`), if it is a plain relative path
    /// and the file exists. Never resolves outside the artifact directory.
    pub(crate) fn artifact_file(&self, relative: &str) -> Option<PathBuf> {
        if !is_plain(relative) {
            return None;
        }
        let path = self.inner.artifacts.join(relative);
        let metadata = std::fs::symlink_metadata(&path).ok()?;
        metadata.is_file().then_some(path)
    }

    /// The artifact directory.
    pub fn artifact_dir(&self) -> &Path {
        &self.inner.artifacts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sanitised_and_checked() {
        assert_eq!(relative_path(1, 2, DAY_MS + 5, 0, "failure.png"), "1/1-2-86400005-0-failure.png");
        assert_eq!(relative_path(1, 2, 0, 1, "../../etc/passwd"), "0/1-2-0-1-.._.._etc_passwd");
        assert_eq!(relative_path(1, 2, 0, 1, ".."), "0/1-2-0-1-artifact");
        assert!(is_plain("3/1-2-3-0-a.png"));
        assert!(!is_plain("../x"));
        assert!(!is_plain("/etc/passwd"));
        assert!(!is_plain("a/../../x"));
        assert!(!is_plain(""));
    }

    #[test]
    fn object_keys_name_the_day_and_pair() {
        let key = object_key("shop/home", "eu west", DAY_MS * 3 + 7, 1, "failure.png");
        assert_eq!(key, "artifacts/3/shop_home/eu_west/259200007-1-failure.png");
        assert!(is_object_key(&key));
        assert_eq!(object_key_day(&key), Some(3));
        assert_eq!(object_key("..", ".", 0, 0, ""), "artifacts/0/check/region/0-0-artifact");
        assert!(!is_object_key("3/1-2-3-0-a.png"));
        assert!(!is_object_key("artifacts/../x"));
        assert!(!is_object_key("artifactsx/1/a"));
    }
}
