//! `/api/v1/listeners/{id}/debug…`: debug windows (opened for a chosen duration, closing by
//! themselves) and the captures recorded while one was open, from every instance.

use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::{authorize, parse_json, ApiError, ApiResult};
use super::listeners::listener_of;
use crate::http::state::AppState;
use crate::pipeline::{rfc3339_millis, unix_millis_now};

/// Default and longest debug windows.
const DEBUG_DEFAULT: Duration = Duration::from_secs(15 * 60);

const DEBUG_MAX: Duration = Duration::from_secs(60 * 60);

fn window_body(until_ms: Option<i64>) -> Value {
    let open = until_ms.is_some_and(|until| until > unix_millis_now());
    json!({
        "open": open,
        "until": until_ms.filter(|_| open).map(rfc3339_millis),
    })
}

pub(super) async fn debug_status(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(window_body(state.registry.debug_window(&path, unix_millis_now()))))
}

pub(super) async fn debug_start(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let body = parse_json(&body)?;
    let duration = match (body.get("duration_minutes"), body.get("duration_secs")) {
        (Some(minutes), _) => Duration::from_secs(
            minutes
                .as_u64()
                .filter(|m| (1..=60).contains(m))
                .ok_or_else(|| ApiError::invalid("duration_minutes", "must be a whole number from 1 to 60"))?
                * 60,
        ),
        (None, Some(seconds)) => Duration::from_secs(
            seconds
                .as_u64()
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

pub(super) async fn debug_logs(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(json!({ "captures": state.shared.captures(&path) })))
}

pub(super) async fn debug_log(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    authorize(&request, &state)?;
    let (id, request_id) = path.into_inner();
    listener_of(&state, &id)?;
    let capture = state
        .shared
        .captures(&id)
        .into_iter()
        .find(|capture| capture["request_id"] == request_id.as_str())
        .ok_or_else(|| ApiError::not_found("capture"))?;
    Ok(HttpResponse::Ok().json(capture))
}
