//! The spool on real files: write and read back, the byte bound dropping the oldest segments with a count,
//! replay order, a restart, and directories that cannot be written.
#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

use probenet_checks::wire::RunResult;
use probenet_checks::{Outcome, Reason};
use probenet_prober::spool::{OpenError, Spool};

fn result(check: &str, planned_at_ms: i64) -> RunResult {
    RunResult {
        check: check.to_owned(),
        region: "eu-west".to_owned(),
        planned_at_ms,
        started_at_ms: planned_at_ms + 1,
        prober: "p1".to_owned(),
        outcome: Outcome::failed(Reason::Connect, "connection refused"),
    }
}

fn batch(first: i64, count: i64) -> Vec<RunResult> {
    (first..first + count).map(|i| result("c", i * 1000)).collect()
}

fn segment_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".jsonl"))
        .collect();
    names.sort();
    names
}

#[test]
fn batches_are_written_synced_and_read_back_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.oldest(), None);
    for i in 0..3 {
        let pushed = spool.push(&batch(i * 10, 10)).unwrap();
        assert_eq!((pushed.written, pushed.dropped), (10, 0));
    }
    assert_eq!(spool.results(), 30);
    assert_eq!(segment_files(dir.path()).len(), 3);
    let on_disk: u64 =
        segment_files(dir.path()).iter().map(|name| dir.path().join(name).metadata().unwrap().len()).sum();
    assert_eq!(spool.bytes(), on_disk);

    let mut replayed = Vec::new();
    while let Some(segment) = spool.oldest() {
        let (results, bad) = spool.read(segment.seq).unwrap();
        assert_eq!(bad, 0);
        assert_eq!(results.len(), segment.results);
        replayed.extend(results);
        spool.remove(segment.seq).unwrap();
    }
    assert_eq!(replayed, batch(0, 30), "every result, in the order written");
    assert_eq!(spool.bytes(), 0);
    assert!(segment_files(dir.path()).is_empty());
    // Removing twice is harmless.
    assert_eq!(spool.remove(1).unwrap(), None);
}

#[test]
fn the_bound_drops_the_oldest_segments_and_counts_their_results() {
    let dir = tempfile::tempdir().unwrap();
    let one = {
        let probe_dir = tempfile::tempdir().unwrap();
        let mut probe = Spool::open(probe_dir.path(), u64::MAX).unwrap();
        probe.push(&batch(0, 10)).unwrap();
        probe.bytes()
    };
    // Room for three segments of this size, not four.
    let mut spool = Spool::open(dir.path(), one * 3 + one / 2).unwrap();
    let mut dropped = 0;
    for i in 0..6 {
        let pushed = spool.push(&batch(i * 10, 10)).unwrap();
        assert_eq!(pushed.written, 10);
        dropped += pushed.dropped;
        assert!(spool.bytes() <= one * 3 + one / 2, "bounded: {} bytes", spool.bytes());
    }
    assert_eq!(dropped, 30, "the three oldest batches were dropped and counted");
    assert_eq!(spool.results(), 30);
    let (oldest, _) = spool.read(spool.oldest().unwrap().seq).unwrap();
    assert_eq!(oldest[0].planned_at_ms, 30_000, "what is left is the newest");

    // A batch larger than the whole spool is refused and counted, and nothing else is dropped.
    let mut tiny = Spool::open(tempfile::tempdir().unwrap().path(), 100).unwrap();
    let pushed = tiny.push(&batch(0, 10)).unwrap();
    assert_eq!((pushed.written, pushed.dropped), (0, 10));
    assert_eq!(tiny.results(), 0);
}

#[test]
fn a_pinned_segment_is_not_dropped_to_make_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
    spool.push(&batch(0, 10)).unwrap();
    let size = spool.bytes();
    drop(spool);
    let mut spool = Spool::open(dir.path(), size * 2 + size / 2).unwrap();
    spool.push(&batch(10, 10)).unwrap();
    let first = spool.oldest().unwrap().seq;
    spool.pin(Some(first));
    let pushed = spool.push(&batch(20, 10)).unwrap();
    assert_eq!(pushed.dropped, 10);
    assert_eq!(spool.oldest().unwrap().seq, first, "the segment being replayed stays");
    let planned: Vec<i64> =
        spool.segments().map(|segment| spool.read(segment.seq).unwrap().0[0].planned_at_ms).collect();
    assert_eq!(planned, [0, 20_000]);
}

#[test]
fn the_spool_survives_a_restart_and_ignores_half_written_files() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.push(&batch(0, 5)).unwrap();
        spool.push(&batch(5, 5)).unwrap();
    }
    // A crash during a write leaves a .tmp file; it is removed, never replayed.
    std::fs::write(dir.path().join("00000000000000000099-3.jsonl.tmp"), "{\"half").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a segment").unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.results(), 10);
    assert!(!dir.path().join("00000000000000000099-3.jsonl.tmp").exists());
    let first = spool.oldest().unwrap();
    assert_eq!(spool.read(first.seq).unwrap().0, batch(0, 5));
    spool.push(&batch(10, 5)).unwrap();
    let seqs: Vec<u64> = spool.segments().map(|segment| segment.seq).collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "new segments come after the old ones: {seqs:?}");
    assert_eq!(spool.results(), 15);
}

#[test]
fn corrupt_lines_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.push(&batch(0, 3)).unwrap();
    let name = &segment_files(dir.path())[0];
    let path = dir.path().join(name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{not json}\n");
    std::fs::write(&path, text).unwrap();
    let (results, bad) = spool.read(spool.oldest().unwrap().seq).unwrap();
    assert_eq!((results.len(), bad), (3, 1));
}

#[test]
fn a_second_prober_cannot_share_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Spool::open(dir.path(), 1 << 20).unwrap();
    assert!(matches!(Spool::open(dir.path(), 1 << 20), Err(OpenError::Locked(_))));
}

#[test]
fn directories_that_cannot_be_written_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    // A path under a regular file cannot be a directory (this also holds for root, unlike permissions).
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    match Spool::open(&file.join("spool"), 1 << 20) {
        Err(OpenError::Io { .. }) => {}
        other => panic!("expected an i/o error, got {other:?}"),
    }

    // A spool whose directory disappears (or fills up) under it: the push fails, nothing is dropped.
    let spool_dir = dir.path().join("spool");
    let mut spool = Spool::open(&spool_dir, 1 << 20).unwrap();
    spool.push(&batch(0, 2)).unwrap();
    std::fs::remove_dir_all(&spool_dir).unwrap();
    assert!(spool.push(&batch(2, 2)).is_err());
    assert_eq!(spool.results(), 2, "the failed batch was not counted in");
    assert!(spool.read(spool.oldest().unwrap().seq).is_err());
}
