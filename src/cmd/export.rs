//! `probenet export rules`: the configured alerts as Prometheus alerting rules, for vmalert, Prometheus or
//! Mimir; `probenet export grafana`: a Grafana dashboard over the Prometheus-compatible store.

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
    Rules(Paths),
    /// A Grafana dashboard (JSON, to import) for the store fed by remote write: uptime per region, latency
    /// phases, certificate expiry, SLO budget.
    Grafana(Paths),
}

/// The config, given as `probenet validate` and `probenet run` take it (`-c PATH` works too).
#[derive(Debug, clap::Args)]
struct Paths {
    /// Config files or directories (every *.yaml and *.yml inside, merged).
    #[arg(value_name = "PATH", required_unless_present = "config")]
    paths: Vec<PathBuf>,
    /// Config files or directories, as an option (repeatable); the same as PATH.
    #[arg(short, long = "config", value_name = "PATH")]
    config: Vec<PathBuf>,
}

pub fn main(args: &Args) -> ExitCode {
    let (What::Rules(given) | What::Grafana(given)) = &args.what;
    let paths: Vec<PathBuf> = given.paths.iter().chain(&given.config).cloned().collect();
    let config = match probenet_checks::load_paths(&paths) {
        Ok(config) => config,
        Err(errors) => {
            super::print_errors(&errors.0);
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let text = match &args.what {
        What::Rules { .. } => probenet_alerting::export::prometheus_rules(&config),
        What::Grafana { .. } => {
            let checks: Vec<probenet_dashboard::GrafanaCheck> = config
                .checks
                .iter()
                .map(|check| probenet_dashboard::GrafanaCheck {
                    name: check.name.clone(),
                    kind: check.kind.key().to_owned(),
                })
                .collect();
            let regions: Vec<String> = config.regions.keys().cloned().collect();
            let dashboard = probenet_dashboard::grafana_dashboard(&checks, &regions);
            serde_json::to_string_pretty(&dashboard).unwrap_or_default() + "\n"
        }
    };
    // A closed pipe (`probenet export rules | head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    ExitCode::SUCCESS
}
