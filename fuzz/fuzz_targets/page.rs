//! Pages: the writer the page stage uses (`wire::serialize_record`, `serialize_page`) and the
//! reader the import worker uses (`worker::page::IncomingPage`). Two halves, chosen by the input:
//! - round trip: a page written from fields and records taken from the input (records as the
//!   JSON parser makes them) reads back equal — listener, page id, creation time, and each
//!   record's every member, its `data` byte for byte — or is refused exactly when an id is
//!   empty; a record's default trace key is its own `id` (a non-empty string, or a number as
//!   serde_json writes it), else 32 hex digits of its SHA-256;
//! - raw: any payload read as a page never panics, and a page that reads has a listener, a page
//!   id, and a non-empty string `id` in every record.
#![no_main]

use hookpipe::fuzzing::serde_json::{self, value::RawValue, Value};
use hookpipe::fuzzing::sha2::{Digest as _, Sha256};
use hookpipe::pipeline::page::default_trace_key;
use hookpipe::pipeline::parse::json::parse_json;
use hookpipe::pipeline::parse::record::Record;
use hookpipe::wire::{serialize_page, serialize_record, PageMessage, PageRecord, RecordFields};
use hookpipe::worker::page::{attempt, record_id, trace_key, IncomingPage};
use hookpipe_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fn reference_trace_key(record: &Record) -> String {
    let value = record.to_value();
    match value.get("id") {
        Some(Value::String(id)) if !id.is_empty() => return id.clone(),
        Some(Value::Number(number)) => {
            // The number as serde_json reads the record's text and writes it again.
            return number.to_string();
        }
        _ => {}
    }
    Sha256::digest(record.json().as_bytes())[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

struct Written {
    id: String,
    request_id: String,
    trace_key: String,
    data_uri: Option<String>,
    received_at: String,
    delivery_id: Option<String>,
    mock: bool,
    data: Record,
}

fn round_trip(mut input: Input<'_>) {
    let listener_id = input.text();
    let page_id = input.text();
    let created_at = input.text();
    let mut written = Vec::new();
    for _ in 0..input.below(4) {
        let id = input.text();
        let request_id = input.text();
        let trace_key_text = input.text();
        let data_uri = input.flag().then(|| input.text());
        let received_at = input.text();
        let delivery_id = input.flag().then(|| input.text());
        let mock = input.flag();
        let data_text = String::from_utf8_lossy(input.piece()).into_owned();
        let records = parse_json(&data_text, None, 128).unwrap_or_default();
        for data in records.into_iter().take(2) {
            assert_eq!(
                default_trace_key(&data),
                reference_trace_key(&data),
                "default trace key of {}",
                data.json()
            );
            written.push(Written {
                id: id.clone(),
                request_id: request_id.clone(),
                trace_key: trace_key_text.clone(),
                data_uri: data_uri.clone(),
                received_at: received_at.clone(),
                delivery_id: delivery_id.clone(),
                mock,
                data,
            });
        }
    }
    let serialized: Vec<Vec<u8>> = written
        .iter()
        .map(|record| {
            serialize_record(&RecordFields {
                id: &record.id,
                request_id: &record.request_id,
                trace_key: &record.trace_key,
                data_uri: record.data_uri.as_deref(),
                received_at: &record.received_at,
                delivery_id: record.delivery_id.as_deref(),
                mock: record.mock,
                data_json: record.data.json(),
            })
        })
        .collect();
    let payload = serialize_page(&listener_id, &page_id, &created_at, &serialized);
    let read = IncomingPage::parse(&payload);
    if listener_id.is_empty() || page_id.is_empty() || written.iter().any(|record| record.id.is_empty()) {
        assert!(read.is_err(), "a page with an empty id was read");
        return;
    }
    let page = read.unwrap_or_else(|error| panic!("a page written was not read: {error}"));
    assert_eq!(page.listener_id, listener_id);
    assert_eq!(page.page_id, page_id);
    assert_eq!(page.created_at, (!created_at.is_empty()).then_some(created_at));
    assert_eq!(page.records.len(), written.len());
    for (read, record) in page.records.iter().zip(&written) {
        assert_eq!(record_id(read), record.id);
        assert_eq!(trace_key(read), record.trace_key);
        assert_eq!(attempt(read), 1);
        assert_eq!(read["request_id"], Value::String(record.request_id.clone()));
        assert_eq!(
            read["data_uri"],
            record.data_uri.clone().map_or(Value::Null, Value::String)
        );
        assert_eq!(read["received_at"], Value::String(record.received_at.clone()));
        assert_eq!(
            read.get("delivery_id").and_then(Value::as_str),
            record.delivery_id.as_deref()
        );
        assert_eq!(read.get("mock").and_then(Value::as_bool).unwrap_or(false), record.mock);
        assert_eq!(read["data"], record.data.to_value(), "data read back differs");
    }
    // Read without building records: each record's `data` is the text written, byte for byte.
    let raw: PageMessage<&RawValue> = PageMessage::read(&payload).expect("read once, read again");
    for (raw, record) in raw.records.iter().zip(&written) {
        let fields: PageRecord<'_> = serde_json::from_str(raw.get()).expect("a record reads as a PageRecord");
        assert_eq!(fields.data.get(), record.data.json());
        assert_eq!(fields.id, record.id);
        assert_eq!(fields.mock, record.mock);
    }
}

fn raw(payload: &[u8]) {
    if let Ok(page) = IncomingPage::parse(payload) {
        assert!(!page.listener_id.is_empty() && !page.page_id.is_empty());
        for record in &page.records {
            assert!(!record_id(record).is_empty(), "a record without an id was read");
            let _ = (trace_key(record), attempt(record));
        }
    }
    let _ = PageMessage::<&RawValue>::read(payload);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.flag() {
        round_trip(input)
    } else {
        raw(input.rest())
    }
});
