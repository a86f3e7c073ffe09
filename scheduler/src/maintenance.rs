//! Maintenance windows added through the API: kept in `DATA/maintenance.json` (replicated: in the database) and
//! rendered as one more config source, [`SOURCE`], that the loader validates with the files. Every consumer
//! (probers' pauses, alerts, the ledger, the status page, `/metrics`) then sees them in the running config.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use probenet_checks::ConfigError;
use probenet_checks::wire::ConfigFile;
use probenet_checks::yaml::{Node, emit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The name of the config source the API's windows are rendered as (in error places and `/api/v1/config`).
pub const SOURCE: &str = "(api)";
/// The file holding them, inside the data directory.
pub const FILE: &str = "maintenance.json";
/// The most windows the API keeps.
pub const MAX_WINDOWS: usize = 1_000;
/// The largest body of `POST /api/v1/maintenance`.
pub const MAX_BODY: usize = 64 << 10;
/// How long a one-off window stays listed (and counted by the ledger) after it ended.
pub const KEEP_ENDED_MS: i64 = 7 * 86_400_000;

/// One window added through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiWindow {
    /// Its name (the window's `name`).
    pub name: String,
    /// The window as posted: the fields of a config window.
    pub window: serde_json::Map<String, Value>,
    /// The id of the admin token that added it.
    pub token: String,
    /// When it was added, unix ms.
    pub created_at_ms: i64,
}

/// The config source of `windows`, none for no window.
pub fn source(windows: &[ApiWindow]) -> Option<ConfigFile> {
    if windows.is_empty() {
        return None;
    }
    let items = windows.iter().map(|window| Value::Object(window.window.clone())).collect();
    let root = serde_json::json!({ "maintenance": Value::Array(items) });
    Some(ConfigFile { name: SOURCE.to_owned(), text: emit(&Node::from_json(&root)) })
}

/// The index of the window of [`SOURCE`] an error is about, and the error's path inside that window; `None` for
/// an error of a config file.
pub fn located(error: &ConfigError) -> Option<(usize, String)> {
    if error.file != SOURCE {
        return None;
    }
    let rest = error.path.strip_prefix("maintenance[")?;
    let (index, rest) = rest.split_once(']')?;
    let inner = rest.strip_prefix('.').unwrap_or(rest);
    Some((index.parse().ok()?, inner.to_owned()))
}

/// An error as the API answers it: `path: message` inside the window, or the message alone.
pub fn describe(path: &str, message: &str) -> String {
    if path.is_empty() { message.to_owned() } else { format!("{path}: {message}") }
}

/// Why the windows could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not what this build writes.
    #[error("{path}: not a valid maintenance file: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct WindowsFile {
    windows: Vec<ApiWindow>,
}

/// The windows of `DATA/maintenance.json` (none when it does not exist).
pub fn read(data: &Path) -> Result<Vec<ApiWindow>, MaintenanceError> {
    let path = data.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(MaintenanceError::Io { path, source }),
    };
    serde_json::from_str::<WindowsFile>(&text)
        .map(|file| file.windows)
        .map_err(|error| MaintenanceError::Invalid { path, message: error.to_string() })
}

/// Replaces `DATA/maintenance.json` atomically (0600).
pub fn write(data: &Path, windows: &[ApiWindow]) -> Result<(), MaintenanceError> {
    let path = data.join(FILE);
    let file = WindowsFile { windows: windows.to_vec() };
    let mut text = serde_json::to_string_pretty(&file)
        .map_err(|error| MaintenanceError::Invalid { path: path.clone(), message: error.to_string() })?;
    text.push('\n');
    crate::files::write_private(&path, text.as_bytes()).map_err(|source| MaintenanceError::Io { path, source })
}

/// The API's windows as this scheduler knows them, with a version that moves on every change (the config is
/// rebuilt when it does).
#[derive(Debug, Default)]
pub struct Windows {
    list: Mutex<(Vec<ApiWindow>, u64)>,
    /// The data directory of a single scheduler, where they are kept (replicated: unset, the database keeps them).
    data: std::sync::OnceLock<PathBuf>,
    /// Serialises changes (check, store, apply) made through the API.
    pub writes: tokio::sync::Mutex<()>,
    versions: AtomicU64,
}

impl Windows {
    /// Windows known at the start.
    pub fn new(windows: Vec<ApiWindow>) -> Self {
        Self { list: Mutex::new((windows, 0)), ..Self::default() }
    }

    /// Keeps them in `DATA/maintenance.json` (a single scheduler).
    pub fn keep_in(&self, data: PathBuf) {
        let _ = self.data.set(data);
    }

    /// Writes them to `DATA/maintenance.json` and makes them the windows.
    pub fn write(&self, windows: Vec<ApiWindow>) -> Result<(), MaintenanceError> {
        let data = self.data.get().ok_or_else(|| MaintenanceError::Io {
            path: PathBuf::from(FILE),
            source: std::io::Error::other("no data directory to keep the maintenance windows in"),
        })?;
        write(data, &windows)?;
        self.set(windows);
        Ok(())
    }

    /// The windows and their version.
    pub fn snapshot(&self) -> (Vec<ApiWindow>, u64) {
        self.list.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The windows.
    pub fn list(&self) -> Vec<ApiWindow> {
        self.snapshot().0
    }

    /// Replaces the windows; true when they changed.
    pub fn set(&self, windows: Vec<ApiWindow>) -> bool {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        if list.0 == windows {
            return false;
        }
        *list = (windows, self.versions.fetch_add(1, Ordering::Relaxed) + 1);
        true
    }
}

/// The API's one-off windows of the running config that ended more than [`KEEP_ENDED_MS`] before `now_ms`.
pub fn ended(shared: &crate::state::Shared, now_ms: i64) -> Vec<String> {
    use probenet_checks::config::maintenance::When;
    let config = shared.config();
    config
        .config
        .maintenance
        .iter()
        .filter(|window| window.place.file == SOURCE)
        .filter(|window| matches!(window.when, When::Once { end_ms, .. } if end_ms < now_ms - KEEP_ENDED_MS))
        .map(|window| window.name.clone())
        .collect()
}

/// A single scheduler forgets the API's windows that ended a week ago (call it off the async threads).
pub fn prune(shared: &crate::state::Shared) {
    if shared.cluster().is_some() {
        return;
    }
    let ended = ended(shared, crate::time::now_ms());
    if ended.is_empty() {
        return;
    }
    let _one_change_at_a_time = shared.maintenance.writes.blocking_lock();
    let windows = shared.maintenance.list().into_iter().filter(|window| !ended.contains(&window.name)).collect();
    match shared.maintenance.write(windows) {
        Ok(()) => {
            tracing::info!(windows = ?ended, "maintenance windows of the API that ended a week ago forgotten");
            shared.reload(false);
        }
        Err(error) => tracing::warn!(%error, "ended maintenance windows not forgotten"),
    }
}

pub mod api;

#[cfg(test)]
mod tests {
    use super::*;

    fn window(name: &str, fields: Value) -> ApiWindow {
        let Value::Object(window) = fields else { panic!("not an object") };
        ApiWindow { name: name.into(), window, token: "abc".into(), created_at_ms: 1 }
    }

    #[test]
    fn windows_render_as_a_config_source_and_persist() {
        let checks = "checks:\n  - {name: web, http: {url: 'https://example.com/'}}\n";
        let windows = [
            window(
                "a",
                serde_json::json!({"name": "a", "checks": ["web"], "start": "2026-12-07T09:00:00Z", "duration": "1h",
                                   "mode": "pause", "reason": "ticket: #12"}),
            ),
            window("b", serde_json::json!({"name": "b", "checks": "web", "schedule": "bad", "duration": "1h"})),
        ];
        let mut files = vec![ConfigFile { name: "c.yaml".into(), text: checks.into() }];
        files.extend(source(&windows));
        let errors = probenet_checks::config::load_sources(&files).err().map(|errors| errors.0).unwrap_or_default();
        let located: Vec<_> = errors.iter().filter_map(located).collect();
        assert_eq!(located.len(), 1, "{errors:?}");
        assert_eq!(located[0].0, 1);
        assert_eq!(located[0].1, "schedule");
        files.truncate(1);
        files.extend(source(&windows[..1]));
        let config = probenet_checks::config::load_sources(&files).unwrap();
        assert_eq!(config.maintenance[0].reason.as_deref(), Some("ticket: #12"));
        assert_eq!(config.maintenance[0].place.file, SOURCE);

        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), []);
        write(dir.path(), &windows).unwrap();
        assert_eq!(read(dir.path()).unwrap(), windows);
        assert!(source(&[]).is_none());
    }
}
