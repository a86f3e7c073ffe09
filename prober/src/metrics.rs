//! The prober's `/metrics` (latest result of each assigned pair, its own health and scheduler replica, its
//! sinks) and `/healthz`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State as Extract;
use axum::response::IntoResponse;
use axum::routing::get;
use probenet_exporters::{FamilySamples, MetricType, ProberHealth};

use crate::client::Client;
use crate::outputs::Outputs;
use crate::stats::{Stats, StatsHandle};

/// What the handlers read.
#[derive(Clone)]
pub(crate) struct State {
    pub outputs: Arc<Outputs>,
    /// Which scheduler replica is in use.
    pub client: Arc<Client>,
    pub stats: StatsHandle,
    pub name: String,
    pub region: String,
    pub started: SystemTime,
}

/// Serves until aborted.
pub(crate) async fn serve(listener: tokio::net::TcpListener, state: State) {
    let router = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state);
    // The same server as the scheduler's: idle connections closed, open ones capped, so a flood of
    // connections cannot take the prober's file descriptors. It runs until the task is aborted.
    let (_running, stop) = tokio::sync::watch::channel(false);
    probenet_serve::serve(listener, None, router, probenet_serve::Limits::for_this_process(), stop).await;
}

async fn metrics(Extract(state): Extract<State>) -> impl IntoResponse {
    let stats = state.stats.snapshot();
    let health = ProberHealth {
        prober: state.name.clone(),
        region: state.region.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        assigned: stats.assigned_pairs,
        runs_total: stats.runs,
        results_pending: stats.results_pending(),
        results_sent_total: stats.results_sent,
        scheduler_up: stats.registered && state.client.reachable(),
        start_time_seconds: state
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64()),
    };
    let mut families = state.client.families();
    families.extend(stats_families(&stats));
    probenet_serve::exposition(state.outputs.render(&health, families))
}

/// Every drop, skip and backlog of the prober, so none is only in its logs.
fn stats_families(stats: &Stats) -> Vec<FamilySamples> {
    let labelled = |name: &str, help: &str, kind: MetricType, label: &str, series: &[(&str, u64)]| FamilySamples {
        name: name.to_owned(),
        help: help.to_owned(),
        kind,
        series: series
            .iter()
            .map(|(value, count)| (vec![(label.to_owned(), (*value).to_owned())], *count as f64))
            .collect(),
    };
    let mut families = vec![
        labelled(
            "probenet_prober_results_dropped_total",
            "Results lost, by why: memory_full (the backlog was full and the spool refused them), spool (the oldest spooled results, to make room in a full spool, or an unreadable segment), rejected (the scheduler refused them as invalid).",
            MetricType::Counter,
            "reason",
            &[
                ("memory_full", stats.results_dropped),
                ("spool", stats.spool_dropped),
                ("rejected", stats.results_rejected),
            ],
        ),
        labelled(
            "probenet_prober_runs_skipped_total",
            "Planned runs not made, by why: overrun (the previous run of the pair still ran), busy (no slot of its kind in time), late (the prober fell behind by more than an interval), maintenance (a pause window of the check), abandoned (cut at shutdown).",
            MetricType::Counter,
            "reason",
            &[
                ("overrun", stats.skipped_overrun),
                ("busy", stats.skipped_busy),
                ("late", stats.skipped_late),
                ("maintenance", stats.skipped_maintenance),
                ("abandoned", stats.runs_abandoned),
            ],
        ),
        labelled(
            "probenet_prober_evidence_total",
            "Failed runs and their evidence (a traceroute from this prober), by outcome: captured (attached to the result), rate_limited (the pair had a capture within the interval), busy (every capture slot was taken), timed_out (given up at the time cap), no_address (nothing to trace).",
            MetricType::Counter,
            "outcome",
            &[
                ("captured", stats.evidence_captured),
                ("rate_limited", stats.evidence_rate_limited),
                ("busy", stats.evidence_busy),
                ("timed_out", stats.evidence_timed_out),
                ("no_address", stats.evidence_no_address),
            ],
        ),
        FamilySamples::single(
            "probenet_prober_runs_caught_up_total",
            "Planned runs nobody made (the pair's previous prober crashed or left) made late after taking the pair over.",
            MetricType::Counter,
            stats.runs_caught_up as f64,
        ),
        FamilySamples::single(
            "probenet_prober_results_in_memory",
            "Results held in memory now (batching, waiting for the scheduler, or when the spool fails).",
            MetricType::Gauge,
            stats.results_in_memory as f64,
        ),
        FamilySamples::single(
            "probenet_prober_spool_bytes",
            "Bytes of results in the spool now.",
            MetricType::Gauge,
            stats.spool_bytes as f64,
        ),
        FamilySamples::single(
            "probenet_prober_spool_write_errors_total",
            "Spool writes that failed (a full disk, no permission); their results stayed in memory.",
            MetricType::Counter,
            stats.spool_write_errors as f64,
        ),
        FamilySamples::single(
            "probenet_prober_results_replayed_total",
            "Results sent from the spool.",
            MetricType::Counter,
            stats.results_replayed as f64,
        ),
        FamilySamples::single(
            "probenet_prober_config_errors_total",
            "Configs from the scheduler that did not validate here (the previous one kept running).",
            MetricType::Counter,
            stats.config_errors as f64,
        ),
    ];
    let quantiles: Vec<(Vec<(String, String)>, f64)> =
        [("0.5", stats.lateness_p50_ms), ("0.99", stats.lateness_p99_ms), ("1", stats.lateness_max_ms)]
            .into_iter()
            .filter_map(|(quantile, ms)| Some((vec![("quantile".to_owned(), quantile.to_owned())], ms? / 1000.0)))
            .collect();
    families.push(FamilySamples {
        name: "probenet_prober_start_lateness_seconds".into(),
        help: "How late runs started after their planned time, since the prober started: median, 99th percentile and largest (quantile 1).".into(),
        kind: MetricType::Gauge,
        series: quantiles,
    });
    families
}
