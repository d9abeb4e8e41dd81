//! A page as the worker reads it: the envelope the PageActor wrote (README, "A page"; read by
//! `crate::wire`) and its records, each kept whole so targets receive exactly what was published.

use serde_json::Value;

use crate::wire::PageMessage;

/// A page read from a pages topic.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingPage {
    /// Its listener.
    pub listener_id: String,
    /// Its id.
    pub page_id: String,
    /// When the page was made, RFC 3339 (as written).
    pub created_at: Option<String>,
    /// Its records: objects with at least a string `id`.
    pub records: Vec<Value>,
}

impl IncomingPage {
    /// Parses and checks a page message (`wire::PageMessage`), then that every record has an
    /// id; the error says what is wrong with it.
    pub fn parse(payload: &[u8]) -> Result<IncomingPage, String> {
        Self::parse_versioned(payload).map(|(page, _)| page)
    }

    /// [`IncomingPage::parse`], with the page's version: 2 (`wire::ORDERED_PAGE_VERSION`) when
    /// its records carry ordering keys and are imported key by key (`worker::ordered`).
    pub fn parse_versioned(payload: &[u8]) -> Result<(IncomingPage, u64), String> {
        let page = PageMessage::<Value>::read(payload).map_err(|error| error.to_string())?;
        for (index, record) in page.records.iter().enumerate() {
            if record.get("id").and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(format!("record {index} has no string `id`"));
            }
        }
        let version = page.version;
        let page = IncomingPage {
            listener_id: page.listener_id,
            page_id: page.page_id,
            created_at: page.created_at,
            records: page.records,
        };
        Ok((page, version))
    }
}

/// A record's id (checked present by `IncomingPage::parse`).
pub fn record_id(record: &Value) -> &str {
    record.get("id").and_then(Value::as_str).unwrap_or_default()
}

/// A record's trace key; empty when it has none (then nothing auto-resolves by it).
pub fn trace_key(record: &Value) -> &str {
    record.get("trace_key").and_then(Value::as_str).unwrap_or_default()
}

/// A record's ordering key (version 2 pages); empty when it has none, as the page stage writes
/// for a record without a value at the listener's key.
pub fn ordering_key(record: &Value) -> &str {
    record.get("ordering_key").and_then(Value::as_str).unwrap_or_default()
}

/// A record's attempt: 1 for the original delivery, more for retries through the errors API.
pub fn attempt(record: &Value) -> u32 {
    record
        .get("attempt")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

/// A string field of a record, if present.
pub fn text_field<'a>(record: &'a Value, key: &str) -> Option<&'a str> {
    record.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_page_and_keeps_records_whole() {
        let payload = json!({"type": "page", "version": 1, "listener_id": "orders", "page_id": "p1",
            "created_at": "2026-01-01T00:00:00.000Z",
            "records": [{"id": "r-0", "trace_key": "A", "data": {"x": 1}}, {"id": "r-1", "attempt": 3, "data": 2}]})
        .to_string();
        let page = IncomingPage::parse(payload.as_bytes()).unwrap();
        assert_eq!(page.listener_id, "orders");
        assert_eq!(page.records[0]["data"], json!({"x": 1}));
        assert_eq!(record_id(&page.records[1]), "r-1");
        assert_eq!(trace_key(&page.records[0]), "A");
        assert_eq!(trace_key(&page.records[1]), "");
        assert_eq!(attempt(&page.records[0]), 1);
        assert_eq!(attempt(&page.records[1]), 3);
    }

    #[test]
    fn version_2_pages_carry_their_records_keys_and_version_1_reads_as_before() {
        let v2 = json!({"type": "page", "version": 2, "listener_id": "orders", "page_id": "p2",
            "records": [{"id": "r-0", "ordering_key": "c-1", "data": 1}, {"id": "r-1", "data": 2}]})
        .to_string();
        let (page, version) = IncomingPage::parse_versioned(v2.as_bytes()).unwrap();
        assert_eq!(version, 2);
        assert_eq!(ordering_key(&page.records[0]), "c-1");
        assert_eq!(ordering_key(&page.records[1]), "", "no key: the empty one");
        let v1 = json!({"type": "page", "version": 1, "listener_id": "orders", "page_id": "p1",
            "records": [{"id": "r-0", "data": 1}]})
        .to_string();
        assert_eq!(IncomingPage::parse_versioned(v1.as_bytes()).unwrap().1, 1);
        assert_eq!(IncomingPage::parse(v1.as_bytes()).unwrap().page_id, "p1");
    }

    #[test]
    fn refuses_what_is_not_a_page() {
        for (payload, expected) in [
            ("nope", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"type":"sample"}"#, "type"),
            (r#"{"type":"page","version":3}"#, "version"),
            (
                r#"{"type":"page","version":1,"page_id":"p","records":[]}"#,
                "listener_id",
            ),
            (
                r#"{"type":"page","version":1,"listener_id":"l","page_id":"p"}"#,
                "records",
            ),
            (
                r#"{"type":"page","version":1,"listener_id":"l","page_id":"p","records":[{"data":1}]}"#,
                "record 0",
            ),
        ] {
            let error = IncomingPage::parse(payload.as_bytes()).unwrap_err();
            assert!(error.contains(expected), "{payload}: {error}");
        }
    }
}
