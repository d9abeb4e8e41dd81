//! Redaction: what of a listener, a request or a secret may leave the process. Secrets are
//! shown as fingerprints; secret-bearing headers, query parameters and body tokens as
//! `[redacted]`.

use sha2::{Digest, Sha256};

use actix_web::web::Bytes;

use crate::config::listener::ListenerConfig;
use crate::pipeline::listener::Listener;

/// Headers whose values never leave the process in a response template, a capture or a log.
pub const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-hub-signature",
    "x-hub-signature-256",
    "stripe-signature",
    "x-slack-signature",
    "x-shopify-hmac-sha256",
    "webhook-signature",
    "x-zendesk-webhook-signature",
    "x-twilio-signature",
];

/// A short, stable, non-reversible name for a secret: the first 8 hex digits of its SHA-256.
pub fn fingerprint(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fields of a verification config that hold secrets.
const SECRET_LIST_FIELDS: &[&str] = &["secrets", "tokens", "auth_tokens"];

/// A listener's settings as JSON with every secret replaced by its fingerprint.
pub fn redacted_settings(config: &ListenerConfig) -> serde_json::Value {
    let mut value = serde_json::to_value(config).unwrap_or_default();
    if let Some(verification) = value.get_mut("verification").and_then(|v| v.as_object_mut()) {
        for field in SECRET_LIST_FIELDS {
            if let Some(list) = verification.get_mut(*field).and_then(|v| v.as_array_mut()) {
                for item in list.iter_mut() {
                    let secret = item.as_str().unwrap_or_default().to_string();
                    *item = serde_json::json!({ "fingerprint": fingerprint(&secret) });
                }
            }
        }
        if let Some(list) = verification.get_mut("credentials").and_then(|v| v.as_array_mut()) {
            for item in list.iter_mut() {
                let username = item.get("username").cloned().unwrap_or_default();
                let password = item
                    .get("password")
                    .and_then(|p| p.as_str())
                    .unwrap_or_default()
                    .to_string();
                *item = serde_json::json!({ "username": username, "fingerprint": fingerprint(&password) });
            }
        }
    }
    value
}

/// The name of the list holding a verification type's secrets.
pub fn secret_field(verification_type: &str) -> Option<&'static str> {
    match verification_type {
        "none" => None,
        "basic" => Some("credentials"),
        "secret_url" | "token" => Some("tokens"),
        "twilio" => Some("auth_tokens"),
        _ => Some("secrets"),
    }
}

/// Headers as a JSON object with secrets replaced.
pub fn redacted_headers(headers: &actix_web::http::header::HeaderMap, extra: Option<&str>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        let sensitive =
            SENSITIVE_HEADERS.contains(&name) || extra.is_some_and(|extra| extra.eq_ignore_ascii_case(name));
        let value = if sensitive {
            "[redacted]".to_string()
        } else {
            value.to_str().unwrap_or("[not text]").to_string()
        };
        map.insert(name.to_string(), value.into());
    }
    map.into()
}

/// The body with a token-at-JSON-path replaced, when the listener verifies that way.
pub fn redacted_body(body: &Bytes, listener: &Listener) -> Bytes {
    listener
        .verifier
        .secret_json_path()
        .and_then(|path| crate::pipeline::verify::body_token::redact(body, path))
        .map_or_else(|| body.clone(), Bytes::from)
}

/// The query string with the listener's token parameter, if any, shown as `[redacted]`.
pub fn redacted_query(query: &str, secret_param: Option<&str>) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            if secret_param.is_some_and(|secret| secret == key) {
                format!("{key}=[redacted]")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redaction_replaces_every_secret() {
        let config: ListenerConfig = serde_json::from_value(json!({
            "id": "x",
            "verification": {"type": "basic", "credentials": [{"username": "u", "password": "hunter2-password"}]}
        }))
        .unwrap();
        let text = redacted_settings(&config).to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(&fingerprint("hunter2-password")));
        let config: ListenerConfig = serde_json::from_value(json!({
            "id": "x",
            "verification": {"type": "hmac", "algorithm": "sha256", "encoding": "hex", "header": "X-S", "secrets": ["s3cr3t-value"]}
        }))
        .unwrap();
        let text = redacted_settings(&config).to_string();
        assert!(!text.contains("s3cr3t-value"), "{text}");
    }
}
