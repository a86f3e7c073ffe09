//! Artifacts (browser screenshots...) in the object store, when the config sets `objects`: every replica reads
//! them from the bucket, and they outlive any machine.
//!
//! Ingest never waits for the bucket: the bytes of a batch's artifacts are written to this scheduler's spool
//! (`DATA/objects-spool/artifacts/...`, fsynced) before the batch is stored and acknowledged, and the result
//! records the object key. An uploader moves spooled files to the bucket at once, or, while the bucket is
//! down, retries with a growing pause; `/metrics` says how many wait. Reads look in the spool first (an
//! artifact not uploaded yet is still served by the replica that holds it), then in the bucket. Retention
//! deletes the bucket's day folders older than the raw results' retention (the leader's duty).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use probenet_checks::wire::RunResult;
use probenet_exporters::store::StoreError;
use probenet_exporters::store::artifacts::{self as keys, OBJECT_FOLDER};
use probenet_objects::Bucket;
use tokio::sync::{Notify, watch};

/// The spool folder under the data directory.
const SPOOL: &str = "objects-spool";
/// Where spooled files are written before they are renamed into place.
const TEMPORARY: &str = "partial";
/// The longest pause between upload attempts while the bucket is down.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The bucket for artifacts, the spool in front of it and what the uploader has done.
#[derive(Debug)]
pub struct Artifacts {
    bucket: Bucket,
    spool: PathBuf,
    wake: Notify,
    /// Serialises spool scans so two uploads of one file never overlap.
    uploading: tokio::sync::Mutex<()>,
    pending: AtomicU64,
    pending_bytes: AtomicU64,
    uploaded: AtomicU64,
    failures: AtomicU64,
    pruned: AtomicU64,
    up: AtomicBool,
}

impl Artifacts {
    /// Uses `bucket`, spooling under `data`; counts what a previous run left in the spool (uploaded next).
    pub fn new(bucket: Bucket, data: &Path) -> std::io::Result<Arc<Self>> {
        let spool = data.join(SPOOL);
        std::fs::create_dir_all(spool.join(OBJECT_FOLDER))?;
        // Half-written files of a crash: their batch was not acknowledged, so the prober sends it again.
        let _ = std::fs::remove_dir_all(spool.join(TEMPORARY));
        std::fs::create_dir_all(spool.join(TEMPORARY))?;
        let artifacts = Self {
            bucket,
            spool,
            wake: Notify::new(),
            uploading: tokio::sync::Mutex::new(()),
            pending: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
            uploaded: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            pruned: AtomicU64::new(0),
            up: AtomicBool::new(true),
        };
        let spooled = artifacts.spooled();
        artifacts.pending.store(spooled.len() as u64, Ordering::Relaxed);
        artifacts.pending_bytes.store(spooled.iter().map(|(_, size)| size).sum(), Ordering::Relaxed);
        Ok(Arc::new(artifacts))
    }

    /// The bucket.
    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// Moves the bytes of every artifact of `results` to the spool and records their object keys in the
    /// results (which then carry no bytes). Blocking (file writes and fsyncs): call it off the async workers,
    /// before the batch is stored. A result whose artifact cannot be spooled fails the batch (the prober keeps
    /// it and sends it again).
    pub fn spool(&self, results: &mut [RunResult]) -> Result<(), StoreError> {
        let mut dirs = Vec::new();
        let (mut count, mut bytes) = (0_u64, 0_u64);
        for result in results.iter_mut() {
            for (index, artifact) in result.outcome.artifacts.iter_mut().enumerate() {
                if artifact.data.is_empty() {
                    continue;
                }
                let key = keys::object_key(&result.check, &result.region, result.planned_at_ms, index, &artifact.name);
                let dir = self.write(&key, &artifact.data)?;
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
                count += 1;
                bytes += artifact.data.len() as u64;
                artifact.data = Vec::new();
                artifact.path = Some(key);
            }
        }
        dirs.push(self.spool.join(TEMPORARY));
        for dir in &dirs {
            keys::sync_dir(dir)?;
        }
        if count > 0 {
            self.pending.fetch_add(count, Ordering::Relaxed);
            self.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Writes one spooled file whole: to a temporary name, fsynced, then renamed to its key (so the uploader
    /// never reads half a file); returns its folder (to fsync once per batch).
    fn write(&self, key: &str, data: &[u8]) -> Result<PathBuf, StoreError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let temporary = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let written = keys::write(&self.spool.join(TEMPORARY), &temporary, data)?;
        let path = self.spool.join(key);
        let dir = path.parent().map_or_else(|| self.spool.clone(), Path::to_path_buf);
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::rename(written.join(&temporary), &path))
            .map_err(StoreError::io(format!("spooling artifact {key}")))?;
        Ok(dir)
    }

    /// The bytes of the artifact at `key` (a path recorded by [`Artifacts::spool`]): from the spool while it
    /// waits there, else from the bucket. `Ok(None)` when neither has it. Blocking: call it off the async
    /// workers (it waits on the bucket through the current runtime).
    pub fn read(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if !keys::is_object_key(key) {
            return Ok(None);
        }
        match std::fs::read(self.spool.join(key)) {
            Ok(data) => return Ok(Some(data)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(format!("reading the spooled artifact {key}: {error}")),
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|error| error.to_string())?;
        match handle.block_on(self.bucket.get(key)) {
            Ok(found) => Ok(found.map(|data| data.to_vec())),
            // Uploaded between the two looks: the bucket has it now.
            Err(error) => Err(error.to_string()),
        }
    }

    /// Uploads spooled artifacts until `stopping`: at once when some are spooled, and again after a pause
    /// (1 s doubling to 30 s) while the bucket fails.
    pub async fn upload(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let mut pause = Duration::from_secs(1);
        loop {
            let clean = self.upload_spooled().await;
            let wait = if clean {
                pause = Duration::from_secs(1);
                Duration::from_secs(60)
            } else {
                let wait = pause;
                pause = (pause * 2).min(MAX_PAUSE);
                wait
            };
            tokio::select! {
                () = self.wake.notified(), if clean => {}
                () = tokio::time::sleep(wait) => {}
                () = crate::server::stopped(&mut stopping) => return,
            }
        }
    }

    /// One pass over the spool: uploads each file and removes it once the bucket has it. True when the spool
    /// is empty afterwards.
    async fn upload_spooled(&self) -> bool {
        let _one = self.uploading.lock().await;
        let spool = self.spool.clone();
        let spooled = tokio::task::spawn_blocking(move || spooled_in(&spool)).await.unwrap_or_default();
        for (key, size) in spooled {
            let path = self.spool.join(&key);
            let data = match tokio::fs::read(&path).await {
                Ok(data) => data,
                Err(error) => {
                    tracing::warn!(%error, key, "a spooled artifact could not be read; it stays in the spool");
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            };
            if let Err(error) = self.bucket.put(&key, Bytes::from(data)).await {
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, "artifacts wait on this scheduler's disk until the bucket answers");
                }
                self.failures.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            if !self.up.swap(true, Ordering::Relaxed) {
                tracing::info!(bucket = self.bucket.url(), "the bucket answers again; uploading spooled artifacts");
            }
            if let Err(error) = tokio::fs::remove_file(&path).await {
                tracing::warn!(%error, key, "an uploaded artifact could not be removed from the spool");
            }
            self.uploaded.fetch_add(1, Ordering::Relaxed);
            let _ = self.pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
            let _ =
                self.pending_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(size)));
        }
        true
    }

    /// Deletes the bucket's artifact days before the UTC day of `before_ms` (the raw results' retention).
    pub async fn prune(&self, before_ms: i64) -> Result<usize, probenet_objects::BucketError> {
        let cut = before_ms.div_euclid(probenet_exporters::store::rollup::DAY_MS);
        let mut deleted = 0;
        for day in self.bucket.folders(OBJECT_FOLDER).await? {
            if day.parse::<i64>().is_ok_and(|day| day < cut) {
                deleted += self.bucket.delete_folder(&format!("{OBJECT_FOLDER}/{day}")).await?;
            }
        }
        self.pruned.fetch_add(deleted as u64, Ordering::Relaxed);
        Ok(deleted)
    }

    /// This component's series.
    pub fn families(&self) -> Vec<probenet_exporters::FamilySamples> {
        use probenet_exporters::{FamilySamples, MetricType};
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed) as f64;
        vec![
            FamilySamples::single(
                "probenet_objects_up",
                "1 while the bucket takes uploads, 0 while artifacts wait on this scheduler's disk.",
                MetricType::Gauge,
                f64::from(u8::from(self.up.load(Ordering::Relaxed))),
            ),
            FamilySamples::single(
                "probenet_objects_pending_artifacts",
                "Artifacts on this scheduler's disk waiting for the bucket.",
                MetricType::Gauge,
                load(&self.pending),
            ),
            FamilySamples::single(
                "probenet_objects_pending_bytes",
                "Bytes of artifacts waiting for the bucket.",
                MetricType::Gauge,
                load(&self.pending_bytes),
            ),
            FamilySamples::single(
                "probenet_objects_uploaded_artifacts_total",
                "Artifacts uploaded to the bucket.",
                MetricType::Counter,
                load(&self.uploaded),
            ),
            FamilySamples::single(
                "probenet_objects_upload_failures_total",
                "Failed uploads (retried).",
                MetricType::Counter,
                load(&self.failures),
            ),
            FamilySamples::single(
                "probenet_objects_pruned_artifacts_total",
                "Artifacts deleted from the bucket by retention.",
                MetricType::Counter,
                load(&self.pruned),
            ),
        ]
    }

    /// Every spooled file: (key, size).
    fn spooled(&self) -> Vec<(String, u64)> {
        spooled_in(&self.spool)
    }
}

/// The files under `spool/artifacts` as (key relative to `spool`, size), in key order.
fn spooled_in(spool: &Path) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    let mut dirs = vec![spool.join(OBJECT_FOLDER)];
    // Keys are four folders deep (artifacts/DAY/CHECK/REGION/FILE): a bounded walk.
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            if kind.is_dir() && path.strip_prefix(spool).map_or(0, |relative| relative.components().count()) <= 4 {
                dirs.push(path);
            } else if kind.is_file() {
                let Some(key) = path.strip_prefix(spool).ok().and_then(|relative| relative.to_str()) else { continue };
                if keys::is_object_key(key) {
                    found.push((key.to_owned(), entry.metadata().map_or(0, |metadata| metadata.len())));
                }
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use probenet_checks::outcome::{Artifact, Outcome, Reason};
    use probenet_exporters::store::rollup::DAY_MS;

    use super::*;

    fn bucket(dir: &Path) -> Bucket {
        let yaml = format!("objects: file://{}\n", dir.join("bucket").display());
        let config = probenet_checks::config::load_str("c.yaml", &yaml).unwrap();
        Bucket::open(config.objects.as_ref().unwrap(), &mut Vec::new()).unwrap()
    }

    fn with_screenshot(check: &str, planned_at_ms: i64, data: &[u8]) -> RunResult {
        let mut outcome = Outcome::failed(Reason::Assertion, "no".to_owned());
        outcome.artifacts.push(Artifact {
            name: "failure.png".into(),
            media_type: "image/png".into(),
            data: data.to_vec(),
            path: None,
        });
        RunResult {
            check: check.into(),
            region: "eu".into(),
            planned_at_ms,
            started_at_ms: planned_at_ms,
            prober: "p".into(),
            outcome,
        }
    }

    fn pending(artifacts: &Artifacts) -> (u64, u64) {
        (artifacts.pending.load(Ordering::Relaxed), artifacts.pending_bytes.load(Ordering::Relaxed))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spooled_then_uploaded_and_what_a_restart_finds_is_uploaded_too() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(bucket(dir.path()), &dir.path().join("data")).unwrap();
        let mut results = vec![with_screenshot("home", DAY_MS * 3 + 5, b"one"), with_screenshot("api", 7, b"three")];
        artifacts.spool(&mut results).unwrap();
        let keys: Vec<String> = results.iter().map(|r| r.outcome.artifacts[0].path.clone().unwrap()).collect();
        assert_eq!(keys, ["artifacts/3/home/eu/259200005-0-failure.png", "artifacts/0/api/eu/7-0-failure.png"]);
        assert!(results.iter().all(|r| r.outcome.artifacts[0].data.is_empty()), "the bytes left the result");
        assert_eq!(pending(&artifacts), (2, 8));
        // Served from the spool before the upload.
        let reader = artifacts.clone();
        let key = keys[0].clone();
        let read = tokio::task::spawn_blocking(move || reader.read(&key)).await.unwrap();
        assert_eq!(read, Ok(Some(b"one".to_vec())));
        assert!(artifacts.upload_spooled().await);
        assert_eq!(pending(&artifacts), (0, 0));
        assert_eq!(artifacts.bucket.get(&keys[1]).await.unwrap().as_deref(), Some(&b"three"[..]));
        assert!(spooled_in(&artifacts.spool).is_empty());
        // Served from the bucket after; a path that is not an object key is never looked up.
        let reader = artifacts.clone();
        let key = keys[1].clone();
        assert_eq!(tokio::task::spawn_blocking(move || reader.read(&key)).await.unwrap(), Ok(Some(b"three".to_vec())));
        let reader = artifacts.clone();
        assert_eq!(tokio::task::spawn_blocking(move || reader.read("../../etc/passwd")).await.unwrap(), Ok(None));

        // What a scheduler stopped before uploading left in its spool is counted, then uploaded, at the next start.
        let mut later = vec![with_screenshot("home", DAY_MS * 4, b"four")];
        artifacts.spool(&mut later).unwrap();
        drop(artifacts);
        let again = Artifacts::new(bucket(dir.path()), &dir.path().join("data")).unwrap();
        assert_eq!(pending(&again), (1, 4));
        assert!(again.upload_spooled().await);
        let key = later[0].outcome.artifacts[0].path.clone().unwrap();
        assert_eq!(again.bucket.get(&key).await.unwrap().as_deref(), Some(&b"four"[..]));
    }

    #[tokio::test]
    async fn retention_deletes_whole_days_before_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(bucket(dir.path()), &dir.path().join("data")).unwrap();
        let mut results: Vec<RunResult> = (0..10).map(|day| with_screenshot("home", DAY_MS * day + 1, b"x")).collect();
        artifacts.spool(&mut results).unwrap();
        assert!(artifacts.upload_spooled().await);
        assert_eq!(artifacts.prune(DAY_MS * 7 + 5).await.unwrap(), 7);
        let days = artifacts.bucket.folders(OBJECT_FOLDER).await.unwrap();
        assert_eq!(days, ["7", "8", "9"]);
        assert_eq!(artifacts.prune(DAY_MS * 7).await.unwrap(), 0, "nothing twice");
    }
}
