//! Start lateness and memory per pair of the prober's run loop: N TCP checks against a local listener,
//! driven through the runner directly (no scheduler). Prints one JSON object; `bench/prober` runs it.
//!
//! Usage: lateness --target 127.0.0.1:PORT [--checks 10000] [--interval-seconds 10] [--seconds 40]
//!        [--warmup-seconds 10]
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use probenet_checks::wire::{self, Assignment, Assignments, ConfigFile};
use probenet_prober::plan::Planner;
use probenet_prober::{Limits, Runner, StatsHandle};
use tokio::sync::mpsc;

struct Args {
    target: String,
    checks: usize,
    interval_seconds: u64,
    seconds: u64,
    warmup_seconds: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { target: String::new(), checks: 10_000, interval_seconds: 10, seconds: 40, warmup_seconds: 10 };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|_| format!("{flag}: {value:?} is not a number"));
        match flag.as_str() {
            "--target" => args.target = value.clone(),
            "--checks" => args.checks = usize::try_from(number()?).map_err(|error| error.to_string())?,
            "--interval-seconds" => args.interval_seconds = number()?.max(1),
            "--seconds" => args.seconds = number()?,
            "--warmup-seconds" => args.warmup_seconds = number()?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.target.is_empty() {
        return Err("--target HOST:PORT is required".to_owned());
    }
    Ok(args)
}

/// Resident memory of this process, in bytes, from /proc/self/status.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("lateness: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lateness: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(bench(args));
    std::process::ExitCode::SUCCESS
}

async fn bench(args: Args) {
    // No regions declared: every check runs from the implicit `local` one. Files of 1,000 checks each stay
    // far below the YAML parser's node limit.
    let region = "local";
    let interval_ms = args.interval_seconds * 1000;
    let rss_empty = rss_bytes();
    let mut config = Vec::new();
    for first in (0..args.checks).step_by(1000) {
        let mut text = String::from("checks:\n");
        for i in first..(first + 1000).min(args.checks) {
            text.push_str(&format!(
                "  - name: c{i}\n    interval: {}s\n    timeout: 2s\n    tcp: {{target: \"{}\"}}\n",
                args.interval_seconds, args.target
            ));
        }
        config.push(ConfigFile { name: format!("bench-{first}.yaml"), text });
    }
    let assignments = Assignments {
        generation: 1,
        config_hash: "bench".to_owned(),
        config,
        assigned: (0..args.checks)
            .map(|i| {
                let check = format!("c{i}");
                let offset_ms = wire::offset_ms(&check, region, interval_ms);
                Assignment { check, region: region.to_owned(), offset_ms, resume_after_ms: None }
            })
            .collect(),
    };
    let mut planner = Planner::new();
    let plan = planner.update(&assignments);
    if !plan.config_errors.is_empty() {
        eprintln!("lateness: the generated config does not validate: {:?}", plan.config_errors);
        return;
    }
    drop(assignments);

    let stats = StatsHandle::default();
    let (tx, mut rx) = mpsc::channel::<probenet_checks::wire::RunResult>(16_384);
    let consumer = tokio::spawn(async move {
        let (mut results, mut up) = (0u64, 0u64);
        while let Some(result) = rx.recv().await {
            results += 1;
            up += u64::from(result.outcome.success());
        }
        (results, up)
    });
    let runner = Runner::start("bench", &Limits::default(), tx, &stats);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_zero_pairs = rss_bytes();

    let started = Instant::now();
    runner.apply(plan.pairs);
    drop(planner);
    tokio::time::sleep(Duration::from_secs(args.warmup_seconds)).await;
    stats.reset_lateness();
    let before = stats.snapshot();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let after = stats.snapshot();
    let rss_pairs = rss_bytes();
    let elapsed = started.elapsed().as_secs_f64();
    runner.stop(Duration::from_secs(5)).await;
    let (results, up) = consumer.await.unwrap_or_default();

    let checks = args.checks.max(1) as f64;
    let report = serde_json::json!({
        "checks": args.checks,
        "interval_seconds": args.interval_seconds,
        "measured_seconds": args.seconds,
        "runs_measured": after.runs - before.runs,
        "lateness_samples": after.lateness_samples,
        "lateness_p50_ms": after.lateness_p50_ms,
        "lateness_p99_ms": after.lateness_p99_ms,
        "lateness_max_ms": after.lateness_max_ms,
        "skipped_overrun": after.skipped_overrun,
        "skipped_busy": after.skipped_busy,
        "skipped_late": after.skipped_late,
        "results": results,
        "results_up": up,
        "elapsed_seconds": elapsed,
        "rss_empty_bytes": rss_empty,
        "rss_zero_pairs_bytes": rss_zero_pairs,
        "rss_pairs_bytes": rss_pairs,
        "bytes_per_pair": (rss_pairs as f64 - rss_zero_pairs as f64) / checks,
    });
    println!("{report}");
}
