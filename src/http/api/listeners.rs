//! `/api/v1/listeners…`: create, read, update and delete listeners, their public URLs and
//! their secrets (write-only: shown as fingerprints). Every write goes to the shared state
//! topic, so any instance answers any call.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::{authorize, parse_body, parse_json, ApiError, ApiResult};
use crate::api_model::{ErrorBody, ListenerInput, ListenerList, ListenerUrl, ListenerView, SecretInput};
use crate::config::listener::ListenerConfig;
use crate::http::state::AppState;
use crate::pipeline::listener::{Listener, Source};
use crate::pipeline::{rfc3339_millis, unix_millis_now};
use crate::redact::{fingerprint, redacted_settings, secret_field};
use crate::shared_state::{PutListenerError, StoredListener};

pub(super) fn listener_of(state: &AppState, id: &str) -> Result<Arc<Listener>, ApiError> {
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

fn view(state: &AppState, listener: &Listener) -> Result<ListenerView, ApiError> {
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
    serde_json::from_value(value).map_err(|error| {
        tracing::error!(listener = listener.id(), %error, "listener view does not fit the API's type");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    })
}

/// Deserializes and compiles settings, naming the first offending field (keys are relative to
/// the listener, as the API's fields are).
fn validated(value: Value, state: &AppState) -> Result<ListenerConfig, ApiError> {
    let config: ListenerConfig = serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        ApiError::invalid(
            if path == "." { "body".into() } else { path },
            error.into_inner().to_string(),
        )
    })?;
    if config.schema.as_ref().is_some_and(|schema| schema.file.is_some()) {
        // The API never reads the server's files: the schema comes inline.
        return Err(ApiError::invalid(
            "schema.file",
            format!(
                "listener `{}`: a schema file is read from the configuration file only; send the schema itself as schema.document",
                config.id
            ),
        ));
    }
    if let Err(errors) = config.compile(&state.settings) {
        return Err(match errors.0.into_iter().next() {
            // A schema's problems can be long and many listeners can share one: say whose.
            Some(first) if first.key.starts_with("schema") => {
                ApiError::invalid(first.key, format!("listener `{}`: {}", config.id, first.message))
            }
            Some(first) => ApiError::invalid(first.key, first.message),
            None => ApiError::invalid("body", "is invalid"),
        });
    }
    Ok(config)
}

/// Stores a listener, waits until this instance applied it, and answers with its view.
async fn save(state: &AppState, stored: StoredListener, status: StatusCode) -> ApiResult {
    let id = stored.config.id.clone();
    if state.shared.secrets_key_id().is_none() && !stored.config.secrets().is_empty() {
        // Refused before anything (the listener's topic) is created.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            PutListenerError::NoSecretsKey.to_string(),
        ));
    }
    if let Some(topic) = &stored.config.topic {
        // Best effort: brokers that refuse (or the embedded cluster) surface later as 503s.
        if let Err(error) = crate::kafka::topics::provision_topic(&state.settings, &state.bootstrap, topic).await {
            tracing::warn!(listener = %id, %error, "cannot create the listener's topic");
        }
    }
    state.shared.put_listener(&stored).await.map_err(|error| match error {
        // Secrets are never stored in clear: without a key, only secret-free listeners are.
        PutListenerError::NoSecretsKey => ApiError::new(StatusCode::CONFLICT, error.to_string()),
        PutListenerError::Sealing(error) => ApiError::storage(error.to_string()),
        PutListenerError::Storage(error) => ApiError::storage(error),
    })?;
    crate::shared_state::apply_listeners(&state.shared, &state.registry, &state.settings);
    let listener = listener_of(state, &id)?;
    Ok(HttpResponse::build(status).json(view(state, &listener)?))
}

#[utoipa::path(get, path = "/listeners", operation_id = "listListeners", tag = "listeners",
    responses((status = 200, description = "Every listener", body = ListenerList), (status = 401, description = "Missing or wrong token", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(request: HttpRequest, state: web::Data<AppState>) -> ApiResult {
    authorize(&request, &state)?;
    let listeners = state
        .registry
        .all()
        .iter()
        .map(|listener| view(&state, listener))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(ListenerList { listeners }))
}

#[utoipa::path(get, path = "/listeners/{id}", operation_id = "getListener", tag = "listeners",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 200, description = "The listener", body = ListenerView), (status = 401, description = "Missing or wrong token", body = ErrorBody), (status = 404, description = "Unknown listener", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn show(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    let listener = listener_of(&state, &path)?;
    Ok(HttpResponse::Ok().json(view(&state, &listener)?))
}

#[utoipa::path(post, path = "/listeners", operation_id = "createListener", tag = "listeners",
    request_body = ListenerInput,
    responses((status = 201, description = "Created", body = ListenerView), (status = 400, description = "Invalid settings (`field` names the first)", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "The id is taken, or secrets but no secrets key", body = ErrorBody), (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn create(request: HttpRequest, state: web::Data<AppState>, body: Bytes) -> ApiResult {
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

#[utoipa::path(patch, path = "/listeners/{id}", operation_id = "updateListener", tag = "listeners",
    params(("id" = String, Path, description = "Listener id", example = "orders")), request_body(content = ListenerInput, description = "A JSON merge patch (RFC 7396) of the settings; PUT does the same"),
    responses((status = 200, description = "Updated", body = ListenerView), (status = 400, description = "Invalid settings (`field` names the first)", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody), (status = 404, description = "Unknown listener", body = ErrorBody), (status = 409, description = "Defined in the configuration file (read-only), or no secrets key", body = ErrorBody), (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn update(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
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
    let changes_type = patch
        .pointer("/verification/type")
        .is_some_and(|new_type| Some(new_type) != value.pointer("/verification/type"));
    if changes_type {
        // A new verification type starts from what the patch says, never from the old type's
        // secrets: merged, a token of one type could reappear as another's (a secret URL's
        // token is shown by the url endpoint), turning a write-only secret into a readable one.
        value["verification"] = serde_json::Value::Null;
    }
    merge_patch(&mut value, &patch);
    stored.config = validated(value, &state)?;
    stored.updated_at = rfc3339_millis(unix_millis_now());
    save(&state, stored, StatusCode::OK).await
}

#[utoipa::path(put, path = "/listeners/{id}", operation_id = "replaceListener", tag = "listeners",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    request_body(content = ListenerInput, description = "A JSON merge patch (RFC 7396) of the settings, as PATCH"),
    responses((status = 200, description = "Updated", body = ListenerView),
        (status = 400, description = "Invalid settings (`field` names the first)", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener", body = ErrorBody),
        (status = 409, description = "Defined in the configuration file (read-only), or no secrets key", body = ErrorBody),
        (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
/// `PUT /listeners/{id}`: the same merge patch as `PATCH` (kept for clients that only PUT).
pub(super) async fn replace(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    update(request, state, path, body).await
}

fn stored_field(stored: &StoredListener, field: &str) -> Option<String> {
    match field {
        "id" => Some(stored.config.id.clone()),
        _ => stored.config.public_id.clone(),
    }
}

#[utoipa::path(delete, path = "/listeners/{id}", operation_id = "deleteListener", tag = "listeners",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Missing or wrong token", body = ErrorBody), (status = 404, description = "Unknown listener", body = ErrorBody), (status = 409, description = "Defined in the configuration file (read-only), or no secrets key", body = ErrorBody), (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn delete(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    let id = match stored_of(&state, &path) {
        Ok(stored) => stored.config.id,
        // A definition whose secrets do not open here (its key is gone) can still be removed.
        Err(error) if error.status == StatusCode::NOT_FOUND && state.shared.has_stored_listener(&path) => {
            path.to_string()
        }
        Err(error) => return Err(error),
    };
    state.shared.forget_listener(&id).await.map_err(ApiError::storage)?;
    crate::shared_state::apply_listeners(&state.shared, &state.registry, &state.settings);
    Ok(HttpResponse::NoContent().finish())
}

fn url_body(state: &AppState, listener: &Listener, token: Option<&str>) -> ListenerUrl {
    let mut url = listener.public_url(&state.settings.external_base_url());
    if let Some(token) = token {
        url = format!("{url}/{token}");
    }
    ListenerUrl {
        url,
        public_id: listener.public_id.clone(),
    }
}

fn first_token(config: &ListenerConfig) -> Option<String> {
    let value = serde_json::to_value(&config.verification).ok()?;
    (value["type"] == "secret_url").then(|| value["tokens"][0].as_str().map(str::to_string))?
}

#[utoipa::path(get, path = "/listeners/{id}/url", operation_id = "getListenerUrl", tag = "listeners",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 200, description = "The URL to give senders", body = ListenerUrl), (status = 401, description = "Missing or wrong token", body = ErrorBody), (status = 404, description = "Unknown listener", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get_url(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    authorize(&request, &state)?;
    let listener = listener_of(&state, &path)?;
    let token = first_token(&listener.config);
    Ok(HttpResponse::Ok().json(url_body(&state, &listener, token.as_deref())))
}

#[utoipa::path(post, path = "/listeners/{id}/url", operation_id = "regenerateListenerUrl", tag = "listeners",
    params(("id" = String, Path, description = "Listener id", example = "orders")),
    responses((status = 200, description = "A new public id (and secret-URL token); the old URL answers 404", body = ListenerUrl),
        (status = 401, description = "Missing or wrong token", body = ErrorBody), (status = 404, description = "Unknown listener", body = ErrorBody), (status = 409, description = "Defined in the configuration file (read-only), or no secrets key", body = ErrorBody), (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn regenerate_url(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult {
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

#[utoipa::path(post, path = "/listeners/{id}/secrets", operation_id = "addSecret", tag = "listeners",
    params(("id" = String, Path, description = "Listener id", example = "orders")), request_body = SecretInput,
    responses((status = 201, description = "Added beside the current ones", body = ListenerView),
        (status = 400, description = "No secret given, or the listener has none to rotate", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody), (status = 404, description = "Unknown listener", body = ErrorBody), (status = 409, description = "Defined in the configuration file (read-only), or no secrets key", body = ErrorBody), (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn add_secret(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&request, &state)?;
    let mut stored = stored_of(&state, &path)?;
    let body: SecretInput = parse_body(&body)?;
    let mut value = serde_json::to_value(&stored.config).map_err(|e| ApiError::storage(e.to_string()))?;
    let field = secret_field(&stored.config.verification)
        .ok_or_else(|| ApiError::invalid("verification.type", "this listener has no secrets to rotate"))?;
    let entry = if field == "credentials" {
        json!({ "username": body.username, "password": body.password })
    } else {
        json!(body.secret.ok_or_else(|| ApiError::invalid("secret", "is required"))?)
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

#[utoipa::path(delete, path = "/listeners/{id}/secrets/{fingerprint}", operation_id = "retireSecret", tag = "listeners",
    params(("id" = String, Path, description = "Listener id", example = "orders"), ("fingerprint" = String, Path, description = "The secret's fingerprint, as the listener shows it")),
    responses((status = 200, description = "Retired", body = ListenerView),
        (status = 400, description = "The last secret, or none to rotate", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown listener or fingerprint", body = ErrorBody), (status = 409, description = "Defined in the configuration file (read-only), or no secrets key", body = ErrorBody), (status = 503, description = "State topic unavailable", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn retire_secret(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    authorize(&request, &state)?;
    let (id, wanted) = path.into_inner();
    let mut stored = stored_of(&state, &id)?;
    let mut value = serde_json::to_value(&stored.config).map_err(|e| ApiError::storage(e.to_string()))?;
    let field = secret_field(&stored.config.verification)
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

/// RFC 7396 JSON merge patch.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(patch) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            let target = target.as_object_mut().expect("made an object above");
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_patch(target.entry(key.clone()).or_insert(serde_json::Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// A random token for public ids and secret URLs: 128 bits, 32 hex digits.
fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}, "list": [3]}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}, "list": [3]}));
    }
}
