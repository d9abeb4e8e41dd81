//! `[[listeners.handshakes]]`: how a listener answers the checks a provider makes of an endpoint
//! before (or while) it delivers — a preset, or a rule written out — as written in TOML and in
//! the API's JSON. `pipeline::handshake` validates, compiles and answers them; every preset is a
//! [`HandshakeRule`] too (`pipeline/handshake/presets.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Longest value a rule reads from a request unless it says otherwise (`max_value_bytes`):
/// providers' challenges are tens of bytes; an echo of more is refused with a 400.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024;

/// One handshake of a listener: a provider's preset, or a rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HandshakeConfig {
    /// Meta (Facebook, Instagram, WhatsApp): `GET ?hub.mode=subscribe&hub.verify_token=…&
    /// hub.challenge=…` → the challenge, when the token is this one; another token → 403.
    Meta {
        /// The verify token entered in the app's webhook settings.
        verify_token: Secret,
    },
    /// Dropbox: `GET ?challenge=…` → the challenge, `text/plain`, `X-Content-Type-Options: nosniff`.
    Dropbox {},
    /// Microsoft Graph (and OneDrive): `POST ?validationToken=…` → the token, URL-decoded, `text/plain`.
    MicrosoftGraph {},
    /// Zoom: the signed `endpoint.url_validation` event → `{"plainToken", "encryptedToken"}`, the
    /// token's hex HMAC-SHA256 under the listener's secret (its Zoom secret token).
    Zoom {},
    /// Twitter / X CRC: `GET ?crc_token=…` → `{"response_token": "sha256=<base64 HMAC-SHA256>"}`
    /// under the listener's secret (the app's consumer secret).
    Twitter {},
    /// Slack: the signed `url_verification` event → its `challenge`, `text/plain`.
    Slack {},
    /// The CloudEvents webhook spec's abuse protection (Azure Event Grid): `OPTIONS` with
    /// `WebHook-Request-Origin` → 200 with `WebHook-Allowed-Origin`.
    #[serde(rename = "cloudevents")]
    CloudEvents {
        /// Origins allowed to deliver, echoed back; empty: every origin (answered `*`).
        #[serde(default)]
        allowed_origins: Vec<String>,
        /// Requests per minute granted, as `WebHook-Allowed-Rate`; none: the header is not sent.
        #[serde(default)]
        allowed_rate: Option<u32>,
    },
    /// A rule written out.
    Rule(HandshakeRule),
}

/// A handshake rule: which requests it answers (method and conditions) and with what.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakeRule {
    /// A name for errors and debug captures; by default `handshakes[N]`.
    #[serde(default)]
    pub name: Option<String>,
    /// The method it answers (`GET`, `POST`, `OPTIONS`, …); any when unset. A method the
    /// listener does not take for deliveries (`content.methods`) reaches it for this rule only.
    #[serde(default)]
    pub method: Option<String>,
    /// Conditions on the request, every one of which must hold.
    #[serde(rename = "match", default)]
    pub conditions: Vec<HandshakeCondition>,
    /// Answer only once the listener's verification passed (a signed handshake); by default the
    /// rule answers before verification, and then may not publish.
    #[serde(default)]
    pub verified: bool,
    /// Also publish the request's records as a delivery (after verification); the answer is sent
    /// once Kafka acknowledged them. Default: the handshake publishes nothing.
    #[serde(default)]
    pub publish: bool,
    /// The value `equals_token` conditions compare with (in constant time).
    #[serde(default)]
    pub token: Option<Secret>,
    /// Key of the `hmac_sha256` template helper; by default the first secret of the listener's
    /// verification.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Longest value (bytes, after URL-decoding) a condition reads; a longer one is a 400.
    #[serde(default = "default_max_value_bytes")]
    pub max_value_bytes: usize,
    /// The answer.
    #[serde(default)]
    pub response: HandshakeResponse,
}

fn default_max_value_bytes() -> usize {
    DEFAULT_MAX_VALUE_BYTES
}

/// One condition of a rule: a value of the request (exactly one of `query`, `header`, `json`)
/// and what it must be (`equals`, `equals_token`, `one_of`; present, when none is set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakeCondition {
    /// Query parameter name (its value URL-decoded).
    #[serde(default)]
    pub query: Option<String>,
    /// Header name (any case).
    #[serde(default)]
    pub header: Option<String>,
    /// Dotted path of a JSON body field (`payload.plainToken`); strings, numbers and booleans.
    #[serde(default)]
    pub json: Option<String>,
    /// The value must be exactly this.
    #[serde(default)]
    pub equals: Option<String>,
    /// The value must be the rule's `token`.
    #[serde(default)]
    pub equals_token: bool,
    /// The value must be one of these.
    #[serde(default)]
    pub one_of: Vec<String>,
    /// Name under which the answer's templates see the value (`{{challenge}}`).
    #[serde(rename = "as", default)]
    pub capture: Option<String>,
    /// Status (400-499) answered when this condition fails once the conditions without
    /// `otherwise` held; unset: a failure means the rule does not apply.
    #[serde(default)]
    pub otherwise: Option<u16>,
}

/// What a rule answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakeResponse {
    /// 200-299.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Headers, each value a handlebars template over the captured values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Handlebars template of the body over the captured values, with `hmac_sha256`.
    #[serde(default)]
    pub body: Option<String>,
}

impl Default for HandshakeResponse {
    fn default() -> Self {
        HandshakeResponse {
            status: default_status(),
            headers: BTreeMap::new(),
            body: None,
        }
    }
}

fn default_status() -> u16 {
    200
}

impl HandshakeConfig {
    /// The preset's name (`rule` for a rule written out), for errors and captures.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Meta { .. } => "meta",
            Self::Dropbox {} => "dropbox",
            Self::MicrosoftGraph {} => "microsoft_graph",
            Self::Zoom {} => "zoom",
            Self::Twitter {} => "twitter",
            Self::Slack {} => "slack",
            Self::CloudEvents { .. } => "cloudevents",
            Self::Rule(_) => "rule",
        }
    }

    /// Every secret value, to seal or open them for storage. Exhaustive on purpose, as
    /// `VerificationConfig::secrets_mut`: a new preset or field does not compile until it says
    /// which of its fields are secrets.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        match self {
            Self::Meta { verify_token } => vec![verify_token],
            Self::Dropbox {} | Self::MicrosoftGraph {} | Self::Zoom {} | Self::Twitter {} | Self::Slack {} => {
                Vec::new()
            }
            Self::CloudEvents {
                allowed_origins: _,
                allowed_rate: _,
            } => Vec::new(),
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
            }) => token.iter_mut().chain(secret.iter_mut()).collect(),
        }
    }

    /// Every secret value, read-only; exhaustive like [`HandshakeConfig::secrets_mut`].
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn secrets(&self) -> Vec<&Secret> {
        match self {
            Self::Meta { verify_token } => vec![verify_token],
            Self::Dropbox {} | Self::MicrosoftGraph {} | Self::Zoom {} | Self::Twitter {} | Self::Slack {} => {
                Vec::new()
            }
            Self::CloudEvents {
                allowed_origins: _,
                allowed_rate: _,
            } => Vec::new(),
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
            }) => token.iter().chain(secret.iter()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_rules_read_from_toml_and_json_alike() {
        #[derive(Deserialize)]
        struct File {
            handshakes: Vec<HandshakeConfig>,
        }
        let text = r#"
[[handshakes]]
type = "meta"
verify_token = "meta-token-123"

[[handshakes]]
type = "cloudevents"
allowed_origins = ["eventgrid.azure.net"]
allowed_rate = 120

[[handshakes]]
type = "rule"
method = "GET"
match = [{ query = "ping", as = "ping", otherwise = 400 }]
response = { status = 200, headers = { "Content-Type" = "text/plain" }, body = "{{ping}}" }
"#;
        let file: File = toml::from_str(text).unwrap();
        assert_eq!(file.handshakes[0].kind(), "meta");
        let HandshakeConfig::Rule(rule) = &file.handshakes[2] else {
            panic!("{:?}", file.handshakes[2]);
        };
        assert_eq!(rule.conditions[0].capture.as_deref(), Some("ping"));
        assert_eq!(rule.max_value_bytes, DEFAULT_MAX_VALUE_BYTES);
        assert!(
            !rule.publish && !rule.verified,
            "no publishing, no verification by default"
        );
        // The API's JSON is the same document.
        for handshake in &file.handshakes {
            let json = serde_json::to_value(handshake).unwrap();
            assert_eq!(&serde_json::from_value::<HandshakeConfig>(json).unwrap(), handshake);
        }
        let error = serde_json::from_value::<HandshakeConfig>(serde_json::json!({"type": "dropbox", "x": 1}));
        assert!(error.is_err(), "unknown fields are refused");
        let error = serde_json::from_value::<HandshakeConfig>(serde_json::json!({"type": "nosuch"}));
        assert!(error.unwrap_err().to_string().contains("unknown variant `nosuch`"));
    }

    #[test]
    fn secrets_are_the_token_the_rule_secret_and_the_meta_verify_token() {
        let mut meta = HandshakeConfig::Meta {
            verify_token: Secret::new("vt"),
        };
        assert_eq!(meta.secrets().len(), 1);
        assert_eq!(meta.secrets_mut().len(), 1);
        let rule: HandshakeConfig =
            serde_json::from_value(serde_json::json!({"type": "rule", "token": "t", "secret": "s"})).unwrap();
        let found: Vec<&str> = rule.secrets().iter().map(|s| s.expose()).collect();
        assert_eq!(found, ["t", "s"]);
        assert!(HandshakeConfig::Zoom {}.secrets().is_empty());
    }
}
