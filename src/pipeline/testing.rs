//! Fixtures for the stages' unit tests: listeners from TOML and requests as the Receiver builds
//! them. No broker, no network.

use std::sync::Arc;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::web::Bytes;
use hmac::{Hmac, Mac};

use crate::config::Settings;
use crate::pipeline::listener::Listener;
use crate::pipeline::reply::{AwaitedReply, Reply};
use crate::pipeline::{Ingest, Webhook};

/// Settings from `toml` (with the server secret every listener needs).
pub fn settings(toml: &str) -> Settings {
    let text = format!("[server]\npublic_id_secret = \"0123456789abcdef0123\"\n{toml}\n");
    Settings::from_toml_and_env(&text, Vec::new()).expect("valid test settings")
}

/// A listener `t` whose configuration continues with `listener_toml` (keys of `[[listeners]]`,
/// then its sub-tables).
pub fn listener(listener_toml: &str) -> Arc<Listener> {
    listener_of(&settings(&format!("[[listeners]]\nid = \"t\"\n{listener_toml}")))
}

/// The first listener of `settings`, compiled.
pub fn listener_of(settings: &Settings) -> Arc<Listener> {
    Arc::new(settings.listeners[0].compile(settings).expect("valid test listener"))
}

/// A JSON request to `listener` with extra `headers`, and the handle its answer arrives on.
pub fn ingest(listener: &Arc<Listener>, headers: &[(&str, &str)], body: &[u8]) -> (Ingest, AwaitedReply) {
    ingest_typed(listener, Some("application/json"), headers, body)
}

/// A request with the given `Content-Type` (or none).
pub fn ingest_typed(
    listener: &Arc<Listener>,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Ingest, AwaitedReply) {
    let mut header_map = HeaderMap::new();
    if let Some(content_type) = content_type {
        header_map.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).expect("header value"));
    }
    for (name, value) in headers {
        header_map.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    let (reply, awaited) = Reply::new();
    let message = Ingest {
        webhook: Webhook {
            request_id: Arc::from("r1"),
            listener: listener.clone(),
            method: "POST".into(),
            url: "http://localhost/hooks/t".into(),
            query: String::new(),
            headers: header_map,
            body: Bytes::copy_from_slice(body),
            received_at_ms: 0,
            mock: false,
        },
        delivery_id: None,
        keep_records: false,
        reservation: None,
        answer_once_verified: false,
        reply,
    };
    (message, awaited)
}

/// The hex HMAC-SHA256 of `body` under `secret`.
pub fn signed_hmac_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
