//! `probenet run PATH`: run the selected checks once from this machine and print a table or JSON lines.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use probenet_checks::{Check, Outcome, load_paths, run_once};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// A table for people.
    Table,
    /// One JSON object per check, one a line.
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
    let mut outcomes = runtime.block_on(run_all(&selected, usize::from(args.concurrency)));
    for (outcome, (check, region)) in outcomes.iter_mut().zip(&selected) {
        save_artifacts(&args.artifacts, &check.name, region, outcome);
    }
    let all_passed = outcomes.iter().all(Outcome::success);
    let mut stdout = std::io::stdout().lock();
    let printed = match args.output {
        Output::Json => outcomes
            .iter()
            .zip(&selected)
            .try_for_each(|(outcome, (check, region))| writeln!(stdout, "{}", json_line(check, region, outcome))),
        Output::Table => write!(stdout, "{}", table(&selected, &outcomes)),
    };
    if printed.is_err() {
        return ExitCode::FAILURE;
    }
    if all_passed { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

async fn run_all(selected: &[(Check, String)], concurrency: usize) -> Vec<Outcome> {
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for (check, region) in selected {
        let (check, region, limit) = (check.clone(), region.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            run_once(&check, &region).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap_or_else(|error| {
            Outcome::failed(probenet_checks::Reason::Protocol, format!("the check crashed: {error}"))
        }));
    }
    outcomes
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

fn table(selected: &[(Check, String)], outcomes: &[Outcome]) -> String {
    let mut rows = vec![["CHECK", "KIND", "REGION", "RESULT", "DURATION", "REASON"].map(str::to_owned).to_vec()];
    let mut errors = Vec::new();
    for ((check, region), outcome) in selected.iter().zip(outcomes) {
        let result = match outcome.state {
            probenet_checks::State::Up => "up",
            probenet_checks::State::Degraded => "degraded",
            probenet_checks::State::Down => "DOWN",
        };
        rows.push(vec![
            check.name.clone(),
            check.kind.key().to_owned(),
            region.clone(),
            result.to_owned(),
            format!("{:.3}s", outcome.duration_seconds),
            outcome.reason.map(|reason| reason.as_str().to_owned()).unwrap_or_else(|| "-".to_owned()),
        ]);
        if let Some(error) = &outcome.error {
            errors.push(format!("{}: {error}", check.name));
        }
        for artifact in &outcome.artifacts {
            if let Some(path) = &artifact.path {
                errors.push(format!("{}: {} saved to {path}", check.name, artifact.name));
            }
        }
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|i| rows.iter().map(|row| row[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if !errors.is_empty() {
        out.push('\n');
        for error in errors {
            out.push_str(&error);
            out.push('\n');
        }
    }
    out
}
