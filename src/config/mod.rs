//! Settings: embedded defaults, then one TOML file, then `HOOKPIPE_*__*` environment
//! overrides; validated once at load, with every error naming the key that is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub mod body_format;
pub mod recipe;
pub mod resource_path;
pub mod verification;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use resource_path::ResourcePath;
use verification::VerificationConfig;

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "HOOKPIPE_";
/// Separator between key segments in an environment override (`HOOKPIPE_KAFKA__BROKERS`).
pub const ENV_SEPARATOR: &str = "__";

/// The whole configuration of one hookpipe instance.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP server settings.
    #[serde(default)]
    pub server: ServerSettings,
    /// Kafka producer and topics.
    #[serde(default)]
    pub kafka: KafkaSettings,
    /// Actor chain tuning.
    #[serde(default)]
    pub pipeline: PipelineSettings,
    /// Import workers (`hookpipe worker`): consumer group and targets.
    #[serde(default)]
    pub worker: WorkerSettings,
    /// Listeners defined in the file (read-only through the API).
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind, `host:port`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Base URL senders use to reach this tier (the load balancer's), without trailing slash.
    /// Printed listener URLs and URL-signing schemes (Twilio) use it.
    #[serde(default)]
    pub external_base_url: Option<String>,
    /// Key from which stable, unguessable public ids are derived for listeners without an
    /// explicit `public_id`. Keep it secret: whoever knows it can compute the public URLs.
    #[serde(default)]
    pub public_id_secret: Option<Secret>,
    /// HTTP threads (actix calls them workers; not import workers); 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// Requests processed at once by this instance; above it, 503 + `Retry-After`.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Deadline for a request from the end of its body to its answer (includes the Kafka ack).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Deadline for reading a request body; slow senders get 408.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Default body size limit of a listener, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Seconds to finish in-flight requests on SIGTERM.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Bearer token of the management API (`/api/v1`); unset, the API is off.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// Name of this instance in debug captures; default `<hostname>:<port>`.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// An optional bucket for the whole instance, checked after the listener's own.
    #[serde(default)]
    pub global_rate_limit: Option<RateLimitOptions>,
    /// Key sealing the secrets of API-created listeners in the state topic (AES-256-GCM), base64
    /// of 32 random bytes. Unset with the embedded cluster: an ephemeral key is generated. Unset
    /// with real brokers: API writes carrying secrets are refused (409).
    #[serde(default)]
    pub secrets_key: Option<Secret>,
    /// Former `secrets_key`s, used only to open values sealed before a rotation.
    #[serde(default)]
    pub previous_secrets_keys: Vec<Secret>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: default_listen(),
            external_base_url: None,
            public_id_secret: None,
            workers: 0,
            max_in_flight: default_max_in_flight(),
            request_timeout_ms: default_request_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            max_body_bytes: default_max_body_bytes(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
            global_rate_limit: None,
            admin_token: None,
            instance_id: None,
            secrets_key: None,
            previous_secrets_keys: Vec::new(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_max_in_flight() -> usize {
    4096
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_body_read_timeout_ms() -> u64 {
    10_000
}
/// 10 MB, the body limit of the product hookpipe replaces.
fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_shutdown_timeout_secs() -> u64 {
    30
}

/// Kafka settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers. Empty: start librdkafka's in-process mock cluster (nothing durable).
    #[serde(default)]
    pub brokers: String,
    /// Default topic for pages of listeners without their own `topic`.
    #[serde(default = "default_pages_topic")]
    pub pages_topic: String,
    /// How long librdkafka may try to deliver a page; must be below `server.request_timeout_ms`
    /// so the sender hears about a failure before its own deadline.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// Cap on the producer's local queue, in messages (`queue.buffering.max.messages`).
    #[serde(default = "default_queue_max_messages")]
    pub queue_max_messages: u32,
    /// Cap on the producer's local queue, in KiB (`queue.buffering.max.kbytes`).
    #[serde(default = "default_queue_max_kbytes")]
    pub queue_max_kbytes: u32,
    /// How long librdkafka waits to batch pages into one request (`linger.ms`).
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u32,
    /// `compression.type`: none, gzip, lz4, snappy or zstd (as built).
    #[serde(default = "default_compression")]
    pub compression: String,
    /// Compacted topic holding listener definitions, sample data, mock output and debug windows.
    #[serde(default = "default_state_topic")]
    pub state_topic: String,
    /// Topic of debug captures (kept 24 hours).
    #[serde(default = "default_debug_topic")]
    pub debug_topic: String,
    /// Compacted topic of failed records (open import errors), keyed by listener and record id.
    #[serde(default = "default_errors_topic")]
    pub errors_topic: String,
    /// Topic of retry data (each record's content, keyed by record id), kept `retry_retention_hours`.
    #[serde(default = "default_retry_topic")]
    pub retry_topic: String,
    /// How long retry data is kept (`retention.ms` of the retry topic when hookpipe creates it).
    #[serde(default = "default_retry_retention_hours")]
    pub retry_retention_hours: u64,
    /// Create the topics hookpipe needs at start (brokers here do not auto-create them).
    #[serde(default = "default_true")]
    pub create_topics: bool,
    /// Partitions of topics hookpipe creates.
    #[serde(default = "default_topic_partitions")]
    pub topic_partitions: i32,
    /// Replication factor of topics hookpipe creates.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    /// Extra librdkafka properties (security, timeouts). Cannot weaken acks or idempotence.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: String::new(),
            pages_topic: default_pages_topic(),
            message_timeout_ms: default_message_timeout_ms(),
            queue_max_messages: default_queue_max_messages(),
            queue_max_kbytes: default_queue_max_kbytes(),
            linger_ms: default_linger_ms(),
            compression: default_compression(),
            state_topic: default_state_topic(),
            debug_topic: default_debug_topic(),
            errors_topic: default_errors_topic(),
            retry_topic: default_retry_topic(),
            retry_retention_hours: default_retry_retention_hours(),
            create_topics: true,
            topic_partitions: default_topic_partitions(),
            replication_factor: default_replication_factor(),
            properties: BTreeMap::new(),
        }
    }
}

fn default_pages_topic() -> String {
    "hookpipe.pages".into()
}
fn default_message_timeout_ms() -> u64 {
    5_000
}
fn default_queue_max_messages() -> u32 {
    100_000
}
/// 256 MiB: a few seconds of 16 KB pages at full speed, bounded well below the machine.
fn default_queue_max_kbytes() -> u32 {
    256 * 1024
}
/// 0: hookpipe already batches records into pages by group commit; waiting in librdkafka as
/// well doubled the latency of a request in the load benchmark (2.7 ms vs 4.5 ms at p50).
fn default_linger_ms() -> u32 {
    0
}
fn default_compression() -> String {
    "lz4".into()
}
fn default_state_topic() -> String {
    "hookpipe.state".into()
}
fn default_debug_topic() -> String {
    "hookpipe.debug".into()
}
fn default_errors_topic() -> String {
    "hookpipe.errors".into()
}
fn default_retry_topic() -> String {
    "hookpipe.retry".into()
}
/// Seven days: long enough to fix a target over a week-end and retry, bounded on disk.
fn default_retry_retention_hours() -> u64 {
    7 * 24
}
fn default_true() -> bool {
    true
}
fn default_topic_partitions() -> i32 {
    3
}
fn default_replication_factor() -> i32 {
    1
}

/// Import workers: the consumer group they share and where each listener's records go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Kafka consumer group of the workers; partitions of the pages topics are spread over its members.
    #[serde(default = "default_worker_group_id")]
    pub group_id: String,
    /// Topics to consume; empty means every pages topic of this configuration (`kafka.pages_topic`
    /// and each listener's `topic`). An entry starting with `^` is a regular expression.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Address of the worker's `GET /metrics` listener (`host:port`, port 0 picks one); empty turns it off.
    #[serde(default = "default_worker_metrics_listen")]
    pub metrics_listen: String,
    /// How often stored offsets are committed; at most this much finished work is imported
    /// again after a crash.
    #[serde(default = "default_worker_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// Longest one page may take, retries included; records still failing then are recorded as
    /// errors. The consumer's `max.poll.interval.ms` is this plus a minute.
    #[serde(default = "default_worker_page_timeout_ms")]
    pub page_timeout_ms: u64,
    /// Consumer group session timeout (`session.timeout.ms`): how soon a crashed worker's
    /// partitions move to the others.
    #[serde(default = "default_worker_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// Seconds a SIGTERM waits for the page in hand; a page still unfinished then is left
    /// uncommitted (imported again by the next owner of its partition).
    #[serde(default = "default_worker_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Target of listeners without an entry in `targets`; none: their records are recorded as errors.
    #[serde(default)]
    pub default_target: Option<TargetConfig>,
    /// Targets by listener id.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            group_id: default_worker_group_id(),
            topics: Vec::new(),
            metrics_listen: default_worker_metrics_listen(),
            commit_interval_ms: default_worker_commit_interval_ms(),
            page_timeout_ms: default_worker_page_timeout_ms(),
            session_timeout_ms: default_worker_session_timeout_ms(),
            shutdown_timeout_secs: default_worker_shutdown_timeout_secs(),
            default_target: None,
            targets: BTreeMap::new(),
        }
    }
}

fn default_worker_group_id() -> String {
    "hookpipe-workers".into()
}
/// Next to the serve tier's 8080, on loopback: expose it deliberately.
fn default_worker_metrics_listen() -> String {
    "127.0.0.1:9091".into()
}
/// librdkafka's `auto.commit.interval.ms` default is 5 s; 1 s bounds re-imports after a crash tighter.
fn default_worker_commit_interval_ms() -> u64 {
    1_000
}
/// Four minutes: librdkafka's default `max.poll.interval.ms` (5 min) minus room for error writes.
fn default_worker_page_timeout_ms() -> u64 {
    240_000
}
/// librdkafka's default `session.timeout.ms`.
fn default_worker_session_timeout_ms() -> u64 {
    45_000
}
/// Kubernetes' default termination grace period.
fn default_worker_shutdown_timeout_secs() -> u64 {
    30
}

/// Where a listener's records are imported.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetConfig {
    /// POST JSON to an HTTP endpoint.
    Http(HttpTargetConfig),
    /// Append JSON lines (one record per line) to a file.
    File {
        /// The file; created if missing, appended to.
        path: String,
    },
    /// Print JSON lines (one record per line) on standard output.
    Stdout,
}

/// An HTTP import target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTargetConfig {
    /// `http://` or `https://` URL receiving the POSTs.
    pub url: String,
    /// PEM file of the CA certificates to trust for an https `url` instead of the built-in
    /// Mozilla roots (a private CA, or the target's own self-signed certificate).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// `page`: one POST per page (`{"type":"page",…,"records":[…]}`); `record`: one POST per record.
    #[serde(default)]
    pub mode: ImportMode,
    /// Extra request headers (not secrets: use `auth`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Credentials sent in `Authorization`.
    #[serde(default)]
    pub auth: Option<TargetAuth>,
    /// Deadline of one request, connection included.
    #[serde(default = "default_target_timeout_ms")]
    pub timeout_ms: u64,
    /// Tries per record, the first included; retried on connection errors, 5xx and 429.
    #[serde(default = "default_target_max_attempts")]
    pub max_attempts: u32,
    /// First backoff; doubles per try, with jitter, up to `max_backoff_ms`.
    #[serde(default = "default_target_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest backoff between tries (a `Retry-After` may ask for more, within `worker.page_timeout_ms`).
    #[serde(default = "default_target_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// The target answers a 2xx with a JSON array of per-record results in request order,
    /// `{"ok":true}` or `{"ok":false,"error":"…"}` (`"retryable":true` to have it retried).
    #[serde(default)]
    pub per_record_results: bool,
}

/// How records are grouped into requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// One request per page.
    #[default]
    Page,
    /// One request per record.
    Record,
}

/// Credentials of an HTTP target.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetAuth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret,
    },
    /// `Authorization: Basic …`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
}

fn default_target_timeout_ms() -> u64 {
    10_000
}
fn default_target_max_attempts() -> u32 {
    5
}
fn default_target_initial_backoff_ms() -> u64 {
    500
}
fn default_target_max_backoff_ms() -> u64 {
    30_000
}

impl TargetConfig {
    /// Problems with this target, as `(key relative to the target, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        match self {
            TargetConfig::Http(http) => {
                let rest = http
                    .url
                    .strip_prefix("http://")
                    .or_else(|| http.url.strip_prefix("https://"));
                if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
                    problems.push(("url".into(), "must be an http:// or https:// URL with a host".into()));
                }
                if let Some(ca_file) = &http.ca_file {
                    if !http.url.starts_with("https://") {
                        problems.push(("ca_file".into(), "is only used with an https:// url".into()));
                    } else if let Err(message) = crate::tls::ca_certificates(std::path::Path::new(ca_file)) {
                        problems.push(("ca_file".into(), message));
                    }
                }
                for (name, value) in &http.headers {
                    let token = !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
                    if !token {
                        problems.push((format!("headers.{name}"), "is not a valid header name".into()));
                    }
                    if value.chars().any(|c| c.is_control() && c != '\t') {
                        problems.push((
                            format!("headers.{name}"),
                            "value must not contain control characters".into(),
                        ));
                    }
                    if name.eq_ignore_ascii_case("authorization") {
                        problems.push((
                            format!("headers.{name}"),
                            "put credentials in `auth`, which keeps them out of logs".into(),
                        ));
                    }
                }
                if http.timeout_ms == 0 {
                    problems.push(("timeout_ms".into(), "must be at least 1".into()));
                }
                if !(1..=100).contains(&http.max_attempts) {
                    problems.push(("max_attempts".into(), "must be between 1 and 100".into()));
                }
                if http.initial_backoff_ms == 0 || http.initial_backoff_ms > http.max_backoff_ms {
                    problems.push((
                        "initial_backoff_ms".into(),
                        "must be at least 1 and at most max_backoff_ms".into(),
                    ));
                }
            }
            TargetConfig::File { path } => {
                if path.trim().is_empty() {
                    problems.push(("path".into(), "must not be empty".into()));
                }
            }
            TargetConfig::Stdout => {}
        }
        problems
    }
}

/// Actor chain tuning.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Capacity of every stage mailbox.
    #[serde(default = "default_mailbox_capacity")]
    pub mailbox_capacity: usize,
    /// How long an open page waits for records of concurrent requests before it is published.
    #[serde(default = "default_page_linger_ms")]
    pub page_linger_ms: u64,
    /// Serialized size cap of a page's records (5 MB).
    #[serde(default = "default_max_page_bytes")]
    pub max_page_bytes: usize,
    /// JSON and XML nesting limit.
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// Form field count limit.
    #[serde(default = "default_max_form_fields")]
    pub max_form_fields: usize,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            mailbox_capacity: default_mailbox_capacity(),
            page_linger_ms: default_page_linger_ms(),
            max_page_bytes: default_max_page_bytes(),
            max_depth: default_max_depth(),
            max_form_fields: default_max_form_fields(),
        }
    }
}

fn default_mailbox_capacity() -> usize {
    1024
}
fn default_page_linger_ms() -> u64 {
    2
}
fn default_max_page_bytes() -> usize {
    5 * 1024 * 1024
}
fn default_max_depth() -> usize {
    128
}
fn default_max_form_fields() -> usize {
    1000
}

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
    /// Records per page.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Handlebars template over a record giving its trace key.
    #[serde(default)]
    pub trace_key_template: Option<String>,
    /// Handlebars template over a record giving its data URI.
    #[serde(default)]
    pub data_uri_template: Option<String>,
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
    /// Leaky bucket of this listener.
    #[serde(default)]
    pub rate_limit: RateLimitOptions,
    /// Keep no copy of record content for retries (issue 5 honours it).
    #[serde(default)]
    pub do_not_store_retry_data: bool,
}

/// Default page size: 20 records, as in the product hookpipe replaces.
fn default_page_size() -> usize {
    20
}

/// Body formats and limits of a listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContentOptions {
    /// Accepted formats among `json`, `xml`, `form`; others get 415.
    #[serde(default = "default_accept")]
    pub accept: Vec<String>,
    /// Body size limit in bytes; default `server.max_body_bytes`.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

impl Default for ContentOptions {
    fn default() -> Self {
        ContentOptions {
            accept: default_accept(),
            max_body_bytes: None,
        }
    }
}

fn default_accept() -> Vec<String> {
    vec!["json".into(), "xml".into(), "form".into()]
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
    /// Handlebars template of the body, over `body`, `json`, `records`, `headers`, `query`,
    /// `request_id`.
    #[serde(default)]
    pub body: Option<String>,
}

impl Default for ResponseOptions {
    fn default() -> Self {
        ResponseOptions {
            status: default_success_status(),
            media_type: default_media_type(),
            body: None,
        }
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

/// One configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, `listeners[orders].page_size`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// All problems found in one configuration.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

fn single(key: impl Into<String>, message: impl Into<String>) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        key: key.into(),
        message: message.into(),
    }])
}

impl Settings {
    /// Reads `path` (if given), applies the process environment, deserializes and validates.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigErrors> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|error| single("<file>", format!("cannot read {}: {error}", path.display())))?,
            None => String::new(),
        };
        Settings::from_toml_and_env(&text, std::env::vars())
    }

    /// Parses TOML text, applies `HOOKPIPE_*__*` overrides from `env`, deserializes and validates.
    pub fn from_toml_and_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigErrors> {
        let mut root: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| single(toml_error_key(&error), error.message().to_string()))?;
        for (name, value) in env {
            apply_env_override(&mut root, &name, &value)?;
        }
        let settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(root)).map_err(|error| {
            let key = error.path().to_string();
            single(
                if key == "." { "<root>".into() } else { key },
                error.into_inner().to_string(),
            )
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the values that types alone cannot, collecting every problem.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut push = |key: String, message: String| errors.push(ConfigError { key, message });

        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            push(
                "server.listen".into(),
                "must be host:port with an IP address, e.g. 127.0.0.1:8080".into(),
            );
        }
        if let Some(base) = &self.server.external_base_url {
            if !(base.starts_with("http://") || base.starts_with("https://")) || base.ends_with('/') {
                push(
                    "server.external_base_url".into(),
                    "must start with http:// or https:// and have no trailing slash".into(),
                );
            }
        }
        if self.server.max_in_flight == 0 {
            push("server.max_in_flight".into(), "must be at least 1".into());
        }
        if let Some(global) = &self.server.global_rate_limit {
            if global.capacity == 0 || global.refill_per_sec == 0 {
                push(
                    "server.global_rate_limit".into(),
                    "capacity and refill_per_sec must be at least 1".into(),
                );
            }
        }
        if self.server.max_body_bytes == 0 {
            push("server.max_body_bytes".into(), "must be at least 1".into());
        }
        if self.kafka.message_timeout_ms == 0 || self.kafka.message_timeout_ms >= self.server.request_timeout_ms {
            push(
                "kafka.message_timeout_ms".into(),
                format!(
                    "must be above 0 and below server.request_timeout_ms ({}), so a failed delivery is answered before the deadline",
                    self.server.request_timeout_ms
                ),
            );
        }
        if !matches!(
            self.kafka.compression.as_str(),
            "none" | "gzip" | "lz4" | "snappy" | "zstd"
        ) {
            push(
                "kafka.compression".into(),
                "must be one of none, gzip, lz4, snappy, zstd".into(),
            );
        }
        for (key, topic) in [
            ("kafka.pages_topic", &self.kafka.pages_topic),
            ("kafka.state_topic", &self.kafka.state_topic),
            ("kafka.debug_topic", &self.kafka.debug_topic),
            ("kafka.errors_topic", &self.kafka.errors_topic),
            ("kafka.retry_topic", &self.kafka.retry_topic),
        ] {
            if let Err(message) = validate_topic_name(topic) {
                push(key.into(), message);
            }
        }
        if let Some(token) = &self.server.admin_token {
            if token.expose().len() < 16 {
                push("server.admin_token".into(), "must be at least 16 characters".into());
            }
        }
        if let Some(key) = &self.server.secrets_key {
            if let Err(message) = crate::secrets_at_rest::parse_key(key.expose()) {
                push("server.secrets_key".into(), message);
            }
        }
        for (index, key) in self.server.previous_secrets_keys.iter().enumerate() {
            if let Err(message) = crate::secrets_at_rest::parse_key(key.expose()) {
                push(format!("server.previous_secrets_keys[{index}]"), message);
            }
        }
        if self.kafka.topic_partitions < 1 {
            push("kafka.topic_partitions".into(), "must be at least 1".into());
        }
        for key in self.kafka.properties.keys() {
            if PROTECTED_KAFKA_PROPERTIES.contains(&key.as_str()) {
                push(
                    format!("kafka.properties.{key}"),
                    "is set by hookpipe (durability guarantees) and cannot be overridden".into(),
                );
            }
        }
        if self.kafka.retry_retention_hours == 0 || self.kafka.retry_retention_hours > 24 * 365 {
            push(
                "kafka.retry_retention_hours".into(),
                "must be between 1 and 8760".into(),
            );
        }
        self.validate_worker(&mut push);
        if self.pipeline.mailbox_capacity == 0 {
            push("pipeline.mailbox_capacity".into(), "must be at least 1".into());
        }
        if self.pipeline.max_page_bytes < 1024 {
            push("pipeline.max_page_bytes".into(), "must be at least 1024".into());
        }
        if self.pipeline.max_depth == 0 || self.pipeline.max_depth > 128 {
            push("pipeline.max_depth".into(), "must be between 1 and 128".into());
        }

        let mut seen_ids = std::collections::HashSet::new();
        let mut seen_public = std::collections::HashSet::new();
        for listener in &self.listeners {
            let prefix = format!("listeners[{}]", listener.id);
            if !seen_ids.insert(listener.id.clone()) {
                push(format!("{prefix}.id"), "is defined twice".into());
            }
            for (key, message) in listener.problems() {
                push(format!("{prefix}.{key}"), message);
            }
            match &listener.public_id {
                Some(public_id) if !seen_public.insert(public_id.clone()) => {
                    push(format!("{prefix}.public_id"), "is used by another listener".into());
                }
                Some(_) => {}
                None if self.server.public_id_secret.is_none() => push(
                    "server.public_id_secret".into(),
                    format!(
                        "is required to derive the public id of listener `{}` (or set its public_id)",
                        listener.id
                    ),
                ),
                None => {}
            }
        }
        if let Some(secret) = &self.server.public_id_secret {
            if secret.expose().len() < 16 {
                push(
                    "server.public_id_secret".into(),
                    "must be at least 16 characters".into(),
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    fn validate_worker(&self, push: &mut impl FnMut(String, String)) {
        let worker = &self.worker;
        if worker.group_id.trim().is_empty() {
            push("worker.group_id".into(), "must not be empty".into());
        }
        for (index, topic) in worker.topics.iter().enumerate() {
            if !topic.starts_with('^') {
                if let Err(message) = validate_topic_name(topic) {
                    push(format!("worker.topics[{index}]"), message);
                }
            }
        }
        if !worker.metrics_listen.is_empty() && worker.metrics_listen.parse::<std::net::SocketAddr>().is_err() {
            push(
                "worker.metrics_listen".into(),
                "must be empty (off) or host:port with an IP address, e.g. 127.0.0.1:9091".into(),
            );
        }
        if worker.commit_interval_ms == 0 {
            push("worker.commit_interval_ms".into(), "must be at least 1".into());
        }
        if !(1_000..=86_000_000).contains(&worker.page_timeout_ms) {
            push(
                "worker.page_timeout_ms".into(),
                "must be between 1000 and 86000000".into(),
            );
        }
        if !(1_000..=3_600_000).contains(&worker.session_timeout_ms) {
            push(
                "worker.session_timeout_ms".into(),
                "must be between 1000 and 3600000".into(),
            );
        }
        if let Some(target) = &worker.default_target {
            for (key, message) in target.problems() {
                push(format!("worker.default_target.{key}"), message);
            }
        }
        for (listener, target) in &worker.targets {
            for (key, message) in target.problems() {
                push(format!("worker.targets.{listener}.{key}"), message);
            }
        }
    }

    /// Topics the import workers consume: `worker.topics`, else every pages topic.
    pub fn worker_topics(&self) -> Vec<String> {
        if self.worker.topics.is_empty() {
            self.pages_topics()
        } else {
            self.worker.topics.clone()
        }
    }

    /// Topics of pages: the default one and every listener's own.
    pub fn pages_topics(&self) -> Vec<String> {
        let mut topics = vec![self.kafka.pages_topic.clone()];
        for listener in &self.listeners {
            if let Some(topic) = &listener.topic {
                if !topics.contains(topic) {
                    topics.push(topic.clone());
                }
            }
        }
        topics
    }

    /// The URL senders use, as configured or derived from the listen address.
    pub fn external_base_url(&self) -> String {
        self.server
            .external_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.listen))
    }
}

/// Properties that carry the delivery guarantee; users may not override them.
const PROTECTED_KAFKA_PROPERTIES: &[&str] = &[
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "bootstrap.servers",
    "message.timeout.ms",
    "delivery.timeout.ms",
];

impl ListenerConfig {
    /// Problems with this listener, as `(key relative to the listener, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
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
        for format in &self.content.accept {
            if !matches!(format.as_str(), "json" | "xml" | "form") {
                problems.push((
                    "content.accept".into(),
                    format!("unknown format `{format}`; use json, xml or form"),
                ));
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
        }
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
        if !matches!(self.response.status, 200 | 201 | 202 | 204) {
            problems.push(("response.status".into(), "must be 200, 201, 202 or 204".into()));
        }
        if self.response.status == 204 && self.response.body.is_some() {
            problems.push((
                "response.body".into(),
                "a 204 response has no body; choose status 200, 201 or 202".into(),
            ));
        }
        if response_content_type(&self.response.media_type).is_none() {
            problems.push((
                "response.media_type".into(),
                "must be json, xml, text or a type/subtype media type".into(),
            ));
        }
        if self.rate_limit.capacity == 0 {
            problems.push(("rate_limit.capacity".into(), "must be at least 1".into()));
        }
        if self.rate_limit.refill_per_sec == 0 {
            problems.push(("rate_limit.refill_per_sec".into(), "must be at least 1".into()));
        }
        for (key, message) in self.verification.validate() {
            problems.push((format!("verification.{key}"), message));
        }
        problems
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

fn validate_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty()
        || topic.len() > 249
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("must be 1-249 characters of letters, digits, '.', '_' or '-'".into());
    }
    Ok(())
}

fn toml_error_key(error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => format!("<file> at byte {}", span.start),
        None => "<file>".into(),
    }
}

/// Applies one environment variable if it is a `HOOKPIPE_A__B__C` override.
///
/// Segments are lower-cased; under `listeners` the next segment is a listener id (compared
/// case-insensitively, `_` matching `-`). Values are TOML literals when they parse as one
/// (numbers, booleans, arrays, quoted strings), plain strings otherwise.
fn apply_env_override(root: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigErrors> {
    let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
        return Ok(());
    };
    if !rest.contains(ENV_SEPARATOR) {
        // HOOKPIPE_CONFIG, HOOKPIPE_LOG and friends are not configuration keys.
        return Ok(());
    }
    let segments: Vec<String> = rest.split(ENV_SEPARATOR).map(|s| s.to_ascii_lowercase()).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(single(name, "empty key segment in environment override"));
    }
    let parsed = parse_env_value(value);
    if segments[0] == "listeners" {
        if segments.len() < 3 {
            return Err(single(name, "use HOOKPIPE_LISTENERS__<ID>__<KEY>"));
        }
        let wanted = segments[1].replace('-', "_");
        let listeners = root
            .get_mut("listeners")
            .and_then(|v| v.as_array_mut())
            .ok_or_else(|| single(name, "there are no listeners in the file to override"))?;
        let listener = listeners
            .iter_mut()
            .filter_map(|v| v.as_table_mut())
            .find(|t| {
                t.get("id")
                    .and_then(|id| id.as_str())
                    .is_some_and(|id| id.to_ascii_lowercase().replace('-', "_") == wanted)
            })
            .ok_or_else(|| single(name, format!("no listener with id `{}` in the file", segments[1])))?;
        return set_path(listener, &segments[2..], parsed, name);
    }
    set_path(root, &segments, parsed, name)
}

fn set_path(table: &mut toml::Table, segments: &[String], value: toml::Value, name: &str) -> Result<(), ConfigErrors> {
    let (last, parents) = segments.split_last().expect("at least one segment");
    let mut current = table;
    for segment in parents {
        current = current
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| single(name, format!("`{segment}` is not a table")))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    let document = format!("v = {raw}");
    match document.parse::<toml::Table>() {
        Ok(mut table) => table.remove("v").unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[server]
public_id_secret = "0123456789abcdef0123"
[[listeners]]
id = "orders"
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        assert_eq!(settings.listeners[0].page_size, 20);
        assert_eq!(settings.listeners[0].rate_limit.capacity, 1000);
        assert_eq!(settings.kafka.pages_topic, "hookpipe.pages");
    }

    #[test]
    fn env_overrides_nested_and_listener_keys() {
        let settings = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_KAFKA__BROKERS", "127.0.0.1:9092"),
                ("HOOKPIPE_LISTENERS__ORDERS__PAGE_SIZE", "5"),
                ("HOOKPIPE_CONFIG", "ignored.toml"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(settings.listeners[0].page_size, 5);
    }

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
    fn unknown_and_mistyped_keys_are_named() {
        let errors = Settings::from_toml_and_env("[kafka]\nbrokerz = \"x\"\n", env(&[]))
            .unwrap_err()
            .0;
        assert!(errors[0].message.contains("brokerz"), "{errors:?}");
        let errors = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_LISTENERS__ORDERS__PAGE_SIZE", "many")]))
            .unwrap_err()
            .0;
        assert_eq!(errors[0].key, "listeners[0].page_size");
    }

    #[test]
    fn message_timeout_must_fit_in_request_deadline() {
        let errors = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_KAFKA__MESSAGE_TIMEOUT_MS", "20000")]))
            .unwrap_err()
            .0;
        assert_eq!(errors[0].key, "kafka.message_timeout_ms");
    }

    #[test]
    fn public_id_secret_required_without_explicit_ids() {
        let errors = Settings::from_toml_and_env("[[listeners]]\nid = \"a\"\n", env(&[]))
            .unwrap_err()
            .0;
        assert_eq!(errors[0].key, "server.public_id_secret");
    }

    #[test]
    fn secrets_keys_must_be_32_bytes_of_base64() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let settings = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_SERVER__SECRETS_KEY", key),
                ("HOOKPIPE_SERVER__PREVIOUS_SECRETS_KEYS", &format!("[\"{key}\"]")),
            ]),
        )
        .unwrap();
        assert_eq!(settings.server.secrets_key.unwrap().expose(), key);
        assert_eq!(settings.server.previous_secrets_keys.len(), 1);
        let errors = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_SERVER__SECRETS_KEY", "too-short"),
                (
                    "HOOKPIPE_SERVER__PREVIOUS_SECRETS_KEYS",
                    &format!("[\"{key}\", \"c2hvcnQ=\"]"),
                ),
            ]),
        )
        .unwrap_err()
        .0;
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["server.secrets_key", "server.previous_secrets_keys[1]"]);
        assert!(!errors[0].message.contains("too-short"), "{}", errors[0].message);
    }

    #[test]
    fn worker_targets_parse_with_defaults() {
        let text = format!(
            "{BASE}\n[worker.default_target]\ntype = \"stdout\"\n\
             [worker.targets.orders]\ntype = \"http\"\nurl = \"http://crm.internal:8000/import\"\n\
             auth = {{ type = \"bearer\", token = \"t0ken\" }}\n"
        );
        let settings = Settings::from_toml_and_env(&text, env(&[("HOOKPIPE_WORKER__GROUP_ID", "imports")])).unwrap();
        assert_eq!(settings.worker.group_id, "imports");
        assert_eq!(settings.worker_topics(), vec!["hookpipe.pages".to_string()]);
        assert!(matches!(settings.worker.default_target, Some(TargetConfig::Stdout)));
        let TargetConfig::Http(http) = &settings.worker.targets["orders"] else {
            panic!("an http target");
        };
        assert_eq!(http.mode, ImportMode::Page);
        assert_eq!((http.timeout_ms, http.max_attempts), (10_000, 5));
        assert!(!format!("{http:?}").contains("t0ken"), "secrets stay out of Debug");
        assert_eq!(settings.kafka.errors_topic, "hookpipe.errors");
        assert_eq!(settings.kafka.retry_retention_hours, 168);
    }

    #[test]
    fn https_targets_take_an_optional_ca_file() {
        let target = |extra: &str| format!("{BASE}\n[worker.default_target]\ntype = \"http\"\n{extra}\n");
        let ok = Settings::from_toml_and_env(&target("url = \"https://crm.example.com/in\""), env(&[])).unwrap();
        assert!(matches!(ok.worker.default_target, Some(TargetConfig::Http(_))));
        let errors = |extra: &str| {
            Settings::from_toml_and_env(&target(extra), env(&[]))
                .unwrap_err()
                .0
                .into_iter()
                .map(|e| (e.key, e.message))
                .collect::<Vec<_>>()
        };
        let missing = errors("url = \"https://crm.example.com\"\nca_file = \"/nonexistent/ca.pem\"");
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].0, "worker.default_target.ca_file");
        assert!(missing[0].1.contains("cannot read /nonexistent/ca.pem"), "{missing:?}");
        let plain = errors("url = \"http://crm.example.com\"\nca_file = \"/etc/hostname\"");
        assert_eq!(plain[0].0, "worker.default_target.ca_file");
        assert!(plain[0].1.contains("https"), "{plain:?}");
        let no_host = errors("url = \"https://\"");
        assert_eq!(no_host[0].0, "worker.default_target.url");
    }

    #[test]
    fn worker_errors_name_the_key() {
        let text = format!(
            "{BASE}\n[worker]\nmetrics_listen = \"nowhere\"\ntopics = [\"bad topic\", \"^hookpipe\\\\..*\"]\n\
             [worker.default_target]\ntype = \"http\"\nurl = \"ftp://crm.example.com\"\nmax_attempts = 0\n\
             [worker.targets.orders]\ntype = \"http\"\nurl = \"http://h\"\nheaders = {{ Authorization = \"x\" }}\n"
        );
        let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for expected in [
            "worker.metrics_listen",
            "worker.topics[0]",
            "worker.default_target.url",
            "worker.default_target.max_attempts",
            "worker.targets.orders.headers.Authorization",
        ] {
            assert!(keys.contains(&expected), "{expected} in {keys:?}");
        }
        assert_eq!(keys.len(), 5, "{keys:?}");
        let errors =
            Settings::from_toml_and_env(&format!("{BASE}\n[worker.default_target]\ntype = \"ftp\"\n"), env(&[]))
                .unwrap_err()
                .0;
        assert!(errors[0].key.starts_with("worker.default_target"), "{errors:?}");
    }

    #[test]
    fn protected_kafka_properties_rejected() {
        let text = format!("{BASE}\n[kafka.properties]\nacks = \"1\"\n");
        // `[kafka.properties]` after `[[listeners]]` is still a top-level table in TOML.
        let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
        assert_eq!(errors[0].key, "kafka.properties.acks");
    }
}
