//! `probenet uninstall`: stops the components (the supervisor, or the units), then removes what the install
//! created: configuration, certificates, secrets, units, the binary, logs and runtime files; the data
//! (scheduler, store, Alertmanager, spools) only with `--purge`. Distribution packages are kept.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::layout::Layout;
use crate::plan::{Plan, ServiceManager, Target};
use crate::supervise::{self, State};

/// How long the supervisor may take to stop every component.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an uninstall did not finish.
#[derive(Debug, thiserror::Error)]
pub enum UninstallError {
    /// Something could not be removed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Stops the supervisor (SIGTERM, which stops every component, probers first) and waits, bounded; kills what
/// is left after the timeout. Returns whether one was running.
pub fn stop_supervisor(layout: &Layout, timeout: Duration) -> bool {
    let state = State::read(layout);
    let Some(pid) = supervise::running_pid(layout) else {
        kill_components(state.as_ref());
        return false;
    };
    supervise::signal(pid, "TERM");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && supervise::alive(pid) {
        std::thread::sleep(Duration::from_millis(100));
    }
    if supervise::alive(pid) {
        supervise::signal(pid, "KILL");
    }
    kill_components(state.as_ref());
    true
}

/// Kills component processes a supervisor left (it was killed itself).
fn kill_components(state: Option<&State>) {
    for pid in state.iter().flat_map(|state| state.components.iter().filter_map(|component| component.pid)) {
        if supervise::alive(pid) {
            supervise::signal(pid, "KILL");
        }
    }
}

fn remove(path: &Path, removed: &mut Vec<PathBuf>) -> Result<(), UninstallError> {
    let result = match fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    result.map_err(|source| UninstallError::Io { path: path.to_owned(), source })?;
    removed.push(path.to_owned());
    Ok(())
}

/// Whether a local install of `plan` is below the layout's root: its configuration, its binary, or a unit of one
/// of its components (what `uninstall` removes). The data alone, left by an uninstall without `--purge`, is not
/// an install.
pub fn installed(plan: &Plan, layout: &Layout) -> bool {
    let units = plan.components.iter().any(|component| layout.unit_file(&component.name).exists());
    units || layout.etc().exists() || layout.binary().exists()
}

/// Removes the install of `plan`; returns what was removed.
pub fn uninstall(plan: &Plan, layout: &Layout, purge: bool) -> Result<Vec<PathBuf>, UninstallError> {
    let mut removed = Vec::new();
    match plan.target {
        Target::Local(ServiceManager::Systemd) => {
            for component in plan.components.iter().rev() {
                let _ = Command::new("systemctl")
                    .args(["disable", "--now", &component.start_unit()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                remove(&layout.unit_file(&component.name), &mut removed)?;
                if component.every_s.is_some() {
                    remove(&layout.timer_file(&component.name), &mut removed)?;
                }
            }
            let _ = Command::new("systemctl").arg("daemon-reload").stderr(Stdio::null()).status();
        }
        _ => {
            stop_supervisor(layout, STOP_TIMEOUT);
        }
    }
    for path in [layout.etc(), layout.binary(), layout.previous_binary(), layout.log_dir(), layout.run_dir()] {
        remove(&path, &mut removed)?;
    }
    if purge {
        remove(&layout.data(), &mut removed)?;
    }
    // Below a --root, the parents install made (usr/local/bin, etc, var/lib, ...) go too when left empty.
    if layout.root() != Path::new("/") {
        for path in removed.clone() {
            let mut dir = path.parent().map(Path::to_path_buf);
            while let Some(current) = dir {
                if current == layout.root() || !current.starts_with(layout.root()) || fs::remove_dir(&current).is_err()
                {
                    break;
                }
                dir = current.parent().map(Path::to_path_buf);
            }
        }
    }
    Ok(removed)
}
