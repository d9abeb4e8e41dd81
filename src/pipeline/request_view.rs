//! What templates see of a request besides its records: its headers and query, without the
//! credentials in them — the success response's body template (`http::receiver`) and a
//! CloudEvents `type` template (`page::events`).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::pipeline::Webhook;

/// A request's headers (lower-case names) and query, credentials left out.
#[derive(Debug, Default, Serialize)]
pub struct RequestView {
    /// The request's headers.
    pub headers: Map<String, Value>,
    /// Its decoded query parameters.
    pub query: Map<String, Value>,
}

impl RequestView {
    /// The view of `webhook` its listener's templates may have.
    pub fn of(webhook: &Webhook) -> RequestView {
        let verifier = &webhook.listener.verifier;
        RequestView {
            headers: template_headers(&webhook.headers, verifier.secret_header()),
            query: template_query(&webhook.query, verifier.secret_query()),
        }
    }
}

/// The request headers a response template may echo: none that carries a credential, the
/// listener's own token header included.
pub fn template_headers(
    headers: &actix_web::http::header::HeaderMap,
    secret_header: Option<&str>,
) -> serde_json::Map<String, serde_json::Value> {
    headers
        .iter()
        .filter(|(name, _)| !crate::secret::SENSITIVE_HEADERS.contains(&name.as_str()))
        .filter(|(name, _)| secret_header.is_none_or(|secret| !secret.eq_ignore_ascii_case(name.as_str())))
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.into())))
        .collect()
}

/// The decoded query parameters a response template may echo: all but the listener's token
/// parameter.
pub fn template_query(query: &str, secret_param: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
    let decode = |s: &str| crate::urlencoded::decode_lossy(s);
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), serde_json::Value::String(decode(value)))
        })
        .filter(|(key, _)| secret_param.is_none_or(|secret| secret != key))
        .collect()
}
