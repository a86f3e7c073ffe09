//! `probenet validate PATH...`: load, validate and check secrets; print a summary and every warning, or every
//! error.

use std::path::PathBuf;
use std::process::ExitCode;

use probenet_checks::config::{load_paths, load_paths_checking_secrets};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config files or directories (every *.yaml and *.yml inside, merged).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Do not check that `${env:..}` and `${file:..}` secrets resolve on this machine.
    #[arg(long)]
    skip_secrets: bool,
}

pub fn main(args: &Args) -> ExitCode {
    let loaded = if args.skip_secrets { load_paths(&args.paths) } else { load_paths_checking_secrets(&args.paths) };
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            super::print_errors(&errors.0);
            return ExitCode::from(1);
        }
    };
    for warning in &config.warnings {
        eprintln!("{warning}");
    }
    if !config.warnings.is_empty() {
        let plural = if config.warnings.len() == 1 { "" } else { "s" };
        eprintln!("probenet: {} warning{plural} in the config", config.warnings.len());
    }
    let checks = config.checks.len();
    let regions = config.regions.len();
    println!(
        "ok: {checks} check{}, {regions} region{}, {} runs a day",
        if checks == 1 { "" } else { "s" },
        if regions == 1 { "" } else { "s" },
        config.runs_per_day().round()
    );
    ExitCode::SUCCESS
}
