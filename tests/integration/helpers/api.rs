//! The management API as the tests call it: the admin token of their configurations, one
//! authorized request, and a listener's import errors.

use std::time::Duration;

use serde_json::{json, Value};

use super::app::TestApp;
use super::http::{request, Response};
use super::worker::eventually;

/// The `server.admin_token` of the tests' configurations.
pub const TOKEN: &str = "admin-token-0123456789";

/// How long a test waits for errors to be listed.
const WAIT: Duration = Duration::from_secs(30);

/// `METHOD /api/v1{path}` with [`TOKEN`] and a JSON body (empty without one).
pub fn api(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> Response {
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    request(
        app.addr,
        method,
        &format!("/api/v1{path}"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// Posts `{"items": [...]}` to a listener, expecting 204; returns the request id.
pub fn post_items(app: &TestApp, listener: &str, items: Value) -> String {
    let response = app.post(
        listener,
        "application/json",
        json!({ "items": items }).to_string().as_bytes(),
    );
    assert_eq!(response.status, 204, "{}", response.text());
    response.header("x-request-id").unwrap().to_string()
}

/// The listener's open errors once there are `count` of them.
pub fn errors_when(app: &TestApp, listener: &str, count: usize) -> Vec<Value> {
    eventually(&format!("{count} open errors of {listener}"), WAIT, || {
        let response = api(app, "GET", &format!("/listeners/{listener}/errors"), None);
        if response.status != 200 {
            return None;
        }
        let errors = response.json()["errors"].as_array().cloned().unwrap_or_default();
        (errors.len() == count).then_some(errors)
    })
}
