//! A secret value: printed as `[redacted]` everywhere, exposed only on purpose.

use serde::{Deserialize, Serialize};

/// A secret string whose Debug/Display print `[redacted]`. It serializes as its value:
/// listener definitions are stored in Kafka so every instance can verify, with each secret
/// sealed first (`secrets_at_rest`); API views redact them before anything leaves the process.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}
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
