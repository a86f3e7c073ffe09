//! The HTTP API: the router, bearer-token authorisation, JSON errors, and the admin read API under
//! `/api/v1/` (the prober protocol under `/v1/` lives in [`crate::protocol`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use probenet_checks::Schedule;
use probenet_checks::wire::RunResult;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state::Shared;
use crate::store::ResultQuery;
use crate::tokens::{Principal, Scope};
use crate::{metrics, protocol, time};

/// The most results `/api/v1/results` returns.
pub const MAX_LIMIT: usize = 1_000;
const DEFAULT_LIMIT: usize = 100;

/// The JSON answer for a path nothing serves.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

/// Every route of the scheduler's API (without a fallback: the dashboard, when served, answers the rest).
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/register", post(protocol::register))
        .route("/v1/heartbeat", post(protocol::heartbeat))
        .route("/v1/deregister", post(protocol::deregister))
        .route("/v1/assignments", get(protocol::assignments))
        .route("/v1/results", post(protocol::results))
        .route("/api/v1/version", get(version))
        .route("/api/v1/probers", get(probers))
        .route("/api/v1/assignments", get(assignments))
        .route("/api/v1/checks", get(checks))
        .route("/api/v1/results", get(results))
        .route("/api/v1/config", get(config))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/maintenance", get(crate::maintenance::api::list).post(crate::maintenance::api::add))
        .route("/api/v1/maintenance/{name}", axum::routing::delete(crate::maintenance::api::end))
        .route("/api/v1/silences", post(add_silence))
        .route("/api/v1/silences/{id}", axum::routing::delete(expire_silence))
        .route("/api/v1/cluster", get(cluster))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed") })
        .with_state(shared)
}

/// The routes of the metrics port: `/metrics` and `/healthz`, without a token.
pub fn metrics_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(|State(shared): State<Arc<Shared>>| async move { metrics_page(&shared).await }))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(shared)
}

/// An error answered as `{"error": "..."}`. Never holds a token.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with this status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 503: try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Who holds the request's bearer token: 401 without one or with one this scheduler does not know.
pub async fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let text = value.to_str().map_err(|_| ApiError::unauthorized("malformed authorization header"))?;
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized("authorization is not a bearer token"));
    }
    if let Some(principal) = shared.tokens.identify(token.trim()) {
        return Ok(principal);
    }
    // Replicated: a token made a moment ago with `token create --store` may not have been read yet.
    if let Some(cluster) = shared.cluster() {
        cluster.refresh_tokens_after_miss(shared).await;
        if let Some(principal) = shared.tokens.identify(token.trim()) {
            return Ok(principal);
        }
    }
    Err(ApiError::unauthorized("unknown token"))
}

/// Who holds the request's admin token: 401 without a known token, 403 for a prober's.
pub async fn require_admin(shared: &Shared, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let principal = authorize(shared, headers).await?;
    match principal.scope {
        Scope::Admin => Ok(principal),
        Scope::Region(_) => Err(ApiError::forbidden("this API needs an admin token")),
    }
}

/// A JSON request body of at most `limit` bytes, read within the body timeout. Call it only once the caller
/// is authorised: a stranger's body is never read.
pub async fn json_body<T: DeserializeOwned>(shared: &Shared, body: Body, limit: usize) -> Result<T, ApiError> {
    let read = tokio::time::timeout(shared.body_timeout, axum::body::to_bytes(body, limit)).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body took longer than {} s", shared.body_timeout.as_secs()),
        )
    })?;
    let bytes = read.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body is larger than {limit} bytes"))
    })?;
    serde_json::from_slice(&bytes).map_err(|error| ApiError::bad_request(format!("invalid request body: {error}")))
}

/// Query parameters, or a JSON 400.
pub fn params(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, ApiError> {
    query
        .map(|Query(params)| params)
        .map_err(|error| ApiError::bad_request(format!("invalid query: {}", error.body_text())))
}

/// A query parameter that must parse as `T` when present.
pub fn param<T: std::str::FromStr>(params: &HashMap<String, String>, name: &str) -> Result<Option<T>, ApiError> {
    params
        .get(name)
        .filter(|value| !value.is_empty())
        .map(|value| value.parse().map_err(|_| ApiError::bad_request(format!("invalid {name}: {value:?}"))))
        .transpose()
}

/// What `GET /api/v1/version` answers: the running scheduler's version and the protocols it speaks.
async fn version(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&shared, &headers).await?;
    Ok(Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "protocols": crate::protocol::SUPPORTED_PROTOCOLS.collect::<Vec<u32>>(),
    })))
}

/// `GET /healthz`: 200 `ok`, or (replicated) 503 while the database has not answered for a few seconds, so a
/// load balancer and the probers move to a replica that can store results.
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.cluster() {
        Some(cluster) if !cluster.healthy() => {
            (StatusCode::SERVICE_UNAVAILABLE, "unhealthy: the database does not answer\n").into_response()
        }
        _ => "ok\n".into_response(),
    }
}

/// `GET /api/v1/cluster` (admin): the leader, the lease generation and the replicas; a single scheduler is a
/// cluster of one that leads.
async fn cluster(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&shared, &headers).await?;
    let Some(cluster) = shared.cluster() else {
        return Ok(Json(serde_json::json!({
            "leader": null,
            "lease_generation": 0,
            "replicated": false,
            "members": [],
        })));
    };
    let view = cluster.view().await.map_err(|error| ApiError::unavailable(format!("cluster state: {error}")))?;
    let mut body = serde_json::to_value(view).map_err(|error| ApiError::unavailable(error.to_string()))?;
    body["replicated"] = serde_json::Value::Bool(true);
    Ok(Json(body))
}

#[derive(Debug, Serialize)]
struct ProberView {
    name: String,
    region: String,
    version: String,
    kinds: Vec<probenet_checks::Kind>,
    registered_at: String,
    last_heartbeat: String,
    assigned: usize,
}

async fn probers(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<Json<Vec<ProberView>>, ApiError> {
    require_admin(&shared, &headers).await?;
    let plan = shared.plan().await;
    let live: Vec<_> = shared.with_registry(|registry| registry.probers().cloned().collect());
    Ok(Json(
        live.into_iter()
            .map(|prober| ProberView {
                assigned: plan
                    .index
                    .get(&(prober.region.clone(), prober.name.clone()))
                    .map_or(0, |p| plan.table.assigned(*p)),
                registered_at: time::rfc3339_ms(prober.registered_at_ms),
                last_heartbeat: time::rfc3339_ms(prober.last_heartbeat_ms),
                name: prober.name,
                region: prober.region,
                version: prober.version,
                kinds: prober.kinds,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize)]
struct AssignmentView<'a> {
    check: &'a str,
    region: &'a str,
    prober: Option<&'a str>,
    offset_ms: u64,
}

async fn assignments(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    require_admin(&shared, &headers).await?;
    let params = params(query)?;
    let (check_filter, region_filter) = (params.get("check"), params.get("region"));
    let plan = shared.plan().await;
    let checks = &plan.config.config.checks;
    let mut out = Vec::new();
    for pair in 0..plan.table.len() {
        let (c, r) = plan.table.pair(pair);
        let (check, region) = (checks[c].name.as_str(), checks[c].regions[r].as_str());
        if check_filter.is_some_and(|wanted| wanted != check) || region_filter.is_some_and(|wanted| wanted != region) {
            continue;
        }
        let before = out.len();
        for (prober, offset_ms) in plan.table.slots(pair) {
            if let Some(p) = prober {
                out.push(AssignmentView { check, region, prober: Some(plan.probers[p].name.as_str()), offset_ms });
            }
        }
        if out.len() == before {
            let offset_ms = plan.table.slots(pair).next().map_or(0, |(_, offset)| offset);
            out.push(AssignmentView { check, region, prober: None, offset_ms });
        }
    }
    Ok(Json(out).into_response())
}

#[derive(Debug, Serialize)]
struct CheckView {
    check: String,
    region: String,
    kind: &'static str,
    state: &'static str,
    last_result: Option<RunResult>,
}

async fn checks(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<Json<Vec<CheckView>>, ApiError> {
    require_admin(&shared, &headers).await?;
    // Store reads may block: off the async workers.
    let views = tokio::task::spawn_blocking(move || check_views(&shared)).await.map_err(store_task_failed)??;
    Ok(Json(views))
}

/// Every pair of the running config with its latest result.
fn check_views(shared: &Shared) -> Result<Vec<CheckView>, ApiError> {
    let config = shared.config();
    let now = time::now_ms();
    let mut out = Vec::new();
    for check in &config.config.checks {
        // A result older than three intervals (and a timeout) no longer says how the check is.
        let stale_before = match &check.schedule {
            Schedule::Every(interval) => {
                let window = 3 * interval.as_millis() + check.timeout.as_millis();
                Some(now - i64::try_from(window).unwrap_or(i64::MAX / 2))
            }
            Schedule::Cron(_) => None,
        };
        for region in &check.regions {
            let last_result = shared.store.latest(&check.name, region).map_err(store_failed)?;
            let state = match &last_result {
                Some(result) if stale_before.is_none_or(|before| result.planned_at_ms >= before) => {
                    match result.outcome.state {
                        probenet_checks::State::Up => "up",
                        probenet_checks::State::Degraded => "degraded",
                        probenet_checks::State::Down => "down",
                    }
                }
                _ => "unknown",
            };
            out.push(CheckView {
                check: check.name.clone(),
                region: region.clone(),
                kind: check.kind.key(),
                state,
                last_result,
            });
        }
    }
    Ok(out)
}

async fn results(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Vec<RunResult>>, ApiError> {
    require_admin(&shared, &headers).await?;
    let params = params(query)?;
    let since_ms = match params.get("since").filter(|since| !since.is_empty()) {
        None => None,
        Some(since) => Some(since.parse::<i64>().ok().or_else(|| time::parse_rfc3339_ms(since)).ok_or_else(|| {
            ApiError::bad_request(format!("invalid since {since:?}: use RFC 3339 or unix milliseconds"))
        })?),
    };
    let limit = param::<usize>(&params, "limit")?.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let query = ResultQuery {
        check: params.get("check").filter(|check| !check.is_empty()).cloned(),
        region: params.get("region").filter(|region| !region.is_empty()).cloned(),
        since_ms,
        limit,
        ..ResultQuery::default()
    };
    let store = shared.store.clone();
    let found = tokio::task::spawn_blocking(move || store.results(&query)).await.map_err(store_task_failed)?;
    Ok(Json(found.map_err(store_failed)?))
}

/// A store read that failed: 503, try again later.
fn store_failed(error: crate::store::StoreError) -> ApiError {
    ApiError::unavailable(format!("the store cannot answer: {error}"))
}

/// A store read whose task failed: 503, try again later.
fn store_task_failed(error: tokio::task::JoinError) -> ApiError {
    ApiError::unavailable(format!("the store cannot answer: {error}"))
}

#[derive(Debug, Serialize)]
struct ConfigView {
    loaded_at: String,
    files: Vec<String>,
    config_hash: String,
    files_hash: String,
    generation: u64,
    checks: usize,
    pairs: usize,
    errors: Vec<ErrorView>,
    last_reload: Option<ReloadView>,
}

/// The last reload: `ok` (applied), `unchanged` or `rejected` (with `errors`), and when.
#[derive(Debug, Serialize)]
struct ReloadView {
    result: &'static str,
    at: String,
    checks: Option<usize>,
    added: Vec<String>,
    removed: Vec<String>,
    errors: Vec<ErrorView>,
}

impl ErrorView {
    fn of(error: &probenet_checks::ConfigError) -> Self {
        Self {
            file: error.file.clone(),
            line: error.line,
            col: error.col,
            path: error.path.clone(),
            message: error.message.clone(),
            text: error.to_string(),
        }
    }
}

impl ReloadView {
    fn of(reload: &crate::state::Reload) -> Self {
        use crate::state::ReloadOutcome;
        let at = time::rfc3339_ms(reload.at_ms);
        let (result, checks, added, removed, errors) = match &reload.outcome {
            ReloadOutcome::Applied { checks, added, removed } => {
                ("ok", Some(*checks), added.clone(), removed.clone(), Vec::new())
            }
            ReloadOutcome::Unchanged { checks } => ("unchanged", Some(*checks), Vec::new(), Vec::new(), Vec::new()),
            ReloadOutcome::Rejected { errors } => {
                ("rejected", None, Vec::new(), Vec::new(), errors.iter().map(ErrorView::of).collect())
            }
        };
        Self { result, at, checks, added, removed, errors }
    }
}

#[derive(Debug, Serialize)]
struct ErrorView {
    file: String,
    line: usize,
    col: usize,
    path: String,
    message: String,
    text: String,
}

async fn config(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<Json<ConfigView>, ApiError> {
    require_admin(&shared, &headers).await?;
    let view = shared.config_view();
    let loaded = &view.loaded;
    Ok(Json(ConfigView {
        loaded_at: time::rfc3339_ms(loaded.loaded_at_ms),
        files: loaded.files.iter().map(|file| file.name.clone()).collect(),
        config_hash: loaded.hash.clone(),
        files_hash: loaded.files_hash.clone(),
        generation: view.generation,
        checks: loaded.config.checks.len(),
        pairs: loaded.config.checks.iter().map(|check| check.regions.len()).sum(),
        errors: view.rejected.iter().map(ErrorView::of).collect(),
        last_reload: shared.last_reload().as_deref().map(ReloadView::of),
    }))
}

/// `/metrics` on the API port: names every check and target, so an admin token is needed (a scraper without
/// one scrapes the `--metrics-listen` port instead).
async fn metrics_text(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_admin(&shared, &headers).await?;
    Ok(metrics_page(&shared).await)
}

/// The scheduler's metrics in the Prometheus text format.
pub async fn metrics_page(shared: &Arc<Shared>) -> Response {
    let plan = shared.plan().await;
    let mut chunks = vec![metrics::render(shared, &plan)];
    if shared.per_check_metrics.load(std::sync::atomic::Ordering::Relaxed) {
        chunks.extend(shared.outputs.render());
    }
    probenet_serve::exposition(chunks)
}

async fn alerts(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&shared, &headers).await?;
    Ok(Json(shared.alerting.view()))
}

async fn notifications(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&shared, &headers).await?;
    Ok(Json(shared.alerting.notifications()))
}

/// The largest silence body.
const SILENCE_BODY: usize = 16 << 10;

/// Silences change the alert state, which only the leader of replicated schedulers writes.
fn require_alert_engine(shared: &Shared) -> Result<(), ApiError> {
    if shared.alerting.running() {
        return Ok(());
    }
    Err(ApiError::unavailable(
        "this replica does not lead, and silences are kept by the leader: send it to the replica GET \
         /api/v1/cluster names as leader",
    ))
}

async fn add_silence(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Who asks first: a stranger's body is never read.
    require_admin(&shared, &headers).await?;
    let silence: probenet_alerting::Silence = json_body(&shared, body, SILENCE_BODY).await?;
    require_alert_engine(&shared)?;
    let id = shared
        .alerting
        .add_silence(silence)
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.to_string()))?;
    Ok(Json(serde_json::json!({"id": id})))
}

async fn expire_silence(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> Result<StatusCode, ApiError> {
    require_admin(&shared, &headers).await?;
    require_alert_engine(&shared)?;
    match shared.alerting.expire_silence(id) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no silence {id}"))),
        Err(error) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
    }
}
