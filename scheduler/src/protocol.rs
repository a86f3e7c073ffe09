//! The prober protocol under `/v1/` (see `probenet_checks::wire`): register, heartbeat, deregister, the
//! assignment long-poll and result ingest, each behind a bearer token bound to the prober's region.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use probenet_checks::wire::{
    Ack, Assignment, Assignments, Heartbeat, PROTOCOL_VERSION, Register, Registered, ResultBatch,
};

use crate::api::{ApiError, authorize, json_body, param, params};
use crate::registry::RegistryError;
use crate::state::Shared;
use crate::tokens::Scope;

/// Protocol versions this scheduler speaks.
pub const SUPPORTED_PROTOCOLS: std::ops::RangeInclusive<u32> = 1..=PROTOCOL_VERSION;

/// The longest a long-poll is held.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// Largest register/heartbeat body.
const SMALL_BODY: usize = 64 << 10;
/// Largest result batch.
const BATCH_BODY: usize = 32 << 20;

/// 403 unless the token is a prober token of `region`.
fn require_region(scope: &Scope, region: &str) -> Result<(), ApiError> {
    match scope {
        Scope::Region(own) if own == region => Ok(()),
        Scope::Region(own) => Err(ApiError::forbidden(format!("the token is for region {own:?}, not {region:?}"))),
        Scope::Admin => Err(ApiError::forbidden("an admin token cannot act as a prober")),
    }
}

fn registry_error(error: RegistryError) -> ApiError {
    let status = match error {
        RegistryError::Conflict { .. } => StatusCode::CONFLICT,
        RegistryError::NotRegistered(_) => StatusCode::NOT_FOUND,
    };
    ApiError::new(status, error.to_string())
}

fn valid_name(name: &str) -> bool {
    (1..=253).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
}

fn registered(shared: &Shared) -> Json<Registered> {
    let lease = shared.with_registry(|registry| registry.lease()).as_secs_f64();
    Json(Registered { lease_seconds: lease, heartbeat_seconds: lease / 3.0 })
}

/// `POST /v1/register`.
pub async fn register(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Registered>, ApiError> {
    let scope = authorize(&shared, &headers)?;
    let register: Register = json_body(body, SMALL_BODY).await?;
    if !SUPPORTED_PROTOCOLS.contains(&register.protocol) {
        return Err(ApiError::bad_request(format!(
            "protocol version {} is not supported; this scheduler speaks {} to {}",
            register.protocol,
            SUPPORTED_PROTOCOLS.start(),
            SUPPORTED_PROTOCOLS.end()
        )));
    }
    if !valid_name(&register.name) {
        return Err(ApiError::bad_request("invalid prober name: use 1 to 253 letters, digits and - _ . : @"));
    }
    require_region(&scope, &register.region)?;
    let now_ms = crate::time::now_ms();
    shared.with_registry(|registry| registry.register(&register, Instant::now(), now_ms)).map_err(registry_error)?;
    if !shared.config().config.regions.contains_key(&register.region) {
        tracing::warn!(
            prober = register.name,
            region = register.region,
            "prober registered for a region the config does not declare; it gets no checks"
        );
    }
    tracing::info!(prober = register.name, region = register.region, version = register.version, "prober registered");
    Ok(registered(&shared))
}

/// `POST /v1/heartbeat`.
pub async fn heartbeat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Registered>, ApiError> {
    let scope = authorize(&shared, &headers)?;
    let beat: Heartbeat = json_body(body, SMALL_BODY).await?;
    require_region(&scope, &beat.region)?;
    let now_ms = crate::time::now_ms();
    shared
        .with_registry(|registry| registry.heartbeat(&beat.name, &beat.region, Instant::now(), now_ms))
        .map_err(registry_error)?;
    Ok(registered(&shared))
}

/// `POST /v1/deregister`: 204, and the prober's work moves at once.
pub async fn deregister(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let scope = authorize(&shared, &headers)?;
    let beat: Heartbeat = json_body(body, SMALL_BODY).await?;
    require_region(&scope, &beat.region)?;
    let was_live = shared
        .with_registry(|registry| {
            let live = registry.get(&beat.name).is_some();
            registry.deregister(&beat.name, &beat.region).map(|()| live)
        })
        .map_err(registry_error)?;
    if was_live {
        tracing::info!(prober = beat.name, region = beat.region, "prober deregistered; its checks move now");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/assignments?prober=NAME&generation=G&wait_seconds=S`: answered at once when the generation is
/// not `G`, else held until it changes or `S` (at most 60) seconds pass.
pub async fn assignments(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Assignments>, ApiError> {
    let scope = authorize(&shared, &headers)?;
    let params = params(query)?;
    let name = params
        .get("prober")
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ApiError::bad_request("prober is required"))?;
    let known = param::<u64>(&params, "generation")?.unwrap_or(0);
    let wait = param::<f64>(&params, "wait_seconds")?.unwrap_or(0.0);
    if !wait.is_finite() || wait < 0.0 {
        return Err(ApiError::bad_request("invalid wait_seconds: use 0 to 60"));
    }
    let wait = Duration::from_secs_f64(wait.min(MAX_WAIT_SECONDS as f64));
    let region = shared
        .with_registry(|registry| registry.get(name).map(|prober| prober.region.clone()))
        .ok_or_else(|| registry_error(RegistryError::NotRegistered(name.clone())))?;
    require_region(&scope, &region)?;

    let (mut changes, current) = shared.subscribe();
    if current == known && !wait.is_zero() {
        let mut stopping = shared.stopping.clone();
        let changed = async {
            loop {
                if changes.changed().await.is_err() {
                    return std::future::pending::<()>().await;
                }
                if *changes.borrow_and_update() != known {
                    return;
                }
            }
        };
        tokio::select! {
            () = changed => {}
            () = tokio::time::sleep(wait) => {}
            () = crate::server::stopped(&mut stopping) => {}
        }
    }

    let plan = shared.plan().await;
    let Some(index) = plan.index.get(name.as_str()).copied() else {
        return Err(registry_error(RegistryError::NotRegistered(name.clone())));
    };
    let checks = &plan.config.config.checks;
    let assigned = shared.with_last_planned(|last_planned| {
        plan.table
            .of_prober(index)
            .map(|(pair, offset_ms)| {
                let (c, r) = plan.table.pair(pair);
                let (check, region) = (&checks[c].name, &checks[c].regions[r]);
                let resume_after_ms = last_planned(check, region);
                Assignment { check: check.clone(), region: region.clone(), offset_ms, resume_after_ms }
            })
            .collect()
    });
    Ok(Json(Assignments {
        generation: plan.generation,
        config_hash: plan.config.hash.clone(),
        config: plan.config.files.clone(),
        assigned,
    }))
}

/// `POST /v1/results`: stores the batch, idempotently on each result's run id. Results of pairs the running
/// config no longer has are acknowledged but not stored (nor counted in the [`Ack`]).
pub async fn results(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Result<Json<Ack>, ApiError> {
    let scope = authorize(&shared, &headers)?;
    let batch: ResultBatch = json_body(body, BATCH_BODY).await?;
    let region = match &scope {
        Scope::Region(region) => region,
        Scope::Admin => return Err(ApiError::forbidden("an admin token cannot act as a prober")),
    };
    if let Some(other) = batch.results.iter().find(|result| &result.region != region) {
        return Err(ApiError::forbidden(format!(
            "a result for region {:?} sent with a token for region {region:?}",
            other.region
        )));
    }
    let config = shared.config();
    let total = batch.results.len();
    let known: Vec<_> =
        batch.results.into_iter().filter(|result| config.has_pair(&result.check, &result.region)).collect();
    let dropped = total - known.len();
    if dropped > 0 {
        shared.results_dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        tracing::debug!(prober = batch.prober, dropped, "results of checks no longer in the config dropped");
    }
    let state = shared.clone();
    // Both the store and the alert engine write SQLite: off the async workers, together with the batch.
    let (ingested, fresh) = tokio::task::spawn_blocking(move || {
        let (ingested, fresh) = state.store.ingest(known)?;
        state.alerting.observe(&fresh);
        Ok::<_, crate::store::StoreError>((ingested, fresh))
    })
    .await
    .map_err(|error| ApiError::unavailable(format!("results not stored: {error}")))?
    .map_err(|error| {
        tracing::warn!(%error, prober = batch.prober, "results not stored; the prober keeps them and sends again");
        ApiError::unavailable(error.to_string())
    })?;
    shared.note_stored(&fresh);
    shared.outputs.publish(&fresh);
    if !fresh.is_empty() {
        shared.ui_version.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Json(Ack { accepted: ingested.accepted, duplicates: ingested.duplicates }))
}
