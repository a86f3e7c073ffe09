//! A real PostgreSQL (Debian's package) started by a test: `initdb` in a temp dir, a free loopback port, the
//! socket inside the dir, fsync off (the machine does not crash in a test; commits are still written before
//! they are acknowledged, so a crash of the server loses none); crash (`stop -m immediate`) and restart on the same port and data; stopped
//! and removed on drop.
//!
//! `initdb` and `postgres` refuse to run as root: as root, every PostgreSQL command runs as the `postgres` user
//! (`setpriv`), which owns the temp dir. Tests start one with [`Postgres::start_or_skip`], which prints a
//! `skip:` line and returns `None` when the binaries are missing, so a missing package never passes silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::stores::free_port;

/// Where Debian installs the server binaries, one folder per major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// The unprivileged user PostgreSQL runs as when the test runs as root.
const RUN_AS: &str = "postgres";
/// The superuser `initdb` creates (trust authentication on loopback only).
const SUPERUSER: &str = "postgres";

/// A PostgreSQL server of its own: data, socket and log under a temp dir.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_root: bool,
}

/// The highest-versioned `/usr/lib/postgresql/*/bin` that has `initdb` and `pg_ctl`, if any.
pub fn binaries() -> Option<PathBuf> {
    let entries = std::fs::read_dir(DEBIAN_ROOT).ok()?;
    let mut found: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl Postgres {
    /// Starts a fresh server, or prints `skip: TEST: ...` and returns `None` when PostgreSQL is not installed.
    /// Panics when it is installed but cannot start (that is a failure, not a skip).
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let Some(bin) = binaries() else {
            // CI installs the package: there a missing server is a broken machine, not a reason to skip.
            assert!(std::env::var_os("CI").is_none(), "{test}: no PostgreSQL under {DEBIAN_ROOT}/*/bin on CI");
            println!("skip: {test}: no PostgreSQL under {DEBIAN_ROOT}/*/bin (install Debian's postgresql)");
            return None;
        };
        Some(Self::init(bin))
    }

    fn init(bin: PathBuf) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("probenet-pg-")
            .tempdir()
            .unwrap_or_else(|error| panic!("tempdir: {error}"));
        let as_root = nix::unistd::Uid::effective().is_root();
        let server = Self { bin, dir, port: free_port(), as_root };
        std::fs::create_dir(server.socket_dir()).unwrap_or_else(|error| panic!("socket dir: {error}"));
        if as_root {
            run(Command::new("chown").args(["-R", &format!("{RUN_AS}:{RUN_AS}")]).arg(server.dir.path()));
        }
        let data = server.data_dir();
        let mut initdb = server.command("initdb");
        run(initdb.arg("-D").arg(&data).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        ]));
        let settings = format!(
            "\n# probenet testkit\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{socket}'\nfsync = off\n\
             full_page_writes = off\nmax_connections = 50\nshared_buffers = 16MB\n",
            port = server.port,
            socket = server.socket_dir().display(),
        );
        let conf = data.join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).unwrap_or_else(|error| panic!("read {}: {error}", conf.display()));
        text.push_str(&settings);
        std::fs::write(&conf, text).unwrap_or_else(|error| panic!("write {}: {error}", conf.display()));
        server.start();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The loopback port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server on its port and data, waiting (at most 30 s) until it accepts connections. Used after
    /// [`stop_immediate`](Self::stop_immediate); [`start_or_skip`](Self::start_or_skip) already started it.
    pub fn start(&self) {
        let log = self.dir.path().join("postgres.log");
        let mut pg_ctl = self.command("pg_ctl");
        let output = pg_ctl.arg("-D").arg(self.data_dir()).arg("-l").arg(&log).args(["-w", "-t", "30", "start"]);
        let output = output.output().unwrap_or_else(|error| panic!("pg_ctl start: {error}"));
        if !output.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("pg_ctl start failed: {}\n{log}", describe(&output));
        }
        self.wait_ready(Duration::from_secs(30));
    }

    /// Stops the server at once, as a crash would: no checkpoint, client connections cut.
    pub fn stop_immediate(&self) {
        run(self.command("pg_ctl").arg("-D").arg(self.data_dir()).args(["-m", "immediate", "-w", "stop"]));
    }

    /// Turns TLS on with this certificate chain and key (PEM files) and restarts the server. Plain connections
    /// are still accepted (loopback trust); a client asks for TLS with `sslmode=require`.
    pub fn enable_tls(&self, cert: &Path, key: &Path) {
        let data = self.data_dir();
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            std::fs::copy(from, data.join(to)).unwrap_or_else(|error| panic!("copy {}: {error}", from.display()));
            if self.as_root {
                run(Command::new("chown").arg(format!("{RUN_AS}:{RUN_AS}")).arg(data.join(to)));
            }
            run(Command::new("chmod").arg("600").arg(data.join(to)));
        }
        let conf = data.join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).unwrap_or_else(|error| panic!("read {}: {error}", conf.display()));
        text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap_or_else(|error| panic!("write {}: {error}", conf.display()));
        run(self.command("pg_ctl").arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]));
        self.start();
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database name {name:?}: use lowercase letters, digits and _"
        );
        self.psql(&format!("CREATE DATABASE {name}"));
        self.url_for(name)
    }

    /// Runs one SQL command with `psql` on database `postgres` (over the socket) and returns its output.
    pub fn psql(&self, sql: &str) -> String {
        let mut psql = self.command("psql");
        psql.arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", SUPERUSER, "-d", "postgres"])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        let output = run(&mut psql);
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let mut ready = self.command("pg_isready");
            ready.arg("-h").arg(self.socket_dir()).args(["-p", &self.port.to_string(), "-q"]);
            if ready.status().is_ok_and(|status| status.success()) {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL on port {} not ready within {within:?}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    /// `program` from the server's bin dir, run as [`RUN_AS`] when the test runs as root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_root {
            let mut command = Command::new("setpriv");
            command.args(["--reuid", RUN_AS, "--regid", RUN_AS, "--init-groups", "--"]).arg(path);
            command.current_dir(self.dir.path());
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let mut stop = self.command("pg_ctl");
            let _ = stop.arg("-D").arg(self.data_dir()).args(["-m", "immediate", "-w", "stop"]).output();
        }
    }
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(output.status.success(), "{command:?} failed: {}", describe(&output));
    output
}

pub(crate) fn describe(output: &Output) -> String {
    format!(
        "{}: {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_crashes_and_restarts_on_the_same_port() {
        let Some(pg) = Postgres::start_or_skip("starts_crashes_and_restarts_on_the_same_port") else {
            return;
        };
        assert_eq!(pg.psql("SELECT 1"), "1");
        let url = pg.create_database("probenet_a");
        assert!(url.ends_with("/probenet_a"), "{url}");
        let port = pg.port();
        pg.stop_immediate();
        pg.start();
        assert_eq!(pg.port(), port);
        assert_eq!(pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'probenet_a'"), "1");
    }

    #[test]
    fn binaries_are_the_highest_version() {
        if let Some(bin) = binaries() {
            assert!(bin.starts_with(Path::new(DEBIAN_ROOT)), "{}", bin.display());
        }
    }
}
