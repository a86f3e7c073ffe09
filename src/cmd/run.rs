//! `probenet run PATH`: run the selected checks once from this machine and print a table or JSON lines, each
//! result as soon as it is in.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use probenet_checks::{Check, Outcome, load_paths, run_once};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// A table for people.
    Table,
    /// One JSON object per check, one a line, in the order they finish.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Run only this check (repeat for several).
    #[arg(long = "check", value_name = "NAME")]
    checks: Vec<String>,
    /// Run only checks of this region, and label results with it (default: each check's first region).
    #[arg(long)]
    region: Option<String>,
    /// How to print results.
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
    /// Where files a run produces (a browser screenshot of a failing step) are written.
    #[arg(long, value_name = "DIR", default_value = "probenet-artifacts")]
    artifacts: PathBuf,
    /// How many checks run at the same time.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
}

pub fn main(args: &Args) -> ExitCode {
    let config = match load_paths(&args.paths) {
        Ok(config) => config,
        Err(errors) => {
            super::print_errors(&errors.0);
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    for name in &args.checks {
        if !config.checks.iter().any(|check| &check.name == name) {
            let hint = probenet_checks::config::suggest(name, config.checks.iter().map(|check| check.name.as_str()))
                .map(|close| format!(" (did you mean {close:?}?)"))
                .unwrap_or_default();
            eprintln!("probenet: no check named {name:?}{hint}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    }
    if let Some(region) = &args.region
        && !config.regions.contains_key(region)
    {
        let known: Vec<&str> = config.regions.keys().map(String::as_str).collect();
        eprintln!("probenet: unknown region {region:?}; declared regions: {}", known.join(", "));
        return ExitCode::from(super::EXIT_CONFIG);
    }
    let selected: Vec<(Check, String)> = config
        .checks
        .into_iter()
        .filter(|check| args.checks.is_empty() || args.checks.contains(&check.name))
        .filter_map(|check| {
            let region = match &args.region {
                Some(region) => check.regions.contains(region).then(|| region.clone())?,
                None => check.regions.first()?.clone(),
            };
            Some((check, region))
        })
        .collect();
    if selected.is_empty() {
        eprintln!("probenet: no check matches the selection");
        return ExitCode::from(super::EXIT_CONFIG);
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("probenet: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run_all(args, std::sync::Arc::new(selected)))
}

/// Runs the selected checks, printing each result as soon as it is in (in the order they finish); on Ctrl-C
/// or SIGTERM stops, keeps what finished (and the table's error lines) and exits 130.
async fn run_all(args: &Args, selected: std::sync::Arc<Vec<(Check, String)>>) -> ExitCode {
    let (done, mut results) = tokio::sync::mpsc::unbounded_channel();
    // A run's task is made only once it has a slot: a waiting task would hold the whole probe's state (tens of
    // KiB), so memory follows `--concurrency`, not the number of checks. Aborting the feeder stops every run.
    let feeder = tokio::spawn({
        let (selected, limit) = (selected.clone(), usize::from(args.concurrency));
        async move {
            let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limit));
            let mut tasks = tokio::task::JoinSet::new();
            for (index, (check, region)) in selected.iter().enumerate() {
                let Ok(slot) = slots.clone().acquire_owned().await else { break };
                let (check, region, done) = (check.clone(), region.clone(), done.clone());
                tasks.spawn(async move {
                    let outcome = run_once(&check, &region).await;
                    drop(slot);
                    let _ = done.send((index, outcome));
                });
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
    });
    let mut table = Table::new(&selected);
    let mut stdout = std::io::stdout().lock();
    if args.output == Output::Table && writeln!(stdout, "{}", table.header()).is_err() {
        return ExitCode::FAILURE;
    }
    let (mut finished, mut all_passed, mut interrupted) = (0, true, false);
    let stop = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate() => {}
        }
    };
    tokio::pin!(stop);
    loop {
        let (index, mut outcome) = tokio::select! {
            next = results.recv() => match next {
                Some(next) => next,
                None => break,
            },
            () = &mut stop => {
                interrupted = true;
                break;
            }
        };
        let Some((check, region)) = selected.get(index) else { continue };
        save_artifacts(&args.artifacts, &check.name, region, &mut outcome);
        all_passed &= outcome.success();
        finished += 1;
        let printed = match args.output {
            Output::Json => writeln!(stdout, "{}", json_line(check, region, &outcome)),
            Output::Table => writeln!(stdout, "{}", table.row(check, region, &outcome)),
        };
        if printed.and_then(|()| stdout.flush()).is_err() {
            return ExitCode::FAILURE;
        }
    }
    feeder.abort();
    if args.output == Output::Table && write!(stdout, "{}", table.notes()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    if interrupted {
        eprintln!("probenet: interrupted: {finished} of {} checks finished; the others were stopped", selected.len());
        return ExitCode::from(130);
    }
    if all_passed { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

fn json_line(check: &Check, region: &str, outcome: &Outcome) -> serde_json::Value {
    let phases: serde_json::Map<String, serde_json::Value> =
        outcome.phases.iter().map(|phase| (phase.name.clone(), phase.seconds.into())).collect();
    serde_json::json!({
        "check": check.name,
        "kind": check.kind.key(),
        "region": region,
        "target": check.kind.target(),
        "success": outcome.success(),
        "state": outcome.state,
        "duration_seconds": outcome.duration_seconds,
        "phases": phases,
        "reason": outcome.reason.map(|reason| reason.as_str()),
        "error": outcome.error,
        "assertions": outcome.assertions,
        "details": outcome.details,
        "artifacts": outcome.artifacts,
    })
}

/// Writes a run's artifacts under `dir` and records their paths; a file that cannot be written is said so
/// on stderr and left without a path.
fn save_artifacts(dir: &std::path::Path, check: &str, region: &str, outcome: &mut Outcome) {
    if outcome.artifacts.is_empty() {
        return;
    }
    if let Err(error) = std::fs::create_dir_all(dir) {
        eprintln!("probenet: cannot create {}: {error}", dir.display());
        return;
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    for artifact in &mut outcome.artifacts {
        let name: String = artifact
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
            .collect();
        let path = dir.join(format!("{check}-{region}-{stamp}-{name}"));
        match std::fs::write(&path, &artifact.data) {
            Ok(()) => {
                artifact.path = Some(path.display().to_string());
                artifact.data = Vec::new();
            }
            Err(error) => eprintln!("probenet: cannot write {}: {error}", path.display()),
        }
    }
}

/// The table output, a row at a time: columns sized from the selected checks (the result's width is known in
/// advance), error lines and saved artifacts kept for the end.
struct Table {
    widths: [usize; 5],
    notes: Vec<String>,
}

impl Table {
    fn new(selected: &[(Check, String)]) -> Self {
        let widest = |f: &dyn Fn(&(Check, String)) -> usize, title: &str| {
            selected.iter().map(f).max().unwrap_or(0).max(title.len())
        };
        let widths = [
            widest(&|(check, _)| check.name.len(), "CHECK"),
            widest(&|(check, _)| check.kind.key().len(), "KIND"),
            widest(&|(_, region)| region.len(), "REGION"),
            "degraded".len(),
            "DURATION".len(),
        ];
        Self { widths, notes: Vec::new() }
    }

    fn line(&self, cells: [&str; 6]) -> String {
        let mut out: Vec<String> =
            cells.iter().zip(&self.widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push(cells[5].to_owned());
        out.join("  ").trim_end().to_owned()
    }

    fn header(&self) -> String {
        self.line(["CHECK", "KIND", "REGION", "RESULT", "DURATION", "REASON"])
    }

    /// The row of one result; its error and artifacts are kept for [`Self::notes`].
    fn row(&mut self, check: &Check, region: &str, outcome: &Outcome) -> String {
        let result = match outcome.state {
            probenet_checks::State::Up => "up",
            probenet_checks::State::Degraded => "degraded",
            probenet_checks::State::Down => "DOWN",
        };
        if let Some(error) = &outcome.error {
            self.notes.push(format!("{}: {error}", check.name));
        }
        for artifact in &outcome.artifacts {
            if let Some(path) = &artifact.path {
                self.notes.push(format!("{}: {} saved to {path}", check.name, artifact.name));
            }
        }
        let duration = format!("{:.3}s", outcome.duration_seconds);
        let reason = outcome.reason.map_or("-", |reason| reason.as_str());
        self.line([&check.name, check.kind.key(), region, result, &duration, reason])
    }

    /// The error lines and saved artifacts of the rows printed, after a blank line; empty when none.
    fn notes(&self) -> String {
        if self.notes.is_empty() {
            return String::new();
        }
        let mut out = String::from("\n");
        for note in &self.notes {
            out.push_str(note);
            out.push('\n');
        }
        out
    }
}
