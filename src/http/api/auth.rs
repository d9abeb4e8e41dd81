//! What every `/api/v1` handler shares: the bearer-token check, the error type and its one
//! mapping to an HTTP answer, and reading a JSON body.

use actix_web::http::{header, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use std::time::Duration;

use crate::api_model::ErrorBody;
use crate::http::state::AppState;
use crate::telemetry::events::ApiAuthRefused;

/// An API error: status, message, and the offending field when there is one.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    message: String,
    field: Option<String>,
    /// `Retry-After` of a 429, in seconds.
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let field = field.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!("{field}: {}", message.into()),
            field: Some(field),
            retry_after_secs: None,
        }
    }

    /// 429: the peer failed to authenticate too often lately.
    fn locked_out(retry_after_secs: u64) -> ApiError {
        ApiError {
            retry_after_secs: Some(retry_after_secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed authentications from this address; retry later",
            )
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    pub fn storage(error: String) -> ApiError {
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
        let body = ErrorBody {
            error: self.message.clone(),
            field: self.field.clone(),
        };
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        if let Some(seconds) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(body)
    }
}

pub type ApiResult = Result<HttpResponse, ApiError>;

/// Checks the bearer token in constant time, unless the peer failed too often lately (429, the
/// token unread: `auth_limit`).
pub fn authorize(request: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(token) = &state.settings.server.admin_token else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "management API disabled: set server.admin_token",
        ));
    };
    let peer = request.peer_addr().map(|address| address.ip());
    if let Some(peer) = peer {
        if let Err(retry_after_secs) = state.auth_failures.check(peer) {
            ApiAuthRefused {
                peer: &peer,
                outcome: "locked_out",
                lockout_started: None,
            }
            .emit();
            return Err(ApiError::locked_out(retry_after_secs));
        }
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or_default();
    // Digests, so the comparison's time depends on neither the token's content nor its length.
    let matches = Sha256::digest(presented.as_bytes()).ct_eq(&Sha256::digest(token.expose().as_bytes()));
    if bool::from(matches) && !presented.is_empty() {
        if let Some(peer) = peer {
            state.auth_failures.record_success(peer);
        }
        Ok(())
    } else {
        let locked_now = peer.is_some_and(|peer| state.auth_failures.record_failure(peer));
        let window = Duration::from_secs(state.settings.server.admin_auth_window_secs);
        let peer_text: &dyn std::fmt::Display = match &peer {
            Some(peer) => peer,
            None => &"-",
        };
        ApiAuthRefused {
            peer: peer_text,
            outcome: "wrong_token",
            lockout_started: locked_now.then_some(window),
        }
        .emit();
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

pub fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|error| ApiError::invalid("body", format!("invalid JSON: {error}")))
}

/// A typed request body (empty: `{}`); a field of the wrong type is named in the 400.
pub fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let value = parse_json(body)?;
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        ApiError::invalid(
            if path == "." { "body".into() } else { path },
            error.into_inner().to_string(),
        )
    })
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
