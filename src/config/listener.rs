//! `[[listeners]]`: one listener as written in the file or sent to the API, and the rules it
//! must follow. `pipeline::listener` compiles it (`ListenerConfig::compile`).

use serde::de::IntoDeserializer;
use serde::{Deserialize, Deserializer, Serialize};

use super::body_format::{default_methods, method_problems, BodyFormat, CsvOptions, MultipartOptions, NdjsonOptions};
use super::cloudevents::{CloudEventsOptions, OutputFormat};
use super::dedup::DedupOptions;
use super::handshake::HandshakeConfig;
use super::import_wait::{self, WaitFor, DEFAULT_WAIT_TIMEOUT_MS};
use super::kafka::validate_topic_name;
use super::resource_path::ResourcePath;
use super::schema::SchemaOptions;
use super::verification::VerificationConfig;
use crate::secret::Secret;

/// One listener: an endpoint senders post to, and what happens to what they post.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Stable identifier (letters, digits, `-`, `_`); key of its pages in Kafka.
    pub id: String,
    /// Human name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Explicit public id; by default derived from `server.public_id_secret` and `id`.
    #[serde(default)]
    pub public_id: Option<String>,
    /// Topic of this listener's pages; by default `kafka.pages_topic`.
    #[serde(default)]
    pub topic: Option<String>,
    /// Body formats accepted and size limit.
    #[serde(default)]
    pub content: ContentOptions,
    /// Dot path to the records inside the body (`data.items`, `shipments.shipment`).
    #[serde(default)]
    pub resource_path: Option<String>,
    /// A JSON Schema every record must satisfy, and what happens to those that do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaOptions>,
    /// Records per page.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Handlebars template over a record giving its trace key.
    #[serde(default)]
    pub trace_key_template: Option<String>,
    /// Handlebars template over a record giving its data URI.
    #[serde(default)]
    pub data_uri_template: Option<String>,
    /// Records with the same ordering key are imported in the order received, records with
    /// different keys in parallel (README, "Ordering"): a dotted path into the record
    /// (`customer.id`) or a template over it (`{{customer_id}}`). Absent: the listener's pages
    /// share one partition and are imported one after the other, as always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// Template failures on a record refuse the request (400) and a missing field is an
    /// error; by default a failure falls back (default trace key, null data URI, no body).
    #[serde(default)]
    pub strict_templates: bool,
    /// What the sender gets on success.
    #[serde(default)]
    pub response: ResponseOptions,
    /// How senders prove who they are.
    #[serde(default)]
    pub verification: VerificationConfig,
    /// Checks providers make of the endpoint, answered without (or besides) publishing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handshakes: Vec<HandshakeConfig>,
    /// Leaky bucket of this listener.
    #[serde(default)]
    pub rate_limit: RateLimitOptions,
    /// Keep no copy of record content for retries (issue 5 honours it).
    #[serde(default)]
    pub do_not_store_retry_data: bool,
    /// Deduplication by the provider's delivery id (absent: every delivery is published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<DedupOptions>,
    /// What its topic's messages are: `page`, `cloudevents_binary` or `cloudevents_structured`;
    /// absent: `kafka.output_format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    /// The attributes of its CloudEvents (`type_template`, `source`), when it publishes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudevents: Option<CloudEventsOptions>,
}

/// Whether `text` is an ordering key: a template when it holds `{{`, else a dotted path.
fn ordering_key_problem(text: &str) -> Result<(), String> {
    if text.contains("{{") {
        return crate::templates::validate(text);
    }
    match crate::dotted_path::segments(text) {
        Ok(_) => Ok(()),
        Err(crate::dotted_path::DottedPathError::Empty) => {
            Err("must be a dotted path into the record (`customer.id`) or a template (`{{customer_id}}`)".into())
        }
        Err(crate::dotted_path::DottedPathError::EmptySegment) => {
            Err("is not a dotted path: two dots in a row, or a dot at either end".into())
        }
    }
}

/// Default page size: 20 records, as in the product hookpipe replaces.
fn default_page_size() -> usize {
    20
}

/// Body formats and limits of a listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContentOptions {
    /// Accepted formats among `json`, `xml`, `form`, `multipart`, `csv`, `ndjson`, `query`;
    /// others get 415.
    #[serde(default = "default_accept", deserialize_with = "deserialize_accept")]
    pub accept: Vec<BodyFormat>,
    /// Body size limit in bytes; default `server.max_body_bytes`.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// HTTP methods accepted (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`); others get 405.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Limits of `multipart/form-data` bodies.
    #[serde(default)]
    pub multipart: MultipartOptions,
    /// Dialect of `text/csv` bodies.
    #[serde(default)]
    pub csv: CsvOptions,
    /// Limits of NDJSON bodies.
    #[serde(default)]
    pub ndjson: NdjsonOptions,
}

impl Default for ContentOptions {
    fn default() -> Self {
        ContentOptions {
            accept: default_accept(),
            max_body_bytes: None,
            methods: default_methods(),
            multipart: MultipartOptions::default(),
            csv: CsvOptions::default(),
            ndjson: NdjsonOptions::default(),
        }
    }
}

/// The three formats every listener took before formats were opt-in: a listener takes what its
/// senders send unless told otherwise; multipart, CSV, NDJSON and query records are opted into.
fn default_accept() -> Vec<BodyFormat> {
    vec![BodyFormat::Json, BodyFormat::Xml, BodyFormat::Form]
}

/// Parses one entry of `content.accept`.
pub fn parse_body_format(name: &str) -> Result<BodyFormat, String> {
    BodyFormat::deserialize(name.into_deserializer()).map_err(|_: serde::de::value::Error| {
        format!("unknown format `{name}`; use json, xml, form, multipart, csv, ndjson or query")
    })
}

/// `content.accept` as a list of names; an unknown name is reported at `content.accept`, the
/// key the rule is about, not at its index.
fn deserialize_accept<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<BodyFormat>, D::Error> {
    let names = Vec::<String>::deserialize(deserializer)?;
    names
        .iter()
        .map(|name| parse_body_format(name).map_err(serde::de::Error::custom))
        .collect()
}

impl ContentOptions {
    /// Problems with the methods and the format options, keyed relative to the listener.
    fn format_problems(&self) -> Vec<(String, String)> {
        let mut problems = method_problems(&self.methods, self.accept.contains(&BodyFormat::Query));
        for (table, found) in [("multipart", self.multipart.problems()), ("csv", self.csv.problems())] {
            problems.extend(
                found
                    .into_iter()
                    .map(|(key, message)| (format!("content.{table}.{key}"), message)),
            );
        }
        if self.ndjson.max_lines == 0 {
            problems.push(("content.ndjson.max_lines".into(), "must be at least 1".into()));
        }
        problems
    }

    /// Whether `method` (as actix spells it, upper case) is one of `methods`.
    pub fn accepts_method(&self, method: &str) -> bool {
        self.methods.iter().any(|accepted| accepted == method)
    }
}

/// Success response of a listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseOptions {
    /// 200, 201, 202 or 204.
    #[serde(default = "default_success_status")]
    pub status: u16,
    /// `json`, `xml`, `text`, or a full media type.
    #[serde(default = "default_media_type")]
    pub media_type: String,
    /// Handlebars template of the body, over `request_id`, `record_count`, `records`,
    /// `headers`, `query` and, for a listener with a schema, `records_valid` and
    /// `records_quarantined`; with `wait = "import"`, `results` too (one per record).
    #[serde(default)]
    pub body: Option<String>,
    /// `none` (default): the answer once Kafka acknowledged the records. `import`: the answer
    /// once the import worker imported or failed every one (README, "Wait for import").
    #[serde(default, skip_serializing_if = "WaitFor::is_none")]
    pub wait: WaitFor,
    /// With `wait = "import"`: how long the answer waits for the import after Kafka's
    /// acknowledgement, ms (default 10000); then 202 with the request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timeout_ms: Option<u64>,
    /// With `wait = "import"`: the status when a record failed; unset, 422 when every failure
    /// is the target calling the records invalid (a 4xx other than 408/429), else 502.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_status: Option<u16>,
    /// With `wait = "import"`: handlebars template of the failure answer's body, over
    /// `request_id`, `record_count`, `failures` (`id`, `index`, `status`, `error`) and `results`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_body: Option<String>,
}

impl Default for ResponseOptions {
    fn default() -> Self {
        ResponseOptions {
            status: default_success_status(),
            media_type: default_media_type(),
            body: None,
            wait: WaitFor::None,
            wait_timeout_ms: None,
            failure_status: None,
            failure_body: None,
        }
    }
}

impl ResponseOptions {
    /// Whether requests wait for their import (`wait = "import"`).
    pub fn waits_for_import(&self) -> bool {
        self.wait == WaitFor::Import
    }

    /// How long a request waits for its import after Kafka's acknowledgement.
    pub fn wait_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.wait_timeout_ms.unwrap_or(DEFAULT_WAIT_TIMEOUT_MS))
    }

    /// The problems of the wait keys (`config::import_wait`).
    pub fn wait_problems(&self) -> Vec<(String, String)> {
        import_wait::problems(
            self.wait,
            self.status,
            self.wait_timeout_ms,
            self.failure_status,
            self.failure_body.as_deref(),
        )
    }
}

fn default_success_status() -> u16 {
    204
}
fn default_media_type() -> String {
    "json".into()
}

/// Leaky bucket settings of a listener.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitOptions {
    /// Burst size, in requests.
    #[serde(default = "default_bucket_capacity")]
    pub capacity: u32,
    /// Sustained rate, requests per second.
    #[serde(default = "default_refill_per_sec")]
    pub refill_per_sec: u32,
}

impl Default for RateLimitOptions {
    fn default() -> Self {
        RateLimitOptions {
            capacity: default_bucket_capacity(),
            refill_per_sec: default_refill_per_sec(),
        }
    }
}

/// Celigo's published listener limit: a 1000-request bucket refilled at 300/s.
fn default_bucket_capacity() -> u32 {
    1000
}
fn default_refill_per_sec() -> u32 {
    300
}

impl RateLimitOptions {
    /// Problems with this bucket, as `(key relative to the bucket, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.capacity == 0 {
            problems.push(("capacity".into(), "must be at least 1".into()));
        }
        if self.refill_per_sec == 0 {
            problems.push(("refill_per_sec".into(), "must be at least 1".into()));
        }
        problems
    }
}

impl ListenerConfig {
    /// `ordering_key` with CloudEvents output (its own `output_format`, else `default`, the
    /// `kafka.output_format`): refused, since events are keyed by the listener (one partition,
    /// in strict order) and the worker imports them as unordered pages of one record, so the key
    /// would be silently ignored.
    pub fn ordering_output_problem(&self, default: OutputFormat) -> Option<(String, String)> {
        let format = self.output_format.unwrap_or(default);
        (self.ordering_key.is_some() && format != OutputFormat::Page).then(|| {
            (
                "ordering_key".to_string(),
                "cannot be used with CloudEvents output (output_format, or kafka.output_format): set \
                 output_format = \"page\" for this listener, or remove ordering_key"
                    .to_string(),
            )
        })
    }

    /// Problems with this listener, as `(key relative to the listener, message)`: every rule,
    /// its schema (compiled to be checked) last.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.problems_besides_schema();
        if let Some(schema) = &self.schema {
            problems.extend(schema.problems());
        }
        problems
    }

    /// [`ListenerConfig::problems`] but the schema's, for `compile`, which compiles the schema
    /// itself (once) and reports its problem after these.
    pub fn problems_besides_schema(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.push(("id".into(), "must be 1-64 letters, digits, '-' or '_'".into()));
        }
        if let Some(public_id) = &self.public_id {
            if public_id.len() < 16 || !public_id.chars().all(|c| c.is_ascii_alphanumeric()) {
                problems.push(("public_id".into(), "must be at least 16 letters or digits".into()));
            }
        }
        if let Some(topic) = &self.topic {
            if let Err(message) = validate_topic_name(topic) {
                problems.push(("topic".into(), message));
            }
        }
        if self.content.accept.is_empty() {
            problems.push(("content.accept".into(), "must list at least one format".into()));
        }
        if self.content.max_body_bytes == Some(0) {
            problems.push(("content.max_body_bytes".into(), "must be at least 1".into()));
        }
        if let Some(path) = &self.resource_path {
            if let Err(message) = ResourcePath::parse(path) {
                problems.push(("resource_path".into(), message));
            }
            if self.content.accept.contains(&BodyFormat::Csv) {
                problems.push((
                    "resource_path".into(),
                    "a CSV row is a flat record: a listener accepting csv takes no resource path".into(),
                ));
            }
        }
        problems.extend(self.content.format_problems());
        if self.page_size == 0 || self.page_size > 10_000 {
            problems.push(("page_size".into(), "must be between 1 and 10000".into()));
        }
        for (key, template) in [
            ("trace_key_template", &self.trace_key_template),
            ("data_uri_template", &self.data_uri_template),
            ("response.body", &self.response.body),
        ] {
            if let Some(template) = template {
                if let Err(message) = crate::templates::validate(template) {
                    problems.push((key.into(), message));
                }
            }
        }
        if let Some(ordering_key) = &self.ordering_key {
            if let Err(message) = ordering_key_problem(ordering_key) {
                problems.push(("ordering_key".into(), message));
            }
        }
        if !matches!(self.response.status, 200 | 201 | 202 | 204) {
            problems.push(("response.status".into(), "must be 200, 201, 202 or 204".into()));
        }
        if self.response.status == 204 && self.response.body.is_some() {
            problems.push((
                "response.body".into(),
                "a 204 response has no body; choose status 200, 201 or 202".into(),
            ));
        }
        problems.extend(self.response.wait_problems());
        if response_content_type(&self.response.media_type).is_none() {
            problems.push((
                "response.media_type".into(),
                "must be json, xml, text or a type/subtype media type".into(),
            ));
        }
        for (key, message) in self.rate_limit.problems() {
            problems.push((format!("rate_limit.{key}"), message));
        }
        for (key, message) in self.verification.validate() {
            problems.push((format!("verification.{key}"), message));
        }
        if let Some(dedup) = &self.dedup {
            problems.extend(dedup.problems(&self.verification));
        }
        if let Some(cloudevents) = &self.cloudevents {
            problems.extend(cloudevents.problems());
        }
        // Defined beside the handshake compiler (`pipeline::handshake`), as `validate` is beside
        // the verifier: what is checked and what is compiled cannot drift apart.
        problems.extend(self.handshake_problems());
        problems
    }

    /// Every secret of the listener — its verification's and its handshakes' — to seal or open
    /// them for storage.
    pub fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        let mut secrets = self.verification.secrets_mut();
        secrets.extend(self.handshakes.iter_mut().flat_map(HandshakeConfig::secrets_mut));
        secrets
    }

    /// Every secret of the listener, read-only.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut secrets = self.verification.secrets();
        secrets.extend(self.handshakes.iter().flat_map(HandshakeConfig::secrets));
        secrets
    }
}

/// The `Content-Type` of a success body for a configured media type.
pub fn response_content_type(media_type: &str) -> Option<String> {
    match media_type {
        "json" => Some("application/json".into()),
        "xml" => Some("application/xml".into()),
        "text" => Some("text/plain; charset=utf-8".into()),
        other => {
            let (kind, sub) = other.split_once('/')?;
            let token =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c));
            (token(kind) && token(sub.split(';').next().unwrap_or("").trim())).then(|| other.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ListenerConfig;
    use crate::config::body_format::BodyFormat;
    use crate::config::test_support::{env, BASE};
    use crate::config::Settings;

    #[test]
    fn errors_name_the_key() {
        let text = format!("{BASE}page_size = 0\nresource_path = \"a..b\"\ntrace_key_template = \"{{{{#if}}\"\n");
        let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"listeners[orders].page_size"), "{keys:?}");
        assert!(keys.contains(&"listeners[orders].resource_path"), "{keys:?}");
        assert!(keys.contains(&"listeners[orders].trace_key_template"), "{keys:?}");
    }

    #[test]
    fn template_helpers_are_checked_when_loaded() {
        let text = format!("{BASE}trace_key_template = '{{{{join \"_\" a b}}}}'\n");
        let settings = Settings::from_toml_and_env(&text, env(&[])).unwrap();
        assert_eq!(
            settings.listeners[0].trace_key_template.as_deref(),
            Some(r#"{{join "_" a b}}"#)
        );
        assert!(
            !settings.listeners[0].strict_templates,
            "strict_templates defaults to false"
        );
        for (line, key) in [
            (
                "trace_key_template = '{{nosuchhelper a}}'",
                "listeners[orders].trace_key_template",
            ),
            (
                "data_uri_template = 'https://x/{{nosuchhelper a}}'",
                "listeners[orders].data_uri_template",
            ),
            (
                "trace_key_template = '{{join \"_\" (nosuchhelper a) b}}'",
                "listeners[orders].trace_key_template",
            ),
            (
                "trace_key_template = '{{#nosuchhelper a}}x{{/nosuchhelper}}'",
                "listeners[orders].trace_key_template",
            ),
            (
                "data_uri_template = '{{#if a}}{{nosuchhelper a}}{{/if}}'",
                "listeners[orders].data_uri_template",
            ),
            (
                "[listeners.response]\nstatus = 200\nbody = '{\"id\": \"{{nosuchhelper request_id}}\"}'",
                "listeners[orders].response.body",
            ),
        ] {
            let errors = Settings::from_toml_and_env(&format!("{BASE}{line}\n"), env(&[]))
                .unwrap_err()
                .0;
            assert_eq!(errors.len(), 1, "{line}: {errors:?}");
            assert_eq!(errors[0].key, key, "{line}");
            assert!(
                errors[0].message.contains("unknown helper `nosuchhelper`"),
                "{line}: {errors:?}"
            );
        }
    }

    #[test]
    fn an_ordering_key_is_a_dotted_path_or_a_template_and_its_problems_are_named() {
        for good in [
            "customer_id",
            "customer.id",
            "items.0.sku",
            "{{customer_id}}",
            "{{a}}-{{b.c}}",
        ] {
            let text = format!("{BASE}ordering_key = '{good}'\n");
            let settings = Settings::from_toml_and_env(&text, env(&[])).unwrap();
            assert_eq!(settings.listeners[0].ordering_key.as_deref(), Some(good));
        }
        assert_eq!(
            Settings::from_toml_and_env(BASE, env(&[])).unwrap().listeners[0].ordering_key,
            None
        );
        for (bad, says) in [
            ("", "must be a dotted path"),
            ("customer..id", "is not a dotted path"),
            (".id", "is not a dotted path"),
            ("{{nosuchhelper a}}", "unknown helper `nosuchhelper`"),
            ("{{#if a}}", "template"),
        ] {
            let text = format!("{BASE}ordering_key = '{bad}'\n");
            let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert_eq!(errors[0].key, "listeners[orders].ordering_key", "{bad}");
            assert!(errors[0].message.contains(says), "{bad}: {}", errors[0].message);
        }
    }

    #[test]
    fn an_ordering_key_with_cloudevents_output_is_refused() {
        let own = format!("{BASE}ordering_key = 'customer_id'\noutput_format = 'cloudevents_binary'\n");
        let errors = Settings::from_toml_and_env(&own, env(&[])).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key, "listeners[orders].ordering_key");
        assert!(errors[0].message.contains("CloudEvents"), "{}", errors[0].message);
        // The default of kafka.output_format counts; a listener that publishes pages may order.
        let text = format!("{BASE}ordering_key = 'customer_id'\n");
        let by_default = [("HOOKPIPE_KAFKA__OUTPUT_FORMAT", "cloudevents_structured")];
        let errors = Settings::from_toml_and_env(&text, env(&by_default)).unwrap_err().0;
        assert_eq!(errors[0].key, "listeners[orders].ordering_key", "{errors:?}");
        let pages = format!("{text}output_format = 'page'\n");
        assert!(Settings::from_toml_and_env(&pages, env(&by_default)).is_ok());
    }

    #[test]
    fn accept_lists_body_formats_by_name() {
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        assert_eq!(
            settings.listeners[0].content.accept,
            [BodyFormat::Json, BodyFormat::Xml, BodyFormat::Form]
        );
        let text = format!("{BASE}page_size = 0\n[listeners.content]\naccept = [\"xml\", \"yaml\"]\n");
        let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
        let found: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "listeners[orders].content.accept: unknown format `yaml`; use json, xml, form, multipart, csv, ndjson or query",
                "listeners[orders].page_size: must be between 1 and 10000",
            ]
        );
        let errors = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_LISTENERS__ORDERS__CONTENT__ACCEPT", "[]")]))
            .unwrap_err()
            .0;
        assert_eq!(
            errors[0].to_string(),
            "listeners[orders].content.accept: must list at least one format"
        );

        // Through the API (JSON): the same message, on the list.
        let config: ListenerConfig =
            serde_json::from_value(serde_json::json!({"id": "a", "content": {"accept": ["form"]}})).unwrap();
        assert_eq!(config.content.accept, [BodyFormat::Form]);
        assert_eq!(
            serde_json::to_value(&config).unwrap()["content"]["accept"],
            serde_json::json!(["form"])
        );
        let error = serde_path_to_error::deserialize::<_, ListenerConfig>(
            serde_json::json!({"id": "a", "content": {"accept": ["json", "yaml"]}}),
        )
        .unwrap_err();
        assert_eq!(error.path().to_string(), "content.accept");
        assert_eq!(
            error.into_inner().to_string(),
            "unknown format `yaml`; use json, xml, form, multipart, csv, ndjson or query"
        );
    }
}
