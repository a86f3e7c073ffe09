//! `/api/v1/maintenance`: lists the windows of the config files and of the API; adds a window, and ends or removes
//! one added through the API. A window posted is checked by the config's own validation, with the running config
//! files, so it is refused with the very message `probenet validate` would print for it in a file.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use probenet_checks::config::maintenance::{Maintenance, When};
use serde_json::Value;

use super::{ApiWindow, MAX_BODY, MAX_WINDOWS, SOURCE, describe, located, source};
use crate::api::{ApiError, json_body, require_admin};
use crate::state::Shared;
use crate::time;

/// `GET /api/v1/maintenance`: every window of the running config (files and API, each saying which), each with
/// its span in force or next; the API's windows the config files no longer accept, with why; and the silences
/// added as maintenance.
pub async fn list(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    require_admin(&shared, &headers).await?;
    let config = shared.config();
    let now = time::now_ms();
    let mut windows: Vec<Value> =
        config.config.maintenance.iter().map(|window| view(window, &config.api, now)).collect();
    for (name, why) in &config.api_left_out {
        let mut item = serde_json::json!({ "name": name, "source": "api", "in_force": false, "error": why });
        if let Some(stored) = config.api.iter().find(|stored| &stored.name == name) {
            item["window"] = Value::Object(stored.window.clone());
            added_by(&mut item, stored);
        }
        windows.push(item);
    }
    let alerts = shared.alerting.view();
    let silences: Vec<Value> = alerts["silences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|silence| silence["maintenance"] == true)
        .cloned()
        .collect();
    Ok(Json(serde_json::json!({ "windows": windows, "silences": silences })))
}

/// A window as the API shows it.
fn view(window: &Maintenance, api: &[ApiWindow], now: i64) -> Value {
    let span = window.next_span(now);
    let mut view = serde_json::json!({
        "name": window.name,
        "source": if window.place.file == SOURCE { "api" } else { "config" },
        "in_force": true,
        "mode": window.mode.as_str(),
        "checks": window.checks,
        "active": span.is_some_and(|span| span.contains(now)),
        "start": span.map(|span| time::rfc3339_ms(span.start_ms)),
        "end": span.map(|span| time::rfc3339_ms(span.end_ms)),
        "reason": window.reason,
        "created_by": window.created_by,
    });
    if let When::Recurring { cron, duration_ms } = &window.when {
        view["schedule"] = cron.expr.clone().into();
        view["timezone"] = cron.timezone.name().into();
        view["duration_ms"] = (*duration_ms).into();
    }
    match api.iter().find(|stored| stored.name == window.name).filter(|_| window.place.file == SOURCE) {
        Some(stored) => added_by(&mut view, stored),
        None => view["place"] = window.place.to_string().into(),
    }
    view
}

/// Which token added an API window, and when.
fn added_by(view: &mut Value, stored: &ApiWindow) {
    view["token"] = stored.token.clone().into();
    view["created_at"] = time::rfc3339_ms(stored.created_at_ms).into();
}

/// `POST /api/v1/maintenance` (admin): adds a window, in force at once on every prober and in the alerts,
/// ledger and status page. 201 with the window; 400 with the config's message when it is not a valid window.
pub async fn add(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Who asks first: a stranger's body is never read.
    let principal = require_admin(&shared, &headers).await?;
    let Value::Object(window) = json_body::<Value>(&shared, body, MAX_BODY).await? else {
        return Err(ApiError::bad_request("the body must be a JSON object: one maintenance window"));
    };
    let name = window.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let _one_change_at_a_time = shared.maintenance.writes.lock().await;
    let mut windows = shared.maintenance.list();
    if windows.len() >= MAX_WINDOWS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the API keeps at most {MAX_WINDOWS} maintenance windows: delete some first"),
        ));
    }
    let added = ApiWindow { name: name.clone(), window, token: principal.id, created_at_ms: time::now_ms() };
    windows.push(added.clone());
    let state = shared.clone();
    let checked = {
        let windows = windows.clone();
        tokio::task::spawn_blocking(move || check(&state, &windows)).await
    };
    checked.map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))??;
    if !added.window.get("name").is_some_and(Value::is_string) {
        return Err(ApiError::bad_request("name: write the name as a string"));
    }
    match shared.cluster() {
        Some(cluster) => {
            let stored = cluster.add_maintenance(&added).await.map_err(ApiError::unavailable)?;
            if !stored {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "a maintenance window named {name:?} was added meanwhile, or the API holds {MAX_WINDOWS} \
                         windows already"
                    ),
                ));
            }
            cluster.refresh_maintenance(&shared).await.map_err(ApiError::unavailable)?;
        }
        None => store(&shared, windows).await?,
    }
    let config = shared.config();
    let view = config
        .config
        .maintenance
        .iter()
        .find(|window| window.name == name && window.place.file == SOURCE)
        .map(|window| view(window, &config.api, time::now_ms()))
        .unwrap_or_else(|| serde_json::json!({ "name": name, "source": "api" }));
    Ok((StatusCode::CREATED, Json(view)))
}

/// Validates the API's windows, the last one just posted, with the running config files: the last one's errors
/// as `path: message`, joined.
fn check(shared: &Shared, windows: &[ApiWindow]) -> Result<(), ApiError> {
    let mut files = shared.config().config_files();
    files.extend(source(windows));
    let Err(errors) = probenet_checks::config::load_sources(&files) else { return Ok(()) };
    let last = windows.len().saturating_sub(1);
    let mine: Vec<String> = errors
        .0
        .iter()
        .filter(|error| error.file == SOURCE)
        .filter_map(|error| match located(error) {
            Some((index, path)) => (index == last).then(|| describe(&path, &error.message)),
            // The source as a whole does not read (a body nested too deep): the new window's doing.
            None => Some(error.message.clone()),
        })
        .collect();
    if mine.is_empty() { Ok(()) } else { Err(ApiError::bad_request(mine.join("; "))) }
}

/// Single scheduler: writes `DATA/maintenance.json` and rebuilds the running config with the windows.
async fn store(shared: &Arc<Shared>, windows: Vec<ApiWindow>) -> Result<(), ApiError> {
    let state = shared.clone();
    let stored = tokio::task::spawn_blocking(move || {
        state.maintenance.write(windows)?;
        state.reload(false);
        Ok::<_, super::MaintenanceError>(())
    })
    .await;
    match stored {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
        Err(error) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
    }
}

/// `DELETE /api/v1/maintenance/{name}` (admin): a one-off window of the API in force ends now (the time so far
/// stays maintenance in the ledger, and it is listed until it is pruned); any other window of the API is
/// removed. A window of the config files is changed by editing them: 409.
pub async fn end(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&shared, &headers).await?;
    let _one_change_at_a_time = shared.maintenance.writes.lock().await;
    let mut windows = shared.maintenance.list();
    let running = shared.config();
    let Some(index) = windows.iter().position(|window| window.name == name) else {
        if let Some(window) = running.config.maintenance.iter().find(|window| window.name == name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "maintenance window {name:?} is written in the config files ({}): edit them to change or remove it",
                    window.place
                ),
            ));
        }
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no maintenance window {name:?}")));
    };
    let now = time::now_ms();
    let started = running.config.maintenance.iter().find(|window| window.name == name && window.place.file == SOURCE);
    let ends = match started.map(|window| &window.when) {
        Some(When::Once { start_ms, end_ms }) if *start_ms <= now && now < *end_ms => Some(now.max(start_ms + 1)),
        _ => None,
    };
    let result = match ends {
        Some(end_ms) => {
            let window = &mut windows[index].window;
            window.remove("duration");
            window.insert("end".to_owned(), Value::String(time::rfc3339_ms(end_ms)));
            "ended"
        }
        None => "removed",
    };
    match shared.cluster() {
        Some(cluster) => {
            let call = match ends {
                Some(_) => cluster.update_maintenance(&windows[index]).await,
                None => cluster.remove_maintenance(&name).await,
            };
            call.map_err(ApiError::unavailable)?;
            cluster.refresh_maintenance(&shared).await.map_err(ApiError::unavailable)?;
        }
        None => {
            if ends.is_none() {
                windows.remove(index);
            }
            store(&shared, windows).await?;
        }
    }
    Ok(Json(serde_json::json!({ "name": name, "result": result })))
}
