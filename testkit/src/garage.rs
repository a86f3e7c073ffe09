//! A real S3-compatible server started by a test: Garage (built with `cargo install garage --locked`, run as a
//! separate process), one node on loopback ports of its own, with a single-node layout, one bucket and one key
//! made through its command line. It can be stopped and started again on the same ports and data, to take the
//! bucket down for a while; killed and removed on drop.
//!
//! Where the binary is: `$PROBENET_GARAGE`, else `/opt/probenet-ci/garage/bin/garage` (where `.ci/run` builds
//! it), else `garage` on `PATH`. Tests start one with [`Garage::start_or_skip`], which prints a `skip:` line and
//! returns `None` when there is no binary, except on CI, where a missing binary fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postgres::describe;
use crate::stores::free_port;

/// Where `.ci/run` installs Garage.
pub const CI_BINARY: &str = "/opt/probenet-ci/garage/bin/garage";
/// The region Garage answers to.
pub const REGION: &str = "garage";

/// A running Garage node with one bucket and one key that may read and write it.
#[derive(Debug)]
pub struct Garage {
    binary: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    s3_port: u16,
    /// The bucket made for the test.
    pub bucket: String,
    /// The key's id.
    pub key_id: String,
    /// The key's secret.
    pub secret: String,
}

/// The Garage binary to use, if any.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PROBENET_GARAGE") {
        return Some(PathBuf::from(path));
    }
    if Path::new(CI_BINARY).exists() {
        return Some(PathBuf::from(CI_BINARY));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("garage")).find(|candidate| candidate.is_file())
}

impl Garage {
    /// Starts a node with a bucket named `bucket`, or prints `skip: TEST: ...` and returns `None` when Garage
    /// is not installed (on CI that is a failure). Panics when it is installed but cannot start.
    pub fn start_or_skip(test: &str, bucket: &str) -> Option<Self> {
        let Some(binary) = binary() else {
            assert!(std::env::var_os("CI").is_none(), "{test}: no Garage binary ({CI_BINARY}) on CI");
            println!(
                "skip: {test}: no Garage binary (cargo install garage --locked --root /opt/probenet-ci/garage, or set PROBENET_GARAGE)"
            );
            return None;
        };
        Some(Self::start(binary, bucket))
    }

    fn start(binary: PathBuf, bucket: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("probenet-garage-")
            .tempdir()
            .unwrap_or_else(|error| panic!("tempdir: {error}"));
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let secret: String = (0..32).map(|_| format!("{:02x}", random_byte())).collect();
        let config = format!(
            "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
             [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n\
             [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\nadmin_token = \"{secret}\"\n",
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
        );
        std::fs::write(dir.path().join("garage.toml"), config).unwrap_or_else(|error| panic!("garage.toml: {error}"));
        let mut garage = Self {
            binary,
            dir,
            child: None,
            s3_port: s3,
            bucket: bucket.to_owned(),
            key_id: String::new(),
            secret: String::new(),
        };
        garage.up();
        let id = garage.cli(&["node", "id", "-q"]);
        let id = id.trim().split('@').next().unwrap_or_default().to_owned();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        garage.cli(&["layout", "apply", "--version", "1"]);
        garage.retry_cli(&["bucket", "create", bucket]);
        let created = garage.cli(&["key", "create", "probenet-test"]);
        garage.key_id = field(&created, "Key ID");
        garage.secret = field(&created, "Secret key");
        garage.cli(&["bucket", "allow", "--read", "--write", "--owner", bucket, "--key", "probenet-test"]);
        garage
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// Writes the key id and secret to files in `dir` and returns the `objects` section of a config for the
    /// bucket under `prefix`, with the keys as `${file:...}` references.
    pub fn objects_yaml(&self, dir: &Path, prefix: &str) -> String {
        let id_file = dir.join("s3-key-id");
        let secret_file = dir.join("s3-secret");
        std::fs::write(&id_file, &self.key_id).unwrap_or_else(|error| panic!("key id file: {error}"));
        std::fs::write(&secret_file, &self.secret).unwrap_or_else(|error| panic!("secret file: {error}"));
        format!(
            "objects:\n  url: s3://{bucket}/{prefix}\n  endpoint: {endpoint}\n  region: {REGION}\n  path_style: true\n  \
             access_key_id: ${{file:{id}}}\n  secret_access_key: ${{file:{secret}}}\n",
            bucket = self.bucket,
            endpoint = self.endpoint(),
            id = id_file.display(),
            secret = secret_file.display(),
        )
    }

    /// Stops the server (the bucket is down until [`Garage::up`]).
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and data, and waits until it answers.
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "garage is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("garage.log"))
            .unwrap_or_else(|error| panic!("garage.log: {error}"));
        let stderr = log.try_clone().unwrap_or_else(|error| panic!("garage.log: {error}"));
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.config())
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("{}: {error}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.command(&["status"]).output().unwrap_or_else(|error| panic!("garage status: {error}"));
            if status.status.success() && std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "garage did not start: {}\n{}", describe(&status), self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("-c").arg(self.config()).args(args).env("RUST_LOG", "garage=warn");
        command
    }

    /// Runs a `garage` command against the node; panics with its output when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = self.command(args).output().unwrap_or_else(|error| panic!("garage {args:?}: {error}"));
        assert!(output.status.success(), "garage {args:?} failed: {}\n{}", describe(&output), self.log());
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Like [`Garage::cli`], retried for a few seconds (the layout takes a moment to apply).
    fn retry_cli(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let output = self.command(args).output().unwrap_or_else(|error| panic!("garage {args:?}: {error}"));
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            assert!(Instant::now() < deadline, "garage {args:?} failed: {}\n{}", describe(&output), self.log());
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.down();
    }
}

/// The value of `NAME: value` in a command's output.
fn field(output: &str, name: &str) -> String {
    output
        .lines()
        .find_map(|line| {
            line.trim().strip_prefix(name)?.trim_start().strip_prefix(':').map(|value| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name:?} in garage's output:\n{output}"))
}

fn random_byte() -> u8 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish() as u8
}
