//! The test: `probenet up` over a store seeded with two days of results (three checks, three regions,
//! failures, retries, a quorum, a pause and a mute window, a silent prober) closes the ledger hours, and its
//! overview, check pages and status page show the same uptimes as `probenet report --format json` over the same
//! windows: exactly (the ratio) on the check and status pages, to the hundredth of a percent the overview's
//! compact JSON carries.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use probenet_checks::wire::RunResult;
use probenet_checks::{Outcome, Reason};
use probenet_exporters::store::{SqliteStore, Store, StoreOptions};
use serde_json::Value;

use crate::util::processes::{Kill, command, free_port, now_ms, wait_for};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Seeded minutes: two days.
const MINUTES: i64 = 2 * 1440;

fn rfc3339(ms: i64) -> String {
    probenet_alerting::ledger::render::rfc3339(ms)
}

/// `web` (all regions; down when 2 are, one retry), `api` (all; down when one is, two retries), `db` (eu, us;
/// the default quorum, no rule), every minute. A pause of `api` and a mute of `web` in the seeded days; from
/// the end of the seed on, everything is paused (the probers of `probenet up` add nothing that counts).
fn config(dir: &Path, t0: i64) -> std::path::PathBuf {
    let path = dir.join("checks.yaml");
    let at = |minute: i64| rfc3339(t0 + minute * MINUTE);
    let yaml = format!(
        "regions: {{eu: {{}}, us: {{}}, ap: {{}}}}\n\
         dashboard:\n  status_page: {{title: Status, checks: [web, api]}}\n\
         checks:\n  \
         - {{name: web, interval: 1m, http: {{url: \"http://127.0.0.1:9/\"}}}}\n  \
         - {{name: api, interval: 1m, http: {{url: \"http://127.0.0.1:9/\"}}}}\n  \
         - {{name: db, interval: 1m, regions: [eu, us], tcp: {{target: \"127.0.0.1:9\"}}}}\n\
         alerts:\n  \
         - {{name: web-down, checks: [web], failed_regions: 2, consecutive: 2}}\n  \
         - {{name: api-down, checks: [api], failed_regions: 1, consecutive: 3}}\n\
         maintenance:\n  \
         - {{name: upgrade, checks: [api], start: {}, end: {}, mode: pause}}\n  \
         - {{name: quiet, checks: [web], start: {}, end: {}, mode: mute}}\n  \
         - {{name: test, checks: [web, api, db], start: {}, end: {}, mode: pause}}\n",
        at(300),
        at(420),
        at(1700),
        at(1760),
        at(MINUTES),
        at(MINUTES + 30 * 1440),
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Whether `check` fails in `region` at `minute` of the seed; `None`: no result (the prober was away).
fn fails(check: &str, region: &str, minute: i64) -> Option<bool> {
    let within = |from: i64, to: i64| (from..to).contains(&minute);
    Some(match (check, region) {
        // Both across the 01:00 edge (3 runs: down), 30 minutes together, single failures (forgiven), a
        // streak of 2 in us alone (down in us, not for the check), both in the mute window.
        ("web", "eu") => within(59, 62) || within(600, 630) || minute == 100 || minute == 1000 || within(1710, 1720),
        ("web", "us") => within(59, 62) || within(600, 630) || within(1500, 1502) || within(1710, 1720),
        ("web", "ap") if within(2000, 2360) => return None,
        // Three in a row (down), two (forgiven), and in the pause window (left out).
        ("api", "us") => within(1200, 1203) || within(1300, 1302) || within(350, 360),
        ("db", "eu") => within(2400, 2460),
        _ => false,
    })
}

fn seed(store: &SqliteStore, t0: i64) {
    let mut batch = Vec::new();
    for minute in 0..MINUTES {
        for (check, regions) in [("web", &["eu", "us", "ap"][..]), ("api", &["eu", "us", "ap"]), ("db", &["eu", "us"])]
        {
            for region in regions {
                let Some(failed) = fails(check, region, minute) else { continue };
                let at = t0 + minute * MINUTE;
                let outcome = if failed {
                    Outcome::failed(Reason::Status, "expected status 200, got 503")
                } else {
                    Outcome::up(0.05)
                };
                batch.push(RunResult {
                    check: check.into(),
                    region: (*region).into(),
                    planned_at_ms: at,
                    started_at_ms: at + 5,
                    prober: format!("p-{region}"),
                    outcome,
                });
            }
        }
    }
    store.ingest(batch).unwrap();
}

/// `probenet report --format json` over `[from, to)`.
fn report(config: &Path, data: &Path, from: i64, to: i64) -> Value {
    let output = command()
        .arg("report")
        .arg("-c")
        .arg(config)
        .arg("--data")
        .arg(data)
        .args(["--from", &rfc3339(from), "--to", &rfc3339(to), "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The report's uptime of `check` in `region` (`None`: the quorum view).
fn uptime(report: &Value, check: &str, region: Option<&str>) -> Option<f64> {
    let found = report["checks"].as_array().unwrap().iter().find(|c| c["check"] == check).unwrap();
    let figures = match region {
        None => &found["overall"],
        Some(region) => found["regions"].as_array().unwrap().iter().find(|r| r["region"] == region).unwrap(),
    };
    figures["uptime"].as_f64()
}

fn get(client: &reqwest::blocking::Client, url: &str) -> Value {
    let response = client.get(url).send().unwrap();
    assert!(response.status().is_success(), "{url}: {}", response.status());
    response.json().unwrap()
}

#[test]
#[allow(clippy::float_cmp)]
fn the_dashboard_the_status_page_and_the_report_show_the_same_uptimes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The seed ends an hour before this hour, so its last hour is closed when the scheduler starts.
    let t0 = now_ms().div_euclid(HOUR) * HOUR - HOUR - MINUTES * MINUTE;
    let config = config(dir.path(), t0);
    seed(&SqliteStore::open(&data.join("store"), StoreOptions::default()).unwrap(), t0);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("up.log");
    let up = Kill(
        command()
            .args(["up", "-c"])
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(&data)
            .args(["--duration", "300s"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    );
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    // The ledger task catches up on the seeded hours: the overview says up to which hour.
    let mut overview = Value::Null;
    wait_for("the ledger hours up to the last closed hour", Duration::from_secs(90), &log, || {
        let closable = (now_ms() - 120_000).div_euclid(HOUR) * HOUR;
        overview = client
            .get(format!("{base}/api/ui/overview"))
            .send()
            .ok()
            .and_then(|response| response.json::<Value>().ok())
            .unwrap_or(Value::Null);
        overview["uptime_as_of"].as_i64() == Some(closable)
    });
    // Read again once the overview is computed after the last hour (it is cached for a few seconds).
    std::thread::sleep(Duration::from_secs(6));
    let overview = get(&client, &format!("{base}/api/ui/overview"));
    let as_of = overview["uptime_as_of"].as_i64().unwrap();
    let from = as_of - 7 * DAY;
    let pages: Vec<(&str, Value)> = ["web", "api", "db"]
        .into_iter()
        .map(|check| (check, get(&client, &format!("{base}/api/ui/checks/{check}?from={from}&to={as_of}"))))
        .collect();
    let status = get(&client, &format!("{base}/api/ui/status"));
    drop(up);

    // The overview: each cell's 24 h, 7 d and 30 d, in hundredths of a percent.
    let regions: Vec<String> =
        overview["regions"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    let mut compared = 0;
    for (index, days) in [(3, 1), (4, 7), (5, 30)] {
        let report = report(&config, &data, as_of - days * DAY, as_of);
        for row in overview["checks"].as_array().unwrap() {
            let check = row[0].as_str().unwrap();
            for (cell, region) in row[5].as_array().unwrap().iter().zip(&regions) {
                if cell.is_null() {
                    continue;
                }
                let expected = uptime(&report, check, Some(region)).map(probenet_dashboard::compact::uptime_hundredths);
                assert_eq!(cell[index].as_i64(), expected, "{check} in {region} over {days} days");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 3 * 8);
    // Exactly: the seconds up and down the overview's figures are made of (the stored hours' sums), per region and
    // for each check as a whole.
    let store = SqliteStore::open(&data.join("store"), StoreOptions::default()).unwrap();
    for days in [1, 7, 30] {
        let report = report(&config, &data, as_of - days * DAY, as_of);
        for sum in store.ledger_sums(None, as_of - days * DAY, as_of).unwrap() {
            let found = report["checks"].as_array().unwrap().iter().find(|c| c["check"] == sum.check.as_str()).unwrap();
            let figures = match &sum.region {
                None => &found["overall"],
                Some(region) => {
                    found["regions"].as_array().unwrap().iter().find(|r| r["region"] == region.as_str()).unwrap()
                }
            };
            let seconds = |ms: i64| Some(ms as f64 / 1000.0);
            let got = [sum.ms.up_ms, sum.ms.down_ms, sum.ms.unknown_ms, sum.ms.maintenance_ms].map(seconds);
            let expected = ["up_seconds", "down_seconds", "unknown_seconds", "maintenance_seconds"]
                .map(|field| figures[field].as_f64());
            // Hours before the oldest result were not written: unknown in the report, missing here.
            assert_eq!(got[..2], expected[..2], "{} {:?} over {days} days", sum.check, sum.region);
            assert_eq!(got[3], expected[3], "{} {:?} over {days} days", sum.check, sum.region);
        }
    }
    drop(store);

    // The check pages: each region over the 7 days before the last closed hour, exactly.
    let week = report(&config, &data, from, as_of);
    for (check, page) in &pages {
        assert_eq!(page["uptime_as_of_ms"].as_i64(), Some(as_of));
        for region in page["regions"].as_array().unwrap() {
            let name = region["region"].as_str().unwrap();
            assert_eq!(region["uptime"].as_f64(), uptime(&week, check, Some(name)), "{check} in {name}");
        }
    }
    // The figures are the seed's: web's us streak of two is down for us alone; api's retries forgive two.
    // (Minutes up and down, as the ledger divides seconds.)
    let ratio = |up: i64, down: i64| (up * 60) as f64 / ((up * 60) as f64 + (down * 60) as f64);
    assert_eq!(uptime(&week, "web", Some("us")), Some(ratio(MINUTES - 45, 45)));
    assert_eq!(uptime(&week, "web", Some("eu")), Some(ratio(MINUTES - 43, 43)));
    assert_eq!(uptime(&week, "web", None), Some(ratio(MINUTES - 43, 43)));
    assert_eq!(uptime(&week, "api", None), Some(ratio(MINUTES - 120 - 3, 3)));

    // The status page: every daily bar, and the uptime over them, for the check as a whole.
    for (position, check) in ["web", "api"].into_iter().enumerate() {
        let shown = &status["checks"][position];
        let daily = shown["daily"].as_array().unwrap();
        assert_eq!(daily.len(), 30);
        let first = daily[0]["day_ms"].as_i64().unwrap();
        for day in daily {
            let start = day["day_ms"].as_i64().unwrap();
            if start >= as_of {
                assert!(day["uptime"].is_null());
                continue;
            }
            let expected = uptime(&report(&config, &data, start, (start + DAY).min(as_of)), check, None);
            assert_eq!(day["uptime"].as_f64(), expected, "{check} on day {start}");
        }
        assert_eq!(shown["uptime"].as_f64(), uptime(&report(&config, &data, first, as_of), check, None), "{check}");
    }
}
