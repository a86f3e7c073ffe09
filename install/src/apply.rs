//! Carries out a local plan in order: packages (with consent), user, binary, directories, certificates and
//! secrets (0600), configuration, units or the supervisor's file, then starts each component and waits until it
//! is healthy, with a progress line per step on the progress writer.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use probenet_scheduler::tokens::Scope;

use crate::http::{Get, Http};
use crate::layout::Layout;
use crate::local::{Component, Health, Role};
use crate::plan::{Action, CertUsage, PRIVATE, Plan, ServiceManager};
use crate::secrets::{self, SecretError};

/// How long a component may take to become healthy.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

/// The binaries the packages install, by package.
pub const PACKAGE_BINARIES: [(&str, &[&str]); 2] = [
    ("victoria-metrics", &["/usr/bin/victoria-metrics", "/usr/bin/vmalert"]),
    ("prometheus-alertmanager", &["/usr/bin/prometheus-alertmanager"]),
];

/// Why an install stopped. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Packages are missing and `--yes` was not given.
    #[error("needs the packages {}: run again with --yes to install them with apt-get", .0.join(" "))]
    NeedPackages(Vec<String>),
    /// A command failed.
    #[error("{command}: {message}")]
    Command {
        /// The command (no secret is ever on a command line).
        command: String,
        /// What went wrong.
        message: String,
    },
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A secret could not be made.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A component did not become healthy in time.
    #[error("{component} is not healthy after {}s ({last}); see {log}{tail}", .waited.as_secs())]
    Unhealthy {
        /// The component.
        component: String,
        /// How long it was waited for.
        waited: Duration,
        /// The last error.
        last: String,
        /// Where its log is.
        log: String,
        /// The log's last lines (each on its own line, indented), or empty.
        tail: String,
    },
    /// The supervisor did not start.
    #[error("the supervisor did not start; see {0}")]
    Supervisor(String),
}

/// How to carry out a plan.
pub struct Options<'a> {
    /// Where everything goes.
    pub layout: Layout,
    /// Whether packages may be installed without asking.
    pub yes: bool,
    /// The probenet binary to install (the running one).
    pub binary: PathBuf,
    /// The HTTP client of health checks and the scheduler's API.
    pub http: &'a dyn Http,
    /// Where progress lines go.
    pub progress: &'a mut dyn std::io::Write,
    /// How long each component may take to become healthy.
    pub health_timeout: Duration,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("layout", &self.layout).field("yes", &self.yes).finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io { path: path.to_owned(), source }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// The uid and gid of the `probenet` user when components should run as it: installing to `/` as root with
/// the user present.
pub fn component_user(layout: &Layout) -> Option<(u32, u32)> {
    if layout.root() != Path::new("/") || !is_root() {
        return None;
    }
    let out = |flag: &str| {
        let output = Command::new("id").arg(flag).arg(crate::layout::USER).stderr(Stdio::null()).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse::<u32>().ok()
    };
    Some((out("-u")?, out("-g")?))
}

fn run(command: &mut Command) -> Result<(), ApplyError> {
    let text = format!("{command:?}").replace('"', "");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| ApplyError::Command { command: text.clone(), message: error.to_string() })?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = format!("{} {}", output.status, stderr.lines().last().unwrap_or_default());
        Err(ApplyError::Command { command: text, message })
    }
}

/// The packages whose binaries are missing on this host.
pub fn missing_packages(packages: &[String]) -> Vec<String> {
    packages
        .iter()
        .filter(|package| {
            if *package == crate::local::POSTGRES_PACKAGE {
                return crate::local::postgres_bin().is_none();
            }
            PACKAGE_BINARIES
                .iter()
                .find(|(name, _)| name == package)
                .is_none_or(|(_, binaries)| binaries.iter().any(|binary| !Path::new(binary).exists()))
        })
        .cloned()
        .collect()
}

fn install_packages(packages: &[String], yes: bool) -> Result<(), ApplyError> {
    let missing = missing_packages(packages);
    if missing.is_empty() {
        return Ok(());
    }
    if !yes {
        return Err(ApplyError::NeedPackages(missing));
    }
    // policy-rc.d keeps the packaged services from starting (probenet runs its own).
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        fs::write(policy, "#!/bin/sh\n# written by probenet install while it installs packages\nexit 101\n")
            .map_err(io(policy))?;
        fs::set_permissions(policy, fs::Permissions::from_mode(0o755)).map_err(io(policy))?;
    }
    let result = run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    if ours {
        let _ = fs::remove_file(policy);
    }
    result
}

/// Writes `contents` with `mode` unless the file already holds it.
pub fn write_file(path: &Path, mode: u32, contents: &str) -> Result<(), ApplyError> {
    if fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))?;
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    if mode == PRIVATE {
        let _ = fs::remove_file(path);
        return Ok(secrets::write_private(path, contents.as_bytes())?);
    }
    let temporary = path.with_extension("tmp-probenet");
    fs::write(&temporary, contents).map_err(io(path))?;
    fs::set_permissions(&temporary, fs::Permissions::from_mode(mode)).map_err(io(path))?;
    fs::rename(&temporary, path).map_err(io(path))
}

/// Copies `from` to `to` (0755) through a temporary file and a rename, so a running binary is never written.
pub fn install_binary(from: &Path, to: &Path) -> Result<(), ApplyError> {
    if fs::read(from).ok() == fs::read(to).ok() && to.exists() {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let temporary = to.with_extension("new");
    fs::copy(from, &temporary).map_err(io(to))?;
    fs::set_permissions(&temporary, fs::Permissions::from_mode(0o755)).map_err(io(to))?;
    fs::rename(&temporary, to).map_err(io(to))
}

/// Writes the bucket's S3 keys (resolved from the config's references) as an AWS shared-credentials file,
/// 0600. Errors name the reference, never a value.
pub fn write_s3_credentials(
    file: &Path,
    access_key_id: &probenet_checks::secret::Template,
    secret_access_key: &probenet_checks::secret::Template,
) -> Result<(), ApplyError> {
    let resolve = |template: &probenet_checks::secret::Template| {
        template.resolve(&mut Vec::new()).map(|value| value.trim().to_owned()).map_err(|error| {
            ApplyError::Secret(crate::secrets::SecretError::Refused(format!("the bucket's keys for vmbackup: {error}")))
        })
    };
    let contents = crate::vmbackup::credentials_file(&resolve(access_key_id)?, &resolve(secret_access_key)?);
    write_file(file, crate::plan::PRIVATE, &contents)
}

/// A scheduler's base URL for its API, from its health check.
pub fn api_of(component: &Component) -> Option<String> {
    match &component.health {
        Health::Http { url, .. } if component.role == Role::Scheduler => {
            url.strip_suffix("/healthz").map(str::to_owned)
        }
        _ => None,
    }
}

/// The base URLs of every scheduler (replica), in order.
pub fn scheduler_apis(components: &[Component]) -> Vec<String> {
    components.iter().filter_map(api_of).collect()
}

/// The first scheduler's base URL for its API.
pub fn scheduler_api(components: &[Component]) -> Option<String> {
    scheduler_apis(components).into_iter().next()
}

/// A GET of the admin API of the scheduler at `base`.
pub fn admin_get_at(layout: &Layout, base: &str, path: &str) -> Get {
    Get { ca: Some(layout.ca_cert()), bearer_file: Some(layout.admin_token()), ..Get::new(format!("{base}{path}")) }
}

/// A GET of the first scheduler's admin API.
pub fn admin_get(layout: &Layout, components: &[Component], path: &str) -> Option<Get> {
    Some(admin_get_at(layout, &scheduler_api(components)?, path))
}

/// A GET of the admin API answered by any scheduler (replicas are tried in order until one answers 200): the
/// status and body of the first 200, else of the last answer, else the last error.
pub fn admin_read(
    layout: &Layout,
    components: &[Component],
    http: &dyn Http,
    path: &str,
) -> Result<(u16, String), String> {
    let mut last = Err("no scheduler in the stack".to_owned());
    for base in scheduler_apis(components) {
        match http.get(&admin_get_at(layout, &base, path)) {
            Ok((200, body)) => return Ok((200, body)),
            Ok(other) => last = Ok(other),
            Err(error) => last = Err(error.to_string()),
        }
    }
    last
}

/// The uid and gid the local PostgreSQL runs as: the components' user, else (as root, installing below
/// another root, as tests do) Debian's `postgres` user, since PostgreSQL refuses to run as root; None: this
/// process's user.
pub fn database_user(layout: &Layout) -> Option<(u32, u32)> {
    component_user(layout).or_else(|| if is_root() { user_ids(crate::local::POSTGRES_SUPERUSER) } else { None })
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let out = |flag: &str| {
        let output = Command::new("id").arg(flag).arg(name).stderr(Stdio::null()).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse::<u32>().ok()
    };
    Some((out("-u")?, out("-g")?))
}

/// Whether a component answers its health check; the error says why not.
pub fn check_health(health: &Health, layout: &Layout, components: &[Component], http: &dyn Http) -> Result<(), String> {
    match health {
        Health::Http { .. } => {
            let get = Get::of_health(health).ok_or_else(|| "no health check".to_owned())?;
            match http.get(&get) {
                Ok((200, _)) => Ok(()),
                Ok((status, _)) => Err(format!("status {status}")),
                Err(error) => Err(error.message),
            }
        }
        Health::Tcp { address } => std::net::TcpStream::connect_timeout(address, Duration::from_secs(2))
            .map(drop)
            .map_err(|error| format!("{address}: {error}")),
        Health::Periodic => Ok(()),
        Health::Registered { name } => {
            let (status, body) = admin_read(layout, components, http, "/api/v1/probers")?;
            let probers: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let listed = probers.as_array().is_some_and(|all| all.iter().any(|p| p["name"] == name.as_str()));
            if status == 200 && listed { Ok(()) } else { Err(format!("{name} is not registered")) }
        }
    }
}

/// Waits (bounded) until a component is healthy.
pub fn wait_healthy(
    component: &Component,
    layout: &Layout,
    components: &[Component],
    http: &dyn Http,
    timeout: Duration,
) -> Result<Duration, ApplyError> {
    let started = Instant::now();
    let mut last = String::from("not checked");
    while started.elapsed() < timeout {
        match check_health(&component.health, layout, components, http) {
            Ok(()) => return Ok(started.elapsed()),
            Err(error) => last = error,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = layout.log_dir().join(format!("{}.log", component.name));
    let tail = log_tail(&log, 12).iter().map(|line| format!("\n    {line}")).collect::<String>();
    let tail = if tail.is_empty() { tail } else { format!("; its last lines:{tail}") };
    Err(ApplyError::Unhealthy {
        component: component.name.clone(),
        waited: timeout,
        last,
        log: log.display().to_string(),
        tail,
    })
}

/// The last `lines` lines of a log (read from its last 8 KiB, so a huge log costs nothing), or none when it
/// cannot be read.
fn log_tail(path: &Path, lines: usize) -> Vec<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    const WINDOW: u64 = 8 * 1024;
    let Ok(mut file) = fs::File::open(path) else { return Vec::new() };
    let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let start = length.saturating_sub(WINDOW);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.take(WINDOW).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    if start > 0 && !all.is_empty() {
        all.remove(0); // cut in the middle
    }
    all[all.len().saturating_sub(lines)..].iter().map(|line| (*line).to_owned()).collect()
}

/// Starts `probenet supervise --root ROOT` detached (its own session, stdin closed, output to its log), or
/// asks a running one to re-read its file; waits until its pid file names a live process.
pub fn start_supervisor(layout: &Layout, binary: &Path) -> Result<u32, ApplyError> {
    if let Some(pid) = crate::supervise::running_pid(layout) {
        crate::supervise::signal(pid, "HUP");
        return Ok(pid);
    }
    let log_path = layout.supervisor_log();
    fs::create_dir_all(layout.log_dir()).map_err(io(&layout.log_dir()))?;
    fs::create_dir_all(layout.run_dir()).map_err(io(&layout.run_dir()))?;
    let log = fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(io(&log_path))?;
    let err = log.try_clone().map_err(io(&log_path))?;
    let mut command = if Path::new("/usr/bin/setsid").exists() {
        let mut command = Command::new("/usr/bin/setsid");
        command.arg(binary);
        command
    } else {
        Command::new(binary)
    };
    command.arg("supervise").arg("--root").arg(layout.root()).stdin(Stdio::null()).stdout(log).stderr(err);
    let mut child = command.spawn().map_err(|error| ApplyError::Command {
        command: format!("{} supervise", binary.display()),
        message: error.to_string(),
    })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(pid) = crate::supervise::running_pid(layout) {
            // Reap the direct child in the background so it never lingers as a zombie.
            std::thread::spawn(move || child.wait());
            return Ok(pid);
        }
        if let Ok(Some(status)) = child.try_wait()
            && !status.success()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ApplyError::Supervisor(log_path.display().to_string()))
}

/// Carries out every step of `plan`, printing a line per step; returns the components it started.
pub fn apply(plan: &Plan, options: &mut Options<'_>) -> Result<(), ApplyError> {
    let layout = options.layout.clone();
    let manager = match plan.target {
        crate::plan::Target::Local(manager) => manager,
        crate::plan::Target::Kubernetes { .. } => ServiceManager::Supervisor,
    };
    let mut started_manager = false;
    for action in plan.actions() {
        match action {
            Action::InstallPackages { packages } => {
                progress(options, &format!("packages: {}", packages.join(" ")));
                install_packages(packages, options.yes)?;
            }
            Action::DisablePackagedService { unit } => {
                let _ = run(Command::new("systemctl").args(["disable", "--now", unit]));
            }
            Action::CreateUser { name } => {
                if layout.root() == Path::new("/") && is_root() && component_user(&layout).is_none() {
                    progress(options, &format!("creating system user {name}"));
                    let home = layout.data();
                    run(Command::new("useradd")
                        .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin"])
                        .arg("--home-dir")
                        .arg(&home)
                        .arg(name))?;
                }
            }
            Action::InstallBinary { path } => {
                progress(options, &format!("binary {}", path.display()));
                install_binary(&options.binary, path)?;
            }
            Action::CreateDir { path, mode } => {
                fs::create_dir_all(path).map_err(io(path))?;
                fs::set_permissions(path, fs::Permissions::from_mode(*mode)).map_err(io(path))?;
            }
            Action::CreateCa { .. } => {}
            Action::CreateCert { usage: CertUsage::Server, sans, cert, .. } => {
                progress(options, "certificates: CA and server");
                let dir = cert.parent().unwrap_or(Path::new("."));
                secrets::ca_and_server(dir, sans)?;
            }
            Action::CreateCert { usage: CertUsage::Client, common_name, cert, key, .. } => {
                let dir = cert.parent().unwrap_or(Path::new("."));
                secrets::client_cert(dir, common_name, cert, key)?;
            }
            Action::CreatePassword { purpose, file, env } => {
                progress(options, &format!("secrets: password for {purpose}"));
                secrets::password(
                    file,
                    env.as_ref().map(|(env_file, variable)| (env_file.as_path(), variable.as_str())),
                )?;
            }
            Action::CopySecret { purpose, from, to } => {
                progress(options, &format!("secrets: {purpose} from {}", from.display()));
                secrets::copy_private(from, to)?;
            }
            Action::InitDatabase { dir, data, password_file } => {
                if init_database(&layout, dir, data, password_file)? {
                    progress(
                        options,
                        &format!("PostgreSQL: made {} and the role and database probenet", data.display()),
                    );
                }
            }
            Action::CreateToken { region, data, file } => {
                progress(options, &format!("secrets: prober token of region {region}"));
                secrets::token(&Scope::Region(region.clone()), data, file)?;
                secrets::token(&Scope::Admin, data, &layout.admin_token())?;
            }
            Action::WriteFile { path, mode, contents, .. } => write_file(path, *mode, contents)?,
            Action::WriteS3Credentials { file, access_key_id, secret_access_key } => {
                progress(options, &format!("secrets: S3 keys for vmbackup in {}", file.display()));
                write_s3_credentials(file, access_key_id, secret_access_key)?;
            }
            Action::Start { component } => {
                if !started_manager {
                    own_files(&layout)?;
                }
                match manager {
                    ServiceManager::Supervisor if !started_manager => {
                        let pid = start_supervisor(&layout, &layout.binary())?;
                        progress(options, &format!("supervisor running (pid {pid}), starting {component}"));
                    }
                    ServiceManager::Supervisor => progress(options, &format!("starting {component}")),
                    ServiceManager::Systemd => {
                        if !started_manager {
                            run(Command::new("systemctl").arg("daemon-reload"))?;
                        }
                        progress(options, &format!("starting {component}"));
                        let unit = plan
                            .components
                            .iter()
                            .find(|spec| spec.name == *component)
                            .map_or_else(|| component.clone(), crate::local::Component::start_unit);
                        run(Command::new("systemctl").args(["enable", "--now", &unit]))?;
                    }
                }
                started_manager = true;
            }
            Action::WaitHealthy { component, .. } => {
                if let Some(spec) = plan.components.iter().find(|spec| spec.name == *component) {
                    let waited = wait_healthy(spec, &layout, &plan.components, options.http, options.health_timeout)?;
                    progress(options, &format!("{component} is healthy ({:.1}s)", waited.as_secs_f64()));
                }
            }
            Action::ShowResults { .. } | Action::Object { .. } => {}
        }
    }
    Ok(())
}

/// Makes the local PostgreSQL's data directory and the schedulers' role and database, unless done before
/// (the marker file `probenet-initialized`): `initdb` (socket connections trusted, their directory private to
/// the server's user; TCP ones by password), then the role and database in single-user mode, before the server
/// ever starts. True when it made them.
fn init_database(layout: &Layout, dir: &Path, data: &Path, password_file: &Path) -> Result<bool, ApplyError> {
    let marker = dir.join("probenet-initialized");
    let user = database_user(layout);
    if let Some((uid, gid)) = user {
        run(Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(dir))?;
        // Below another root as root (tests), the data directory is root's: the server's user needs to pass it.
        let owner = fs::metadata(layout.data()).map_err(io(&layout.data()))?.uid();
        if owner != uid {
            let data_dir = layout.data();
            fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o711)).map_err(io(&data_dir))?;
        }
    }
    if marker.exists() {
        return Ok(false);
    }
    let bin = crate::local::postgres_bin().ok_or_else(|| ApplyError::Command {
        command: "initdb".to_owned(),
        message: format!(
            "no PostgreSQL server under {}/*/bin: install the postgresql package",
            crate::local::POSTGRES_ROOT
        ),
    })?;
    let as_user = |program: &str| {
        let mut command = Command::new(bin.join(program));
        command.current_dir(dir);
        if let Some((uid, gid)) = user {
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, gid);
        }
        command
    };
    if !data.join("PG_VERSION").exists() {
        run(as_user("initdb")
            .arg("-D")
            .arg(data)
            .args(["-U", crate::local::POSTGRES_SUPERUSER, "--auth-local=trust", "--auth-host=scram-sha-256"])
            .args(["--encoding=UTF8", "--locale=C"]))?;
    }
    let password = fs::read_to_string(password_file).map_err(io(password_file))?.trim().to_owned();
    let role = crate::local::POSTGRES_ROLE;
    // One statement a line (single-user mode ends a statement at a newline); the password only on stdin.
    let sql = format!(
        "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF; END$$;\n\
         ALTER ROLE {role} LOGIN PASSWORD '{password}';\n\
         CREATE DATABASE {role} OWNER {role};\n"
    );
    let mut child = as_user("postgres")
        .arg("--single")
        .arg("-D")
        .arg(data)
        .arg("postgres")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| ApplyError::Command { command: "postgres --single".to_owned(), message: error.to_string() })?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, sql.as_bytes()).map_err(io(data))?;
    }
    let output = child.wait_with_output().map_err(io(data))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let errors: Vec<&str> =
        text.lines().filter(|line| line.contains("ERROR") && !line.contains("already exists")).collect();
    if !output.status.success() || !errors.is_empty() {
        return Err(ApplyError::Command {
            command: "postgres --single (role and database probenet)".to_owned(),
            message: format!("{} {}", output.status, errors.join("; ").replace(&password, "***")),
        });
    }
    fs::write(&marker, b"").map_err(io(&marker))?;
    if let Some((uid, gid)) = user {
        run(Command::new("chown").arg(format!("{uid}:{gid}")).arg(&marker))?;
    }
    Ok(true)
}

/// Gives the install's files to the components' user (installs to `/` as root).
fn own_files(layout: &Layout) -> Result<(), ApplyError> {
    if component_user(layout).is_none() {
        return Ok(());
    }
    let owner = format!("{0}:{0}", crate::layout::USER);
    for dir in [layout.etc(), layout.data(), layout.log_dir()] {
        if dir.exists() {
            run(Command::new("chown").arg("-R").arg(&owner).arg(&dir))?;
        }
    }
    Ok(())
}

fn progress(options: &mut Options<'_>, line: &str) {
    let _ = writeln!(options.progress, "probenet: {line}");
}

#[cfg(test)]
mod tests {
    use super::log_tail;

    #[test]
    fn a_log_tail_is_its_last_lines_and_a_cut_first_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short.log");
        std::fs::write(&short, "one\n\ntwo\nthree\n").unwrap();
        assert_eq!(log_tail(&short, 2), ["two", "three"]);
        assert_eq!(log_tail(&short, 10), ["one", "two", "three"]);
        assert!(log_tail(&dir.path().join("missing.log"), 5).is_empty());

        // A long log: only its end is read, and the line the window cuts is not shown half.
        let long = dir.path().join("long.log");
        let text: String = (0..2000).map(|n| format!("line {n:05} of the prober's log\n")).collect();
        std::fs::write(&long, &text).unwrap();
        let tail = log_tail(&long, 500);
        assert_eq!(tail.last().unwrap(), "line 01999 of the prober's log");
        assert!(tail.len() < 300, "read from the last 8 KiB only: {}", tail.len());
        assert!(tail.iter().all(|line| line.starts_with("line ") && line.ends_with("log")), "{tail:?}");
    }
}
