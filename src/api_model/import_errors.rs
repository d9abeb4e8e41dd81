//! Bodies of `/api/v1/listeners/{id}/errors…`: open import errors, one error with its retry
//! data, what a retry did, a resolution.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::More;

/// An open import error as listed (without the record's content).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorView {
    /// Its listener.
    pub listener_id: String,
    /// The failed record's id (`<request id>-<index>`).
    pub record_id: String,
    /// The request it came in.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The record's trace key.
    pub trace_key: String,
    /// Link to the record in the source system.
    #[serde(default)]
    pub data_uri: Option<String>,
    /// What went wrong (the target's answer, shortened).
    pub error: String,
    /// HTTP status of the target's last answer.
    #[serde(default)]
    pub target_status: Option<u16>,
    /// 1 for the original delivery, +1 per retry.
    pub attempt: u32,
    /// Requests made to the target in this attempt.
    pub tries: u32,
    /// When the worker gave up, RFC 3339.
    pub failed_at: String,
    /// The same, Unix ms.
    pub failed_at_ms: i64,
    /// When hookpipe received the record.
    #[serde(default)]
    pub received_at: Option<String>,
    /// The page it was imported in.
    pub page_id: String,
    /// The pages topic it was read from.
    pub topic: String,
    /// Whether retry data was kept.
    pub retry_data_stored: bool,
    /// When a retry last republished the record (the error stays open until it imports).
    #[serde(default)]
    pub retry_requested_at: Option<String>,
    /// Whether the record can be retried.
    pub can_retry: bool,
    /// Why not, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_unavailable: Option<String>,
    /// Fields this type does not name yet.
    #[serde(flatten)]
    #[schema(ignore)]
    pub more: More,
}

/// `GET /listeners/{id}/errors`: a page of open errors, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorList {
    /// The listener.
    pub listener_id: String,
    /// Open errors in all.
    pub total: u64,
    /// Page size asked for.
    pub limit: u64,
    /// Errors skipped.
    pub offset: u64,
    /// This page.
    pub errors: Vec<ErrorView>,
}

/// The record as a retry sends it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RetryDataView {
    /// Topic it is republished to.
    pub topic: String,
    /// The page it came in.
    pub page_id: String,
    /// The record as it was in its page (`id`, `trace_key`, `data`, …).
    #[schema(value_type = Object)]
    pub record: Value,
}

/// `GET /listeners/{id}/errors/{record_id}`: one error with its retry data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The error.
    #[serde(flatten)]
    pub error: ErrorView,
    /// The record's content (null: none kept, or expired; see `retry_unavailable`).
    pub retry_data: Option<RetryDataView>,
}

/// `POST /listeners/{id}/errors/retry`: which errors to retry — `record_ids`, or `all`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetryRequest {
    /// Record ids (1-1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_ids: Option<Vec<String>>,
    /// Every open error of the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
}

/// A record a retry could not send, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Refused {
    /// The record.
    pub record_id: String,
    /// Why (no retry data).
    pub reason: String,
}

/// What a retry of several errors did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetryReport {
    /// Records republished to the pages topic.
    pub republished: Vec<String>,
    /// Records that could not be.
    pub refused: Vec<Refused>,
    /// Record ids that are not open errors.
    pub not_found: Vec<String>,
    /// When nothing could be retried (409): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /listeners/{id}/errors/{record_id}/retry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetryOne {
    /// The record republished.
    pub republished: Vec<String>,
    /// Its new attempt number.
    pub attempt: u32,
}

/// `POST /listeners/{id}/errors/{record_id}/resolve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Resolved {
    /// The record whose error was closed.
    pub resolved: String,
}
