//! The result log: one JSON record per result, appended to a size-rotated file or written to stdout.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use probenet_checks::config::exporters::logs::LogsSpec;

use crate::record::{RecordOptions, Secrets, record};
use crate::samples::SeriesOptions;
use crate::sink::{Event, SendError, Sink};

/// The default size at which the log file is rotated: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// The default number of files kept, the one being written included.
pub const DEFAULT_MAX_FILES: u32 = 5;

/// Where and how results are logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// The log file (`results.jsonl`); `None` writes to stdout, never rotated.
    pub path: Option<PathBuf>,
    /// The file is rotated before a line would take it past this size (a single longer line still goes in).
    pub max_bytes: u64,
    /// Files kept, the one being written included: `results.jsonl`, `results.jsonl.1` ... up to
    /// `results.jsonl.{max_files - 1}`, the oldest deleted. At least 1.
    pub max_files: u32,
    /// Values redacted from every record.
    pub secrets: Secrets,
    /// Adds each outcome's `log` lines to its record.
    pub include_log: bool,
    /// Each region's labels, copied into its results' records.
    pub region_labels: crate::samples::RegionLabels,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            path: None,
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: DEFAULT_MAX_FILES,
            secrets: Secrets::default(),
            include_log: false,
            region_labels: crate::samples::RegionLabels::new(),
        }
    }
}

/// The result log sink (`kind` `logs`). Each batch is written whole and then flushed, so a line is on disk
/// (or on stdout) when its batch is acknowledged. [`Event::Removed`] writes nothing: every line is one result.
///
/// Files are opened with `O_APPEND`, created with mode 0640, their directory created if missing. A failed
/// write is retried (full disk, I/O error) or refused (permission, not a directory); a batch retried after a
/// partial failure does not write its already written lines again. One process writes one file.
pub struct LogSink {
    options: RecordOptions,
    state: Mutex<State>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        let to = match &state.out {
            Out::File(file) => file.path.display().to_string(),
            Out::Writer(_) => "writer".to_owned(),
        };
        f.debug_struct("LogSink").field("to", &to).finish_non_exhaustive()
    }
}

struct State {
    out: Out,
    /// How far a batch that failed part way got: (its identity, events of it already written).
    resume: Option<(BatchId, usize)>,
}

enum Out {
    File(RotatingFile),
    Writer(Box<dyn Write + Send>),
}

/// Tells a retried batch from a new one: the queue retries the very same slice of events.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchId {
    len: usize,
    first: usize,
    last: usize,
}

impl BatchId {
    fn of(batch: &[Event]) -> Self {
        let address = |event: Option<&Event>| match event {
            Some(Event::Result { result, .. }) => Arc::as_ptr(result) as usize,
            Some(Event::Removed { check, .. }) => Arc::as_ptr(check) as usize,
            None => 0,
        };
        Self { len: batch.len(), first: address(batch.first()), last: address(batch.last()) }
    }
}

impl LogSink {
    /// The sink a config's `logs` exporter describes: the file (`None`: standard output) and its rotation.
    pub fn from_config(spec: &LogsSpec, series: &SeriesOptions) -> Self {
        Self::new(LogOptions {
            path: spec.path.clone(),
            max_bytes: spec.max_bytes,
            max_files: spec.max_files,
            region_labels: series.region_labels.clone(),
            ..LogOptions::default()
        })
    }

    /// A sink writing to `options.path`, or to stdout when it is `None`. The file is opened at the first
    /// write, so a bad path shows as a failed (and counted) delivery, not here.
    pub fn new(options: LogOptions) -> Self {
        let record = RecordOptions {
            secrets: options.secrets,
            include_log: options.include_log,
            region_labels: options.region_labels,
        };
        let out = match options.path {
            Some(path) => Out::File(RotatingFile::new(path, options.max_bytes, options.max_files)),
            None => Out::Writer(Box::new(io::stdout())),
        };
        Self { options: record, state: Mutex::new(State { out, resume: None }) }
    }

    /// A sink writing to `writer` (what stdout mode does with the process's stdout); `path`, `max_bytes`
    /// and `max_files` of `options` are ignored.
    pub fn to_writer(writer: impl Write + Send + 'static, options: LogOptions) -> Self {
        let record = RecordOptions {
            secrets: options.secrets,
            include_log: options.include_log,
            region_labels: options.region_labels,
        };
        Self { options: record, state: Mutex::new(State { out: Out::Writer(Box::new(writer)), resume: None }) }
    }

    fn write_batch(&self, batch: &[Event]) -> Result<(), SendError> {
        let mut state = lock(&self.state);
        let id = BatchId::of(batch);
        let skip = match state.resume.take() {
            Some((resumed, written)) if resumed == id => written,
            _ => 0,
        };
        let mut lines = Vec::with_capacity(batch.len());
        for (index, event) in batch.iter().enumerate().skip(skip) {
            if let Event::Result { check, result } = event {
                let mut line = serde_json::to_vec(&record(check, result, &self.options))
                    .map_err(|error| SendError::Reject(format!("logs: cannot encode a record: {error}")))?;
                line.push(b'\n');
                lines.push((index, line));
            }
        }
        let outcome = match &mut state.out {
            Out::File(file) => file.append(&lines),
            Out::Writer(writer) => write_all(writer.as_mut(), &lines).map_err(|(written, error)| {
                let written = lines.get(written).map_or(batch.len(), |(index, _)| *index);
                (written, classify("stdout", &error))
            }),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err((written, error)) => {
                state.resume = Some((id, written));
                Err(error)
            }
        }
    }
}

/// Writes the lines into one buffer and then out; on failure, how many of them are surely written.
fn write_all(writer: &mut dyn Write, lines: &[(usize, Vec<u8>)]) -> Result<(), (usize, io::Error)> {
    let buffer: Vec<u8> = lines.iter().flat_map(|(_, line)| line.iter().copied()).collect();
    writer.write_all(&buffer).and_then(|()| writer.flush()).map_err(|error| (0, error))
}

impl Sink for LogSink {
    fn kind(&self) -> &'static str {
        "logs"
    }

    fn destination(&self) -> String {
        match &lock(&self.state).out {
            Out::File(file) => file.path.display().to_string(),
            Out::Writer(_) => "stdout".to_owned(),
        }
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, Result<(), SendError>> {
        // Local file writes of one batch: short enough to run inline, like the buffered writes they are.
        Box::pin(async move { self.write_batch(batch) })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut state = lock(&self.state);
            match &mut state.out {
                Out::File(file) => file.sync(),
                Out::Writer(writer) => {
                    if let Err(error) = writer.flush() {
                        tracing::warn!(%error, "logs: flush failed");
                    }
                }
            }
        })
    }
}

/// A log file rotated by size.
struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_files: u32,
    /// The open file, once opened.
    open: Option<Opened>,
}

struct Opened {
    file: File,
    /// Its size as far as this process knows.
    size: u64,
    /// A regular file (not `/dev/stdout` or a pipe): only those rotate and are cut back after a failure.
    regular: bool,
}

impl RotatingFile {
    fn new(path: PathBuf, max_bytes: u64, max_files: u32) -> Self {
        Self { path, max_bytes: max_bytes.max(1), max_files: max_files.max(1), open: None }
    }

    /// Appends the lines, rotating between them as needed; on failure, the batch index of the first line
    /// not written whole (a partly written line is cut off again where possible).
    fn append(&mut self, lines: &[(usize, Vec<u8>)]) -> Result<(), (usize, SendError)> {
        let max_bytes = self.max_bytes;
        let mut start = 0;
        while start < lines.len() {
            let opened = self.file().map_err(|error| (lines[start].0, error))?;
            // As many lines as fit under max_bytes (at least one into an empty file).
            let mut end = start;
            let mut bytes = 0u64;
            while let Some((_, line)) = lines.get(end) {
                let len = line.len() as u64;
                if opened.size + bytes + len > max_bytes && opened.size + bytes > 0 {
                    break;
                }
                bytes += len;
                end += 1;
            }
            if end > start {
                let chunk: Vec<u8> = lines[start..end].iter().flat_map(|(_, line)| line.iter().copied()).collect();
                if let Err(error) = opened.file.write_all(&chunk) {
                    // All or nothing: cut a partial chunk off so a retry does not leave half a line behind.
                    if opened.regular {
                        let _ = opened.file.set_len(opened.size);
                    }
                    self.open = None;
                    return Err((lines[start].0, classify(&self.path.display().to_string(), &error)));
                }
                opened.size += bytes;
                start = end;
            }
            if start < lines.len() {
                self.rotate().map_err(|error| (lines[start].0, error))?;
            }
        }
        Ok(())
    }

    /// The open file, opened (and its directory created) if needed.
    fn file(&mut self) -> Result<&mut Opened, SendError> {
        if self.open.is_none() {
            let name = self.path.display().to_string();
            if let Some(dir) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|error| {
                    let name = dir.display().to_string();
                    if error.kind() == io::ErrorKind::AlreadyExists {
                        SendError::Reject(format!(
                            "logs: cannot create directory {name}: a part of it is not a directory"
                        ))
                    } else {
                        classify(&name, &error)
                    }
                })?;
            }
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .open(&self.path)
                .map_err(|error| classify(&name, &error))?;
            let meta = file.metadata().map_err(|error| classify(&name, &error))?;
            self.open = Some(Opened { file, size: meta.len(), regular: meta.is_file() });
        }
        self.open.as_mut().ok_or_else(|| SendError::Retry(format!("logs: {} is not open", self.path.display())))
    }

    /// `path.{max-2}` → `path.{max-1}` ... `path` → `path.1`, the oldest removed. Only regular files rotate:
    /// a path such as `/dev/stdout` is written on.
    fn rotate(&mut self) -> Result<(), SendError> {
        let regular = std::fs::metadata(&self.path).map(|meta| meta.is_file()).unwrap_or(false);
        self.open = None;
        if !regular {
            return Ok(());
        }
        let numbered = |n: u32| numbered(&self.path, n);
        let fail = |path: &Path, error: io::Error| classify(&path.display().to_string(), &error);
        if self.max_files == 1 {
            return std::fs::remove_file(&self.path).map_err(|error| fail(&self.path, error));
        }
        let oldest = numbered(self.max_files - 1);
        match std::fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(fail(&oldest, error)),
        }
        for n in (1..self.max_files - 1).rev() {
            let from = numbered(n);
            match std::fs::rename(&from, numbered(n + 1)) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(fail(&from, error)),
            }
        }
        std::fs::rename(&self.path, numbered(1)).map_err(|error| fail(&self.path, error))
    }

    fn sync(&mut self) {
        if let Some(opened) = &self.open
            && let Err(error) = opened.file.sync_data()
        {
            tracing::warn!(path = %self.path.display(), %error, "logs: sync failed");
        }
    }
}

/// `path.n`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// A write error as a delivery error: refused for good when retrying cannot help (permissions, a path that
/// cannot be a file), retried otherwise (a full disk, an I/O error).
fn classify(what: &str, error: &io::Error) -> SendError {
    use io::ErrorKind::{
        AlreadyExists, InvalidFilename, InvalidInput, IsADirectory, NotADirectory, NotFound, PermissionDenied,
        ReadOnlyFilesystem, Unsupported,
    };
    let message = format!("logs: cannot write {what}: {error}");
    match error.kind() {
        PermissionDenied | ReadOnlyFilesystem | NotADirectory | IsADirectory | NotFound | InvalidInput
        | InvalidFilename | AlreadyExists | Unsupported => SendError::Reject(message),
        _ => SendError::Retry(message),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
