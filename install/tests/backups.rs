//! Backups in `install local`: with `objects` in the checks config, the plan runs `probenet vmbackup` around
//! vmbackup on a systemd timer (or repeating under the supervisor) with the right flags, the S3 keys only in a
//! 0600 credentials file; the cost shows the bucket after a month; and a real vmbackup of a real
//! VictoriaMetrics to a real S3 server (Garage), restored with vmrestore into a fresh data directory, serves the
//! same samples.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use probenet_install::http::{Get, Http, HttpError};
use probenet_install::local::{self, Component, Health, Role};
use probenet_install::plan::{Action, ServiceManager};
use probenet_install::{Layout, cost, vmbackup};

const KEY_ID: &str = "GKkeyid0123456789abcdef";
const SECRET: &str = "secret-5f0c1d2e3a4b5c6d7e8f9a0b1c2d3e4f";

const STACK: &str =
    "name: test\nchecks: [checks.yaml]\nscheduler: {host: probenet.example.com}\nregions:\n  eu-west: {}\n";

/// A checks config with a bucket on an S3-compatible server, keys by `${file:...}` in `dir`.
fn checks_with_bucket(dir: &Path, extra: &str) -> String {
    std::fs::write(dir.join("key-id"), KEY_ID).unwrap();
    std::fs::write(dir.join("secret"), SECRET).unwrap();
    format!(
        "objects:\n  url: s3://probenet-bucket/site-a\n  endpoint: http://127.0.0.1:3900\n  region: garage\n  \
         access_key_id: ${{file:{dir}/key-id}}\n  secret_access_key: ${{file:{dir}/secret}}\n  backup_every: 6h\n{extra}\
         regions:\n  eu-west: {{}}\nchecks:\n  - name: web\n    http: {{url: https://shop.example/}}\n",
        dir = dir.display()
    )
}

fn load_with_bucket(extra: &str) -> (tempfile::TempDir, probenet_install::Loaded) {
    let (dir, path) = common::write(STACK, "");
    std::fs::write(dir.path().join("checks.yaml"), checks_with_bucket(dir.path(), extra)).unwrap();
    let loaded = probenet_install::load(&path).unwrap_or_else(|errors| panic!("{errors}"));
    (dir, loaded)
}

fn backup_component(components: &[Component]) -> &Component {
    components.iter().find(|component| component.name == vmbackup::COMPONENT).expect("a vmbackup component")
}

fn written(plan: &probenet_install::Plan, path: &Path) -> String {
    plan.actions()
        .find_map(|action| match action {
            Action::WriteFile { path: at, contents, .. } if at == path => Some(contents.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the plan writes no {}", path.display()))
}

#[test]
fn the_plan_runs_vmbackup_on_a_timer_with_the_keys_only_in_a_private_file() {
    let (dir, loaded) = load_with_bucket("");
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let mut plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    let component = backup_component(&plan.components);
    assert_eq!(component.role, Role::Backup);
    assert_eq!(component.health, Health::Periodic);
    assert_eq!(component.every_s, Some(6 * 3600));
    let unit = written(&plan, &layout.unit_file(vmbackup::COMPONENT));
    let exec = unit.lines().find_map(|line| line.strip_prefix("ExecStart=")).unwrap();
    let data = layout.store_data();
    let expected = format!(
        "{binary} vmbackup --store https://127.0.0.1:8428 --ca {ca} --user probenet --password-file {password} -- \
         /usr/bin/vmbackup -storageDataPath={data} \
         -dst=s3://probenet-bucket/site-a/backups/victoria-metrics/test/latest -customS3Endpoint=http://127.0.0.1:3900 \
         -s3ForcePathStyle=true -credsFilePath={creds} -configFilePath={config} -loggerLevel=WARN",
        binary = layout.binary().display(),
        ca = layout.ca_cert().display(),
        password = layout.store_password().display(),
        data = data.display(),
        creds = layout.vmbackup_credentials().display(),
        config = layout.vmbackup_config().display(),
    );
    assert_eq!(exec, expected);
    assert!(unit.contains("Type=oneshot\n") && !unit.contains("Restart="), "{unit}");
    assert!(!unit.contains("[Install]"), "started by its timer only: {unit}");
    let timer = written(&plan, &layout.timer_file(vmbackup::COMPONENT));
    for line in
        ["Unit=probenet-vmbackup.service", "OnActiveSec=10min", "OnUnitActiveSec=21600s", "WantedBy=timers.target"]
    {
        assert!(timer.lines().any(|l| l == line), "{line} missing from the timer:\n{timer}");
    }
    assert_eq!(
        written(&plan, &layout.vmbackup_config()),
        "# Written by probenet install.\n[default]\nregion = garage\n"
    );

    // The keys: one action with the references, carried out into a 0600 file; nowhere else.
    let credentials: Vec<&Action> =
        plan.actions().filter(|action| matches!(action, Action::WriteS3Credentials { .. })).collect();
    assert_eq!(credentials.len(), 1);
    let Action::WriteS3Credentials { file, access_key_id, secret_access_key } = credentials[0].clone() else {
        unreachable!()
    };
    assert_eq!(file, layout.vmbackup_credentials());
    plan.compare_with_host();
    let shown = plan.to_string();
    assert!(shown.contains(&format!("S3 keys for vmbackup and vmrestore (${{file:{}/key-id}}", dir.path().display())));
    let supervised = local::plan(&loaded, &layout, ServiceManager::Supervisor);
    let everything = format!("{shown}\n{plan:?}\n{supervised:?}");
    for action in plan.actions().chain(supervised.actions()) {
        if let Action::WriteFile { contents, .. } = action {
            assert!(!contents.contains(SECRET) && !contents.contains(KEY_ID), "a key in a written file: {contents}");
        }
    }
    assert!(!everything.contains(SECRET) && !everything.contains(KEY_ID), "a key in the plan");
    probenet_install::apply::write_s3_credentials(&file, &access_key_id, &secret_access_key).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text,
        format!(
            "# Written by probenet install for vmbackup and vmrestore.\n[default]\naws_access_key_id = {KEY_ID}\n\
             aws_secret_access_key = {SECRET}\n"
        )
    );
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    plan.compare_with_host();
    let step = plan.steps.iter().find(|step| matches!(step.action, Action::WriteS3Credentials { .. })).unwrap();
    assert_eq!(step.change, probenet_install::plan::Change::Keep, "the same keys are kept");

    // Without systemd, the supervisor runs the same command, repeating every 6 hours.
    let supervised = backup_component(&supervised.components).supervised();
    assert_eq!(supervised.exec[1..3], ["vmbackup".to_owned(), "--every=21600".to_owned()]);
    assert_eq!(supervised.every_s, None);
}

#[test]
fn the_vmbackup_units_pass_systemd_analyze_verify() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() || !Path::new(vmbackup::VMBACKUP).exists() {
        assert!(std::env::var_os("CI").is_none(), "systemd-analyze and vmbackup are needed on CI");
        println!("skip: the_vmbackup_units_pass_systemd_analyze_verify: no systemd-analyze or vmbackup");
        return;
    }
    let (dir, loaded) = load_with_bucket("");
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    let units = [layout.unit_file(vmbackup::COMPONENT), layout.timer_file(vmbackup::COMPONENT)];
    for unit in &units {
        std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
        std::fs::write(unit, written(&plan, unit)).unwrap();
    }
    std::fs::create_dir_all(layout.binary().parent().unwrap()).unwrap();
    std::fs::copy("/bin/true", layout.binary()).unwrap();
    let output = Command::new(analyze).args(["verify", "--man=no", "--generators=no"]).args(&units).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let problems: Vec<&str> = text
        .lines()
        .filter(|line| {
            ["Unknown", "Invalid", "Failed", "not executable", "Missing '='"].iter().any(|s| line.contains(s))
        })
        .collect();
    assert!(output.status.success() && problems.is_empty(), "{text}");
}

#[test]
fn without_a_bucket_or_with_backups_off_there_is_no_vmbackup() {
    let (_dir, loaded) = common::load(common::STACK, common::CHECKS);
    let layout = Layout::new(&loaded.stack);
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    assert!(plan.components.iter().all(|component| component.role != Role::Backup));
    assert!(plan.cost.bucket.is_none());
    assert!(!plan.to_string().contains("bucket after a month"));
    let (_dir, loaded) = load_with_bucket("  backup_keep: 3\n");
    assert!(vmbackup::scheduled(&loaded).is_some());
    let text = std::fs::read_to_string(_dir.path().join("checks.yaml"))
        .unwrap()
        .replace("backup_every: 6h", "backup_every: 0s");
    std::fs::write(_dir.path().join("checks.yaml"), text).unwrap();
    let loaded = probenet_install::load(&_dir.path().join("stack.yaml")).unwrap_or_else(|errors| panic!("{errors}"));
    assert!(local::plan(&loaded, &layout, ServiceManager::Systemd).components.iter().all(|c| c.role != Role::Backup));
}

#[test]
fn the_cost_shows_the_bucket_after_a_month() {
    let (_dir, loaded) = load_with_bucket("  archive_after: 7d\n  backup_keep: 4\n");
    let layout = Layout::new(&loaded.stack);
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    let bucket = plan.cost.bucket.clone().expect("a bucket cost");
    // One HTTPS check every 60 s (the default interval) from one region: 1,440 runs a day.
    let runs = 1440.0;
    assert_eq!(plan.cost.runs_per_day, runs);
    assert_eq!(bucket.artifacts_bytes, 0.0, "no browser checks, no screenshots");
    assert_eq!(bucket.archive_bytes_per_month, runs * 30.0 * cost::ARCHIVE_BYTES_PER_RESULT);
    let store = runs * (7.0 * cost::STORE_BYTES_PER_RESULT + 23.0 * cost::ROLLUP_BYTES_PER_RESULT);
    assert_eq!(bucket.store_backups_bytes, 4.0 * store);
    assert_eq!(bucket.victoria_metrics_backup_bytes, plan.cost.victoria_metrics_bytes_per_day * 30.0);
    let shown = plan.cost.to_string();
    for line in [
        "  bucket after a month: ",
        "    artifacts:        0 B (screenshots of failed browser runs",
        "    archive:          ",
        "    store backups:    ",
        "    VictoriaMetrics backup: ",
    ] {
        assert!(shown.lines().any(|l| l.starts_with(line)), "{line:?} missing:\n{shown}");
    }
    assert!(shown.contains(&format!("bucket after a month: {}", cost::human_bytes(bucket.total()))), "{shown}");
}

/// The archive's figure is conservative: realistic HTTPS results as zstd NDJSON, one file per day and check
/// (two regions, one run a minute), take less than [`cost::ARCHIVE_BYTES_PER_RESULT`] each.
#[test]
fn archived_results_take_less_than_the_figure() {
    use probenet_checks::outcome::{Assertion, Outcome, Phase, State};
    use probenet_checks::wire::RunResult;
    let mut seed = 12_345_u64;
    let mut next = move |bound: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut ndjson = String::new();
    let mut count = 0_u64;
    for minute in 0..1440_i64 {
        for region in ["eu-west", "us-east"] {
            let planned = 1_780_000_000_000 + minute * 60_000;
            let mut nanos = |base: u64, spread: u64| Duration::from_nanos(base + next(spread)).as_secs_f64();
            let phases: Vec<Phase> = [
                ("resolve", 2_000_000),
                ("connect", 20_000_000),
                ("tls", 40_000_000),
                ("processing", 80_000_000),
                ("transfer", 5_000_000),
            ]
            .into_iter()
            .map(|(name, base)| Phase { name: name.to_owned(), seconds: nanos(base, base) })
            .collect();
            let result = RunResult {
                check: "shop-checkout-api".to_owned(),
                region: region.to_owned(),
                planned_at_ms: planned,
                started_at_ms: planned + next(40) as i64,
                prober: format!("{region}-1"),
                outcome: Outcome {
                    state: State::Up,
                    duration_seconds: phases.iter().map(|phase| phase.seconds).sum(),
                    phases,
                    reason: None,
                    error: None,
                    assertions: vec![Assertion {
                        name: "status".to_owned(),
                        expected: "200".to_owned(),
                        observed: "200".to_owned(),
                        passed: true,
                    }],
                    details: serde_json::json!({"remote_address": "203.0.113.10:443", "status_code": 200,
                        "http_version": "HTTP/2", "redirects": 0, "content_length": 5120 + next(200), "tls": true,
                        "tls_version": "TLSv1.3", "cipher_suite": "TLS13_AES_128_GCM_SHA256",
                        "certificate": {"earliest_expiry_unix": 1_800_000_000, "last_chain_expiry_unix": 1_900_000_000}}),
                    log: Vec::new(),
                    artifacts: Vec::new(),
                },
            };
            ndjson.push_str(&serde_json::to_string(&result).unwrap());
            ndjson.push('\n');
            count += 1;
        }
    }
    // The archive writes zstd level 9 (docs/storage-archive.md).
    let compressed = zstd::encode_all(ndjson.as_bytes(), 9).unwrap();
    let per_result = compressed.len() as f64 / count as f64;
    println!("zstd NDJSON: {per_result:.1} bytes per result ({} bytes of JSON each)", ndjson.len() as u64 / count);
    assert!(per_result < cost::ARCHIVE_BYTES_PER_RESULT, "{per_result:.1} bytes per result");
    assert!(per_result > cost::ARCHIVE_BYTES_PER_RESULT / 4.0, "the figure is not wildly high: {per_result:.1}");
}

/// HTTP GETs with reqwest (blocking), for `probenet vmbackup`'s snapshot calls.
struct Client;

impl Http for Client {
    fn get(&self, get: &Get) -> Result<(u16, String), HttpError> {
        let error = |message: String| HttpError { url: get.url.clone(), message };
        let client =
            reqwest::blocking::Client::builder().timeout(get.timeout).build().map_err(|e| error(e.to_string()))?;
        let response = client.get(&get.url).send().map_err(|e| error(e.to_string()))?;
        let status = response.status().as_u16();
        Ok((status, response.text().map_err(|e| error(e.to_string()))?))
    }
}

/// Every sample of the test's series, as VictoriaMetrics exports them (JSON lines), sorted.
async fn export(base: &str) -> Vec<String> {
    let url = format!("{base}/api/v1/export?match[]={{__name__=~\"probenet_backup_test.*\"}}");
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_victoria_metrics_backup_restores_into_a_fresh_victoria_metrics_with_the_same_samples() {
    let test = "a_victoria_metrics_backup_restores_into_a_fresh_victoria_metrics_with_the_same_samples";
    let Some(garage) = probenet_testkit::garage::Garage::start_or_skip(test, "probenet-bucket") else { return };
    for program in [vmbackup::VMBACKUP, "/usr/bin/vmrestore"] {
        assert!(Path::new(program).exists(), "{program} is missing: install Debian's victoria-metrics package");
    }
    let store = probenet_testkit::stores::victoria_metrics().await;
    // 2 series x 120 samples, a minute apart, over the last two hours.
    let now_ms =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let mut lines = String::new();
    for minute in 0..120_i64 {
        let at = now_ms - (120 - minute) * 60_000;
        lines.push_str(&format!(
            "probenet_backup_test_seconds{{check=\"web\",region=\"eu-west\"}} {}.{minute} {at}\n",
            minute % 7
        ));
        lines.push_str(&format!("probenet_backup_test_up{{check=\"web\",region=\"us-east\"}} {} {at}\n", minute % 2));
    }
    let client = reqwest::Client::new();
    let response = client.post(format!("{}/api/v1/import/prometheus", store.base)).body(lines).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    client.get(format!("{}/internal/force_flush", store.base)).send().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        let exported = export(&store.base).await;
        let samples: usize = exported.iter().map(|line| line.matches(',').count()).sum();
        if exported.len() == 2 && samples >= 2 * 119 * 2 {
            break exported;
        }
        assert!(Instant::now() < deadline, "the samples are not there: {exported:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The plan's command, against this VictoriaMetrics (plain HTTP, no auth) and this Garage.
    let dir = tempfile::tempdir().unwrap();
    let checks = format!(
        "{}  backup_every: 6h\nregions:\n  eu-west: {{}}\nchecks:\n  - name: web\n    http: {{url: https://shop.example/}}\n",
        garage.objects_yaml(dir.path(), "site-a")
    );
    let (stack_dir, loaded) = common::load(STACK, &checks);
    let layout = Layout::new(&loaded.stack).with_root(stack_dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    for action in plan.actions() {
        match action {
            Action::WriteFile { path, contents, .. } if *path == layout.vmbackup_config() => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, contents).unwrap();
            }
            Action::WriteS3Credentials { file, access_key_id, secret_access_key } => {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                probenet_install::apply::write_s3_credentials(file, access_key_id, secret_access_key).unwrap();
            }
            _ => {}
        }
    }
    let exec = &backup_component(&plan.components).exec;
    let at = exec.iter().position(|word| word == "--").unwrap();
    let data_flag = format!("-storageDataPath={}", layout.store_data().display());
    let vmbackup_command: Vec<String> = exec[at + 1..]
        .iter()
        .map(
            |word| if *word == data_flag { format!("-storageDataPath={}", store.data.display()) } else { word.clone() },
        )
        .collect();
    assert!(
        vmbackup_command
            .iter()
            .any(|word| word == "-dst=s3://probenet-bucket/site-a/backups/victoria-metrics/test/latest")
    );
    let job = vmbackup::Job {
        store: store.base.clone(),
        ca: None,
        basic_auth: None,
        vmbackup: vmbackup_command,
        timeout: Duration::from_secs(300),
    };
    let mut log = Vec::new();
    let snapshot = tokio::task::spawn_blocking(move || {
        let done = vmbackup::run(&job, &Client, &mut log);
        (done, String::from_utf8_lossy(&log).into_owned())
    })
    .await
    .unwrap();
    let (snapshot, log) = snapshot;
    let snapshot = snapshot.unwrap_or_else(|error| panic!("{error}\n{log}"));
    assert!(!log.contains(&garage.secret), "{log}");
    assert!(!store.data.join("snapshots").join(&snapshot).exists(), "the snapshot is deleted after the backup");
    let listed = garage.cli(&["bucket", "info", "probenet-bucket"]);
    assert!(!listed.contains("Objects: 0"), "{listed}");

    // vmrestore into a fresh data directory, with the install's S3 flags.
    let fresh = dir.path().join("restored");
    let mut restore = Command::new("/usr/bin/vmrestore");
    restore
        .arg("-src=s3://probenet-bucket/site-a/backups/victoria-metrics/test/latest")
        .arg(format!("-storageDataPath={}", fresh.display()))
        .args(vmbackup::s3_flags(loaded.config.objects.as_ref().unwrap(), &layout));
    let output = restore.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "vmrestore failed: {text}");
    assert!(!text.contains(&garage.secret), "the secret in vmrestore's output");
    drop(store);
    let restored = probenet_testkit::stores::victoria_metrics_on(Some(&fresh)).await;
    assert_eq!(export(&restored.base).await, before, "the restored VictoriaMetrics answers the same samples");
}
