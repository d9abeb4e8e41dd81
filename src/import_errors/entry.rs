//! What the errors topic holds: one `ErrorEntry` per open error, under `error_key`, with the
//! failed record's retry data inside it; and `RetryData`, one record's content as a retry
//! republishes it (from the entry, or from the legacy retry topic for errors recorded before).

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
    /// Whether the record can be sent again: its retry data is in `retry_data` or (errors recorded
    /// by versions that wrote retry data at ingest) in the legacy retry topic. False: see
    /// `retry_data_missing` (absent in old entries: the listener has `do_not_store_retry_data`).
    pub retry_data_stored: bool,
    /// The record exactly as it was in its page (`id`, `trace_key`, `data`, …), kept with the
    /// error by the worker that recorded it; `None` with `retry_data_stored` = legacy retry topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_data: Option<serde_json::Value>,
    /// Why the error has no retry data, when the worker knew (do not store, over the size cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_data_missing: Option<String>,
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

    /// Why the record cannot be sent again (it has no retry data), when it cannot.
    pub fn retry_refusal(&self) -> Option<String> {
        if self.retry_data_stored {
            return None;
        }
        Some(
            self.retry_data_missing
                .clone()
                .unwrap_or_else(|| do_not_store_reason(&self.listener_id)),
        )
    }

    /// Whether the record's retry data must be read from the legacy retry topic (an error
    /// recorded by a version that wrote retry data at ingest).
    pub fn retry_data_in_legacy_topic(&self) -> bool {
        self.retry_data_stored && self.retry_data.is_none()
    }

    /// The retry data kept with the error, when it is.
    pub fn inline_retry_data(&self) -> Option<RetryData> {
        let record = self.retry_data.clone()?;
        Some(RetryData {
            listener_id: self.listener_id.clone(),
            topic: self.topic.clone(),
            page_id: self.page_id.clone(),
            record,
        })
    }
}

/// Why the errors of a listener with `do_not_store_retry_data` have no retry data.
pub fn do_not_store_reason(listener_id: &str) -> String {
    format!(
        "listener `{listener_id}` does not store retry data (do_not_store_retry_data), so hookpipe has no copy of \
         this record to send again: have the source resend it, then resolve this error"
    )
}

/// Why a record bigger than `worker.retry_data_max_bytes` has no retry data.
pub fn too_large_reason(record_bytes: usize, max_bytes: usize) -> String {
    format!(
        "the record is {record_bytes} bytes, over worker.retry_data_max_bytes ({max_bytes}), so its retry data \
         was not kept with the error: have the source resend it, then resolve this error"
    )
}

/// Key of an error in the errors topic.
pub fn error_key(listener_id: &str, record_id: &str) -> String {
    format!("{listener_id}/{record_id}")
}

/// One record's retry data: from its error entry, or from its page's message in the legacy retry topic.
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
            retry_data: None,
            retry_data_missing: None,
            retry_requested_at: None,
        };
        assert_eq!(entry.received_at_ms(), Some(1_700_000_000_123));
        let entry = ErrorEntry {
            received_at: Some("yesterday".into()),
            ..entry
        };
        assert_eq!(entry.received_at_ms(), None);
    }

    /// An entry as the version that wrote retry data at ingest recorded it: no `retry_data`.
    #[test]
    fn old_entries_read_as_retry_data_in_the_legacy_topic() {
        let old = r#"{"listener_id":"l","record_id":"r-0","request_id":"r","trace_key":"T","data_uri":null,
            "error":"HTTP 400","target_status":400,"attempt":1,"tries":1,"failed_at":"2026-01-01T00:00:00.000Z",
            "failed_at_ms":1,"received_at":"2026-01-01T00:00:00.000Z","page_id":"p","topic":"hookpipe.pages",
            "retry_data_stored":true,"retry_requested_at":null}"#;
        let entry: ErrorEntry = serde_json::from_str(old).unwrap();
        assert!(entry.retry_data_in_legacy_topic());
        assert!(entry.inline_retry_data().is_none());
        let new = ErrorEntry {
            retry_data: Some(serde_json::json!({"id": "r-0", "data": {"a": 1}})),
            ..entry
        };
        assert!(!new.retry_data_in_legacy_topic());
        let data = new.inline_retry_data().unwrap();
        assert_eq!((data.topic.as_str(), data.page_id.as_str()), ("hookpipe.pages", "p"));
        assert_eq!(data.record["data"]["a"], 1);
        let written = serde_json::to_value(&new).unwrap();
        assert_eq!(written["retry_data"]["id"], "r-0");
        assert!(written.get("retry_data_missing").is_none(), "absent, not null");
        assert_eq!(new.retry_refusal(), None);
    }

    #[test]
    fn errors_without_retry_data_say_why() {
        let old: ErrorEntry = serde_json::from_str(
            r#"{"listener_id":"l","record_id":"r","trace_key":"T","error":"e","attempt":1,"tries":1,
            "failed_at":"x","failed_at_ms":1,"page_id":"p","topic":"t","retry_data_stored":false}"#,
        )
        .unwrap();
        assert!(old.retry_refusal().unwrap().contains("`l` does not store retry data"));
        let too_large = ErrorEntry {
            retry_data_missing: Some(too_large_reason(300_000, 262_144)),
            ..old
        };
        assert!(too_large.retry_refusal().unwrap().contains("300000 bytes, over"));
    }
}
