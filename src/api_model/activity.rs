//! Bodies of a listener's activity endpoints: sample data, mock output, debug windows and their
//! captures, and the template preview.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::More;

/// `GET`/`PUT /listeners/{id}/sample`: the latest request a listener received (`source`
/// `webhook`, written by ingestion, headers redacted), or sample records entered by hand
/// (`manual`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sample {
    /// `webhook` or `manual`.
    pub source: String,
    /// Its listener.
    pub listener_id: String,
    /// When it was received or entered, RFC 3339.
    pub received_at: String,
    /// The request's id (none for manual samples).
    #[serde(default)]
    pub request_id: Option<String>,
    /// The request's content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The request's headers, credentials redacted.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub headers: Value,
    /// The records parsed from it (the first ones).
    #[schema(value_type = Vec<serde_json::Value>)]
    pub records: Vec<Value>,
    /// How many records the request had.
    #[serde(default)]
    pub records_total: u64,
    /// The raw body as text (redacted, cut at a limit), when the listener stores retry data.
    #[serde(default)]
    pub body: Option<String>,
    /// Whether `body` was cut.
    #[serde(default)]
    pub body_truncated: bool,
    /// Fields this type does not name yet.
    #[serde(flatten)]
    #[schema(ignore)]
    pub more: More,
}

/// `PUT /listeners/{id}/sample` and `/mock`: records entered by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecordsInput {
    /// The records: any JSON values (usually objects), as a JSON array body gives them.
    #[schema(value_type = Vec<serde_json::Value>)]
    pub records: Vec<Value>,
}

/// `GET`/`PUT /listeners/{id}/mock`: saved mock output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MockOutput {
    /// The records to send through the pipeline.
    #[schema(value_type = Vec<serde_json::Value>)]
    pub records: Vec<Value>,
    /// When they were saved, RFC 3339.
    pub updated_at: String,
}

/// `POST /listeners/{id}/mock/send`: the mock output went through the pipeline and Kafka
/// acknowledged it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MockSent {
    /// The request id its records carry.
    pub request_id: String,
    /// Records published.
    pub records: u64,
}

/// `POST /listeners/{id}/debug`: how long to record (default 15 minutes, at most 60).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DebugStart {
    /// Minutes, 1-60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 60)]
    pub duration_minutes: Option<u64>,
    /// Seconds, 1-3600 (when `duration_minutes` is not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3600)]
    pub duration_secs: Option<u64>,
}

/// A listener's debug window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DebugWindow {
    /// Whether requests are being recorded now.
    pub open: bool,
    /// When the window closes by itself, RFC 3339 (null when closed).
    pub until: Option<String>,
}

/// One request recorded while a debug window was open, secrets redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Capture {
    /// When it arrived, RFC 3339.
    pub time: String,
    /// The instance that served it.
    #[serde(default)]
    pub instance: String,
    /// Its listener.
    pub listener_id: String,
    /// Its request id (`X-Request-Id`).
    pub request_id: String,
    /// HTTP method.
    pub method: String,
    /// Path (a secret-URL token shows as `[redacted]`).
    pub path: String,
    /// Query string, secret parameters redacted.
    #[serde(default)]
    pub query: String,
    /// Headers, credentials redacted.
    #[schema(value_type = Object)]
    pub headers: Value,
    /// Body as text (cut at a limit).
    pub body: String,
    /// Whether `body` was cut.
    #[serde(default)]
    pub body_truncated: bool,
    /// `passed`, `failed: <reason>`, `not configured`, `not reached`.
    pub verification: String,
    /// The status hookpipe answered.
    pub status: u16,
    /// `accepted` or the refusal (`unauthorized`, `rate_limited`, `bad_request`, …).
    pub outcome: String,
    /// Time to answer, ms.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Fields this type does not name yet.
    #[serde(flatten)]
    #[schema(ignore)]
    pub more: More,
}

/// `GET /listeners/{id}/debug/logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CaptureList {
    /// Captures from every instance, newest first.
    pub captures: Vec<Capture>,
}

/// `POST /listeners/{id}/preview`: templates to render over sample records, as the console
/// shows them while they are edited (nothing is saved). A template left out is the listener's
/// saved one; `""` means none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// Trace key template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_key_template: Option<String>,
    /// Data URI template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_uri_template: Option<String>,
    /// Response body template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// Strict mode (a missing field is an error); default the listener's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_templates: Option<bool>,
    /// Records to render over; default the listener's current sample data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<serde_json::Value>>)]
    pub records: Option<Vec<Value>>,
}

/// What one template gave for one record: the text, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RenderedRecord {
    /// The record's index in the sample.
    pub index: u64,
    /// The trace key (null: no template, or it failed — see `trace_key_error`).
    pub trace_key: Option<String>,
    /// Why the trace key template failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_key_error: Option<String>,
    /// The data URI (null: no template, or it failed).
    pub data_uri: Option<String>,
    /// Why the data URI template failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_uri_error: Option<String>,
}

/// The preview: each record's trace key and data URI, and the success body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PreviewResult {
    /// Where the records came from: `sample` (the listener's sample data), `request`, or
    /// `none` (no sample yet: nothing to render over).
    pub records_from: String,
    /// Per record, at most 20.
    pub records: Vec<RenderedRecord>,
    /// The response body over all records (null: no template, or it failed).
    pub response_body: Option<String>,
    /// Why the response body template failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body_error: Option<String>,
    /// A template that does not compile: `{"field", "error"}` pairs (nothing was rendered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid: Vec<super::ErrorBody>,
}
