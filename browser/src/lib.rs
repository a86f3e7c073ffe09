//! Browser checks for probenet: scripted journeys in headless Chromium over the DevTools protocol.
//!
//! The binary calls [`install`] at start-up; `probenet-checks` then hands every `browser` check to the
//! installed [`ChromiumRunner`]. This lives in its own crate because Chromium's protocol code is the slowest
//! part of the workspace to compile.

mod cdp;
mod chromium;
mod driver;
mod journey;
mod keys;
mod observer;
mod page;
mod report;
mod runner;
mod vitals;

use std::sync::Arc;

pub use chromium::{CANDIDATES, ENV_BINARY, find_binary};
pub use runner::{ChromiumRunner, DEFAULT_CONCURRENCY, ENV_CONCURRENCY, MAX_CONCURRENCY, Options};

/// Installs a [`ChromiumRunner`] configured from the environment as the process's browser runner. Keep the
/// returned guard alive while checks run: dropping it closes Chromium and reaps its process.
pub fn install() -> Installed {
    let runner = ChromiumRunner::new(Options::from_env());
    probenet_checks::run::install_browser_runner(Arc::new(runner.clone()));
    Installed { runner }
}

/// The installed runner; dropping it shuts the browser down.
#[derive(Debug)]
#[must_use = "dropping the guard shuts the browser down"]
pub struct Installed {
    runner: ChromiumRunner,
}

impl Installed {
    /// The installed runner.
    pub fn runner(&self) -> &ChromiumRunner {
        &self.runner
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.runner.shutdown();
    }
}
