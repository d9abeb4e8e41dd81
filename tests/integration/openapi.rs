//! The OpenAPI document as served: behind the token, and the same as `docs/openapi.json`.

use crate::helpers::app::{settings, spawn_app};
use crate::helpers::broker::Broker;
use crate::helpers::http::request;

const TOKEN: &str = "openapi-admin-token-0123456789";

#[test]
fn the_document_is_served_behind_the_token_and_is_the_committed_one() {
    let broker = Broker::start();
    let toml = format!("[server]\npublic_id_secret = \"test-secret-0123456789\"\nlisten = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n");
    let app = spawn_app(settings(&toml, &broker.bootstrap), &broker.bootstrap);
    assert_eq!(request(app.addr, "GET", "/api/v1/openapi.json", &[], b"").status, 401);
    let bearer = format!("Bearer {TOKEN}");
    let served = request(
        app.addr,
        "GET",
        "/api/v1/openapi.json",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
    assert_eq!(served.text(), committed, "docs/openapi.json is stale");
    let doc = served.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}
