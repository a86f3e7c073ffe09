//! `probenet report` on a real store seeded with yesterday's results: the figures computed by hand in CSV, JSON
//! and HTML, the selection by names and labels, bad arguments (exit 2).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use probenet_checks::wire::RunResult;
use probenet_checks::{Outcome, Reason};
use probenet_exporters::store::{SqliteStore, Store, StoreOptions};

use crate::util::processes::command;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Yesterday, 00:00 UTC.
fn yesterday() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    now.div_euclid(DAY) * DAY - DAY
}

fn rfc3339(ms: i64) -> String {
    probenet_alerting::ledger::render::rfc3339(ms)
}

/// `web` (eu, us; down when both are, one retry) and `api` (eu), every minute, and a pause window for `web`
/// from 02:00 to 03:00.
fn config(dir: &Path, t0: i64) -> std::path::PathBuf {
    let path = dir.join("checks.yaml");
    let yaml = format!(
        "regions: {{eu: {{}}, us: {{}}}}\n\
         dashboard:\n  status_page: {{title: Status, checks: [web]}}\n\
         checks:\n  - name: web\n    interval: 1m\n    labels: {{team: web}}\n    http: {{url: \"http://127.0.0.1:9/\"}}\n  \
         - name: api\n    interval: 1m\n    regions: [eu]\n    labels: {{team: api}}\n    http: {{url: \"http://127.0.0.1:9/\"}}\n\
         alerts:\n  - name: web-down\n    checks: [web]\n    failed_regions: 2\n    consecutive: 2\n\
         maintenance:\n  - name: upgrade\n    checks: [web]\n    start: {}\n    end: {}\n    mode: pause\n",
        rfc3339(t0 + 2 * HOUR),
        rfc3339(t0 + 3 * HOUR)
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Yesterday's runs, every minute. `web`: none in the pause (02:00-03:00); both regions down 10:00-10:10 (600 s,
/// the failure message holds markup); eu alone down at 12:00 and up at 12:01 (forgiven by the retry). `api`: no
/// result 20:00-21:00 (the prober was away: 3 600 s unknown).
fn seed(store: &SqliteStore, t0: i64) {
    let mut batch = Vec::new();
    for minute in 0..1440 {
        let at = t0 + minute * MINUTE;
        let mut pairs = Vec::new();
        if !(t0 + 2 * HOUR..t0 + 3 * HOUR).contains(&at) {
            pairs.extend([("web", "eu"), ("web", "us")]);
        }
        if !(t0 + 20 * HOUR..t0 + 21 * HOUR).contains(&at) {
            pairs.push(("api", "eu"));
        }
        for (check, region) in pairs {
            let outage = check == "web" && (t0 + 10 * HOUR..t0 + 10 * HOUR + 10 * MINUTE).contains(&at);
            let blip = check == "web" && region == "eu" && at == t0 + 12 * HOUR;
            let outcome = if outage || blip {
                Outcome::failed(Reason::Status, "expected status 200, got <b>503</b>")
            } else {
                Outcome::up(0.05)
            };
            batch.push(RunResult {
                check: check.into(),
                region: region.into(),
                planned_at_ms: at,
                started_at_ms: at + 5,
                prober: format!("p-{region}"),
                outcome,
            });
        }
    }
    store.ingest(batch).unwrap();
}

fn report(config: &Path, data: &Path, args: &[&str]) -> (i32, String, String) {
    let output = command().arg("report").arg("-c").arg(config).arg("--data").arg(data).args(args).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

#[test]
#[allow(clippy::float_cmp)]
fn the_report_prints_the_hand_computed_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t0 = yesterday();
    let config = config(dir.path(), t0);
    seed(&SqliteStore::open(&data.join("store"), StoreOptions::default()).unwrap(), t0);
    let (from, to) = (rfc3339(t0), rfc3339(t0 + DAY));
    let window = ["--from", from.as_str(), "--to", to.as_str()];

    // CSV. web: 86 400 s - 3 600 paused - 600 down = 82 200 s up, in each region and as a whole (the blip at
    // 12:00 in eu is forgiven); uptime 82 200 / 82 800. api: 3 600 s unknown, 82 800 up, never down: 1.
    let (code, csv, stderr) = report(&config, &data, &[&window[..], &["--format", "csv"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let web = format!("{:.6}", 82_200.0 / 82_800.0);
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            probenet_alerting::ledger::render::CSV_HEADER.to_owned(),
            format!("1,web,quorum,,{from},{to},{web},{web},82200,600,0,3600,0,1"),
            format!("1,web,region,eu,{from},{to},{web},{web},82200,600,0,3600,0,1"),
            format!("1,web,region,us,{from},{to},{web},{web},82200,600,0,3600,0,1"),
            format!("1,api,quorum,,{from},{to},1.000000,1.000000,82800,0,3600,0,0,0"),
            format!("1,api,region,eu,{from},{to},1.000000,1.000000,82800,0,3600,0,0,0"),
        ]
    );

    // JSON: the policy, the downtime with its regions and reason, the maintenance window.
    let (code, json, stderr) =
        report(&config, &data, &[&window[..], &["--format", "json", "--checks", "web"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((json["policy"].as_i64(), json["policy_doc"].as_str()), (Some(1), Some("docs/uptime.md")));
    assert_eq!(json["checks"].as_array().unwrap().len(), 1);
    let web_json = &json["checks"][0];
    let down = &web_json["overall"]["downtime"][0];
    assert_eq!(down["start_ms"].as_i64(), Some(t0 + 10 * HOUR));
    assert_eq!(down["end_ms"].as_i64(), Some(t0 + 10 * HOUR + 10 * MINUTE));
    assert_eq!(down["regions"], serde_json::json!(["eu", "us"]));
    assert_eq!(down["reason"], "status");
    assert_eq!(web_json["maintenance"][0]["window"], "upgrade");
    assert_eq!(web_json["maintenance"][0]["mode"], "pause");
    assert_eq!(web_json["overall"]["uptime"].as_f64(), Some(82_200.0 / 82_800.0));

    // HTML: one page, the failure message escaped.
    let (code, html, stderr) = report(&config, &data, &[&window[..], &["--format", "html"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"), "{html}");
    assert!(html.contains("got &lt;b&gt;503&lt;/b&gt;") && !html.contains("<b>503"), "{html}");
    assert!(html.contains("policy version 1"), "{html}");
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"), "{html}");

    // By labels.
    let (code, csv, stderr) = report(&config, &data, &[&window[..], &["--labels", "team=api"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(csv.lines().skip(1).map(|line| line.split(',').nth(1).unwrap()).collect::<Vec<_>>(), ["api", "api"]);

    // Bad arguments: exit 2 with a clear message.
    let bad: [(&[&str], &str); 6] = [
        (&["--from", "last tuesday"], "is not a time"),
        (&["--from", &to, "--to", &from], "is not before"),
        (&["--from", &from, "--checks", "web,nope"], "no such check in the config: nope"),
        (&["--from", &from, "--labels", "team"], "KEY=VALUE"),
        (&["--from", &from, "--labels", "team=nobody"], "no check matches"),
        (&["--from", &from, "--format", "xml"], "invalid value 'xml'"),
    ];
    for (args, message) in bad {
        let (code, _, stderr) = report(&config, &data, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = report(&config, &dir.path().join("nowhere"), &window);
    assert_eq!((code, stderr.contains("no store in")), (2, true), "{stderr}");
}
