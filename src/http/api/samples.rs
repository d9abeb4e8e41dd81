//! `/api/v1/listeners/{id}/sample` and `/mock`: the latest sample data (written by ingestion,
//! or by hand), saved mock output, and sending that mock output through the pipeline.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::Value;

use super::auth::{authorize, parse_json, ApiError, ApiResult};
use super::listeners::listener_of;
use crate::api_model::{ErrorBody, MockOutput, MockSent, RecordsInput, Sample};
use crate::http::state::AppState;
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::reply::Reply;
use crate::pipeline::{rfc3339_millis, unix_millis_now, Chain, Ingest, Webhook};

/// The listener's sample data, when it has one this version can read.
pub(super) fn sample_of(state: &AppState, listener_id: &str) -> Option<Sample> {
    serde_json::from_value(state.shared.sample(listener_id)?).ok()
}

/// The listener's saved mock output, when it has one this version can read.
fn mock_of(state: &AppState, listener_id: &str) -> Option<MockOutput> {
    serde_json::from_value(state.shared.mock(listener_id)?).ok()
}

fn records_of(body: &Value) -> Result<Vec<Value>, ApiError> {
    match body.get("records") {
        Some(Value::Array(records)) => Ok(records.clone()),
        _ => Err(ApiError::invalid("records", "must be a JSON array of records")),
    }
}

#[utoipa::path(get, path = "/listeners/{id}/sample", operation_id = "getSample", tag = "samples",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 200, description = "The latest sample", body = Sample), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener, or no sample yet", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get_sample(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let sample = sample_of(&state, &path).ok_or_else(|| ApiError::not_found("sample data"))?;
    Ok(HttpResponse::Ok().json(sample))
}

#[utoipa::path(put, path = "/listeners/{id}/sample", operation_id = "putSample", tag = "samples",
    params(("id" = String, Path, description = "Listener id", example = "orders")), request_body = RecordsInput,
    responses((status = 200, description = "The sample, saved", body = Sample),
        (status = 400, description = "Not `{\"records\": [...]}`", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody),
        (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_sample(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let records = records_of(&parse_json(&body)?)?;
    let sample = Sample {
        source: "manual".into(),
        listener_id: path.to_string(),
        received_at: rfc3339_millis(unix_millis_now()),
        request_id: None,
        content_type: Some("application/json".into()),
        headers: Value::Object(Default::default()),
        records_total: records.len() as u64,
        records,
        body: None,
        body_truncated: false,
        more: Default::default(),
    };
    let stored = serde_json::to_value(&sample).map_err(|error| ApiError::storage(error.to_string()))?;
    state
        .shared
        .put_sample(&path, &stored)
        .await
        .map_err(ApiError::storage)?;
    Ok(HttpResponse::Ok().json(sample))
}

#[utoipa::path(get, path = "/listeners/{id}/mock", operation_id = "getMock", tag = "samples",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 200, description = "The saved mock output", body = MockOutput), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener, or none saved", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get_mock(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let mock = mock_of(&state, &path).ok_or_else(|| ApiError::not_found("mock output"))?;
    Ok(HttpResponse::Ok().json(mock))
}

#[utoipa::path(put, path = "/listeners/{id}/mock", operation_id = "putMock", tag = "samples",
    params(("id" = String, Path, description = "Listener id", example = "orders")), request_body = RecordsInput,
    responses((status = 200, description = "Saved", body = MockOutput),
        (status = 400, description = "Not `{\"records\": [...]}`", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody),
        (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put_mock(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let records = records_of(&parse_json(&body)?)?;
    let mock = MockOutput {
        records,
        updated_at: rfc3339_millis(unix_millis_now()),
    };
    let stored = serde_json::to_value(&mock).map_err(|error| ApiError::storage(error.to_string()))?;
    state.shared.put_mock(&path, &stored).await.map_err(ApiError::storage)?;
    Ok(HttpResponse::Ok().json(mock))
}

/// Sends the saved mock output through the pipeline as if received (records marked mock). It
/// enters at the parse stage: there is nothing to verify and it takes no rate-limit token.
#[utoipa::path(post, path = "/listeners/{id}/mock/send", operation_id = "sendMock", tag = "samples",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 200, description = "Published and acknowledged by Kafka", body = MockSent),
        (status = 400, description = "The records do not fit the listener (templates, sizes)", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener, or no mock output", body = ErrorBody),
        (status = 413, description = "A record over the page size limit", body = ErrorBody),
        (status = 503, description = "Kafka did not acknowledge in time", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn send_mock(
    request: HttpRequest,
    state: web::Data<AppState>,
    chain: web::Data<Chain>,
    path: web::Path<String>,
) -> ApiResult {
    authorize(&request, &state)?;
    let listener = listener_of(&state, &path)?;
    let records = mock_of(&state, &path)
        .ok_or_else(|| ApiError::not_found("mock output"))?
        .records;
    let request_id: Arc<str> = crate::pipeline::new_id().into();
    let mut headers = header::HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let (reply, awaited) = Reply::new();
    let message = Ingest {
        webhook: Webhook {
            request_id: request_id.clone(),
            listener,
            method: "POST".into(),
            url: String::new(),
            query: String::new(),
            headers,
            body: Bytes::from(serde_json::to_vec(&records).unwrap_or_default()),
            received_at_ms: unix_millis_now(),
            mock: true,
        },
        delivery_id: None,
        keep_records: false,
        reservation: None,
        answer_once_verified: false,
        reply,
    };
    let answer = async {
        // A stopped stage drops the message, and its reply answers 503.
        let _ = chain.mock_entry.forward(message).await;
        awaited.outcome().await
    };
    let outcome = tokio::time::timeout(state.request_timeout, answer)
        .await
        .unwrap_or(Err(IngestError::Deadline));
    match outcome {
        Ok(accepted) => Ok(HttpResponse::Ok().json(MockSent {
            request_id: request_id.to_string(),
            records: accepted.record_count as u64,
        })),
        Err(error) => Err(ApiError::new(error.status_code(), error.to_string())),
    }
}
