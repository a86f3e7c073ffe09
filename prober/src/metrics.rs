//! The prober's `/metrics` (latest result of each assigned pair, its own health and scheduler replica, its
//! sinks) and `/healthz`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State as Extract;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use probenet_exporters::ProberHealth;
use probenet_exporters::exposition::CONTENT_TYPE;

use crate::client::Client;
use crate::outputs::Outputs;
use crate::stats::StatsHandle;

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
        results_pending: stats.results_spooled.saturating_sub(stats.results_replayed + stats.spool_dropped),
        results_sent_total: stats.results_sent,
        scheduler_up: stats.registered,
        start_time_seconds: state
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64()),
    };
    let text = state.outputs.render(&health, state.client.families());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}
