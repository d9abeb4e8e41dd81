//! CloudEvents 1.0 in the Kafka protocol binding: how a listener with `output_format =
//! "cloudevents_binary"` or `"cloudevents_structured"` publishes each record as one event, and
//! how the import worker, `hookpipe tail` and the errors API read such events back.
//!
//! - **Binary mode**: the record's JSON is the message value; `content-type: application/json`
//!   is its `datacontenttype`; every other attribute is a `ce_<name>` header.
//! - **Structured mode**: the value is the event in the JSON event format, `content-type:
//!   application/cloudevents+json; charset=UTF-8`, the record as its `data`.
//!
//! Attributes: `specversion` 1.0, `id` (the record id), `source` (`/listeners/{id}` unless the
//! listener names one), `type` (its template's, or `hookpipe.record`), `time` (when the request
//! arrived), `datacontenttype`, `partitionkey` (the message key, as the binding's Partitioning
//! extension says), and hookpipe's extensions (lower-case letters and digits, at most 20): see
//! the `EXT_*` constants. No other header: the binding's readers (the SDKs) take every header of
//! a structured event, or every `ce_` header of a binary one, as an attribute.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};

use super::write_json_string;

/// `specversion` of the events written, and the only one read.
pub const SPEC_VERSION: &str = "1.0";
/// `content-type` of a structured event.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";
/// `datacontenttype` of the events written: a record is JSON.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// Prefix of a binary event's attribute headers.
pub const HEADER_PREFIX: &str = "ce_";
/// The Kafka message key (the Partitioning extension).
pub const PARTITION_KEY: &str = "partitionkey";
/// Extension: the listener id.
pub const EXT_LISTENER: &str = "hookpipelistener";
/// Extension: the request id.
pub const EXT_REQUEST_ID: &str = "hookpiperequestid";
/// Extension: the record's trace key.
pub const EXT_TRACE: &str = "hookpipetrace";
/// Extension: the record's data URI, when it has one.
pub const EXT_DATA_URI: &str = "hookpipedatauri";
/// Extension: the provider's delivery id, when there was one.
pub const EXT_DELIVERY_ID: &str = "hookpipedeliveryid";
/// Extension: `true` on mock output.
pub const EXT_MOCK: &str = "hookpipemock";
/// Extension: the attempt of a record republished through the errors API (2 or more).
pub const EXT_ATTEMPT: &str = "hookpipeattempt";
/// Extension: `none` when the listener keeps no retry data of records that fail.
pub const EXT_RETRY_DATA: &str = "hookpiperetrydata";
/// The record member holding the event's own attributes (`type`, `source`, …) as the worker reads it.
pub const RECORD_EVENT: &str = "event";

/// The two content modes of the Kafka binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Attributes in `ce_*` headers, the data as the value.
    Binary,
    /// The whole event, JSON, as the value.
    Structured,
}

/// What one event says, already computed by the page stage (or taken from a failed record).
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
    /// `id`: the record's id (`wire::record_id`).
    pub id: &'a str,
    /// `source`.
    pub source: &'a str,
    /// `type`.
    pub event_type: &'a str,
    /// `time`: when the request arrived, RFC 3339 (empty: none).
    pub time: &'a str,
    /// The listener ([`EXT_LISTENER`]).
    pub listener_id: &'a str,
    /// The request ([`EXT_REQUEST_ID`]).
    pub request_id: &'a str,
    /// The trace key ([`EXT_TRACE`]).
    pub trace_key: &'a str,
    /// The data URI ([`EXT_DATA_URI`]), if any.
    pub data_uri: Option<&'a str>,
    /// The provider's delivery id ([`EXT_DELIVERY_ID`]), if any.
    pub delivery_id: Option<&'a str>,
    /// Mock output ([`EXT_MOCK`]).
    pub mock: bool,
    /// The attempt of a republished record ([`EXT_ATTEMPT`]); `None` for the first.
    pub attempt: Option<u32>,
    /// Whether the listener keeps retry data of failed records ([`EXT_RETRY_DATA`] when not).
    pub retry_data_stored: bool,
    /// The message key, written as `partitionkey`.
    pub partition_key: &'a str,
    /// The record, as JSON text (the value, or `data`, as is).
    pub data_json: &'a str,
}

/// An event ready to publish: the message value and its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    /// The message value.
    pub payload: Vec<u8>,
    /// Its headers, in order.
    pub headers: Vec<(String, String)>,
}

impl EncodedEvent {
    /// Bytes of the Kafka message: its value and its headers' names and values (a binary
    /// event's attributes, which can be as large as its data: the trace key, the data URI).
    pub fn message_bytes(&self) -> usize {
        self.payload.len()
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
    }
}

/// One attribute value: the CloudEvents types hookpipe writes.
enum Attribute<'a> {
    Text(&'a str),
    Boolean(bool),
    Integer(u32),
}

/// Every attribute but `data` and `datacontenttype`, in the order written.
fn attributes<'a>(fields: &EventFields<'a>) -> Vec<(&'static str, Attribute<'a>)> {
    let mut attributes = vec![
        ("specversion", Attribute::Text(SPEC_VERSION)),
        ("id", Attribute::Text(fields.id)),
        ("source", Attribute::Text(fields.source)),
        ("type", Attribute::Text(fields.event_type)),
    ];
    // A record read back without its arrival time is republished without one (`time` is optional).
    if !fields.time.is_empty() {
        attributes.push(("time", Attribute::Text(fields.time)));
    }
    attributes.extend([
        (PARTITION_KEY, Attribute::Text(fields.partition_key)),
        (EXT_LISTENER, Attribute::Text(fields.listener_id)),
        (EXT_REQUEST_ID, Attribute::Text(fields.request_id)),
        (EXT_TRACE, Attribute::Text(fields.trace_key)),
    ]);
    if let Some(data_uri) = fields.data_uri {
        attributes.push((EXT_DATA_URI, Attribute::Text(data_uri)));
    }
    if let Some(delivery_id) = fields.delivery_id {
        attributes.push((EXT_DELIVERY_ID, Attribute::Text(delivery_id)));
    }
    if fields.mock {
        attributes.push((EXT_MOCK, Attribute::Boolean(true)));
    }
    if let Some(attempt) = fields.attempt.filter(|attempt| *attempt > 1) {
        attributes.push((EXT_ATTEMPT, Attribute::Integer(attempt)));
    }
    if !fields.retry_data_stored {
        attributes.push((EXT_RETRY_DATA, Attribute::Text(super::RETRY_DATA_NONE)));
    }
    attributes
}

/// Encodes one event in `mode`.
pub fn encode(mode: Mode, fields: &EventFields<'_>) -> EncodedEvent {
    match mode {
        Mode::Binary => encode_binary(fields),
        Mode::Structured => encode_structured(fields),
    }
}

fn encode_binary(fields: &EventFields<'_>) -> EncodedEvent {
    let mut headers: Vec<(String, String)> = attributes(fields)
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                Attribute::Text(text) => text.to_string(),
                Attribute::Boolean(flag) => flag.to_string(),
                Attribute::Integer(number) => number.to_string(),
            };
            (format!("{HEADER_PREFIX}{name}"), value)
        })
        .collect();
    headers.push((super::HEADER_CONTENT_TYPE.into(), DATA_CONTENT_TYPE.into()));
    EncodedEvent {
        payload: fields.data_json.as_bytes().to_vec(),
        headers,
    }
}

fn encode_structured(fields: &EventFields<'_>) -> EncodedEvent {
    let mut out = Vec::with_capacity(fields.data_json.len() + 400);
    out.push(b'{');
    for (index, (name, value)) in attributes(fields).into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_json_string(&mut out, name);
        out.push(b':');
        match value {
            Attribute::Text(text) => write_json_string(&mut out, text),
            Attribute::Boolean(flag) => out.extend_from_slice(flag.to_string().as_bytes()),
            Attribute::Integer(number) => out.extend_from_slice(number.to_string().as_bytes()),
        }
        if name == "type" {
            out.extend_from_slice(br#","datacontenttype":"#);
            write_json_string(&mut out, DATA_CONTENT_TYPE);
        }
    }
    out.extend_from_slice(br#","data":"#);
    out.extend_from_slice(fields.data_json.as_bytes());
    out.push(b'}');
    EncodedEvent {
        payload: out,
        headers: vec![(super::HEADER_CONTENT_TYPE.into(), STRUCTURED_CONTENT_TYPE.into())],
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Why a message that says it is a CloudEvent is not a readable one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// A structured event that is not a JSON object.
    #[error("structured CloudEvent is not a JSON object")]
    NotAnObject,
    /// A header that is not UTF-8.
    #[error("header `{0}` is not UTF-8")]
    NotUtf8(String),
    /// `specversion` absent or not 1.0.
    #[error("unsupported CloudEvents `specversion` (this worker reads 1.0)")]
    UnsupportedVersion,
    /// A required attribute absent, empty or not a string.
    #[error("CloudEvent has no `{0}`")]
    Missing(&'static str),
    /// `data` that cannot be read as JSON.
    #[error("CloudEvent data is not {0}")]
    Data(String),
    /// A content type hookpipe does not read (batch mode, another event format).
    #[error("unsupported content type `{0}`")]
    ContentType(String),
}

/// An event as read: its required attributes checked, every other one kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadEvent {
    /// The mode it was in.
    pub mode: Mode,
    /// `id` (never empty).
    pub id: String,
    /// `source` (never empty).
    pub source: String,
    /// `type` (never empty).
    pub event_type: String,
    /// Every other attribute (`time`, `datacontenttype`, the extensions), by name.
    pub attributes: BTreeMap<String, Value>,
    /// `data`: JSON data as JSON, text as a string; absent: `null`.
    pub data: Value,
}

/// Whether a message is a CloudEvent, and in which mode, by its headers alone: a `content-type`
/// of `application/cloudevents…` is structured, a `ce_specversion` header binary; anything else
/// (a page) `None`.
pub fn mode_of<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Option<Mode> {
    let mut mode = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(super::HEADER_CONTENT_TYPE)
            && value.len() >= 22
            && value[..22].eq_ignore_ascii_case(b"application/cloudevent")
        {
            return Some(Mode::Structured);
        }
        if name.eq_ignore_ascii_case("ce_specversion") {
            mode = Some(Mode::Binary);
        }
    }
    mode
}

/// Reads a message as a CloudEvent, when its headers say it is one ([`mode_of`]).
pub fn read<'a>(headers: &[(&'a str, &'a [u8])], payload: &[u8]) -> Option<Result<ReadEvent, EventError>> {
    let mode = mode_of(headers.iter().copied())?;
    Some(match mode {
        Mode::Binary => read_binary(headers, payload),
        Mode::Structured => read_structured(headers, payload),
    })
}

fn read_binary(headers: &[(&str, &[u8])], payload: &[u8]) -> Result<ReadEvent, EventError> {
    let mut attributes = BTreeMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let attribute = if lower == super::HEADER_CONTENT_TYPE {
            "datacontenttype".to_string()
        } else if let Some(attribute) = lower.strip_prefix(HEADER_PREFIX) {
            attribute.to_string()
        } else {
            continue;
        };
        let text = std::str::from_utf8(value).map_err(|_| EventError::NotUtf8(name.to_string()))?;
        attributes.insert(attribute, Value::String(text.to_string()));
    }
    let content_type = attributes
        .get("datacontenttype")
        .and_then(Value::as_str)
        .map(str::to_string);
    let data = if payload.is_empty() {
        Value::Null
    } else {
        data_of(payload, content_type.as_deref())?
    };
    checked(Mode::Binary, attributes, data)
}

fn read_structured(headers: &[(&str, &[u8])], payload: &[u8]) -> Result<ReadEvent, EventError> {
    let content_type = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(super::HEADER_CONTENT_TYPE))
        .map(|(_, value)| String::from_utf8_lossy(value).to_ascii_lowercase())
        .unwrap_or_default();
    if !content_type.starts_with("application/cloudevents+json") {
        return Err(EventError::ContentType(content_type));
    }
    let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(payload) else {
        return Err(EventError::NotAnObject);
    };
    let mut attributes = BTreeMap::new();
    let mut data = Value::Null;
    let mut data_base64 = None;
    for (name, value) in members {
        match name.as_str() {
            "data" => data = value,
            "data_base64" => data_base64 = Some(value),
            _ => {
                attributes.insert(name, value);
            }
        }
    }
    if let Some(encoded) = data_base64 {
        let bytes = encoded
            .as_str()
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .ok_or_else(|| EventError::Data("base64 (`data_base64`)".into()))?;
        let content_type = attributes.get("datacontenttype").and_then(Value::as_str);
        data = data_of(&bytes, content_type)?;
    }
    checked(Mode::Structured, attributes, data)
}

/// The data of a binary event (or a structured event's `data_base64`): JSON when its content type
/// is JSON or unsaid, text as a string; anything else is not a record.
fn data_of(bytes: &[u8], content_type: Option<&str>) -> Result<Value, EventError> {
    let media = content_type
        .map(|text| text.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_else(|| DATA_CONTENT_TYPE.to_string());
    if media == "application/json" || media == "text/json" || media.ends_with("+json") {
        return serde_json::from_slice(bytes).map_err(|error| EventError::Data(format!("JSON: {error}")));
    }
    if media.starts_with("text/") {
        return std::str::from_utf8(bytes)
            .map(|text| Value::String(text.to_string()))
            .map_err(|_| EventError::Data("UTF-8 text".into()));
    }
    Err(EventError::Data(format!("JSON or text (datacontenttype `{media}`)")))
}

/// Checks `specversion` and takes out the required `id`, `source` and `type`.
fn checked(mode: Mode, mut attributes: BTreeMap<String, Value>, data: Value) -> Result<ReadEvent, EventError> {
    if attributes.get("specversion").and_then(Value::as_str) != Some(SPEC_VERSION) {
        return Err(EventError::UnsupportedVersion);
    }
    let mut required = |name: &'static str| match attributes.remove(name) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        _ => Err(EventError::Missing(name)),
    };
    let id = required("id")?;
    let source = required("source")?;
    let event_type = required("type")?;
    Ok(ReadEvent {
        mode,
        id,
        source,
        event_type,
        attributes,
        data,
    })
}

impl ReadEvent {
    /// An attribute as text: a string, or a number or boolean as written (binary mode has only
    /// strings, structured mode typed values).
    fn text(&self, name: &str) -> Option<String> {
        match self.attributes.get(name)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }

    /// Its listener: the [`EXT_LISTENER`] extension, else the id in a default `source`
    /// (`/listeners/{id}`).
    pub fn listener_id(&self) -> Option<String> {
        self.text(EXT_LISTENER).filter(|id| !id.is_empty()).or_else(|| {
            self.source
                .strip_prefix("/listeners/")
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .map(str::to_string)
        })
    }

    /// Whether its listener keeps retry data of records that fail (absent [`EXT_RETRY_DATA`]: yes).
    pub fn retry_data_stored(&self) -> bool {
        self.text(EXT_RETRY_DATA).as_deref() != Some(super::RETRY_DATA_NONE)
    }

    /// The event as the import worker's record: a page record's members (`id`, `request_id`,
    /// `trace_key`, `data_uri`, `received_at`, [`delivery_id`], [`mock`], [`attempt`], `data`)
    /// from its attributes, and under [`RECORD_EVENT`] the attributes a page record has no
    /// member for (`type`, `source`, `subject`, other extensions), so that a target can route
    /// by type and a retry is published as the same event.
    pub fn into_record(self) -> Value {
        let mut record = Map::new();
        let text = |name: &str| self.text(name).map_or(Value::Null, Value::String);
        record.insert("id".into(), Value::String(self.id.clone()));
        record.insert("request_id".into(), text(EXT_REQUEST_ID));
        record.insert(
            "trace_key".into(),
            Value::String(self.text(EXT_TRACE).unwrap_or_default()),
        );
        record.insert("data_uri".into(), text(EXT_DATA_URI));
        record.insert("received_at".into(), text("time"));
        if let Some(delivery_id) = self.text(EXT_DELIVERY_ID) {
            record.insert("delivery_id".into(), Value::String(delivery_id));
        }
        if self.text(EXT_MOCK).as_deref() == Some("true") {
            record.insert("mock".into(), Value::Bool(true));
        }
        if let Some(attempt) = self.text(EXT_ATTEMPT).and_then(|text| text.parse::<u32>().ok()) {
            record.insert("attempt".into(), Value::from(attempt));
        }
        let mut event = Map::new();
        event.insert("type".into(), Value::String(self.event_type));
        event.insert("source".into(), Value::String(self.source));
        for (name, value) in self.attributes {
            let mapped = matches!(
                name.as_str(),
                "time" | "datacontenttype" | PARTITION_KEY | "specversion"
            ) || name.starts_with("hookpipe");
            if !mapped {
                event.insert(name, value);
            }
        }
        record.insert(RECORD_EVENT.into(), Value::Object(event));
        record.insert("data".into(), self.data);
        Value::Object(record)
    }

    /// The event in the JSON event format (what `hookpipe tail` prints for a binary event).
    pub fn to_structured(&self) -> Value {
        let mut event = Map::new();
        event.insert("specversion".into(), Value::String(SPEC_VERSION.into()));
        event.insert("id".into(), Value::String(self.id.clone()));
        event.insert("source".into(), Value::String(self.source.clone()));
        event.insert("type".into(), Value::String(self.event_type.clone()));
        for (name, value) in &self.attributes {
            if name != "specversion" {
                event.insert(name.clone(), value.clone());
            }
        }
        event.insert("data".into(), self.data.clone());
        Value::Object(event)
    }
}

/// The event a failed record (as the worker read it, [`ReadEvent::into_record`]) is republished
/// as, with `attempt`; `None` when the record lacks what an event needs (an `id`, `data`).
pub fn fields_of_record<'a>(
    record: &'a Value,
    listener_id: &'a str,
    default_source: &'a str,
    data_json: &'a str,
    attempt: u32,
) -> Option<EventFields<'a>> {
    let text = |name: &str| record.get(name).and_then(Value::as_str);
    let event = record.get(RECORD_EVENT);
    let event_text = |name: &str| event.and_then(|event| event.get(name)).and_then(Value::as_str);
    Some(EventFields {
        id: text("id").filter(|id| !id.is_empty())?,
        source: event_text("source").unwrap_or(default_source),
        event_type: event_text("type").unwrap_or(crate::config::cloudevents::DEFAULT_EVENT_TYPE),
        time: text("received_at").unwrap_or_default(),
        listener_id,
        request_id: text("request_id").unwrap_or_default(),
        trace_key: text("trace_key").unwrap_or_default(),
        data_uri: text("data_uri"),
        delivery_id: text("delivery_id"),
        mock: record.get("mock").and_then(Value::as_bool).unwrap_or(false),
        attempt: Some(attempt),
        retry_data_stored: true,
        partition_key: listener_id,
        data_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn fields(data_json: &str) -> EventFields<'_> {
        EventFields {
            id: "r1-0",
            source: "/listeners/gh",
            event_type: "com.github.push",
            time: "2026-01-01T00:00:00.010Z",
            listener_id: "gh",
            request_id: "r1",
            trace_key: "T\"1",
            data_uri: None,
            delivery_id: Some("d-9"),
            mock: false,
            attempt: None,
            retry_data_stored: true,
            partition_key: "gh",
            data_json,
        }
    }

    fn borrowed(headers: &[(String, String)]) -> Vec<(&str, &[u8])> {
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect()
    }

    /// The spec's rules for attributes: the required four present and non-empty, `specversion`
    /// 1.0, every name 1-20 lower-case letters or digits, `time` RFC 3339.
    fn assert_valid(attributes: &Map<String, Value>) {
        for required in ["id", "source", "specversion", "type"] {
            let value = attributes.get(required).and_then(Value::as_str);
            assert!(
                value.is_some_and(|text| !text.is_empty()),
                "{required} in {attributes:?}"
            );
        }
        assert_eq!(attributes["specversion"], "1.0");
        for name in attributes.keys().filter(|name| *name != "data") {
            assert!(
                (1..=20).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "attribute name `{name}`"
            );
        }
        if let Some(time) = attributes.get("time").and_then(Value::as_str) {
            let bytes = time.as_bytes();
            assert!(
                time.len() >= 20 && bytes[4] == b'-' && bytes[10] == b'T' && time.ends_with('Z'),
                "{time}"
            );
        }
    }

    #[test]
    fn binary_mode_is_ce_headers_and_the_record_as_the_value() {
        let event = encode(Mode::Binary, &fields(r#"{"a":1}"#));
        assert_eq!(event.payload, br#"{"a":1}"#);
        let headers: Vec<(&str, &str)> = event.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            headers,
            [
                ("ce_specversion", "1.0"),
                ("ce_id", "r1-0"),
                ("ce_source", "/listeners/gh"),
                ("ce_type", "com.github.push"),
                ("ce_time", "2026-01-01T00:00:00.010Z"),
                ("ce_partitionkey", "gh"),
                ("ce_hookpipelistener", "gh"),
                ("ce_hookpiperequestid", "r1"),
                ("ce_hookpipetrace", "T\"1"),
                ("ce_hookpipedeliveryid", "d-9"),
                ("content-type", "application/json"),
            ]
        );
        let mut attributes: Map<String, Value> = headers
            .iter()
            .filter_map(|(name, value)| Some((name.strip_prefix("ce_")?.to_string(), Value::from(*value))))
            .collect();
        attributes.insert("datacontenttype".into(), "application/json".into());
        assert_valid(&attributes);
    }

    #[test]
    fn structured_mode_is_the_json_event_format_byte_for_byte() {
        let event = encode(
            Mode::Structured,
            &EventFields {
                data_uri: Some("https://x/1"),
                mock: true,
                attempt: Some(3),
                retry_data_stored: false,
                ..fields(r#"[1,"é"]"#)
            },
        );
        assert_eq!(
            event.headers,
            [("content-type".to_string(), STRUCTURED_CONTENT_TYPE.to_string())]
        );
        assert_eq!(
            String::from_utf8(event.payload.clone()).unwrap(),
            concat!(
                r#"{"specversion":"1.0","id":"r1-0","source":"/listeners/gh","type":"com.github.push","#,
                r#""datacontenttype":"application/json","time":"2026-01-01T00:00:00.010Z","partitionkey":"gh","#,
                r#""hookpipelistener":"gh","hookpiperequestid":"r1","hookpipetrace":"T\"1","#,
                r#""hookpipedatauri":"https://x/1","hookpipedeliveryid":"d-9","hookpipemock":true,"#,
                r#""hookpipeattempt":3,"hookpiperetrydata":"none","data":[1,"é"]}"#
            )
        );
        let Value::Object(mut attributes) = serde_json::from_slice(&event.payload).unwrap() else {
            panic!("an object")
        };
        assert_eq!(attributes.remove("data"), Some(json!([1, "é"])));
        assert_valid(&attributes);
    }

    #[test]
    fn every_event_written_reads_back_as_the_record_and_republishes_as_itself() {
        for mode in [Mode::Binary, Mode::Structured] {
            let written = EventFields {
                data_uri: Some("https://x/1"),
                mock: true,
                ..fields(r#"{"n":"x"}"#)
            };
            let event = encode(mode, &written);
            let read_back = read(&borrowed(&event.headers), &event.payload).unwrap().unwrap();
            assert_eq!(read_back.mode, mode);
            assert_eq!(read_back.listener_id().as_deref(), Some("gh"));
            assert!(read_back.retry_data_stored());
            let record = read_back.into_record();
            assert_eq!(
                record,
                json!({"id": "r1-0", "request_id": "r1", "trace_key": "T\"1", "data_uri": "https://x/1",
                    "received_at": "2026-01-01T00:00:00.010Z", "delivery_id": "d-9", "mock": true,
                    "event": {"type": "com.github.push", "source": "/listeners/gh"}, "data": {"n": "x"}}),
                "{mode:?}"
            );
            let data_json = record["data"].to_string();
            let again = fields_of_record(&record, "gh", "/elsewhere", &data_json, 2).unwrap();
            let republished = encode(mode, &again);
            let expected = encode(
                mode,
                &EventFields {
                    attempt: Some(2),
                    ..written
                },
            );
            assert_eq!(republished, expected, "{mode:?}: the same event, next attempt");
            let read_again = read(&borrowed(&republished.headers), &republished.payload)
                .unwrap()
                .unwrap();
            assert_eq!(read_again.into_record()["attempt"], 2);
        }
    }

    #[test]
    fn pages_are_not_events_and_modes_are_told_by_headers() {
        let page_headers = [
            ("hookpipe-listener-id", &b"l"[..]),
            ("content-type", b"application/json"),
        ];
        assert_eq!(mode_of(page_headers), None);
        assert!(read(&page_headers, b"{}").is_none());
        assert_eq!(mode_of([("CE_SpecVersion", &b"1.0"[..])]), Some(Mode::Binary));
        assert_eq!(
            mode_of([("Content-Type", &b"application/cloudevents+json"[..])]),
            Some(Mode::Structured)
        );
    }

    #[test]
    fn readers_name_what_is_wrong() {
        let binary = |pairs: &[(&str, &str)], payload: &[u8]| {
            let headers: Vec<(&str, &[u8])> = pairs.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
            read(&headers, payload).unwrap().map_err(|error| error.to_string())
        };
        let base = [
            ("ce_specversion", "1.0"),
            ("ce_id", "e1"),
            ("ce_source", "/s"),
            ("ce_type", "t"),
        ];
        assert!(binary(&base, b"{}").is_ok());
        for (drop, expected) in [
            (0, "unsupported CloudEvents `specversion` (this worker reads 1.0)"),
            (1, "CloudEvent has no `id`"),
            (2, "CloudEvent has no `source`"),
            (3, "CloudEvent has no `type`"),
        ] {
            let mut headers = base.to_vec();
            if drop == 0 {
                headers[0].1 = "0.3";
            } else {
                headers[drop].1 = "";
            }
            assert_eq!(binary(&headers, b"{}").unwrap_err(), expected);
        }
        let error = binary(&base, b"{oops").unwrap_err();
        assert!(error.starts_with("CloudEvent data is not JSON"), "{error}");
        let mut text = base.to_vec();
        text.push(("content-type", "text/plain; charset=utf-8"));
        assert_eq!(binary(&text, b"hi").unwrap().data, json!("hi"));
        let mut png = base.to_vec();
        png.push(("content-type", "image/png"));
        assert!(binary(&png, b"\x89PNG").is_err());
        let empty = binary(&base, b"").unwrap();
        assert_eq!(empty.data, Value::Null, "an event without data");
        assert_eq!(empty.listener_id(), None, "no listener named");

        let structured = |content_type: &str, payload: &str| {
            read(&[("content-type", content_type.as_bytes())], payload.as_bytes())
                .unwrap()
                .map_err(|error| error.to_string())
        };
        let event =
            r#"{"specversion":"1.0","id":"e","source":"/listeners/orders","type":"t","subject":"s","data":{"a":1}}"#;
        let read_back = structured("application/cloudevents+json", event).unwrap();
        assert_eq!(
            read_back.listener_id().as_deref(),
            Some("orders"),
            "from the default source"
        );
        assert_eq!(
            read_back.into_record()["event"],
            json!({"type": "t", "source": "/listeners/orders", "subject": "s"})
        );
        assert_eq!(
            structured("application/cloudevents-batch+json", "[]").unwrap_err(),
            "unsupported content type `application/cloudevents-batch+json`"
        );
        assert_eq!(
            structured("application/cloudevents+json", "[1]").unwrap_err(),
            "structured CloudEvent is not a JSON object"
        );
        assert_eq!(
            structured(
                "application/cloudevents+json",
                r#"{"specversion":"1.0","id":"e","source":"s","type":7}"#
            )
            .unwrap_err(),
            "CloudEvent has no `type`"
        );
        let base64 = r#"{"specversion":"1.0","id":"e","source":"s","type":"t","data_base64":"eyJhIjoxfQ=="}"#;
        assert_eq!(
            structured("application/cloudevents+json", base64).unwrap().data,
            json!({"a": 1})
        );
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-z0-9\"\\\\\n\t\u{e9}\u{1F600}/:{} -]{1,12}"
    }

    fn json_data() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z\"\\\\\n\u{e9}{}\\[\\],: ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-z\"]{0,3}", inner), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the texts (quotes, newlines, non-ASCII) and the data, an event written in
        /// either mode reads back as what was written.
        #[test]
        fn any_event_written_reads_back(
            id in text(), source in text(), event_type in text(), time in text(), listener in text(),
            request_id in text(), trace in text(), data_uri in proptest::option::of(text()),
            delivery_id in proptest::option::of(text()), mock in any::<bool>(),
            attempt in proptest::option::of(2u32..100), stored in any::<bool>(), data in json_data(),
        ) {
            let data_json = data.to_string();
            let fields = EventFields {
                id: &id, source: &source, event_type: &event_type, time: &time, listener_id: &listener,
                request_id: &request_id, trace_key: &trace, data_uri: data_uri.as_deref(),
                delivery_id: delivery_id.as_deref(), mock, attempt, retry_data_stored: stored,
                partition_key: &listener, data_json: &data_json,
            };
            for mode in [Mode::Binary, Mode::Structured] {
                let event = encode(mode, &fields);
                let read_back = read(&borrowed(&event.headers), &event.payload).unwrap().unwrap();
                prop_assert_eq!(read_back.mode, mode);
                prop_assert_eq!(read_back.listener_id(), Some(listener.clone()));
                prop_assert_eq!(read_back.retry_data_stored(), stored);
                let record = read_back.into_record();
                prop_assert_eq!(&record["id"], &Value::String(id.clone()));
                prop_assert_eq!(&record["request_id"], &Value::String(request_id.clone()));
                prop_assert_eq!(&record["trace_key"], &Value::String(trace.clone()));
                prop_assert_eq!(&record["data_uri"], &data_uri.clone().map_or(Value::Null, Value::String));
                prop_assert_eq!(&record["received_at"], &Value::String(time.clone()));
                prop_assert_eq!(record.get("delivery_id").and_then(Value::as_str), delivery_id.as_deref());
                prop_assert_eq!(record.get("mock").is_some(), mock);
                prop_assert_eq!(record.get("attempt").and_then(Value::as_u64), attempt.map(u64::from));
                prop_assert_eq!(&record["event"]["type"], &Value::String(event_type.clone()));
                prop_assert_eq!(&record["event"]["source"], &Value::String(source.clone()));
                prop_assert_eq!(&record["data"], &data);
            }
        }

        /// Any headers and value: read, never a panic; what reads has its required attributes.
        #[test]
        fn any_message_reads_or_is_refused(
            headers in proptest::collection::vec((
                prop_oneof![Just("ce_specversion".to_string()), Just("ce_id".to_string()), Just("ce_source".to_string()),
                    Just("ce_type".to_string()), Just("content-type".to_string()), "ce_[a-z]{1,4}"],
                prop_oneof![Just(b"1.0".to_vec()), Just(b"application/cloudevents+json".to_vec()),
                    Just(b"text/plain".to_vec()), proptest::collection::vec(any::<u8>(), 0..6)],
            ), 0..7),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let borrowed: Vec<(&str, &[u8])> = headers.iter().map(|(name, value)| (name.as_str(), value.as_slice())).collect();
            if let Some(Ok(event)) = read(&borrowed, &payload) {
                prop_assert!(!event.id.is_empty() && !event.source.is_empty() && !event.event_type.is_empty());
                let _ = (event.listener_id(), event.retry_data_stored(), event.to_structured(), event.into_record());
            }
        }
    }

    #[test]
    fn extension_names_follow_the_spec() {
        for name in [
            PARTITION_KEY,
            EXT_LISTENER,
            EXT_REQUEST_ID,
            EXT_TRACE,
            EXT_DATA_URI,
            EXT_DELIVERY_ID,
            EXT_MOCK,
            EXT_ATTEMPT,
            EXT_RETRY_DATA,
        ] {
            assert!(
                name.len() <= 20 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{name}"
            );
        }
    }
}
