//! Import workers against a real broker (Tansu), the real server and a local HTTP target that
//! fails chosen records: retries on 5xx/429, permanent 4xx and per-record errors listed as
//! errors (with their retry data), retry through the API and the CLI, auto-resolution by trace
//! key, and listeners that store no retry data.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::api::{api, errors_when, post_items, TOKEN};
use crate::helpers::app::{settings, spawn_app, TestApp};
use crate::helpers::broker::Broker;
use crate::helpers::http::{http_get, metric, request};
use crate::helpers::target::{times_seen, Received, Reply, TargetServer};
use crate::helpers::worker::{eventually, InProcessWorker};

const BIN: &str = env!("CARGO_BIN_EXE_hookpipe");
const WAIT: Duration = Duration::from_secs(30);

/// Server, listeners `orders` (trace key = order id) and `private` (no retry data), and a worker
/// whose default target is `target_url`; `extra` is appended (more targets, listeners).
fn config(target_url: &str, mode: &str, extra: &str) -> String {
    format!(
        r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[pipeline]
page_linger_ms = 0
[worker]
metrics_listen = "127.0.0.1:0"
session_timeout_ms = 6000
[worker.default_target]
type = "http"
url = "{target_url}"
mode = "{mode}"
initial_backoff_ms = 50
max_backoff_ms = 400
headers = {{ "x-api-key" = "k-1" }}
auth = {{ type = "bearer", token = "target-token-0123" }}
{extra}
[[listeners]]
id = "orders"
resource_path = "items"
trace_key_template = "{{{{order_id}}}}"
data_uri_template = "https://shop.example.com/orders/{{{{order_id}}}}"
[[listeners]]
id = "private"
resource_path = "items"
trace_key_template = "{{{{order_id}}}}"
do_not_store_retry_data = true
"#
    )
}

/// Record ids the target accepted (2xx), with how often.
fn accepted(target: &TargetServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in target.received() {
        if !(200..300).contains(&request.status) {
            continue;
        }
        for record in request.records() {
            *counts.entry(record["id"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    counts
}

fn kind(request: &Received) -> String {
    request.body["data"]["kind"].as_str().unwrap_or("ok").to_string()
}

#[test]
fn retries_5xx_and_429_imports_once_and_lists_a_permanent_4xx() {
    let broker = Broker::start();
    let target = TargetServer::start(|request, history| {
        let id = request.body["id"].as_str().unwrap_or_default();
        match kind(request).as_str() {
            "flaky" if times_seen(history, id) == 0 => Reply::status(503),
            "throttled" if times_seen(history, id) == 0 => Reply::status(429).with_header("Retry-After", "1"),
            "bad" => Reply::json(422, json!({"error": "unknown sku"})),
            _ => Reply::status(200),
        }
    });
    let settings = settings(&config(&target.url(), "record", ""), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let request_id = post_items(
        &app,
        "orders",
        json!([
            {"order_id": "A-1", "kind": "ok"},
            {"order_id": "A-2", "kind": "flaky"},
            {"order_id": "A-3", "kind": "throttled"},
            {"order_id": "A-4", "kind": "bad"},
        ]),
    );
    let errors = errors_when(&app, "orders", 1);
    let imported = eventually("three records imported", WAIT, || {
        let imported = accepted(&target);
        (imported.len() == 3).then_some(imported)
    });
    let id = |index: usize| format!("{request_id}-{index}");
    for index in 0..3 {
        assert_eq!(
            imported.get(&id(index)),
            Some(&1),
            "record {index} imported exactly once"
        );
    }
    let requests = target.received();
    let for_record =
        |index: usize| -> Vec<&Received> { requests.iter().filter(|r| r.body["id"] == id(index)).collect() };
    assert_eq!(
        for_record(1).iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![503, 200],
        "5xx retried"
    );
    let throttled = for_record(2);
    assert_eq!(throttled.iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 200]);
    assert!(
        throttled[1].at.duration_since(throttled[0].at) >= Duration::from_millis(950),
        "Retry-After: 1 honoured"
    );
    assert_eq!(for_record(3).len(), 1, "a 4xx is not retried");
    // Every request is the record as published, identified for deduplication, with the
    // configured headers and credentials.
    for request in &requests {
        let record_id = request.body["id"].as_str().unwrap();
        assert_eq!(request.header("idempotency-key"), Some(record_id));
        assert_eq!(request.header("x-hookpipe-listener-id"), Some("orders"));
        assert_eq!(request.header("x-api-key"), Some("k-1"));
        assert_eq!(request.header("authorization"), Some("Bearer target-token-0123"));
        assert_eq!(request.body["request_id"], request_id.as_str());
    }

    let error = &errors[0];
    assert_eq!(error["record_id"], id(3));
    assert_eq!(error["listener_id"], "orders");
    assert_eq!(error["trace_key"], "A-4");
    assert_eq!(error["data_uri"], "https://shop.example.com/orders/A-4");
    assert_eq!(error["error"], "HTTP 422: unknown sku");
    assert_eq!(error["target_status"], 422);
    assert_eq!(error["attempt"], 1);
    assert_eq!(error["tries"], 1);
    assert_eq!(error["retry_data_stored"], true);
    assert_eq!(error["can_retry"], true);
    assert!(error["failed_at"].as_str().unwrap().ends_with('Z'));

    // The error in full, with its retry data.
    let shown = api(&app, "GET", &format!("/listeners/orders/errors/{}", id(3)), None);
    assert_eq!(shown.status, 200, "{}", shown.text());
    let shown = shown.json();
    assert_eq!(
        shown["retry_data"]["record"]["data"],
        json!({"order_id": "A-4", "kind": "bad"})
    );
    assert_eq!(shown["retry_data"]["record"]["id"], id(3));
    assert_eq!(shown["retry_data"]["topic"], "hookpipe.pages");
    assert_eq!(api(&app, "GET", "/listeners/orders/errors/nope", None).status, 404);
    assert_eq!(api(&app, "GET", "/listeners/nobody/errors", None).status, 404);

    // The worker's own metrics endpoint, with exact counts.
    let text = eventually("the worker's counters", WAIT, || {
        let (status, text) = http_get(worker.metrics_addr.unwrap(), "/metrics");
        assert_eq!(status, 200);
        let done = metric(&text, r#"hookpipe_worker_records_failed_total{listener="orders"}"#) == Some(1.0);
        done.then_some(text)
    });
    let value = |series: &str| metric(&text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
    assert_eq!(
        value(r#"hookpipe_worker_records_imported_total{listener="orders"}"#),
        3.0
    );
    assert_eq!(value(r#"hookpipe_worker_records_failed_total{listener="orders"}"#), 1.0);
    assert_eq!(
        value(r#"hookpipe_worker_records_retried_total{listener="orders"}"#),
        2.0
    );
    let responses = |class: &str| {
        value(&format!(
            r#"hookpipe_worker_target_responses_total{{listener="orders",status_class="{class}"}}"#
        ))
    };
    assert_eq!((responses("2xx"), responses("4xx"), responses("5xx")), (3.0, 2.0, 1.0));
    assert_eq!(
        value(r#"hookpipe_worker_import_latency_seconds_count{listener="orders"}"#),
        1.0
    );
    assert!(text.contains("hookpipe_worker_consumer_lag"), "lag gauge declared");
    assert_eq!(http_get(worker.metrics_addr.unwrap(), "/healthz").0, 200);
    worker.stop();
}

#[test]
fn per_record_results_fail_only_the_rejected_records_of_a_page() {
    let broker = Broker::start();
    let target = TargetServer::start(|request, history| {
        let results: Vec<Value> = request
            .records()
            .iter()
            .map(|record| {
                let id = record["id"].as_str().unwrap();
                match record["data"]["kind"].as_str() {
                    Some("reject") => json!({"ok": false, "error": format!("rejected {}", record["data"]["order_id"].as_str().unwrap())}),
                    Some("busy") if times_seen(history, id) == 0 => json!({"ok": false, "error": "locked", "retryable": true}),
                    _ => json!({"ok": true}),
                }
            })
            .collect();
        Reply::json(200, Value::Array(results))
    });
    let extra = r#"
[worker.targets.orders]
type = "http"
url = "URL"
mode = "page"
per_record_results = true
initial_backoff_ms = 50
"#
    .replace("URL", &target.url());
    let settings = settings(
        &config("http://127.0.0.1:9/unused", "record", &extra),
        &broker.bootstrap,
    );
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let _worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let request_id = post_items(
        &app,
        "orders",
        json!([
            {"order_id": "P-1"},
            {"order_id": "P-2", "kind": "reject"},
            {"order_id": "P-3", "kind": "busy"},
            {"order_id": "P-4", "kind": "reject"},
            {"order_id": "P-5"},
        ]),
    );
    let errors = errors_when(&app, "orders", 2);
    let mut failed: Vec<(String, String)> = errors
        .iter()
        .map(|e| {
            (
                e["record_id"].as_str().unwrap().to_string(),
                e["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        vec![
            (format!("{request_id}-1"), "rejected P-2".to_string()),
            (format!("{request_id}-3"), "rejected P-4".to_string()),
        ]
    );
    assert!(errors.iter().all(|e| e["target_status"] == 200 && e["tries"] == 1));
    let requests = eventually("the busy record retried", WAIT, || {
        let requests = target.received();
        (requests.len() == 2).then_some(requests)
    });
    // One page request with all five, then the retryable one alone.
    assert_eq!(requests[0].body["type"], "page");
    assert_eq!(requests[0].records().len(), 5);
    assert_eq!(requests[0].body["listener_id"], "orders");
    let retried: Vec<Value> = requests[1].records().iter().map(|r| r["id"].clone()).collect();
    assert_eq!(retried, vec![json!(format!("{request_id}-2"))]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(target.received().len(), 2, "nothing else is sent");
}

/// Runs `hookpipe errors ARGS` against the app.
fn cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    command
        .arg("errors")
        .args(args)
        .env("HOOKPIPE_SERVER", format!("http://{}", app.addr))
        .env("HOOKPIPE_ADMIN_TOKEN", TOKEN);
    for proxy in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        command.env_remove(proxy);
    }
    let output = command.output().expect("running hookpipe errors");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn retry_through_the_api_and_the_cli_imports_the_records_and_resolves_their_errors() {
    let broker = Broker::start();
    let target = TargetServer::start(|request, _| {
        if request.body["data"]["sku"] == "S-404" {
            Reply::json(404, json!({"error": "no such product"}))
        } else {
            Reply::status(201)
        }
    });
    let settings = settings(&config(&target.url(), "record", ""), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let _worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let request_id = post_items(
        &app,
        "orders",
        json!([
            {"order_id": "R-1", "sku": "S-1"},
            {"order_id": "R-2", "sku": "S-404"},
            {"order_id": "R-3", "sku": "S-404"},
            {"order_id": "R-4", "sku": "S-404"},
        ]),
    );
    let errors = errors_when(&app, "orders", 3);
    let ids: Vec<String> = (1..4).map(|i| format!("{request_id}-{i}")).collect();
    // Newest first: failed_at descending.
    let failed_at: Vec<i64> = errors.iter().map(|e| e["failed_at_ms"].as_i64().unwrap()).collect();
    assert!(failed_at.windows(2).all(|w| w[0] >= w[1]), "{failed_at:?}");
    // Pagination.
    let page = api(&app, "GET", "/listeners/orders/errors?limit=2&offset=1", None).json();
    assert_eq!(
        (page["total"].as_u64(), page["errors"].as_array().unwrap().len()),
        (Some(3), 2)
    );
    assert_eq!(page["errors"][0]["record_id"], errors[1]["record_id"]);
    let bad = api(&app, "GET", "/listeners/orders/errors?limit=0", None);
    assert_eq!((bad.status, bad.json()["field"].clone()), (400, json!("limit")));

    // The CLI lists and shows them.
    let (code, out, err) = cli(&app, &["list", "orders"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("FAILED AT"), "{out}");
    for id in &ids {
        assert!(out.contains(id.as_str()), "{out}");
    }
    assert!(out.contains("HTTP 404: no such product"), "{out}");
    let (code, out, err) = cli(&app, &["show", "orders", &ids[0]]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("trace_key:") && out.contains("R-2"), "{out}");
    assert!(
        out.contains("retry data:\n") && out.contains("\"sku\": \"S-404\""),
        "{out}"
    );

    // The product gets created; retrying one through the API imports it with attempt 2 and
    // the same id, and the success resolves its error.
    target.set_behavior(|_, _| Reply::status(201));
    let retried = api(
        &app,
        "POST",
        &format!("/listeners/orders/errors/{}/retry", ids[0]),
        None,
    );
    assert_eq!(retried.status, 202, "{}", retried.text());
    assert_eq!(retried.json(), json!({"republished": [ids[0]], "attempt": 2}));
    errors_when(&app, "orders", 2);
    let again: Vec<Received> = target
        .received()
        .into_iter()
        .filter(|r| r.body["id"] == ids[0].as_str() && r.status == 201)
        .collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body["attempt"], 2);
    assert_eq!(again[0].body["data"], json!({"order_id": "R-2", "sku": "S-404"}));

    // Selected records through the API (one unknown id is reported, not fatal).
    let retried = api(
        &app,
        "POST",
        "/listeners/orders/errors/retry",
        Some(json!({"record_ids": [ids[1], "no-such-record"]})),
    );
    assert_eq!(retried.status, 202, "{}", retried.text());
    assert_eq!(
        retried.json(),
        json!({"republished": [ids[1]], "refused": [], "not_found": ["no-such-record"]})
    );
    errors_when(&app, "orders", 1);

    // All the rest through the CLI.
    let (code, out, err) = cli(&app, &["retry", "orders", "--all"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&ids[2]), "{out}");
    errors_when(&app, "orders", 0);
    let (code, out, _) = cli(&app, &["list", "orders"]);
    assert_eq!((code, out.as_str()), (0, "no open errors\n"));
    let imported = accepted(&target);
    for id in &ids {
        assert_eq!(imported.get(id), Some(&1), "{id} imported once after its retry");
    }
    let (status, metrics) = {
        let response = request(app.addr, "GET", "/metrics", &[], b"");
        (response.status, response.text())
    };
    assert_eq!(status, 200);
    assert_eq!(
        metric(&metrics, r#"hookpipe_errors_republished_total{listener="orders"}"#),
        Some(3.0)
    );

    // Resolving by hand.
    target.set_behavior(|_, _| Reply::status(400));
    let request_id = post_items(&app, "orders", json!([{"order_id": "R-9"}]));
    errors_when(&app, "orders", 1);
    let id = format!("{request_id}-0");
    let (code, out, err) = cli(&app, &["resolve", "orders", &id]);
    assert_eq!((code, out.trim()), (0, format!("resolved {id}").as_str()), "{err}");
    errors_when(&app, "orders", 0);
    let (code, _, err) = cli(&app, &["resolve", "orders", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
}

#[test]
fn a_later_success_with_the_same_trace_key_resolves_the_error() {
    let broker = Broker::start();
    let target = TargetServer::start(|request, _| {
        if request.body["data"]["total"].as_i64().unwrap_or(0) < 0 {
            Reply::json(422, json!({"message": "total must not be negative"}))
        } else {
            Reply::status(200)
        }
    });
    let settings = settings(&config(&target.url(), "record", ""), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);

    post_items(&app, "orders", json!([{"order_id": "T-7", "total": -1}]));
    post_items(&app, "orders", json!([{"order_id": "T-8", "total": -1}]));
    let errors = errors_when(&app, "orders", 2);
    assert!(errors
        .iter()
        .all(|e| e["error"] == "HTTP 422: total must not be negative"));
    // The source fixes order T-7 and sends it again: a new record, same trace key.
    post_items(&app, "orders", json!([{"order_id": "T-7", "total": 5}]));
    let open = errors_when(&app, "orders", 1);
    assert_eq!(open[0]["trace_key"], "T-8", "only T-7 resolved");
    // The worker counts the resolution once its own view has it (the server's may be first).
    eventually("the resolution counted", WAIT, || {
        let (_, text) = http_get(worker.metrics_addr.unwrap(), "/metrics");
        (metric(&text, r#"hookpipe_worker_errors_resolved_total{listener="orders"}"#) == Some(1.0)).then_some(())
    });
}

#[test]
fn without_retry_data_errors_are_listed_but_retry_is_refused_and_nothing_is_stored() {
    let broker = Broker::start();
    let target = TargetServer::start(|_, _| Reply::json(400, json!({"error": "rejected"})));
    let settings = settings(&config(&target.url(), "record", ""), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let _worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let private_request = post_items(
        &app,
        "private",
        json!([{"order_id": "X-1", "secret": "s1"}, {"order_id": "X-2"}]),
    );
    let orders_request = post_items(&app, "orders", json!([{"order_id": "O-1"}]));
    let errors = errors_when(&app, "private", 2);
    errors_when(&app, "orders", 1);
    for error in &errors {
        assert_eq!(error["retry_data_stored"], false);
        assert_eq!(error["can_retry"], false);
        assert!(
            error["retry_unavailable"]
                .as_str()
                .unwrap()
                .contains("does not store retry data"),
            "{error}"
        );
    }
    let id = format!("{private_request}-0");
    let shown = api(&app, "GET", &format!("/listeners/private/errors/{id}"), None).json();
    assert_eq!(shown["retry_data"], Value::Null);
    assert!(!shown.to_string().contains("s1"), "no record content: {shown}");
    let refused = api(&app, "POST", &format!("/listeners/private/errors/{id}/retry"), None);
    assert_eq!(refused.status, 409);
    assert!(refused.json()["error"]
        .as_str()
        .unwrap()
        .contains("do_not_store_retry_data"));
    let refused = api(
        &app,
        "POST",
        "/listeners/private/errors/retry",
        Some(json!({"all": true})),
    );
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert_eq!(refused.json()["refused"].as_array().unwrap().len(), 2);
    assert_eq!(
        api(
            &app,
            "POST",
            "/listeners/private/errors/retry",
            Some(json!({"all": true, "record_ids": ["x"]}))
        )
        .status,
        400
    );

    // Retry data lives in the errors topic, with each error: the orders error has its record,
    // the private listener's errors none (nothing of their content is in Kafka but the page).
    let entries = app
        .reader(&settings.kafka.errors_topic)
        .read(3, Duration::from_secs(20), Duration::from_millis(500))
        .unwrap();
    assert_eq!(entries.len(), 3, "three errors, nothing else");
    for entry in &entries {
        let value: Value = serde_json::from_slice(&entry.payload).unwrap();
        match value["listener_id"].as_str().unwrap() {
            "orders" => {
                assert_eq!(value["record_id"], format!("{orders_request}-0"));
                assert_eq!(value["retry_data"]["data"], json!({"order_id": "O-1"}));
            }
            _ => {
                assert!(value.get("retry_data").is_none(), "{value}");
                assert!(!value.to_string().contains("s1"), "no record content: {value}");
            }
        }
    }
    let pages = app.read_pages(2);
    let header_of = |listener: &str| {
        pages
            .iter()
            .find(|p| p.value["listener_id"] == listener)
            .and_then(|p| p.message.header("hookpipe-retry-data").map(str::to_string))
    };
    assert_eq!(header_of("private").as_deref(), Some("none"));
    assert_eq!(header_of("orders").as_deref(), Some("stored"));
}

#[test]
fn the_file_target_appends_one_json_line_per_record() {
    let broker = Broker::start();
    let dir = std::env::temp_dir().join(format!("hookpipe-worker-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("orders.jsonl");
    let extra = format!(
        "[worker.targets.orders]\ntype = \"file\"\npath = \"{}\"\n",
        path.display()
    );
    let settings = settings(&config("http://127.0.0.1:9/unused", "page", &extra), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let first = post_items(&app, "orders", json!([{"order_id": "F-1"}, {"order_id": "F-2"}]));
    let second = post_items(&app, "orders", json!([{"order_id": "F-3"}]));
    let lines: Vec<Value> = eventually("three lines", WAIT, || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (lines.len() == 3).then_some(lines)
    });
    worker.stop();
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![format!("{first}-0"), format!("{first}-1"), format!("{second}-0")]
    );
    assert!(lines
        .iter()
        .all(|l| l["listener_id"] == "orders" && l["page_id"].is_string()));
    assert_eq!(lines[2]["data"], json!({"order_id": "F-3"}));
    assert_eq!(lines[2]["trace_key"], "F-3");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn https_targets_are_verified_against_the_ca_file() {
    let broker = Broker::start();
    let target = TargetServer::start_tls(|_, _| Reply::status(200));
    // `orders` trusts the target's certificate; `private` uses the built-in roots, which do not
    // know a self-signed certificate: its record is not sent, it becomes an error.
    let extra = format!(
        "max_attempts = 1\n[worker.targets.orders]\ntype = \"http\"\nurl = \"{}\"\nca_file = \"{}\"\n",
        target.url(),
        target.ca_file().display()
    );
    let settings = settings(&config(&target.url(), "page", &extra), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let request_id = post_items(&app, "orders", json!([{"order_id": "T-1"}]));
    post_items(&app, "private", json!([{"order_id": "T-2"}]));
    let imported = eventually("the https import", WAIT, || {
        let received = target.received();
        (!received.is_empty()).then_some(received)
    });
    let errors = errors_when(&app, "private", 1);
    worker.stop();
    assert_eq!(
        imported.len(),
        1,
        "only the target that trusts the certificate reached it"
    );
    assert_eq!(imported[0].records()[0]["id"], format!("{request_id}-0"));
    assert_eq!(
        imported[0].header("authorization"),
        None,
        "`orders` has no auth of its own"
    );
    let message = errors[0]["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        message.contains("certificate") || message.contains("issuer"),
        "{}",
        errors[0]
    );
}

/// A `token` listener's secret, sent in the body at `json_path`, verifies the request and then
/// appears nowhere: not in the pages, errors (with their retry data), samples or debug captures on Kafka,
/// not in the API's views, not at the import target.
#[test]
fn a_token_in_the_body_is_redacted_everywhere_after_verification() {
    const CANARY: &str = "canary-body-token-5e6f7a8b9c";
    let broker = Broker::start();
    let target = TargetServer::start(|request, _| match kind(request).as_str() {
        "bad" => Reply::json(422, json!({"error": "rejected"})),
        _ => Reply::status(200),
    });
    let extra = format!(
        "[[listeners]]\nid = \"tokened\"\n\
         [listeners.verification]\ntype = \"token\"\ntokens = [\"{CANARY}\"]\njson_path = \"myAuth.token\"\n"
    );
    let settings = settings(&config(&target.url(), "record", &extra), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);
    let opened = api(
        &app,
        "POST",
        "/listeners/tokened/debug",
        Some(json!({"duration_minutes": 5})),
    );
    assert_eq!(opened.status, 200, "{}", opened.text());

    let mut request_ids = Vec::new();
    for kind in ["ok", "bad"] {
        let body = json!({"myAuth": {"token": CANARY, "user": "u1"}, "order_id": "T-1", "kind": kind});
        let response = app.post("tokened", "application/json", body.to_string().as_bytes());
        assert_eq!(response.status, 204, "{}", response.text());
        request_ids.push(response.header("x-request-id").unwrap().to_string());
    }
    // A wrong token is still refused: the redaction happens after verification only.
    let wrong = json!({"myAuth": {"token": "[redacted]"}});
    assert_eq!(
        app.post("tokened", "application/json", wrong.to_string().as_bytes())
            .status,
        401
    );

    let errors = errors_when(&app, "tokened", 1);
    let imported = eventually("the good record imported", WAIT, || {
        let received: Vec<Received> = target.received().into_iter().filter(|r| r.status == 200).collect();
        (!received.is_empty()).then_some(received)
    });
    assert_eq!(
        imported[0].body["data"]["myAuth"],
        json!({"token": "[redacted]", "user": "u1"}),
        "the key stays, the value is hidden"
    );
    let sample = eventually("sample data", WAIT, || {
        let response = api(&app, "GET", "/listeners/tokened/sample", None);
        (response.status == 200).then(|| response.text())
    });
    let captures = eventually("debug captures", WAIT, || {
        let response = api(&app, "GET", "/listeners/tokened/debug/logs", None);
        let text = response.text();
        (response.status == 200 && request_ids.iter().all(|id| text.contains(id.as_str()))).then_some(text)
    });
    let error_id = errors[0]["record_id"].as_str().unwrap().to_string();
    let error = api(&app, "GET", &format!("/listeners/tokened/errors/{error_id}"), None);
    assert_eq!(error.status, 200, "{}", error.text());
    assert_eq!(
        error.json()["retry_data"]["record"]["data"]["myAuth"]["token"],
        "[redacted]"
    );
    worker.stop();

    let mut seen = vec![
        ("sample", sample),
        ("debug captures", captures),
        ("error", error.text()),
        ("errors list", Value::Array(errors).to_string()),
    ];
    for request in target.received() {
        seen.push(("import target", request.body.to_string()));
    }
    let kafka = &settings.kafka;
    for topic in [
        &kafka.pages_topic,
        &kafka.errors_topic,
        &kafka.state_topic,
        &kafka.debug_topic,
    ] {
        let messages = app
            .reader(topic)
            .read(usize::MAX, Duration::from_secs(2), Duration::from_millis(500))
            .expect("reading a topic");
        assert!(!messages.is_empty(), "{topic} is empty");
        for message in messages {
            let mut text = String::from_utf8_lossy(&message.payload).into_owned();
            text.push_str(message.key.as_deref().unwrap_or_default());
            for (name, value) in &message.headers {
                text.push_str(name);
                text.push_str(value);
            }
            seen.push(("a topic", text));
        }
    }
    for (place, text) in &seen {
        assert!(!text.contains(CANARY), "the token is in {place}: {text}");
    }
    assert!(
        seen.iter().any(|(_, text)| text.contains("[redacted]")),
        "the records kept the token's key"
    );
}
