//! Retry data kept with errors, against a real broker (Tansu), the real server and worker: one
//! Kafka message per page and nothing in the retry topic while nothing fails; a failed record
//! retried after its page is gone from the pages topic; errors without retry data (the
//! listener stores none, the record is over the cap) saying why in the API and the CLI; and an
//! error recorded the way earlier versions recorded it (retry data in the retry topic) retried.

use std::process::Command;
use std::time::Duration;

use hookpipe::config::Settings;
use hookpipe::kafka::state::StateTopic;
use hookpipe::kafka::topics::{create_missing, TopicSpec};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

use crate::helpers::api::{api, errors_when, post_items, TOKEN};
use crate::helpers::app::{settings, spawn_app, TestApp};
use crate::helpers::broker::Broker;
use crate::helpers::http::{http_get, metric, request};
use crate::helpers::target::{Reply, TargetServer};
use crate::helpers::worker::{eventually, InProcessWorker};

const BIN: &str = env!("CARGO_BIN_EXE_hookpipe");
const WAIT: Duration = Duration::from_secs(30);

/// Listeners `orders` (on its own pages topic) and `private` (no retry data); a worker whose
/// target is `target_url`, one request per record; `extra` is appended.
fn config(target_url: &str, extra: &str) -> String {
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
{extra}
[worker.default_target]
type = "http"
url = "{target_url}"
mode = "record"
initial_backoff_ms = 50
max_backoff_ms = 400
[[listeners]]
id = "orders"
topic = "orders.pages"
resource_path = "items"
trace_key_template = "{{{{order_id}}}}"
[[listeners]]
id = "private"
resource_path = "items"
do_not_store_retry_data = true
"#
    )
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// `hookpipe errors ARGS` against the app: exit code, stdout, stderr.
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

/// Every message of `topic` (none when it does not exist), read until it stays quiet.
fn messages_of(app: &TestApp, topic: &str) -> usize {
    app.reader(topic)
        .read(usize::MAX, Duration::from_secs(3), Duration::from_millis(500))
        .expect("reading a topic")
        .len()
}

/// Creates the retry topic as earlier versions did (7 days), as on a deployment being upgraded.
fn create_legacy_retry_topic(settings: &Settings, bootstrap: &str) {
    let spec = TopicSpec::retained(&settings.kafka.retry_topic, 7 * 24 * 3_600_000);
    block_on(create_missing(&settings.kafka, bootstrap, &[spec])).expect("retry topic created");
}

#[test]
fn ingest_writes_one_message_per_page_and_nothing_to_the_retry_topic_while_nothing_fails() {
    let broker = Broker::start();
    let target = TargetServer::start(|_, _| Reply::status(200));
    let settings = settings(&config(&target.url(), ""), &broker.bootstrap);
    create_legacy_retry_topic(&settings, &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let mut records = 0;
    for request in 0..12 {
        let items: Vec<Value> = (0..=request % 4)
            .map(|i| json!({"order_id": format!("N-{request}-{i}")}))
            .collect();
        records += items.len();
        post_items(&app, "orders", Value::Array(items));
    }
    eventually("every record imported", WAIT, || {
        let (_, text) = http_get(worker.metrics_addr.unwrap(), "/metrics");
        (metric(&text, r#"hookpipe_worker_records_imported_total{listener="orders"}"#) == Some(records as f64))
            .then_some(())
    });
    worker.stop();

    let metrics = request(app.addr, "GET", "/metrics", &[], b"").text();
    let published = metric(&metrics, r#"hookpipe_pages_published_total{listener="orders"}"#).unwrap();
    let pages = app.read_pages_from("orders.pages", published as usize);
    assert_eq!(pages.len() as f64, published, "one Kafka message per page published");
    let in_pages: usize = pages.iter().map(|page| page.records().len()).sum();
    assert_eq!(in_pages, records);
    assert_eq!(
        metric(&metrics, r#"hookpipe_records_published_total{listener="orders"}"#),
        Some(records as f64)
    );
    assert_eq!(
        messages_of(&app, &settings.kafka.retry_topic),
        0,
        "the retry topic got nothing"
    );
    assert_eq!(messages_of(&app, &settings.kafka.errors_topic), 0, "no errors");
}

#[test]
fn a_failed_record_is_retried_after_its_page_is_gone_from_the_pages_topic() {
    let broker = Broker::start();
    let target = TargetServer::start(|request, _| {
        if request.body["data"]["sku"] == "S-404" {
            Reply::json(404, json!({"error": "no such product"}))
        } else {
            Reply::status(201)
        }
    });
    let settings = settings(&config(&target.url(), ""), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);
    let request_id = post_items(
        &app,
        "orders",
        json!([{"order_id": "G-1", "sku": "S-1"}, {"order_id": "G-2", "sku": "S-404"}]),
    );
    let id = format!("{request_id}-1");
    let errors = errors_when(&app, "orders", 1);
    assert_eq!(
        (errors[0]["record_id"].as_str(), errors[0]["can_retry"].as_bool()),
        (Some(id.as_str()), Some(true))
    );
    assert!(errors[0].get("retry_data").is_none(), "lists carry no record content");
    // The worker counts the record once its error write returned, which can be a moment after
    // the error is readable through the API.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stored = loop {
        let (_, text) = http_get(worker.metrics_addr.unwrap(), "/metrics");
        let stored = metric(&text, r#"hookpipe_worker_retry_data_records_total{listener="orders"}"#);
        if stored.is_some() || std::time::Instant::now() > deadline {
            break stored;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stored, Some(1.0));
    worker.stop();

    // The pages topic loses every page (as retention would): deleted, then made again, empty.
    let admin: AdminClient<DefaultClientContext> =
        hookpipe::kafka::base_client_config(&settings.kafka, &broker.bootstrap)
            .create()
            .unwrap();
    let deleted = block_on(admin.delete_topics(&["orders.pages"], &AdminOptions::new())).unwrap();
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    eventually("the pages topic recreated", WAIT, || {
        block_on(hookpipe::kafka::topics::provision_topic(
            &settings,
            &broker.bootstrap,
            "orders.pages",
        ))
        .ok()
    });
    assert_eq!(messages_of(&app, "orders.pages"), 0, "the page is gone");

    // The error still has its retry data, and the retry imports the record.
    let shown = api(&app, "GET", &format!("/listeners/orders/errors/{id}"), None).json();
    assert_eq!(
        shown["retry_data"]["record"]["data"],
        json!({"order_id": "G-2", "sku": "S-404"})
    );
    assert_eq!(shown["retry_data"]["topic"], "orders.pages");
    target.set_behavior(|_, _| Reply::status(201));
    // A new group: the old one's committed offsets point past the recreated topic's start.
    let mut fresh = settings.clone();
    fresh.worker.group_id = "workers-after-expiry".into();
    let _worker = InProcessWorker::start(&fresh, &broker.bootstrap);
    let (code, out, err) = cli(&app, &["retry", "orders", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("republished {id} (attempt 2)")), "{out}");
    errors_when(&app, "orders", 0);
    let imported: Vec<Value> = target
        .received()
        .into_iter()
        .filter(|r| r.body["id"] == id.as_str() && r.status == 201)
        .map(|r| r.body)
        .collect();
    assert_eq!(imported.len(), 1, "imported once, after its retry");
    assert_eq!(imported[0]["attempt"], 2);
    assert_eq!(imported[0]["data"], json!({"order_id": "G-2", "sku": "S-404"}));
    assert_eq!(imported[0]["request_id"], request_id.as_str());
}

#[test]
fn errors_without_retry_data_say_why_in_the_api_and_the_cli() {
    let broker = Broker::start();
    let target = TargetServer::start(|_, _| Reply::json(400, json!({"error": "rejected"})));
    let settings = settings(&config(&target.url(), "retry_data_max_bytes = 1024"), &broker.bootstrap);
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let _worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let private = post_items(
        &app,
        "private",
        json!([{"order_id": "P-1", "secret": "s3cr3t-content"}]),
    );
    let big = post_items(&app, "orders", json!([{"order_id": "B-1", "blob": "x".repeat(2000)}]));
    errors_when(&app, "private", 1);
    errors_when(&app, "orders", 1);
    for (listener, id, why) in [
        (
            "private",
            format!("{private}-0"),
            "does not store retry data (do_not_store_retry_data)",
        ),
        ("orders", format!("{big}-0"), "over worker.retry_data_max_bytes (1024)"),
    ] {
        let shown = api(&app, "GET", &format!("/listeners/{listener}/errors/{id}"), None).json();
        assert_eq!(
            (shown["retry_data"].clone(), shown["can_retry"].clone()),
            (Value::Null, json!(false))
        );
        assert_eq!(shown["retry_data_stored"], false);
        assert!(shown["retry_unavailable"].as_str().unwrap().contains(why), "{shown}");
        let refused = api(&app, "POST", &format!("/listeners/{listener}/errors/{id}/retry"), None);
        assert_eq!(refused.status, 409);
        assert!(
            refused.json()["error"].as_str().unwrap().contains(why),
            "{}",
            refused.text()
        );

        let (code, out, err) = cli(&app, &["show", listener, &id]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("retry data: none — ") && out.contains(why), "{out}");
        let (code, out, err) = cli(&app, &["retry", listener, &id]);
        assert_ne!(code, 0, "{out}");
        assert!(err.contains("409") && err.contains(why), "{err}");
        let (code, out, _) = cli(&app, &["retry", listener, "--all"]);
        assert!(code != 0 || out.contains("refused"), "{out}");
    }
    // Nothing of the private record's content is in the errors topic.
    let entries = app
        .reader(&settings.kafka.errors_topic)
        .read(2, Duration::from_secs(20), Duration::from_millis(500))
        .unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        let text = String::from_utf8_lossy(&entry.payload).into_owned();
        assert!(
            !text.contains("s3cr3t-content") && !text.contains(&"x".repeat(2000)),
            "{text}"
        );
    }
}

/// An error and its retry data exactly as the version that wrote retry data at ingest left them:
/// the error without `retry_data` in the errors topic, the page's retry data (version 2, key =
/// page id) in the retry topic. The new version reads the latter for it and retries it.
#[test]
fn an_error_recorded_by_an_earlier_version_still_retries_from_the_retry_topic() {
    let broker = Broker::start();
    let target = TargetServer::start(|_, _| Reply::status(201));
    let settings = settings(&config(&target.url(), ""), &broker.bootstrap);
    create_legacy_retry_topic(&settings, &broker.bootstrap);
    let kafka = &settings.kafka;
    let now = hookpipe::pipeline::unix_millis_now();
    let received_at = hookpipe::pipeline::rfc3339_millis(now - 2_000);
    let record = json!({"id": "old-req-0", "request_id": "old-req", "trace_key": "L-1", "data_uri": null,
        "received_at": received_at, "data": {"order_id": "L-1", "sku": "S-9"}});
    let other = json!({"id": "old-req-1", "request_id": "old-req", "trace_key": "L-2", "data_uri": null,
        "received_at": received_at, "data": {"order_id": "L-2"}});
    let records = [record.to_string().into_bytes(), other.to_string().into_bytes()];
    let retry_data = hookpipe::wire::serialize_retry_data("orders", "orders.pages", "old-page", &received_at, &records);
    let entry = json!({"listener_id": "orders", "record_id": "old-req-0", "request_id": "old-req",
        "trace_key": "L-1", "data_uri": null, "error": "HTTP 404: no such product", "target_status": 404,
        "attempt": 1, "tries": 1, "failed_at": hookpipe::pipeline::rfc3339_millis(now - 1_000),
        "failed_at_ms": now - 1_000, "received_at": received_at, "page_id": "old-page", "topic": "orders.pages",
        "retry_data_stored": true, "retry_requested_at": null});
    block_on(async {
        let producer: FutureProducer = hookpipe::kafka::base_client_config(kafka, &broker.bootstrap)
            .create()
            .unwrap();
        let mut headers = OwnedHeaders::new();
        for (key, value) in hookpipe::wire::retry_data_headers("orders", "old-page") {
            headers = headers.insert(rdkafka::message::Header {
                key,
                value: Some(value),
            });
        }
        producer
            .send(
                FutureRecord::to(&kafka.retry_topic)
                    .key("old-page")
                    .payload(&retry_data)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .expect("legacy retry data written");
        let errors = StateTopic::open(kafka, &broker.bootstrap, &kafka.errors_topic, true)
            .await
            .expect("errors topic");
        errors
            .put("orders/old-req-0", entry.to_string().as_bytes())
            .await
            .expect("legacy error written");
    });

    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let listed = errors_when(&app, "orders", 1);
    assert_eq!(listed[0]["can_retry"], true);
    let shown = api(&app, "GET", "/listeners/orders/errors/old-req-0", None).json();
    assert_eq!(shown["retry_data"]["record"], record, "{shown}");
    assert_eq!(shown["retry_data"]["page_id"], "old-page");
    let _worker = InProcessWorker::start(&settings, &broker.bootstrap);
    let retried = api(&app, "POST", "/listeners/orders/errors/old-req-0/retry", None);
    assert_eq!(retried.status, 202, "{}", retried.text());
    assert_eq!(retried.json(), json!({"republished": ["old-req-0"], "attempt": 2}));
    errors_when(&app, "orders", 0);
    let imported = eventually("the old record imported", WAIT, || {
        target
            .received()
            .into_iter()
            .find(|r| r.body["id"] == "old-req-0" && r.status == 201)
    });
    assert_eq!(imported.body["attempt"], 2);
    assert_eq!(imported.body["data"], json!({"order_id": "L-1", "sku": "S-9"}));
}
