//! Reading the archive back: the days archived in a window (their manifests), and a restore of a window into
//! a store, every file checked against its manifest (size, SHA-256, results) before anything is stored.

use std::sync::Arc;

use probenet_checks::wire::RunResult;
use probenet_objects::Bucket;
use serde::Serialize;

use super::format::{CheckFile, FileReader, Manifest, ROOT, manifest_key, sha256_of};
use super::{ArchiveError, Day};
use crate::store::Store;

/// Results ingested at a time.
const BATCH: usize = 500;

/// Which part of the archive to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The first day.
    pub from: Day,
    /// The last day (included).
    pub to: Day,
    /// Only these checks (`None`: every check).
    pub checks: Option<Vec<String>>,
}

impl Selection {
    fn wants(&self, check: &str) -> bool {
        self.checks.as_ref().is_none_or(|checks| checks.iter().any(|wanted| wanted == check))
    }
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Restored {
    /// Days with a manifest in the window.
    pub days: usize,
    /// Files read.
    pub files: usize,
    /// Results in them.
    pub results: u64,
    /// Results the store took now.
    pub accepted: usize,
    /// Results it had already (restoring twice adds nothing).
    pub duplicates: usize,
    /// Checks asked for that no manifest of the window lists.
    pub unmatched: Vec<String>,
}

/// The days archived from `from` to `to` (included), oldest first, with their manifests. A day whose
/// manifest is missing (its writing was interrupted; the next pass writes it again) is left out.
pub async fn list(bucket: &Bucket, from: Day, to: Day) -> Result<Vec<(Day, Manifest)>, ArchiveError> {
    let mut days = Vec::new();
    for folder in bucket.folders(ROOT).await? {
        let Some(day) = folder.strip_prefix("day=").and_then(|text| Day::parse(text).ok()) else { continue };
        if day < from || day > to {
            continue;
        }
        let key = manifest_key(day);
        let Some(bytes) = bucket.get(&key).await? else { continue };
        days.push((day, Manifest::parse(&key, &bytes)?));
    }
    days.sort_by_key(|(day, _)| *day);
    Ok(days)
}

/// Restores the selected results into `store`: every file is downloaded and checked first (size, SHA-256,
/// every line a result of its check and day, the count), so a damaged file stops the restore before anything
/// is stored; then the results are ingested in batches. Ingest is idempotent on run ids: restoring twice adds
/// nothing. Files wait in a temporary directory (disk, not memory) between the two steps.
pub async fn restore(bucket: &Bucket, store: Arc<dyn Store>, selection: &Selection) -> Result<Restored, ArchiveError> {
    let days = list(bucket, selection.from, selection.to).await?;
    let dir = tempfile::tempdir().map_err(ArchiveError::io("creating a temporary directory"))?;
    let mut restored = Restored { days: days.len(), ..Restored::default() };
    if let Some(checks) = &selection.checks {
        restored.unmatched = checks
            .iter()
            .filter(|check| !days.iter().any(|(_, manifest)| manifest.checks.iter().any(|file| &file.check == *check)))
            .cloned()
            .collect();
    }
    let mut files = Vec::new();
    for (day, manifest) in &days {
        for file in manifest.checks.iter().filter(|file| selection.wants(&file.check)) {
            let path = dir.path().join(format!("{}.ndjson.zst", files.len()));
            if bucket.get_file(&file.key, &path).await?.is_none() {
                return Err(ArchiveError::Damaged {
                    key: file.key.clone(),
                    message: format!(
                        "the manifest of {day} lists it but the bucket does not have it; nothing was restored"
                    ),
                });
            }
            let (checked, file, day) = (path.clone(), file.clone(), *day);
            let file = tokio::task::spawn_blocking(move || verify(&checked, &file, day).map(|()| file))
                .await
                .map_err(|error| ArchiveError::Task(error.to_string()))??;
            restored.results += file.results;
            files.push((path, file));
        }
    }
    for (path, file) in files {
        let store = store.clone();
        let (accepted, duplicates) = tokio::task::spawn_blocking(move || ingest(store.as_ref(), &path, &file.key))
            .await
            .map_err(|error| ArchiveError::Task(error.to_string()))??;
        restored.files += 1;
        restored.accepted += accepted;
        restored.duplicates += duplicates;
    }
    Ok(restored)
}

/// Checks a downloaded file against its manifest entry: size, SHA-256, and every line a result of its check
/// planned in its day, as many as listed.
fn verify(path: &std::path::Path, file: &CheckFile, day: Day) -> Result<(), ArchiveError> {
    let damaged = |message: String| ArchiveError::Damaged { key: file.key.clone(), message };
    let (sha256, bytes) = sha256_of(path).map_err(ArchiveError::io(format!("reading {}", path.display())))?;
    if sha256 != file.sha256 || bytes != file.bytes {
        return Err(damaged(format!(
            "its SHA-256 is {sha256} ({bytes} bytes) but the manifest of {day} says {} ({} bytes): the file is damaged \
             or was replaced; nothing was restored",
            file.sha256, file.bytes
        )));
    }
    let mut reader = FileReader::open(path, &file.key)?;
    let mut count = 0_u64;
    while let Some(result) = reader.next_result()? {
        count += 1;
        if result.check != file.check || Day::of_ms(result.planned_at_ms) != day {
            return Err(damaged(format!(
                "result {count} is of {}/{} planned at {}, not of check {} on {day}; nothing was restored",
                result.check, result.region, result.planned_at_ms, file.check
            )));
        }
        if count > file.results {
            break;
        }
    }
    if count != file.results {
        return Err(damaged(format!(
            "it holds {count} results but the manifest of {day} says {}; nothing was restored",
            file.results
        )));
    }
    Ok(())
}

/// Ingests a checked file in batches: (accepted, duplicates).
fn ingest(store: &dyn Store, path: &std::path::Path, key: &str) -> Result<(usize, usize), ArchiveError> {
    let mut reader = FileReader::open(path, key)?;
    let (mut accepted, mut duplicates) = (0, 0);
    let mut batch: Vec<RunResult> = Vec::with_capacity(BATCH);
    loop {
        let next = reader.next_result()?;
        let done = next.is_none();
        batch.extend(next);
        if batch.len() == BATCH || (done && !batch.is_empty()) {
            let (ingested, _) = store.ingest(std::mem::take(&mut batch))?;
            accepted += ingested.accepted;
            duplicates += ingested.duplicates;
        }
        if done {
            return Ok((accepted, duplicates));
        }
    }
}
