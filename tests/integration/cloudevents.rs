//! CloudEvents out against a real broker (Tansu): listeners publishing one event per record in
//! the binary and the structured mode, read back from the topic and parsed with the CloudEvents
//! Python SDK's Kafka binding (tests/cloudevents/sdk_check.py), imported by a worker, a record
//! the target rejects recorded as an error, and its retry published as the same event again.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::app::{settings, spawn_app, TestApp};
use crate::helpers::broker::Broker;
use crate::helpers::http::{request, Response};
use crate::helpers::target::{Reply, TargetServer};
use crate::helpers::worker::{eventually, InProcessWorker};
use hookpipe::kafka::tail::ReadMessage;

const TOKEN: &str = "admin-token-0123456789";
const WAIT: Duration = Duration::from_secs(30);

fn config(target_url: &str) -> String {
    format!(
        r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[worker]
session_timeout_ms = 6000
[worker.default_target]
type = "http"
url = "{target_url}"
mode = "record"
initial_backoff_ms = 50
max_backoff_ms = 400
[[listeners]]
id = "gh"
resource_path = "items"
trace_key_template = "{{{{order_id}}}}"
output_format = "cloudevents_binary"
[listeners.cloudevents]
type_template = "com.github.{{{{headers.x-github-event}}}}"
[[listeners]]
id = "shop"
resource_path = "items"
trace_key_template = "{{{{order_id}}}}"
output_format = "cloudevents_structured"
[listeners.cloudevents]
type_template = "com.shop.{{{{record.kind}}}}"
source = "https://hooks.example.com/shop"
"#
    )
}

fn api(app: &TestApp, method: &str, path: &str) -> Response {
    let auth = format!("Bearer {TOKEN}");
    request(
        app.addr,
        method,
        &format!("/api/v1{path}"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        b"",
    )
}

/// Posts `{"items": [...]}` with `headers`; returns the request id.
fn post(app: &TestApp, listener: &str, headers: &[(&str, &str)], items: Value) -> String {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let body = json!({ "items": items }).to_string();
    let response = request(app.addr, "POST", &app.hook_path(listener), &all, body.as_bytes());
    assert_eq!(response.status, 204, "{}", response.text());
    response.header("x-request-id").unwrap().to_string()
}

/// Where the CloudEvents SDK's Python is (`scripts/install-cloudevents-sdk.sh` puts it there).
fn sdk_python() -> PathBuf {
    let path = std::env::var_os("HOOKPIPE_CLOUDEVENTS_PYTHON").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/hookpipe/cloudevents-sdk/bin/python"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "the CloudEvents Python SDK is not at {}: run scripts/install-cloudevents-sdk.sh (scripts/test.sh does) \
         or set HOOKPIPE_CLOUDEVENTS_PYTHON",
        path.display()
    );
    path
}

/// What the SDK read of `messages` (the script fails on an event it refuses).
fn parsed_by_the_sdk(messages: &[(&str, &ReadMessage)]) -> Vec<Value> {
    let input: Vec<Value> = messages
        .iter()
        .map(|(mode, message)| {
            json!({"mode": mode, "key": message.key, "headers": message.headers,
                "value_base64": base64::engine::general_purpose::STANDARD.encode(&message.payload)})
        })
        .collect();
    let file = std::env::temp_dir().join(format!("hookpipe-ce-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&input).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cloudevents/sdk_check.py");
    let output = Command::new(sdk_python()).arg(script).arg(&file).output().unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "the CloudEvents SDK refused hookpipe's events:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn records_are_cloudevents_the_sdk_reads_a_worker_imports_and_a_failed_one_retries() {
    let broker = Broker::start();
    let target = TargetServer::start(|request, _| match request.body["data"]["kind"].as_str() {
        Some("bad") => Reply::json(422, json!({"error": "unknown sku"})),
        _ => Reply::status(200),
    });
    let settings = settings(&config(&target.url()), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);

    let binary_request = post(
        &app,
        "gh",
        &[("X-GitHub-Event", "push")],
        json!([{"order_id": "A-1", "kind": "ok"}, {"order_id": "A-2", "kind": "bad"}, {"order_id": "A-3", "kind": "ok"}]),
    );
    let structured_request = post(
        &app,
        "shop",
        &[],
        json!([{"order_id": "B-1", "kind": "created"}, {"order_id": "B-2", "kind": "paid"}, {"order_id": "B-3", "kind": "paid"}]),
    );
    // Acknowledged before the answer: all six events are on the topic now.
    let messages = app
        .reader(&settings.kafka.pages_topic)
        .read(6, WAIT, Duration::from_millis(1500))
        .unwrap();
    assert_eq!(messages.len(), 6, "one message per record, no page");
    let of = |listener: &str| -> Vec<&ReadMessage> {
        let mut found: Vec<&ReadMessage> = messages.iter().filter(|m| m.key.as_deref() == Some(listener)).collect();
        found.sort_by_key(|m| m.header("ce_id").map(str::to_string).unwrap_or_default());
        found
    };
    let (binary, structured) = (of("gh"), of("shop"));
    assert_eq!((binary.len(), structured.len()), (3, 3));
    for (index, message) in binary.iter().enumerate() {
        assert_eq!(message.header("ce_specversion"), Some("1.0"));
        assert_eq!(
            message.header("ce_id"),
            Some(format!("{binary_request}-{index}").as_str())
        );
        assert_eq!(message.header("ce_source"), Some("/listeners/gh"));
        assert_eq!(message.header("ce_type"), Some("com.github.push"));
        assert_eq!(message.header("ce_hookpiperequestid"), Some(binary_request.as_str()));
        assert_eq!(
            message.header("ce_hookpipetrace"),
            Some(format!("A-{}", index + 1).as_str())
        );
        assert_eq!(message.header("content-type"), Some("application/json"));
        let data: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(data["order_id"], format!("A-{}", index + 1), "the record is the value");
        assert!(message.header("hookpipe-page-id").is_none(), "no page headers");
    }
    let mut structured_values: Vec<Value> = structured
        .iter()
        .map(|message| {
            assert_eq!(
                message.header("content-type"),
                Some("application/cloudevents+json; charset=UTF-8")
            );
            assert_eq!(message.headers.len(), 1, "nothing but the content type");
            serde_json::from_slice(&message.payload).unwrap()
        })
        .collect();
    structured_values.sort_by_key(|event| event["id"].as_str().unwrap().to_string());
    let types: Vec<&str> = structured_values.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["com.shop.created", "com.shop.paid", "com.shop.paid"]);
    assert_eq!(structured_values[0]["source"], "https://hooks.example.com/shop");
    assert_eq!(structured_values[0]["id"], format!("{structured_request}-0"));
    assert_eq!(
        structured_values[0]["data"],
        json!({"order_id": "B-1", "kind": "created"})
    );

    // The CloudEvents SDK reads every one, in its mode, with the attributes hookpipe wrote.
    let mut to_parse: Vec<(&str, &ReadMessage)> = binary.iter().map(|m| ("binary", *m)).collect();
    to_parse.extend(structured.iter().map(|m| ("structured", *m)));
    let parsed = parsed_by_the_sdk(&to_parse);
    assert_eq!(parsed.len(), 6);
    for (event, (mode, message)) in parsed.iter().zip(&to_parse) {
        assert_eq!(event["mode"], *mode);
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["datacontenttype"], "application/json", "{mode}");
        assert!(event["time"].as_str().unwrap().ends_with("+00:00"), "{event}");
        let listener = message.key.as_deref().unwrap();
        assert_eq!(event["extensions"]["partitionkey"], listener);
        assert_eq!(event["extensions"]["hookpipelistener"], listener);
        let request_id = if listener == "gh" {
            &binary_request
        } else {
            &structured_request
        };
        assert_eq!(event["extensions"]["hookpiperequestid"], request_id.as_str());
        assert!(event["id"].as_str().unwrap().starts_with(request_id.as_str()));
        assert_eq!(event["extensions"]["hookpipetrace"], event["data"]["order_id"]);
        assert_eq!(event["v1"]["id"], event["id"], "the SDK's v1 API reads the same event");
        assert_eq!(event["v1"]["type"], event["type"]);
        assert_eq!(event["v1"]["data"], event["data"]);
    }
    assert_eq!(parsed[0]["type"], "com.github.push");
    assert_eq!(parsed[0]["source"], "/listeners/gh");
    assert_eq!(parsed[3]["source"], "https://hooks.example.com/shop");

    // A worker imports the five good records; the rejected one becomes an error with retry data.
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);
    let bad_id = format!("{binary_request}-1");
    let imported = eventually("five records imported", WAIT, || {
        let ok: Vec<_> = target.received().into_iter().filter(|r| r.status == 200).collect();
        (ok.len() == 5).then_some(ok)
    });
    let first = imported
        .iter()
        .find(|r| r.body["id"] == format!("{binary_request}-0"))
        .unwrap();
    assert_eq!(first.body["trace_key"], "A-1");
    assert_eq!(first.body["request_id"], binary_request.as_str());
    assert_eq!(
        first.body["event"],
        json!({"type": "com.github.push", "source": "/listeners/gh"})
    );
    assert_eq!(first.body["data"], json!({"order_id": "A-1", "kind": "ok"}));
    let errors = eventually("the rejected record's error", WAIT, || {
        let errors = api(&app, "GET", "/listeners/gh/errors").json()["errors"].clone();
        (errors.as_array().is_some_and(|e| e.len() == 1)).then_some(errors)
    });
    assert_eq!(errors[0]["record_id"], bad_id.as_str());
    assert_eq!(errors[0]["trace_key"], "A-2");
    assert_eq!(errors[0]["error"], "HTTP 422: unknown sku");
    assert_eq!(errors[0]["retry_data_stored"], true);
    let shown = api(&app, "GET", &format!("/listeners/gh/errors/{bad_id}")).json();
    assert_eq!(
        shown["retry_data"]["record"]["data"],
        json!({"order_id": "A-2", "kind": "bad"})
    );
    assert_eq!(api(&app, "GET", "/listeners/shop/errors").json()["errors"], json!([]));

    // The target learns the sku; the retry is published as the same event, attempt 2, and imported.
    target.set_behavior(|_, _| Reply::status(200));
    let retried = api(&app, "POST", &format!("/listeners/gh/errors/{bad_id}/retry"));
    assert_eq!(retried.status, 202, "{}", retried.text());
    let again = eventually("the retried record imported", WAIT, || {
        target
            .received()
            .into_iter()
            .find(|r| r.body["id"] == bad_id.as_str() && r.body["attempt"] == 2)
    });
    assert_eq!(again.body["event"]["type"], "com.github.push");
    assert_eq!(again.body["data"], json!({"order_id": "A-2", "kind": "bad"}));
    eventually("the error resolved", WAIT, || {
        let errors = api(&app, "GET", "/listeners/gh/errors").json()["errors"].clone();
        (errors == json!([])).then_some(())
    });
    let all = app
        .reader(&settings.kafka.pages_topic)
        .read(7, WAIT, Duration::from_millis(500))
        .unwrap();
    let republished = all
        .iter()
        .find(|m| m.header("ce_hookpipeattempt") == Some("2"))
        .expect("the retry is a binary event");
    assert_eq!(republished.header("ce_id"), Some(bad_id.as_str()));
    assert_eq!(republished.header("ce_type"), Some("com.github.push"));
    assert_eq!(republished.header("ce_hookpipetrace"), Some("A-2"));
    let parsed = parsed_by_the_sdk(&[("binary", republished)]);
    assert_eq!(parsed[0]["extensions"]["hookpipeattempt"], "2");
    worker.stop();
}
