//! `response.wait = "import"` (issue #16 §1) against a real broker (Tansu), two serve instances
//! of one fleet and an in-process import worker: a request is answered once the worker imported
//! (200, with a value of the target's answer) or failed (422, with the target's error) its
//! records, whichever instance holds the connection; pages of listeners with an ordering key and
//! CloudEvents wait the same way; a listener that does not wait is answered at once and gets no
//! result written; with the worker stopped the answer is 202 after the timeout, and the record is
//! imported once a worker runs again; over `server.max_import_waits` a request is refused (503)
//! before anything of it is published; Kafka gone, the answer is the usual 503.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::api::{api, TOKEN};
use crate::helpers::app::{settings, spawn_app, TestApp};
use crate::helpers::broker::Broker;
use crate::helpers::http::{http_get, metric, Response};
use crate::helpers::target::{Received, Reply, TargetServer};
use crate::helpers::worker::{eventually, InProcessWorker};

fn config(target_url: &str, wait_timeout_ms: u64, max_import_waits: usize) -> String {
    let waiting = |id: &str, extra: &str| {
        format!(
            r#"
[[listeners]]
id = "{id}"
{extra}
[listeners.response]
status = 200
wait = "import"
wait_timeout_ms = {wait_timeout_ms}
body = '{{"order": "{{{{results.0.target.id}}}}", "imported": {{{{imported}}}} }}'
"#
        )
    };
    format!(
        r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
max_import_waits = {max_import_waits}
[pipeline]
page_linger_ms = 0
[worker]
session_timeout_ms = 6000
metrics_listen = "127.0.0.1:0"
[worker.default_target]
type = "http"
url = "{target_url}"
mode = "record"
max_attempts = 2
initial_backoff_ms = 50
max_backoff_ms = 200
{orders}{keyed}{events}
[[listeners]]
id = "plain"
"#,
        orders = waiting("orders", ""),
        keyed = waiting("keyed", "ordering_key = \"sku\""),
        events = waiting("events", "output_format = \"cloudevents_structured\""),
    )
}

/// The target: 422 with an error for the sku `bad`, otherwise 201 with the order's id.
fn target() -> TargetServer {
    TargetServer::start(|request, _| {
        let sku = sku_of(request).unwrap_or_default();
        if sku == "bad" {
            return Reply::json(422, json!({"error": "unknown sku bad"}));
        }
        Reply::json(201, json!({"id": format!("order-{sku}")}))
    })
}

fn sku_of(request: &Received) -> Option<String> {
    request.body["data"]["sku"].as_str().map(str::to_string)
}

fn post(app: &TestApp, listener: &str, body: Value) -> (Response, Duration) {
    let started = Instant::now();
    let response = app.post(listener, "application/json", body.to_string().as_bytes());
    (response, started.elapsed())
}

fn serve_metric(app: &TestApp, series: &str) -> f64 {
    metric(&http_get(app.addr, "/metrics").1, series).unwrap_or(0.0)
}

#[test]
fn answers_wait_for_the_import_on_whichever_instance_holds_the_request() {
    let broker = Broker::start();
    let target = target();
    let settings = settings(
        &config(&format!("http://{}", target.addr), 30_000, 1024),
        &broker.bootstrap,
    );
    let a = spawn_app(settings.clone(), &broker.bootstrap);
    let b = spawn_app(settings.clone(), &broker.bootstrap);
    let _worker = InProcessWorker::start(&settings, &broker.bootstrap);

    // A good record on A: 200 once imported, with the id the target gave it (the first request
    // also waits for the worker to join its group).
    let (response, _) = post(&a, "orders", json!({"sku": "A1"}));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"order": "order-A1", "imported": 1}));
    assert!(
        target
            .received()
            .iter()
            .any(|r| sku_of(r).as_deref() == Some("A1") && r.status == 201),
        "imported before the answer"
    );

    // A record the target rejects, on B: 422 (the target called it invalid) with its error.
    let (response, _) = post(&b, "orders", json!({"sku": "bad"}));
    assert_eq!(response.status, 422, "{}", response.text());
    let body = response.json();
    assert_eq!(body["error"], "import failed");
    assert_eq!((body["imported"].as_u64(), body["failed"].as_u64()), (Some(0), Some(1)));
    let request_id = response.header("x-request-id").unwrap();
    assert_eq!(body["request_id"], request_id);
    assert_eq!(body["failures"][0]["id"], format!("{request_id}-0"));
    assert_eq!(body["failures"][0]["status"], 422);
    assert_eq!(body["failures"][0]["error"], "HTTP 422: unknown sku bad");

    // Two records of one request, one of them rejected: the failure answer counts both.
    let (response, _) = post(&a, "orders", json!([{"sku": "A2"}, {"sku": "bad"}]));
    assert_eq!(response.status, 422, "{}", response.text());
    let body = response.json();
    assert_eq!((body["imported"].as_u64(), body["failed"].as_u64()), (Some(1), Some(1)));
    assert_eq!(body["failures"][0]["index"], 1);

    // An ordering key (version 2 pages) and CloudEvents wait the same way.
    let (response, _) = post(&b, "keyed", json!({"sku": "K1"}));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["order"], "order-K1");
    let (response, _) = post(&a, "events", json!({"sku": "E1"}));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["order"], "order-E1");

    // Each instance read every result and matched only its own requests' (both instances share
    // this process's metrics registry: the counts are the two instances' sum). The instance that
    // does not hold a request may read its result a moment after the other answered.
    let (matched, unknown) = eventually("both instances read the 5 results", Duration::from_secs(10), || {
        let matched = serve_metric(&a, "hookpipe_import_results_consumed_total{outcome=\"matched\"}");
        let unknown = serve_metric(&a, "hookpipe_import_results_consumed_total{outcome=\"unknown\"}");
        (unknown >= 5.0).then_some((matched, unknown))
    });
    assert_eq!(
        (matched, unknown),
        (5.0, 5.0),
        "one result per request, read by both instances"
    );
    let outcome = |outcome: &str| {
        serve_metric(
            &a,
            &format!("hookpipe_import_waits_total{{listener=\"orders\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!((outcome("imported"), outcome("failed")), (1.0, 2.0));
    assert_eq!(serve_metric(&a, "hookpipe_import_waits_in_flight"), 0.0);

    // A listener that does not wait: answered once durable, and no result is written for it.
    let (response, _) = post(&a, "plain", json!({"sku": "P1"}));
    assert_eq!(response.status, 204, "{}", response.text());
    eventually("the plain record imported", Duration::from_secs(30), || {
        target
            .received()
            .iter()
            .any(|r| sku_of(r).as_deref() == Some("P1"))
            .then_some(())
    });
    let worker_metrics = hookpipe::telemetry::WORKER_METRICS.render();
    assert!(
        metric(
            &worker_metrics,
            "hookpipe_worker_import_results_total{listener=\"orders\",outcome=\"published\"}"
        )
        .is_some_and(|published| published >= 3.0),
        "{worker_metrics}"
    );
    assert!(
        !worker_metrics.contains("hookpipe_worker_import_results_total{listener=\"plain\""),
        "{worker_metrics}"
    );
    let pages = a.read_pages(6);
    let plain = pages
        .iter()
        .find(|page| page.value["listener_id"] == "plain")
        .expect("the plain listener's page");
    assert!(
        plain.message.headers.iter().all(|(name, _)| name != "hookpipe-wait"),
        "{:?}",
        plain.message.headers
    );
    let orders = pages.iter().find(|page| page.value["listener_id"] == "orders").unwrap();
    assert!(orders
        .message
        .headers
        .iter()
        .any(|(name, value)| name == "hookpipe-wait" && value == "import"));
}

#[test]
fn with_the_worker_stopped_the_answer_is_202_at_the_timeout_and_the_record_is_imported_when_it_is_back() {
    let broker = Broker::start();
    let target = target();
    let timeout = Duration::from_millis(1500);
    let settings = settings(
        &config(&format!("http://{}", target.addr), timeout.as_millis() as u64, 1),
        &broker.bootstrap,
    );
    let app = spawn_app(settings.clone(), &broker.bootstrap);
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);

    let timed_out = |app: &TestApp| {
        serve_metric(
            app,
            "hookpipe_import_waits_total{listener=\"orders\",outcome=\"timed_out\"}",
        )
    };
    // With the worker running, a waiting request is answered 200 once imported. (Until this
    // instance reads the results topic, which opens at start in the background, a waiting
    // request is answered 202 at once; until the worker has joined its group, at the timeout.)
    eventually(
        "a record imported while the worker runs",
        Duration::from_secs(60),
        || {
            let sku = format!("W-{}", uuid::Uuid::new_v4().simple());
            let (response, _) = post(&app, "orders", json!({"sku": sku}));
            assert!([200, 202].contains(&response.status), "{}", response.text());
            (response.status == 200).then_some(())
        },
    );

    // The worker stops (leaving its group, its offsets committed): the next waiting request is
    // answered 202 with its request id once its timeout passed, and nothing imports it.
    worker.stop();
    let timed_out_before = timed_out(&app);
    let sku = format!("S-{}", uuid::Uuid::new_v4().simple());
    let (response, elapsed) = post(&app, "orders", json!({"sku": sku}));
    assert_eq!(response.status, 202, "{}", response.text());
    assert!(elapsed >= timeout, "answered after {elapsed:?}");
    assert_eq!(timed_out(&app), timed_out_before + 1.0);
    let request_id = response.header("x-request-id").unwrap().to_string();
    assert_eq!(response.json(), json!({"request_id": request_id, "import": "pending"}));
    assert!(
        !target
            .received()
            .iter()
            .any(|r| sku_of(r).as_deref() == Some(sku.as_str())),
        "nothing imported: the worker is stopped"
    );

    // With server.max_import_waits = 1 waiting already, the next request is refused before
    // anything of it is published.
    let published_before = app.read_pages(1).len();
    let holder = {
        let app_addr = app.addr;
        let path = app.hook_path("orders");
        std::thread::spawn(move || {
            crate::helpers::http::request(
                app_addr,
                "POST",
                &path,
                &[("Content-Type", "application/json")],
                json!({"sku": "held"}).to_string().as_bytes(),
            )
        })
    };
    eventually("one request waiting", Duration::from_secs(10), || {
        (serve_metric(&app, "hookpipe_import_waits_in_flight") == 1.0).then_some(())
    });
    let (refused, _) = post(&app, "orders", json!({"sku": "refused"}));
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        refused.json()["error"],
        "too many requests waiting for their import; retry later"
    );
    assert_eq!(holder.join().unwrap().status, 202);
    let published = app.read_pages(published_before + 1);
    assert_eq!(
        published.len(),
        published_before + 1,
        "the held request's page, not the refused one's"
    );
    assert!(published.iter().all(|page| page.data()[0]["sku"] != "refused"));
    assert_eq!(
        serve_metric(
            &app,
            "hookpipe_import_waits_total{listener=\"orders\",outcome=\"refused\"}"
        ),
        1.0
    );

    // The data was durable all along: the worker, back, imports it from its group's offsets.
    let worker = InProcessWorker::start(&settings, &broker.bootstrap);
    let imported = eventually("the record imported", Duration::from_secs(60), || {
        target
            .received()
            .into_iter()
            .find(|r| sku_of(r).as_deref() == Some(sku.as_str()) && r.status == 201)
    });
    assert_eq!(
        imported.header("x-hookpipe-record-id"),
        Some(format!("{request_id}-0").as_str())
    );

    // Kafka gone: the usual 503, never a 2xx before its acknowledgement, and nothing left waiting.
    worker.stop();
    let mut broker = broker;
    broker.kill();
    let (response, _) = post(&app, "orders", json!({"sku": "lost"}));
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(serve_metric(&app, "hookpipe_import_waits_in_flight"), 0.0);
}

#[test]
fn a_listener_set_to_wait_through_the_api_waits_on_every_instance() {
    let broker = Broker::start();
    let target = target();
    let settings = settings(
        &config(&format!("http://{}", target.addr), 30_000, 1024),
        &broker.bootstrap,
    );
    let a = spawn_app(settings.clone(), &broker.bootstrap);
    let b = spawn_app(settings.clone(), &broker.bootstrap);
    let _worker = InProcessWorker::start(&settings, &broker.bootstrap);

    // Checked like the file: a waiting listener cannot answer 202 for success.
    let refused = api(
        &a,
        "POST",
        "/listeners",
        Some(json!({"id": "bad", "response": {"status": 202, "wait": "import"}})),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("response.status"), "{}", refused.text());

    let created = api(
        &a,
        "POST",
        "/listeners",
        Some(json!({"id": "api-orders", "response": {"status": 201, "wait": "import",
            "body": "{\"order\": \"{{results.0.target.id}}\"}"}})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let url = created.json()["url"].as_str().unwrap().to_string();
    let path = &url[url.find("/hooks/").unwrap()..];
    // On B, once the listener reached it and B reads the results topic (opened when a listener
    // came to wait): 201 with the target's id; 404 before the listener arrives, 202 before the
    // results topic is read.
    let mut attempt = 0;
    let response = eventually("a waited answer on B", Duration::from_secs(30), || {
        attempt += 1;
        let response = crate::helpers::http::request(
            b.addr,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            json!({"sku": format!("API{attempt}")}).to_string().as_bytes(),
        );
        assert!(
            matches!(response.status, 201 | 202 | 404),
            "{}: {}",
            response.status,
            response.text()
        );
        (response.status == 201).then_some(response)
    });
    let body = response.json();
    assert!(
        body["order"]
            .as_str()
            .is_some_and(|order| order.starts_with("order-API")),
        "{body}"
    );
}
