//! A page as the worker reads it: the envelope the PageActor wrote (README, "A page"; read by
//! `crate::wire`) and its records, each kept whole so targets receive exactly what was published.
//! A CloudEvent (`wire::cloudevents`, either mode) is read as a page of one record.

use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde_json::Value;

use crate::wire::{cloudevents, results, PageMessage, HEADER_RETRY_DATA, RETRY_DATA_NONE};

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
    /// Its listener waits for the import of its requests (header `hookpipe-wait: import`): the
    /// worker keeps the target's answers and writes the records' results (`worker::results`).
    pub wait_for_import: bool,
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
            wait_for_import: false,
            listener_id: page.listener_id,
            page_id: page.page_id,
            created_at: page.created_at,
            records: page.records,
        };
        Ok((page, version))
    }
}

/// A message of a pages topic as read, with whether its listener keeps retry data of the
/// records that fail, and its page format version (an event reads as version 1: a page of one
/// record, in no key's order).
pub type Incoming = (IncomingPage, bool, u64);

impl IncomingPage {
    /// Reads a message of a pages topic: a CloudEvent (its headers say so) is a page of one
    /// record whose page id is the event id ([`cloudevents::ReadEvent::into_record`]); anything
    /// else is read as a page. Retry data is kept unless the page's `hookpipe-retry-data` header,
    /// or the event's `hookpiperetrydata` extension, says `none` (pages without the header are
    /// not hookpipe's own; their records are kept like any others).
    pub fn from_message(payload: &[u8], headers: &[(&str, &[u8])]) -> Result<Incoming, String> {
        let wait_for_import = headers
            .iter()
            .any(|(name, value)| *name == results::HEADER_WAIT && *value == results::WAIT_IMPORT.as_bytes());
        let Some(event) = cloudevents::read(headers, payload) else {
            let stores_retry_data = headers
                .iter()
                .find(|(name, _)| *name == HEADER_RETRY_DATA)
                .is_none_or(|(_, value)| *value != RETRY_DATA_NONE.as_bytes());
            let (mut page, version) = IncomingPage::parse_versioned(payload)?;
            page.wait_for_import = wait_for_import;
            return Ok((page, stores_retry_data, version));
        };
        let event = event.map_err(|error| error.to_string())?;
        let listener_id = event
            .listener_id()
            .ok_or("CloudEvent names no listener (no `hookpipelistener`, and `source` is not /listeners/{id})")?;
        let stores_retry_data = event.retry_data_stored();
        let page = IncomingPage {
            wait_for_import,
            listener_id,
            page_id: event.id.clone(),
            created_at: None,
            records: vec![event.into_record()],
        };
        Ok((page, stores_retry_data, 1))
    }
}

/// A message's headers, as `(name, value)` (a header without a value as empty).
pub fn headers_of<'a>(message: &'a BorrowedMessage<'_>) -> Vec<(&'a str, &'a [u8])> {
    message
        .headers()
        .map(|headers| headers.iter().map(|h| (h.key, h.value.unwrap_or_default())).collect())
        .unwrap_or_default()
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
    fn an_event_in_either_mode_is_a_page_of_one_record() {
        use crate::wire::cloudevents::{encode, EventFields, Mode};
        for (mode, stored) in [(Mode::Binary, true), (Mode::Structured, false)] {
            let event = encode(
                mode,
                &EventFields {
                    id: "r1-2",
                    source: "/listeners/gh",
                    event_type: "com.github.push",
                    time: "2026-01-01T00:00:00.000Z",
                    listener_id: "gh",
                    request_id: "r1",
                    trace_key: "A",
                    data_uri: None,
                    delivery_id: None,
                    mock: false,
                    attempt: Some(2),
                    retry_data_stored: stored,
                    partition_key: "gh",
                    data_json: r#"{"x":1}"#,
                },
            );
            let headers: Vec<(&str, &[u8])> = event.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
            let (page, keeps_retry_data, version) = IncomingPage::from_message(&event.payload, &headers).unwrap();
            assert_eq!(version, 1);
            assert_eq!(
                (page.listener_id.as_str(), page.page_id.as_str()),
                ("gh", "r1-2"),
                "{mode:?}"
            );
            assert_eq!(page.records.len(), 1);
            let record = &page.records[0];
            assert_eq!(
                (record_id(record), trace_key(record), attempt(record)),
                ("r1-2", "A", 2)
            );
            assert_eq!(record["data"], json!({"x": 1}));
            assert_eq!(keeps_retry_data, stored, "{mode:?}");
            assert!(!page.wait_for_import);
            let mut marked = headers.clone();
            marked.push(("hookpipe-wait", b"import"));
            let (page, _, _) = IncomingPage::from_message(&event.payload, &marked).unwrap();
            assert!(page.wait_for_import, "an event of a listener that waits, {mode:?}");
        }
        // A page says with its header; an event the reader refuses is malformed, with the reason.
        let page = br#"{"type":"page","version":1,"listener_id":"l","page_id":"p","records":[]}"#;
        let (read, keeps, _) = IncomingPage::from_message(page, &[("hookpipe-retry-data", b"none")]).unwrap();
        assert!(!keeps);
        assert!(!read.wait_for_import, "no header: no results");
        let (read, _, _) = IncomingPage::from_message(page, &[("hookpipe-wait", b"import")]).unwrap();
        assert!(read.wait_for_import);
        assert!(IncomingPage::from_message(page, &[]).unwrap().1);
        let error = IncomingPage::from_message(b"{}", &[("ce_specversion", b"1.0"), ("ce_id", b"e")]).unwrap_err();
        assert_eq!(error, "CloudEvent has no `source`");
        let error = IncomingPage::from_message(
            b"{}",
            &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"e"),
                ("ce_source", b"s"),
                ("ce_type", b"t"),
            ],
        )
        .unwrap_err();
        assert!(error.contains("names no listener"), "{error}");
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
