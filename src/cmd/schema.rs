//! `probenet schema`: the config's JSON Schema for editors, or its Markdown reference.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the Markdown reference (as in docs/config.md) instead of the JSON Schema.
    #[arg(long)]
    markdown: bool,
}

pub fn main(args: &Args) -> ExitCode {
    if args.markdown {
        print!("{}", probenet_checks::config::reference::markdown());
        return ExitCode::SUCCESS;
    }
    match serde_json::to_string_pretty(&probenet_checks::config::spec::json_schema()) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("probenet: cannot print the schema: {error}");
            ExitCode::FAILURE
        }
    }
}
