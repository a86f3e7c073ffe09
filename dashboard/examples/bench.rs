//! The overview's render time and transfer size in headless Chromium, for a seeded source of 1,000 checks x 5
//! regions (`bench/dashboard/run`). Each load starts with the browser cache disabled (a first visit); render
//! time is from navigation start until the table has been painted (`data-ready`, set by the page after the
//! frame that shows it); bytes are the transfer sizes of the document and every resource it loaded.
//!
//! Usage: `cargo run --release -p probenet-dashboard --example bench -- [RUNS] [CHECKS] [REGIONS]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use probenet_dashboard::demo::{DemoOptions, DemoSource};
use probenet_dashboard::{DashboardOptions, Source};
use serde::Deserialize;

/// What the page reports about one load.
#[derive(Debug, Deserialize)]
struct Load {
    ready_ms: f64,
    bytes: f64,
    api_bytes: f64,
    rows: usize,
    cells: usize,
    nodes: usize,
}

const MEASURE: &str = r#"(() => {
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
  const api = performance.getEntriesByType('resource').filter(e => e.name.includes('/api/ui/overview'));
  return JSON.stringify({
    ready_ms: Number(document.body.dataset.ready),
    bytes: entries.reduce((sum, e) => sum + e.transferSize, 0),
    api_bytes: api.reduce((sum, e) => sum + e.transferSize, 0),
    rows: document.querySelectorAll('#grid .row').length,
    cells: document.querySelectorAll('#grid .c').length,
    nodes: document.getElementsByTagName('*').length,
  });
})()"#;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).map(|arg| arg.parse()).collect::<Result<_, _>>()?;
    let runs = args.first().copied().unwrap_or(7).max(1);
    let checks = args.get(1).copied().unwrap_or(1000);
    let region_count = args.get(2).copied().unwrap_or(5);
    let regions = (1..=region_count).map(|n| format!("region-{n}")).collect();
    let source = Arc::new(DemoSource::new(DemoOptions { checks, regions, ..DemoOptions::default() }));
    let cells: usize = source.overview()?.checks.iter().map(|row| row.cells.len()).sum();
    let server = support::serve(source, DashboardOptions::default()).await;
    let chromium = support::Chromium::launch(1280, 900).await;
    println!(
        "overview of {checks} checks x {region_count} regions ({cells} cells), {runs} cold loads in headless Chromium"
    );

    let mut ready = Vec::new();
    let mut bytes = Vec::new();
    for run in 0..runs {
        let tab = chromium.page().await;
        tab.open(&server.url("/")).await;
        let load: Load = serde_json::from_str(&tab.eval::<String>(MEASURE).await)?;
        assert_eq!(load.rows, checks, "every check is drawn");
        assert_eq!(load.cells, checks * region_count, "every cell is drawn");
        let errors = tab.errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");
        println!(
            "run {}: rendered in {:.0} ms, {:.1} KB transferred ({:.1} KB of it the overview JSON), {} DOM elements",
            run + 1,
            load.ready_ms,
            load.bytes / 1024.0,
            load.api_bytes / 1024.0,
            load.nodes
        );
        ready.push(load.ready_ms);
        bytes.push(load.bytes);
        tab.page.clone().close().await?;
    }
    let worst = ready.iter().copied().fold(0.0, f64::max);
    println!(
        "median render {:.0} ms (worst {:.0} ms); median transfer {:.1} KB (goals: under 1000 ms and 500 KB)",
        median(&mut ready),
        worst,
        median(&mut bytes) / 1024.0
    );
    chromium.close().await;
    Ok(())
}
