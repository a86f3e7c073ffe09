//! `probenet notify test NAME -c PATH`: one test notification through a configured notifier, to see that it
//! delivers before an alert needs it.

use std::path::PathBuf;
use std::process::ExitCode;

use probenet_alerting::{Notification, Status};
use probenet_checks::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Send one firing test notification (alert `probenet-test`) through the notifier NAME and say whether it was
    /// delivered; without NAME, list the configured notifiers.
    Test {
        /// The notifier's name in the config's `notifiers`.
        name: Option<String>,
        /// Config files or directories.
        #[arg(short, long = "config", value_name = "PATH", required = true)]
        config: Vec<PathBuf>,
        /// Then send the matching resolved notification (closes the test alert in PagerDuty, Opsgenie,
        /// Alertmanager...).
        #[arg(long)]
        resolve: bool,
    },
}

/// The alert name of a test notification.
pub const TEST_ALERT: &str = "probenet-test";

pub fn main(args: &Args) -> ExitCode {
    let What::Test { name, config: paths, resolve } = &args.what;
    let config = match probenet_checks::load_paths(paths) {
        Ok(config) => config,
        Err(errors) => {
            super::print_errors(&errors.0);
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let Some(name) = name else {
        eprintln!("probenet: name the notifier to test: probenet notify test NAME -c PATH");
        list(&config);
        return ExitCode::from(super::EXIT_CONFIG);
    };
    let Some(spec) = config.notifiers.get(name) else {
        let hint = probenet_checks::config::suggest(name, config.notifiers.keys().map(String::as_str))
            .map(|close| format!(" (did you mean {close:?}?)"))
            .unwrap_or_default();
        eprintln!("probenet: no notifier named {name:?}{hint}");
        list(&config);
        return ExitCode::from(super::EXIT_CONFIG);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("probenet: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _context = runtime.enter();
    let notifier = match probenet_alerting::notify::notifier(name, spec) {
        Ok(notifier) => notifier,
        Err(error) => {
            eprintln!("probenet: {error}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let kind = notifier.kind();
    let mut notification = test_notification(name);
    let mut steps = vec![Status::Firing];
    if *resolve {
        steps.push(Status::Resolved);
    }
    for status in steps {
        notification.status = status;
        if status == Status::Resolved {
            notification.ended_ms = Some(probenet_checks::time::now_ms());
        }
        let label = match status {
            Status::Firing => "test notification",
            Status::Resolved => "resolved test notification",
        };
        // One attempt, bounded: the dispatcher's retries are not what is tested here.
        let delivery = runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(30), notifier.deliver(&notification)).await
        });
        match delivery {
            Ok(Ok(())) => println!("{name} ({kind}): {label} delivered"),
            Ok(Err(error)) => {
                eprintln!("probenet: {name} ({kind}): {label} not delivered: {error}");
                return ExitCode::FAILURE;
            }
            Err(_) => {
                eprintln!("probenet: {name} ({kind}): {label} not delivered: no answer within 30s");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// The configured notifiers, one a line with their kind, on stderr.
fn list(config: &Config) {
    if config.notifiers.is_empty() {
        eprintln!("the config has no notifiers");
        return;
    }
    eprintln!("configured notifiers:");
    for (name, spec) in &config.notifiers {
        eprintln!("  {name} ({})", spec.kind());
    }
}

/// A firing alert clearly labelled as a test.
fn test_notification(notifier: &str) -> Notification {
    let now = probenet_checks::time::now_ms();
    Notification {
        alert: TEST_ALERT.to_owned(),
        key: format!("{TEST_ALERT}/{notifier}"),
        status: Status::Firing,
        severity: "info".to_owned(),
        check: None,
        target: None,
        regions: Vec::new(),
        total_regions: 0,
        since_ms: now,
        ended_ms: None,
        reason: None,
        error: None,
        labels: [("test".to_owned(), "true".to_owned())].into(),
        summary: format!(
            "Test notification from `probenet notify test {notifier}`: nothing is wrong, this only shows that \
             notifier {notifier} delivers."
        ),
        dashboard_url: None,
    }
}
