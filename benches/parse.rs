//! Parsing bodies into records: JSON, XML, forms, multipart, CSV and NDJSON at 256 B, 1 KB,
//! 16 KB and 256 KB.
//!
//! Throughput is body bytes (MB/s). `json_object` and `xml_document` are one record per body
//! (no resource path); `json_items` (`data.items`) and `xml_shipments` (`shipments.shipment`)
//! split the body into one record per element. `multipart` is three text fields and one binary
//! file (hashed and base64-encoded into the record), `csv` one record per row (a header row, a
//! quoted field per row), `ndjson` one record per line (the same items as `json_items`).
//!
//! cargo bench --bench parse -- --warm-up-time 1 --measurement-time 2

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use hookpipe::config::resource_path::ResourcePath;
use hookpipe::pipeline::parse::records::{parse_records, ParseLimits};

struct Case {
    name: &'static str,
    content_type: String,
    resource_path: Option<ResourcePath>,
    make: fn(usize) -> Vec<u8>,
}

fn bench_parse(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let path = |p: &str| Some(ResourcePath::parse(p).expect("valid path"));
    let cases = [
        Case {
            name: "json_object",
            content_type: "application/json".into(),
            resource_path: None,
            make: common::json_object,
        },
        Case {
            name: "json_items",
            content_type: "application/json".into(),
            resource_path: path("data.items"),
            make: common::json_items,
        },
        Case {
            name: "xml_document",
            content_type: "application/xml".into(),
            resource_path: None,
            make: common::xml_shipments,
        },
        Case {
            name: "xml_shipments",
            content_type: "application/xml".into(),
            resource_path: path("shipments.shipment"),
            make: common::xml_shipments,
        },
        Case {
            name: "form",
            content_type: "application/x-www-form-urlencoded".into(),
            resource_path: None,
            make: common::form,
        },
        Case {
            name: "multipart",
            content_type: format!("multipart/form-data; boundary={}", common::MULTIPART_BOUNDARY),
            resource_path: None,
            make: common::multipart,
        },
        Case {
            name: "csv",
            content_type: "text/csv".into(),
            resource_path: None,
            make: common::csv,
        },
        Case {
            name: "ndjson",
            content_type: "application/x-ndjson".into(),
            resource_path: None,
            make: common::ndjson,
        },
    ];
    for case in &cases {
        let mut group = c.benchmark_group(format!("parse/{}", case.name));
        for (label, size) in common::SIZES {
            let body = (case.make)(size);
            let records = parse_records(
                &body,
                Some(case.content_type.as_str()),
                case.resource_path.as_ref(),
                &limits,
            )
            .unwrap_or_else(|error| panic!("{} {label}: {error}", case.name));
            assert!(!records.is_empty());
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_with_input(BenchmarkId::from_parameter(label), &body, |b, body| {
                b.iter(|| {
                    black_box(parse_records(
                        black_box(body),
                        Some(case.content_type.as_str()),
                        case.resource_path.as_ref(),
                        &limits,
                    ))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
