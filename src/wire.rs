//! The page format, written and read in this one module: hookpipe's contract with whoever reads
//! its topics (the import worker, `hookpipe tail`, the errors API, other consumers).
//!
//! - A **page** (a pages topic; key = listener id; headers from [`page_headers`]):
//!   `{"type":"page","version":1,"listener_id","page_id","created_at","records":[…]}`.
//!   A listener with an `ordering_key` writes **version 2**: the same envelope, every record of
//!   it carrying its `"ordering_key"`, and all of them of one partition (the page stage
//!   publishes it to the partition of their keys). Readers take both versions.
//! - **Legacy retry data** (the retry topic; key = page id; headers from [`retry_data_headers`]):
//!   `{"type":"retry_data","version":2,"listener_id","topic","page_id","created_at","records":[…]}`,
//!   the page's records byte for byte plus the topic they were published to. Earlier versions
//!   wrote one for every page at ingest; hookpipe now only reads them, for the errors those
//!   versions recorded (retry data is kept with each error instead: `import_errors`).
//! - A **record**: `{"id","request_id","trace_key","data_uri","received_at"[,"delivery_id"]
//!   [,"mock"][,"ordering_key"],"data"}` (`ordering_key` in version 2 pages only); a record
//!   republished through the errors API also carries `"attempt"`.
//! - A **quarantine page** (`kafka.quarantine_topic`; key = listener id; headers from
//!   [`quarantine_headers`]): `{"type":"quarantine","version":1,"listener_id","page_id",
//!   "created_at","records":[…]}`, whose records failed their listener's schema:
//!   `{"id","request_id","received_at"[,"delivery_id"][,"mock"],"errors":[{"instance_path",
//!   "schema_path","message"}],"errors_truncated","data"}`.
//!
//! - A listener may publish **CloudEvents** instead of pages (`output_format`): one event per
//!   record, written and read by [`cloudevents`].
//! - Pages and events of a listener with `response.wait = "import"` also carry the header
//!   `hookpipe-wait: import` (readers that do not know it ignore it; the value is unchanged), and
//!   the worker answers them with **import results** (`kafka.results_topic`), written and read
//!   by [`results`].
//!
//! The writers put bytes together by hand: a record is serialized once, at ingest, and its bytes
//! are copied unchanged into the page, which is not built as a tree.
//! The readers are serde structs that leave records as the caller asks (`serde_json::Value`, or
//! a borrowed `&RawValue` to skip building them).

pub mod cloudevents;
pub mod results;

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// `type` of a page message.
pub const PAGE_TYPE: &str = "page";
/// `version` of the page messages of listeners without an ordering key.
pub const PAGE_VERSION: u64 = 1;
/// `version` of the page messages of listeners with an ordering key: every record carries its
/// `ordering_key`, and the page holds records of one partition. The newest version read.
pub const ORDERED_PAGE_VERSION: u64 = 2;
/// `type` of a retry data message.
pub const RETRY_DATA_TYPE: &str = "retry_data";
/// `version` of the retry data messages written (1 was one message per record, keyed by record id).
pub const RETRY_DATA_VERSION: u64 = 2;
/// `type` of a quarantine page.
pub const QUARANTINE_TYPE: &str = "quarantine";
/// `version` of the quarantine pages written.
pub const QUARANTINE_VERSION: u64 = 1;

/// Header carrying the listener id.
pub const HEADER_LISTENER_ID: &str = "hookpipe-listener-id";
/// Header carrying the page id.
pub const HEADER_PAGE_ID: &str = "hookpipe-page-id";
/// Header carrying a request id (one per request with records in the page).
pub const HEADER_REQUEST_ID: &str = "hookpipe-request-id";
/// Header naming the content type of the message.
pub const HEADER_CONTENT_TYPE: &str = "content-type";
/// Content type of a page message.
pub const PAGE_CONTENT_TYPE: &str = "application/json";
/// Header saying whether the listener keeps retry data of its failed records: `stored` or `none`.
pub const HEADER_RETRY_DATA: &str = "hookpipe-retry-data";
/// `HEADER_RETRY_DATA` value: a record of the page that fails is recorded with its retry data
/// (earlier versions: every record of the page has retry data in the retry topic).
pub const RETRY_DATA_STORED: &str = "stored";
/// `HEADER_RETRY_DATA` value: the listener does not store retry data.
pub const RETRY_DATA_NONE: &str = "none";
/// Header marking a page republished through the errors API.
pub const HEADER_RETRY_OF: &str = "hookpipe-retry";

// ---------------------------------------------------------------------------------------------
// Writing

/// The id of the `index`-th record of a request (the key of its retry data and of its error).
pub fn record_id(request_id: &str, index: usize) -> String {
    format!("{request_id}-{index}")
}

/// The fields of one record, already computed by the page stage.
#[derive(Debug, Clone, Copy)]
pub struct RecordFields<'a> {
    /// The record's id ([`record_id`]).
    pub id: &'a str,
    /// The request it came in.
    pub request_id: &'a str,
    /// Its trace key (rendered, or the default).
    pub trace_key: &'a str,
    /// Link to the record in the source system; `None` is written as `null`.
    pub data_uri: Option<&'a str>,
    /// When the request arrived, RFC 3339 with milliseconds.
    pub received_at: &'a str,
    /// The provider's delivery id; `None` leaves the member out.
    pub delivery_id: Option<&'a str>,
    /// Mock output: writes `"mock":true`; `false` leaves the member out.
    pub mock: bool,
    /// The record itself, as JSON text (copied as is).
    pub data_json: &'a str,
}

/// Serializes one record:
/// `{"id","request_id","trace_key","data_uri","received_at"[,"delivery_id"][,"mock"],"data"}`.
pub fn serialize_record(fields: &RecordFields<'_>) -> Vec<u8> {
    record_bytes(fields, None)
}

/// Serializes one record of a version 2 page, with its ordering key:
/// `{"id","request_id","trace_key","data_uri","received_at"[,"delivery_id"][,"mock"],"ordering_key","data"}`.
pub fn serialize_ordered_record(fields: &RecordFields<'_>, ordering_key: &str) -> Vec<u8> {
    record_bytes(fields, Some(ordering_key))
}

/// What a record's members other than `data` take at most, beyond their values' own bytes: the
/// names, quotes and separators of every member, `null` and `true` (a value that needs escapes can
/// still outgrow it: the buffer then grows once).
const RECORD_FRAME_BYTES: usize = 160;

fn record_bytes(fields: &RecordFields<'_>, ordering_key: Option<&str>) -> Vec<u8> {
    // One allocation for the whole record: a guess short of the members' lengths made every large
    // record grow (a copy of the whole record) once its `data` came.
    let values = fields.id.len()
        + fields.request_id.len()
        + fields.trace_key.len()
        + fields.data_uri.map_or(0, str::len)
        + fields.received_at.len()
        + fields.delivery_id.map_or(0, str::len)
        + ordering_key.map_or(0, str::len);
    let mut bytes = Vec::with_capacity(fields.data_json.len() + values + RECORD_FRAME_BYTES);
    bytes.extend_from_slice(br#"{"id":"#);
    write_json_string(&mut bytes, fields.id);
    bytes.extend_from_slice(br#","request_id":"#);
    write_json_string(&mut bytes, fields.request_id);
    bytes.extend_from_slice(br#","trace_key":"#);
    write_json_string(&mut bytes, fields.trace_key);
    bytes.extend_from_slice(br#","data_uri":"#);
    match fields.data_uri {
        Some(uri) => write_json_string(&mut bytes, uri),
        None => bytes.extend_from_slice(b"null"),
    }
    bytes.extend_from_slice(br#","received_at":"#);
    write_json_string(&mut bytes, fields.received_at);
    if let Some(delivery_id) = fields.delivery_id {
        bytes.extend_from_slice(br#","delivery_id":"#);
        write_json_string(&mut bytes, delivery_id);
    }
    if fields.mock {
        bytes.extend_from_slice(br#","mock":true"#);
    }
    if let Some(ordering_key) = ordering_key {
        bytes.extend_from_slice(br#","ordering_key":"#);
        write_json_string(&mut bytes, ordering_key);
    }
    bytes.extend_from_slice(br#","data":"#);
    bytes.extend_from_slice(fields.data_json.as_bytes());
    bytes.push(b'}');
    bytes
}

/// The fields of one quarantined record: what [`RecordFields`] has that applies (no trace key or
/// data URI: the record is not imported), and why it failed.
#[derive(Debug, Clone, Copy)]
pub struct QuarantinedFields<'a, E: serde::Serialize> {
    /// The record's id ([`record_id`]): its place in its request, as a published record's.
    pub id: &'a str,
    /// The request it came in.
    pub request_id: &'a str,
    /// When the request arrived, RFC 3339 with milliseconds.
    pub received_at: &'a str,
    /// The provider's delivery id; `None` leaves the member out.
    pub delivery_id: Option<&'a str>,
    /// Mock output: writes `"mock":true`; `false` leaves the member out.
    pub mock: bool,
    /// The validation errors (`[{"instance_path","schema_path","message"}]`), already bounded.
    pub errors: &'a E,
    /// Whether more errors were found than `errors` holds.
    pub errors_truncated: bool,
    /// The record itself, as JSON text (copied as is).
    pub data_json: &'a str,
}

/// Serializes one quarantined record:
/// `{"id","request_id","received_at"[,"delivery_id"][,"mock"],"errors","errors_truncated","data"}`.
pub fn serialize_quarantined_record<E: serde::Serialize>(fields: &QuarantinedFields<'_, E>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(fields.data_json.len() + 400);
    bytes.extend_from_slice(br#"{"id":"#);
    write_json_string(&mut bytes, fields.id);
    bytes.extend_from_slice(br#","request_id":"#);
    write_json_string(&mut bytes, fields.request_id);
    bytes.extend_from_slice(br#","received_at":"#);
    write_json_string(&mut bytes, fields.received_at);
    if let Some(delivery_id) = fields.delivery_id {
        bytes.extend_from_slice(br#","delivery_id":"#);
        write_json_string(&mut bytes, delivery_id);
    }
    if fields.mock {
        bytes.extend_from_slice(br#","mock":true"#);
    }
    bytes.extend_from_slice(br#","errors":"#);
    serde_json::to_writer(&mut bytes, fields.errors).expect("errors serialize to a Vec");
    write!(bytes, r#","errors_truncated":{}"#, fields.errors_truncated).expect("writing to a Vec cannot fail");
    bytes.extend_from_slice(br#","data":"#);
    bytes.extend_from_slice(fields.data_json.as_bytes());
    bytes.push(b'}');
    bytes
}

/// Serializes a quarantine page around already-serialized quarantined records:
/// `{"type":"quarantine","version":1,"listener_id","page_id","created_at","records":[…]}`.
pub fn serialize_quarantine_page(listener_id: &str, page_id: &str, created_at: &str, records: &[Vec<u8>]) -> Vec<u8> {
    records_message(
        QUARANTINE_TYPE,
        QUARANTINE_VERSION,
        listener_id,
        None,
        page_id,
        created_at,
        records,
    )
}

/// Serializes a page message around already-serialized records:
/// `{"type":"page","version":1,"listener_id","page_id","created_at","records":[…]}`.
pub fn serialize_page(listener_id: &str, page_id: &str, created_at: &str, records: &[Vec<u8>]) -> Vec<u8> {
    records_message(PAGE_TYPE, PAGE_VERSION, listener_id, None, page_id, created_at, records)
}

/// Serializes a version 2 page around records from [`serialize_ordered_record`], all of one
/// partition: `{"type":"page","version":2,"listener_id","page_id","created_at","records":[…]}`.
pub fn serialize_ordered_page(listener_id: &str, page_id: &str, created_at: &str, records: &[Vec<u8>]) -> Vec<u8> {
    records_message(
        PAGE_TYPE,
        ORDERED_PAGE_VERSION,
        listener_id,
        None,
        page_id,
        created_at,
        records,
    )
}

/// Serializes the legacy retry data of a page, as earlier versions wrote it at ingest (the
/// format `RetryDataMessage` reads back; no longer written by hookpipe, kept as its
/// specification): the page's records exactly as published, plus the topic they were published to —
/// `{"type":"retry_data","version":2,"listener_id","topic","page_id","created_at","records":[…]}`.
pub fn serialize_retry_data(
    listener_id: &str,
    topic: &str,
    page_id: &str,
    created_at: &str,
    records: &[Vec<u8>],
) -> Vec<u8> {
    records_message(
        RETRY_DATA_TYPE,
        RETRY_DATA_VERSION,
        listener_id,
        Some(topic),
        page_id,
        created_at,
        records,
    )
}

fn records_message(
    message_type: &str,
    version: u64,
    listener_id: &str,
    topic: Option<&str>,
    page_id: &str,
    created_at: &str,
    records: &[Vec<u8>],
) -> Vec<u8> {
    let records_len: usize = records.iter().map(|r| r.len() + 1).sum();
    let mut out = Vec::with_capacity(records_len + 200 + listener_id.len() + topic.map_or(0, str::len));
    out.extend_from_slice(br#"{"type":"#);
    write_json_string(&mut out, message_type);
    write!(out, r#","version":{version}"#).expect("writing to a Vec cannot fail");
    out.extend_from_slice(br#","listener_id":"#);
    write_json_string(&mut out, listener_id);
    if let Some(topic) = topic {
        out.extend_from_slice(br#","topic":"#);
        write_json_string(&mut out, topic);
    }
    out.extend_from_slice(br#","page_id":"#);
    write_json_string(&mut out, page_id);
    out.extend_from_slice(br#","created_at":"#);
    write_json_string(&mut out, created_at);
    out.extend_from_slice(br#","records":["#);
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(record);
    }
    out.extend_from_slice(b"]}");
    out
}

/// Appends `value` as a JSON string literal.
pub fn write_json_string(out: &mut Vec<u8>, value: &str) {
    serde_json::to_writer(out, value).expect("writing a str to a Vec cannot fail");
}

/// What the headers of a page message say, besides its request ids.
#[derive(Debug, Clone, Copy)]
pub struct PageHeaders<'a> {
    /// Its listener.
    pub listener_id: &'a str,
    /// Its id.
    pub page_id: &'a str,
    /// Whether the listener keeps retry data of the page's records that fail.
    pub retry_data_stored: bool,
    /// Whether the page was republished through the errors API.
    pub republished: bool,
}

/// The headers of a page message, in the order they are written: listener id, content type,
/// page id, retry data, the republished mark (when it is one), then one per request id.
pub fn page_headers<'a>(
    page: &PageHeaders<'a>,
    request_ids: impl IntoIterator<Item = &'a str>,
) -> Vec<(&'a str, &'a str)> {
    let retry_data = if page.retry_data_stored {
        RETRY_DATA_STORED
    } else {
        RETRY_DATA_NONE
    };
    let mut headers = vec![
        (HEADER_LISTENER_ID, page.listener_id),
        (HEADER_CONTENT_TYPE, PAGE_CONTENT_TYPE),
        (HEADER_PAGE_ID, page.page_id),
        (HEADER_RETRY_DATA, retry_data),
    ];
    if page.republished {
        headers.push((HEADER_RETRY_OF, "true"));
    }
    headers.extend(
        request_ids
            .into_iter()
            .map(|request_id| (HEADER_REQUEST_ID, request_id)),
    );
    headers
}

/// The headers of a quarantine page: listener id, content type, page id, then one per request id
/// (no retry-data header: nothing imports quarantined records).
pub fn quarantine_headers<'a>(
    listener_id: &'a str,
    page_id: &'a str,
    request_ids: impl IntoIterator<Item = &'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        (HEADER_LISTENER_ID, listener_id),
        (HEADER_CONTENT_TYPE, PAGE_CONTENT_TYPE),
        (HEADER_PAGE_ID, page_id),
    ];
    headers.extend(
        request_ids
            .into_iter()
            .map(|request_id| (HEADER_REQUEST_ID, request_id)),
    );
    headers
}

/// The headers of a legacy retry data message: listener id, content type, page id.
pub fn retry_data_headers<'a>(listener_id: &'a str, page_id: &'a str) -> [(&'a str, &'a str); 3] {
    [
        (HEADER_LISTENER_ID, listener_id),
        (HEADER_CONTENT_TYPE, PAGE_CONTENT_TYPE),
        (HEADER_PAGE_ID, page_id),
    ]
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Why a message is not a readable page (or retry data message); the text names the problem.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// An object, but serde could not read it (a member given twice, a record of the wrong shape).
    #[error("unreadable: {0}")]
    Unreadable(#[source] serde_json::Error),
    /// `type` is absent or another message's.
    #[error("`type` is not \"{expected}\"")]
    WrongType {
        /// The type wanted.
        expected: &'static str,
    },
    /// `version` is absent or not one this reader knows.
    #[error("unsupported `version` (this worker reads versions 1 to {supported})")]
    UnsupportedVersion {
        /// The newest version read.
        supported: u64,
    },
    /// A required text member is absent, empty or not a string.
    #[error("no `{0}`")]
    Missing(&'static str),
    /// `records` is absent or not an array.
    #[error("no `records` array")]
    NoRecords,
}

/// A page message as read: its envelope checked, its records as `R` (`serde_json::Value`, or
/// `&RawValue` to leave them unparsed).
#[derive(Debug, Clone, PartialEq)]
pub struct PageMessage<R> {
    /// Its version: [`PAGE_VERSION`], or [`ORDERED_PAGE_VERSION`] when its records carry their
    /// ordering keys.
    pub version: u64,
    /// Its listener (never empty).
    pub listener_id: String,
    /// Its id (never empty).
    pub page_id: String,
    /// When the page was made, RFC 3339 as written; `None` when absent or empty.
    pub created_at: Option<String>,
    /// Its records, in order.
    pub records: Vec<R>,
}

impl<'de, R: Deserialize<'de>> PageMessage<R> {
    /// Reads a page message: `type` "page", `version` 1 or 2, a non-empty `listener_id` and
    /// `page_id`, a `records` array, checked in that order.
    pub fn read(payload: &'de [u8]) -> Result<PageMessage<R>, ReadError> {
        let envelope = Envelope::<R>::read(payload)?;
        if envelope.message_type.as_deref() != Some(PAGE_TYPE) {
            return Err(ReadError::WrongType { expected: PAGE_TYPE });
        }
        let version = match envelope.version {
            Some(version @ (PAGE_VERSION | ORDERED_PAGE_VERSION)) => version,
            _ => {
                return Err(ReadError::UnsupportedVersion {
                    supported: ORDERED_PAGE_VERSION,
                })
            }
        };
        let non_empty = |text: Option<String>| text.filter(|text| !text.is_empty());
        let listener_id = non_empty(envelope.listener_id).ok_or(ReadError::Missing("listener_id"))?;
        let page_id = non_empty(envelope.page_id).ok_or(ReadError::Missing("page_id"))?;
        let created_at = non_empty(envelope.created_at);
        let records = envelope.records.ok_or(ReadError::NoRecords)?;
        Ok(PageMessage {
            version,
            listener_id,
            page_id,
            created_at,
            records,
        })
    }
}

/// A retry data message as read, its records as `R`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryDataMessage<R> {
    /// The listener of the page.
    pub listener_id: String,
    /// The pages topic its records were published to.
    pub topic: String,
    /// The page.
    pub page_id: String,
    /// When the page was made, as written.
    pub created_at: Option<String>,
    /// The page's records, exactly as published.
    pub records: Vec<R>,
}

impl<'de, R: Deserialize<'de>> RetryDataMessage<R> {
    /// Reads a retry data message: `listener_id`, `topic` and `page_id` strings and a `records`
    /// array. `type` and `version` are not checked: every message of the retry topic is one, and
    /// those written before version 2 lack `topic` and `records` anyway.
    pub fn read(payload: &'de [u8]) -> Result<RetryDataMessage<R>, ReadError> {
        let envelope = Envelope::<R>::read(payload)?;
        Ok(RetryDataMessage {
            listener_id: envelope.listener_id.ok_or(ReadError::Missing("listener_id"))?,
            topic: envelope.topic.ok_or(ReadError::Missing("topic"))?,
            page_id: envelope.page_id.ok_or(ReadError::Missing("page_id"))?,
            created_at: envelope.created_at,
            records: envelope.records.ok_or(ReadError::NoRecords)?,
        })
    }
}

/// The members of a page or retry data message, each `None` when absent or not of the type
/// written, so that the checks above decide (and name) what is wrong, in their order.
#[derive(Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
struct Envelope<R> {
    #[serde(rename = "type", default, deserialize_with = "loose_string")]
    message_type: Option<String>,
    #[serde(default, deserialize_with = "loose_u64")]
    version: Option<u64>,
    #[serde(default, deserialize_with = "loose_string")]
    listener_id: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    topic: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    page_id: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    created_at: Option<String>,
    #[serde(default, deserialize_with = "loose_array")]
    records: Option<Vec<R>>,
}

impl<'de, R: Deserialize<'de>> Envelope<R> {
    fn read(payload: &'de [u8]) -> Result<Envelope<R>, ReadError> {
        let starts_as_object = payload
            .iter()
            .find(|byte| !byte.is_ascii_whitespace())
            .is_some_and(|first| *first == b'{');
        // Not an object: only the error is left to find (serde would read an array as a struct).
        if !starts_as_object {
            return Err(match serde_json::from_slice::<IgnoredAny>(payload) {
                Err(error) => ReadError::NotJson(error),
                Ok(_) => ReadError::NotAnObject,
            });
        }
        serde_json::from_slice(payload).map_err(|error| {
            if error.is_syntax() || error.is_eof() {
                ReadError::NotJson(error)
            } else {
                ReadError::Unreadable(error)
            }
        })
    }
}

fn loose_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        _ => None,
    })
}

fn loose_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_u64())
}

fn loose_array<'de, D: Deserializer<'de>, R: Deserialize<'de>>(deserializer: D) -> Result<Option<Vec<R>>, D::Error> {
    deserializer.deserialize_any(LooseArray(PhantomData))
}

/// Reads an array of `R` in one pass; any other value is skipped and read as `None`.
struct LooseArray<R>(PhantomData<R>);

impl<'de, R: Deserialize<'de>> Visitor<'de> for LooseArray<R> {
    type Value = Option<Vec<R>>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // The hint is what the input claims; it only sizes the first allocation.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Some(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// One record of a page as read, its `data` left as JSON text.
#[derive(Debug, Deserialize)]
pub struct PageRecord<'a> {
    /// The record's id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// The request it came in.
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    /// Its trace key.
    #[serde(borrow)]
    pub trace_key: Cow<'a, str>,
    /// Link to the record in the source system.
    #[serde(borrow, default)]
    pub data_uri: Option<Cow<'a, str>>,
    /// When its request arrived.
    #[serde(borrow)]
    pub received_at: Cow<'a, str>,
    /// The provider's delivery id, when there was one.
    #[serde(borrow, default)]
    pub delivery_id: Option<Cow<'a, str>>,
    /// Mock output.
    #[serde(default)]
    pub mock: bool,
    /// Its ordering key (version 2 pages).
    #[serde(borrow, default)]
    pub ordering_key: Option<Cow<'a, str>>,
    /// The attempt of a record republished through the errors API (absent: 1).
    #[serde(default)]
    pub attempt: Option<u32>,
    /// The record itself.
    #[serde(borrow)]
    pub data: &'a RawValue,
}

/// Only the id of a record; the rest is skipped, not built.
#[derive(Debug, Deserialize)]
pub struct RecordId<'a> {
    /// The record's id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn fields<'a>(data_json: &'a str) -> RecordFields<'a> {
        RecordFields {
            id: "r1-0",
            request_id: "r1",
            trace_key: "T\"1",
            data_uri: Some("https://x/1"),
            received_at: "2026-01-01T00:00:00.010Z",
            delivery_id: None,
            mock: false,
            data_json,
        }
    }

    /// A record is written into one allocation: [`RECORD_FRAME_BYTES`] covers every member but
    /// `data` beyond their values (all of them present, no escapes), so a large record never
    /// grows — which copies it — on the way.
    #[test]
    fn a_record_is_written_without_growing_its_buffer() {
        let data = format!(r#"{{"note":"{}"}}"#, "x".repeat(16 * 1024));
        for data_uri in [None, Some("https://example.com/orders/1001")] {
            let fields = RecordFields {
                id: "0193e0c4-7d2a-7b3c-9f1e-2a4b6c8d0e1f-12",
                request_id: "0193e0c4-7d2a-7b3c-9f1e-2a4b6c8d0e1f",
                trace_key: "8d969eef6ecad3c29a3a629280e686cf",
                data_uri,
                received_at: "2026-01-01T00:00:00.010Z",
                delivery_id: Some("evt_1NGWtb2eZvKYlo2CkBAbkK5u"),
                mock: true,
                data_json: &data,
            };
            let ordering_key = "customer-42";
            let bytes = serialize_ordered_record(&fields, ordering_key);
            let values = fields.id.len()
                + fields.request_id.len()
                + fields.trace_key.len()
                + data_uri.map_or(0, str::len)
                + fields.received_at.len()
                + fields.delivery_id.map_or(0, str::len)
                + ordering_key.len();
            assert!(
                bytes.len() <= data.len() + values + RECORD_FRAME_BYTES,
                "{}",
                bytes.len()
            );
            // A buffer that grew has at least doubled.
            assert!(
                bytes.capacity() < 2 * bytes.len(),
                "{} for {}",
                bytes.capacity(),
                bytes.len()
            );
            assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
        }
    }

    /// The exact bytes of a known page and of its retry data: the contract, not just valid JSON.
    #[test]
    fn golden_page_and_retry_data_bytes() {
        let first = serialize_record(&fields(r#"{"a":1}"#));
        let second = serialize_record(&RecordFields {
            id: "r1-1",
            data_uri: None,
            delivery_id: Some("d-9"),
            mock: true,
            ..fields("[2,\"é\"]")
        });
        assert_eq!(
            String::from_utf8(first.clone()).unwrap(),
            r#"{"id":"r1-0","request_id":"r1","trace_key":"T\"1","data_uri":"https://x/1","received_at":"2026-01-01T00:00:00.010Z","data":{"a":1}}"#
        );
        assert_eq!(
            String::from_utf8(second.clone()).unwrap(),
            r#"{"id":"r1-1","request_id":"r1","trace_key":"T\"1","data_uri":null,"received_at":"2026-01-01T00:00:00.010Z","delivery_id":"d-9","mock":true,"data":[2,"é"]}"#
        );
        let records = [first, second];
        let page = serialize_page("orders", "p1", "2026-01-01T00:00:00.012Z", &records);
        let expected_records = format!(
            "[{},{}]",
            String::from_utf8_lossy(&records[0]),
            String::from_utf8_lossy(&records[1])
        );
        assert_eq!(
            String::from_utf8(page).unwrap(),
            format!(
                r#"{{"type":"page","version":1,"listener_id":"orders","page_id":"p1","created_at":"2026-01-01T00:00:00.012Z","records":{expected_records}}}"#
            )
        );
        let retry_data = serialize_retry_data("orders", "hookpipe.pages", "p1", "2026-01-01T00:00:00.012Z", &records);
        assert_eq!(
            String::from_utf8(retry_data).unwrap(),
            format!(
                r#"{{"type":"retry_data","version":2,"listener_id":"orders","topic":"hookpipe.pages","page_id":"p1","created_at":"2026-01-01T00:00:00.012Z","records":{expected_records}}}"#
            )
        );
        assert_eq!(
            serialize_page("l", "p", "c", &[]),
            br#"{"type":"page","version":1,"listener_id":"l","page_id":"p","created_at":"c","records":[]}"#
        );
    }

    #[test]
    fn page_headers_in_order() {
        let page = PageHeaders {
            listener_id: "l",
            page_id: "p",
            retry_data_stored: true,
            republished: false,
        };
        assert_eq!(
            page_headers(&page, ["r1", "r2"]),
            [
                ("hookpipe-listener-id", "l"),
                ("content-type", "application/json"),
                ("hookpipe-page-id", "p"),
                ("hookpipe-retry-data", "stored"),
                ("hookpipe-request-id", "r1"),
                ("hookpipe-request-id", "r2"),
            ]
        );
        let republished = PageHeaders {
            retry_data_stored: false,
            republished: true,
            ..page
        };
        assert_eq!(
            page_headers(&republished, ["r1"]),
            [
                ("hookpipe-listener-id", "l"),
                ("content-type", "application/json"),
                ("hookpipe-page-id", "p"),
                ("hookpipe-retry-data", "none"),
                ("hookpipe-retry", "true"),
                ("hookpipe-request-id", "r1"),
            ]
        );
        assert_eq!(
            retry_data_headers("l", "p"),
            [
                ("hookpipe-listener-id", "l"),
                ("content-type", "application/json"),
                ("hookpipe-page-id", "p"),
            ]
        );
    }

    #[test]
    fn page_message_is_valid_json() {
        let page = serialize_page(
            "l\"1",
            "p",
            "2026-01-01T00:00:00.000Z",
            &[b"{\"a\":1}".to_vec(), b"2".to_vec()],
        );
        let value: serde_json::Value = serde_json::from_slice(&page).unwrap();
        assert_eq!(value["listener_id"], "l\"1");
        assert_eq!(value["records"][1], 2);
        assert_eq!(value["version"], 1);
        assert!(value.get("topic").is_none());
    }

    #[test]
    fn retry_data_message_holds_the_records_and_their_topic() {
        let records = [b"{\"id\":\"r-0\"}".to_vec(), b"{\"id\":\"r-1\"}".to_vec()];
        let message = serialize_retry_data("l", "t\"", "p", "2026-01-01T00:00:00.000Z", &records);
        let value: serde_json::Value = serde_json::from_slice(&message).unwrap();
        assert_eq!(value["type"], "retry_data");
        assert_eq!(value["version"], 2);
        assert_eq!(value["topic"], "t\"");
        assert_eq!(value["page_id"], "p");
        assert_eq!(value["records"][1]["id"], "r-1");
    }

    #[test]
    fn reader_names_what_is_wrong_in_order() {
        for (payload, expected) in [
            ("[1]", "not a JSON object"),
            (r#"["page",1,"l","t","p","c",[]]"#, "not a JSON object"),
            ("\"page\"", "not a JSON object"),
            (r#"{"type":"sample"}"#, "`type` is not \"page\""),
            (r#"{"type":7,"version":1}"#, "`type` is not \"page\""),
            (
                r#"{"type":"page","version":3}"#,
                "unsupported `version` (this worker reads versions 1 to 2)",
            ),
            (
                r#"{"type":"page","version":1.0}"#,
                "unsupported `version` (this worker reads versions 1 to 2)",
            ),
            (
                r#"{"type":"page"}"#,
                "unsupported `version` (this worker reads versions 1 to 2)",
            ),
            (
                r#"{"type":"page","version":1,"page_id":"p","records":[]}"#,
                "no `listener_id`",
            ),
            (
                r#"{"type":"page","version":1,"listener_id":"","page_id":"p"}"#,
                "no `listener_id`",
            ),
            (
                r#"{"type":"page","version":1,"listener_id":"l","page_id":3}"#,
                "no `page_id`",
            ),
            (
                r#"{"type":"page","version":1,"listener_id":"l","page_id":"p"}"#,
                "no `records` array",
            ),
            (
                r#"{"type":"page","version":1,"listener_id":"l","page_id":"p","records":{"a":[1]}}"#,
                "no `records` array",
            ),
            (r#"{"type":"page","type":"page"}"#, "unreadable: duplicate field `type`"),
        ] {
            let error = PageMessage::<Value>::read(payload.as_bytes()).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{payload}: {error}");
        }
        // Not JSON: serde_json's own words, as when the page was parsed into a `Value`.
        for payload in [
            "",
            "nope",
            "{\"type\":\"page\"",
            "{\"type\":\"page\"} x",
            " {\"a\" 1}",
            "[1,",
        ] {
            let error = PageMessage::<Value>::read(payload.as_bytes()).unwrap_err().to_string();
            let parsed = serde_json::from_str::<Value>(payload).unwrap_err();
            assert_eq!(error, format!("not JSON: {parsed}"), "{payload}");
        }
    }

    #[test]
    fn reader_takes_what_it_does_not_know_and_loose_created_at() {
        let payload = br#" {"type":"page","version":1,"listener_id":"l","page_id":"p","created_at":5,
            "extra":{"x":[1,{"y":null}]},"records":[{"id":"a"},3]}"#;
        let page = PageMessage::<Value>::read(payload).unwrap();
        assert_eq!(page.created_at, None);
        assert_eq!(page.records, vec![json!({"id": "a"}), json!(3)]);
        let raw = PageMessage::<&RawValue>::read(payload).unwrap();
        assert_eq!(raw.records[0].get(), r#"{"id":"a"}"#);
    }

    #[test]
    fn retry_data_reader_needs_its_members() {
        let message = serialize_retry_data("", "t", "p", "c", &[b"{\"id\":\"x\"}".to_vec()]);
        let read = RetryDataMessage::<&RawValue>::read(&message).unwrap();
        assert_eq!((read.listener_id.as_str(), read.topic.as_str()), ("", "t"));
        assert_eq!(read.records[0].get(), r#"{"id":"x"}"#);
        for (payload, expected) in [
            (r#"{"records":1}"#, "no `listener_id`"),
            (r#"{"listener_id":"l","page_id":"p","records":[]}"#, "no `topic`"),
            (r#"{"listener_id":"l","topic":"t","records":[]}"#, "no `page_id`"),
            (r#"{"listener_id":"l","topic":"t","page_id":"p"}"#, "no `records` array"),
        ] {
            let error = RetryDataMessage::<&RawValue>::read(payload.as_bytes()).unwrap_err();
            assert_eq!(error.to_string(), expected, "{payload}");
        }
    }

    /// Writes a page of `records` and reads it back, raw and as values.
    fn round_trip(listener_id: &str, page_id: &str, created_at: &str, records: &[RecordFields<'_>]) {
        let serialized: Vec<Vec<u8>> = records.iter().map(serialize_record).collect();
        let page = serialize_page(listener_id, page_id, created_at, &serialized);
        let read = PageMessage::<&RawValue>::read(&page).unwrap();
        assert_eq!(read.version, PAGE_VERSION);
        assert_eq!(read.listener_id, listener_id);
        assert_eq!(read.page_id, page_id);
        assert_eq!(read.created_at.as_deref(), Some(created_at));
        assert_eq!(read.records.len(), records.len());
        for ((raw, written), fields) in read.records.iter().zip(&serialized).zip(records) {
            assert_eq!(
                raw.get().as_bytes(),
                written.as_slice(),
                "records are copied byte for byte"
            );
            let record: PageRecord<'_> = serde_json::from_str(raw.get()).unwrap();
            assert_eq!(record.id, fields.id);
            assert_eq!(record.request_id, fields.request_id);
            assert_eq!(record.trace_key, fields.trace_key);
            assert_eq!(record.data_uri.as_deref(), fields.data_uri);
            assert_eq!(record.received_at, fields.received_at);
            assert_eq!(record.delivery_id.as_deref(), fields.delivery_id);
            assert_eq!(record.mock, fields.mock);
            assert_eq!(record.attempt, None);
            assert_eq!(record.ordering_key, None);
            assert_eq!(record.data.get(), fields.data_json);
        }
        let as_values = PageMessage::<Value>::read(&page).unwrap();
        assert_eq!(as_values.records.len(), records.len());
        let retry_data = serialize_retry_data(listener_id, "the-topic", page_id, created_at, &serialized);
        let read = RetryDataMessage::<&RawValue>::read(&retry_data).unwrap();
        assert_eq!(
            (read.listener_id.as_str(), read.topic.as_str()),
            (listener_id, "the-topic")
        );
        assert_eq!(read.page_id, page_id);
        let raw_records: Vec<&str> = read.records.iter().map(|raw| raw.get()).collect();
        let written: Vec<&str> = serialized.iter().map(|r| std::str::from_utf8(r).unwrap()).collect();
        assert_eq!(raw_records, written);
        for raw in read.records {
            let id: RecordId<'_> = serde_json::from_str(raw.get()).unwrap();
            assert!(records.iter().any(|fields| fields.id == id.id));
        }
    }

    #[test]
    fn writer_and_reader_agree() {
        round_trip(
            "orders",
            "p1",
            "2026-01-01T00:00:00.012Z",
            &[
                fields(r#"{"a":1}"#),
                RecordFields {
                    delivery_id: Some("d"),
                    mock: true,
                    data_uri: None,
                    ..fields("\"\\u0000\"")
                },
            ],
        );
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-z0-9\"\\\\\n\u{e9}\u{1F600}/ -]{1,12}"
    }

    fn json_data() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "[a-z\"\\\\\n\u{e9}{}\\[\\],: ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-z\"]{0,3}", inner), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
        .prop_map(|value| value.to_string())
    }

    type Generated = (String, String, Option<String>, Option<String>, bool, String);

    fn generated_record() -> impl Strategy<Value = Generated> {
        (
            text(),
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            any::<bool>(),
            json_data(),
        )
    }

    proptest! {
        #[test]
        fn any_page_written_reads_back(
            listener_id in text(),
            page_id in text(),
            created_at in text(),
            generated in proptest::collection::vec(generated_record(), 0..5),
        ) {
            let ids: Vec<String> = (0..generated.len()).map(|index| record_id("req", index)).collect();
            let records: Vec<RecordFields<'_>> = generated
                .iter()
                .zip(&ids)
                .map(|((request_id, trace_key, data_uri, delivery_id, mock, data_json), id)| RecordFields {
                    id,
                    request_id,
                    trace_key,
                    data_uri: data_uri.as_deref(),
                    received_at: "2026-01-01T00:00:00.000Z",
                    delivery_id: delivery_id.as_deref(),
                    mock: *mock,
                    data_json,
                })
                .collect();
            round_trip(&listener_id, &page_id, &created_at, &records);
        }
    }

    /// Version 2 (a listener with an ordering key): the exact bytes, each record's key before
    /// its data; read back with its keys, while version 1 pages still read as before.
    #[test]
    fn ordered_pages_are_version_2_and_version_1_still_reads() {
        let record = serialize_ordered_record(&fields(r#"{"customer":"c\"1"}"#), "c\"1");
        assert_eq!(
            String::from_utf8(record.clone()).unwrap(),
            r#"{"id":"r1-0","request_id":"r1","trace_key":"T\"1","data_uri":"https://x/1","received_at":"2026-01-01T00:00:00.010Z","ordering_key":"c\"1","data":{"customer":"c\"1"}}"#
        );
        let page = serialize_ordered_page("orders", "p2", "2026-01-01T00:00:00.012Z", &[record]);
        assert!(page.starts_with(br#"{"type":"page","version":2,"listener_id":"orders","page_id":"p2","#));
        let read = PageMessage::<&RawValue>::read(&page).unwrap();
        assert_eq!(read.version, ORDERED_PAGE_VERSION);
        let first: PageRecord<'_> = serde_json::from_str(read.records[0].get()).unwrap();
        assert_eq!(first.ordering_key.as_deref(), Some("c\"1"));
        assert_eq!(first.data.get(), r#"{"customer":"c\"1"}"#);

        // A version 1 page as written before version 2 existed (bytes, not the writer).
        let old = br#"{"type":"page","version":1,"listener_id":"orders","page_id":"p1","created_at":"2026-01-01T00:00:00.012Z","records":[{"id":"r1-0","request_id":"r1","trace_key":"A","data_uri":null,"received_at":"2026-01-01T00:00:00.010Z","data":{"a":1}}]}"#;
        let read = PageMessage::<Value>::read(old).unwrap();
        assert_eq!(read.version, PAGE_VERSION);
        assert_eq!(read.records[0]["data"], json!({"a": 1}));
        let raw = PageMessage::<&RawValue>::read(old).unwrap();
        let record: PageRecord<'_> = serde_json::from_str(raw.records[0].get()).unwrap();
        assert_eq!(record.ordering_key, None);
        // Records of unordered listeners are written as they always were.
        assert!(!String::from_utf8(serialize_record(&fields("1")))
            .unwrap()
            .contains("ordering_key"));
    }

    #[test]
    fn a_quarantine_page_is_the_contract_byte_for_byte() {
        let errors = json!([{"instance_path": "/qty", "schema_path": "/properties/qty/minimum", "message": "value is less than the minimum of 1"}]);
        let record = serialize_quarantined_record(&QuarantinedFields {
            id: "r1-2",
            request_id: "r1",
            received_at: "2026-01-01T00:00:00.010Z",
            delivery_id: Some("d\"1"),
            mock: false,
            errors: &errors,
            errors_truncated: true,
            data_json: r#"{"qty":0}"#,
        });
        let page = serialize_quarantine_page("orders", "p1", "2026-01-01T00:00:01.000Z", &[record]);
        assert_eq!(
            String::from_utf8(page.clone()).unwrap(),
            concat!(
                r#"{"type":"quarantine","version":1,"listener_id":"orders","page_id":"p1","created_at":"2026-01-01T00:00:01.000Z","records":["#,
                r#"{"id":"r1-2","request_id":"r1","received_at":"2026-01-01T00:00:00.010Z","delivery_id":"d\"1","#,
                r#""errors":[{"instance_path":"/qty","message":"value is less than the minimum of 1","schema_path":"/properties/qty/minimum"}],"#,
                r#""errors_truncated":true,"data":{"qty":0}}]}"#
            )
        );
        let parsed: serde_json::Value = serde_json::from_slice(&page).unwrap();
        assert_eq!(parsed["records"][0]["errors"], errors);
        let headers = quarantine_headers("orders", "p1", ["r1", "r2"]);
        assert_eq!(
            headers,
            [
                (HEADER_LISTENER_ID, "orders"),
                (HEADER_CONTENT_TYPE, PAGE_CONTENT_TYPE),
                (HEADER_PAGE_ID, "p1"),
                (HEADER_REQUEST_ID, "r1"),
                (HEADER_REQUEST_ID, "r2"),
            ]
        );
    }
}
