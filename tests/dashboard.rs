//! The dashboard of `probenet up`, in real headless Chromium, over a store seeded with 29 days of results: the
//! overview shows every check and region with the uptimes of the ledger hours the scheduler closed, a check page
//! shows a failure's screenshot, the status page needs no token while the dashboard does, no page logs a console
//! error.
//! Screenshots land in `target/test-artifacts/dashboard/up-*.png`.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use probenet_checks::outcome::Artifact;
use probenet_checks::wire::RunResult;
use probenet_checks::{Outcome, Phase, Reason};
use probenet_exporters::store::{SqliteStore, Store, StoreOptions};
use probenet_testkit::chromium::{Chromium, ONE_BROWSER};

const MINUTE: i64 = 60_000;
const DAY: i64 = 1_440 * MINUTE;
const TOKEN: &str = "dashboard-read-token-for-the-test";
/// A 1x1 PNG.
const PNG: [u8; 68] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x04, 0x00, 0x00, 0x00, 0xb5, 0x1c, 0x0c, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x49,
    0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0x60, 0x00, 0x00, 0x00, 0x06, 0x00, 0x02, 0x30, 0x81, 0xd0, 0x2f, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn outcome(up: bool, seconds: f64) -> Outcome {
    let mut outcome =
        if up { Outcome::up(0.0) } else { Outcome::failed(Reason::Status, "expected status 200, got 503") };
    outcome.duration_seconds = seconds;
    outcome.phases = vec![
        Phase { name: "connect".into(), seconds: seconds / 4.0 },
        Phase { name: "processing".into(), seconds: seconds / 2.0 },
    ];
    outcome
}

/// Runs every 10 minutes over 29 days up to an hour ago, none within 20 minutes of the 24-hour and 7-day
/// window edges, so the figures hold however long the test takes. `web` is up in `a`, down every 5th run in
/// `b`; `journey` fails every 4th run with a screenshot.
fn seed(store: &SqliteStore, now: i64) {
    let mut batch = Vec::new();
    let edges = [now - DAY, now - 7 * DAY];
    let mut at = (now - 29 * DAY).div_euclid(10 * MINUTE) * 10 * MINUTE;
    let mut index = 0;
    while at < now - 60 * MINUTE {
        if edges.iter().all(|edge| (at - edge).abs() > 20 * MINUTE) {
            for (check, region, up) in [
                ("web", "a", true),
                ("web", "b", index % 5 != 0),
                ("journey", "a", index % 4 != 0),
                ("journey", "b", true),
            ] {
                let mut outcome = outcome(up, 0.1 + (index % 7) as f64 * 0.01);
                if !up && check == "journey" {
                    outcome.reason = Some(Reason::Assertion);
                    outcome.error = Some("step 2: text \"Thank you\" not found".into());
                    outcome.artifacts.push(Artifact {
                        name: "failure.png".into(),
                        media_type: "image/png".into(),
                        data: PNG.to_vec(),
                        path: None,
                    });
                }
                batch.push(RunResult {
                    check: check.into(),
                    region: region.into(),
                    planned_at_ms: at,
                    started_at_ms: at + 3,
                    prober: format!("seed-{region}"),
                    outcome,
                });
            }
        }
        if batch.len() >= 2_000 {
            store.ingest(std::mem::take(&mut batch)).unwrap();
        }
        at += 10 * MINUTE;
        index += 1;
    }
    store.ingest(batch).unwrap();
}

fn percent(ratio: Option<f64>) -> String {
    probenet_dashboard::compact::format_uptime(ratio)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_of_probenet_up_shows_the_stores_figures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let now = now_ms();
    seed(&SqliteStore::open(&data.join("store"), StoreOptions::default()).unwrap(), now);

    // Checks that do not run during the test (once a year), so the page shows the seeded figures only.
    let config = dir.path().join("checks.yaml");
    std::fs::write(
        &config,
        "regions: {a: {}, b: {}}\n\
         dashboard:\n  title: Test network\n  token: \"${env:DASHBOARD_TOKEN}\"\n  \
         status_page: {title: Test status, checks: [web], names: {web: Web site}}\n\
         checks:\n  - name: web\n    schedule: \"0 0 1 1 *\"\n    http: {url: \"http://127.0.0.1:9/\"}\n  \
         - name: journey\n    schedule: \"0 0 1 1 *\"\n    browser:\n      steps:\n        \
         - goto: http://127.0.0.1:9/\n        - expect_text: Thank you\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let _up = Kill(
        std::process::Command::new(env!("CARGO_BIN_EXE_probenet"))
            .env("DASHBOARD_TOKEN", TOKEN)
            .env_remove("RUST_LOG")
            .args(["up", "-c"])
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(&data)
            .args(["--duration", "120s"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("up.log")).unwrap()))
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if client.get(format!("{base}/status")).send().await.is_ok_and(|response| response.status().is_success()) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "probenet up did not serve the status page; log in {}", dir.path().display());

    // The uptimes are the ledger hours the scheduler closed (from the oldest raw result kept): wait for the last
    // closed hour, then read the hours' sums from the store as the expected figures.
    let mut as_of = None;
    for _ in 0..450 {
        let closable = (now_ms() - 120_000).div_euclid(60 * MINUTE) * 60 * MINUTE;
        let overview = client.get(format!("{base}/api/ui/overview")).bearer_auth(TOKEN).send().await;
        let overview: serde_json::Value = match overview {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        as_of = overview["uptime_as_of"].as_i64();
        if as_of == Some(closable) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let as_of = as_of.expect("the ledger hours are closed");
    // The overview is computed again every few seconds: past that, it sums the hours up to `as_of`.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let expected: BTreeMap<(String, String), [String; 3]> = {
        let store = SqliteStore::open(&data.join("store"), StoreOptions::default()).unwrap();
        let window = |days: i64| {
            let rows = store.ledger_sums(None, as_of - days * DAY, as_of).unwrap();
            rows.into_iter()
                .filter_map(|row| Some(((row.check, row.region?), row.ms.uptime())))
                .collect::<BTreeMap<_, _>>()
        };
        let (day, week, month) = (window(1), window(7), window(30));
        month.keys().map(|key| (key.clone(), [percent(day[key]), percent(week[key]), percent(month[key])])).collect()
    };
    assert_eq!(expected.len(), 4);
    let web_b = &expected[&("web".to_owned(), "b".to_owned())][0];
    // One run in five fails; by time, a run covers until the next one (longer at the seed's gaps and after its
    // last run), so the day's figure is near 80%, not exactly.
    let web_b: f64 = web_b.trim_end_matches('%').parse().unwrap();
    assert!((70.0..=90.0).contains(&web_b), "the seed is as designed: {web_b}");

    // Without the token the dashboard refuses; the status page is public.
    assert_eq!(client.get(format!("{base}/")).send().await.unwrap().status().as_u16(), 401);
    assert_eq!(client.get(format!("{base}/api/ui/overview")).send().await.unwrap().status().as_u16(), 401);
    let status = client.get(format!("{base}/api/ui/status")).send().await.unwrap();
    assert_eq!(status.status().as_u16(), 200);
    // The public page shows display names; the checks' internal names stay private.
    let status: serde_json::Value = status.json().await.unwrap();
    assert_eq!(status["checks"][0]["name"], "service-1", "{status}");
    let public = status.to_string();
    for line in std::fs::read_to_string(&config).unwrap().lines() {
        if let Some(name) = line.trim().strip_prefix("- name: ") {
            assert!(!public.contains(name.trim()), "the status page names the check {name}: {public}");
        }
    }

    let _one = ONE_BROWSER.lock().await;
    let chromium = Chromium::launch(1280, 900).await;
    let tab = chromium.page().await;

    // The public status page, in the browser, without a token.
    tab.open(&format!("{base}/status")).await;
    let text: String = tab.eval("document.body.innerText").await;
    assert!(text.contains("Test status") && text.contains("Web site"), "{text}");
    tab.screenshot("up-status").await;

    // Logging in once with ?token= sets the cookie; the overview shows the store's figures.
    tab.open(&format!("{base}/?token={TOKEN}")).await;
    let url: String = tab.eval("location.href").await;
    assert!(!url.contains(TOKEN), "the token leaves the address bar: {url}");
    let json: String = tab
        .eval(
            r#"JSON.stringify([...document.querySelectorAll('#grid .row')].flatMap(row =>
              [...row.querySelectorAll('.c:not(.na)')].map(cell => [row.dataset.check, cell.dataset.region,
                cell.querySelector('.u24').textContent, cell.querySelector('.u7').textContent,
                cell.querySelector('.u30').textContent])))"#,
        )
        .await;
    let rows: Vec<[String; 5]> = serde_json::from_str(&json).unwrap();
    let shown: BTreeMap<(String, String), [String; 3]> =
        rows.into_iter().map(|[check, region, a, b, c]| ((check, region), [a, b, c])).collect();
    assert_eq!(shown, expected, "the overview shows the store's uptimes for every check and region");
    // Each cell's bar shows the store's last 12 runs: `web` in `b` failed every 5th run.
    let bars: Vec<(String, String, Vec<String>)> = tab
        .eval("[...document.querySelectorAll('#grid .row a.c')].map(cell => { cell.querySelector('svg.runs').dispatchEvent(new MouseEvent('mouseover', { bubbles: true })); return [cell.closest('.row').dataset.check, cell.dataset.region, [...cell.querySelectorAll('svg.runs rect')].map(r => r.getAttribute('class'))]; })")
        .await;
    assert_eq!(bars.len(), 4, "{bars:?}");
    for (check, region, blocks) in &bars {
        assert_eq!(blocks.len(), 12, "{check} in {region}: {blocks:?}");
        let failed = blocks.iter().filter(|class| *class == "r2").count();
        let expected = match (check.as_str(), region.as_str()) {
            ("web", "b") => 2..=3,
            ("journey", "a") => 3..=3,
            _ => 0..=0,
        };
        assert!(expected.contains(&failed), "{check} in {region}: {blocks:?}");
    }
    tab.screenshot("up-overview").await;

    // The browser check's page shows its failures with their screenshots, which load.
    tab.open(&format!("{base}/checks/journey")).await;
    let images: Vec<(String, bool, u32)> = tab
        .eval("Promise.all([...document.querySelectorAll('#failures img')].map(img => img.decode().then(() => [img.getAttribute('src'), img.complete, img.naturalWidth], () => [img.getAttribute('src'), false, 0])))")
        .await;
    assert!(!images.is_empty(), "no failure screenshot on the check page");
    assert!(images.iter().all(|(_, complete, width)| *complete && *width == 1), "{images:?}");
    let text: String = tab.eval("document.getElementById('main').innerText").await;
    assert!(text.contains("Thank you"), "the failure's error text is shown: {text}");
    // Identical failures are one entry; a month of runs opens on 24 hours.
    let counts: Vec<u32> =
        tab.eval("[...document.querySelectorAll('#failures article.fail')].map(a => Number(a.dataset.count))").await;
    assert!(counts.len() == 1 && counts[0] > 1, "{counts:?}");
    let range: String = tab.eval("document.querySelector('.seg button[aria-pressed=true]').textContent").await;
    assert_eq!(range, "24h");
    tab.screenshot("up-check").await;

    for path in ["/alerts", "/probers", "/slos"] {
        tab.open(&format!("{base}{path}")).await;
        tab.screenshot(&format!("up-{}", &path[1..])).await;
    }
    let errors = tab.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(tab);
    chromium.close().await;
}
