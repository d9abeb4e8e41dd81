//! Schema validation against the real server and broker (Tansu): reject answers 422 and
//! publishes nothing, quarantine splits a request between the pages and quarantine topics.
//! Read back with their errors; XML, form and CSV records are checked as the JSON they are
//! published as; a schema set through the API takes effect on every instance, while invalid and
//! hostile schemas are refused (API and `hookpipe check-config`).

use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::api::{api, TOKEN};
use crate::helpers::app::{settings, spawn_app, TestApp};
use crate::helpers::broker::Broker;
use crate::helpers::http::{metric, request};
use crate::helpers::worker::eventually;

/// An order needs a string `id` and a positive integer `qty`.
const ORDER_SCHEMA: &str = r#"{"type": "object", "required": ["id", "qty"],
  "properties": {"id": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}"#;

fn config() -> String {
    format!(
        r#"
[server]
public_id_secret = "test-secret-0123456789"
listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[pipeline]
page_linger_ms = 0

[[listeners]]
id = "strict"
[listeners.schema]
document = '''{ORDER_SCHEMA}'''

[[listeners]]
id = "lenient"
[listeners.schema]
policy = "quarantine"
document = '''{ORDER_SCHEMA}'''
[listeners.response]
status = 200
body = '{{"valid": {{{{records_valid}}}}, "quarantined": {{{{records_quarantined}}}}, "records": {{{{record_count}}}} }}'

[[listeners]]
id = "mapped"
resource_path = "orders.order"
[listeners.content]
accept = ["xml"]
[listeners.schema]
document = '''{{"type": "object", "required": ["id"], "properties": {{"qty": {{"type": "string", "pattern": "^[0-9]+$"}}}}}}'''

[[listeners]]
id = "form"
[listeners.content]
accept = ["form"]
[listeners.schema]
document = '''{{"type": "object", "required": ["id"], "properties": {{"tag": {{"type": "array", "maxItems": 2}}}}}}'''

[[listeners]]
id = "rows"
[listeners.content]
accept = ["csv"]
[listeners.schema]
policy = "quarantine"
document = '''{{"type": "object", "properties": {{"email": {{"type": "string", "format": "email"}}}}}}'''
"#
    )
}

fn metrics(app: &TestApp) -> String {
    request(app.addr, "GET", "/metrics", &[], b"").text()
}

fn schema_records(metrics: &str, listener: &str, outcome: &str) -> f64 {
    metric(
        metrics,
        &format!("hookpipe_schema_records_total{{listener=\"{listener}\",outcome=\"{outcome}\"}}"),
    )
    .unwrap_or(0.0)
}

#[test]
fn a_reject_schema_answers_422_with_the_pointer_and_publishes_nothing() {
    let broker = Broker::start();
    let app = spawn_app(settings(&config(), &broker.bootstrap), &broker.bootstrap);

    let response = app.post(
        "strict",
        "application/json",
        br#"[{"id": "a", "qty": 1}, {"id": "b", "qty": 0}, {"qty": 2}]"#,
    );
    assert_eq!(response.status, 422, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({
            "error": "record 1 does not match the listener's schema at /qty: value is less than the minimum of 1",
            "record": 1,
            "instance_path": "/qty",
            "schema_path": "/properties/qty/minimum",
            "message": "value is less than the minimum of 1",
        })
    );
    // The record itself failing: the root pointer; a wrong type never quotes the value.
    let response = app.post(
        "strict",
        "application/json",
        br#"{"id": "s3cr3t-like", "qty": "s3cr3t"}"#,
    );
    assert_eq!(response.status, 422);
    assert_eq!(response.json()["message"], r#"value is not of type "integer""#);
    assert!(!response.text().contains("s3cr3t"), "{}", response.text());
    let response = app.post("strict", "application/json", br#"{"qty": 1}"#);
    assert_eq!(
        (response.status, response.json()["instance_path"].clone()),
        (422, json!(""))
    );

    // A valid request lands; it is the only page.
    let response = app.post("strict", "application/json", br#"[{"id": "c", "qty": 3}]"#);
    assert_eq!(response.status, 204, "{}", response.text());
    let pages = app.read_pages(1);
    assert_eq!(pages.len(), 1, "the refused requests published nothing: {pages:?}");
    assert_eq!(pages[0].data(), vec![json!({"id": "c", "qty": 3})]);
    assert!(
        app.read_pages_from(&app.settings.kafka.quarantine_topic.clone(), 0)
            .is_empty(),
        "a reject listener quarantines nothing"
    );

    let metrics = metrics(&app);
    assert_eq!(schema_records(&metrics, "strict", "rejected"), 3.0);
    // The one checked before the first invalid one, then the valid request's record.
    assert_eq!(schema_records(&metrics, "strict", "valid"), 2.0);
    assert_eq!(schema_records(&metrics, "strict", "quarantined"), 0.0);
    assert_eq!(
        metric(
            &metrics,
            "hookpipe_http_requests_total{listener=\"strict\",status_class=\"4xx\"}"
        ),
        Some(3.0)
    );
}

#[test]
fn a_quarantine_schema_splits_a_mixed_request_between_pages_and_quarantine() {
    let broker = Broker::start();
    let app = spawn_app(settings(&config(), &broker.bootstrap), &broker.bootstrap);

    let body = br#"[{"id": "a", "qty": 1}, {"id": "b", "qty": 0}, {"id": "c", "qty": 2}, {"qty": "many"}]"#;
    let response = app.post("lenient", "application/json", body);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"valid": 2, "quarantined": 2, "records": 4}));
    let request_id = response.header("x-request-id").unwrap().to_string();

    // The valid records, on the pages topic, with their places in the request as ids.
    let pages = app.read_pages(1);
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(
        pages[0].data(),
        vec![json!({"id": "a", "qty": 1}), json!({"id": "c", "qty": 2})]
    );
    let ids: Vec<&str> = pages[0].records().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [format!("{request_id}-0"), format!("{request_id}-2")]);

    // The invalid ones, on the quarantine topic, with their errors.
    let quarantine = app.read_pages_from(&app.settings.kafka.quarantine_topic.clone(), 1);
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    let page = &quarantine[0];
    assert_eq!(page.value["type"], "quarantine");
    assert_eq!(page.value["version"], 1);
    assert_eq!(page.value["listener_id"], "lenient");
    assert_eq!(page.message.key.as_deref(), Some("lenient"));
    assert_eq!(page.message.header("hookpipe-listener-id"), Some("lenient"));
    assert_eq!(page.message.header("hookpipe-request-id"), Some(request_id.as_str()));
    let records = page.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["id"], format!("{request_id}-1"));
    assert_eq!(records[0]["request_id"], request_id.as_str());
    assert_eq!(records[0]["data"], json!({"id": "b", "qty": 0}));
    assert_eq!(
        records[0]["errors"],
        json!([{"instance_path": "/qty", "schema_path": "/properties/qty/minimum",
                "message": "value is less than the minimum of 1"}])
    );
    assert_eq!(records[0]["errors_truncated"], false);
    assert_eq!(records[1]["id"], format!("{request_id}-3"));
    let messages: Vec<&str> = records[1]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.contains(&r#""id" is a required property"#), "{messages:?}");
    assert!(messages.contains(&r#"value is not of type "integer""#), "{messages:?}");

    // A request of only invalid records is accepted too, once the quarantine has it.
    let response = app.post("lenient", "application/json", br#"{"id": 7}"#);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"valid": 0, "quarantined": 1, "records": 1}));
    let quarantine = app.read_pages_from(&app.settings.kafka.quarantine_topic.clone(), 2);
    assert_eq!(quarantine.len(), 2);
    assert_eq!(quarantine[1].records()[0]["data"], json!({"id": 7}));
    assert_eq!(app.read_pages(1).len(), 1, "no page for it");

    // CSV rows are checked one by one, with formats asserted.
    let response = app.post(
        "rows",
        "text/csv",
        b"email,name\r\na@example.com,A\r\nnot-an-email,B\r\n",
    );
    assert_eq!(response.status, 204, "{}", response.text());
    let quarantine = app.read_pages_from(&app.settings.kafka.quarantine_topic.clone(), 3);
    assert_eq!(quarantine.len(), 3);
    // Listeners' pages are keyed by listener: found by it, not by their order across partitions.
    let rows = quarantine
        .iter()
        .find(|page| page.value["listener_id"] == "rows")
        .expect("the CSV listener's quarantine page")
        .records();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["data"], json!({"email": "not-an-email", "name": "B"}));
    assert_eq!(rows[0]["errors"][0]["message"], r#"value is not a "email""#);

    let metrics = metrics(&app);
    assert_eq!(schema_records(&metrics, "lenient", "valid"), 2.0);
    assert_eq!(schema_records(&metrics, "lenient", "quarantined"), 3.0);
    assert_eq!(schema_records(&metrics, "rows", "valid"), 1.0);
    assert_eq!(schema_records(&metrics, "rows", "quarantined"), 1.0);
    assert_eq!(
        metric(
            &metrics,
            "hookpipe_quarantine_pages_total{listener=\"lenient\",outcome=\"published\"}"
        ),
        Some(2.0)
    );
}

#[test]
fn xml_and_form_records_are_validated_after_their_json_mapping() {
    let broker = Broker::start();
    let app = spawn_app(settings(&config(), &broker.bootstrap), &broker.bootstrap);

    // XML text maps to strings: "12" matches the pattern, "twelve" does not, at its place.
    let good = b"<orders><order><id>1</id><qty>12</qty></order><order><id>2</id></order></orders>";
    let response = app.post("mapped", "application/xml", good);
    assert_eq!(response.status, 204, "{}", response.text());
    let bad = b"<orders><order><id>1</id></order><order><id>2</id><qty>twelve</qty></order></orders>";
    let response = app.post("mapped", "application/xml", bad);
    assert_eq!(response.status, 422, "{}", response.text());
    assert_eq!(response.json()["record"], 1);
    assert_eq!(response.json()["instance_path"], "/qty");
    assert_eq!(response.json()["schema_path"], "/properties/qty/pattern");
    let no_id = b"<orders><order><qty>1</qty></order></orders>";
    let response = app.post("mapped", "text/xml", no_id);
    assert_eq!(response.status, 422);
    assert_eq!(response.json()["message"], r#""id" is a required property"#);

    // A form body is one record, its repeated fields an array: checked as that array.
    let form = "application/x-www-form-urlencoded";
    let response = app.post("form", form, b"id=1&tag=a&tag=b");
    assert_eq!(response.status, 204, "{}", response.text());
    let response = app.post("form", form, b"id=2&tag=a&tag=b&tag=c");
    assert_eq!(response.status, 422, "{}", response.text());
    assert_eq!(response.json()["instance_path"], "/tag");
    assert_eq!(response.json()["schema_path"], "/properties/tag/maxItems");
    let response = app.post("form", form, b"tag=a");
    assert_eq!(response.status, 422, "{}", response.text());

    let pages = app.read_pages(2);
    assert_eq!(pages.len(), 2, "{pages:?}");
    let of = |listener: &str| -> Vec<Value> {
        pages
            .iter()
            .filter(|page| page.value["listener_id"] == listener)
            .flat_map(|page| page.data())
            .collect()
    };
    assert_eq!(of("mapped"), vec![json!({"id": "1", "qty": "12"}), json!({"id": "2"})]);
    assert_eq!(of("form"), vec![json!({"id": "1", "tag": ["a", "b"]})]);
}

#[test]
fn a_schema_set_through_the_api_takes_effect_everywhere_and_bad_ones_are_refused() {
    let broker = Broker::start();
    let a = spawn_app(settings(&config(), &broker.bootstrap), &broker.bootstrap);
    let b = spawn_app(settings(&config(), &broker.bootstrap), &broker.bootstrap);
    let schema: Value = serde_json::from_str(ORDER_SCHEMA).unwrap();

    // Refused: an invalid schema, a file through the API, a hostile one (deep, huge).
    let mut deep = json!({"type": "object"});
    for _ in 0..40 {
        deep = json!({"properties": {"a": deep}});
    }
    let huge = json!({"enum": vec!["x".repeat(1000); 100]});
    let refusals = [
        (
            json!({"document": {"type": "nope"}}),
            "schema.document",
            "is not a valid draft 2020-12 schema at /type",
        ),
        (
            json!({"document": {"$ref": "https://example.com/order.json"}}),
            "schema.document",
            "resolves no remote or file references",
        ),
        (
            json!({"file": "/etc/passwd"}),
            "schema.file",
            "is read from the configuration file only",
        ),
        (
            json!({"document": deep}),
            "schema.document",
            "nests deeper than 32 levels",
        ),
        (
            json!({"document": {"anyOf": [{"properties": {"a": {"$ref": "#"}}}, {"items": {"$ref": "#"}}]}}),
            "schema.document",
            "is recursive",
        ),
        (
            json!({"document": huge}),
            "schema.document",
            "a schema may have at most 65536",
        ),
        (
            json!({"document": schema, "policy": "drop"}),
            "schema.policy",
            "unknown variant `drop`",
        ),
    ];
    for (given, field, message) in refusals {
        let response = api(&a, "POST", "/listeners", Some(json!({"id": "orders", "schema": given})));
        assert_eq!(response.status, 400, "{given}: {}", response.text());
        let body = response.json();
        assert_eq!(body["field"], field, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(message), "{error}");
        if field != "schema.policy" {
            assert!(error.contains("listener `orders`"), "names the listener: {error}");
        }
    }
    assert_eq!(
        api(&a, "GET", "/listeners/orders", None).status,
        404,
        "nothing was stored"
    );

    // A valid one: stored, shown, enforced — on the other instance too, through the state topic.
    let created = api(
        &a,
        "POST",
        "/listeners",
        Some(json!({"id": "orders", "schema": {"document": schema}})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        created.json()["schema"],
        json!({"document": schema, "policy": "reject", "validate_formats": true})
    );
    let url = created.json()["url"].as_str().unwrap().to_string();
    let path = format!("/hooks/{}", url.rsplit('/').next().unwrap());
    let view = eventually(
        "instance B to know the listener",
        std::time::Duration::from_secs(10),
        || {
            let response = api(&b, "GET", "/listeners/orders", None);
            (response.status == 200).then(|| response.json())
        },
    );
    assert_eq!(view["schema"]["document"], schema);
    let post =
        |app: &TestApp, body: &[u8]| request(app.addr, "POST", &path, &[("Content-Type", "application/json")], body);
    for app in [&a, &b] {
        let response = post(app, br#"{"id": "x", "qty": 0}"#);
        assert_eq!(response.status, 422, "{}", response.text());
        assert_eq!(response.json()["instance_path"], "/qty");
    }

    // Updated to quarantine (a merge patch): the invalid record is accepted into the quarantine.
    let updated = api(
        &a,
        "PUT",
        "/listeners/orders",
        Some(json!({"schema": {"policy": "quarantine"}})),
    );
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["schema"]["policy"], "quarantine");
    eventually(
        "instance B to apply the update",
        std::time::Duration::from_secs(10),
        || (api(&b, "GET", "/listeners/orders", None).json()["schema"]["policy"] == "quarantine").then_some(()),
    );
    let response = post(&b, br#"{"id": "x", "qty": 0}"#);
    assert_eq!(response.status, 204, "{}", response.text());
    let quarantine = a.read_pages_from(&a.settings.kafka.quarantine_topic.clone(), 1);
    assert_eq!(quarantine.len(), 1);
    assert_eq!(quarantine[0].records()[0]["data"], json!({"id": "x", "qty": 0}));
    assert_eq!(quarantine[0].value["listener_id"], "orders");

    // An update to an invalid schema is refused and the stored one stays.
    let refused = api(
        &a,
        "PUT",
        "/listeners/orders",
        Some(json!({"schema": {"document": {"minimum": "one"}}})),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["field"], "schema.document");
    // Removed (merge patch null): records are no longer checked.
    let removed = api(&a, "PUT", "/listeners/orders", Some(json!({"schema": null})));
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert!(removed.json().get("schema").is_none());
    let response = post(&a, br#"{"anything": true}"#);
    assert_eq!(response.status, 204, "{}", response.text());
    // The server is alive after all of it.
    assert_eq!(request(a.addr, "GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn check_config_names_the_listener_and_key_of_an_invalid_schema() {
    let dir = std::env::temp_dir().join(format!("hookpipe-schema-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("order.json"), ORDER_SCHEMA).unwrap();
    let config = dir.join("hookpipe.toml");
    std::fs::write(
        &config,
        r#"
[server]
public_id_secret = "test-secret-0123456789"
[[listeners]]
id = "from-file"
[listeners.schema]
file = "order.json"
[[listeners]]
id = "broken"
[listeners.schema.document]
type = "object"
required = "id"
"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hookpipe"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("error: listeners[broken].schema.document: is not a valid draft 2020-12 schema at /required"),
        "{stdout}"
    );
    assert!(stdout.contains(": 1 error(s)"), "the file schema is fine: {stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
