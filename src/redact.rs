//! Redaction: what of a listener, a request or a secret may leave the process. Secrets are
//! shown as fingerprints; secret-bearing headers, query parameters and body tokens as
//! `[redacted]`.
//!
//! A listener's view fails closed: at compile time, because the verification is redacted by an
//! exhaustive match (a new secret-bearing variant does not build until it is handled; see
//! `config/verification.rs` and `scripts/check-redaction-exhaustive.sh`), and at run time,
//! because any string left in the view that equals one of its secrets is hidden as well.

use actix_web::web::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::handshake::{HandshakeConfig, HandshakeRule};
use crate::config::listener::ListenerConfig;
use crate::config::recipe::RecipeConfig;
use crate::config::verification::{BasicCredential, VerificationConfig};
use crate::pipeline::listener::Listener;
use crate::pipeline::verify::body_token;
use crate::pipeline::verify::scheme::Verifier;
use crate::secret::Secret;

pub use crate::secret::SENSITIVE_HEADERS;

/// A short, stable, non-reversible name for a secret: the first 8 hex digits of its SHA-256.
pub fn fingerprint(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A listener's settings as JSON with every secret replaced by its fingerprint.
///
/// Fails closed twice: the verification is shown through the exhaustive
/// [`VerificationConfig::redacted`], and then any string anywhere in the view that equals one of
/// the listener's secrets is replaced by its fingerprint too.
pub fn redacted_settings(config: &ListenerConfig) -> Value {
    let mut view = serde_json::to_value(config).unwrap_or_default();
    if let Some(verification) = view.get_mut("verification") {
        *verification = config.verification.redacted();
    }
    if let Some(Value::Array(handshakes)) = view.get_mut("handshakes") {
        for (shown, handshake) in handshakes.iter_mut().zip(&config.handshakes) {
            *shown = handshake.redacted();
        }
    }
    hide_secret_values(&mut view, &config.secrets());
    view
}

impl HandshakeConfig {
    /// This handshake as the API shows it: each secret (Meta's `verify_token`, a rule's `token`
    /// and `secret`) replaced by `{"fingerprint": …}`. Exhaustive like
    /// [`VerificationConfig::redacted`].
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn redacted(&self) -> Value {
        let mut view = serde_json::to_value(self).unwrap_or_default();
        let Some(fields) = view.as_object_mut() else {
            return view;
        };
        let shown = |secret: &Secret| json!({ "fingerprint": fingerprint(secret.expose()) });
        match self {
            Self::Meta { verify_token } => {
                fields.insert("verify_token".into(), shown(verify_token));
            }
            Self::Dropbox {} | Self::MicrosoftGraph {} | Self::Zoom {} | Self::Twitter {} | Self::Slack {} => {}
            Self::CloudEvents {
                allowed_origins: _,
                allowed_rate: _,
            } => {}
            Self::Rule(HandshakeRule {
                name: _,
                method: _,
                conditions: _,
                verified: _,
                publish: _,
                token,
                secret,
                max_value_bytes: _,
                response: _,
            }) => {
                for (field, secret) in [("token", token), ("secret", secret)] {
                    if let Some(secret) = secret {
                        fields.insert(field.into(), shown(secret));
                    }
                }
            }
        }
        view
    }
}

impl VerificationConfig {
    /// This verification as the API shows it: its settings as written, each secret replaced
    /// by `{"fingerprint": …}` and each basic credential by `{"username": …, "fingerprint": …}`.
    ///
    /// Exhaustive on purpose (see `config/verification.rs`): no `_` arm and no `..`, so a new
    /// variant or field does not compile until it says what of it is secret.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn redacted(&self) -> Value {
        let mut view = serde_json::to_value(self).unwrap_or_default();
        let Some(fields) = view.as_object_mut() else {
            return view;
        };
        let mut replace = |field: &str, shown: Value| {
            fields.insert(field.to_owned(), shown);
        };
        match self {
            Self::None => {}
            Self::Basic { credentials } => replace(
                "credentials",
                credentials
                    .iter()
                    .map(|BasicCredential { username, password }| {
                        json!({ "username": username, "fingerprint": fingerprint(password.expose()) })
                    })
                    .collect(),
            ),
            Self::Hmac {
                algorithm: _,
                encoding: _,
                header: _,
                prefix: _,
                secrets,
            }
            | Self::Github { secrets }
            | Self::Stripe {
                secrets,
                tolerance_secs: _,
            }
            | Self::Slack {
                secrets,
                tolerance_secs: _,
            }
            | Self::Shopify { secrets }
            | Self::StandardWebhooks {
                secrets,
                tolerance_secs: _,
            }
            | Self::Zendesk {
                secrets,
                tolerance_secs: _,
            } => replace("secrets", fingerprints(secrets)),
            Self::SecretUrl { tokens }
            | Self::Token {
                tokens,
                json_path: _,
                header: _,
                query: _,
            } => replace("tokens", fingerprints(tokens)),
            Self::Twilio { auth_tokens } => replace("auth_tokens", fingerprints(auth_tokens)),
            Self::Recipe(recipe) => {
                let RecipeConfig {
                    algorithm: _,
                    encoding: _,
                    signature_header: _,
                    prefix: _,
                    signature_list: _,
                    signed_content: _,
                    timestamp_header: _,
                    timestamp_key: _,
                    timestamp_format: _,
                    id_header: _,
                    tolerance_secs: _,
                    secret_encoding: _,
                    secrets,
                    delivery_id_header: _,
                    delivery_id_json: _,
                    body_hash_query: _,
                    try_default_port: _,
                    fallback: _,
                    url_verification_challenge: _,
                } = recipe;
                replace("secrets", fingerprints(secrets));
            }
        }
        view
    }
}

/// Secrets as the API lists them: `[{"fingerprint": …}, …]`.
fn fingerprints(secrets: &[Secret]) -> Value {
    secrets
        .iter()
        .map(|secret| json!({ "fingerprint": fingerprint(secret.expose()) }))
        .collect()
}

/// The safety net behind the exhaustive views: any string equal to a secret becomes
/// `{"fingerprint": …}`, wherever it is (a field a future change forgot to redact).
fn hide_secret_values(view: &mut Value, secrets: &[&Secret]) {
    match view {
        Value::String(text) => {
            let is_secret = !text.is_empty() && secrets.iter().any(|secret| secret.expose() == text.as_str());
            if is_secret {
                *view = json!({ "fingerprint": fingerprint(text) });
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| hide_secret_values(item, secrets)),
        Value::Object(fields) => fields.values_mut().for_each(|field| hide_secret_values(field, secrets)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The name of the list holding a verification's secrets (what `secrets add|retire` edits);
/// `None` when it has none. Exhaustive on the variants, like [`VerificationConfig::redacted`].
#[deny(clippy::wildcard_enum_match_arm)]
pub fn secret_field(verification: &VerificationConfig) -> Option<&'static str> {
    match verification {
        VerificationConfig::None => None,
        VerificationConfig::Basic { .. } => Some("credentials"),
        VerificationConfig::SecretUrl { .. } | VerificationConfig::Token { .. } => Some("tokens"),
        VerificationConfig::Twilio { .. } => Some("auth_tokens"),
        VerificationConfig::Hmac { .. }
        | VerificationConfig::Github { .. }
        | VerificationConfig::Stripe { .. }
        | VerificationConfig::Slack { .. }
        | VerificationConfig::Shopify { .. }
        | VerificationConfig::StandardWebhooks { .. }
        | VerificationConfig::Zendesk { .. }
        | VerificationConfig::Recipe(_) => Some("secrets"),
    }
}

/// Headers as a JSON object with secrets replaced.
pub fn redacted_headers(headers: &actix_web::http::header::HeaderMap, extra: Option<&str>) -> Value {
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
    body_without_token(body, &listener.verifier)
}

/// The body with the verifier's JSON-path token, if any, replaced. Path segments are matched
/// as they are, so a key holding `/` or `~` is found (no JSON-pointer escaping).
fn body_without_token(body: &Bytes, verifier: &Verifier) -> Bytes {
    verifier
        .secret_json_path()
        .and_then(|path| body_token::redact(body, path))
        .map_or_else(|| body.clone(), Bytes::from)
}

/// The query string with the listener's token parameter, if any, shown as `[redacted]`.
pub fn redacted_query(query: &str, secret_param: Option<&str>) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            // Compared decoded, as the verifier reads it: `%74oken=` is the `token` parameter.
            if secret_param.is_some_and(|secret| secret == crate::urlencoded::decode_lossy(key)) {
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
    #[test]
    fn the_token_parameter_is_redacted_however_its_name_is_encoded() {
        assert_eq!(
            super::redacted_query("a=1&token=s3cr3t&%74oken=s3cr3t&tokens=x", Some("token")),
            "a=1&token=[redacted]&%74oken=[redacted]&tokens=x"
        );
        assert_eq!(super::redacted_query("token=x", None), "token=x");
    }

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

    /// `redacted_settings` before issue 12: secrets found by field name. The reference the
    /// exhaustive views must reproduce exactly.
    fn former_redacted_settings(config: &ListenerConfig) -> Value {
        let mut value = serde_json::to_value(config).unwrap_or_default();
        if let Some(verification) = value.get_mut("verification").and_then(|v| v.as_object_mut()) {
            for field in ["secrets", "tokens", "auth_tokens"] {
                if let Some(list) = verification.get_mut(field).and_then(|v| v.as_array_mut()) {
                    for item in list.iter_mut() {
                        let secret = item.as_str().unwrap_or_default().to_string();
                        *item = json!({ "fingerprint": fingerprint(&secret) });
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
                    *item = json!({ "username": username, "fingerprint": fingerprint(&password) });
                }
            }
        }
        value
    }

    /// `secret_field` before issue 12, on type names.
    fn former_secret_field(verification_type: &str) -> Option<&'static str> {
        match verification_type {
            "none" => None,
            "basic" => Some("credentials"),
            "secret_url" | "token" => Some("tokens"),
            "twilio" => Some("auth_tokens"),
            _ => Some("secrets"),
        }
    }

    /// One listener per verification example of the README: every type.
    fn every_verification_type() -> Vec<ListenerConfig> {
        #[derive(serde::Deserialize)]
        struct File {
            listeners: Listeners,
        }
        #[derive(serde::Deserialize)]
        struct Listeners {
            verification: VerificationConfig,
        }
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let configs: Vec<ListenerConfig> = doc
            .split("```toml\n")
            .skip(1)
            .map(|block| block.split("```").next().unwrap_or_default())
            .filter(|src| src.starts_with("[listeners.verification]"))
            .map(|src| {
                let verification = toml::from_str::<File>(src).unwrap().listeners.verification;
                serde_json::from_value(json!({ "id": "x", "verification": verification })).unwrap()
            })
            .collect();
        let kinds: std::collections::BTreeSet<&str> = configs.iter().map(|c| c.verification.kind()).collect();
        assert_eq!(kinds.len(), 13, "{kinds:?}");
        configs
    }

    #[test]
    fn exhaustive_views_are_the_former_views() {
        for config in every_verification_type() {
            let view = redacted_settings(&config);
            assert_eq!(
                view,
                former_redacted_settings(&config),
                "{}",
                config.verification.kind()
            );
            let text = view.to_string();
            for secret in config.verification.secrets() {
                assert!(!text.contains(&format!("\"{}\"", secret.expose())), "{text}");
            }
            assert_eq!(
                secret_field(&config.verification),
                former_secret_field(config.verification.kind()),
                "{}",
                config.verification.kind()
            );
        }
    }

    #[test]
    fn handshake_secrets_are_fingerprints_in_the_view() {
        let config: ListenerConfig = serde_json::from_value(json!({
            "id": "x",
            "handshakes": [
                {"type": "meta", "verify_token": "meta-verify-token-1"},
                {"type": "rule", "token": "rule-token-22", "secret": "rule-secret-333",
                 "match": [{"query": "k", "equals_token": true}]},
                {"type": "dropbox"}
            ]
        }))
        .unwrap();
        let view = redacted_settings(&config);
        let text = view.to_string();
        for secret in ["meta-verify-token-1", "rule-token-22", "rule-secret-333"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(
            view["handshakes"][0]["verify_token"],
            json!({ "fingerprint": fingerprint("meta-verify-token-1") })
        );
        assert_eq!(
            view["handshakes"][1]["secret"],
            json!({ "fingerprint": fingerprint("rule-secret-333") })
        );
        assert_eq!(view["handshakes"][2], json!({"type": "dropbox"}));
        let mut sealed = config.clone();
        assert_eq!(
            sealed.secrets_mut().len(),
            3,
            "every handshake secret is sealed at rest"
        );
        // A listener without handshakes shows none, as before.
        let plain: ListenerConfig = serde_json::from_value(json!({"id": "y"})).unwrap();
        assert!(redacted_settings(&plain).get("handshakes").is_none());
    }

    #[test]
    fn basic_credentials_show_username_and_fingerprint() {
        let config: ListenerConfig = serde_json::from_value(json!({
            "id": "x",
            "verification": {"type": "basic", "credentials": [{"username": "u", "password": "hunter2-password"}]}
        }))
        .unwrap();
        assert_eq!(
            redacted_settings(&config)["verification"]["credentials"],
            json!([{ "username": "u", "fingerprint": fingerprint("hunter2-password") }])
        );
    }

    #[test]
    fn a_secret_copied_into_another_field_is_hidden_too() {
        // A token that is also the name of its query parameter: `query` is not a secret field,
        // so only the safety net can hide it.
        let config: ListenerConfig = serde_json::from_value(json!({
            "id": "x",
            "verification": {"type": "token", "tokens": ["tok-3f9a1c"], "query": "tok-3f9a1c"}
        }))
        .unwrap();
        let view = redacted_settings(&config);
        assert!(!view.to_string().contains("tok-3f9a1c"), "{view}");
        assert_eq!(
            view["verification"]["query"],
            json!({ "fingerprint": fingerprint("tok-3f9a1c") })
        );
        assert_eq!(
            view["verification"]["tokens"],
            json!([{ "fingerprint": fingerprint("tok-3f9a1c") }])
        );
    }

    #[test]
    fn a_body_token_under_keys_with_slash_and_tilde_is_redacted() {
        let verification: VerificationConfig = serde_json::from_value(json!({
            "type": "token", "tokens": ["s3cr3t-token"], "json_path": "$.a/b.c~d"
        }))
        .unwrap();
        let verifier = verification.compile().unwrap();
        let body = Bytes::from_static(br#"{"a/b":{"c~d":"s3cr3t-token","e":1},"a":{"b":"x"}}"#);
        // The token is found where the path says (not at the JSON pointer `/a/b/c~d`)...
        let headers: [(&str, &str); 0] = [];
        let request = crate::pipeline::verify::request::VerifyRequest {
            method: "POST",
            url: "https://hooks.example.com/in/test",
            query: "",
            headers: &headers,
            body: &body,
            now_unix: 0,
        };
        assert!(verifier.verify(&request).is_ok());
        // ...and hidden there, the rest of the body as it was.
        assert_eq!(
            body_without_token(&body, &verifier),
            Bytes::from_static(br#"{"a/b":{"c~d":"[redacted]","e":1},"a":{"b":"x"}}"#)
        );
    }
}
