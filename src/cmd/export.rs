//! `probenet export rules`: the configured alerts as Prometheus alerting rules, for vmalert, Prometheus or
//! Mimir.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Prometheus alerting rules (YAML) equivalent to the config's alerts and SLOs, over blackbox names.
    Rules {
        /// Config files or directories.
        #[arg(short, long = "config", value_name = "PATH", required = true)]
        config: Vec<PathBuf>,
    },
}

pub fn main(args: &Args) -> ExitCode {
    match &args.what {
        What::Rules { config } => match probenet_checks::load_paths(config) {
            Ok(config) => {
                let text = probenet_alerting::export::prometheus_rules(&config);
                let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                super::print_errors(&errors.0);
                ExitCode::from(super::EXIT_CONFIG)
            }
        },
    }
}
