//! The first minute of `probenet up --demo` as a new user sees it, in headless Chromium: the Alerts page shows
//! the broken checkout's `web-down` alert firing in both regions and the webhook notifier's delivery, the SLOs
//! page budgets that add up (an overspent one says `Exhausted`), a broken edit of the config `up` runs shows the
//! reload banner until the file is fixed, and every cell of the overview a bar of its runs and a latency.
//! Screenshots land in `target/test-artifacts/dashboard/first-minute-*.png`.

use std::time::{Duration, Instant};

use probenet_testkit::chromium::{CHROMIUM, Chromium, ONE_BROWSER, Watched};

use crate::util::processes::{ShowOnFailure, free_port, free_ports, up_demo};

/// Polls `expression` in the page every 250 ms until it returns a non-empty string, which it returns; fails
/// after `limit` with `what` and the last value.
async fn until(tab: &Watched, what: &str, limit: Duration, expression: &str) -> String {
    let start = Instant::now();
    loop {
        let value: String = tab.try_eval(expression).await.unwrap_or_default();
        if !value.is_empty() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every overview cell: [check, region, has a runs bar, latency shown, accessible name].
const CELLS: &str = r#"[...document.querySelectorAll('#grid .row a.c')].map((cell) => [
  cell.closest('.row').dataset.check, cell.dataset.region, !!cell.querySelector('svg.runs path'),
  cell.querySelector('.lat') ? cell.querySelector('.lat').textContent : '', cell.getAttribute('aria-label') || ''])"#;

/// Whether `text` is a latency as the overview writes it (`3.2 ms`, `81 ms`, `1.20 s`).
fn is_latency(text: &str) -> bool {
    let number = text.strip_suffix(" ms").or_else(|| text.strip_suffix(" s"));
    number.is_some_and(|number| number.parse::<f64>().is_ok_and(|n| n > 0.0))
}

/// The first negative figure in `text` (`-37400%`), if any.
fn negative_figure(text: &str) -> Option<&str> {
    text.split_whitespace()
        .find(|word| word.strip_prefix(['-', '−']).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())))
}

/// The percentages in `text`, as numbers.
fn percentages(text: &str) -> Vec<f64> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_suffix('%'))
        .filter_map(|number| number.replace(',', "").parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_minute_of_the_demo_in_a_browser() {
    if !std::path::Path::new(CHROMIUM).exists() {
        eprintln!("skip: {CHROMIUM} is missing (Debian's `chromium` package): the first minute is not tested");
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("up.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let _up = up_demo(dir.path(), port, free_ports(4), "150s", &log);
    let _show = ShowOnFailure(log.clone());
    let terminal = || std::fs::read_to_string(&log).unwrap_or_default();

    let client = reqwest::Client::new();
    while !client.get(format!("{base}/")).send().await.is_ok_and(|response| response.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(20), "the dashboard did not answer within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let chromium = Chromium::launch(1280, 900).await;
    let tab = chromium.page().await;

    // The Alerts page: the broken checkout fails in both regions for 15 s, so `web-down` fires for it, with its
    // regions, and the demo's webhook receiver has it.
    tab.open(&format!("{base}/alerts")).await;
    let firing = until(
        &tab,
        "web-down firing for shop-checkout on the Alerts page",
        Duration::from_secs(45),
        "[...document.querySelectorAll('#firing tr')].map((row) => row.innerText)
           .find((text) => text.includes('web-down') && text.includes('shop-checkout')) || ''",
    )
    .await;
    assert!(firing.contains("local-a, local-b"), "both regions: {firing}");
    assert!(firing.contains("page"), "the severity: {firing}");
    // The notifier's last delivery: live, once the alert reached the demo's receiver.
    let notifier = until(
        &tab,
        "demo-hook's delivery on the Alerts page",
        Duration::from_secs(15),
        "(() => { const row = document.querySelector('#notifiers tr[data-notifier=\"demo-hook\"]');
           return row && row.querySelector('.badge') ? row.innerText : ''; })()",
    )
    .await;
    assert!(notifier.contains("delivered") && notifier.contains("web-down"), "{notifier}");
    assert!(notifier.contains("webhook"), "the notifier's kind: {notifier}");
    let sent_failed: String = tab
        .eval("document.querySelector('#notifiers tr[data-notifier=\"demo-hook\"] td:nth-child(5)').textContent")
        .await;
    let (sent, failed) = sent_failed.split_once(" / ").unwrap_or_else(|| panic!("sent / failed: {sent_failed}"));
    assert!(sent.parse::<u32>().unwrap() >= 1 && failed == "0", "sent / failed: {sent_failed}");
    assert!(terminal().contains("notification received: FIRING web-down/shop-checkout in 2 of 2 regions"));
    // No alert's summary says "-566.7% of the budget left" (the flaky page's SLO burn alert may fire by now).
    let text: String = tab.eval("document.getElementById('main').innerText").await;
    assert_eq!(negative_figure(&text), None, "{text}");
    tab.screenshot("first-minute-alerts").await;

    // The SLOs page: a card per SLO whose figures make sense: what is left and what is used add up to 100%,
    // the flaky page's overspent budget says `Exhausted` and how many times it was spent, and no figure is
    // negative or above 100%.
    tab.open(&format!("{base}/slos")).await;
    // One request in three fails on the flaky page: its 1% budget is overspent from its first failure on.
    until(
        &tab,
        "the flaky page's SLO budget exhausted",
        Duration::from_secs(30),
        "(() => { const left = document.querySelector('section[data-slo=\"shop-recommendations\"] .slo-figures b');
           return left && left.textContent === 'Exhausted' ? 'yes' : ''; })()",
    )
    .await;
    let cards: Vec<(String, String, String, String)> = tab
        .eval(
            "[...document.querySelectorAll('section[data-slo]')].map((card) => [card.dataset.slo,
               card.querySelector('.slo-figures b').textContent, card.querySelector('.caption').textContent,
               card.innerText])",
        )
        .await;
    let names: Vec<&str> = cards.iter().map(|card| card.0.as_str()).collect();
    assert_eq!(names, ["shop-homepage", "shop-recommendations"], "{cards:#?}");
    for (name, left, caption, text) in &cards {
        assert_eq!(negative_figure(text), None, "{name}: {text}");
        assert!(percentages(text).iter().all(|p| (0.0..=100.0).contains(p)), "{name}: {text}");
        if left == "Exhausted" {
            assert!(caption.starts_with("Error budget exhausted: ") && caption.ends_with("× the budget spent"));
        } else {
            let used = caption.strip_suffix(" of the budget used").unwrap_or_else(|| panic!("{name}: {caption}"));
            let (left, used) = (percentages(left), percentages(used));
            assert!(left.len() == 1 && used.len() == 1, "{name}: {text}");
            assert!((left[0] + used[0] - 100.0).abs() < 0.01, "{name}: {left:?} + {used:?}");
        }
    }
    assert!(cards[0].3.contains("objective 99.50% over a day"), "{cards:#?}");
    // The healthy home page keeps its whole budget.
    assert_eq!((cards[0].1.as_str(), cards[0].2.as_str()), ("100.0%", "0.0% of the budget used"), "{cards:#?}");
    tab.screenshot("first-minute-slos").await;

    // A broken edit of the config `up` runs: a banner on the page (live, no reload of the page) with the error
    // and its place; fixed, the banner goes.
    let config = dir.path().join("data/up/quickstart.yaml");
    let good = std::fs::read_to_string(&config).unwrap();
    let broken = good.replacen("  interval: 15s\n", "  interval: soon\n", 1);
    assert_ne!(broken, good, "the quick start sets a default interval");
    tab.open(&format!("{base}/alerts")).await;
    std::fs::write(&config, &broken).unwrap();
    let banner = until(
        &tab,
        "the reload banner",
        Duration::from_secs(20),
        "(() => { const slot = document.getElementById('reload-problem');
           return slot && !slot.hidden ? slot.innerText : ''; })()",
    )
    .await;
    assert!(banner.contains("failed; the previous config is still in use"), "{banner}");
    assert!(banner.contains(&format!("{}:", config.display())) && banner.contains("defaults.interval"), "{banner}");
    assert!(!banner.contains("soon"), "the value written is elided: {banner}");
    assert!(terminal().contains("the previous config is still in use"), "{}", terminal());
    tab.screenshot("first-minute-reload-refused").await;
    std::fs::write(&config, &good).unwrap();
    until(
        &tab,
        "the reload banner to go",
        Duration::from_secs(20),
        "(() => { const slot = document.getElementById('reload-problem'); return slot.hidden ? 'gone' : ''; })()",
    )
    .await;
    // The alert still fires (the page redrew it).
    let text: String = tab.eval("document.getElementById('main').innerText").await;
    assert!(text.contains("shop-checkout"), "{text}");
    assert_eq!(negative_figure(&text), None, "{text}");

    // The overview within the first minute: every cell has a bar of its last runs and a latency (the
    // certificate check runs once a minute, so its first run may come last), and says its state.
    tab.open(&format!("{base}/")).await;
    let limit = Duration::from_secs(75).saturating_sub(started.elapsed()).max(Duration::from_secs(5));
    let cells = until(
        &tab,
        "a runs bar and a latency in every cell",
        limit,
        &format!(
            "(() => {{ const cells = {CELLS}; return cells.length && cells.every((cell) => cell[2] && \
             cell[3]) ? JSON.stringify(cells) : ''; }})()"
        ),
    )
    .await;
    let cells: Vec<(String, String, bool, String, String)> = serde_json::from_str(&cells).unwrap();
    assert_eq!(cells.len(), 9 * 2, "nine checks in two regions: {cells:#?}");
    for (check, region, _, latency, label) in &cells {
        assert!(is_latency(latency), "{check} in {region}: the latency {latency:?}");
        // A degraded or down cell says why.
        let state = match check.as_str() {
            "shop-checkout" => "Down (status)",
            "shop-search" => "Degraded (duration)",
            // Down for its first 45 s, flaky, or close to expiry: whatever the last run said.
            "shop-inventory" | "shop-recommendations" | "shop-certificate" => "",
            _ => "Up",
        };
        assert!(label.starts_with(&format!("{check} in {region}: {state}")), "{label}");
    }
    tab.screenshot("first-minute-overview").await;
    eprintln!("the first minute, checked after {:.1} s", started.elapsed().as_secs_f64());

    let errors = tab.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(tab);
    chromium.close().await;
}
