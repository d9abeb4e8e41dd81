//! The management API, `/api/v1`: listeners, public URLs, secrets, sample data, mock output,
//! debug windows and import errors, one file per area. Protected by the bearer token
//! `server.admin_token`; without one the API is off.

pub mod auth;
pub mod auth_limit;
mod debug;
pub mod import_errors;
mod listeners;
pub mod openapi;
mod preview;
mod samples;

use actix_web::web;
use actix_web::HttpRequest;

use crate::http::state::AppState;
use auth::{authorize, ApiError, ApiResult};

/// Request bodies of the API are bounded too.
const API_BODY_LIMIT: usize = 5 * 1024 * 1024;

/// The `/api/v1` routes.
pub fn scope() -> actix_web::Scope {
    web::scope("/api/v1")
        .app_data(web::PayloadConfig::new(API_BODY_LIMIT))
        .route("/listeners", web::get().to(listeners::list))
        .route("/listeners", web::post().to(listeners::create))
        .route("/listeners/{id}", web::get().to(listeners::show))
        .route("/listeners/{id}", web::put().to(listeners::replace))
        .route("/listeners/{id}", web::patch().to(listeners::update))
        .route("/listeners/{id}", web::delete().to(listeners::delete))
        .route("/listeners/{id}/url", web::get().to(listeners::get_url))
        .route("/listeners/{id}/url", web::post().to(listeners::regenerate_url))
        .route("/listeners/{id}/secrets", web::post().to(listeners::add_secret))
        .route(
            "/listeners/{id}/secrets/{fingerprint}",
            web::delete().to(listeners::retire_secret),
        )
        .route("/openapi.json", web::get().to(openapi::openapi_json))
        .route("/listeners/{id}/preview", web::post().to(preview::preview))
        .route("/listeners/{id}/sample", web::get().to(samples::get_sample))
        .route("/listeners/{id}/sample", web::put().to(samples::put_sample))
        .route("/listeners/{id}/mock", web::get().to(samples::get_mock))
        .route("/listeners/{id}/mock", web::put().to(samples::put_mock))
        .route("/listeners/{id}/mock/send", web::post().to(samples::send_mock))
        .route("/listeners/{id}/debug", web::get().to(debug::debug_status))
        .route("/listeners/{id}/debug", web::post().to(debug::debug_start))
        .route("/listeners/{id}/debug", web::delete().to(debug::debug_stop))
        .route("/listeners/{id}/debug/logs", web::get().to(debug::debug_logs))
        .route(
            "/listeners/{id}/debug/logs/{request_id}",
            web::get().to(debug::debug_log),
        )
        .configure(import_errors::routes)
        .default_service(web::to(unknown_route))
}

async fn unknown_route(request: HttpRequest, state: web::Data<AppState>) -> ApiResult {
    authorize(&request, &state)?;
    Err(ApiError::not_found("route"))
}
