//! Why a request was not accepted, and the one place that maps it to an HTTP answer.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::kafka::producer::PublishError;
use crate::pipeline::handshake::HandshakeRefusal;
use crate::pipeline::parse::records::ParseError;
use crate::pipeline::schema::Rejection;
use crate::pipeline::verify::scheme::VerifyError;

/// Every way an ingest request can fail. Bodies reveal no secret and no internal detail.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Unknown listener or wrong URL token: the same answer, so URLs cannot be probed.
    #[error("not found")]
    NotFound,
    /// The listener does not accept this method (`content.methods`).
    #[error("method not allowed; use {}", .allow.replace(", ", " or "))]
    MethodNotAllowed {
        /// The listener's methods, for the `Allow` header (`GET, POST`).
        allow: String,
    },
    /// Verification failed.
    #[error("verification failed: {0}")]
    Unauthorized(#[source] VerifyError),
    /// A handshake rule applied and refused the request (its own 4xx); the reason names the
    /// rule and the value's place, never a value.
    #[error("{}", .0.reason)]
    Handshake(HandshakeRefusal),
    /// The listener's (or the instance's) bucket is empty.
    #[error("rate limit exceeded; retry later")]
    RateLimited {
        /// Whole seconds until a token is free.
        retry_after_secs: u64,
        /// Which bucket: `listener` or `global`.
        scope: &'static str,
    },
    /// The body is not what its `Content-Type` says, or is not accepted.
    #[error("{0}")]
    Parse(#[source] ParseError),
    /// A record does not satisfy the listener's schema (policy `reject`): nothing is published.
    #[error("{0}")]
    Schema(#[source] Rejection),
    /// The body is over the listener's limit.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// One record is over the page size limit on its own.
    #[error("a record is larger than the {limit}-byte page limit")]
    RecordTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A `Content-Encoding` hookpipe does not decode.
    #[error("unsupported content encoding `{0}`; use gzip, deflate or none")]
    UnsupportedEncoding(String),
    /// The compressed body does not decode.
    #[error("body does not decode as its Content-Encoding")]
    CorruptEncoding,
    /// The sender did not finish its body in time.
    #[error("request body not received in time")]
    BodyTimeout,
    /// The body stream broke off.
    #[error("request body incomplete")]
    BodyIncomplete,
    /// A template (trace key, data URI) failed on a record.
    #[error("cannot render {what} for a record: {reason}")]
    Template {
        /// Which template.
        what: &'static str,
        /// Handlebars' reason.
        reason: String,
    },
    /// A delivery with this delivery id is being published right now (the listener's `dedup`):
    /// retry shortly, it will be a duplicate or, if that one failed, the first.
    #[error("this delivery is being processed; retry later")]
    DeliveryInFlight,
    /// Too many requests in flight or a full mailbox: shed load.
    #[error("server busy; retry later")]
    Overloaded,
    /// `server.max_import_waits` requests of listeners that wait for their import are waiting
    /// already: refused before anything is published.
    #[error("too many requests waiting for their import; retry later")]
    TooManyWaits,
    /// Kafka did not acknowledge in time, or the producer queue is full.
    #[error("storage unavailable; retry later")]
    Unavailable(#[source] PublishError),
    /// The request deadline passed before Kafka answered.
    #[error("storage unavailable; retry later")]
    Deadline,
    /// A bug or a stopped actor: generic body, details only in the log.
    #[error("internal error")]
    Internal(String),
}

/// Seconds a sender should wait after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

impl IngestError {
    /// A short, fixed label for metrics and logs.
    pub fn outcome(&self) -> &'static str {
        match self {
            IngestError::NotFound => "not_found",
            IngestError::MethodNotAllowed { .. } => "method_not_allowed",
            IngestError::Unauthorized(_) => "unauthorized",
            IngestError::Handshake(_) => "handshake_refused",
            IngestError::RateLimited { .. } => "rate_limited",
            IngestError::Parse(_) => "parse_error",
            IngestError::Schema(_) => "schema_invalid",
            IngestError::BodyTooLarge { .. } | IngestError::RecordTooLarge { .. } => "too_large",
            IngestError::UnsupportedEncoding(_) | IngestError::CorruptEncoding => "bad_encoding",
            IngestError::BodyTimeout | IngestError::BodyIncomplete => "body_timeout",
            IngestError::Template { .. } => "template_error",
            IngestError::DeliveryInFlight => "delivery_in_flight",
            IngestError::Overloaded => "overloaded",
            IngestError::TooManyWaits => "import_waits_full",
            IngestError::Unavailable(_) | IngestError::Deadline => "unavailable",
            IngestError::Internal(_) => "internal",
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            IngestError::RateLimited { retry_after_secs, .. } => Some(*retry_after_secs),
            IngestError::Overloaded | IngestError::DeliveryInFlight | IngestError::TooManyWaits => Some(1),
            IngestError::Unavailable(_) | IngestError::Deadline => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

impl ResponseError for IngestError {
    fn status_code(&self) -> StatusCode {
        match self {
            IngestError::NotFound => StatusCode::NOT_FOUND,
            IngestError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            IngestError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            IngestError::Handshake(refusal) => StatusCode::from_u16(refusal.status)
                .ok()
                .filter(StatusCode::is_client_error)
                .unwrap_or(StatusCode::BAD_REQUEST),
            IngestError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::DeliveryInFlight => StatusCode::CONFLICT,
            IngestError::Parse(error) => StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
            IngestError::Schema(_) => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::BodyTooLarge { .. } | IngestError::RecordTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            IngestError::BodyIncomplete | IngestError::CorruptEncoding | IngestError::Template { .. } => {
                StatusCode::BAD_REQUEST
            }
            IngestError::Overloaded
            | IngestError::TooManyWaits
            | IngestError::Unavailable(_)
            | IngestError::Deadline => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(body) = self.fixed_body() {
            // The answer floods get (429, 503, 404): no formatting, no allocation, no builder.
            let mut response = HttpResponse::with_body(self.status_code(), body).map_into_boxed_body();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            if let Some(seconds) = self.retry_after() {
                headers.insert(header::RETRY_AFTER, retry_after_value(seconds));
            }
            return response;
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, header::HeaderValue::from(seconds)));
        }
        if let IngestError::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        if matches!(self, IngestError::BodyTimeout | IngestError::BodyTooLarge { .. }) {
            // A slow sender, or one whose body is over the limit, loses its connection: the
            // rest of its body is never read.
            response.force_close();
        }
        if let IngestError::Schema(rejection) = self {
            // Where and why, for the sender to fix the record: pointers and a message that
            // name the schema's keywords, never the record's values.
            return response.json(serde_json::json!({
                "error": self.to_string(),
                "record": rejection.record,
                "instance_path": rejection.instance_path,
                "schema_path": rejection.schema_path,
                "message": rejection.message,
            }));
        }
        response.json(ErrorBody {
            error: self.to_string(),
        })
    }
}

/// A `Retry-After` value: a single digit (what a flood is mostly told) without formatting or
/// allocating, as `HeaderValue::from(u64)` does.
fn retry_after_value(seconds: u64) -> header::HeaderValue {
    const DIGITS: &str = "0123456789";
    match usize::try_from(seconds) {
        Ok(digit @ 0..=9) => header::HeaderValue::from_static(&DIGITS[digit..=digit]),
        _ => header::HeaderValue::from(seconds),
    }
}

/// The body of every error answer: `{"error": "..."}`.
#[derive(serde::Serialize)]
struct ErrorBody {
    error: String,
}

impl IngestError {
    /// The body of an error whose text never varies, written out: what `ErrorBody` serializes to
    /// (a test holds them equal).
    fn fixed_body(&self) -> Option<&'static str> {
        match self {
            IngestError::NotFound => Some(r#"{"error":"not found"}"#),
            IngestError::RateLimited { .. } => Some(r#"{"error":"rate limit exceeded; retry later"}"#),
            IngestError::Overloaded => Some(r#"{"error":"server busy; retry later"}"#),
            IngestError::Unavailable(_) | IngestError::Deadline => {
                Some(r#"{"error":"storage unavailable; retry later"}"#)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_values_are_the_formatted_numbers() {
        for seconds in [0, 1, 5, 9, 10, 30, 61, 3600, u64::MAX] {
            assert_eq!(
                super::retry_after_value(seconds),
                actix_web::http::header::HeaderValue::from(seconds),
                "{seconds}"
            );
        }
    }

    use super::*;

    #[test]
    fn statuses_and_retry_after() {
        assert_eq!(IngestError::NotFound.status_code(), 404);
        let limited = IngestError::RateLimited {
            retry_after_secs: 3,
            scope: "listener",
        }
        .error_response();
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers().get(header::RETRY_AFTER).unwrap(), "3");
        let down = IngestError::Deadline.error_response();
        assert_eq!(down.status(), 503);
        assert!(down.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(
            IngestError::Internal("secret detail".into()).to_string(),
            "internal error"
        );
    }

    #[actix::test]
    async fn a_schema_rejection_is_a_422_naming_the_place() {
        let error = IngestError::Schema(Rejection {
            record: 3,
            instance_path: "/lines/0/qty".into(),
            schema_path: "/properties/lines/items/properties/qty/minimum".into(),
            message: "value is less than the minimum of 1".into(),
        });
        assert_eq!(error.outcome(), "schema_invalid");
        let response = error.error_response();
        assert_eq!(response.status(), 422);
        let body = actix_web::body::to_bytes(response.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "error": "record 3 does not match the listener's schema at /lines/0/qty: value is less than the minimum of 1",
                "record": 3,
                "instance_path": "/lines/0/qty",
                "schema_path": "/properties/lines/items/properties/qty/minimum",
                "message": "value is less than the minimum of 1",
            })
        );
    }

    #[test]
    fn fixed_bodies_are_what_the_error_text_serializes_to() {
        for error in [
            IngestError::NotFound,
            IngestError::RateLimited {
                retry_after_secs: 1,
                scope: "global",
            },
            IngestError::Overloaded,
            IngestError::Unavailable(PublishError::QueueFull),
            IngestError::Deadline,
        ] {
            let serialized = serde_json::to_string(&ErrorBody {
                error: error.to_string(),
            })
            .unwrap();
            assert_eq!(error.fixed_body(), Some(serialized.as_str()));
            let response = error.error_response();
            assert_eq!(
                response.headers().get(header::CONTENT_TYPE).unwrap(),
                "application/json"
            );
        }
    }
}
