//! The JSON read API under `/api/ui/` (see `docs/openapi.yaml`) and the live-update event stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::model::Range;
use crate::{Ctx, Source, SourceResult};

/// How often the event stream looks at [`Source::version`].
const VERSION_POLL: Duration = Duration::from_millis(1000);

/// The longest range the check page may ask for.
const MAX_RANGE_MS: i64 = 90 * 86_400_000;

/// A JSON error answer.
fn error(status: StatusCode, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "error": message }))).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// FNV-1a, for entity tags.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// A JSON answer with an entity tag; `304 Not Modified` if the client has it already.
fn json_with_etag(headers: &HeaderMap, value: &impl Serialize) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(body) => body,
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the answer"),
    };
    let etag = format!("\"{:016x}\"", fnv(&body));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|given| given.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// Runs a source query on the blocking pool.
async fn query<T: Send + 'static>(
    ctx: &Ctx,
    run: impl FnOnce(&dyn Source) -> SourceResult<T> + Send + 'static,
) -> Result<T, Response> {
    let source = ctx.source.clone();
    match tokio::task::spawn_blocking(move || run(source.as_ref())).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(failed)) => {
            tracing::warn!(error = %failed, "dashboard source failed");
            Err(error(StatusCode::SERVICE_UNAVAILABLE, &failed.to_string()))
        }
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "the query did not finish")),
    }
}

/// A value with the source's "now" next to it.
#[derive(Serialize)]
struct WithNow<T> {
    now_ms: i64,
    #[serde(flatten)]
    data: T,
}

/// `GET /api/ui/overview`: the compact overview ([`crate::compact`]).
pub(crate) async fn overview(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    match query(&ctx, |source| source.overview()).await {
        Ok(overview) => json_with_etag(&headers, &crate::compact::encode_overview(&overview)),
        Err(response) => response,
    }
}

/// Parses a range like `90m`, `24h`, `7d`.
fn parse_span(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_ms).filter(|span| *span > 0)
}

/// The asked range: `from`/`to` in ms, or `range` (`24h` by default) ending now.
fn range(params: &HashMap<String, String>, now_ms: i64) -> Result<Range, &'static str> {
    let number =
        |key: &str| params.get(key).map(|value| value.parse::<i64>().map_err(|_| "from and to are milliseconds"));
    let to_ms = number("to").transpose()?.unwrap_or(now_ms);
    let from_ms = match number("from").transpose()? {
        Some(from) => from,
        None => {
            let span = params.get("range").map(String::as_str).unwrap_or("24h");
            to_ms - parse_span(span).ok_or("range is a number and m, h or d, like 24h")?
        }
    };
    if from_ms >= to_ms {
        return Err("from must be before to");
    }
    if to_ms - from_ms > MAX_RANGE_MS {
        return Err("the range is at most 90 days");
    }
    Ok(Range { from_ms, to_ms })
}

/// `GET /api/ui/checks/{name}?range=24h` (or `from`, `to`): one check. `range=auto` picks the shortest of
/// 1 h, 6 h and 24 h that holds the check's runs (see [`fitting_range`]) and names it in `range`.
pub(crate) async fn check(
    State(ctx): State<Ctx>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let now_ms = ctx.source.now_ms();
    let auto = params.get("range").is_some_and(|range| range == "auto");
    let mut params = params;
    if auto {
        params.insert("range".to_owned(), "24h".to_owned());
    }
    let range = match range(&params, now_ms) {
        Ok(range) => range,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let answer = query(&ctx, move |source| {
        let Some(detail) = source.check(&name, range)? else { return Ok(None) };
        if !auto {
            return Ok(Some((detail, None)));
        }
        let (label, span) = fitting_range(detail.first_run_ms, range.to_ms);
        if span == range.to_ms - range.from_ms {
            return Ok(Some((detail, Some(label))));
        }
        let fitted = Range { from_ms: range.to_ms - span, to_ms: range.to_ms };
        Ok(source.check(&name, fitted)?.map(|detail| (detail, Some(label))))
    })
    .await;
    match answer {
        Ok(Some((detail, range))) => json_with_etag(&headers, &CheckAnswer { now_ms, range, data: detail }),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such check"),
        Err(response) => response,
    }
}

/// The ranges `range=auto` picks from, shortest first.
const AUTO_RANGES: [(&str, i64); 3] = [("1h", 3_600_000), ("6h", 21_600_000), ("24h", 86_400_000)];

/// The shortest of 1 h, 6 h and 24 h that holds every run since the first (24 h for a check older than
/// that; 1 h for one that has not run yet).
fn fitting_range(first_run_ms: Option<i64>, to_ms: i64) -> (&'static str, i64) {
    let age = first_run_ms.map_or(0, |first| to_ms - first);
    AUTO_RANGES.into_iter().find(|(_, span)| age <= *span).unwrap_or(AUTO_RANGES[AUTO_RANGES.len() - 1])
}

/// A check's answer: its detail, the source's now, and the range `range=auto` chose.
#[derive(Serialize)]
struct CheckAnswer<T> {
    now_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    range: Option<&'static str>,
    #[serde(flatten)]
    data: T,
}

/// `GET /api/ui/artifacts/{path}`: a stored file, such as a screenshot.
pub(crate) async fn artifact(State(ctx): State<Ctx>, Path(path): Path<String>) -> Response {
    match query(&ctx, move |source| source.artifact(&path)).await {
        Ok(Some(artifact)) => {
            let media_type = HeaderValue::from_str(&artifact.media_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            let mut response = artifact.data.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, media_type);
            // Stored files never change once written.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400, immutable"));
            headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
            response
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no such artifact"),
        Err(response) => response,
    }
}

/// `GET /api/ui/alerts`.
pub(crate) async fn alerts(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let now_ms = ctx.source.now_ms();
    match query(&ctx, |source| source.alerts()).await {
        Ok(alerts) => json_with_etag(&headers, &WithNow { now_ms, data: alerts }),
        Err(response) => response,
    }
}

/// `GET /api/ui/probers`.
pub(crate) async fn probers(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let now_ms = ctx.source.now_ms();
    match query(&ctx, |source| source.probers()).await {
        Ok(probers) => json_with_etag(&headers, &WithNow { now_ms, data: probers }),
        Err(response) => response,
    }
}

/// `GET /api/ui/slos`.
pub(crate) async fn slos(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let now_ms = ctx.source.now_ms();
    match query(&ctx, |source| source.slos()).await {
        Ok(slos) => json_with_etag(&headers, &json!({ "now_ms": now_ms, "slos": slos })),
        Err(response) => response,
    }
}

/// `GET /api/ui/status`: the public status page's data.
pub(crate) async fn status(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let now_ms = ctx.source.now_ms();
    match query(&ctx, |source| source.status_page()).await {
        Ok(Some(page)) => json_with_etag(&headers, &WithNow { now_ms, data: without_check_names(page) }),
        Ok(None) => error(StatusCode::NOT_FOUND, "no status page is configured"),
        Err(response) => response,
    }
}

/// The status page as the public sees it: each check keyed by its place on the page (`service-1`...), never by
/// its internal name (which may name hosts, teams or customers).
/// Incidents of one service that overlap are merged into one, their reasons worded ([`crate::status`]).
fn without_check_names(mut page: crate::model::StatusPage) -> crate::model::StatusPage {
    crate::status::merge_incidents(&mut page);
    let keys: std::collections::HashMap<String, String> =
        page.checks.iter().enumerate().map(|(i, check)| (check.name.clone(), format!("service-{}", i + 1))).collect();
    let key = |name: &String| keys.get(name).cloned().unwrap_or_else(|| "service".to_owned());
    for check in &mut page.checks {
        check.name = key(&check.name);
    }
    for incident in &mut page.incidents {
        incident.checks = incident.checks.iter().map(key).collect();
    }
    for notice in &mut page.maintenance {
        notice.checks = notice.checks.iter().map(key).collect();
    }
    page
}

/// `GET /api/ui/version`: the change counter, for clients that poll instead of listening to events.
pub(crate) async fn version(State(ctx): State<Ctx>) -> Response {
    let mut response = axum::Json(json!({ "version": ctx.source.version() })).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/ui/reload`: `{"failed": false}`, or the refused config reload the pages show as a banner.
pub(crate) async fn reload(State(ctx): State<Ctx>) -> Response {
    let body = match ctx.source.reload_problem() {
        Some(problem) => json!({ "failed": true, "at_ms": problem.at_ms, "errors": problem.errors }),
        None => json!({ "failed": false }),
    };
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/ui/events`: server-sent events; a `version` event (data: the counter) at once and whenever it
/// changes. Pages refetch what they show when it does.
pub(crate) async fn events(State(ctx): State<Ctx>) -> Response {
    let source = ctx.source.clone();
    let stream = futures::stream::unfold((source, None::<u64>), |(source, last)| async move {
        let mut current = source.version();
        if last.is_some() {
            while Some(current) == last {
                tokio::time::sleep(VERSION_POLL).await;
                current = source.version();
            }
        }
        let event = Event::default().event("version").data(current.to_string()).retry(Duration::from_secs(5));
        Some((Ok::<Event, Infallible>(event), (source, Some(current))))
    });
    let mut response = Sse::new(stream).keep_alive(KeepAlive::default()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_range_fits_the_runs() {
        let now = 100 * 86_400_000;
        assert_eq!(fitting_range(None, now).0, "1h");
        assert_eq!(fitting_range(Some(now - 60_000), now).0, "1h");
        assert_eq!(fitting_range(Some(now - 2 * 3_600_000), now).0, "6h");
        assert_eq!(fitting_range(Some(now - 7 * 3_600_000), now).0, "24h");
        assert_eq!(fitting_range(Some(now - 40 * 86_400_000), now).0, "24h");
    }

    #[test]
    fn ranges_are_parsed_and_bounded() {
        let params = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(
            range(&params(&[]), 100_000_000),
            Ok(Range { from_ms: 100_000_000 - 86_400_000, to_ms: 100_000_000 })
        );
        assert_eq!(range(&params(&[("range", "1h")]), 3_600_000), Ok(Range { from_ms: 0, to_ms: 3_600_000 }));
        assert_eq!(range(&params(&[("from", "5"), ("to", "9")]), 0), Ok(Range { from_ms: 5, to_ms: 9 }));
        assert!(range(&params(&[("range", "1y")]), 0).is_err());
        assert!(range(&params(&[("range", "91d")]), 0).is_err());
        assert!(range(&params(&[("from", "9"), ("to", "5")]), 0).is_err());
    }
}
