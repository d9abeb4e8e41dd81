//! Bodies of `/api/v1/listeners…`: a listener as the API shows it (settings with secrets as
//! fingerprints, public URL, where it is defined), what creates one, its URL, a new secret.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::More;

/// Where a listener is defined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListenerSource {
    /// The configuration file: read-only through the API.
    Config,
    /// The management API (stored in Kafka).
    #[default]
    Api,
}

/// A listener as the API shows it: its settings as written (README › Configuration reference), each
/// secret replaced by `{"fingerprint": …}`, plus its public id and URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListenerView {
    /// Stable identifier (letters, digits, `-`, `_`).
    pub id: String,
    /// Human name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The unguessable id in the listener's URL.
    pub public_id: String,
    /// The URL senders post to (a secret-URL listener's token is not in it: see `/url`).
    pub url: String,
    /// Where the listener is defined.
    pub source: ListenerSource,
    /// Topic its pages go to.
    pub topic: String,
    /// Body formats, methods and limits (`accept`, `methods`, `max_body_bytes`, `multipart`,
    /// `csv`, `ndjson`).
    #[schema(value_type = Object)]
    pub content: Value,
    /// Dot path to the records inside the body.
    #[serde(default)]
    pub resource_path: Option<String>,
    /// Records per page.
    pub page_size: u64,
    /// Handlebars template giving each record's trace key.
    #[serde(default)]
    pub trace_key_template: Option<String>,
    /// Handlebars template giving each record's data URI.
    #[serde(default)]
    pub data_uri_template: Option<String>,
    /// Records with the same ordering key are imported in order, different keys in parallel:
    /// a dotted path into the record or a template over it (README › Ordering; absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// Whether a template failure refuses the request.
    #[serde(default)]
    pub strict_templates: bool,
    /// Success answer: `status`, `media_type`, `body` template.
    #[schema(value_type = Object)]
    pub response: Value,
    /// How senders prove who they are: `type` and the scheme's settings, secrets shown as
    /// `{"fingerprint": …}` (basic credentials as `{"username", "fingerprint"}`).
    #[schema(value_type = Object)]
    pub verification: Value,
    /// Leaky bucket: `capacity`, `refill_per_sec`.
    #[schema(value_type = Object)]
    pub rate_limit: Value,
    /// Keep no copy of record content for retries.
    #[serde(default)]
    pub do_not_store_retry_data: bool,
    /// Deduplication by the provider's delivery id: `window_secs`, `max_ids` (absent: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub dedup: Option<Value>,
    /// The JSON Schema records must satisfy and the policy for those that do not (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    /// What its topic's messages are: `page`, `cloudevents_binary` or `cloudevents_structured`
    /// (absent: `kafka.output_format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// The attributes of its CloudEvents: `type_template`, `source` (absent: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cloudevents: Option<Value>,
    /// Handshake rules: checks providers make of the endpoint, answered without publishing
    /// (secrets shown as fingerprints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub handshakes: Vec<Value>,
    /// When the listener was created through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the listener was last changed through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Settings this type does not name yet, as written.
    #[serde(flatten)]
    #[schema(ignore)]
    pub more: More,
}

impl ListenerView {
    /// The verification type (`none`, `hmac`, `github`, …).
    pub fn verification_type(&self) -> &str {
        self.verification["type"].as_str().unwrap_or("none")
    }
}

/// `GET /listeners`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListenerList {
    /// Every listener this instance serves (configuration file and API).
    pub listeners: Vec<ListenerView>,
}

/// A listener's settings as sent to `POST /listeners` (every field but `id` optional), or a
/// JSON merge patch of them (RFC 7396) for `PUT`/`PATCH /listeners/{id}`. Secrets are written
/// in clear here and never shown again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListenerInput {
    /// Stable identifier: 1-64 letters, digits, `-` or `_` (required to create; fixed after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Human name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Topic of the pages (default `kafka.pages_topic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// `accept` (formats), `methods`, `max_body_bytes`, `multipart`, `csv`, `ndjson`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub content: Option<Value>,
    /// Dot path to the records inside the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_path: Option<String>,
    /// Records per page (1-10000, default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    /// Handlebars template of the trace key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_key_template: Option<String>,
    /// Handlebars template of the data URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_uri_template: Option<String>,
    /// Ordering key: a dotted path into the record (`customer.id`) or a template over it
    /// (`{{customer_id}}`); records of one key are imported in order (README › Ordering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// A template failure refuses the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_templates: Option<bool>,
    /// `status` (200, 201, 202, 204), `media_type`, `body` (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub response: Option<Value>,
    /// `type` (`none`, `basic`, `hmac`, `secret_url`, `token`, `github`, `stripe`, `slack`,
    /// `shopify`, `standard_webhooks`, `zendesk`, `twilio`, `recipe`) and its settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub verification: Option<Value>,
    /// `capacity`, `refill_per_sec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub rate_limit: Option<Value>,
    /// Keep no copy of record content for retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub do_not_store_retry_data: Option<bool>,
    /// Deduplication by the provider's delivery id: `window_secs` (default: the provider's
    /// retry horizon), `max_ids` (default 1000000); `null` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub dedup: Option<Value>,
    /// A JSON Schema every record must satisfy (`document` inline, or `file`) and its `policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    /// `page`, `cloudevents_binary` or `cloudevents_structured` (README › CloudEvents; absent:
    /// `kafka.output_format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// `type_template` (handlebars over `headers`, `query`, `record`, `listener_id`) and
    /// `source` of its CloudEvents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cloudevents: Option<Value>,
    /// Handshake rules (README › Handshakes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub handshakes: Option<Vec<Value>>,
    /// Other settings, as written.
    #[serde(flatten)]
    #[schema(ignore)]
    pub more: More,
}

/// `GET`/`POST /listeners/{id}/url`: the URL to give senders (with the token of a secret-URL
/// listener).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListenerUrl {
    /// The full URL.
    pub url: String,
    /// The public id in it.
    pub public_id: String,
}

/// `POST /listeners/{id}/secrets`: a secret to add beside the current ones (rotation); for a
/// `basic` listener a credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretInput {
    /// The new secret or token (every scheme but `basic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Username of a new basic credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password of a new basic credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}
