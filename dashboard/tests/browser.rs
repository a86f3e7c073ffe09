//! End-to-end tests in headless Chromium: every page renders the seeded source's figures with no console
//! error, a failure's screenshot shows, live updates arrive, and the status page is public while the dashboard
//! asks for its token. Screenshots of every page land in `target/test-artifacts/dashboard/`.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::emulation::{MediaFeature, SetDeviceMetricsOverrideParams};
use probenet_dashboard::compact::format_uptime;
use probenet_dashboard::demo::{DemoOptions, DemoSource};
use probenet_dashboard::model::Range;
use probenet_dashboard::{Auth, DashboardOptions, Source, State};
use support::{Chromium, serve};

/// What a row of the overview shows per region: state class index and the three uptimes.
type Shown = BTreeMap<String, BTreeMap<String, (String, String, String, String)>>;

const READ_ROWS: &str = r#"JSON.stringify(Object.fromEntries([...document.querySelectorAll('#grid .row')].map(row =>
  [row.dataset.check, Object.fromEntries([...row.querySelectorAll('.c:not(.na)')].map(cell => [cell.dataset.region,
    [(cell.className.match(/\bs(\d)\b/) || [])[1] || '', cell.querySelector('.u24').textContent,
     cell.querySelector('.u7').textContent, cell.querySelector('.u30').textContent]]))])))"#;

fn expected_rows(source: &DemoSource) -> Shown {
    let overview = source.overview().expect("overview");
    overview
        .checks
        .iter()
        .map(|row| {
            let cells = row
                .cells
                .iter()
                .map(|cell| {
                    let shown = (
                        cell.state.index().to_string(),
                        format_uptime(cell.uptime_24h),
                        format_uptime(cell.uptime_7d),
                        format_uptime(cell.uptime_30d),
                    );
                    (cell.region.clone(), shown)
                })
                .collect();
            (row.name.clone(), cells)
        })
        .collect()
}

async fn shown_rows(page: &support::Watched) -> Shown {
    let json: String = page.eval(READ_ROWS).await;
    let raw: BTreeMap<String, BTreeMap<String, [String; 4]>> = serde_json::from_str(&json).expect("rows as JSON");
    raw.into_iter()
        .map(|(check, cells)| (check, cells.into_iter().map(|(region, [s, a, b, c])| (region, (s, a, b, c))).collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_the_source_without_console_errors() {
    let source = Arc::new(DemoSource::new(DemoOptions::default()));
    let server = serve(source.clone(), DashboardOptions::default()).await;
    let _one = support::ONE_BROWSER.lock().await;
    let chromium = Chromium::launch(1280, 900).await;
    let tab = chromium.page().await;

    // The overview: every check and region, with the uptimes the source computed.
    tab.open(&server.url("/")).await;
    let expected = expected_rows(&source);
    assert_eq!(expected.len(), 24);
    let shown = shown_rows(&tab).await;
    assert_eq!(shown, expected, "the overview differs from the source");
    let headers: Vec<String> =
        tab.eval("[...document.querySelectorAll('.ghead div')].slice(1).map(d => d.textContent)").await;
    assert_eq!(headers, DemoOptions::default().regions);
    tab.screenshot("overview").await;

    // Filters: kind, then a search, narrow the rows in place.
    let browser_rows: usize = tab
        .eval("(() => { const s = document.getElementById('kind'); s.value = 'browser'; s.dispatchEvent(new Event('change')); return new Promise(r => setTimeout(() => r(document.querySelectorAll('#grid .row').length), 100)); })()")
        .await;
    let browser_checks = expected.keys().filter(|name| name.contains("-browser-")).count();
    assert_eq!(browser_rows, browser_checks);
    let none: usize = tab
        .eval("(() => { const s = document.getElementById('kind'); s.value = ''; s.dispatchEvent(new Event('change')); const q = document.getElementById('q'); q.value = 'no-such-check'; q.dispatchEvent(new Event('input')); return new Promise(r => setTimeout(() => r(document.querySelectorAll('#grid .row').length), 300)); })()")
        .await;
    assert_eq!(none, 0, "a search for nothing must hide every row");

    // Live updates: a state changed in the source shows up without a reload.
    tab.open(&server.url("/")).await;
    let overview = source.overview().expect("overview");
    let (check, region) = overview
        .checks
        .iter()
        .find_map(|row| {
            row.cells.iter().find(|cell| cell.state == State::Up).map(|cell| (row.name.clone(), cell.region.clone()))
        })
        .expect("an up cell");
    assert!(source.set_state(&check, &region, State::Down));
    let selector = format!("document.querySelector('[data-check=\"{check}\"] [data-region=\"{region}\"]').className");
    let mut class = String::new();
    for _ in 0..100 {
        class = tab.eval(&selector).await;
        if class.contains("s2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(class.contains("s2"), "the cell did not turn down live: {class}");

    // A check page: a failure's screenshot (a PNG from the source) is shown.
    // The first browser check with a failure (which checks fail depends on the demo's order of kinds).
    let day = Range { from_ms: source.now_ms() - 86_400_000, to_ms: source.now_ms() };
    let browser_check = expected
        .keys()
        .filter(|name| name.contains("-browser-"))
        .find(|name| !source.check(name, day).expect("detail").expect("the check exists").failures.is_empty())
        .expect("a browser check with a failure")
        .clone();
    let detail = source.check(&browser_check, day).expect("detail").expect("the check exists");
    tab.open(&server.url(&format!("/checks/{browser_check}"))).await;
    let images: Vec<(String, bool, u32)> = tab
        .eval("Promise.all([...document.querySelectorAll('#failures img')].map(img => img.decode().then(() => [img.getAttribute('src'), img.complete, img.naturalWidth], () => [img.getAttribute('src'), false, 0])))")
        .await;
    assert_eq!(images.len(), detail.failures.len(), "one screenshot per failure");
    for ((src, complete, width), failure) in images.iter().zip(&detail.failures) {
        let path = failure.screenshot.as_deref().expect("a screenshot path");
        assert_eq!(src, &format!("/api/ui/artifacts/{path}"));
        assert!(*complete && *width == 480, "screenshot {src} did not load ({complete}, {width}px)");
    }
    let text: String = tab.eval("document.getElementById('main').innerText").await;
    assert!(text.contains(&detail.failures[0].error), "the failure's error text is missing");
    assert!(text.contains("Latency per region") && text.contains("Phases in"));
    let lines: usize = tab.eval("document.querySelectorAll('#lat path').length").await;
    assert_eq!(lines, detail.regions.len(), "one latency line per region");
    tab.screenshot("check").await;

    // A tcp check's failure shows the traceroute the prober attached: its summary and a hop table.
    let tcp_check = expected
        .keys()
        .filter(|name| name.contains("-tcp-"))
        .find(|name| !source.check(name, day).expect("detail").expect("the check exists").failures.is_empty())
        .expect("a tcp check with a failure")
        .clone();
    tab.open(&server.url(&format!("/checks/{tcp_check}"))).await;
    let mut hops = 0_usize;
    for _ in 0..50 {
        hops = tab.eval("document.querySelectorAll('#failures .trace table.hops tr').length").await;
        if hops > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failures: usize = tab.eval("document.querySelectorAll('#failures .fail').length").await;
    assert_eq!(hops, failures * 6, "a header and five hops per failure");
    let text: String = tab.eval("document.getElementById('failures').innerText").await;
    assert!(text.contains("stopped after hop 2 (10.9.1.1): no answer from hop 3 on"), "{text}");
    assert!(text.contains("10.9.0.1") && text.contains("0.41 ms"), "{text}");
    tab.screenshot("check-traceroute").await;

    // The other pages.
    for (path, name, marker) in [
        ("/alerts", "alerts", "#firing tr"),
        ("/probers", "probers", "section[data-region]"),
        ("/slos", "slos", "section[data-slo]"),
        ("/status", "status", ".svc"),
    ] {
        tab.open(&server.url(path)).await;
        let count: usize = tab.eval(&format!("document.querySelectorAll('{marker}').length")).await;
        assert!(count > 0, "{path} shows nothing ({marker})");
        tab.screenshot(name).await;
    }

    // Dark mode follows the system setting.
    let dark = MediaFeature { name: "prefers-color-scheme".to_owned(), value: "dark".to_owned() };
    tab.page.emulate_media_features(vec![dark]).await.expect("dark mode");
    tab.open(&server.url("/")).await;
    let background: String = tab.eval("getComputedStyle(document.body).backgroundColor").await;
    assert_eq!(background, "rgb(13, 17, 23)", "the dark palette is not applied");
    tab.screenshot_viewport("overview-dark").await;
    tab.open(&server.url(&format!("/checks/{browser_check}"))).await;
    tab.screenshot_viewport("check-dark").await;

    let errors = tab.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(tab);
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_is_public_while_the_dashboard_needs_its_token() {
    let source = Arc::new(DemoSource::new(DemoOptions::default()));
    let options = DashboardOptions {
        auth: Some(Auth::Token("s3cret-token".to_owned())),
        status_page_public: true,
        base_path: "/ui".to_owned(),
        title: "probenet".to_owned(),
        secure: false,
    };
    let overview = source.overview().expect("overview");
    let server = serve(source, options).await;
    let _one = support::ONE_BROWSER.lock().await;
    let chromium = Chromium::launch(1280, 900).await;

    // The status page needs nothing, and logs no error.
    let status = chromium.page().await;
    status.open(&server.url("/ui/status")).await;
    let services: usize = status.eval("document.querySelectorAll('.svc').length").await;
    assert_eq!(services, 6);
    let first: String = status.eval("document.querySelector('.svc .name').textContent").await;
    let scheduled: String = status.eval("document.querySelector('.maintenance h3')?.textContent || ''").await;
    assert_eq!(scheduled, format!("ScheduledMaintenance: {first}"));
    assert!(status.errors().is_empty(), "console errors: {:#?}", status.errors());

    // The dashboard answers with the sign-in form, and shows no data.
    let login = chromium.page().await;
    login.page.goto(server.url("/ui/")).await.expect("open the dashboard");
    let form: bool = login.eval("!!document.querySelector('form.login input[name=token]')").await;
    let grid: bool = login.eval("!!document.getElementById('grid')").await;
    assert!(form && !grid, "the dashboard must ask for the token");
    login.screenshot("login").await;

    // Signing in with the token opens the overview (the cookie carries on to the API and the events).
    login.page.goto(server.url("/ui/?token=s3cret-token")).await.expect("sign in");
    login.wait_ready("the overview after signing in").await;
    let url = login.page.url().await.expect("url").unwrap_or_default();
    assert!(!url.contains("token="), "the token must leave the address bar: {url}");
    let rows: usize = login.eval("document.querySelectorAll('#grid .row').length").await;
    assert_eq!(rows, 24);

    // The status page's scheduled window on its check's own page (the demo's first check); none on another's.
    let checks = overview.checks;
    login.open(&server.url(&format!("/ui/checks/{}#range=24h", checks[0].name))).await;
    let notice: String = login.eval("document.querySelector('.maint')?.textContent || ''").await;
    assert!(notice.starts_with("Scheduled alerts muted from "), "{notice}");
    login.open(&server.url(&format!("/ui/checks/{}#range=24h", checks[1].name))).await;
    let none: bool = login.eval("!document.querySelector('.maint')").await;
    assert!(none, "only the first check is in maintenance");
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_fit_a_phone() {
    let source = Arc::new(DemoSource::new(DemoOptions::default()));
    let server = serve(source.clone(), DashboardOptions::default()).await;
    let _one = support::ONE_BROWSER.lock().await;
    let chromium = Chromium::launch(1280, 900).await;
    let tab = chromium.page().await;
    // Headless windows are at least 500 px wide: emulate a phone's screen instead.
    tab.page.execute(SetDeviceMetricsOverrideParams::new(390, 844, 2.0, true)).await.expect("phone metrics");
    let browser_check = source
        .overview()
        .expect("overview")
        .checks
        .iter()
        .find(|row| row.kind == "browser")
        .map(|row| row.name.clone())
        .expect("a browser check");
    for (path, name) in [
        ("/".to_owned(), "overview-phone"),
        (format!("/checks/{browser_check}"), "check-phone"),
        ("/status".to_owned(), "status-phone"),
    ] {
        tab.open(&server.url(&path)).await;
        let (width, overflow): (i64, i64) =
            tab.eval("[window.innerWidth, document.documentElement.scrollWidth - window.innerWidth]").await;
        assert!(width <= 400, "the window is not phone-sized: {width}px");
        assert!(overflow <= 0, "{path} scrolls sideways on a phone by {overflow}px");
        tab.screenshot_viewport(name).await;
    }
    let errors = tab.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(tab);
    chromium.close().await;
}

/// The text of every visible element whose own text has a contrast under 4.5:1 with what is behind it (WCAG
/// AA), from the colours Chromium computed: the backgrounds of the element and its ancestors are painted on a
/// canvas in order (so translucent ones blend), then the text colour (SVG text: its fill) on top.
const LOW_CONTRAST: &str = r#"(() => {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 1;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const paint = (color) => { g.fillStyle = color; g.fillRect(0, 0, 1, 1); const d = g.getImageData(0, 0, 1, 1).data; return [d[0], d[1], d[2]]; };
  const lum = (rgb) => rgb.map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const low = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let checked = 0;
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || !el || seen.has(el)) continue;
    seen.add(el);
    if (el.closest('title, script, style, option, [hidden]')) continue;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility !== 'visible') continue;
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.unshift(e);
    paint('#fff');
    let bg = null;
    for (const e of chain) bg = paint(getComputedStyle(e).backgroundColor);
    const fg = paint(el instanceof SVGElement ? style.fill : style.color);
    const [a, b] = [lum(fg), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    checked++;
    if (ratio < 4.5) low.push(`${ratio.toFixed(2)}: <${el.tagName.toLowerCase()} class="${el.getAttribute('class') || ''}"> ${el.textContent.trim().slice(0, 40)} (rgb ${fg} on rgb ${bg})`);
  }
  return [checked, low];
})()"#;

async fn low_contrast(tab: &support::Watched) -> (usize, Vec<String>) {
    tab.eval(LOW_CONTRAST).await
}

/// A check whose kind has a `degraded_after` in the demo and that is degraded in some region.
fn degraded_http_check(source: &DemoSource) -> Option<(String, String)> {
    source.overview().expect("overview").checks.iter().find_map(|row| {
        let slow = ["http", "https", "browser"].contains(&row.kind.as_str());
        let cell = row.cells.iter().find(|cell| cell.state == State::Degraded)?;
        slow.then(|| (row.name.clone(), cell.region.clone()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_aa_contrast_in_light_and_dark() {
    let source = Arc::new(DemoSource::new(DemoOptions { checks: 60, ..DemoOptions::default() }));
    let (check, _) = degraded_http_check(&source).expect("a degraded HTTP check");
    let server = serve(source.clone(), DashboardOptions::default()).await;
    let _one = support::ONE_BROWSER.lock().await;
    let chromium = Chromium::launch(1280, 900).await;
    let tab = chromium.page().await;
    let mut low = Vec::new();
    for scheme in ["light", "dark"] {
        let feature = MediaFeature { name: "prefers-color-scheme".to_owned(), value: scheme.to_owned() };
        tab.page.emulate_media_features(vec![feature]).await.expect("colour scheme");
        for path in [
            "/".to_owned(),
            format!("/checks/{check}"),
            "/alerts".into(),
            "/probers".into(),
            "/slos".into(),
            "/status".into(),
        ] {
            tab.open(&server.url(&path)).await;
            let (checked, found) = low_contrast(&tab).await;
            assert!(checked > 20, "{path} ({scheme}): only {checked} text elements were checked");
            low.extend(found.into_iter().map(|line| format!("{path} ({scheme}) {line}")));
        }
        tab.screenshot(&format!("contrast-check-{scheme}")).await;
    }
    assert!(low.is_empty(), "text under 4.5:1:\n{}", low.join("\n"));
    let errors = tab.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(tab);
    chromium.close().await;
}

/// The overview's runs bars: per cell (check, region), the class of every block, its tooltip after a hover,
/// the latency number and the link's accessible name.
const READ_RUNS: &str = r#"(() => {
  const out = {};
  for (const cell of document.querySelectorAll('#grid .row a.c')) {
    const svg = cell.querySelector('svg.runs');
    if (svg) svg.dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
    const blocks = svg ? [...svg.querySelectorAll('rect')].map((rect) => [rect.getAttribute('class'), rect.querySelector('title') ? rect.querySelector('title').textContent : '']) : [];
    out[`${cell.closest('.row').dataset.check} ${cell.dataset.region}`] = [blocks, cell.querySelector('.lat').textContent, cell.getAttribute('aria-label')];
  }
  return JSON.stringify(out);
})()"#;

/// A cell of [`READ_RUNS`]: (class, tooltip) per block, the latency shown, the accessible name.
type ShownCell = (Vec<(String, String)>, String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_minutes_show_the_last_runs_and_a_range_that_fits() {
    // Checks that started five minutes ago: ten runs each, and hourly sparklines of one point.
    let options = DemoOptions { running_for_ms: Some(5 * 60_000), ..DemoOptions::default() };
    let source = Arc::new(DemoSource::new(options));
    let server = serve(source.clone(), DashboardOptions::default()).await;
    let _one = support::ONE_BROWSER.lock().await;
    let chromium = Chromium::launch(1280, 900).await;
    let tab = chromium.page().await;

    tab.open(&server.url("/")).await;
    let json: String = tab.eval(READ_RUNS).await;
    let shown: BTreeMap<String, ShownCell> = serde_json::from_str(&json).expect("JSON");
    let overview = source.overview().expect("overview");
    let mut cells = 0;
    for row in &overview.checks {
        for cell in &row.cells {
            let key = format!("{} {}", row.name, cell.region);
            let (blocks, latency, label) = shown.get(&key).unwrap_or_else(|| panic!("no cell {key}"));
            let state = match cell.state {
                State::Up => "Up",
                State::Degraded => "Degraded",
                State::Down => "Down",
                State::NoData => "No data",
            };
            assert!(label.starts_with(&format!("{} in {}: {state}", row.name, cell.region)), "{key}: {label}");
            if cell.state == State::NoData {
                continue;
            }
            cells += 1;
            assert!((9..=11).contains(&cell.recent.len()), "{key}: {} runs in five minutes", cell.recent.len());
            assert_eq!(blocks.len(), cell.recent.len(), "{key}: one block per run");
            for ((class, title), run) in blocks.iter().zip(&cell.recent) {
                assert_eq!(class, &format!("r{}", run.state.index()), "{key}");
                // The time of the run (to the second, in the browser's zone, UTC here) and its duration.
                let clock = probenet_checks::time::rfc3339_ms(run.at_ms);
                assert!(title.starts_with(&clock[11..19]), "{key}: {title} is not at {clock}");
                assert_eq!(run.seconds.is_some(), title.contains(" ms") || title.contains(" s"), "{key}: {title}");
            }
            // As the overview sends it: milliseconds with one decimal.
            let last_ms = (cell.last_seconds.expect("a duration") * 10_000.0).round() / 10.0;
            let expected = if last_ms >= 1000.0 {
                format!("{:.2} s", last_ms / 1000.0)
            } else if last_ms >= 10.0 {
                format!("{} ms", last_ms.round())
            } else {
                format!("{last_ms:.1} ms")
            };
            assert_eq!(latency, &expected, "{key}: the last latency");
        }
    }
    assert!(cells > 100, "only {cells} cells with data");
    tab.screenshot("overview-first-minutes").await;

    // A check page opens on the last hour (the runs of five minutes), not on an empty 24 hours.
    let name = &overview.checks[0].name;
    tab.open(&server.url(&format!("/checks/{name}"))).await;
    let pressed: String = tab.eval("document.querySelector('.seg button[aria-pressed=true]').textContent").await;
    assert_eq!(pressed, "1h");
    let drawn: usize =
        tab.eval("[...document.querySelectorAll('#lat path')].filter(p => p.getAttribute('d')).length").await;
    let with_data = overview.checks[0].cells.iter().filter(|cell| cell.state != State::NoData).count();
    assert_eq!(drawn, with_data, "one latency line per region with runs");
    tab.screenshot("check-first-minutes").await;
    // A range chosen by the user is kept in the address.
    // (A query makes it a new document: a change of the fragment alone is not a navigation.)
    tab.open(&server.url(&format!("/checks/{name}?again#range=24h"))).await;
    let pressed: String = tab.eval("document.querySelector('.seg button[aria-pressed=true]').textContent").await;
    assert_eq!(pressed, "24h");

    let errors = tab.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(tab);
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_page_groups_failures_explains_slowness_and_keeps_its_hover() {
    let source = Arc::new(DemoSource::new(DemoOptions { checks: 60, ..DemoOptions::default() }));
    let server = serve(source.clone(), DashboardOptions::default()).await;
    let _one = support::ONE_BROWSER.lock().await;
    let chromium = Chromium::launch(1280, 900).await;
    let tab = chromium.page().await;
    let day = Range { from_ms: source.now_ms() - 86_400_000, to_ms: source.now_ms() };

    // A check down in a region has failed the same way on every run: one entry, with the count and the start.
    let overview = source.overview().expect("overview");
    let down = overview
        .checks
        .iter()
        .find(|row| row.kind == "http" && row.cells.iter().any(|cell| cell.state == State::Down))
        .expect("an HTTP check down somewhere");
    let detail = source.check(&down.name, day).expect("detail").expect("the check");
    let mut groups: BTreeMap<(String, String), (usize, i64)> = BTreeMap::new();
    for failure in &detail.failures {
        let entry = groups.entry((failure.region.clone(), failure.error.clone())).or_insert((0, i64::MAX));
        entry.0 += 1;
        entry.1 = entry.1.min(failure.planned_at_ms);
    }
    let ((region, error), &(count, since)) = groups.iter().max_by_key(|(_, (count, _))| *count).expect("failures");
    assert!(count >= 7, "the demo's down region failed {count} times");
    tab.open(&server.url(&format!("/checks/{}#range=24h", down.name))).await;
    let shown: Vec<(usize, String)> = tab
        .eval("[...document.querySelectorAll('#failures article.fail')].map(a => [Number(a.dataset.count), a.querySelector('header').innerText + ' | ' + a.querySelector('.err').textContent])")
        .await;
    assert_eq!(shown.len(), groups.len(), "one entry per region and error: {shown:#?}");
    let since = probenet_checks::time::rfc3339_ms(since);
    let entry = shown.iter().find(|(n, _)| *n == count).map(|(_, text)| text.clone()).expect("the grouped entry");
    assert!(
        entry.contains(region.as_str())
            && entry.contains(&format!("× {count}"))
            && entry.contains(&format!("since {} {}", &since[..10], &since[11..16]))
            && entry.ends_with(error.as_str()),
        "{entry}"
    );
    tab.screenshot("check-failures-grouped").await;

    // A degraded region says why, and the latency chart draws the degraded_after line.
    let (slow, slow_region) = degraded_http_check(&source).expect("a degraded HTTP check");
    let detail = source.check(&slow, day).expect("detail").expect("the check");
    let reason =
        detail.regions.iter().find(|r| r.region == slow_region).and_then(|r| r.reason.clone()).expect("a reason");
    assert!(reason.contains("over degraded_after 1s"), "{reason}");
    tab.open(&server.url(&format!("/checks/{slow}"))).await;
    let why: String =
        tab.eval(&format!("document.querySelector('.why[data-region=\"{slow_region}\"]').innerText")).await;
    assert!(why.contains("Degraded") && why.contains(&reason), "{why}");
    let (label, line_y, top): (String, f64, f64) = tab
        .eval("(() => { const t = document.querySelector('#lat .threshold'); const l = t.querySelector('line'); return [t.textContent, Number(l.getAttribute('y1')), 8]; })()")
        .await;
    assert_eq!(label, "degraded after 1.00 s");
    assert!(line_y > top, "the threshold line is inside the chart");

    // Hovering the chart shows a point; a live update redraws the chart and keeps the same point shown.
    let hovered: String = tab
        .eval("(() => { const svg = document.querySelector('#lat svg'); const r = svg.getBoundingClientRect(); svg.dispatchEvent(new MouseEvent('mousemove', { clientX: r.left + r.width * 0.6, clientY: r.top + 50, bubbles: true })); svg.dataset.old = '1'; return document.getElementById('lat').dataset.hover || ''; })()")
        .await;
    assert!(!hovered.is_empty(), "the hover shows no point");
    let tip: String = tab.eval("document.querySelector('#lat .tip').innerText").await;
    assert!(!tip.is_empty());
    assert!(source.set_state(&slow, &slow_region, State::Degraded), "a live update");
    let mut redrawn = false;
    for _ in 0..100 {
        if tab.eval::<bool>("!document.querySelector('#lat svg').dataset.old").await {
            redrawn = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(redrawn, "the live update did not redraw the chart");
    let (after, visible, tip_after): (String, bool, String) = tab
        .eval("[document.getElementById('lat').dataset.hover || '', !document.querySelector('#lat .tip').hidden, document.querySelector('#lat .tip').innerText]")
        .await;
    assert_eq!((after, visible, tip_after), (hovered, true, tip), "the hovered point is lost after a live update");
    tab.screenshot("check-degraded-hover").await;

    let errors = tab.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(tab);
    chromium.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_one_incident_per_service_and_slo_figures_agree() {
    let source = Arc::new(DemoSource::new(DemoOptions::default()));
    let server = serve(source.clone(), DashboardOptions::default()).await;
    let _one = support::ONE_BROWSER.lock().await;
    let chromium = Chromium::launch(1280, 900).await;
    let tab = chromium.page().await;

    // The first service (an HTTP check) goes down in three regions: the store has an incident per region,
    // the page one for the service, with its reason in words.
    let page = source.status_page().expect("status").expect("a status page");
    let website = &page.checks[0];
    for region in website.regions.iter().take(3) {
        assert!(source.set_state(&website.name, &region.region, State::Down));
    }
    let raw = source.status_page().expect("status").expect("a status page").incidents;
    let per_region = raw.iter().filter(|i| i.checks == [website.name.clone()] && i.resolved_at_ms.is_none()).count();
    assert!(per_region >= 3, "the source records {per_region} incidents");
    tab.open(&server.url("/status")).await;
    let incidents: Vec<(String, String)> = tab
        .eval("[...document.querySelectorAll('.incident')].map(i => [i.querySelector('h3').innerText, i.innerText])")
        .await;
    let ongoing: Vec<&(String, String)> = incidents
        .iter()
        .filter(|(title, _)| title.contains("Ongoing") && title.contains(&website.display_name))
        .collect();
    assert_eq!(ongoing.len(), 1, "one ongoing incident for {}: {incidents:#?}", website.display_name);
    let text = &ongoing[0].1;
    for region in website.regions.iter().take(3) {
        assert!(text.contains(&region.region), "{text}");
    }
    assert!(text.contains("Requests fail with an unexpected HTTP status."), "{text}");
    let paragraphs: Vec<String> =
        tab.eval("[...document.querySelectorAll('.incident p')].map(p => p.textContent)").await;
    for paragraph in &paragraphs {
        assert!(paragraph.contains(' '), "a raw reason label on the status page: {paragraph:?}");
    }
    tab.screenshot("status-incidents").await;

    // SLOs: what is left and what is used add up; an overspent budget says so, with no negative percentage.
    let slos = source.slos().expect("slos");
    assert!(slos.iter().any(|slo| slo.budget_remaining.is_some_and(|b| b < 0.0)), "the demo has an overspent SLO");
    tab.open(&server.url("/slos")).await;
    let cards: Vec<(String, String, String)> = tab
        .eval("[...document.querySelectorAll('section[data-slo]')].map(s => [s.dataset.slo, s.querySelector('.slo-figures b').textContent, s.querySelector('.caption').textContent])")
        .await;
    assert_eq!(cards.len(), slos.len());
    for ((name, left, caption), slo) in cards.iter().zip(&slos) {
        assert_eq!(name, &slo.name);
        let budget = slo.budget_remaining.expect("a budget");
        assert!(!left.contains('-') && !caption.contains('-'), "{name}: {left} / {caption}");
        if budget <= 0.0 {
            assert_eq!(left, "Exhausted", "{name}");
            assert!(
                caption.starts_with("Error budget exhausted: ") && caption.ends_with("× the budget spent"),
                "{caption}"
            );
            let spent: f64 = caption["Error budget exhausted: ".len()..caption.len() - "× the budget spent".len()]
                .replace(',', "")
                .parse()
                .expect("a number");
            assert!((spent - (1.0 - budget)).abs() <= 0.5 + (1.0 - budget) * 0.01, "{name}: {spent} for {budget}");
        } else {
            let left: f64 = left.trim_end_matches('%').parse().expect("a percentage");
            let used: f64 =
                caption.trim_end_matches(" of the budget used").trim_end_matches('%').parse().expect("a percentage");
            assert!((0.0..=100.0).contains(&left) && (left + used - 100.0).abs() < 0.01, "{name}: {left} + {used}");
            assert!((left - budget.min(1.0) * 100.0).abs() <= 0.1, "{name}: {left}% for {budget}");
        }
    }
    tab.screenshot("slos-budgets").await;

    let errors = tab.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(tab);
    chromium.close().await;
}
