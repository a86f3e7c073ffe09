//! VictoriaMetrics backups of a local install: when the checks config sets `objects` (an `s3://` bucket or a
//! `file://` directory), the component `probenet-vmbackup` runs `vmbackup` every `objects.backup_every` into
//! `BUCKET/PREFIX/backups/victoria-metrics/STACK/latest` (incremental: only new parts are uploaded). Under
//! systemd it is a oneshot service started by a timer; under `probenet supervise`, the same command with
//! `--every` repeats on its own.
//!
//! The command is `probenet vmbackup` around the distribution's `vmbackup`: it asks VictoriaMetrics for a
//! snapshot (HTTPS with the install's CA, basic auth with the password read from its file), runs `vmbackup
//! -snapshotName=...` and deletes the snapshot. Not `vmbackup -snapshot.createURL`: the Debian vmbackup (1.79)
//! cannot trust the install's CA for it, and the password would be in that URL, which vmbackup logs with its
//! flags. The S3 keys go to an AWS shared-credentials file (0600) made at install time from the config's
//! secret references; no unit, command line, plan or log holds them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use probenet_checks::config::objects::{Objects, Provider};

use crate::http::{Get, Http};
use crate::layout::{Layout, STORE_USER};
use crate::local::{Component, Health, Role};
use crate::plan::{Action, PUBLIC};
use crate::stack::{Loaded, StoreKind};

/// The component's name.
pub const COMPONENT: &str = "probenet-vmbackup";
/// The distribution's vmbackup.
pub const VMBACKUP: &str = "/usr/bin/vmbackup";
/// The longest one backup may take before it is stopped.
pub const TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Where the backups of the install's VictoriaMetrics go, as vmbackup's `-dst` (and vmrestore's `-src`), when
/// the config's bucket is one vmbackup can write: `s3://BUCKET/PREFIX/backups/victoria-metrics/STACK/latest`
/// or `fs:///DIR/backups/victoria-metrics/STACK/latest`.
pub fn destination(objects: &Objects, stack: &str) -> Option<String> {
    let path = format!("backups/victoria-metrics/{stack}/latest");
    match objects.provider {
        Provider::S3 if objects.prefix.is_empty() => Some(format!("s3://{}/{path}", objects.bucket)),
        Provider::S3 => Some(format!("s3://{}/{}/{path}", objects.bucket, objects.prefix)),
        Provider::File => Some(format!("fs://{}/{path}", objects.bucket.trim_end_matches('/'))),
        // The Debian vmbackup (1.79) writes GCS with a service account file only, and Azure not at all.
        Provider::Gcs | Provider::Azure => None,
    }
}

/// The objects settings when VictoriaMetrics backups are scheduled: the stack runs VictoriaMetrics and the
/// config sets a bucket vmbackup writes, with backups on.
pub fn scheduled(loaded: &Loaded) -> Option<(&Objects, Duration)> {
    if loaded.stack.store.kind != StoreKind::VictoriaMetrics {
        return None;
    }
    let objects = loaded.config.objects.as_ref()?;
    let every = objects.backup_every?;
    destination(objects, &loaded.stack.name)?;
    Some((objects, every))
}

/// vmbackup's flags for `objects` (none holds a secret: the keys are in the credentials file).
pub fn vmbackup_flags(objects: &Objects, stack: &str, layout: &Layout) -> Vec<String> {
    let mut flags = vec![format!("-storageDataPath={}", layout.store_data().display())];
    if let Some(dst) = destination(objects, stack) {
        flags.push(format!("-dst={dst}"));
    }
    flags.extend(s3_flags(objects, layout));
    flags.push("-loggerLevel=WARN".to_owned());
    flags
}

/// The S3 flags vmbackup and vmrestore share: endpoint, path style, credentials and config files.
pub fn s3_flags(objects: &Objects, layout: &Layout) -> Vec<String> {
    let mut flags = Vec::new();
    if objects.provider != Provider::S3 {
        return flags;
    }
    if let Some(endpoint) = &objects.endpoint {
        flags.push(format!("-customS3Endpoint={endpoint}"));
    }
    flags.push(format!("-s3ForcePathStyle={}", objects.path_style));
    // vmbackup reads the config file (the region) only along with a credentials file.
    if objects.access_key_id.is_some() {
        flags.push(format!("-credsFilePath={}", layout.vmbackup_credentials().display()));
        flags.push(format!("-configFilePath={}", layout.vmbackup_config().display()));
    }
    flags
}

/// The component, when backups are scheduled.
pub fn component(loaded: &Loaded, layout: &Layout) -> Option<Component> {
    let (objects, every) = scheduled(loaded)?;
    let store_url = format!("https://{}", crate::files::loopback(loaded.stack.store.listen));
    let mut exec = vec![
        layout.binary().display().to_string(),
        "vmbackup".to_owned(),
        "--store".to_owned(),
        store_url,
        "--ca".to_owned(),
        layout.ca_cert().display().to_string(),
        "--user".to_owned(),
        STORE_USER.to_owned(),
        "--password-file".to_owned(),
        layout.store_password().display().to_string(),
        "--".to_owned(),
        VMBACKUP.to_owned(),
    ];
    exec.extend(vmbackup_flags(objects, &loaded.stack.name, layout));
    let writable = match objects.provider {
        Provider::File => vec![PathBuf::from(&objects.bucket)],
        Provider::S3 | Provider::Gcs | Provider::Azure => Vec::new(),
    };
    Some(Component {
        name: COMPONENT.to_owned(),
        role: Role::Backup,
        exec,
        env_file: None,
        netns: None,
        user: crate::layout::USER.to_owned(),
        writable,
        net_raw: false,
        after: vec!["probenet-victoria-metrics".to_owned()],
        health: Health::Periodic,
        every_s: Some(every.as_secs().max(60)),
    })
}

/// The files the backups need: the region (AWS config, public) and the keys (AWS shared credentials, 0600,
/// written when the plan is carried out, from the config's secret references).
pub fn files(loaded: &Loaded, layout: &Layout) -> Vec<Action> {
    let Some((objects, _)) = scheduled(loaded) else { return Vec::new() };
    let mut actions = Vec::new();
    if let Provider::File = objects.provider {
        actions.push(Action::CreateDir { path: PathBuf::from(&objects.bucket), mode: 0o700 });
    }
    if let (Some(access_key_id), Some(secret_access_key)) = (&objects.access_key_id, &objects.secret_access_key) {
        let region = objects.region.clone().unwrap_or_else(|| "us-east-1".to_owned());
        actions.push(Action::CreateDir {
            path: layout.vmbackup_config().parent().map(Path::to_owned).unwrap_or_default(),
            mode: 0o750,
        });
        actions.push(Action::WriteFile {
            path: layout.vmbackup_config(),
            mode: PUBLIC,
            purpose: "the bucket's region for vmbackup and vmrestore (AWS config)".to_owned(),
            contents: format!("# Written by probenet install.\n[default]\nregion = {region}\n"),
        });
        actions.push(Action::WriteS3Credentials {
            file: layout.vmbackup_credentials(),
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
        });
    }
    actions
}

/// The AWS shared-credentials file of a key.
pub fn credentials_file(access_key_id: &str, secret_access_key: &str) -> String {
    format!(
        "# Written by probenet install for vmbackup and vmrestore.\n[default]\naws_access_key_id = {access_key_id}\n\
         aws_secret_access_key = {secret_access_key}\n"
    )
}

/// One run of `probenet vmbackup`.
#[derive(Debug, Clone)]
pub struct Job {
    /// VictoriaMetrics' base URL.
    pub store: String,
    /// The CA of its certificate.
    pub ca: Option<PathBuf>,
    /// Basic auth: the user and the password file.
    pub basic_auth: Option<(String, PathBuf)>,
    /// vmbackup and its flags (without `-snapshotName`).
    pub vmbackup: Vec<String>,
    /// The longest the backup may take.
    pub timeout: Duration,
}

impl Job {
    fn get(&self, path: &str) -> Get {
        Get {
            ca: self.ca.clone(),
            basic_auth: self.basic_auth.clone(),
            timeout: Duration::from_secs(120),
            ..Get::new(format!("{}{path}", self.store.trim_end_matches('/')))
        }
    }
}

/// Takes one backup: a snapshot, vmbackup of it, the snapshot deleted (also when vmbackup failed). Returns the
/// snapshot's name; `log` gets a line per step (never a secret).
pub fn run(job: &Job, http: &dyn Http, log: &mut dyn std::io::Write) -> Result<String, String> {
    let (status, body) = http.get(&job.get("/snapshot/create")).map_err(|error| error.to_string())?;
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let snapshot = answer["snapshot"].as_str().unwrap_or_default().to_owned();
    if status != 200 || answer["status"] != "ok" || !valid_snapshot(&snapshot) {
        let shown: String = body.chars().take(200).collect();
        return Err(format!("VictoriaMetrics made no snapshot: status {status}: {shown}"));
    }
    let _ = writeln!(log, "vmbackup: snapshot {snapshot} made; backing it up");
    let backed_up = vmbackup(job, &snapshot);
    let deleted = http.get(&job.get(&format!("/snapshot/delete?snapshot={snapshot}")));
    if !matches!(deleted, Ok((200, _))) {
        let _ = writeln!(log, "vmbackup: snapshot {snapshot} not deleted: {deleted:?}");
    }
    backed_up.map(|took| {
        let _ = writeln!(log, "vmbackup: snapshot {snapshot} backed up in {:.1}s", took.as_secs_f64());
        snapshot
    })
}

fn valid_snapshot(name: &str) -> bool {
    !name.is_empty() && name.len() < 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn vmbackup(job: &Job, snapshot: &str) -> Result<Duration, String> {
    let Some((program, flags)) = job.vmbackup.split_first() else { return Err("no vmbackup command".to_owned()) };
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(flags)
        .arg(format!("-snapshotName={snapshot}"))
        .stdin(Stdio::null())
        .spawn()
        .map_err(|error| format!("{program}: {error}"))?;
    // Bounded: polled until it exits or the timeout, then killed.
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(started.elapsed()),
            Ok(Some(status)) => return Err(format!("{program} failed ({status}); its output is above")),
            Ok(None) if started.elapsed() > job.timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} took longer than {}s: stopped", job.timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(error) => return Err(format!("{program}: {error}")),
        }
    }
}
