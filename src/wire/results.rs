//! Import results (`kafka.results_topic`): what the import worker did with the records of a
//! listener that waits for its imports (`response.wait = "import"`), written by the worker once
//! a page is settled (its failed records recorded as errors) and read by every serve instance to
//! answer the requests it holds (`import_wait`).
//!
//! One message per request per page (key = the request id, so an instance that holds no such
//! request drops it without reading the value):
//! `{"type":"import_results","version":1,"listener_id","request_id","page_id","records":[
//! {"id","imported":true[,"target":…]} | {"id","imported":false[,"status"],"error"}]}`.
//! `target` is the target's JSON answer for the record (its per-record result, or the answer to
//! the request that carried it), left out when it is not JSON or over [`MAX_TARGET_BYTES`].
//!
//! Pages (and events) of such listeners carry the header [`HEADER_WAIT`]` = import`: it is what
//! tells the worker to write results, so pages of listeners that do not wait are unchanged.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `type` of an import results message.
pub const RESULTS_TYPE: &str = "import_results";
/// `version` of the import results messages written.
pub const RESULTS_VERSION: u64 = 1;
/// Header of a page (or event) whose listener waits for its imports: the worker writes results.
pub const HEADER_WAIT: &str = "hookpipe-wait";
/// [`HEADER_WAIT`]'s value.
pub const WAIT_IMPORT: &str = "import";
/// Largest target answer (serialized JSON) kept in a result: a few ids and a status fit, a
/// target that echoes whole records does not weigh on every waiting instance's memory.
pub const MAX_TARGET_BYTES: usize = 2048;

/// Records of a request whose results a serve instance keeps in full (`import_wait`): the
/// worker writes the target's answer only for these, the others' would be dropped unread.
pub const MAX_DETAILED: usize = 20;
/// Largest results message the worker writes (its value, about): a page's results for one
/// request are split over several messages beyond it, well under Kafka's default 1 MB limit
/// (a page holds up to 10 000 records, each failure with an error of up to 500 characters).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The index of a record of request `request_id` from its id (`wire::record_id`).
pub fn record_index(request_id: &str, record_id: &str) -> Option<usize> {
    record_id.strip_prefix(request_id)?.strip_prefix('-')?.parse().ok()
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordResult {
    /// The record's id (`{request id}-{index}`).
    pub id: String,
    /// Imported (`true`) or failed for good and recorded as an import error (`false`).
    pub imported: bool,
    /// The target's last status, for a failed record that got an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed (the target's error, cut at 500 characters by the worker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The target's JSON answer for it, when small enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Value>,
}

/// The results of one request's records of one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsMessage {
    /// [`RESULTS_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// [`RESULTS_VERSION`].
    pub version: u64,
    /// The listener.
    pub listener_id: String,
    /// The request the records came in (also the message key).
    pub request_id: String,
    /// The page (or event) they were imported from.
    pub page_id: String,
    /// One per record of the request in the page.
    pub records: Vec<RecordResult>,
}

impl ResultsMessage {
    /// A message of the current version.
    pub fn new(listener_id: &str, request_id: &str, page_id: &str, records: Vec<RecordResult>) -> ResultsMessage {
        ResultsMessage {
            kind: RESULTS_TYPE.into(),
            version: RESULTS_VERSION,
            listener_id: listener_id.into(),
            request_id: request_id.into(),
            page_id: page_id.into(),
            records,
        }
    }

    /// The message's value.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a message's value; the error says what is wrong with it.
    pub fn read(payload: &[u8]) -> Result<ResultsMessage, String> {
        let message: ResultsMessage =
            serde_json::from_slice(payload).map_err(|error| format!("not an import results message: {error}"))?;
        if message.kind != RESULTS_TYPE {
            return Err(format!("type is `{}`, not `{RESULTS_TYPE}`", message.kind));
        }
        if message.version != RESULTS_VERSION {
            return Err(format!("unknown version {}", message.version));
        }
        Ok(message)
    }
}

/// The target's answer as kept in a result: JSON of at most [`MAX_TARGET_BYTES`].
pub fn bounded_target(answer: &[u8]) -> Option<Value> {
    if answer.len() > MAX_TARGET_BYTES {
        return None;
    }
    serde_json::from_slice(answer).ok()
}

/// A value as kept in a result: at most [`MAX_TARGET_BYTES`] serialized.
pub fn bounded_value(value: &Value) -> Option<Value> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
    (size <= MAX_TARGET_BYTES).then(|| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_reads_back_as_written() {
        let message = ResultsMessage::new(
            "orders",
            "q1",
            "p1",
            vec![
                RecordResult {
                    id: "q1-0".into(),
                    imported: true,
                    status: None,
                    error: None,
                    target: Some(json!({"id": 7})),
                },
                RecordResult {
                    id: "q1-1".into(),
                    imported: false,
                    status: Some(422),
                    error: Some("HTTP 422: bad sku".into()),
                    target: None,
                },
            ],
        );
        let bytes = message.to_bytes();
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            json!({"type": "import_results", "version": 1, "listener_id": "orders", "request_id": "q1",
                   "page_id": "p1", "records": [{"id": "q1-0", "imported": true, "target": {"id": 7}},
                   {"id": "q1-1", "imported": false, "status": 422, "error": "HTTP 422: bad sku"}]})
        );
        assert_eq!(ResultsMessage::read(&bytes).unwrap(), message);
        for (bad, says) in [
            (&b"nope"[..], "not an import results"),
            (br#"{"type":"page","version":1,"listener_id":"l","request_id":"q","page_id":"p","records":[]}"#, "type"),
            (br#"{"type":"import_results","version":9,"listener_id":"l","request_id":"q","page_id":"p","records":[]}"#, "version"),
        ] {
            assert!(ResultsMessage::read(bad).unwrap_err().contains(says));
        }
    }

    #[test]
    fn target_answers_are_kept_only_when_small_json() {
        assert_eq!(bounded_target(br#"{"id":"c-1"}"#), Some(json!({"id": "c-1"})));
        assert_eq!(bounded_target(b"created"), None, "not JSON");
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_TARGET_BYTES));
        assert_eq!(bounded_target(big.as_bytes()), None);
        assert_eq!(bounded_value(&json!({"ok": true})), Some(json!({"ok": true})));
        assert_eq!(bounded_value(&json!("a".repeat(MAX_TARGET_BYTES))), None);
    }
}
