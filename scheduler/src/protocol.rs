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
use crate::cluster::db::ProberRow;
use crate::ownership::Refusal;
use crate::registry::RegistryError;
use crate::state::{INGEST_HORIZON_MS, INGEST_SKEW_MS, Shared};
use crate::tokens::Scope;

/// Protocol versions this scheduler speaks.
pub const SUPPORTED_PROTOCOLS: std::ops::RangeInclusive<u32> = 1..=PROTOCOL_VERSION;

/// The longest a long-poll is held.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// Largest register/heartbeat body.
const SMALL_BODY: usize = 64 << 10;
/// Largest result batch.
const BATCH_BODY: usize = 32 << 20;

/// The longest `version` a prober may send.
const MAX_VERSION: usize = 64;
/// The most kinds a prober may list.
const MAX_KINDS: usize = 16;

/// 403 unless the token is a prober token of `region`.
fn require_region(scope: &Scope, region: &str) -> Result<(), ApiError> {
    match scope {
        Scope::Region(own) if own == region => Ok(()),
        Scope::Region(own) => Err(ApiError::forbidden(format!("the token is for region {own:?}, not {region:?}"))),
        Scope::Admin => Err(ApiError::forbidden("an admin token cannot act as a prober")),
    }
}

/// The region of a prober token; 403 for an admin token.
fn token_region(scope: &Scope) -> Result<&str, ApiError> {
    match scope {
        Scope::Region(region) => Ok(region),
        Scope::Admin => Err(ApiError::forbidden("an admin token cannot act as a prober")),
    }
}

fn registry_error(error: RegistryError) -> ApiError {
    let status = match error {
        RegistryError::Conflict { .. } => StatusCode::CONFLICT,
        RegistryError::NotRegistered(_) => StatusCode::NOT_FOUND,
        RegistryError::TooManyProbers(_) | RegistryError::TooFast => StatusCode::TOO_MANY_REQUESTS,
    };
    ApiError::new(status, error.to_string())
}

/// 400 unless every kind is listed once and the version is short.
fn check_register(register: &Register) -> Result<(), ApiError> {
    if register.version.len() > MAX_VERSION || register.version.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("invalid version: use at most {MAX_VERSION} printable characters")));
    }
    if register.kinds.len() > MAX_KINDS {
        return Err(ApiError::bad_request(format!("too many kinds: at most {MAX_KINDS}")));
    }
    // Unknown kinds are refused when the body is read (`Kind` only parses known keys).
    for (i, kind) in register.kinds.iter().enumerate() {
        if register.kinds[..i].contains(kind) {
            return Err(ApiError::bad_request(format!("kind {kind:?} listed twice")));
        }
    }
    Ok(())
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
    let principal = authorize(&shared, &headers).await?;
    let scope = &principal.scope;
    let register: Register = json_body(&shared, body, SMALL_BODY).await?;
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
    require_region(scope, &register.region)?;
    check_register(&register)?;
    let now_ms = crate::time::now_ms();
    shared
        .with_registry(|registry| registry.register(&register, &principal.id, Instant::now(), now_ms))
        .map_err(registry_error)?;
    if let Some(cluster) = shared.cluster() {
        // Replicated: the database is the registry every replica reads; refused there, refused here.
        let row = ProberRow {
            region: register.region.clone(),
            name: register.name.clone(),
            token: principal.id.clone(),
            version: register.version.clone(),
            kinds: register.kinds.clone(),
            registered_at_ms: now_ms,
            last_heartbeat_ms: now_ms,
            remaining: Duration::ZERO,
        };
        let lease = shared.with_registry(|registry| registry.lease());
        let recorded = cluster.register(&row, lease).await;
        if recorded != Ok(true) {
            shared.with_registry(|registry| registry.forget(&register.region, &register.name));
        }
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                return Err(registry_error(RegistryError::Conflict {
                    name: register.name.clone(),
                    region: register.region.clone(),
                }));
            }
            Err(error) => return Err(ApiError::unavailable(format!("registration not recorded: {error}"))),
        }
    }
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
    let principal = authorize(&shared, &headers).await?;
    let beat: Heartbeat = json_body(&shared, body, SMALL_BODY).await?;
    require_region(&principal.scope, &beat.region)?;
    let now_ms = crate::time::now_ms();
    let report = beat.report.clone();
    let note = |shared: &Shared| shared.health.heartbeat(&beat.region, &beat.name, report, Instant::now());
    if let Some(cluster) = shared.cluster() {
        // Replicated: the lease is renewed in the database (the prober may have registered with another replica);
        // the mirror brings it here.
        let lease = shared.with_registry(|registry| registry.lease());
        let live = cluster
            .heartbeat(&beat.region, &beat.name, &principal.id, now_ms, lease)
            .await
            .map_err(|error| ApiError::unavailable(format!("heartbeat not recorded: {error}")))?;
        if !live {
            return Err(registry_error(RegistryError::NotRegistered(beat.name.clone())));
        }
        let _ = shared.with_registry(|registry| {
            registry.heartbeat(&beat.name, &beat.region, &principal.id, Instant::now(), now_ms)
        });
        note(&shared);
        return Ok(registered(&shared));
    }
    shared
        .with_registry(|registry| registry.heartbeat(&beat.name, &beat.region, &principal.id, Instant::now(), now_ms))
        .map_err(registry_error)?;
    note(&shared);
    Ok(registered(&shared))
}

/// `POST /v1/deregister`: 204, and the prober's work moves at once.
pub async fn deregister(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = authorize(&shared, &headers).await?;
    let beat: Heartbeat = json_body(&shared, body, SMALL_BODY).await?;
    require_region(&principal.scope, &beat.region)?;
    let was_live = shared
        .with_registry(|registry| {
            let live = registry.get(&beat.region, &beat.name).is_some();
            registry.deregister(&beat.name, &beat.region, &principal.id).map(|()| live)
        })
        .map_err(registry_error)?;
    if let Some(cluster) = shared.cluster() {
        cluster
            .deregister(&beat.region, &beat.name, &principal.id)
            .await
            .map_err(|error| ApiError::unavailable(format!("deregistration not recorded: {error}")))?;
    }
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
    let principal = authorize(&shared, &headers).await?;
    let region = token_region(&principal.scope)?.to_owned();
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
    shared
        .with_registry(|registry| registry.live_in(name, &region, &principal.id).map(drop))
        .map_err(registry_error)?;
    // A poll is news of the prober: it renews its lease as a heartbeat does.
    let now_ms = crate::time::now_ms();
    renew(&shared, name, &region, &principal.id, now_ms);

    let (mut changes, current) = shared.subscribe();
    if current == known && !wait.is_zero() {
        // If this wait ends because the connection broke (a crashed prober's connections close), its lease is
        // cut short: a live prober polls again at once; a dead one loses its pairs in seconds.
        let mut watch = PollWatch {
            shared: shared.clone(),
            prober: (region.clone(), name.clone(), principal.id.clone()),
            since_ms: now_ms,
            done: false,
        };
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
        watch.done = true;
    }

    let plan = shared.plan().await;
    let index = plan.index.get(&(region.clone(), name.clone())).copied();
    // Replicated, a prober registered since the leader last published is not in this generation yet: it gets
    // nothing until the next one, which comes within a moment.
    if index.is_none() && shared.cluster().is_none() {
        return Err(registry_error(RegistryError::NotRegistered(name.clone())));
    }
    // The region's view, never the whole config: notifiers, alerts, the dashboard and other regions' checks
    // stay here. Without a view the prober is refused and retries.
    let view = plan.config.view(&region).map_err(|error| {
        ApiError::unavailable(format!("no config for region {region:?} (the scheduler logs why): {error}"))
    })?;
    let checks = &plan.config.config.checks;
    let live = |prober: &str| plan.index.contains_key(&(region.clone(), prober.to_owned()));
    let assigned = shared.with_ownership(|ownership| {
        shared.with_last_planned(|last_planned| {
            index
                .into_iter()
                .flat_map(|index| plan.table.of_prober(index))
                .map(|(pair, offset_ms)| {
                    let (c, r) = plan.table.pair(pair);
                    let (check, region) = (&checks[c].name, &checks[c].regions[r]);
                    // After a planned handover the previous holder ran the pair up to it (its last results
                    // may still be on their way): resume after the handover, never re-run its last run.
                    let handover = ownership.planned_handover(check, region, name, live);
                    let resume_after_ms = match (last_planned(check, region), handover) {
                        (Some(last), Some(at)) => Some(last.max(at)),
                        (last, at) => last.or(at),
                    };
                    Assignment { check: check.clone(), region: region.clone(), offset_ms, resume_after_ms }
                })
                .collect()
        })
    });
    Ok(Json(Assignments {
        generation: plan.generation,
        config_hash: view.hash.clone(),
        config: view.files.clone(),
        assigned,
    }))
}

/// How long a prober whose long-poll broke keeps its pairs unless it polls again or heartbeats.
pub const BROKEN_POLL_GRACE: Duration = Duration::from_secs(3);

/// Renews a prober's lease on news of it other than a heartbeat (a poll).
fn renew(shared: &Arc<Shared>, name: &str, region: &str, token: &str, now_ms: i64) {
    let lease = shared.with_registry(|registry| registry.lease());
    if let Some(cluster) = shared.cluster().cloned() {
        // In the background: a database that is slow or down must not hold the poll.
        let (region, name, token) = (region.to_owned(), name.to_owned(), token.to_owned());
        tokio::spawn(async move {
            if let Err(error) = cluster.heartbeat(&region, &name, &token, now_ms, lease).await {
                tracing::debug!(prober = name, %error, "lease not renewed by the poll");
            }
        });
    }
    let _ = shared.with_registry(|registry| registry.heartbeat(name, region, token, Instant::now(), now_ms));
}

/// A long-poll in progress: dropped before it is done, the connection broke.
struct PollWatch {
    shared: Arc<Shared>,
    /// Region, name, token id.
    prober: (String, String, String),
    since_ms: i64,
    done: bool,
}

impl Drop for PollWatch {
    fn drop(&mut self) {
        if self.done || *self.shared.stopping.borrow() {
            return;
        }
        let (region, name, token) = self.prober.clone();
        tracing::info!(
            prober = name,
            region,
            "the prober's long-poll broke; its pairs move unless it is heard from within 3 s"
        );
        let until = Instant::now() + BROKEN_POLL_GRACE;
        self.shared.with_registry(|registry| registry.suspect(&name, &region, &token, self.since_ms, until));
        if let Some(cluster) = self.shared.cluster().cloned()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let since_ms = self.since_ms;
            runtime.spawn(async move {
                if let Err(error) = cluster.suspect(&region, &name, &token, since_ms, BROKEN_POLL_GRACE).await {
                    tracing::debug!(prober = name, %error, "the broken poll is not recorded");
                }
            });
        }
    }
}

/// `POST /v1/results`: stores the batch, idempotently on each result's run id. The batch must come from a live
/// prober registered with the calling token; each result must be that prober's, for a pair it was assigned at
/// the planned time, planned on the pair's schedule within the ingest horizon. Results of pairs the running
/// config no longer has are acknowledged but not stored (nor counted in the [`Ack`]). When any result is
/// refused, the others are still stored and the answer is 422 with the reasons (every refusal is counted).
pub async fn results(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let principal = authorize(&shared, &headers).await?;
    let region = token_region(&principal.scope)?.to_owned();
    let batch: ResultBatch = json_body(&shared, body, BATCH_BODY).await?;
    if let Some(other) = batch.results.iter().find(|result| result.region != region) {
        return Err(ApiError::forbidden(format!(
            "a result for region {:?} sent with a token for region {region:?}",
            other.region
        )));
    }
    shared
        .with_registry(|registry| registry.may_send(&batch.prober, &region, &principal.id))
        .map_err(registry_error)?;
    if let Some(problem) = batch.results.iter().find_map(|result| artifact_problem(&result.outcome)) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, problem));
    }
    let config = shared.config();
    let ResultBatch { prober, results } = batch;
    let total = results.len();
    let now_ms = crate::time::now_ms();
    let mut refused: Vec<(String, i64, Refusal)> = Vec::new();
    let mut known = Vec::with_capacity(total);
    let mut dropped = 0;
    shared.with_ownership(|ownership| {
        for result in results {
            let Some(check) = config.check(&result.check).filter(|check| check.regions.contains(&result.region)) else {
                dropped += 1;
                continue;
            };
            // A result names the prober that ran it: the batch's, or an earlier one of the same token (a prober
            // restarted under another name replays its spool).
            let verdict = if !valid_name(&result.prober) {
                Err(Refusal::WrongProber)
            } else if result.planned_at_ms > now_ms.saturating_add(INGEST_SKEW_MS) {
                Err(Refusal::Future)
            } else if result.planned_at_ms < now_ms.saturating_sub(INGEST_HORIZON_MS) {
                Err(Refusal::TooOld)
            } else {
                let (check_name, region, ran_by) = (&result.check, &result.region, &result.prober);
                ownership.verdict(check_name, region, ran_by, &principal.id, result.planned_at_ms, &check.schedule)
            };
            match verdict {
                Ok(()) => known.push(result),
                Err(why) => refused.push((result.check, result.planned_at_ms, why)),
            }
        }
    });
    for (_, _, why) in &refused {
        shared.results_refused[*why as usize].fetch_add(1, Ordering::Relaxed);
    }
    shared.health.results(&region, &prober, &known, now_ms, Instant::now());
    if dropped > 0 {
        shared.results_dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        tracing::debug!(prober, dropped, "results of checks no longer in the config dropped");
    }
    let state = shared.clone();
    // Both the store and the alert engine write SQLite: off the async workers, together with the batch.
    let (ingested, fresh) = tokio::task::spawn_blocking(move || {
        let mut known = known;
        if let Some(artifacts) = &state.artifacts {
            artifacts.spool(&mut known)?;
        }
        let (ingested, fresh) = state.store.ingest(known)?;
        // Replicated, the leader's engine reads every replica's results from the store (`cluster::feed`).
        if state.cluster().is_none() {
            state.alerting.observe(&fresh);
        }
        Ok::<_, crate::store::StoreError>((ingested, fresh))
    })
    .await
    .map_err(|error| ApiError::unavailable(format!("results not stored: {error}")))?
    .map_err(|error| {
        tracing::warn!(%error, prober, "results not stored; the prober keeps them and sends again");
        ApiError::unavailable(error.to_string())
    })?;
    shared.note_stored(&fresh);
    shared.outputs.publish(&fresh, shared.per_check_metrics.load(Ordering::Relaxed));
    if !fresh.is_empty() {
        shared.ui_version.fetch_add(1, Ordering::Relaxed);
    }
    let ack = Ack { accepted: ingested.accepted, duplicates: ingested.duplicates };
    if refused.is_empty() {
        return Ok(Json(ack).into_response());
    }
    tracing::warn!(prober, region, refused = refused.len(), "results refused");
    let reasons: Vec<serde_json::Value> = refused
        .iter()
        .take(10)
        .map(|(check, planned_at_ms, why)| {
            serde_json::json!({"check": check, "planned_at_ms": planned_at_ms, "reason": why.label(), "message": why.message()})
        })
        .collect();
    let body = serde_json::json!({
        "error": format!("{} of {total} results refused: {}", refused.len(), refused[0].2.message()),
        "accepted": ack.accepted,
        "duplicates": ack.duplicates,
        "refused": refused.len(),
        "reasons": reasons,
    });
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
}

/// The largest artifact a result may carry.
pub const MAX_ARTIFACT_BYTES: usize = 4 << 20;
/// The most artifacts one result may carry.
pub const MAX_ARTIFACTS: usize = 8;
/// The media types an artifact may have.
pub const ARTIFACT_TYPES: [&str; 4] = ["image/png", "image/jpeg", "text/plain", "application/json"];

/// Whether an image's first bytes are those of its media type (text is taken as it is).
fn magic_matches(media_type: &str, data: &[u8]) -> bool {
    match media_type {
        "image/png" => data.is_empty() || data.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => data.is_empty() || data.starts_with(&[0xff, 0xd8, 0xff]),
        _ => true,
    }
}

/// Why a result's artifacts are refused, if they are.
fn artifact_problem(outcome: &probenet_checks::Outcome) -> Option<String> {
    if outcome.artifacts.len() > MAX_ARTIFACTS {
        return Some(format!("a result carries {} artifacts; at most {MAX_ARTIFACTS}", outcome.artifacts.len()));
    }
    outcome.artifacts.iter().find_map(|artifact| {
        if artifact.data.len() > MAX_ARTIFACT_BYTES {
            Some(format!("artifact of {} bytes; at most {MAX_ARTIFACT_BYTES}", artifact.data.len()))
        } else if !ARTIFACT_TYPES.contains(&artifact.media_type.as_str()) {
            let shown: String = artifact.media_type.chars().take(40).collect();
            Some(format!("artifact media type {shown:?} is not one of {}", ARTIFACT_TYPES.join(", ")))
        } else if !magic_matches(&artifact.media_type, &artifact.data) {
            Some(format!(
                "artifact {:?} is not the {} it says it is",
                artifact.name.chars().take(64).collect::<String>(),
                artifact.media_type
            ))
        } else {
            None
        }
    })
}
