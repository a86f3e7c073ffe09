//! The archiving pass: every complete UTC day older than `archive_after` whose manifest is not in the bucket
//! yet is written (its checks' files first, the manifest last), reading the store a page at a time; a day that
//! received results after it was written (a late spool replay) is written again; what it could not write sets
//! the retention floor, so raw results are only ever deleted once archived.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use probenet_objects::Bucket;

use super::format::{CheckFile, FORMAT, FileWriter, Manifest, VERSION, Written, file_key, manifest_key};
use super::{ArchiveError, Day, Status};
use crate::store::{Pair, ResultQuery, Store, UptimeQuery};

/// Results read from the store at a time.
const PAGE: usize = 1000;

/// Archives the days due, remembering which days the bucket has so that each pass asks it only about new ones.
#[derive(Debug, Clone)]
pub struct Archiver {
    bucket: Bucket,
    after: Duration,
    /// Days whose manifest was seen or written, with the results it lists, from the oldest raw result on
    /// (older ones are forgotten).
    known: BTreeMap<Day, u64>,
    status: Arc<Status>,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pass {
    /// Days written now.
    pub written: Vec<Day>,
    /// Results written now.
    pub results: u64,
    /// Days due (complete, older than `archive_after`, with raw results) that are not archived yet.
    pub pending: Vec<Day>,
    /// Raw results planned at or after this are kept by retention: the first pending day, else the first day
    /// not due yet.
    pub floor_ms: i64,
    /// Why the pass stopped writing (the bucket down, ...): the pending days wait for the next pass.
    pub error: Option<String>,
}

impl Archiver {
    /// An archiver writing to `bucket` the days that ended more than `after` ago; it counts into `status`.
    pub fn new(bucket: Bucket, after: Duration, status: Arc<Status>) -> Self {
        Self { bucket, after, known: BTreeMap::new(), status }
    }

    /// Its counters.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// Writes the days due as of `now_ms`. A bucket error stops the writing (and is in [`Pass::error`]); an
    /// error is returned only when the store cannot say what it holds, and then no floor is known: raw
    /// results must not be pruned until a pass succeeds.
    pub async fn run(&mut self, store: &Arc<dyn Store>, now_ms: i64) -> Result<Pass, ArchiveError> {
        let result = self.pass(store, now_ms).await;
        let status = &self.status;
        match &result {
            Ok(pass) => {
                status.days.fetch_add(pass.written.len() as u64, Ordering::Relaxed);
                status.results.fetch_add(pass.results, Ordering::Relaxed);
                status.pending_days.store(pass.pending.len() as u64, Ordering::Relaxed);
                status.floor_ms.store(pass.floor_ms, Ordering::Relaxed);
                if let Some(error) = &pass.error {
                    status.failures.fetch_add(1, Ordering::Relaxed);
                    let first = pass.pending.first().map(ToString::to_string).unwrap_or_default();
                    tracing::warn!(
                        %error,
                        pending_days = pass.pending.len(),
                        kept_from = %first,
                        "the archive is behind: raw results from the first pending day on are kept until they are archived"
                    );
                } else {
                    status.last_success_ms.store(now_ms, Ordering::Relaxed);
                }
            }
            Err(error) => {
                status.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "archive pass failed: raw results are not pruned until one succeeds");
            }
        }
        result
    }

    async fn pass(&mut self, store: &Arc<dyn Store>, now_ms: i64) -> Result<Pass, ArchiveError> {
        let after_ms = i64::try_from(self.after.as_millis()).unwrap_or(i64::MAX / 4);
        // Days before this one ended at least `after` ago.
        let due_before = Day::of_ms(now_ms.saturating_sub(after_ms));
        let pairs = blocking(store, |store| store.pairs()).await?;
        let pairs = Arc::new(pairs);
        let mut pass = Pass { floor_ms: due_before.start_ms(), ..Pass::default() };
        let Some(oldest_ms) = next_planned(store, &pairs, i64::MIN).await? else {
            self.known.clear();
            return Ok(pass);
        };
        let oldest = Day::of_ms(oldest_ms);
        self.known.retain(|day, _| *day >= oldest);
        // The oldest day may have lost raw results to retention before it was archived (when the archive was
        // first enabled): it is whole only when nothing was stored before its oldest raw result.
        let oldest_is_whole = runs(store, oldest.start_ms(), oldest_ms).await? == 0;
        let mut cursor = Some(oldest_ms);
        // Each turn moves to a later day with raw results and stops at the first day not due: bounded by the
        // days of raw results kept.
        while let Some(at) = cursor {
            let day = Day::of_ms(at);
            if day >= due_before {
                break;
            }
            // Results stored since the day was written (a late replay) are archived by writing it again, while
            // its raw results are whole.
            let whole = day > oldest || oldest_is_whole;
            let archived = if pass.error.is_none() {
                match self.settle(store, &pairs, day, whole, now_ms).await {
                    Ok((results, written)) => {
                        if written {
                            pass.written.push(day);
                            pass.results += results;
                        }
                        self.known.insert(day, results);
                        true
                    }
                    Err(ArchiveError::Store(error)) => return Err(ArchiveError::Store(error)),
                    Err(error) => {
                        pass.error = Some(error.to_string());
                        false
                    }
                }
            } else {
                // The bucket failed on an earlier day: what was known archived (and has no late results) is.
                match self.known.get(&day) {
                    Some(&archived) => !whole || runs(store, day.start_ms(), day.end_ms()).await? <= archived,
                    None => false,
                }
            };
            if !archived {
                pass.floor_ms = pass.floor_ms.min(day.start_ms());
                pass.pending.push(day);
            }
            cursor = next_planned(store, &pairs, day.end_ms()).await?;
        }
        Ok(pass)
    }

    /// Makes sure the bucket has a day: its manifest is known or read, and the day is written when it has
    /// none (or a damaged one) or, while `whole`, when the store counted more runs that day than it lists.
    /// Returns the results the manifest lists, and whether the day was written now.
    async fn settle(
        &self,
        store: &Arc<dyn Store>,
        pairs: &Arc<Vec<Pair>>,
        day: Day,
        whole: bool,
        now_ms: i64,
    ) -> Result<(u64, bool), ArchiveError> {
        let archived = match self.known.get(&day) {
            Some(&archived) => Some(archived),
            None => {
                let key = manifest_key(day);
                match self.bucket.get(&key).await? {
                    None => None,
                    Some(bytes) => match Manifest::parse(&key, &bytes) {
                        Ok(manifest) => Some(manifest.results()),
                        // Written again from the raw results, which are still there.
                        Err(error) => {
                            tracing::warn!(%error, "an archived day's manifest is damaged: writing the day again");
                            None
                        }
                    },
                }
            }
        };
        if let Some(archived) = archived
            && (!whole || runs(store, day.start_ms(), day.end_ms()).await? <= archived)
        {
            return Ok((archived, false));
        }
        let results = self.write_day(store, pairs, day, now_ms).await?;
        Ok((results, true))
    }

    /// Writes a day: its checks' files, then its manifest; returns the results written.
    async fn write_day(
        &self,
        store: &Arc<dyn Store>,
        pairs: &Arc<Vec<Pair>>,
        day: Day,
        now_ms: i64,
    ) -> Result<u64, ArchiveError> {
        let manifest_key = manifest_key(day);
        let mut by_check: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in pairs.iter() {
            by_check.entry(pair.check.clone()).or_default().push(pair.region.clone());
        }
        let mut files = Vec::new();
        for (check, regions) in by_check {
            let temp = tempfile::NamedTempFile::new().map_err(ArchiveError::io("creating a temporary file"))?;
            let file = temp.reopen().map_err(ArchiveError::io("opening a temporary file"))?;
            let written = {
                let (store, check) = (store.clone(), check.clone());
                tokio::task::spawn_blocking(move || write_check(store.as_ref(), &check, &regions, day, file))
                    .await
                    .map_err(|error| ArchiveError::Task(error.to_string()))??
            };
            let Some(written) = written else { continue };
            let key = file_key(day, &check);
            self.bucket.put_file(&key, temp.path()).await?;
            let Written { results, bytes, sha256, first_planned_ms, last_planned_ms, regions } = written;
            files.push(CheckFile { check, key, results, bytes, sha256, first_planned_ms, last_planned_ms, regions });
        }
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            version: VERSION,
            day: day.to_string(),
            from_ms: day.start_ms(),
            to_ms: day.end_ms(),
            written_at_ms: now_ms,
            checks: files,
        };
        let body = serde_json::to_vec_pretty(&manifest).map_err(|error| ArchiveError::Format(error.to_string()))?;
        // Last: a manifest only ever describes files that are complete in the bucket.
        self.bucket.put(&manifest_key, Bytes::from(body)).await?;
        tracing::info!(
            day = %day,
            checks = manifest.checks.len(),
            results = manifest.results(),
            bytes = manifest.bytes(),
            "archived a day of raw results"
        );
        Ok(manifest.results())
    }
}

/// Writes one check's results of a day (every region, each oldest first) into `file`; `None` without any.
fn write_check(
    store: &dyn Store,
    check: &str,
    regions: &[String],
    day: Day,
    file: std::fs::File,
) -> Result<Option<Written>, ArchiveError> {
    let mut writer = FileWriter::new(file).map_err(ArchiveError::io("starting the compression"))?;
    for region in regions {
        let mut since = day.start_ms();
        // Each page starts after the last one's latest run (run ids are unique per pair): at most one turn
        // per PAGE results of the day, and one more.
        loop {
            let page = store.results(&ResultQuery {
                check: Some(check.to_owned()),
                region: Some(region.clone()),
                since_ms: Some(since),
                until_ms: Some(day.end_ms()),
                limit: PAGE,
                oldest_first: true,
                ..ResultQuery::default()
            })?;
            for result in &page {
                writer.push(result)?;
            }
            match page.last() {
                Some(last) if page.len() == PAGE => since = last.planned_at_ms + 1,
                _ => break,
            }
        }
    }
    if writer.results() == 0 {
        return Ok(None);
    }
    writer.finish().map(Some)
}

/// The earliest `planned_at_ms` at or after `from_ms` over every pair, if any.
async fn next_planned(
    store: &Arc<dyn Store>,
    pairs: &Arc<Vec<Pair>>,
    from_ms: i64,
) -> Result<Option<i64>, ArchiveError> {
    let pairs = pairs.clone();
    blocking(store, move |store| {
        let mut earliest: Option<i64> = None;
        for pair in pairs.iter() {
            let first = store.results(&ResultQuery {
                check: Some(pair.check.clone()),
                region: Some(pair.region.clone()),
                since_ms: Some(from_ms),
                limit: 1,
                oldest_first: true,
                ..ResultQuery::default()
            })?;
            if let Some(first) = first.first() {
                earliest = Some(earliest.map_or(first.planned_at_ms, |at: i64| at.min(first.planned_at_ms)));
            }
        }
        Ok(earliest)
    })
    .await
}

/// Runs stored in `[from_ms, to_ms)`, over every pair (from the rollups: no raw result is read).
async fn runs(store: &Arc<dyn Store>, from_ms: i64, to_ms: i64) -> Result<u64, ArchiveError> {
    if from_ms >= to_ms {
        return Ok(0);
    }
    let query = UptimeQuery { check: None, region: None, from_ms, to_ms };
    let uptime = blocking(store, move |store| store.uptime(&query)).await?;
    Ok(uptime.iter().map(|pair| u64::try_from(pair.runs).unwrap_or(0)).sum())
}

/// Runs a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    call: impl FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ArchiveError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(store.as_ref()))
        .await
        .map_err(|error| ArchiveError::Task(error.to_string()))?
        .map_err(ArchiveError::Store)
}
