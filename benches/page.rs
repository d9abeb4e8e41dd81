//! The page stage's pure work: trace keys, handlebars templates, record serialization,
//! grouping records into pages and serializing a page message.
//!
//! cargo bench --bench page -- --warm-up-time 1 --measurement-time 2

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::Value;

use hookpipe::config::Settings;
use hookpipe::pipeline::listener::Listener;
use hookpipe::pipeline::page::default_trace_key;
use hookpipe::pipeline::page::pager::{PageGroup, Pager};
use hookpipe::pipeline::parse::records::Record;
use hookpipe::wire::serialize_page;

const CREATED_AT: &str = "2026-01-01T00:00:00.000Z";
const PAGE_ID: &str = "0193a1b2c3d4e5f60718293a4b5c6d7e";

fn listener() -> Listener {
    let toml = r#"
        [server]
        public_id_secret = "bench-public-id-secret"
        [[listeners]]
        id = "orders"
        trace_key_template = "{{order_id}}"
        data_uri_template = "https://shop.example.com/admin/orders/{{order_id}}?customer={{customer.email}}"
    "#;
    let settings = Settings::from_toml_and_env(toml, Vec::<(String, String)>::new()).expect("bench settings");
    settings.listeners[0].compile(&settings).expect("bench listener")
}

fn value(size: usize) -> Value {
    serde_json::from_slice(&common::json_object(size)).expect("json")
}

fn record(size: usize) -> Record {
    Record::from_value(&value(size)).expect("a record")
}

/// A record as the page stage serializes it: envelope around the data.
fn serialized_record(size: usize) -> Vec<u8> {
    let data = record(size).json().as_bytes().to_vec();
    let mut bytes = Vec::with_capacity(data.len() + 200);
    bytes.extend_from_slice(br#"{"id":"0193a1b2c3d4e5f60718293a4b5c6d7e-0","request_id":"0193a1b2c3d4e5f60718293a4b5c6d7e","trace_key":"1001","data_uri":null,"received_at":"2026-01-01T00:00:00.000Z","data":"#);
    bytes.extend_from_slice(&data);
    bytes.push(b'}');
    bytes
}

fn bench_templates(c: &mut Criterion) {
    let listener = listener();
    let mut group = c.benchmark_group("page/template");
    group.throughput(Throughput::Elements(1));
    for (label, size) in [("1KB", 1024), ("16KB", 16 * 1024)] {
        let record = record(size);
        assert_eq!(listener.render_trace_key(&record).as_deref(), Ok("1001"));
        group.bench_with_input(BenchmarkId::new("trace_key", label), &record, |b, record| {
            b.iter(|| black_box(listener.render_trace_key(black_box(record))))
        });
        assert!(matches!(listener.render_data_uri(&record), Some(Ok(_))));
        group.bench_with_input(BenchmarkId::new("data_uri", label), &record, |b, record| {
            b.iter(|| black_box(listener.render_data_uri(black_box(record))))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("page/default_trace_key");
    group.throughput(Throughput::Elements(1));
    let with_id = record(1024);
    assert_eq!(default_trace_key(&with_id), "evt_000123");
    group.bench_function("id_field", |b| {
        b.iter(|| black_box(default_trace_key(black_box(&with_id))))
    });
    for (label, size) in [("1KB", 1024), ("16KB", 16 * 1024)] {
        let mut without_id = value(size);
        without_id.as_object_mut().unwrap().remove("id");
        let without_id = Record::from_value(&without_id).unwrap();
        assert_eq!(default_trace_key(&without_id).len(), 32);
        group.bench_with_input(BenchmarkId::new("sha256", label), &without_id, |b, record| {
            b.iter(|| black_box(default_trace_key(black_box(record))))
        });
    }
    group.finish();
}

fn bench_paging(c: &mut Criterion) {
    // XML and form records are built as values and serialized once, with a depth check.
    let mut group = c.benchmark_group("page/record_from_value");
    for (label, size) in common::SIZES {
        let value = value(size);
        group.throughput(Throughput::Bytes(record(size).json().len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &value, |b, value| {
            b.iter(|| black_box(Record::from_value(black_box(value))))
        });
    }
    group.finish();

    // One request of 20 records of 1 KB: they fill exactly one page, which closes.
    let mut group = c.benchmark_group("page/pager_add");
    for (label, count, size) in [("1x1KB", 1, 1024), ("20x1KB", 20, 1024), ("100x1KB", 100, 1024)] {
        let records: Vec<Vec<u8>> = (0..count).map(|_| serialized_record(size)).collect();
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &records, |b, records| {
            let mut pager: Pager<()> = Pager::default();
            let orders = PageGroup::listener("orders".into());
            b.iter_batched(
                || records.clone(),
                |records| {
                    let (closed, _) = pager.add(&orders, records, 20, 5 * 1024 * 1024, || ());
                    black_box(closed);
                    black_box(pager.take(&orders))
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("page/serialize_page");
    for (label, count, size) in [
        ("20x256B", 20, 256),
        ("20x1KB", 20, 1024),
        ("20x16KB", 20, 16 * 1024),
        ("1x256KB", 1, 256 * 1024),
    ] {
        let records: Vec<Vec<u8>> = (0..count).map(|_| serialized_record(size)).collect();
        let bytes = serialize_page("orders", PAGE_ID, CREATED_AT, &records).len();
        serde_json::from_slice::<Value>(&serialize_page("orders", PAGE_ID, CREATED_AT, &records)).expect("valid page");
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &records, |b, records| {
            b.iter(|| black_box(serialize_page("orders", PAGE_ID, CREATED_AT, black_box(records))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_templates, bench_paging);
criterion_main!(benches);
