//! The result-log exporter's config: the file (or standard output) and its rotation.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{Ctx, Path};

/// Result logs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLogs {
    /// The file to append to, such as `/var/log/probenet/results.jsonl`; `-` for standard output.
    pub path: String,
    /// Rotate when the file passes this size (default `100MiB`).
    pub max_size: Option<String>,
    /// Rotated files kept (default 5).
    pub max_files: Option<u32>,
    /// Where it runs: `scheduler` (default) or `probers`.
    pub on: Option<String>,
}

/// Result logs, validated: JSON lines to a file or to standard output.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsSpec {
    /// The file, or `None` for standard output.
    pub path: Option<PathBuf>,
    /// Rotation size in bytes.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub max_files: u32,
}

const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
const DEFAULT_MAX_FILES: u32 = 5;

pub(super) fn validate(cx: &mut Ctx<'_>, at: &Path, raw: RawLogs) -> Option<LogsSpec> {
    let max_bytes = match raw.max_size.as_deref() {
        None => Some(DEFAULT_MAX_BYTES),
        Some(text) => cx.size(&at.key("max_size"), text),
    };
    let max_files = raw.max_files.unwrap_or(DEFAULT_MAX_FILES);
    if !(1..=1000).contains(&max_files) {
        cx.error(&at.key("max_files"), format!("{max_files} is outside the allowed range of 1 to 1000"));
    }
    if raw.path.trim().is_empty() {
        cx.error(&at.key("path"), "the path is empty: name a file, or `-` for standard output");
        return None;
    }
    let path = (raw.path != "-").then(|| PathBuf::from(&raw.path));
    Some(LogsSpec { path, max_bytes: max_bytes?, max_files })
}
