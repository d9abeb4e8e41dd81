//! `/api/v1/listeners/{id}/errors…`: open import errors of a listener, newest first; one error
//! with its retry data; retry (one, selected, all) by republishing to the pages topic with the
//! attempt incremented; resolve by hand. Served from this instance's mirror of the errors
//! topic, so any instance answers; retry data is in the error itself, or — for errors recorded
//! by earlier versions — read from their retry topic.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::auth::{authorize, parse_body, ApiError, ApiResult};
use crate::api_model::{
    import_errors::RetryDataView, ErrorBody, ErrorDetail, ErrorList, ErrorView, Refused, Resolved, RetryOne,
    RetryReport, RetryRequest,
};
use crate::config::kafka::KafkaSettings;
use crate::http::state::AppState;
use crate::import_errors::{
    find_retry_data, republish, republish_events, ErrorEntry, ErrorsStore, Republish, RetryData, RetryLookup,
    RETRY_LOOKUP_BATCH,
};
use crate::pipeline::{rfc3339_millis, unix_millis_now};
use crate::telemetry::METRICS;

/// Errors listed per page by default, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;
/// Record ids accepted in one retry request.
const MAX_RETRY_IDS: usize = 1000;
/// Longest a retry data lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often opening the errors view is retried while Kafka refuses.
const OPEN_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// This instance's errors view: opened in the background at start, so a missing or slow errors
/// topic never holds up ingestion; until it is open the endpoints answer 503.
pub struct ErrorsView {
    store: RwLock<Result<Arc<ErrorsStore>, String>>,
}

impl ErrorsView {
    /// A view still opening.
    pub fn opening() -> ErrorsView {
        ErrorsView {
            store: RwLock::new(Err("the errors view is still loading".into())),
        }
    }

    /// Open errors over every listener, once the view has opened.
    pub fn open_count(&self) -> Option<usize> {
        let store = self.store.read().unwrap_or_else(PoisonError::into_inner);
        store.as_ref().ok().map(|store| store.open_count())
    }

    fn set(&self, store: Result<Arc<ErrorsStore>, String>) {
        *self.store.write().unwrap_or_else(PoisonError::into_inner) = store;
    }

    fn store(&self) -> Result<Arc<ErrorsStore>, ApiError> {
        self.store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .map_err(|reason| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}; retry later")))
    }
}

/// Opens the errors topic's mirror on the current actix runtime, retrying until it opens.
pub fn spawn_open(view: web::Data<ErrorsView>, kafka: KafkaSettings, bootstrap: String, create: bool) {
    actix_web::rt::spawn(async move {
        loop {
            match ErrorsStore::open(&kafka, &bootstrap, create).await {
                Ok(store) => {
                    view.set(Ok(store));
                    return;
                }
                Err(error) => {
                    tracing::warn!(topic = %kafka.errors_topic, %error, "cannot open the errors view; retrying");
                    view.set(Err("the errors view is unavailable (errors topic not readable)".into()));
                    actix_web::rt::time::sleep(OPEN_RETRY_INTERVAL).await;
                }
            }
        }
    });
}

/// Registers the errors routes inside the `/api/v1` scope.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/listeners/{id}/errors", web::get().to(list))
        .route("/listeners/{id}/errors/retry", web::post().to(retry_many))
        .route("/listeners/{id}/errors/{record_id}", web::get().to(show))
        .route("/listeners/{id}/errors/{record_id}/retry", web::post().to(retry_one))
        .route("/listeners/{id}/errors/{record_id}/resolve", web::post().to(resolve));
}

/// An error as the API shows it: its fields without the record (`show` adds it as
/// `retry_data`), with `can_retry` and, when false, `retry_unavailable`.
fn view(entry: &ErrorEntry) -> Result<ErrorView, ApiError> {
    let mut value = serde_json::to_value(entry).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("retry_data");
        fields.remove("retry_data_missing");
    }
    let refusal = entry.retry_refusal();
    value["can_retry"] = json!(refusal.is_none());
    if let Some(reason) = refusal {
        value["retry_unavailable"] = json!(reason);
    }
    serde_json::from_value(value).map_err(|error| {
        tracing::error!(%error, "error entry does not fit the API's type");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    })
}

/// The listener's errors; 404 when the listener is unknown and has none.
fn errors_of(state: &AppState, store: &ErrorsStore, listener_id: &str) -> Result<Vec<ErrorEntry>, ApiError> {
    let entries = store.list(listener_id);
    if entries.is_empty() && state.registry.by_id(listener_id).is_none() {
        return Err(ApiError::not_found("listener"));
    }
    Ok(entries)
}

fn query_number(
    request: &HttpRequest,
    name: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ApiError> {
    let raw = request
        .query_string()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value);
    match raw {
        None => Ok(default),
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!("must be a whole number from {} to {}", range.start(), range.end()),
                )
            }),
    }
}

#[utoipa::path(get, path = "/listeners/{id}/errors", operation_id = "listErrors", tag = "errors",
    params(("id" = String, Path, description = "Listener id", example = "orders"),
        ("limit" = Option<u32>, Query, description = "Errors per page, 1-1000 (default 50)"),
        ("offset" = Option<u64>, Query, description = "Errors to skip (default 0)")),
    responses((status = 200, description = "Open errors, newest first", body = ErrorList),
        (status = 400, description = "Bad limit or offset", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody), (status = 503, description = "The errors view is loading, or Kafka is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(
    request: HttpRequest,
    state: web::Data<AppState>,
    errors: web::Data<ErrorsView>,
    path: web::Path<String>,
) -> ApiResult {
    authorize(&request, &state)?;
    let limit = query_number(&request, "limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)?;
    let offset = query_number(&request, "offset", 0, 0..=usize::MAX)?;
    let store = errors.store()?;
    let entries = errors_of(&state, &store, &path)?;
    let page = entries
        .iter()
        .skip(offset)
        .take(limit)
        .map(view)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(ErrorList {
        listener_id: path.to_string(),
        total: entries.len() as u64,
        limit: limit as u64,
        offset: offset as u64,
        errors: page,
    }))
}

/// The retry data of `entries` (all with `retry_data_stored`), by record id: from the entries
/// themselves, and from the legacy retry topic for errors recorded by earlier versions (read
/// only when there are such errors). Absent from the map: legacy retry data that expired.
async fn lookup(
    state: &AppState,
    entries: &[ErrorEntry],
) -> Result<std::collections::HashMap<String, RetryData>, ApiError> {
    let mut found: std::collections::HashMap<String, RetryData> = entries
        .iter()
        .filter_map(|entry| Some((entry.record_id.clone(), entry.inline_retry_data()?)))
        .collect();
    let wanted: Vec<RetryLookup> = entries
        .iter()
        .filter(|entry| entry.retry_data_in_legacy_topic())
        .map(|entry| RetryLookup {
            record_id: entry.record_id.clone(),
            received_at_ms: entry.received_at_ms(),
        })
        .collect();
    if wanted.is_empty() {
        return Ok(found);
    }
    let kafka = state.settings.kafka.clone();
    let bootstrap = state.bootstrap.clone();
    let produce_deadline = Duration::from_millis(state.settings.server.request_timeout_ms);
    let legacy = web::block(move || find_retry_data(&kafka, &bootstrap, &wanted, produce_deadline, LOOKUP_TIMEOUT))
        .await
        .map_err(|e| ApiError::storage(e.to_string()))?
        .map_err(ApiError::storage)?;
    found.extend(legacy);
    Ok(found)
}

/// Why an error recorded by an earlier version cannot be retried: its retry data, in the retry
/// topic those versions wrote, is gone.
fn expired_reason(state: &AppState) -> String {
    format!(
        "this error was recorded by an earlier hookpipe version, which kept retry data in {}, and the \
         record's retry data is no longer there (kept {} hours)",
        state.settings.kafka.retry_topic, state.settings.kafka.retry_retention_hours
    )
}

#[utoipa::path(get, path = "/listeners/{id}/errors/{record_id}", operation_id = "getError", tag = "errors",
    params(("id" = String, Path, description = "Listener id", example = "orders"), ("record_id" = String, Path, description = "The failed record's id")),
    responses((status = 200, description = "The error and its retry data", body = ErrorDetail), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such open error", body = ErrorBody), (status = 503, description = "The errors view is loading, or Kafka is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn show(
    request: HttpRequest,
    state: web::Data<AppState>,
    errors: web::Data<ErrorsView>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    authorize(&request, &state)?;
    let (listener_id, record_id) = path.into_inner();
    let store = errors.store()?;
    let entry = store
        .get(&listener_id, &record_id)
        .ok_or_else(|| ApiError::not_found("error"))?;
    let mut detail = ErrorDetail {
        error: view(&entry)?,
        retry_data: None,
    };
    if entry.retry_data_stored {
        let mut found = lookup(&state, std::slice::from_ref(&entry)).await?;
        match found.remove(&entry.record_id) {
            Some(data) => {
                detail.retry_data = Some(RetryDataView {
                    topic: data.topic,
                    page_id: data.page_id,
                    record: data.record,
                })
            }
            None => {
                detail.error.can_retry = false;
                detail.error.retry_unavailable = Some(expired_reason(&state));
            }
        }
    }
    Ok(HttpResponse::Ok().json(detail))
}

/// What a retry did to each record asked for.
#[derive(Default)]
struct Retried {
    republished: Vec<String>,
    refused: Vec<(String, String)>,
    not_found: Vec<String>,
}

impl Retried {
    fn body(&self) -> RetryReport {
        RetryReport {
            republished: self.republished.clone(),
            refused: self
                .refused
                .iter()
                .map(|(record_id, reason)| Refused {
                    record_id: record_id.clone(),
                    reason: reason.clone(),
                })
                .collect(),
            not_found: self.not_found.clone(),
            error: None,
        }
    }
}

/// Looks up, marks and republishes `entries` (all of one listener) in chunks.
async fn retry_entries(
    state: &AppState,
    store: &ErrorsStore,
    listener_id: &str,
    entries: Vec<ErrorEntry>,
    report: &mut Retried,
) -> Result<(), ApiError> {
    let mut candidates = Vec::new();
    for entry in entries {
        match entry.retry_refusal() {
            Some(reason) => report.refused.push((entry.record_id, reason)),
            None => candidates.push(entry),
        }
    }
    let listener = state.registry.by_id(listener_id);
    let page_size = listener.as_ref().map_or(20, |l| l.config.page_size);
    for chunk in candidates.chunks(RETRY_LOOKUP_BATCH) {
        let mut found = lookup(state, chunk).await?;
        let mut batch = Vec::new();
        for entry in chunk {
            match found.remove(&entry.record_id) {
                Some(data) => batch.push(Republish {
                    error: entry.clone(),
                    data,
                }),
                None => report.refused.push((entry.record_id.clone(), expired_reason(state))),
            }
        }
        if batch.is_empty() {
            continue;
        }
        // Marked before republishing: the worker may import (and resolve) the record at once,
        // and a mark written after that would reopen the error.
        let now = rfc3339_millis(unix_millis_now());
        let marks = batch.iter().map(|item| {
            let marked = ErrorEntry {
                retry_requested_at: Some(now.clone()),
                ..item.error.clone()
            };
            async move { store.record(&marked).await }
        });
        futures_util::future::join_all(marks)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, String>>()
            .map_err(ApiError::storage)?;
        let topic = listener
            .as_ref()
            .map_or_else(|| batch[0].data.topic.clone(), |l| l.topic.clone());
        let max_bytes = state.settings.pipeline.max_page_bytes;
        let published = match listener.as_ref().and_then(|listener| listener.events.as_ref()) {
            Some(events) => republish_events(&state.producer, listener_id, &topic, events, max_bytes, &batch).await,
            None => republish(&state.producer, listener_id, &topic, page_size, max_bytes, &batch).await,
        };
        if let Err(error) = published {
            // Best effort: the errors stay open either way; only the mark is wrong.
            for item in &batch {
                let _ = store.record(&item.error).await;
            }
            tracing::warn!(listener = listener_id, %error, "republishing failed");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not republish to Kafka; retry later",
            ));
        }
        METRICS
            .errors_republished
            .with_label_values(&[listener_id])
            .inc_by(batch.len() as u64);
        report
            .republished
            .extend(batch.into_iter().map(|item| item.error.record_id));
    }
    Ok(())
}

#[utoipa::path(post, path = "/listeners/{id}/errors/{record_id}/retry", operation_id = "retryError", tag = "errors",
    params(("id" = String, Path, description = "Listener id", example = "orders"), ("record_id" = String, Path, description = "The failed record's id")),
    responses((status = 202, description = "Republished", body = RetryOne), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such open error", body = ErrorBody),
        (status = 409, description = "No retry data", body = ErrorBody), (status = 503, description = "The errors view is loading, or Kafka is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn retry_one(
    request: HttpRequest,
    state: web::Data<AppState>,
    errors: web::Data<ErrorsView>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    authorize(&request, &state)?;
    let (listener_id, record_id) = path.into_inner();
    let store = errors.store()?;
    let entry = store
        .get(&listener_id, &record_id)
        .ok_or_else(|| ApiError::not_found("error"))?;
    let attempt = entry.attempt + 1;
    let mut report = Retried::default();
    retry_entries(&state, &store, &listener_id, vec![entry], &mut report).await?;
    if let Some((_, reason)) = report.refused.first() {
        return Err(ApiError::new(StatusCode::CONFLICT, reason.clone()));
    }
    Ok(HttpResponse::Accepted().json(RetryOne {
        republished: vec![record_id],
        attempt,
    }))
}

#[utoipa::path(post, path = "/listeners/{id}/errors/retry", operation_id = "retryErrors", tag = "errors",
    params(("id" = String, Path, description = "Listener id", example = "orders")), request_body = RetryRequest,
    responses((status = 200, description = "Nothing to retry (every id unknown)", body = RetryReport),
        (status = 202, description = "Some or all republished", body = RetryReport),
        (status = 400, description = "Neither `record_ids` nor `all`", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody),
        (status = 409, description = "None could be retried", body = RetryReport), (status = 503, description = "The errors view is loading, or Kafka is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn retry_many(
    request: HttpRequest,
    state: web::Data<AppState>,
    errors: web::Data<ErrorsView>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    let body: RetryRequest = parse_body(&body)?;
    let all = body.all.unwrap_or(false);
    let record_ids: Option<Vec<String>> = match body.record_ids {
        None => None,
        Some(ids) if !ids.is_empty() && ids.len() <= MAX_RETRY_IDS => Some(ids),
        Some(_) => {
            return Err(ApiError::invalid(
                "record_ids",
                format!("must be an array of 1 to {MAX_RETRY_IDS} record ids"),
            ))
        }
    };
    let store = errors.store()?;
    let listener_id = path.into_inner();
    let mut report = Retried::default();
    let entries = match (all, record_ids) {
        (true, None) => errors_of(&state, &store, &listener_id)?,
        (false, Some(ids)) => {
            errors_of(&state, &store, &listener_id)?;
            let mut entries = Vec::new();
            for id in ids {
                match store.get(&listener_id, &id) {
                    Some(entry) => entries.push(entry),
                    None => report.not_found.push(id),
                }
            }
            entries
        }
        _ => {
            return Err(ApiError::invalid(
                "body",
                "give either {\"record_ids\": [...]} or {\"all\": true}",
            ))
        }
    };
    retry_entries(&state, &store, &listener_id, entries, &mut report).await?;
    let status = if !report.republished.is_empty() {
        StatusCode::ACCEPTED
    } else if !report.refused.is_empty() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let mut body = report.body();
    if status == StatusCode::CONFLICT {
        body.error = Some(format!("none of the records could be retried: {}", report.refused[0].1));
    }
    Ok(HttpResponse::build(status).json(body))
}

#[utoipa::path(post, path = "/listeners/{id}/errors/{record_id}/resolve", operation_id = "resolveError", tag = "errors",
    params(("id" = String, Path, description = "Listener id", example = "orders"), ("record_id" = String, Path, description = "The failed record's id")),
    responses((status = 200, description = "Closed", body = Resolved), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such open error", body = ErrorBody), (status = 503, description = "The errors view is loading, or Kafka is unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn resolve(
    request: HttpRequest,
    state: web::Data<AppState>,
    errors: web::Data<ErrorsView>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    authorize(&request, &state)?;
    let (listener_id, record_id) = path.into_inner();
    let store = errors.store()?;
    if store
        .resolve(&listener_id, &record_id)
        .await
        .map_err(ApiError::storage)?
    {
        Ok(HttpResponse::Ok().json(Resolved { resolved: record_id }))
    } else {
        Err(ApiError::not_found("error"))
    }
}
