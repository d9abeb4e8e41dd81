//! The management API, `/api/v1`: listeners, public URLs, secrets, sample data, mock output
//! and debug windows. Every write goes to the shared state topic, so any instance can serve
//! any call. Protected by the bearer token `server.admin_token`; without one the API is off.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::config::ListenerConfig;
use crate::listener::{Listener, Source};
use crate::management::{
    debug_key, fingerprint, listener_key, merge_patch, mock_key, random_token, redacted_settings, sample_key,
    secret_field, DebugWindow, PutListenerError, StoredListener,
};
use crate::pipeline::{rfc3339_millis, unix_millis_now, Chain, Delivery, Ingest};

/// Request bodies of the API are bounded too.
const API_BODY_LIMIT: usize = 5 * 1024 * 1024;
/// Default and longest debug windows.
const DEBUG_DEFAULT: Duration = Duration::from_secs(15 * 60);
const DEBUG_MAX: Duration = Duration::from_secs(60 * 60);

/// The `/api/v1` routes.
pub fn scope() -> actix_web::Scope {
    web::scope("/api/v1")
        .app_data(web::PayloadConfig::new(API_BODY_LIMIT))
        .route("/listeners", web::get().to(list))
        .route("/listeners", web::post().to(create))
        .route("/listeners/{id}", web::get().to(show))
        .route("/listeners/{id}", web::put().to(update))
        .route("/listeners/{id}", web::patch().to(update))
        .route("/listeners/{id}", web::delete().to(delete))
        .route("/listeners/{id}/url", web::get().to(get_url))
        .route("/listeners/{id}/url", web::post().to(regenerate_url))
        .route("/listeners/{id}/secrets", web::post().to(add_secret))
        .route("/listeners/{id}/secrets/{fingerprint}", web::delete().to(retire_secret))
        .route("/listeners/{id}/sample", web::get().to(get_sample))
        .route("/listeners/{id}/sample", web::put().to(put_sample))
        .route("/listeners/{id}/mock", web::get().to(get_mock))
        .route("/listeners/{id}/mock", web::put().to(put_mock))
        .route("/listeners/{id}/mock/send", web::post().to(send_mock))
        .route("/listeners/{id}/debug", web::get().to(debug_status))
        .route("/listeners/{id}/debug", web::post().to(debug_start))
        .route("/listeners/{id}/debug", web::delete().to(debug_stop))
        .route("/listeners/{id}/debug/logs", web::get().to(debug_logs))
        .route("/listeners/{id}/debug/logs/{request_id}", web::get().to(debug_log))
        .configure(super::errors_api::routes)
        .default_service(web::to(unknown_route))
}

/// An API error: status, message, and the offending field when there is one.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
        }
    }

    pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let field = field.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!("{field}: {}", message.into()),
            field: Some(field),
        }
    }

    pub(super) fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    pub(super) fn storage(error: String) -> ApiError {
        tracing::warn!(%error, "state topic write failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable; retry later")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({ "error": self.message });
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        response.json(body)
    }
}

pub(super) type ApiResult = Result<HttpResponse, ApiError>;

/// Checks the bearer token in constant time.
pub(super) fn authorize(request: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(token) = &state.settings.server.admin_token else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "management API disabled: set server.admin_token",
        ));
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) && !presented.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"))
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive
/// (RFC 7235 §2.1) and may be followed by more than one space.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

pub(super) fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|error| ApiError::invalid("body", format!("invalid JSON: {error}")))
}

fn listener_of(state: &AppState, id: &str) -> Result<Arc<Listener>, ApiError> {
    state.registry.by_id(id).ok_or_else(|| ApiError::not_found("listener"))
}

/// The listener as stored through the API; configuration-file listeners are read-only.
fn stored_of(state: &AppState, id: &str) -> Result<StoredListener, ApiError> {
    let listener = listener_of(state, id)?;
    if listener.source == Source::Config {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("listener `{id}` is defined in the configuration file and is read-only through the API"),
        ));
    }
    state
        .shared
        .stored_listener(id)
        .ok_or_else(|| ApiError::not_found("listener"))
}

fn view(state: &AppState, listener: &Listener) -> Value {
    let mut value = redacted_settings(&listener.config);
    let base = state.settings.external_base_url();
    value["public_id"] = json!(listener.public_id);
    value["url"] = json!(listener.public_url(&base));
    value["source"] = json!(listener.source);
    value["topic"] = json!(listener.topic);
    if let Some(stored) = state.shared.stored_listener(listener.id()) {
        value["created_at"] = json!(stored.created_at);
        value["updated_at"] = json!(stored.updated_at);
    }
    value
}

/// Deserializes and validates settings, naming the first offending field.
fn validated(value: Value, state: &AppState) -> Result<ListenerConfig, ApiError> {
    let config: ListenerConfig = serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        ApiError::invalid(
            if path == "." { "body".into() } else { path },
            error.into_inner().to_string(),
        )
    })?;
    if let Some((field, message)) = config.problems().into_iter().next() {
        return Err(ApiError::invalid(field, message));
    }
    Listener::build(config.clone(), &state.settings).map_err(|error| ApiError::invalid("body", error))?;
    Ok(config)
}

/// Stores a listener, waits until this instance applied it, and answers with its view.
async fn save(state: &AppState, stored: StoredListener, status: StatusCode) -> ApiResult {
    let id = stored.config.id.clone();
    if state.shared.secrets_key_id().is_none() && !stored.config.verification.clone().secrets_mut().is_empty() {
        // Refused before anything (the listener's topic) is created.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            PutListenerError::NoSecretsKey.to_string(),
        ));
    }
    if let Some(topic) = &stored.config.topic {
        // Best effort: brokers that refuse (or the embedded cluster) surface later as 503s.
        if let Err(error) =
            crate::kafka::admin::ensure_topics(&state.settings.kafka, &state.bootstrap, std::slice::from_ref(topic))
                .await
        {
            tracing::warn!(listener = %id, %error, "cannot create the listener's topic");
        }
    }
    state.shared.put_listener(&stored).await.map_err(|error| match error {
        // Secrets are never stored in clear: without a key, only secret-free listeners are.
        PutListenerError::NoSecretsKey => ApiError::new(StatusCode::CONFLICT, error.to_string()),
        PutListenerError::Sealing(error) => ApiError::storage(error.to_string()),
        PutListenerError::Storage(error) => ApiError::storage(error),
    })?;
    crate::management::apply_listeners(&state.shared, &state.registry, &state.settings);
    let listener = listener_of(state, &id)?;
    Ok(HttpResponse::build(status).json(view(state, &listener)))
}

async fn list(request: HttpRequest, state: web::Data<AppState>) -> ApiResult {
    authorize(&request, &state)?;
    let listeners: Vec<Value> = state.registry.all().iter().map(|l| view(&state, l)).collect();
    Ok(HttpResponse::Ok().json(json!({ "listeners": listeners })))
}

async fn show(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    let listener = listener_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(view(&state, &listener)))
}

async fn create(request: HttpRequest, state: web::Data<AppState>, body: Bytes) -> ApiResult {
    authorize(&request, &state)?;
    let mut value = parse_json(&body)?;
    let Some(object) = value.as_object_mut() else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    let id = object
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("id", "is required"))?
        .to_string();
    if state.registry.by_id(&id).is_some() || state.shared.has_stored_listener(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("listener `{id}` already exists"),
        ));
    }
    object.insert("public_id".into(), json!(random_token()));
    // A secret-URL listener created without a token gets a generated one.
    if let Some(verification) = object.get_mut("verification").and_then(Value::as_object_mut) {
        let wants_token = verification.get("type").and_then(Value::as_str) == Some("secret_url");
        let has_tokens = verification
            .get("tokens")
            .and_then(Value::as_array)
            .is_some_and(|tokens| !tokens.is_empty());
        if wants_token && !has_tokens {
            verification.insert("tokens".into(), json!([random_token()]));
        }
    }
    let config = validated(value, &state)?;
    let now = rfc3339_millis(unix_millis_now());
    save(
        &state,
        StoredListener {
            config,
            created_at: now.clone(),
            updated_at: now,
        },
        StatusCode::CREATED,
    )
    .await
}

async fn update(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>, body: Bytes) -> ApiResult {
    authorize(&request, &state)?;
    let mut stored = stored_of(&state, &path)?;
    let patch = parse_json(&body)?;
    if !patch.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object (a merge patch)"));
    }
    for fixed in ["id", "public_id"] {
        if patch
            .get(fixed)
            .is_some_and(|v| v.as_str() != stored_field(&stored, fixed).as_deref())
        {
            return Err(ApiError::invalid(
                fixed,
                "cannot be changed (use the url endpoint for a new public id)",
            ));
        }
    }
    let mut value = serde_json::to_value(&stored.config).map_err(|e| ApiError::storage(e.to_string()))?;
    merge_patch(&mut value, &patch);
    stored.config = validated(value, &state)?;
    stored.updated_at = rfc3339_millis(unix_millis_now());
    save(&state, stored, StatusCode::OK).await
}

fn stored_field(stored: &StoredListener, field: &str) -> Option<String> {
    match field {
        "id" => Some(stored.config.id.clone()),
        _ => stored.config.public_id.clone(),
    }
}

async fn delete(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    let id = match stored_of(&state, &path) {
        Ok(stored) => stored.config.id,
        // A definition whose secrets do not open here (its key is gone) can still be removed.
        Err(error) if error.status == StatusCode::NOT_FOUND && state.shared.has_stored_listener(&path) => {
            path.to_string()
        }
        Err(error) => return Err(error),
    };
    for key in [listener_key(&id), sample_key(&id), mock_key(&id), debug_key(&id)] {
        state.shared.state.delete(&key).await.map_err(ApiError::storage)?;
    }
    crate::management::apply_listeners(&state.shared, &state.registry, &state.settings);
    Ok(HttpResponse::NoContent().finish())
}

fn url_body(state: &AppState, listener: &Listener, token: Option<&str>) -> Value {
    let mut url = listener.public_url(&state.settings.external_base_url());
    if let Some(token) = token {
        url = format!("{url}/{token}");
    }
    json!({ "url": url, "public_id": listener.public_id })
}

fn first_token(config: &ListenerConfig) -> Option<String> {
    let value = serde_json::to_value(&config.verification).ok()?;
    (value["type"] == "secret_url").then(|| value["tokens"][0].as_str().map(str::to_string))?
}

async fn get_url(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    let listener = listener_of(&state, &path)?;
    let token = first_token(&listener.config);
    Ok(HttpResponse::Ok().json(url_body(&state, &listener, token.as_deref())))
}

async fn regenerate_url(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    let mut stored = stored_of(&state, &path)?;
    let mut value = serde_json::to_value(&stored.config).map_err(|e| ApiError::storage(e.to_string()))?;
    value["public_id"] = json!(random_token());
    let token = random_token();
    if value["verification"]["type"] == "secret_url" {
        value["verification"]["tokens"] = json!([token]);
    }
    stored.config = validated(value, &state)?;
    stored.updated_at = rfc3339_millis(unix_millis_now());
    save(&state, stored, StatusCode::OK).await?;
    let listener = listener_of(&state, &path)?;
    let token = first_token(&listener.config);
    Ok(HttpResponse::Ok().json(url_body(&state, &listener, token.as_deref())))
}

async fn add_secret(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    let mut stored = stored_of(&state, &path)?;
    let body = parse_json(&body)?;
    let mut value = serde_json::to_value(&stored.config).map_err(|e| ApiError::storage(e.to_string()))?;
    let kind = value["verification"]["type"].as_str().unwrap_or("none").to_string();
    let field = secret_field(&kind)
        .ok_or_else(|| ApiError::invalid("verification.type", "this listener has no secrets to rotate"))?;
    let entry = if field == "credentials" {
        json!({ "username": body["username"], "password": body["password"] })
    } else {
        body.get("secret")
            .cloned()
            .ok_or_else(|| ApiError::invalid("secret", "is required"))?
    };
    let list = value["verification"][field].as_array_mut();
    match list {
        Some(list) => list.push(entry),
        None => value["verification"][field] = json!([entry]),
    }
    stored.config = validated(value, &state)?;
    stored.updated_at = rfc3339_millis(unix_millis_now());
    save(&state, stored, StatusCode::CREATED).await
}

async fn retire_secret(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    authorize(&request, &state)?;
    let (id, wanted) = path.into_inner();
    let mut stored = stored_of(&state, &id)?;
    let mut value = serde_json::to_value(&stored.config).map_err(|e| ApiError::storage(e.to_string()))?;
    let kind = value["verification"]["type"].as_str().unwrap_or("none").to_string();
    let field = secret_field(&kind)
        .ok_or_else(|| ApiError::invalid("verification.type", "this listener has no secrets to rotate"))?;
    let list = value["verification"][field]
        .as_array_mut()
        .ok_or_else(|| ApiError::not_found("secret"))?;
    let secret_of = |item: &Value| {
        item.get("password")
            .and_then(Value::as_str)
            .or_else(|| item.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let before = list.len();
    list.retain(|item| fingerprint(&secret_of(item)) != wanted);
    if list.len() == before {
        return Err(ApiError::not_found("secret"));
    }
    if list.is_empty() {
        return Err(ApiError::invalid(
            format!("verification.{field}"),
            "cannot retire the last secret; add its replacement first",
        ));
    }
    stored.config = validated(value, &state)?;
    stored.updated_at = rfc3339_millis(unix_millis_now());
    save(&state, stored, StatusCode::OK).await
}

fn stored_json(state: &AppState, key: &str, what: &str) -> ApiResult {
    let value = state.shared.state.get(key).ok_or_else(|| ApiError::not_found(what))?;
    let value: Value = serde_json::from_slice(&value).map_err(|_| ApiError::not_found(what))?;
    Ok(HttpResponse::Ok().json(value))
}

fn records_of(body: &Value) -> Result<Vec<Value>, ApiError> {
    match body.get("records") {
        Some(Value::Array(records)) => Ok(records.clone()),
        _ => Err(ApiError::invalid("records", "must be a JSON array of records")),
    }
}

async fn get_sample(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    stored_json(&state, &sample_key(&path), "sample data")
}

async fn put_sample(
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
    let bytes = serde_json::to_vec(&sample).unwrap_or_default();
    state
        .shared
        .state
        .put(&sample_key(&path), &bytes)
        .await
        .map_err(ApiError::storage)?;
    Ok(HttpResponse::Ok().json(sample))
}

async fn get_mock(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    stored_json(&state, &mock_key(&path), "mock output")
}

async fn put_mock(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>, body: Bytes) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    let records = records_of(&parse_json(&body)?)?;
    let mock = json!({ "records": records, "updated_at": rfc3339_millis(unix_millis_now()) });
    let bytes = serde_json::to_vec(&mock).unwrap_or_default();
    state
        .shared
        .state
        .put(&mock_key(&path), &bytes)
        .await
        .map_err(ApiError::storage)?;
    Ok(HttpResponse::Ok().json(mock))
}

/// Sends the saved mock output through the pipeline as if received (records marked mock).
async fn send_mock(
    request: HttpRequest,
    state: web::Data<AppState>,
    chain: web::Data<Chain>,
    path: web::Path<String>,
) -> ApiResult {
    authorize(&request, &state)?;
    let listener = listener_of(&state, &path)?;
    let saved = state
        .shared
        .state
        .get(&mock_key(&path))
        .ok_or_else(|| ApiError::not_found("mock output"))?;
    let saved: Value = serde_json::from_slice(&saved).map_err(|_| ApiError::not_found("mock output"))?;
    let records = records_of(&saved)?;
    let request_id: Arc<str> = crate::pipeline::new_id().into();
    let mut headers = header::HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let message = Ingest {
        delivery: Delivery {
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
    };
    let outcome = match tokio::time::timeout(state.request_timeout, chain.entry.forward(message)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => Err(error),
        Err(_) => Err(crate::error::IngestError::Deadline),
    };
    match outcome {
        Ok(accepted) => Ok(HttpResponse::Ok().json(json!({
            "request_id": request_id.as_ref(),
            "records": accepted.record_count,
        }))),
        Err(error) => Err(ApiError::new(error.status_code(), error.to_string())),
    }
}

fn window_body(until_ms: Option<i64>) -> Value {
    let open = until_ms.is_some_and(|until| until > unix_millis_now());
    json!({
        "open": open,
        "until": until_ms.filter(|_| open).map(rfc3339_millis),
    })
}

async fn debug_status(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(window_body(state.registry.debug_window(&path, unix_millis_now()))))
}

async fn debug_start(
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
    let bytes = serde_json::to_vec(&DebugWindow { until_ms }).unwrap_or_default();
    state
        .shared
        .state
        .put(&debug_key(&path), &bytes)
        .await
        .map_err(ApiError::storage)?;
    crate::management::apply_debug_windows(&state.shared, &state.registry);
    Ok(HttpResponse::Ok().json(window_body(Some(until_ms))))
}

async fn debug_stop(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    state
        .shared
        .state
        .delete(&debug_key(&path))
        .await
        .map_err(ApiError::storage)?;
    crate::management::apply_debug_windows(&state.shared, &state.registry);
    Ok(HttpResponse::Ok().json(window_body(None)))
}

fn captures(state: &AppState, listener_id: &str) -> Vec<Value> {
    state
        .shared
        .debug_log
        .entries(listener_id)
        .into_iter()
        .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
        .collect()
}

async fn debug_logs(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    listener_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(json!({ "captures": captures(&state, &path) })))
}

async fn debug_log(request: HttpRequest, state: web::Data<AppState>, path: web::Path<(String, String)>) -> ApiResult {
    authorize(&request, &state)?;
    let (id, request_id) = path.into_inner();
    listener_of(&state, &id)?;
    let capture = captures(&state, &id)
        .into_iter()
        .find(|capture| capture["request_id"] == request_id.as_str())
        .ok_or_else(|| ApiError::not_found("capture"))?;
    Ok(HttpResponse::Ok().json(capture))
}

async fn unknown_route(request: HttpRequest, state: web::Data<AppState>) -> ApiResult {
    authorize(&request, &state)?;
    Err(ApiError::not_found("route"))
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR   t0k", " Bearer t0k "] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value:?}");
        }
        for value in ["Basic t0k", "Bearert0k", "t0k", ""] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
