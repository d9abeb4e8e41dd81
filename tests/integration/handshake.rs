//! Declarative handshakes end to end against the real server and broker (Tansu): every preset
//! answered over HTTP as its provider expects, a rule that publishes (its record read back from
//! Kafka) and one that does not, signed handshakes refused when forged, hostile values refused
//! with a 4xx — and nothing published but what should be. Listeners created through the API keep
//! their handshakes (and sealed verify tokens) through the state topic.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::helpers::api::api;
use crate::helpers::app::{all_data, settings, spawn_app, TestApp};
use crate::helpers::broker::Broker;
use crate::helpers::http::{metric, request, Response};

const CONFIG: &str = r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
admin_token = "admin-token-0123456789"
[pipeline]
page_linger_ms = 0

[[listeners]]
id = "meta"
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "hex"
header = "X-Hub-Signature-256"
prefix = "sha256="
secrets = ["meta-app-secret"]
[[listeners.handshakes]]
type = "meta"
verify_token = "meatyhamhock"

[[listeners]]
id = "dropbox"
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "hex"
header = "X-Dropbox-Signature"
secrets = ["dropbox-app-secret"]
[[listeners.handshakes]]
type = "dropbox"

[[listeners]]
id = "graph"
[[listeners.handshakes]]
type = "microsoft_graph"

[[listeners]]
id = "zoom"
[listeners.verification]
type = "recipe"
algorithm = "sha256"
encoding = "hex"
signature_header = "x-zm-signature"
prefix = "v0="
signed_content = "v0:{timestamp}:{body}"
timestamp_header = "x-zm-request-timestamp"
secrets = ["zoom-secret-token"]
[[listeners.handshakes]]
type = "zoom"

[[listeners]]
id = "twitter"
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "base64"
header = "x-twitter-webhooks-signature"
prefix = "sha256="
secrets = ["z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu"]
[[listeners.handshakes]]
type = "twitter"

[[listeners]]
id = "slack"
[listeners.verification]
type = "slack"
secrets = ["slack-signing-secret"]

[[listeners]]
id = "cloudevents"
[[listeners.handshakes]]
type = "cloudevents"
allowed_origins = ["eventgrid.azure.net"]
allowed_rate = 120

[[listeners]]
id = "rules"
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "hex"
header = "X-Sig"
secrets = ["rules-secret"]
[[listeners.handshakes]]
type = "rule"
name = "ping-publish"
method = "POST"
verified = true
publish = true
match = [{ json = "kind", equals = "ping" }, { json = "id", as = "id", otherwise = 400 }]
response = { status = 202, headers = { "Content-Type" = "application/json", "X-Ping" = "{{id}}" }, body = '{"pong":{{jsonSerialize id}}}' }
[[listeners.handshakes]]
type = "rule"
name = "ping-quiet"
method = "POST"
verified = true
match = [{ json = "kind", equals = "quiet" }]
response = { body = "quiet" }
[[listeners.handshakes]]
type = "rule"
name = "probe"
method = "GET"
match = [{ query = "probe", as = "probe" }]
response = { body = '{{hmac_sha256 probe "hex"}}' }
"#;

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

fn send(app: &TestApp, method: &str, listener: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let path = if query.is_empty() {
        app.hook_path(listener)
    } else {
        format!("{}?{query}", app.hook_path(listener))
    };
    request(app.addr, method, &path, headers, body)
}

/// A Zoom-signed POST: `x-zm-signature: v0=hex(HMAC(secret, "v0:{ts}:{body}"))`.
fn zoom(app: &TestApp, secret: &str, body: &[u8]) -> Response {
    let ts = now();
    let signed = [format!("v0:{ts}:").as_bytes(), body].concat();
    let signature = format!("v0={}", hex(&hmac256(secret.as_bytes(), &signed)));
    let headers = [
        ("Content-Type", "application/json"),
        ("x-zm-request-timestamp", ts.as_str()),
        ("x-zm-signature", signature.as_str()),
    ];
    send(app, "POST", "zoom", "", &headers, body)
}

/// A Slack-signed POST.
fn slack(app: &TestApp, body: &[u8]) -> Response {
    let ts = now();
    let signed = [format!("v0:{ts}:").as_bytes(), body].concat();
    let signature = format!("v0={}", hex(&hmac256(b"slack-signing-secret", &signed)));
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Slack-Request-Timestamp", ts.as_str()),
        ("X-Slack-Signature", signature.as_str()),
    ];
    send(app, "POST", "slack", "", &headers, body)
}

/// A POST to `rules` signed with `secret`.
fn rules(app: &TestApp, secret: &str, body: &[u8]) -> Response {
    let signature = hex(&hmac256(secret.as_bytes(), body));
    let headers = [("Content-Type", "application/json"), ("X-Sig", signature.as_str())];
    send(app, "POST", "rules", "", &headers, body)
}

#[test]
fn every_preset_and_rule_answers_over_http_and_only_deliveries_are_published() {
    let broker = Broker::start();
    let app = spawn_app(settings(CONFIG, &broker.bootstrap), &broker.bootstrap);

    // Meta: the documented GET, with the right and a wrong verify token.
    let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
    let response = send(&app, "GET", "meta", query, &[], b"");
    assert_eq!((response.status, response.text().as_str()), (200, "1158201444"));
    assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
    let response = send(&app, "GET", "meta", &query.replace("meatyhamhock", "wrong"), &[], b"");
    assert_eq!(response.status, 403, "{}", response.text());
    assert!(!response.text().contains("meatyhamhock") && !response.text().contains("wrong"));
    // A GET that is no handshake: the listener takes deliveries by POST only.
    let response = send(&app, "GET", "meta", "a=1", &[], b"");
    assert_eq!(response.status, 405, "{}", response.text());
    assert_eq!(response.header("allow"), Some("POST, PUT"));
    // A real, signed delivery goes through untouched (published: 1).
    let delivery = br#"{"object":"page","entry":[{"id":"1"}]}"#;
    let signature = format!("sha256={}", hex(&hmac256(b"meta-app-secret", delivery)));
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    assert_eq!(send(&app, "POST", "meta", "", &headers, delivery).status, 204);
    // A forged one carrying the handshake's query is not answered: it is no GET, and unsigned.
    let headers = [("Content-Type", "application/json")];
    assert_eq!(send(&app, "POST", "meta", query, &headers, delivery).status, 401);

    // Dropbox: echo with nosniff; a huge challenge is a 400.
    let response = send(&app, "GET", "dropbox", "challenge=dBx-Ch4llenge", &[], b"");
    assert_eq!((response.status, response.text().as_str()), (200, "dBx-Ch4llenge"));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
    let huge = format!("challenge={}", "A".repeat(4000));
    let response = send(&app, "GET", "dropbox", &huge, &[], b"");
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        response.text().contains("longer than 1024 bytes"),
        "{}",
        response.text()
    );

    // Microsoft Graph: POST ?validationToken=, answered URL-decoded; invalid UTF-8 is a 400.
    let headers = [("Content-Type", "text/plain; charset=utf-8")];
    let query = "validationToken=Validation%3a+Testing+client+application%21";
    let response = send(&app, "POST", "graph", query, &headers, b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "Validation: Testing client application!");
    let response = send(&app, "POST", "graph", "validationToken=%FF%FE", &headers, b"");
    assert_eq!(response.status, 400, "{}", response.text());

    // Zoom: the signed url_validation answered with the token's HMAC; forged → 401; missing
    // plainToken → 400.
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let response = zoom(&app, "zoom-secret-token", body);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.json(),
        json!({
            "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
            "encryptedToken": hex(&hmac256(b"zoom-secret-token", b"qgg8vlvZRS6UYooatFL8Aw")),
        })
    );
    assert_eq!(zoom(&app, "not-the-secret", body).status, 401);
    let missing = br#"{"payload":{},"event":"endpoint.url_validation"}"#;
    assert_eq!(zoom(&app, "zoom-secret-token", missing).status, 400);

    // Twitter CRC: the docs' example values.
    let response = send(
        &app,
        "GET",
        "twitter",
        "crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553&nonce=x",
        &[],
        b"",
    );
    assert_eq!(response.status, 200);
    let expected = base64::engine::general_purpose::STANDARD.encode(hmac256(
        b"z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu",
        b"9b4507b3-9040-4669-9ca3-6b94edb50553",
    ));
    assert_eq!(
        response.json(),
        json!({ "response_token": format!("sha256={expected}") })
    );

    // Slack: the verification's url_verification, as before; missing challenge → 400.
    let response = slack(
        &app,
        br#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595"}"#,
    );
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "3eZbrw1aBm2rZgRNFdxV2595")
    );
    assert_eq!(slack(&app, br#"{"type":"url_verification"}"#).status, 400);

    // CloudEvents abuse protection: OPTIONS with an allowed origin, then a stranger (403).
    let origin = [("WebHook-Request-Origin", "eventgrid.azure.net")];
    let response = send(&app, "OPTIONS", "cloudevents", "", &origin, b"");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("webhook-allowed-origin"), Some("eventgrid.azure.net"));
    assert_eq!(response.header("webhook-allowed-rate"), Some("120"));
    assert_eq!(response.header("allow"), Some("POST"));
    let stranger = [("WebHook-Request-Origin", "evil.example.net")];
    assert_eq!(send(&app, "OPTIONS", "cloudevents", "", &stranger, b"").status, 403);
    assert_eq!(send(&app, "OPTIONS", "cloudevents", "", &[], b"").status, 405);

    // Rules: a signed ping that publishes (its record is read back below) and answers 202…
    let response = rules(&app, "rules-secret", br#"{"kind":"ping","id":"p-1"}"#);
    assert_eq!(response.status, 202, "{}", response.text());
    assert_eq!(response.header("x-ping"), Some("p-1"));
    assert_eq!(response.json(), json!({"pong": "p-1"}));
    // …forged, or without its id, it is refused and publishes nothing…
    assert_eq!(rules(&app, "forged", br#"{"kind":"ping","id":"p-2"}"#).status, 401);
    assert_eq!(rules(&app, "rules-secret", br#"{"kind":"ping"}"#).status, 400);
    // …a quiet one answers and publishes nothing, and forged it is refused…
    let response = rules(&app, "rules-secret", br#"{"kind":"quiet","id":"q-1"}"#);
    assert_eq!((response.status, response.text().as_str()), (200, "quiet"));
    assert_eq!(rules(&app, "forged", br#"{"kind":"quiet"}"#).status, 401);
    // …an unverified GET answers with an HMAC under the listener's secret…
    let response = send(&app, "GET", "rules", "probe=hello", &[], b"");
    assert_eq!(response.text(), hex(&hmac256(b"rules-secret", b"hello")));
    // …a value that would end a header, and invalid UTF-8 in JSON, are refused or delivered as
    // the chain decides (never answered as a handshake)…
    let crlf = rules(&app, "rules-secret", br#"{"kind":"ping","id":"a\r\nSet-Cookie: x=1"}"#);
    assert_eq!(crlf.status, 400, "{}", crlf.text());
    assert!(crlf.header("set-cookie").is_none());
    assert_eq!(
        rules(&app, "rules-secret", b"{\"kind\":\"ping\",\"id\":\"\xff\"}").status,
        400
    );
    // …and a plain delivery goes through the chain as ever (published: 2).
    assert_eq!(
        rules(&app, "rules-secret", br#"{"kind":"order","id":"o-1"}"#).status,
        204
    );

    // Kafka holds the meta delivery, the published ping and the order, and nothing else.
    let pages = app.read_pages(3);
    assert_eq!(pages.len(), 3, "{pages:#?}");
    let mut data = all_data(&pages);
    data.sort_by_key(|record| record.to_string());
    assert_eq!(
        data,
        vec![
            json!({"object": "page", "entry": [{"id": "1"}]}),
            json!({"kind": "order", "id": "o-1"}),
            json!({"kind": "ping", "id": "p-1"}),
        ]
    );
    let metrics = request(app.addr, "GET", "/metrics", &[], b"").text();
    for (series, count) in [
        (r#"hookpipe_handshakes_total{listener="meta",result="answered"}"#, 1.0),
        (r#"hookpipe_handshakes_total{listener="meta",result="refused"}"#, 1.0),
        (r#"hookpipe_handshakes_total{listener="zoom",result="answered"}"#, 1.0),
    ] {
        assert_eq!(metric(&metrics, series), Some(count), "{series}");
    }
    assert_eq!(request(app.addr, "GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn handshakes_round_trip_through_the_api_and_the_state_topic() {
    let broker = Broker::start();
    let app = spawn_app(settings(CONFIG, &broker.bootstrap), &broker.bootstrap);
    let created = api(
        &app,
        "POST",
        "/listeners",
        Some(json!({
            "id": "api-meta",
            "handshakes": [{"type": "meta", "verify_token": "api-verify-token"}, {"type": "dropbox"}],
        })),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let view = created.json();
    assert!(!view.to_string().contains("api-verify-token"), "{view}");
    assert!(
        view["handshakes"][0]["verify_token"]["fingerprint"].is_string(),
        "{view}"
    );
    assert_eq!(view["handshakes"][1], json!({"type": "dropbox"}));
    let path = view["url"]
        .as_str()
        .unwrap()
        .split_once("/hooks/")
        .map(|(_, id)| format!("/hooks/{id}"))
        .unwrap();

    let window = api(
        &app,
        "POST",
        "/listeners/api-meta/debug",
        Some(json!({"duration_minutes": 5})),
    );
    assert_eq!(window.status, 200, "{}", window.text());

    // Served from the definition stored (its verify token sealed) in the state topic.
    let query = "hub.mode=subscribe&hub.challenge=42&hub.verify_token=api-verify-token";
    let response = request(app.addr, "GET", &format!("{path}?{query}"), &[], b"");
    assert_eq!((response.status, response.text().as_str()), (200, "42"));

    // Its debug capture names the rule and hides the verify token.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let capture = loop {
        let list = api(&app, "GET", "/listeners/api-meta/debug/logs", None).json();
        if let Some(capture) = list["captures"].as_array().and_then(|c| c.first()).cloned() {
            break capture;
        }
        assert!(std::time::Instant::now() < deadline, "no capture: {list}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(!capture.to_string().contains("api-verify-token"), "{capture}");
    assert_eq!(capture["handshake"], "meta");
    assert_eq!(capture["verification"], "not configured");
    assert!(
        capture["query"]
            .as_str()
            .unwrap()
            .contains("hub.verify_token=[redacted]"),
        "{capture}"
    );
    let shown = api(&app, "GET", "/listeners/api-meta", None).json();
    assert_eq!(shown["handshakes"], view["handshakes"]);
    // A second instance reads it from the state topic (and opens the sealed token).
    let second = spawn_app(settings(CONFIG, &broker.bootstrap), &broker.bootstrap);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = request(second.addr, "GET", &format!("{path}?{query}"), &[], b"");
        if response.status == 200 {
            assert_eq!(response.text(), "42");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "second instance: {}",
            response.status
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    second.stop();

    // An update replaces the list; a bad rule is refused naming its key.
    let bad = api(
        &app,
        "PATCH",
        "/listeners/api-meta",
        Some(json!({"handshakes": [{"type": "rule", "match": [{"query": "a", "json": "b"}]}]})),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("handshakes[0].match[0]"), "{}", bad.text());
    let updated = api(
        &app,
        "PATCH",
        "/listeners/api-meta",
        Some(json!({"handshakes": [{"type": "dropbox"}]})),
    );
    assert_eq!(updated.status, 200, "{}", updated.text());
    let response = request(app.addr, "GET", &format!("{path}?{query}"), &[], b"");
    assert_eq!(response.status, 405, "the meta handshake is gone: {}", response.text());
    let response = request(app.addr, "GET", &format!("{path}?challenge=c"), &[], b"");
    assert_eq!((response.status, response.text().as_str()), (200, "c"));
}

#[test]
fn check_config_names_the_listener_and_key_of_a_bad_handshake() {
    let dir = std::env::temp_dir().join(format!("hookpipe-handshake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[server]\npublic_id_secret = \"test-secret-0123456789\"\n[[listeners]]\nid = \"zoomy\"\n[[listeners.handshakes]]\ntype = \"zoom\"\n[[listeners.handshakes]]\ntype = \"rule\"\nmethod = \"TRACE\"\nmatch = [{ query = \"x\" }]\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookpipe"))
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("hookpipe runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("listeners[zoomy].handshakes[0]: the zoom handshake signs with the listener's secret"),
        "{stdout}"
    );
    assert!(
        stdout.contains("listeners[zoomy].handshakes[1].method: must be GET, POST"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
