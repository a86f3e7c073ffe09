//! The overview's render time and transfer size in headless Chromium, for a seeded source of 1,000 checks x 5
//! regions (`bench/dashboard/run`). Each load starts with the browser cache disabled (a first visit); render
//! time is from navigation start until the table has been painted (`data-ready`, set by the page after the
//! frame that shows it); bytes are the transfer sizes of the document and every resource it loaded.
//!
//! Usage: `cargo run --release -p probenet-dashboard --example bench -- [RUNS] [CHECKS] [REGIONS]`; with
//! `BENCH_URL=http://...` it measures that dashboard instead (the scheduler's, over a real store); `bench seed DIR
//! CHECKS REGIONS` writes `DIR/checks.yaml` (checks that never run) and seeds `DIR/data/store` with 24 hourly
//! results per pair, for `bench/dashboard/up`.

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

/// The dashboard measured: served here over the demo source, or elsewhere.
enum Target {
    Local(support::Server),
    Url(String),
}

impl Target {
    fn url(&self, path: &str) -> String {
        match self {
            Self::Local(server) => server.url(path),
            Self::Url(base) => format!("{}{path}", base.trim_end_matches('/')),
        }
    }
}

/// `seed DIR CHECKS REGIONS`: a config whose checks never run during a benchmark (once a year) and a store with
/// the last 24 hours of hourly results of every pair.
fn seed(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    use probenet_checks::wire::RunResult;
    use probenet_checks::{Outcome, Phase, Reason};
    let dir = std::path::PathBuf::from(args.first().ok_or("seed DIR CHECKS REGIONS")?);
    let checks: usize = args.get(1).map_or(Ok(1000), |arg| arg.parse())?;
    let regions: usize = args.get(2).map_or(Ok(5), |arg| arg.parse())?;
    let names: Vec<String> = (1..=regions).map(|n| format!("region-{n}")).collect();
    let mut yaml = String::from("regions:\n");
    for name in &names {
        yaml.push_str(&format!("  {name}: {{}}\n"));
    }
    yaml.push_str("checks:\n");
    for i in 0..checks {
        yaml.push_str(&format!(
            "  - name: check-{i:04}\n    schedule: \"0 0 1 1 *\"\n    http: {{url: \"http://127.0.0.1:9/{i}\"}}\n"
        ));
    }
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::write(dir.join("checks.yaml"), yaml)?;
    let store = probenet_exporters::store::SqliteStore::open(&dir.join("data/store"), Default::default())?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let hour = 3_600_000;
    let mut batch = Vec::new();
    for i in 0..checks {
        for (r, region) in names.iter().enumerate() {
            for h in 1..=24 {
                let up = !(i + r + h as usize).is_multiple_of(17);
                let seconds = 0.05 + ((i * 7 + r * 3 + h as usize) % 50) as f64 / 1000.0;
                let mut outcome =
                    if up { Outcome::up(0.0) } else { Outcome::failed(Reason::Status, "expected status 200, got 503") };
                outcome.duration_seconds = seconds;
                outcome.phases = vec![Phase { name: "connect".into(), seconds: seconds / 3.0 }];
                let planned_at_ms = (now - h * hour).div_euclid(hour) * hour;
                batch.push(RunResult {
                    check: format!("check-{i:04}"),
                    region: region.clone(),
                    planned_at_ms,
                    started_at_ms: planned_at_ms + 2,
                    prober: "seed".into(),
                    outcome,
                });
            }
            if batch.len() >= 5_000 {
                probenet_exporters::store::Store::ingest(&store, std::mem::take(&mut batch))?;
            }
        }
    }
    probenet_exporters::store::Store::ingest(&store, batch)?;
    println!("seeded {} results in {}", checks * regions * 24, dir.display());
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("seed") {
        return seed(&raw[1..]);
    }
    let args: Vec<usize> = raw.iter().map(|arg| arg.parse()).collect::<Result<_, _>>()?;
    let runs = args.first().copied().unwrap_or(7).max(1);
    let checks = args.get(1).copied().unwrap_or(1000);
    let region_count = args.get(2).copied().unwrap_or(5);
    let regions = (1..=region_count).map(|n| format!("region-{n}")).collect();
    let source = Arc::new(DemoSource::new(DemoOptions { checks, regions, ..DemoOptions::default() }));
    let cells: usize = source.overview()?.checks.iter().map(|row| row.cells.len()).sum();
    let server = match std::env::var("BENCH_URL") {
        Ok(url) => Target::Url(url),
        Err(_) => Target::Local(support::serve(source, DashboardOptions::default()).await),
    };
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
