//! What the errors topic holds: one `ErrorEntry` per open error, under `error_key`; and
//! `RetryData`, one record's content as found in the retry topic.

use serde::{Deserialize, Serialize};

/// One failed record, as stored in the errors topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    /// Its listener.
    pub listener_id: String,
    /// The record's id (`<request id>-<index>`).
    pub record_id: String,
    /// The request it came in, when the page said.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The record's trace key; a later success with the same key resolves the error.
    pub trace_key: String,
    /// Link to the record in the source system, when the listener renders one.
    #[serde(default)]
    pub data_uri: Option<String>,
    /// What went wrong (the target's answer, shortened).
    pub error: String,
    /// HTTP status of the target's last answer; none for connection errors and file targets.
    #[serde(default)]
    pub target_status: Option<u16>,
    /// The record's attempt: 1 for the original delivery, +1 per retry through the API.
    pub attempt: u32,
    /// Requests made to the target during this attempt (1 + automatic retries).
    pub tries: u32,
    /// When the worker gave up, RFC 3339.
    pub failed_at: String,
    /// The same, Unix ms (for sorting).
    pub failed_at_ms: i64,
    /// When hookpipe received the record, RFC 3339.
    #[serde(default)]
    pub received_at: Option<String>,
    /// The page it was imported in.
    pub page_id: String,
    /// The pages topic it was read from.
    pub topic: String,
    /// Whether retry data was stored for the record (false: the listener has `do_not_store_retry_data`).
    pub retry_data_stored: bool,
    /// When a retry through the API last republished the record; the error stays open until the
    /// retried record imports (or fails again, replacing this entry).
    #[serde(default)]
    pub retry_requested_at: Option<String>,
}

impl ErrorEntry {
    /// `received_at` in Unix ms, when present and readable.
    pub fn received_at_ms(&self) -> Option<i64> {
        let text = self.received_at.as_deref()?;
        let time = humantime::parse_rfc3339_weak(text).ok()?;
        let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(since.as_millis()).ok()
    }
}

/// Key of an error in the errors topic.
pub fn error_key(listener_id: &str, record_id: &str) -> String {
    format!("{listener_id}/{record_id}")
}

/// One record's retry data, as read from its page's retry data message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryData {
    /// Its listener.
    pub listener_id: String,
    /// The pages topic the record was published to.
    pub topic: String,
    /// The page it was first published in.
    pub page_id: String,
    /// The record exactly as it was in the page (`id`, `trace_key`, `data`, …).
    pub record: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::rfc3339_millis;

    #[test]
    fn received_at_parses_rfc3339() {
        let entry = ErrorEntry {
            listener_id: "l".into(),
            record_id: "r".into(),
            request_id: None,
            trace_key: "t".into(),
            data_uri: None,
            error: "e".into(),
            target_status: None,
            attempt: 1,
            tries: 1,
            failed_at: rfc3339_millis(5),
            failed_at_ms: 5,
            received_at: Some(rfc3339_millis(1_700_000_000_123)),
            page_id: "p".into(),
            topic: "t".into(),
            retry_data_stored: true,
            retry_requested_at: None,
        };
        assert_eq!(entry.received_at_ms(), Some(1_700_000_000_123));
        let entry = ErrorEntry {
            received_at: Some("yesterday".into()),
            ..entry
        };
        assert_eq!(entry.received_at_ms(), None);
    }
}
