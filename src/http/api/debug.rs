//! `/api/v1/listeners/{id}/debug…`: debug windows (opened for a chosen duration, closing by
//! themselves) and the captures recorded while one was open, from every instance.

use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};

use super::auth::{authorize, parse_body, ApiError, ApiResult};
use super::listeners::listener_of;
use crate::api_model::{Capture, CaptureList, DebugStart, DebugWindow, ErrorBody};
use crate::http::state::AppState;
use crate::pipeline::{rfc3339_millis, unix_millis_now};

/// Default and longest debug windows.
const DEBUG_DEFAULT: Duration = Duration::from_secs(15 * 60);

const DEBUG_MAX: Duration = Duration::from_secs(60 * 60);

fn window_body(until_ms: Option<i64>) -> DebugWindow {
    let open = until_ms.is_some_and(|until| until > unix_millis_now());
    DebugWindow {
        open,
        until: until_ms.filter(|_| open).map(rfc3339_millis),
    }
}

/// The listener's captures; a stored capture this version cannot read is left out.
fn captures_of(state: &AppState, listener_id: &str) -> Vec<Capture> {
    state
        .shared
        .captures(listener_id)
        .into_iter()
        .filter_map(|capture| serde_json::from_value(capture).ok())
        .collect()
}

#[utoipa::path(get, path = "/listeners/{id}/debug", operation_id = "getDebugWindow", tag = "debug",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 200, description = "The debug window", body = DebugWindow),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn debug_status(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(window_body(state.registry.debug_window(&path, unix_millis_now()))))
}

#[utoipa::path(post, path = "/listeners/{id}/debug", operation_id = "startDebugWindow", tag = "debug",
    params(("id" = String, Path, description = "Listener id", example = "orders")), request_body(content = DebugStart, description = "Duration (default 15 minutes)"),
    responses((status = 200, description = "The window, open", body = DebugWindow),
        (status = 400, description = "Bad duration", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody),
        (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn debug_start(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let body: DebugStart = parse_body(&body)?;
    let duration = match (body.duration_minutes, body.duration_secs) {
        (Some(minutes), _) => Duration::from_secs(
            Some(minutes)
                .filter(|m| (1..=60).contains(m))
                .ok_or_else(|| ApiError::invalid("duration_minutes", "must be a whole number from 1 to 60"))?
                * 60,
        ),
        (None, Some(seconds)) => Duration::from_secs(
            Some(seconds)
                .filter(|s| (1..=DEBUG_MAX.as_secs()).contains(s))
                .ok_or_else(|| ApiError::invalid("duration_secs", "must be a whole number from 1 to 3600"))?,
        ),
        (None, None) => DEBUG_DEFAULT,
    };
    let until_ms = unix_millis_now() + duration.as_millis() as i64;
    state
        .shared
        .open_debug_window(&path, until_ms)
        .await
        .map_err(ApiError::storage)?;
    crate::shared_state::apply_debug_windows(&state.shared, &state.registry);
    Ok(HttpResponse::Ok().json(window_body(Some(until_ms))))
}

#[utoipa::path(delete, path = "/listeners/{id}/debug", operation_id = "stopDebugWindow", tag = "debug",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 200, description = "The window, closed", body = DebugWindow),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody),
        (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn debug_stop(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    state
        .shared
        .close_debug_window(&path)
        .await
        .map_err(ApiError::storage)?;
    crate::shared_state::apply_debug_windows(&state.shared, &state.registry);
    Ok(HttpResponse::Ok().json(window_body(None)))
}

#[utoipa::path(get, path = "/listeners/{id}/debug/logs", operation_id = "listCaptures", tag = "debug",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 200, description = "Captures from every instance", body = CaptureList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn debug_logs(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(CaptureList {
        captures: captures_of(&state, &path),
    }))
}

#[utoipa::path(get, path = "/listeners/{id}/debug/logs/{request_id}", operation_id = "getCapture", tag = "debug",
    params(("id" = String, Path, description = "Listener id", example = "orders"), ("request_id" = String, Path, description = "The request's id")),
    responses((status = 200, description = "One capture", body = Capture),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener or capture", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn debug_log(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    authorize(&request, &state)?;
    let (id, request_id) = path.into_inner();
    listener_of(&state, &id)?;
    let capture = captures_of(&state, &id)
        .into_iter()
        .find(|capture| capture.request_id == request_id)
        .ok_or_else(|| ApiError::not_found("capture"))?;
    Ok(HttpResponse::Ok().json(capture))
}
