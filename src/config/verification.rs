//! How a listener's senders prove who they are, as written in TOML and in the API's JSON: one
//! variant per scheme. The compiled verifier is `pipeline::verify::scheme::Verifier`.

use serde::{Deserialize, Serialize};

use super::recipe::{HmacAlgorithm, RecipeConfig, SigEncoding};
use crate::secret::Secret;

/// One accepted username/password pair for HTTP Basic auth.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    /// Username (no `:`).
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// Listener verification config as written in TOML (and JSON via the API).
// One per listener, so the unboxed recipe variant costs nothing worth an awkward `Box` in the API.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VerificationConfig {
    /// Accept everything.
    #[default]
    None,
    /// HTTP Basic auth; several credentials allow rotation.
    Basic {
        /// Accepted credentials.
        credentials: Vec<BasicCredential>,
    },
    /// HMAC over the raw body in one header.
    Hmac {
        /// Hash function.
        algorithm: HmacAlgorithm,
        /// Signature encoding.
        encoding: SigEncoding,
        /// Header carrying the signature.
        header: String,
        /// Literal text before the signature, e.g. `sha256=`.
        #[serde(default)]
        prefix: Option<String>,
        /// Active secrets.
        secrets: Vec<Secret>,
    },
    /// The last URL path segment is the secret.
    SecretUrl {
        /// Active tokens.
        tokens: Vec<Secret>,
    },
    /// A shared token in a header, query parameter or JSON body field.
    Token {
        /// Active tokens.
        tokens: Vec<Secret>,
        /// Dotted path of a JSON body field holding the token.
        #[serde(default)]
        json_path: Option<String>,
        /// Header holding the token (`Bearer ` is stripped).
        #[serde(default)]
        header: Option<String>,
        /// Query parameter holding the token.
        #[serde(default)]
        query: Option<String>,
    },
    /// GitHub preset.
    Github {
        /// Webhook secrets.
        secrets: Vec<Secret>,
    },
    /// Stripe preset.
    Stripe {
        /// Endpoint signing secrets (`whsec_...`).
        secrets: Vec<Secret>,
        /// Replay window in seconds (default 300).
        #[serde(default)]
        tolerance_secs: Option<u64>,
    },
    /// Slack preset.
    Slack {
        /// Signing secrets.
        secrets: Vec<Secret>,
        /// Replay window in seconds (default 300).
        #[serde(default)]
        tolerance_secs: Option<u64>,
    },
    /// Shopify preset.
    Shopify {
        /// App client secrets.
        secrets: Vec<Secret>,
    },
    /// Standard Webhooks (and Svix-style `webhook-*` headers) preset.
    StandardWebhooks {
        /// `whsec_<base64>` or raw base64 secrets.
        secrets: Vec<Secret>,
        /// Replay window in seconds (default 300).
        #[serde(default)]
        tolerance_secs: Option<u64>,
    },
    /// Zendesk preset.
    Zendesk {
        /// Webhook signing secrets.
        secrets: Vec<Secret>,
        /// Replay window in seconds (default 300).
        #[serde(default)]
        tolerance_secs: Option<u64>,
    },
    /// Twilio preset.
    Twilio {
        /// Account auth tokens.
        auth_tokens: Vec<Secret>,
    },
    /// A declarative signature recipe.
    Recipe(RecipeConfig),
}

// How redaction is made to fail closed (issue 12): every function that must know where a
// variant keeps its secrets — `secrets_mut` and `secrets` here, `VerificationConfig::redacted`
// and `secret_field` in `crate::redact`, `RecipeConfig::{secrets_mut, secrets}` and the recipe
// redaction — matches every variant by name, with no `_` arm, and destructures every field
// without `..`. A new variant, or a new field in a variant, therefore does not compile
// (E0004 / E0027) until each of them says what of it is secret; `clippy::wildcard_enum_match_arm`
// is denied on them so that a later `_ =>` is refused too. `scripts/check-redaction-exhaustive.sh`
// proves it: it adds a secret-bearing dummy variant to a copy of the crate and expects exactly
// these errors.
impl VerificationConfig {
    /// Every secret value, to seal or open them for storage. Exhaustive on purpose: a new
    /// variant does not compile until it says which of its fields are secrets.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        match self {
            Self::None => Vec::new(),
            Self::Basic { credentials } => credentials
                .iter_mut()
                .map(|BasicCredential { username: _, password }| password)
                .collect(),
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
            } => secrets.iter_mut().collect(),
            Self::SecretUrl { tokens }
            | Self::Token {
                tokens,
                json_path: _,
                header: _,
                query: _,
            } => tokens.iter_mut().collect(),
            Self::Twilio { auth_tokens } => auth_tokens.iter_mut().collect(),
            Self::Recipe(recipe) => recipe.secrets_mut(),
        }
    }

    /// Every secret value, to recognise them wherever they might show (the redaction's safety
    /// net). Exhaustive for the same reason as [`VerificationConfig::secrets_mut`].
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn secrets(&self) -> Vec<&Secret> {
        match self {
            Self::None => Vec::new(),
            Self::Basic { credentials } => credentials
                .iter()
                .map(|BasicCredential { username: _, password }| password)
                .collect(),
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
            } => secrets.iter().collect(),
            Self::SecretUrl { tokens }
            | Self::Token {
                tokens,
                json_path: _,
                header: _,
                query: _,
            } => tokens.iter().collect(),
            Self::Twilio { auth_tokens } => auth_tokens.iter().collect(),
            Self::Recipe(recipe) => recipe.secrets(),
        }
    }
}

/// Shortest secret-URL token accepted: the URL is the only credential, so it must not be guessable.
pub const MIN_URL_TOKEN_LEN: usize = 16;
