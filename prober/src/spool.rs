//! The on-disk spool of unacknowledged results: a directory of JSON-lines segment files (one batch each),
//! written then fsync'd, bounded in bytes (the oldest segment goes first, its results counted), replayed
//! oldest first.
//!
//! A segment is named `SEQUENCE-COUNT.jsonl` (COUNT results, one JSON object a line), so the spool knows
//! what it holds without reading it. It is written to a `.tmp` file, fsync'd and renamed, so a crash
//! never leaves half a segment. A lock file keeps two probers off the same directory.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use probenet_checks::wire::RunResult;

const LOCK_FILE: &str = "spool.lock";
const SUFFIX: &str = ".jsonl";
const TMP_SUFFIX: &str = ".tmp";

/// A segment of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Its sequence number: older segments have smaller ones.
    pub seq: u64,
    /// How many results it holds.
    pub results: usize,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a push did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Results written (0 if the batch alone is larger than the spool).
    pub written: usize,
    /// Results dropped to make room: the oldest segments, or this batch if it could never fit.
    pub dropped: usize,
    /// Segments dropped.
    pub dropped_segments: usize,
}

/// Why the spool could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another prober holds the directory.
    #[error("the spool directory {0} is in use by another prober")]
    Locked(String),
    /// The directory cannot be created or read.
    #[error("cannot use the spool directory {path}: {error}")]
    Io {
        /// The directory.
        path: String,
        /// The error.
        error: io::Error,
    },
}

/// The spool directory, opened and locked.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    bytes: u64,
    next_seq: u64,
    pinned: Option<u64>,
    _lock: File,
}

impl Spool {
    /// Opens (creating it if needed) and locks the spool in `dir`, bounded to `max_bytes`; finds the
    /// segments left by an earlier run and removes half-written ones.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, OpenError> {
        let io_error = |error| OpenError::Io { path: dir.display().to_string(), error };
        // Results hold what checks saw (bodies, headers, targets): the owner's alone.
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_error)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))
            .map_err(io_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(OpenError::Locked(dir.display().to_string())),
            Err(fs::TryLockError::Error(error)) => return Err(io_error(error)),
        }
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error)? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(TMP_SUFFIX) {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some((seq, results)) = parse_name(&name) else { continue };
            let bytes = entry.metadata().map(|metadata| metadata.len()).unwrap_or(0);
            segments.push(Segment { seq, results, bytes });
        }
        segments.sort_by_key(|segment| segment.seq);
        let next_seq = segments.last().map_or(1, |segment| segment.seq + 1);
        let bytes = segments.iter().map(|segment| segment.bytes).sum();
        Ok(Self {
            dir: dir.to_owned(),
            max_bytes,
            segments: segments.into(),
            bytes,
            next_seq,
            pinned: None,
            _lock: lock,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Results held.
    pub fn results(&self) -> usize {
        self.segments.iter().map(|segment| segment.results).sum()
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    /// The oldest segment, the next to replay.
    pub fn oldest(&self) -> Option<Segment> {
        self.segments.front().copied()
    }

    /// Keeps segment `seq` from being dropped to make room (it is being replayed); `None` releases it.
    pub fn pin(&mut self, seq: Option<u64>) {
        self.pinned = seq;
    }

    /// Writes a batch as a new segment and fsyncs it. When the spool would pass its bound, the oldest
    /// segments are dropped first (counted in the answer); a batch larger than the whole bound is dropped
    /// itself. On a write error nothing is dropped and nothing is left behind.
    pub fn push(&mut self, results: &[RunResult]) -> io::Result<Pushed> {
        if results.is_empty() {
            return Ok(Pushed::default());
        }
        let mut data = Vec::with_capacity(results.len() * 512);
        for result in results {
            serde_json::to_writer(&mut data, result).map_err(io::Error::other)?;
            data.push(b'\n');
        }
        let size = data.len() as u64;
        if size > self.max_bytes {
            return Ok(Pushed { written: 0, dropped: results.len(), dropped_segments: 0 });
        }
        let seq = self.next_seq;
        let name = segment_name(seq, results.len());
        let tmp = self.dir.join(format!("{name}{TMP_SUFFIX}"));
        if let Err(error) = write_synced(&tmp, &data) {
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        let mut pushed = Pushed { written: results.len(), ..Pushed::default() };
        while self.bytes + size > self.max_bytes {
            let Some(index) = self.segments.iter().position(|segment| Some(segment.seq) != self.pinned) else { break };
            let Some(old) = self.segments.remove(index) else { break };
            self.bytes -= old.bytes;
            pushed.dropped += old.results;
            pushed.dropped_segments += 1;
            let _ = fs::remove_file(self.path_of(&old));
        }
        if let Err(error) = fs::rename(&tmp, self.dir.join(&name)) {
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        // The rename is durable once the directory itself is synced.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.next_seq += 1;
        self.bytes += size;
        self.segments.push_back(Segment { seq, results: results.len(), bytes: size });
        Ok(pushed)
    }

    /// Reads segment `seq`: its results, and how many of its lines did not parse.
    pub fn read(&self, seq: u64) -> io::Result<(Vec<RunResult>, usize)> {
        let segment = self
            .segments
            .iter()
            .find(|segment| segment.seq == seq)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such segment"))?;
        let text = fs::read_to_string(self.path_of(segment))?;
        let mut results = Vec::with_capacity(segment.results);
        let mut bad = 0;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            match serde_json::from_str::<RunResult>(line) {
                Ok(result) => results.push(result),
                Err(_) => bad += 1,
            }
        }
        Ok((results, bad))
    }

    /// Removes segment `seq` (acknowledged, or unreadable). Removing a segment that is gone is not an error.
    pub fn remove(&mut self, seq: u64) -> io::Result<Option<Segment>> {
        let Some(index) = self.segments.iter().position(|segment| segment.seq == seq) else { return Ok(None) };
        let Some(segment) = self.segments.remove(index) else { return Ok(None) };
        self.bytes -= segment.bytes;
        if self.pinned == Some(seq) {
            self.pinned = None;
        }
        match fs::remove_file(self.path_of(&segment)) {
            Ok(()) => Ok(Some(segment)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Some(segment)),
            Err(error) => Err(error),
        }
    }

    fn path_of(&self, segment: &Segment) -> PathBuf {
        self.dir.join(segment_name(segment.seq, segment.results))
    }
}

fn segment_name(seq: u64, results: usize) -> String {
    format!("{seq:020}-{results}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<(u64, usize)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (seq, results) = stem.split_once('-')?;
    Some((seq.parse().ok()?, results.parse().ok()?))
}

fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().create_new(true).write(true).mode(0o600).open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_name(&segment_name(42, 500)), Some((42, 500)));
        assert_eq!(parse_name("spool.lock"), None);
        assert_eq!(parse_name("x-1.jsonl"), None);
    }
}
