//! `probenet upgrade --binary NEW`: keeps the installed binary as `probenet.previous`, puts the new one in
//! place, rewrites the configuration from the stack (a migration: new files, changed command lines; keys,
//! tokens and data are kept), then restarts probenet's components one at a time in a safe order (the
//! scheduler, then the probers region by region), each waited for until healthy and every prober registered
//! again. Replicated schedulers restart one replica at a time, the next only once the last is healthy and
//! listed by `/api/v1/cluster` again: the others serve meanwhile, so the API never goes down. When a step fails, the previous binary goes back and what was restarted is restarted again.
//!
//! No result is lost: while the scheduler restarts, probers spool their results; a prober stopping hands its
//! work back and flushes its results first; the scheduler acknowledges a batch only once stored. The store and
//! alerting are the distribution's binaries: they restart only when their command line changed.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::apply::{self, ApplyError, Options, check_health, wait_healthy};
use crate::http::Http;
use crate::layout::Layout;
use crate::local::{Component, Health, Role};
use crate::plan::{Action, Plan, ServiceManager, Target};
use crate::supervise::{self, State};

/// Why an upgrade failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Nothing is installed there.
    #[error("no install at {0}: run probenet install local first")]
    NotInstalled(String),
    /// The supervisor does not run.
    #[error("the supervisor does not run: start it with probenet install local")]
    NoSupervisor,
    /// A step failed before anything was restarted.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// A component failed its health check: the previous binary is back.
    #[error("{component} failed after the upgrade ({reason}); rolled back to the previous binary")]
    RolledBack {
        /// The component.
        component: String,
        /// Why.
        reason: String,
    },
}

/// Upgrades the install of `plan` to `new_binary`.
pub fn upgrade(plan: &Plan, new_binary: &std::path::Path, options: &mut Options<'_>) -> Result<(), UpgradeError> {
    let layout = options.layout.clone();
    let binary = layout.binary();
    if !binary.exists() {
        return Err(UpgradeError::NotInstalled(layout.root().display().to_string()));
    }
    let manager = match plan.target {
        Target::Local(manager) => manager,
        Target::Kubernetes { .. } => ServiceManager::Supervisor,
    };
    if manager == ServiceManager::Supervisor && supervise::running_pid(&layout).is_none() {
        return Err(UpgradeError::NoSupervisor);
    }
    let previous = layout.previous_binary();
    fs::copy(&binary, &previous).map_err(|source| ApplyError::Io { path: previous.clone(), source })?;
    say(options, &format!("kept the installed binary as {}", previous.display()));
    apply::install_binary(new_binary, &binary)?;
    say(options, &format!("installed {}", binary.display()));
    // The migration: every file, directory and secret of the current plan (existing secrets are kept).
    let mut migration = plan.clone();
    migration.steps.retain(|step| {
        !matches!(
            step.action,
            Action::InstallPackages { .. }
                | Action::DisablePackagedService { .. }
                | Action::CreateUser { .. }
                | Action::InstallBinary { .. }
                | Action::Start { .. }
                | Action::WaitHealthy { .. }
                | Action::ShowResults { .. }
        )
    });
    apply::apply(&migration, options)?;
    say(options, "configuration migrated");
    if manager == ServiceManager::Supervisor {
        // Components whose command line changed restart on this re-read.
        if let Some(pid) = supervise::running_pid(&layout) {
            supervise::signal(pid, "HUP");
        }
    } else {
        let _ = Command::new("systemctl").arg("daemon-reload").status();
    }
    let ours: Vec<&Component> = plan
        .components
        .iter()
        .filter(|component| component.exec.first().is_some_and(|program| *program == binary.display().to_string()))
        // A periodic job under systemd runs the new binary at its next run; restarting it would run it now.
        .filter(|component| component.every_s.is_none() || manager == ServiceManager::Supervisor)
        .collect();
    let mut restarted: Vec<&Component> = Vec::new();
    for component in &ours {
        restarted.push(component);
        say(options, &format!("restarting {}", component.name));
        if let Err(reason) = restart_and_wait(component, plan, &layout, manager, options) {
            say(options, &format!("{} failed: {reason}; rolling back", component.name));
            let _ = apply::install_binary(&previous, &binary);
            for again in &restarted {
                let _ = restart_and_wait(again, plan, &layout, manager, options);
            }
            return Err(UpgradeError::RolledBack { component: component.name.clone(), reason });
        }
    }
    if manager == ServiceManager::Supervisor {
        // Last, once the new binary has proved itself running the scheduler and the probers.
        reexec_supervisor(&layout, new_binary, options);
    }
    say(options, "upgrade done");
    Ok(())
}

/// Asks the supervisor to re-execute the installed binary, adopting the running components, and waits until
/// it reports the new version. A supervisor before 0.2.0 cannot: it goes on with its version until restarted.
fn reexec_supervisor(layout: &Layout, new_binary: &std::path::Path, options: &mut Options<'_>) {
    let Some(state) = State::read(layout) else { return };
    if state.version.is_none() {
        say(options, "the supervisor predates 0.2.0 and cannot re-execute itself: it runs its version until restarted");
        return;
    }
    let version = Command::new(new_binary)
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().trim_start_matches("probenet ").to_owned());
    let Ok(version) = version else { return };
    if fs::write(layout.supervisor_reexec(), b"").is_err() {
        return;
    }
    supervise::signal(state.pid, "HUP");
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        // The new image writes its own start time: the same pid, a new image.
        let now = State::read(layout);
        if now.as_ref().is_some_and(|now| {
            now.pid == state.pid
                && now.version.as_deref() == Some(version.as_str())
                && now.image_started_ms > state.image_started_ms
        }) {
            say(options, &format!("the supervisor runs {version} (pid {})", state.pid));
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = fs::remove_file(layout.supervisor_reexec());
    say(options, "the supervisor did not re-execute itself: it runs its version until restarted");
}

fn say(options: &mut Options<'_>, line: &str) {
    let _ = writeln!(options.progress, "probenet: {line}");
}

/// Restarts one component and waits until it is healthy and every prober is registered again.
fn restart_and_wait(
    component: &Component,
    plan: &Plan,
    layout: &Layout,
    manager: ServiceManager,
    options: &mut Options<'_>,
) -> Result<(), String> {
    match manager {
        ServiceManager::Supervisor => restart_supervised(layout, &component.name)?,
        ServiceManager::Systemd => {
            // An upgrade then a rollback restart a unit several times in a minute: without this, systemd's
            // start limit (5 starts in 10 s by default) can refuse the rollback's restart.
            let _ = Command::new("systemctl").args(["reset-failed", &component.name]).status();
            let status = Command::new("systemctl").args(["restart", &component.name]).status();
            if !status.is_ok_and(|status| status.success()) {
                return Err("systemctl restart failed".to_owned());
            }
        }
    }
    let waited = wait_healthy(component, layout, &plan.components, options.http, options.health_timeout)
        .map_err(|error| error.to_string())?;
    if component.role == Role::Scheduler && component.name != crate::local::SCHEDULER {
        wait_member(component, layout, options.http, options.health_timeout)?;
    }
    if matches!(component.role, Role::Scheduler | Role::Prober { .. }) {
        wait_registered(plan, layout, options.http, options.health_timeout)?;
    }
    say(options, &format!("{} is healthy again ({:.1}s)", component.name, waited.as_secs_f64()));
    Ok(())
}

/// Waits until a restarted scheduler replica is back in the cluster: its own `/api/v1/cluster` lists it among
/// the members, with a leader named (it reads and writes the database again).
fn wait_member(component: &Component, layout: &Layout, http: &dyn Http, timeout: Duration) -> Result<(), String> {
    let Some(base) = apply::api_of(component) else { return Ok(()) };
    let get = apply::admin_get_at(layout, &base, "/api/v1/cluster");
    let started = Instant::now();
    let mut last = String::from("not asked");
    while started.elapsed() < timeout {
        match http.get(&get) {
            Ok((200, body)) => {
                let view: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let listed = view["members"]
                    .as_array()
                    .is_some_and(|members| members.iter().any(|member| member["name"] == component.name.as_str()));
                if listed && view["leader"].is_string() {
                    return Ok(());
                }
                last = format!("/api/v1/cluster does not list {} with a leader yet", component.name);
            }
            Ok((status, _)) => last = format!("/api/v1/cluster answered {status}"),
            Err(error) => last = error.to_string(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("{} is not back in the cluster: {last}", component.name))
}

/// Asks the supervisor to restart `name` (the restart file, then SIGHUP) and waits until it runs a new process.
fn restart_supervised(layout: &Layout, name: &str) -> Result<(), String> {
    let pid = supervise::running_pid(layout).ok_or_else(|| "the supervisor stopped".to_owned())?;
    let old = State::read(layout).and_then(|state| state.component(name).and_then(|c| c.pid));
    fs::write(layout.supervisor_restart(), format!("{name}\n")).map_err(|error| error.to_string())?;
    supervise::signal(pid, "HUP");
    let deadline = Instant::now() + supervise::STOP_TIMEOUT + Duration::from_secs(10);
    while Instant::now() < deadline {
        let now = State::read(layout).and_then(|state| state.component(name).and_then(|c| c.pid));
        if !layout.supervisor_restart().exists() && now.is_some() && now != old {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("the supervisor did not restart {name}"))
}

/// Waits until the scheduler lists every prober of the plan.
fn wait_registered(plan: &Plan, layout: &Layout, http: &dyn Http, timeout: Duration) -> Result<(), String> {
    let names: Vec<String> = plan.components.iter().filter_map(|component| component.role.prober_name()).collect();
    let started = Instant::now();
    let mut missing = names.clone();
    while started.elapsed() < timeout {
        missing.retain(|name| {
            check_health(&Health::Registered { name: name.clone() }, layout, &plan.components, http).is_err()
        });
        if missing.is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("probers not registered again: {}", missing.join(", ")))
}

/// The binary to roll back to, when an upgrade kept one.
pub fn previous(layout: &Layout) -> Option<PathBuf> {
    let path = layout.previous_binary();
    path.exists().then_some(path)
}
