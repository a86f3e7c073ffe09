//! `probenet schema`: the config's JSON Schema for editors, or its Markdown reference.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the Markdown reference (as in docs/config.md) instead of the JSON Schema.
    #[arg(long)]
    markdown: bool,
}

pub fn main(args: &Args) -> ExitCode {
    let text = if args.markdown {
        probenet_checks::config::reference::markdown()
    } else {
        match serde_json::to_string_pretty(&probenet_checks::config::spec::json_schema()) {
            Ok(text) => text + "\n",
            Err(error) => {
                eprintln!("probenet: cannot print the schema: {error}");
                return ExitCode::FAILURE;
            }
        }
    };
    // A closed pipe (`probenet schema | head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    ExitCode::SUCCESS
}
