//! A throwaway machine with systemd as its init, for tests of what runs under systemd: `systemd-nspawn` boots
//! this host's own system (its `/usr`, read-only) on a tmpfs root, with copy-on-write overlays of `/etc` and
//! `/usr/local` (and of other directories when asked, such as `/usr` and `/var` for dpkg; so installing into them
//! changes nothing on the host), one shared directory, and a private network (its own loopback: nothing it runs
//! meets the host's ports). Commands run inside through `nsenter`.
//! The machine powers off, and its overlays go, on drop.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The program that boots the machine (Debian's `systemd-container`).
pub const NSPAWN: &str = "/usr/bin/systemd-nspawn";

/// A booted machine.
#[derive(Debug)]
pub struct Machine {
    nspawn: Child,
    init: u32,
    log: PathBuf,
}

impl Machine {
    /// Boots a machine sharing `shared` (at the same path) and waits, at most `limit`, until its systemd says
    /// the system runs (`running`, or `degraded` when a unit of the host's failed there). Its console goes to
    /// `log`. An error says why it could not boot (this host may not allow containers).
    pub fn boot(shared: &Path, log: &Path, limit: Duration) -> io::Result<Self> {
        Self::boot_overlaying(shared, log, limit, &[])
    }

    /// [`Machine::boot`], with copy-on-write overlays of these directories of the host too (absolute paths):
    /// `/usr` and `/var` let `dpkg` install a package in the machine without touching the host (systemd-nspawn
    /// creates only the last part of a mount point on the machine's empty root: `/var`, not `/var/lib/dpkg`).
    pub fn boot_overlaying(shared: &Path, log: &Path, limit: Duration, overlays: &[&str]) -> io::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("pn-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let console = std::fs::File::create(log)?;
        let nspawn = Command::new(NSPAWN)
            .args(["--directory=/", "--volatile=yes", "--overlay=/etc::/etc", "--overlay=/usr/local::/usr/local"])
            .args(overlays.iter().map(|dir| format!("--overlay={dir}::{dir}")))
            .arg(format!("--bind={}", shared.display()))
            .args(["--private-network", "--boot", "--register=no", "--keep-unit", "--console=passive"])
            .arg(format!("--machine={name}"))
            // Arguments for its init: no first-boot questions (a fresh host may have no machine id yet).
            .args(["--", "systemd.firstboot=off"])
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .spawn()?;
        let mut machine = Self { nspawn, init: 0, log: log.to_owned() };
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = machine.nspawn.try_wait()? {
                return Err(io::Error::other(format!("systemd-nspawn exited ({status}): {}", machine.log_tail())));
            }
            if machine.init == 0 {
                machine.init = child_of(machine.nspawn.id()).unwrap_or(0);
            }
            if machine.init != 0 {
                let state = machine.run(&["systemctl", "is-system-running"])?;
                let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
                if state == "running" || state == "degraded" {
                    return Ok(machine);
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(io::Error::other(format!("the machine did not boot within {limit:?}: {}", machine.log_tail())))
    }

    /// Runs a command inside (as root, in the machine's mount, PID, IPC, UTS and network namespaces).
    pub fn run(&self, command: &[&str]) -> io::Result<Output> {
        Command::new("nsenter")
            .arg("--target")
            .arg(self.init.to_string())
            .args(["--mount", "--uts", "--ipc", "--pid", "--net", "--"])
            .args(command)
            .stdin(Stdio::null())
            .output()
    }

    /// The last lines of the console.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // SIGTERM asks systemd-nspawn to power the machine off; bounded, then killed.
        let _ = Command::new("kill").args(["-TERM", &self.nspawn.id().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if matches!(self.nspawn.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

/// The first child of `pid` (the machine's init, for systemd-nspawn).
fn child_of(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}
