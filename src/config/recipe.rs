//! A declarative signature recipe (`type = "recipe"`) as written; every signing preset is built
//! from one. Validation and the engine live in `pipeline::verify::recipe`.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Replay window used when a recipe checks a timestamp but sets no `tolerance_secs`.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Placeholders accepted in `signed_content`.
pub const PLACEHOLDERS: &[&str] = &["timestamp", "id", "url", "method", "body", "form_params"];

/// A declarative signature scheme (`type = "recipe"`); presets are built from this too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeConfig {
    /// HMAC hash function.
    pub algorithm: HmacAlgorithm,
    /// How the MAC is written in the header.
    pub encoding: SigEncoding,
    /// Header carrying the signature(s).
    pub signature_header: String,
    /// Literal text in front of each signature, e.g. `sha256=` or `v0=`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// How several signatures share the header.
    #[serde(default)]
    pub signature_list: SignatureList,
    /// Template of the signed bytes, e.g. `{timestamp}.{body}`.
    #[serde(default = "default_signed_content")]
    pub signed_content: String,
    /// Header holding the timestamp.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Key of the `k=v` pair in the signature header holding the timestamp (Stripe's `t`).
    #[serde(default)]
    pub timestamp_key: Option<String>,
    /// How the timestamp is written.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// Header whose value fills `{id}`.
    #[serde(default)]
    pub id_header: Option<String>,
    /// Accepted clock skew, both directions; default 300 when a timestamp is used.
    #[serde(default)]
    pub tolerance_secs: Option<u64>,
    /// How each secret string turns into HMAC key bytes.
    #[serde(default)]
    pub secret_encoding: SecretEncoding,
    /// Active secrets; any of them may have signed the request (rotation).
    pub secrets: Vec<Secret>,
    /// Header reported as the delivery id once the request verified.
    #[serde(default)]
    pub delivery_id_header: Option<String>,
    /// Dotted JSON path in the body reported as the delivery id once the request verified.
    #[serde(default)]
    pub delivery_id_json: Option<String>,
    /// Query parameter carrying the body's hex SHA-256; when present the body is authenticated by it (Twilio JSON bodies).
    #[serde(default)]
    pub body_hash_query: Option<String>,
    /// Also accept a signature over the URL with its port toggled (Twilio's libraries do the same).
    #[serde(default)]
    pub try_default_port: bool,
    /// Older signature header used only when `signature_header` is absent.
    #[serde(default)]
    pub fallback: Option<FallbackSignature>,
    /// Answer Slack's `url_verification` challenge once the request verified: the listener gets
    /// the `slack` handshake (`pipeline::handshake`) unless it declares one.
    #[serde(default)]
    pub url_verification_challenge: bool,
}

impl RecipeConfig {
    /// Every secret value, to seal or open them for storage. Destructured without `..`, so a
    /// new field does not compile until it says whether it is a secret.
    pub fn secrets_mut(&mut self) -> Vec<&mut Secret> {
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
        } = self;
        secrets.iter_mut().collect()
    }

    /// Every secret value, read-only; destructured without `..` like [`RecipeConfig::secrets_mut`].
    pub fn secrets(&self) -> Vec<&Secret> {
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
        } = self;
        secrets.iter().collect()
    }
}

fn default_signed_content() -> String {
    "{body}".to_owned()
}

/// How several signatures share one header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignatureList {
    /// The header holds exactly one signature.
    #[default]
    #[serde(alias = "none")]
    Single,
    /// Entries split by `delimiter`; with `key`, only `key=value` entries are signatures.
    Delimited {
        /// Separator between entries, e.g. `,`.
        delimiter: String,
        /// Only entries `key=<sig>` count; others (`t=`, `v0=`) are ignored.
        #[serde(default)]
        key: Option<String>,
    },
    /// Whitespace-separated `version,signature` entries; other versions are ignored (Standard Webhooks).
    Versioned {
        /// The version to accept, e.g. `v1`.
        version: String,
    },
}

/// How a configured secret string becomes HMAC key bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretEncoding {
    /// The UTF-8 bytes of the string.
    #[default]
    Raw,
    /// Standard base64.
    Base64,
    /// Standard base64 with an optional `whsec_` prefix.
    Whsec,
}

/// How a timestamp is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// Decimal seconds since the epoch.
    #[default]
    Unix,
    /// RFC 3339 / ISO 8601 date-time, e.g. `2021-03-25T05:09:27Z` (Zendesk).
    Rfc3339,
}

/// A legacy signature header consulted only when the main one is missing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackSignature {
    /// Legacy header name.
    pub header: String,
    /// Hash function of the legacy signature.
    pub algorithm: HmacAlgorithm,
    /// Literal text in front of the legacy signature.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// HMAC hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HmacAlgorithm {
    /// HMAC-SHA1 (Twilio, GitHub legacy).
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA384.
    Sha384,
    /// HMAC-SHA512.
    Sha512,
}

impl HmacAlgorithm {
    /// MAC length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// How a MAC is written in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SigEncoding {
    /// Hexadecimal, either case.
    Hex,
    /// Standard base64 with padding.
    Base64,
}
