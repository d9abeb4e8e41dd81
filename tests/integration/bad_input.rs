//! Every malformed or unacceptable request gets a clear 4xx and leaves nothing in Kafka.

use crate::helpers::app::{all_data, settings, spawn_app};
use crate::helpers::broker::Broker;
use crate::helpers::http::{read_response, request};

const CONFIG: &str = r#"
[pipeline]
page_linger_ms = 0
[[listeners]]
id = "json"
resource_path = "data.items"
[listeners.content]
accept = ["json", "xml", "form"]
max_body_bytes = 4096

[[listeners]]
id = "any"
"#;

#[test]
fn bad_requests_get_clear_4xx_and_publish_nothing() {
    let broker = Broker::start();
    let app = spawn_app(settings(CONFIG, &broker.bootstrap), &broker.bootstrap);
    let any = app.hook_path("any");
    let limited = app.hook_path("json");

    // (name, path, headers, body, expected status, expected word in the message)
    type Case<'a> = (&'a str, String, Vec<(&'a str, String)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "unknown listener",
            "/hooks/0123456789abcdef0123456789abcdef".into(),
            vec![],
            b"{}".to_vec(),
            404,
            "not found",
        ),
        (
            "token on a listener without one",
            format!("{any}/sometoken"),
            vec![],
            b"{}".to_vec(),
            404,
            "not found",
        ),
        (
            "no content type",
            any.clone(),
            vec![],
            b"{}".to_vec(),
            415,
            "application/json",
        ),
        (
            "text/plain",
            any.clone(),
            vec![("Content-Type", "text/plain".into())],
            b"hi".to_vec(),
            415,
            "application/x-www-form-urlencoded",
        ),
        (
            "csv",
            any.clone(),
            vec![("Content-Type", "text/csv".into())],
            b"a,b\n1,2".to_vec(),
            415,
            "xml",
        ),
        (
            "unknown charset",
            any.clone(),
            vec![("Content-Type", "application/json; charset=klingon".into())],
            b"{}".to_vec(),
            415,
            "charset",
        ),
        (
            "malformed json",
            any.clone(),
            vec![("Content-Type", "application/json".into())],
            b"{\"a\":".to_vec(),
            400,
            "json",
        ),
        (
            "empty json",
            any.clone(),
            vec![("Content-Type", "application/json".into())],
            b"".to_vec(),
            400,
            "json",
        ),
        (
            "invalid utf-8",
            any.clone(),
            vec![("Content-Type", "application/json".into())],
            b"{\"a\":\"\xff\"}".to_vec(),
            400,
            "",
        ),
        (
            "json number a double cannot hold",
            any.clone(),
            vec![("Content-Type", "application/json".into())],
            br#"[{"ok":1},{"total":1e400}]"#.to_vec(),
            400,
            "out of range",
        ),
        (
            "json unpaired surrogate escape",
            any.clone(),
            vec![("Content-Type", "application/json".into())],
            br#"{"name":"\ud800"}"#.to_vec(),
            400,
            "surrogate",
        ),
        (
            "json too deep",
            any.clone(),
            vec![("Content-Type", "application/json".into())],
            format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
            400,
            "deep",
        ),
        (
            "resource path missing",
            limited.clone(),
            vec![("Content-Type", "application/json".into())],
            b"{\"data\":{}}".to_vec(),
            400,
            "data.items",
        ),
        (
            "malformed xml",
            any.clone(),
            vec![("Content-Type", "application/xml".into())],
            b"<a><b></a>".to_vec(),
            400,
            "xml",
        ),
        (
            "xml doctype",
            any.clone(),
            vec![("Content-Type", "text/xml".into())],
            b"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">]><a>&lol;</a>".to_vec(),
            400,
            "DOCTYPE",
        ),
        (
            "xml external entity",
            any.clone(),
            vec![("Content-Type", "application/xml".into())],
            b"<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>".to_vec(),
            400,
            "DOCTYPE",
        ),
        (
            "bad percent-encoding",
            any.clone(),
            vec![("Content-Type", "application/x-www-form-urlencoded".into())],
            b"a=%zz".to_vec(),
            400,
            "percent",
        ),
        (
            "too many form fields",
            any.clone(),
            vec![("Content-Type", "application/x-www-form-urlencoded".into())],
            (0..1001)
                .map(|n| format!("f{n}=1"))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes(),
            413,
            "fields",
        ),
        (
            "declared body over limit",
            limited.clone(),
            vec![("Content-Type", "application/json".into())],
            vec![b' '; 5000],
            413,
            "4096",
        ),
        (
            "compressed body",
            any.clone(),
            vec![
                ("Content-Type", "application/json".into()),
                ("Content-Encoding", "br".into()),
            ],
            b"{}".to_vec(),
            415,
            "encoding",
        ),
    ];
    for (name, path, headers, body, status, needle) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = request(app.addr, "POST", path, &headers, body);
        assert_eq!(response.status, *status, "{name}: {}", response.text());
        let error = response.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no error field"))
            .to_string();
        assert!(
            error.to_lowercase().contains(&needle.to_lowercase()),
            "{name}: message {error:?} should mention {needle:?}"
        );
        assert!(error.len() < 300, "{name}: short message, got {error:?}");
        assert!(
            response.header("x-request-id").is_some(),
            "{name}: request id on errors too"
        );
    }

    // A chunked body that grows over the limit: 413 without reading it all.
    let mut stream = std::net::TcpStream::connect(app.addr).unwrap();
    use std::io::Write;
    let head = format!(
        "POST {limited} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for _ in 0..3 {
        let chunk = vec![b' '; 2000];
        let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = stream.write_all(&chunk);
        let _ = stream.write_all(b"\r\n");
    }
    let response = read_response(&mut stream);
    assert_eq!(response.status, 413, "{}", response.text());

    // Wrong methods.
    let response = request(app.addr, "GET", &any, &[], b"");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("POST, PUT"));
    let response = request(app.addr, "DELETE", &any, &[], b"");
    assert_eq!(response.status, 405);

    // PUT works like POST; then exactly that one page is in Kafka: nothing from the rejects.
    let response = request(
        app.addr,
        "PUT",
        &any,
        &[("Content-Type", "application/json")],
        br#"{"good":true}"#,
    );
    assert_eq!(response.status, 204, "{}", response.text());
    let pages = app.read_pages(1);
    assert_eq!(pages.len(), 1, "only the good request published: {pages:?}");
    assert_eq!(all_data(&pages), vec![serde_json::json!({"good": true})]);

    // And the server is still healthy.
    assert_eq!(request(app.addr, "GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn slow_senders_get_408() {
    let broker = Broker::start();
    let config = format!("[server]\npublic_id_secret = \"test-secret-0123456789\"\nlisten = \"127.0.0.1:0\"\nbody_read_timeout_ms = 500\n{CONFIG}");
    let app = spawn_app(settings(&config, &broker.bootstrap), &broker.bootstrap);
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(app.addr).unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":",
        app.hook_path("any")
    );
    stream.write_all(head.as_bytes()).unwrap();
    // Never send the rest.
    let response = read_response(&mut stream);
    assert_eq!(response.status, 408, "{}", response.text());
    assert_eq!(response.header("connection"), Some("close"));
}

/// Streams a chunked body that never ends to `path`, reads the response, and returns it with
/// whether the server then closed the connection (within 5 s) rather than keep reading.
fn endless_chunked_body(addr: std::net::SocketAddr, path: &str, chunk_every: std::time::Duration) -> (u16, bool) {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    writer.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    // The sender keeps streaming (bounded: 15 s) until the server stops taking the bytes.
    let sender = std::thread::spawn(move || {
        let started = Instant::now();
        let chunk = format!("400\r\n{}\r\n", " ".repeat(0x400));
        while started.elapsed() < Duration::from_secs(15) {
            if writer.write_all(chunk.as_bytes()).is_err() {
                return;
            }
            std::thread::sleep(chunk_every);
        }
    });
    let response = read_response(&mut stream);
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = [0u8; 1024];
    let closed = loop {
        match stream.read(&mut rest) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sender.join().unwrap();
    (response.status, closed)
}

#[test]
fn endless_chunked_bodies_are_refused_and_their_connections_closed() {
    let broker = Broker::start();
    let config = format!("[server]\npublic_id_secret = \"test-secret-0123456789\"\nlisten = \"127.0.0.1:0\"\nbody_read_timeout_ms = 1000\n{CONFIG}");
    let app = spawn_app(settings(&config, &broker.bootstrap), &broker.bootstrap);
    // Over the body limit (4 KB on this listener): 413, and actix does not drain the rest.
    let (status, closed) = endless_chunked_body(app.addr, &app.hook_path("json"), std::time::Duration::ZERO);
    assert_eq!(status, 413);
    assert!(
        closed,
        "the connection of a 413 is closed, not kept to drain an endless body"
    );
    // Under the limit but never finishing (1 KB a second on a 10 MB listener): 408, closed too.
    let (status, closed) = endless_chunked_body(app.addr, &app.hook_path("any"), std::time::Duration::from_secs(1));
    assert_eq!(status, 408);
    assert!(
        closed,
        "the connection of a 408 is closed, not kept to drain an endless body"
    );
    assert_eq!(request(app.addr, "GET", "/healthz", &[], b"").status, 200);
}
