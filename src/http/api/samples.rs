//! `/api/v1/listeners/{id}/sample` and `/mock`: the latest sample data (written by ingestion,
//! or by hand), saved mock output, and sending that mock output through the pipeline.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::auth::{authorize, parse_json, ApiError, ApiResult};
use super::listeners::listener_of;
use crate::http::state::AppState;
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::reply::Reply;
use crate::pipeline::{rfc3339_millis, unix_millis_now, Chain, Ingest, Webhook};

fn records_of(body: &Value) -> Result<Vec<Value>, ApiError> {
    match body.get("records") {
        Some(Value::Array(records)) => Ok(records.clone()),
        _ => Err(ApiError::invalid("records", "must be a JSON array of records")),
    }
}

pub(super) async fn get_sample(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let sample = state
        .shared
        .sample(&path)
        .ok_or_else(|| ApiError::not_found("sample data"))?;
    Ok(HttpResponse::Ok().json(sample))
}

pub(super) async fn put_sample(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let records = records_of(&parse_json(&body)?)?;
    let sample = json!({
        "source": "manual",
        "listener_id": path.as_str(),
        "received_at": rfc3339_millis(unix_millis_now()),
        "request_id": null,
        "content_type": "application/json",
        "headers": {},
        "records_total": records.len(),
        "records": records,
        "body": null,
        "body_truncated": false,
    });
    state
        .shared
        .put_sample(&path, &sample)
        .await
        .map_err(ApiError::storage)?;
    Ok(HttpResponse::Ok().json(sample))
}

pub(super) async fn get_mock(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let mock = state
        .shared
        .mock(&path)
        .ok_or_else(|| ApiError::not_found("mock output"))?;
    Ok(HttpResponse::Ok().json(mock))
}

pub(super) async fn put_mock(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let records = records_of(&parse_json(&body)?)?;
    let mock = json!({ "records": records, "updated_at": rfc3339_millis(unix_millis_now()) });
    state.shared.put_mock(&path, &mock).await.map_err(ApiError::storage)?;
    Ok(HttpResponse::Ok().json(mock))
}

/// Sends the saved mock output through the pipeline as if received (records marked mock). It
/// enters at the parse stage: there is nothing to verify and it takes no rate-limit token.
pub(super) async fn send_mock(
    request: HttpRequest,
    state: web::Data<AppState>,
    chain: web::Data<Chain>,
    path: web::Path<String>,
) -> ApiResult {
    authorize(&request, &state)?;
    let listener = listener_of(&state, &path)?;
    let saved = state
        .shared
        .mock(&path)
        .ok_or_else(|| ApiError::not_found("mock output"))?;
    let records = records_of(&saved)?;
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
        Ok(accepted) => Ok(HttpResponse::Ok().json(json!({
            "request_id": request_id.as_ref(),
            "records": accepted.record_count,
        }))),
        Err(error) => Err(ApiError::new(error.status_code(), error.to_string())),
    }
}
