//! A region for tests and benchmarks: a prober namespace and a target namespace joined by a delay line.
//!
//! This kernel has no `netem`, so latency is made in user space: each namespace gets a TUN device with
//! point-to-point addresses (prober 10.200.0.1, target 10.200.0.2, private to the two namespaces), and two
//! threads of this process move every packet between the devices, holding the prober-to-target direction for
//! the chosen delay. Every exchange, the TCP handshake included, then sees a round trip of at least that delay.
//! The namespaces and devices are removed on drop.

pub mod chromium;
pub mod container;
pub mod garage;
pub mod postgres;
pub mod stores;

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use tun_rs::{DeviceBuilder, InterruptEvent, SyncDevice};

/// The prober side's address inside its namespace.
pub const PROBER_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
/// The target side's address inside its namespace.
pub const TARGET_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
const DEVICE: &str = "pndelay";

/// A region: two namespaces and the delay line between them.
pub struct Region {
    prober_ns: String,
    target_ns: String,
    delay: Duration,
    stop: Arc<InterruptEvent>,
    threads: Vec<JoinHandle<()>>,
}

impl Region {
    /// Creates the namespaces and starts the delay line. `delay` is the added round-trip time.
    pub fn create(name: &str, delay: Duration) -> io::Result<Self> {
        remove_stale_namespaces();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let prober_ns = format!("pn-{name}-{unique}-p");
        let target_ns = format!("pn-{name}-{unique}-t");
        let mut region =
            Self { prober_ns, target_ns, delay, stop: Arc::new(InterruptEvent::new()?), threads: Vec::new() };
        for ns in [&region.prober_ns, &region.target_ns] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        let prober = open_tun(&region.prober_ns, PROBER_IP, TARGET_IP)?;
        let target = open_tun(&region.target_ns, TARGET_IP, PROBER_IP)?;
        region.start(prober, target)?;
        Ok(region)
    }

    /// The namespace probes run in.
    pub fn prober_ns(&self) -> &str {
        &self.prober_ns
    }

    /// The namespace targets run in.
    pub fn target_ns(&self) -> &str {
        &self.target_ns
    }

    /// The added round-trip time.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Runs `f` on a thread inside the target namespace: sockets it creates (a listener bound to
    /// [`TARGET_IP`]) stay in that namespace when handed back.
    pub fn in_target<T: Send + 'static>(&self, f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
        in_namespace(&self.target_ns, f)
    }

    /// Runs `f` on a thread inside the prober namespace.
    pub fn in_prober<T: Send + 'static>(&self, f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
        in_namespace(&self.prober_ns, f)
    }

    /// Links the prober namespace to this (the root) namespace with a veth pair, for control traffic that must
    /// not cross the delay line (a prober talking to its scheduler). The link gets a private /30 that no
    /// address of this host is in (10.201.N.0/30): the root side is 10.201.N.1, the prober side 10.201.N.2,
    /// which the prober namespace routes only to the root side. Returns (root side, prober side). The link
    /// goes with the namespace.
    pub fn control_link(&self) -> io::Result<(Ipv4Addr, Ipv4Addr)> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let serial = NEXT.fetch_add(1, Ordering::Relaxed);
        let index = free_control_subnet(serial)?;
        let host_if = format!("pnc{}h{serial}", std::process::id() % 100_000);
        let ns_if = "pnctl";
        let (host_ip, ns_ip) = (Ipv4Addr::new(10, 201, index, 1), Ipv4Addr::new(10, 201, index, 2));
        ip(&["link", "add", &host_if, "type", "veth", "peer", "name", ns_if, "netns", &self.prober_ns])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&["-n", &self.prober_ns, "addr", "add", &format!("{ns_ip}/30"), "dev", ns_if])?;
        ip(&["-n", &self.prober_ns, "link", "set", ns_if, "up"])?;
        Ok((host_ip, ns_ip))
    }

    /// Cuts the region off: the prober side of the delay line goes down, so nothing in the prober namespace
    /// reaches a target any more (connections fail at once: no route). [`restore`](Self::restore) undoes it.
    pub fn cut(&self) -> io::Result<()> {
        ip(&["-n", &self.prober_ns, "link", "set", DEVICE, "down"])
    }

    /// Brings the delay line back after [`cut`](Self::cut).
    pub fn restore(&self) -> io::Result<()> {
        ip(&["-n", &self.prober_ns, "link", "set", DEVICE, "up"])
    }

    /// A command that runs `program` inside the prober namespace.
    pub fn prober_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.prober_ns]).arg(program);
        command
    }

    fn start(&mut self, prober: SyncDevice, target: SyncDevice) -> io::Result<()> {
        let prober = Arc::new(prober);
        let target = Arc::new(target);
        let (queue, delayed) = mpsc::channel::<(Instant, Vec<u8>)>();
        let delay = self.delay;

        // Prober to target: read, stamp, and hand to the writer, which holds each packet for the delay.
        let (from, stop) = (prober.clone(), self.stop.clone());
        self.threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(len) = from.recv_intr(&mut buf, &stop) {
                if queue.send((Instant::now() + delay, buf[..len].to_vec())).is_err() {
                    break;
                }
            }
        }));
        let to = target.clone();
        self.threads.push(std::thread::spawn(move || {
            while let Ok((due, packet)) = delayed.recv() {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let _ = to.send(&packet);
            }
        }));
        // Target to prober: straight through.
        let (from, to, stop) = (target, prober, self.stop.clone());
        self.threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(len) = from.recv_intr(&mut buf, &stop) {
                let _ = to.send(&buf[..len]);
            }
        }));
        Ok(())
    }
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("prober_ns", &self.prober_ns)
            .field("target_ns", &self.target_ns)
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let _ = self.stop.trigger();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        for ns in [&self.prober_ns, &self.target_ns] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// The third octet of a 10.201.N.0/30 that no address of this host is in and that this process has not handed
/// out before, searching from this process's next link (`serial`): another test's link, or one a killed run
/// left behind, is never shared (two host routes for one /30 send the answers of one link down the other).
fn free_control_subnet(serial: u32) -> io::Result<u8> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u8>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let output = Command::new("ip").args(["-4", "-o", "addr", "show"]).output()?;
    let listed = String::from_utf8_lossy(&output.stdout);
    let on_host: std::collections::BTreeSet<u8> = listed
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("10.201."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect();
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let index = (0..=255u32)
        .map(|step| u8::try_from((serial + step) % 256).unwrap_or(0))
        .find(|index| !on_host.contains(index) && !handed_out.contains(index))
        .ok_or_else(|| io::Error::other("every 10.201.N.0/30 is in use on this host"))?;
    handed_out.insert(index);
    Ok(index)
}

/// Removes the namespaces a killed test process left behind (named `pn-NAME-PID-N-p|t` for a PID that no
/// longer runs): their veths keep 10.201.N addresses on this host, and processes a test started inside keep
/// them alive, so those are stopped first. Runs once per process.
fn remove_stale_namespaces() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else { return };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Some(name) = line.split_whitespace().next() else { continue };
            let Some(pid) = stale_namespace_pid(name) else { continue };
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
                for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = ip(&["netns", "del", name]);
        }
    });
}

/// The creating process of a namespace named like this crate's (`pn-NAME-PID-N-p` or `-t`), else None.
fn stale_namespace_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("pn-")?;
    let rest = rest.strip_suffix("-p").or_else(|| rest.strip_suffix("-t"))?;
    let mut parts = rest.rsplitn(3, '-');
    parts.next()?.parse::<u32>().ok()?;
    let pid = parts.next()?.parse::<u32>().ok()?;
    parts.next().filter(|region| !region.is_empty())?;
    Some(pid)
}

fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    let handle = File::open(format!("/var/run/netns/{ns}"))?;
    std::thread::spawn(move || {
        setns(&handle, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        f()
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

fn open_tun(ns: &str, local: Ipv4Addr, peer: Ipv4Addr) -> io::Result<SyncDevice> {
    let device = in_namespace(ns, || DeviceBuilder::new().name(DEVICE).packet_information(false).build_sync())?;
    device.set_nonblocking(true)?;
    let (local, peer) = (format!("{local}/32"), format!("{peer}/32"));
    ip(&["-n", ns, "addr", "add", &local, "peer", &peer, "dev", DEVICE])?;
    ip(&["-n", ns, "link", "set", DEVICE, "up"])?;
    Ok(device)
}

fn ip(args: &[&str]) -> io::Result<()> {
    let output = Command::new("ip").args(args).output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::stale_namespace_pid;

    #[test]
    fn only_this_crates_namespace_names_are_read_as_stale_candidates() {
        assert_eq!(stale_namespace_pid("pn-ra-28427-3-p"), Some(28427));
        assert_eq!(stale_namespace_pid("pn-eu-west-9-12-t"), Some(9));
        for other in ["pn-ra-28427-3", "pn--1-2-p", "pn-ra-x-3-p", "pn-ra-1-x-p", "netns-ra-1-2-p", "pn-1-2-p", "cni-1"]
        {
            assert_eq!(stale_namespace_pid(other), None, "{other}");
        }
    }
}
