//! The result log: the record's fields, rotation, redaction, failures counted by the queue, stdout mode.

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures, like the tests themselves

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use probenet_checks::outcome::{Artifact, Assertion, Outcome, Phase, Reason, State};
use probenet_checks::wire::RunResult;
use probenet_exporters::logs::{LogOptions, LogSink};
use probenet_exporters::{CheckMeta, Event, QueueOptions, Secrets, Sink, SinkHandle};
use serde_json::{Value, json};

const SECRET: &str = "hunter2-s3cr3t";

fn meta() -> Arc<CheckMeta> {
    Arc::new(CheckMeta {
        name: "api".into(),
        kind: probenet_checks::Kind::Http,
        target: "https://api.example/health".into(),
        labels: BTreeMap::from([("team".to_owned(), "core".to_owned())]),
    })
}

/// A failed HTTP result planned at `2026-11-18T12:00:00.000Z + i s`, started 250 ms late.
fn result(i: i64) -> Arc<RunResult> {
    let planned = 1_795_003_200_000 + i * 1_000;
    Arc::new(RunResult {
        check: "api".into(),
        region: "eu".into(),
        planned_at_ms: planned,
        started_at_ms: planned + 250,
        prober: "p1".into(),
        outcome: Outcome {
            state: State::Down,
            duration_seconds: 0.5,
            phases: vec![
                Phase { name: "connect".into(), seconds: 0.125 },
                Phase { name: "processing".into(), seconds: 0.25 },
                Phase { name: "connect".into(), seconds: 0.125 },
            ],
            reason: Some(Reason::Status),
            error: Some("status: expected 200, got 503".into()),
            assertions: vec![Assertion {
                name: "status".into(),
                expected: "200".into(),
                observed: "503".into(),
                passed: false,
            }],
            details: json!({"status_code": 503, "http_version": "HTTP/1.1", "headers": {"server": "x"}, "tls": false}),
            log: vec!["GET https://api.example/health".into()],
            artifacts: vec![Artifact {
                name: "body.txt".into(),
                media_type: "text/plain".into(),
                data: vec![1, 2, 3],
                path: Some("/var/lib/probenet/a/body.txt".into()),
            }],
        },
    })
}

fn event(i: i64) -> Event {
    Event::Result { check: meta(), result: result(i) }
}

fn fast() -> QueueOptions {
    QueueOptions {
        max_batch: 7,
        linger: Duration::from_millis(2),
        min_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        ..QueueOptions::default()
    }
}

/// A writer into shared memory, standing in for stdout.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>, Arc<Mutex<u32>>);

impl Write for Shared {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut failures = self.1.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(std::io::Error::other("pipe trouble"));
        }
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"))).collect()
}

/// `planned_at` of every line of `path`, in file order.
fn planned(path: &Path) -> Vec<i64> {
    let text = std::fs::read_to_string(path).unwrap();
    lines(&text).iter().map(index).collect()
}

/// The `i` a line was made from (its planned second after the base).
fn index(line: &Value) -> i64 {
    let planned = line["planned_at"].as_str().unwrap();
    let (minute, second) = (&planned[14..16], &planned[17..19]);
    let hour: i64 = planned[11..13].parse().unwrap();
    (hour - 12) * 3_600 + minute.parse::<i64>().unwrap() * 60 + second.parse::<i64>().unwrap()
}

#[tokio::test]
async fn stdout_mode_writes_one_exact_record_per_result_and_nothing_for_removals() {
    let out = Shared::default();
    let region_labels = [("eu".to_owned(), [("provider".to_owned(), "aws".to_owned())].into())].into();
    let sink = LogSink::to_writer(out.clone(), LogOptions { region_labels, ..LogOptions::default() });
    let removed = Event::Removed { check: meta(), region: "eu".into(), at_ms: 1 };
    sink.send(&[event(0), removed, event(1)]).await.unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let got = lines(&text);
    assert_eq!(got.len(), 2, "{text}");
    let expected = json!({
        "ts": "2026-11-18T12:00:00.250Z",
        "check": "api",
        "kind": "http",
        "target": "https://api.example/health",
        "region": "eu",
        "prober": "p1",
        "planned_at": "2026-11-18T12:00:00.000Z",
        "started_at": "2026-11-18T12:00:00.250Z",
        "lateness_ms": 250,
        "success": false,
        "state": "down",
        "reason": "status",
        "error": "status: expected 200, got 503",
        "duration_seconds": 0.5,
        "phases": {"connect": 0.25, "processing": 0.25},
        "assertions": [{"name": "status", "expected": "200", "observed": "503", "passed": false}],
        "labels": {"team": "core"},
        "region_labels": {"provider": "aws"},
        "artifacts": [{"name": "body.txt", "media_type": "text/plain", "path": "/var/lib/probenet/a/body.txt"}],
        "details": {"status_code": 503, "http_version": "HTTP/1.1"},
    });
    assert_eq!(got[0], expected);
    // Field order is part of the format (the parse keeps it).
    let keys: Vec<&str> = got[0].as_object().unwrap().keys().map(String::as_str).collect();
    let order = "ts check kind target region prober planned_at started_at lateness_ms success state reason error \
                 duration_seconds phases assertions labels region_labels artifacts details";
    assert_eq!(keys, order.split_whitespace().collect::<Vec<_>>());
    assert!(text.starts_with("{\"ts\":\"2026-11-18T12:00:00.250Z\",\"check\":\"api\","), "{text}");
    assert_eq!(got[1]["planned_at"], "2026-11-18T12:00:01.000Z");

    // The outcome's log only when asked.
    let out = Shared::default();
    let sink = LogSink::to_writer(out.clone(), LogOptions { include_log: true, ..LogOptions::default() });
    sink.send(&[event(0)]).await.unwrap();
    let got = lines(std::str::from_utf8(&out.0.lock().unwrap()).unwrap());
    assert_eq!(got[0]["log"], json!(["GET https://api.example/health"]));
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let out = Shared::default();
    let options = LogOptions { secrets: Secrets::new([SECRET]), ..LogOptions::default() };
    let sink = LogSink::to_writer(out.clone(), options);
    let mut leaky = (*result(0)).clone();
    leaky.outcome.error = Some(format!("connect: token {SECRET} refused"));
    leaky.outcome.assertions[0].observed = SECRET.into();
    leaky.outcome.details = json!({"final_url": format!("https://h/?key={SECRET}")});
    let mut check = (*meta()).clone();
    check.labels.insert("note".into(), SECRET.into());
    sink.send(&[Event::Result { check: Arc::new(check), result: Arc::new(leaky) }]).await.unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains(SECRET), "{text}");
    let got = &lines(&text)[0];
    assert_eq!(got["error"], "connect: token [redacted] refused");
    assert_eq!(got["assertions"][0]["observed"], "[redacted]");
    assert_eq!(got["details"]["final_url"], "https://h/?key=[redacted]");
    assert_eq!(got["labels"]["note"], "[redacted]");
}

#[tokio::test]
async fn rotation_keeps_every_line_until_files_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/logs/results.jsonl");
    let line_len = {
        let out = Shared::default();
        LogSink::to_writer(out.clone(), LogOptions::default()).send(&[event(0)]).await.unwrap();
        out.0.lock().unwrap().len() as u64
    };
    // Four lines per file; 200 results make 50 files: all kept, so none may be missing or doubled.
    let options = |path: &Path, max_files| LogOptions {
        path: Some(path.to_owned()),
        max_bytes: line_len * 4 + line_len / 2,
        max_files,
        ..LogOptions::default()
    };
    let handle = SinkHandle::spawn("log", Arc::new(LogSink::new(options(&path, 100))), fast());
    for i in 0..200 {
        handle.offer(event(i));
    }
    handle.close(Duration::from_secs(20)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.dropped, counters.retried), (200, 0, 0), "{counters:?}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let mut all = Vec::new();
    for n in (1..50).rev() {
        let file = dir.path().join(format!("nested/logs/results.jsonl.{n}"));
        assert!(std::fs::metadata(&file).unwrap().len() <= line_len * 4 + line_len / 2);
        all.extend(planned(&file));
    }
    all.extend(planned(&path));
    assert_eq!(all, (0..200).collect::<Vec<_>>());
    assert!(!dir.path().join("nested/logs/results.jsonl.50").exists());

    // With 3 files kept, exactly 3 exist and they hold the newest lines, in order, with no gap.
    let kept = tempfile::tempdir().unwrap();
    let path = kept.path().join("results.jsonl");
    let handle = SinkHandle::spawn("log", Arc::new(LogSink::new(options(&path, 3))), fast());
    for i in 0..200 {
        handle.offer(event(i));
    }
    handle.close(Duration::from_secs(20)).await;
    let mut names: Vec<String> = std::fs::read_dir(kept.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["results.jsonl", "results.jsonl.1", "results.jsonl.2"]);
    let mut tail = planned(&kept.path().join("results.jsonl.2"));
    tail.extend(planned(&kept.path().join("results.jsonl.1")));
    tail.extend(planned(&path));
    assert_eq!(tail, (200 - tail.len() as i64..200).collect::<Vec<_>>());
    assert!((9..=12).contains(&tail.len()), "{}", tail.len());
}

#[tokio::test]
async fn a_batch_retried_after_a_failed_rotation_writes_no_line_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.jsonl");
    let line_len = {
        let out = Shared::default();
        LogSink::to_writer(out.clone(), LogOptions::default()).send(&[event(0)]).await.unwrap();
        out.0.lock().unwrap().len() as u64
    };
    let sink = LogSink::new(LogOptions {
        path: Some(path.clone()),
        max_bytes: line_len * 3,
        max_files: 3,
        ..LogOptions::default()
    });
    // results.jsonl.2 (the oldest, to be deleted) is a directory: the first rotation fails after three lines.
    std::fs::create_dir(dir.path().join("results.jsonl.2")).unwrap();
    let batch: Vec<Event> = (0..5).map(event).collect();
    let error = sink.send(&batch).await.unwrap_err();
    assert!(error.to_string().contains("results.jsonl"), "{error}");
    assert_eq!(planned(&path), [0, 1, 2]);
    std::fs::remove_dir(dir.path().join("results.jsonl.2")).unwrap();
    sink.send(&batch).await.unwrap();
    let mut all = planned(&dir.path().join("results.jsonl.1"));
    all.extend(planned(&path));
    assert_eq!(all, [0, 1, 2, 3, 4]);
    assert!(!dir.path().join("results.jsonl.2").exists(), "lines were written twice");
    // A new batch is written whole.
    sink.send(&[event(5)]).await.unwrap();
    assert_eq!(planned(&path), [3, 4, 5]);
}

#[tokio::test]
async fn an_impossible_path_is_refused_with_its_name_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let path = blocker.join("results.jsonl");
    let handle = SinkHandle::spawn(
        "log",
        Arc::new(LogSink::new(LogOptions { path: Some(path), ..LogOptions::default() })),
        fast(),
    );
    for i in 0..3 {
        handle.offer(event(i));
    }
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.retried, counters.dropped), (0, 0, 3), "{counters:?}");
    let message = counters.last_error.unwrap();
    assert!(message.starts_with("logs: cannot "), "{message}");
    assert!(message.contains(&blocker.display().to_string()), "{message}");
    assert!(message.to_lowercase().contains("not a directory"), "{message}");
}

#[tokio::test]
async fn a_full_disk_is_retried_then_dropped_and_counted() {
    // /dev/full answers every write with ENOSPC. It is not a regular file, so it is never rotated.
    assert!(Path::new("/dev/full").exists(), "/dev/full is missing");
    let options = LogOptions { path: Some("/dev/full".into()), ..LogOptions::default() };
    let handle = SinkHandle::spawn("log", Arc::new(LogSink::new(options)), QueueOptions { max_attempts: 3, ..fast() });
    handle.offer(event(0));
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.retried, counters.dropped), (0, 2, 1), "{counters:?}");
    let message = counters.last_error.unwrap();
    assert!(message.contains("/dev/full") && message.to_lowercase().contains("no space"), "{message}");
    assert!(Path::new("/dev/full").exists() && !Path::new("/dev/full.1").exists());
}

#[tokio::test]
async fn a_failing_writer_is_retried_without_loss() {
    let out = Shared::default();
    *out.1.lock().unwrap() = 2;
    let handle = SinkHandle::spawn("log", Arc::new(LogSink::to_writer(out.clone(), LogOptions::default())), fast());
    for i in 0..20 {
        handle.offer(event(i));
    }
    handle.close(Duration::from_secs(10)).await;
    let counters = handle.counters();
    assert_eq!((counters.sent, counters.retried, counters.dropped), (20, 2, 0), "{counters:?}");
    let got = lines(std::str::from_utf8(&out.0.lock().unwrap()).unwrap());
    assert_eq!(got.iter().map(index).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
}
