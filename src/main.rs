//! `probenet`: synthetic monitoring from many regions. This file only parses the command line.

use std::process::ExitCode;

use clap::Parser;

mod cmd;

/// Synthetic monitoring probe network: checks in YAML, probes from many regions.
#[derive(Debug, Parser)]
#[command(name = "probenet", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _browser = probenet_browser::install();
    cmd::run(cli.command)
}
