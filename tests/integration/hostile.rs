//! Hostile input at the edge: compression bombs, header floods, in-flight caps, and canary
//! secrets that must appear nowhere in logs or error bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::helpers::app::{settings, spawn_app};
use crate::helpers::broker::{free_port, Broker};
use crate::helpers::http::{read_response, request};
use crate::helpers::process::ChildGuard;
use crate::helpers::signing::hmac_sha256_hex;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

const CONFIG: &str = r#"
[pipeline]
page_linger_ms = 0
[[listeners]]
id = "small"
[listeners.content]
max_body_bytes = 65536
[[listeners]]
id = "signed"
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "hex"
header = "X-Signature"
secrets = ["gzip-secret"]
"#;

#[test]
fn compressed_bodies_are_decoded_within_the_limit() {
    let broker = Broker::start();
    let app = spawn_app(settings(CONFIG, &broker.bootstrap), &broker.bootstrap);
    let path = app.hook_path("small");

    let body = br#"{"compressed":true}"#;
    let response = request(
        app.addr,
        "POST",
        &path,
        &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        &gzip(body),
    );
    assert_eq!(response.status, 204, "{}", response.text());

    // Signatures cover the decoded payload.
    let signature = hmac_sha256_hex(b"gzip-secret", body);
    let response = request(
        app.addr,
        "POST",
        &app.hook_path("signed"),
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
            ("X-Signature", &signature),
        ],
        &gzip(body),
    );
    assert_eq!(response.status, 204, "{}", response.text());

    // A bomb: 50 MB of zeros in ~50 KB. 413, decoding stops at the limit.
    let bomb = gzip(&vec![b' '; 50 * 1024 * 1024]);
    assert!(bomb.len() < 100 * 1024);
    let response = request(
        app.addr,
        "POST",
        &path,
        &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(response.status, 413, "{}", response.text());

    // Corrupt stream and unsupported encodings.
    let response = request(
        app.addr,
        "POST",
        &path,
        &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
        b"definitely not gzip",
    );
    assert_eq!(response.status, 400, "{}", response.text());
    for encoding in ["br", "zstd", "gzip, gzip"] {
        let response = request(
            app.addr,
            "POST",
            &path,
            &[("Content-Type", "application/json"), ("Content-Encoding", encoding)],
            b"{}",
        );
        assert_eq!(response.status, 415, "{encoding}: {}", response.text());
    }

    let pages = app.read_pages(2);
    assert_eq!(pages.len(), 2, "only the two good requests published");
    assert_eq!(request(app.addr, "GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn header_floods_are_refused() {
    let broker = Broker::start();
    let app = spawn_app(settings(CONFIG, &broker.bootstrap), &broker.bootstrap);
    let path = app.hook_path("small");
    let names: Vec<String> = (0..200).map(|n| format!("X-Flood-{n}")).collect();
    let mut headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    headers.push(("Content-Type", "application/json"));
    let response = request(app.addr, "POST", &path, &headers, b"{}");
    assert_eq!(response.status, 431, "too many headers");
    // Refused by actix-http before hookpipe's handler: no request id, no body (the README's
    // documented exception to the error-body contract).
    assert_eq!(response.header("x-request-id"), None);
    assert!(response.body.is_empty(), "{}", response.text());

    let huge = "a".repeat(200 * 1024);
    let response = request(
        app.addr,
        "POST",
        &path,
        &[("X-Huge", &huge), ("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(response.status, 431, "huge header");
    assert_eq!(response.header("x-request-id"), None);
    assert!(response.body.is_empty(), "{}", response.text());
    // A request line that is not HTTP: 400 from actix-http, likewise without id or body.
    let mut stream = std::net::TcpStream::connect(app.addr).unwrap();
    std::io::Write::write_all(&mut stream, b"POST /hooks/x y z HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let response = read_response(&mut stream);
    assert_eq!(response.status, 400, "bad request line");
    assert_eq!(response.header("x-request-id"), None);
    assert!(response.body.is_empty(), "{}", response.text());

    assert_eq!(
        request(app.addr, "GET", "/healthz", &[], b"").status,
        200,
        "still healthy"
    );
    assert_eq!(app.read_pages(0).len(), 0, "nothing published");
}

#[test]
fn slow_bodies_wait_in_their_own_cap_and_never_take_the_slots_of_arrived_requests() {
    let broker = Broker::start();
    let config = r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
max_in_flight = 2
max_body_readers = 8
[[listeners]]
id = "slow"
"#;
    let app = spawn_app(settings(config, &broker.bootstrap), &broker.bootstrap);
    let addr = app.addr;
    let path = app.hook_path("slow");
    let post = || request(addr, "POST", &path, &[("Content-Type", "application/json")], b"{}");
    let slow_sender = || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{{\"a\":"
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream
    };
    // Six senders dribble their bodies, three times the in-flight cap: senders whose body has
    // arrived are still served (the slow ones hold readers' slots, not requests' in flight).
    let mut slow: Vec<std::net::TcpStream> = (0..6).map(|_| slow_sender()).collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let served = post();
        assert_eq!(
            served.status,
            204,
            "a slowloris starved a normal sender: {}",
            served.text()
        );
    }
    // All readers' slots taken: the next sender is shed, with Retry-After.
    slow.extend((0..2).map(|_| slow_sender()));
    std::thread::sleep(Duration::from_millis(500));
    let shed = post();
    assert_eq!(shed.status, 503, "{}", shed.text());
    assert_eq!(shed.header("retry-after"), Some("1"));
    // The slow senders finish and are answered; capacity is back.
    for stream in &mut slow {
        stream.write_all(b"1}  ").unwrap();
        let response = read_response(stream);
        assert_eq!(response.status, 204, "{}", response.text());
    }
    assert_eq!(post().status, 204);
}

/// Canary secrets go through every verification path, valid and invalid, with the most
/// verbose logging; they must appear in no log line and no error body.
#[test]
fn canary_secrets_never_reach_logs_or_error_bodies() {
    const CANARIES: [&str; 6] = [
        "CanaryBasicPass9f8e7d",
        "CanaryHmacKey5c4b3a",
        "CanaryUrlToken1a2b3c4d5e",
        "CanaryToken77aa88bb",
        "CanaryStripeKey2d3e",
        "CanaryPublicIdKey0123",
    ];
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("hookpipe-canary-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("canary.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
public_id_secret = "{pid}"
[pipeline]
page_linger_ms = 0
[[listeners]]
id = "basic"
[listeners.verification]
type = "basic"
credentials = [{{ username = "u", password = "{basic}" }}]
[[listeners]]
id = "hmac"
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "hex"
header = "X-Signature"
secrets = ["{hmac}"]
[[listeners]]
id = "url"
[listeners.verification]
type = "secret_url"
tokens = ["{url}"]
[[listeners]]
id = "token"
[listeners.verification]
type = "token"
tokens = ["{token}"]
header = "X-Token"
query = "token"
[[listeners]]
id = "stripe"
[listeners.verification]
type = "stripe"
secrets = ["{stripe}"]
"#,
            pid = CANARIES[5],
            basic = CANARIES[0],
            hmac = CANARIES[1],
            url = CANARIES[2],
            token = CANARIES[3],
            stripe = CANARIES[4],
        ),
    )
    .unwrap();
    let mut serve = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_hookpipe"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("HOOKPIPE_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Drain stderr while the server runs: at trace level it writes more than a pipe holds.
    let mut serve_stderr = serve.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        serve_stderr.read_to_string(&mut text).unwrap();
        text
    });
    let mut stdout_lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let mut paths = std::collections::HashMap::new();
    while paths.len() < 5 {
        let line = stdout_lines.next().expect("serve output").unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if let Some(rest) = line.strip_prefix("listener ") {
            let mut parts = rest.split_whitespace();
            let id = parts.next().unwrap().to_string();
            let url = parts.next().unwrap();
            let path = url
                .split_once(&format!("127.0.0.1:{port}"))
                .unwrap()
                .1
                .replace("/<url", "");
            paths.insert(id, path);
        }
    }
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let json = [("Content-Type", "application/json")];
    let mut bodies = Vec::new();
    let mut send = |path: &str, extra: &[(&str, &str)], body: &[u8]| {
        let mut headers = json.to_vec();
        headers.extend_from_slice(extra);
        let response = request(addr, "POST", path, &headers, body);
        bodies.push(response.text());
        response.status
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let basic_good = format!("Basic {}", b64(&format!("u:{}", CANARIES[0])));
    let basic_bad = format!("Basic {}", b64(&format!("u:{}x", CANARIES[0])));
    assert_eq!(send(&paths["basic"], &[("Authorization", &basic_good)], b"{}"), 204);
    assert_eq!(send(&paths["basic"], &[("Authorization", &basic_bad)], b"{}"), 401);
    let signature = hmac_sha256_hex(CANARIES[1].as_bytes(), b"{}");
    assert_eq!(send(&paths["hmac"], &[("X-Signature", &signature)], b"{}"), 204);
    assert_eq!(send(&paths["hmac"], &[("X-Signature", CANARIES[1])], b"{}"), 401);
    assert_eq!(send(&format!("{}/{}", paths["url"], CANARIES[2]), &[], b"{}"), 204);
    assert_eq!(send(&format!("{}/{}x", paths["url"], CANARIES[2]), &[], b"{}"), 404);
    assert_eq!(send(&paths["token"], &[("X-Token", CANARIES[3])], b"{}"), 204);
    assert_eq!(
        send(&format!("{}?token={}", paths["token"], CANARIES[3]), &[], b"{}"),
        204
    );
    assert_eq!(
        send(&paths["token"], &[("X-Token", &format!("{}x", CANARIES[3]))], b"{}"),
        401
    );
    assert_eq!(
        send(
            &paths["stripe"],
            &[("Stripe-Signature", &format!("t=1,v1={}", CANARIES[4]))],
            b"{}"
        ),
        401
    );
    // Malformed bodies on a secret URL: the error path must not echo the URL either.
    assert_eq!(send(&format!("{}/{}", paths["url"], CANARIES[2]), &[], b"{oops"), 400);

    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    let stderr = stderr_reader.join().unwrap();
    for line in stdout_lines {
        stdout.push_str(&line.unwrap());
    }
    serve.wait().unwrap();
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "the test ran at the most verbose level"
    );
    assert!(
        stderr.contains("webhook rejected"),
        "the access log was captured:\n{stderr}"
    );
    for canary in CANARIES {
        assert!(
            !stderr.contains(canary),
            "log leaks {canary}:\n{}",
            grep(&stderr, canary)
        );
        assert!(!stdout.contains(canary), "stdout leaks {canary}");
        for body in &bodies {
            assert!(!body.contains(canary), "error body leaks {canary}: {body}");
        }
    }
}

fn grep(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|l| l.contains(needle))
        .take(5)
        .collect::<Vec<_>>()
        .join("\n")
}
