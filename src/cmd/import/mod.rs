//! `probenet import TOOL FILE...`: another monitoring tool's config as a probenet config, and a located list
//! of what could not be carried over. One module per tool owns its format; they share [`out::Out`] (what was written and what was not) and [`value`] (how values are written).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod blackbox;
mod gatus;
mod kuma;
mod out;
mod source;
mod value;

use out::Line;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    tool: Tool,
}

#[derive(Debug, clap::Subcommand)]
enum Tool {
    /// blackbox_exporter: its modules file and the Prometheus config whose scrape jobs probe through it.
    Blackbox {
        /// blackbox_exporter's config file (`modules:`).
        modules: PathBuf,
        /// The Prometheus config whose `scrape_configs` send targets to `/probe`.
        targets: PathBuf,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Gatus: the `endpoints:` of its config file.
    Gatus {
        /// Gatus's config file.
        config: PathBuf,
        /// Also write endpoints that are disabled (`enabled: false`); by default they are listed and skipped.
        #[arg(long)]
        include_paused: bool,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Uptime Kuma: the monitors of a backup export (JSON).
    #[command(name = "uptime-kuma")]
    UptimeKuma {
        /// The JSON backup (Settings > Backup > Export).
        backup: PathBuf,
        /// Also write paused monitors; by default they are listed and skipped.
        #[arg(long)]
        include_paused: bool,
        #[command(flatten)]
        out: OutArgs,
    },
}

#[derive(Debug, clap::Args)]
struct OutArgs {
    /// Write the probenet config to this file (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The name of the one region the config declares (rename it, or add more, afterwards).
    #[arg(long, default_value = "local", value_name = "NAME")]
    region: String,
}

/// Input files larger than this are refused before they are read.
const MAX_INPUT_BYTES: u64 = 16 << 20;

pub fn main(args: &Args) -> ExitCode {
    let out_args = match &args.tool {
        Tool::Blackbox { out, .. } | Tool::Gatus { out, .. } | Tool::UptimeKuma { out, .. } => out,
    };
    if !is_region_name(&out_args.region) {
        eprintln!(
            "probenet: --region {:?} is not a region name: lowercase letters, digits, `-` and `_`",
            out_args.region
        );
        return ExitCode::from(super::EXIT_CONFIG);
    }
    let result = match &args.tool {
        Tool::Blackbox { modules, targets, .. } => blackbox::import(modules, targets),
        Tool::Gatus { config, include_paused, .. } => gatus::import(config, *include_paused),
        Tool::UptimeKuma { backup, include_paused, .. } => kuma::import(backup, *include_paused),
    };
    let mut out = match result {
        Ok(out) => out,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            let plural = if errors.len() == 1 { "" } else { "s" };
            eprintln!("probenet: {} error{plural} in the input; nothing was written", errors.len());
            return ExitCode::from(1);
        }
    };
    let label = out_args.output.as_ref().map_or_else(|| "<output>".to_owned(), |path| path.display().to_string());
    // The output must be a config probenet accepts, as `probenet validate --skip-secrets` would: a check it
    // refuses (a URL or a regex probenet does not take) is not written and is listed instead.
    let text = loop {
        let text = out.render(&out_args.region);
        let Err(errors) = probenet_checks::config::load_str(&label, &text) else { break text };
        if let Err(errors) = out.reject(errors.0) {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!(
                "probenet: the imported config does not validate (a bug in `probenet import`); nothing was written"
            );
            return ExitCode::from(1);
        }
    };
    match &out_args.output {
        Some(path) => {
            if let Err(error) = std::fs::write(path, &text) {
                eprintln!("probenet: cannot write {}: {error}", path.display());
                return ExitCode::from(1);
            }
        }
        None => print!("{text}"),
    }
    eprint!("{}", out.summary(out_args.output.as_deref(), &out_args.region));
    ExitCode::SUCCESS
}

/// Reads an input file as UTF-8 text, refusing one larger than [`MAX_INPUT_BYTES`].
fn read_input(path: &Path) -> Result<String, Vec<Line>> {
    let file = path.display().to_string();
    let whole = |message: String| vec![Line::whole_file(&file, message)];
    let metadata = std::fs::metadata(path).map_err(|error| whole(io_message(&error)))?;
    if metadata.len() > MAX_INPUT_BYTES {
        return Err(whole(format!(
            "the file is {} bytes, larger than the {} MiB `probenet import` reads",
            metadata.len(),
            MAX_INPUT_BYTES >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(|error| whole(io_message(&error)))?;
    String::from_utf8(bytes).map_err(|error| {
        whole(format!("the file is not UTF-8 (invalid byte at offset {})", error.utf8_error().valid_up_to()))
    })
}

fn io_message(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    }
}

/// Region names follow check names: `[a-z0-9][a-z0-9_-]*`.
fn is_region_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
