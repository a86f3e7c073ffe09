//! The archive's format: where each file goes (keys), the day's manifest, and the zstd-compressed NDJSON
//! files of results (one `RunResult` as JSON a line, exactly as on the wire).

use std::fmt::Write as _;
use std::io::{BufRead, Read, Write};

use probenet_checks::wire::RunResult;
use serde::{Deserialize, Serialize};

use super::{ArchiveError, Day};

/// Where the archive starts in the bucket (under the configured prefix); the version is that of the layout.
pub const ROOT: &str = "archive/v1";
/// The manifest's `format`.
pub const FORMAT: &str = "probenet-archive";
/// The manifest's `version`: what this build writes and the newest it reads.
pub const VERSION: u32 = 1;
/// zstd's level: archives are written once, kept long and read rarely, so a level above the default 3 is
/// worth its CPU (a pass compresses a day once, while the store reading it is the slower part).
const LEVEL: i32 = 9;
/// The longest line read back (a result is a few KiB; artifacts are referenced by path, never inlined).
pub const MAX_LINE: usize = 16 << 20;

/// The folder of a day: `archive/v1/day=2026-12-01`.
pub fn day_folder(day: Day) -> String {
    format!("{ROOT}/day={day}")
}

/// The key of a day's manifest.
pub fn manifest_key(day: Day) -> String {
    format!("{}/manifest.json", day_folder(day))
}

/// The key of a check's results of a day: `archive/v1/day=2026-12-01/check=NAME/results.ndjson.zst`.
pub fn file_key(day: Day, check: &str) -> String {
    format!("{}/check={}/results.ndjson.zst", day_folder(day), sanitise(check))
}

/// A name as one key segment: every byte outside `[A-Za-z0-9._-]` percent-encoded (`api/v2` is `api%2Fv2`).
pub fn sanitise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// What a day's archive holds; written after every file it lists, so it always describes complete files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `probenet-archive`.
    pub format: String,
    /// The format version (1).
    pub version: u32,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The day's window of planned times, `[from_ms, to_ms)`.
    pub from_ms: i64,
    /// Its end.
    pub to_ms: i64,
    /// When the manifest was written (unix ms).
    pub written_at_ms: i64,
    /// One file per check that had results that day, by check name.
    pub checks: Vec<CheckFile>,
}

/// One check's file of a day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckFile {
    /// The check's name.
    pub check: String,
    /// The file's key (relative to the bucket's prefix).
    pub key: String,
    /// Results in it (lines).
    pub results: u64,
    /// Its size, compressed.
    pub bytes: u64,
    /// The SHA-256 of the compressed file, in hex.
    pub sha256: String,
    /// The earliest `planned_at_ms` in it.
    pub first_planned_ms: i64,
    /// The latest `planned_at_ms` in it.
    pub last_planned_ms: i64,
    /// The regions in it, in the order of the file (each region's results are together, oldest first).
    pub regions: Vec<String>,
}

impl Manifest {
    /// Parses a manifest read from `key`, refusing one of a newer format.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Self, ArchiveError> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|error| ArchiveError::Damaged {
            key: key.to_owned(),
            message: format!("not a manifest: {error}"),
        })?;
        if manifest.format != FORMAT {
            return Err(ArchiveError::Damaged {
                key: key.to_owned(),
                message: format!("its format is {:?}, not {FORMAT:?}", manifest.format),
            });
        }
        if manifest.version > VERSION {
            return Err(ArchiveError::Damaged {
                key: key.to_owned(),
                message: format!(
                    "format version {} is newer than this build reads ({VERSION}): use a newer probenet",
                    manifest.version
                ),
            });
        }
        Ok(manifest)
    }

    /// Results in every file.
    pub fn results(&self) -> u64 {
        self.checks.iter().map(|file| file.results).sum()
    }

    /// Bytes of every file.
    pub fn bytes(&self) -> u64 {
        self.checks.iter().map(|file| file.bytes).sum()
    }
}

/// A SHA-256 in hex.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().fold(String::with_capacity(digest.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// Counts and hashes what goes through it.
struct Hashing<W> {
    inner: W,
    digest: aws_lc_rs::digest::Context,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.digest.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A check's file being written: results in, compressed bytes out to a temporary file.
pub struct FileWriter {
    encoder: zstd::Encoder<'static, Hashing<std::io::BufWriter<std::fs::File>>>,
    line: Vec<u8>,
    results: u64,
    first_planned_ms: i64,
    last_planned_ms: i64,
    regions: Vec<String>,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter").field("results", &self.results).finish_non_exhaustive()
    }
}

/// A check's file, written.
#[derive(Debug)]
pub struct Written {
    /// Results in it.
    pub results: u64,
    /// Compressed size.
    pub bytes: u64,
    /// SHA-256 of the compressed bytes, in hex.
    pub sha256: String,
    /// Earliest planned time.
    pub first_planned_ms: i64,
    /// Latest planned time.
    pub last_planned_ms: i64,
    /// Regions in file order.
    pub regions: Vec<String>,
}

impl FileWriter {
    /// Starts writing into `file` (a temporary file).
    pub fn new(file: std::fs::File) -> std::io::Result<Self> {
        let hashing = Hashing {
            inner: std::io::BufWriter::new(file),
            digest: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            bytes: 0,
        };
        Ok(Self {
            encoder: zstd::Encoder::new(hashing, LEVEL)?,
            line: Vec::new(),
            results: 0,
            first_planned_ms: i64::MAX,
            last_planned_ms: i64::MIN,
            regions: Vec::new(),
        })
    }

    /// Appends one result as a line.
    pub fn push(&mut self, result: &RunResult) -> Result<(), ArchiveError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, result).map_err(|error| ArchiveError::Format(error.to_string()))?;
        self.line.push(b'\n');
        self.encoder.write_all(&self.line).map_err(ArchiveError::io("compressing results"))?;
        self.results += 1;
        self.first_planned_ms = self.first_planned_ms.min(result.planned_at_ms);
        self.last_planned_ms = self.last_planned_ms.max(result.planned_at_ms);
        if self.regions.last() != Some(&result.region) {
            self.regions.push(result.region.clone());
        }
        Ok(())
    }

    /// Results written so far.
    pub fn results(&self) -> u64 {
        self.results
    }

    /// Ends the compressed stream and flushes the file to disk.
    pub fn finish(self) -> Result<Written, ArchiveError> {
        let mut hashing = self.encoder.finish().map_err(ArchiveError::io("compressing results"))?;
        hashing.flush().map_err(ArchiveError::io("writing the archive file"))?;
        let digest = hashing.digest.finish();
        Ok(Written {
            results: self.results,
            bytes: hashing.bytes,
            sha256: hex(digest.as_ref()),
            first_planned_ms: self.first_planned_ms,
            last_planned_ms: self.last_planned_ms,
            regions: self.regions,
        })
    }
}

/// The SHA-256 (hex) and size of a file.
pub fn sha256_of(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buffer = vec![0_u8; 64 << 10];
    let mut bytes = 0_u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        digest.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok((hex(digest.finish().as_ref()), bytes))
}

/// Reads the results of a compressed file back, a line at a time.
pub struct FileReader {
    lines: std::io::BufReader<zstd::Decoder<'static, std::io::BufReader<std::fs::File>>>,
    key: String,
    line: Vec<u8>,
    number: u64,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader").field("key", &self.key).field("line", &self.number).finish_non_exhaustive()
    }
}

impl FileReader {
    /// Opens the file downloaded from `key`.
    pub fn open(path: &std::path::Path, key: &str) -> Result<Self, ArchiveError> {
        let file = std::fs::File::open(path).map_err(ArchiveError::io(format!("opening {}", path.display())))?;
        let decoder = zstd::Decoder::new(file)
            .map_err(|error| ArchiveError::Damaged { key: key.to_owned(), message: format!("not zstd: {error}") })?;
        Ok(Self { lines: std::io::BufReader::new(decoder), key: key.to_owned(), line: Vec::new(), number: 0 })
    }

    /// The next result; `None` at the end.
    pub fn next_result(&mut self) -> Result<Option<RunResult>, ArchiveError> {
        self.line.clear();
        let read = (&mut self.lines)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.line)
            .map_err(|error| self.damaged(format!("cannot decompress: {error}")))?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        if self.line.len() > MAX_LINE {
            return Err(self.damaged(format!("line {} is longer than {MAX_LINE} bytes", self.number)));
        }
        let result = serde_json::from_slice(&self.line)
            .map_err(|error| self.damaged(format!("line {} is not a result: {error}", self.number)))?;
        Ok(Some(result))
    }

    fn damaged(&self, message: String) -> ArchiveError {
        ArchiveError::Damaged { key: self.key.clone(), message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_key_segments() {
        assert_eq!(sanitise("api-v2.example_1"), "api-v2.example_1");
        assert_eq!(sanitise("api/v2 é"), "api%2Fv2%20%C3%A9");
        assert_eq!(sanitise("100%"), "100%25");
        let day = Day::parse("2026-12-01").unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(file_key(day, "a/b"), "archive/v1/day=2026-12-01/check=a%2Fb/results.ndjson.zst");
        assert_eq!(manifest_key(day), "archive/v1/day=2026-12-01/manifest.json");
    }
}
