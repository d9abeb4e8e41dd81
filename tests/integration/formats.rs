//! The opt-in body formats end to end against a real broker (Tansu): multipart/form-data (a body
//! built as a browser builds it, and curl `-F` with text and binary files), CSV, NDJSON and
//! query-string records from GET; their hostile cases answered 4xx with nothing published.

use std::process::Command;

use serde_json::json;

use crate::helpers::app::{all_data, settings, spawn_app};
use crate::helpers::broker::Broker;
use crate::helpers::http::request;

const LISTENERS: &str = r#"
[pipeline]
page_linger_ms = 0

[[listeners]]
id = "multipart"
[listeners.content]
accept = ["multipart"]
[listeners.content.multipart]
max_parts = 10
max_file_bytes = 65536

[[listeners]]
id = "csv"
[listeners.content]
accept = ["csv"]

[[listeners]]
id = "ndjson"
[listeners.content]
accept = ["ndjson"]

[[listeners]]
id = "query"
[listeners.content]
accept = ["query", "json"]
methods = ["GET", "POST"]

[[listeners]]
id = "plain"
"#;

#[test]
fn every_new_format_lands_as_records_and_hostile_bodies_publish_nothing() {
    let broker = Broker::start();
    let app = spawn_app(settings(LISTENERS, &broker.bootstrap), &broker.bootstrap);

    // 1. Multipart as a browser builds it: CRLF, a WebKit boundary, a text field twice, a file.
    let boundary = "----WebKitFormBoundaryePkpFF7tjBAqx29L";
    let binary: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let mut body = Vec::new();
    for (name, value) in [("name", "Jane"), ("tag", "a"), ("tag", "b")] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&binary);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = app.post("multipart", &format!("multipart/form-data; boundary={boundary}"), &body);
    assert_eq!(response.status, 204, "{}", response.text());

    // 2. curl -F with a text file and a binary file.
    let dir = std::env::temp_dir().join(format!("bodies-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("note.txt"), "hello\n").unwrap();
    std::fs::write(dir.join("blob.bin"), &binary).unwrap();
    let url = format!("http://{}{}", app.addr, app.hook_path("multipart"));
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-F", "who=curl", "-F"])
        .arg(format!("note=@{}", dir.join("note.txt").display()))
        .arg("-F")
        .arg(format!(
            "blob=@{};type=application/octet-stream",
            dir.join("blob.bin").display()
        ))
        .arg(&url)
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "204");

    // 3. CSV and NDJSON.
    let response = app.post("csv", "text/csv", b"id,name\r\n1,\"Doe, Jane\"\r\n2,Bob\r\n");
    assert_eq!(response.status, 204, "{}", response.text());
    let response = app.post("ndjson", "application/x-ndjson", b"{\"n\": 1.50}\n[1,2]\n");
    assert_eq!(response.status, 204, "{}", response.text());

    // 4. GET with the record in the query; a GET without a query publishes nothing.
    let path = app.hook_path("query");
    let response = request(app.addr, "GET", &format!("{path}?event=ping&tag=a&tag=b"), &[], b"");
    assert_eq!(response.status, 204, "{}", response.text());
    let response = request(app.addr, "GET", &path, &[], b"");
    assert_eq!(response.status, 204, "{}", response.text());
    // Defaults unchanged: GET to a listener that did not opt in, or to an unknown one, is 405.
    let response = request(app.addr, "GET", &app.hook_path("plain"), &[], b"");
    assert_eq!(response.status, 405);
    assert_eq!(request(app.addr, "GET", "/hooks/nosuchlistener", &[], b"").status, 405);
    // A listener that accepts GET and POST refuses PUT with its own Allow.
    let response = request(app.addr, "PUT", &path, &[("Content-Type", "application/json")], b"{}");
    assert_eq!((response.status, response.header("allow")), (405, Some("GET, POST")));

    // 5. Hostile bodies: 4xx, nothing published, the server alive.
    let ct = format!("multipart/form-data; boundary={boundary}");
    let part = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n");
    let hostile: Vec<(&str, String, Vec<u8>, u16)> = vec![
        (
            "multipart",
            ct.clone(),
            format!("{}--{boundary}--", part.repeat(100_000)).into_bytes(),
            413,
        ),
        ("multipart", ct.clone(), vec![b'x'; 1_000_000], 400),
        (
            "multipart",
            "multipart/form-data".into(),
            part.clone().into_bytes(),
            400,
        ),
        ("multipart", ct.clone(), part.as_bytes()[..part.len() - 3].to_vec(), 400),
        (
            "multipart",
            ct.clone(),
            format!("--{boundary}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{boundary}--").into_bytes(),
            400,
        ),
        ("csv", "text/csv".into(), b"a,b\n1,2\n3\n".to_vec(), 400),
        ("csv", "text/csv".into(), b"a\n\xff\n".to_vec(), 400),
        (
            "csv",
            "text/csv".into(),
            format!("a\n{}", "\"".repeat(10_000_000)).into_bytes(),
            413,
        ),
        ("ndjson", "application/x-ndjson".into(), b"{}\n{oops\n".to_vec(), 400),
        (
            "ndjson",
            "application/x-ndjson".into(),
            "{}\n".repeat(200_000).into_bytes(),
            413,
        ),
    ];
    for (listener, content_type, body, status) in &hostile {
        let response = app.post(listener, content_type, body);
        assert_eq!(
            response.status,
            *status,
            "{listener} {content_type}: {}",
            response.text()
        );
    }
    let response = app.post("ndjson", "application/x-ndjson", b"{\"n\":2}\n{oops\n");
    assert!(response.text().contains("line 2"), "{}", response.text());

    // Read back: multipart ×2, csv, ndjson, query → 5 pages, nothing from the hostile bodies.
    let pages = app.read_pages(5);
    assert_eq!(pages.len(), 5, "{pages:?}");
    assert_eq!(all_data(&pages).len(), 7);
    let by = |id: &str| -> Vec<serde_json::Value> {
        pages
            .iter()
            .filter(|p| p.value["listener_id"] == id)
            .flat_map(|p| p.data())
            .collect()
    };
    let multipart = by("multipart");
    assert_eq!(multipart.len(), 2);
    assert_eq!(multipart[0]["name"], "Jane");
    assert_eq!(multipart[0]["tag"], json!(["a", "b"]));
    assert_eq!(multipart[0]["file"]["size"], 1000);
    assert_eq!(multipart[0]["file"]["filename"], "x.bin");
    assert_eq!(multipart[1]["who"], "curl");
    assert_eq!(multipart[1]["note"]["filename"], "note.txt");
    assert_eq!(multipart[1]["note"]["content_base64"], "aGVsbG8K");
    assert_eq!(multipart[1]["blob"]["size"], 1000);
    assert_eq!(multipart[1]["blob"]["sha256"], multipart[0]["file"]["sha256"]);
    assert_eq!(
        by("csv"),
        vec![
            json!({"id": "1", "name": "Doe, Jane"}),
            json!({"id": "2", "name": "Bob"})
        ]
    );
    assert_eq!(by("ndjson"), vec![json!({"n": 1.50}), json!([1, 2])]);
    assert_eq!(by("query"), vec![json!({"event": "ping", "tag": ["a", "b"]})]);
    let _ = std::fs::remove_dir_all(&dir);
}

const SIGNED_LISTENERS: &str = r#"
[pipeline]
page_linger_ms = 0

[[listeners]]
id = "signed-multipart"
[listeners.content]
accept = ["multipart"]
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "hex"
header = "X-Signature"
secrets = ["multipart-secret-123"]

[[listeners]]
id = "signed-csv"
[listeners.content]
accept = ["csv"]
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "hex"
header = "X-Signature"
secrets = ["csv-secret-123456"]

[[listeners]]
id = "get-token"
[listeners.content]
accept = ["query"]
methods = ["GET"]
[listeners.verification]
type = "token"
tokens = ["tok_get_7f3a9c11"]
query = "token"
"#;

/// Verification runs on the exact bytes received, whatever the format: a multipart or CSV body
/// signed as sent is accepted, the same body with one byte changed is a 401; a GET listener's
/// token in the query is checked and never reaches the record.
#[test]
fn new_formats_are_verified_on_the_bytes_received() {
    use crate::helpers::signing::hmac_sha256_hex;

    let broker = Broker::start();
    let app = spawn_app(settings(SIGNED_LISTENERS, &broker.bootstrap), &broker.bootstrap);
    let boundary = "XyZ0123boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"order\"\r\n\r\n1001\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\r\n\x00\x01\x02\r\n--{boundary}--\r\n"
    )
    .into_bytes();
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let post = |listener: &str, content_type: &str, body: &[u8], signature: &str| {
        let path = app.hook_path(listener);
        request(
            app.addr,
            "POST",
            &path,
            &[("Content-Type", content_type), ("X-Signature", signature)],
            body,
        )
        .status
    };

    let signature = hmac_sha256_hex(b"multipart-secret-123", &body);
    assert_eq!(post("signed-multipart", &content_type, &body, &signature), 204);
    let mut altered = body.clone();
    let at = altered.iter().position(|b| *b == 0x01).unwrap();
    altered[at] = 0x07;
    assert_eq!(post("signed-multipart", &content_type, &altered, &signature), 401);
    // The signature of the decoded record is not the signature of the body.
    let record_signature = hmac_sha256_hex(b"multipart-secret-123", br#"{"order":"1001"}"#);
    assert_eq!(post("signed-multipart", &content_type, &body, &record_signature), 401);

    let csv = b"id,name\r\n7,\"Doe, Jane\"\r\n";
    let signature = hmac_sha256_hex(b"csv-secret-123456", csv);
    assert_eq!(post("signed-csv", "text/csv", csv, &signature), 204);
    assert_eq!(
        post("signed-csv", "text/csv", b"id,name\r\n8,\"Doe, Jane\"\r\n", &signature),
        401
    );

    let path = app.hook_path("get-token");
    let get = |query: &str| request(app.addr, "GET", &format!("{path}?{query}"), &[], b"").status;
    assert_eq!(get("event=ping&token=tok_get_7f3a9c11"), 204);
    assert_eq!(get("event=ping&token=wrong"), 401);
    assert_eq!(get("event=ping"), 401);

    // Three accepted requests, three pages; the refused ones published nothing.
    let pages = app.read_pages(3);
    assert_eq!(pages.len(), 3, "{pages:?}");
    let data = all_data(&pages);
    assert_eq!(data.len(), 3, "{data:?}");
    assert!(data.contains(&json!({"id": "7", "name": "Doe, Jane"})), "{data:?}");
    assert!(
        data.contains(&json!({"event": "ping"})),
        "the token is not in the record: {data:?}"
    );
    let multipart = data
        .iter()
        .find(|d| d.get("order").is_some())
        .expect("the multipart record");
    assert_eq!(multipart["f"]["size"], 3);
}
