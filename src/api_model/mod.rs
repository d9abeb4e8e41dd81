//! The management API's request and response bodies, one type per body, shared by the server
//! (`http/api`), the command line (`cli`) and the OpenAPI document (`http/api/openapi.rs`).
//!
//! Serde is the wire format and `utoipa` derives the document from the same types, so the
//! server, the CLI and `docs/openapi.json` cannot disagree on a field name. Types that mirror
//! what another part stores (a listener's settings, a capture, a sample) keep the fields they
//! do not name in `more` and send them on unchanged: a field another part adds reaches the API
//! before the document names it, and never makes a response fail to build.

pub mod activity;
pub mod import_errors;
pub mod listeners;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use activity::{
    Capture, CaptureList, DebugStart, DebugWindow, MockOutput, MockSent, PreviewRequest, PreviewResult, RecordsInput,
    RenderedRecord, Sample,
};
pub use import_errors::{ErrorDetail, ErrorList, ErrorView, Refused, Resolved, RetryOne, RetryReport, RetryRequest};
pub use listeners::{ListenerInput, ListenerList, ListenerSource, ListenerUrl, ListenerView, SecretInput};

/// The body of every error answer: `{"error": "<short reason>"}`, with `field` naming the
/// offending field of a request when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, without secrets or internal detail.
    pub error: String,
    /// The request field at fault (`page_size`, `verification.secrets`, `body`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Extra fields of a body that its type does not name, kept and sent on as they are.
pub type More = serde_json::Map<String, serde_json::Value>;
