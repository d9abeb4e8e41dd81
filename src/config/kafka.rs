//! `[kafka]`: the brokers, the producer's limits and the topics hookpipe writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::cloudevents::OutputFormat;
use super::from_text::deserialize_from_text;

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
    pub compression: Compression,
    /// Compacted topic holding listener definitions, sample data, mock output and debug windows.
    #[serde(default = "default_state_topic")]
    pub state_topic: String,
    /// Topic of debug captures (kept 24 hours).
    #[serde(default = "default_debug_topic")]
    pub debug_topic: String,
    /// Compacted topic of failed records (open import errors, each with its record's retry data),
    /// keyed by listener and record id.
    #[serde(default = "default_errors_topic")]
    pub errors_topic: String,
    /// Topic of records that failed their listener's schema under the `quarantine` policy, each
    /// with its validation errors (README, "Schema validation").
    #[serde(default = "default_quarantine_topic")]
    pub quarantine_topic: String,
    /// Topic of the delivery ids the fleet accepted for listeners with `dedup` (kept 7 days).
    #[serde(default = "default_dedup_topic")]
    pub dedup_topic: String,
    /// Topic of the serve instances' heartbeats: who is live and what each one's share of every
    /// rate-limit bucket is divided by (`server.fleet_rate_limit`; kept a minute).
    #[serde(default = "default_fleet_topic")]
    pub fleet_topic: String,
    /// Topic of import results: what the import worker did with each record of listeners with
    /// `response.wait = "import"`, read from its end by every serve instance to answer the
    /// requests it holds (kept 10 minutes).
    #[serde(default = "default_results_topic")]
    pub results_topic: String,
    /// Retry topic of earlier versions, which wrote every page's retry data there at ingest: no
    /// longer written nor created, only read (while it exists) for the errors they recorded.
    #[serde(default = "default_retry_topic")]
    pub retry_topic: String,
    /// How long the retry topic of earlier versions keeps retry data (its `retention.ms` when they
    /// created it): named when an error recorded by them has outlived its retry data.
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
    /// What the pages topics' messages are for listeners without their own `output_format`:
    /// `page` (the default), `cloudevents_binary` or `cloudevents_structured`.
    #[serde(default)]
    pub output_format: OutputFormat,
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
            quarantine_topic: default_quarantine_topic(),
            dedup_topic: default_dedup_topic(),
            fleet_topic: default_fleet_topic(),
            results_topic: default_results_topic(),
            retry_topic: default_retry_topic(),
            retry_retention_hours: default_retry_retention_hours(),
            create_topics: true,
            topic_partitions: default_topic_partitions(),
            replication_factor: default_replication_factor(),
            properties: BTreeMap::new(),
            output_format: OutputFormat::Page,
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
fn default_compression() -> Compression {
    Compression::Lz4
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
fn default_quarantine_topic() -> String {
    "hookpipe.quarantine".into()
}
fn default_dedup_topic() -> String {
    "hookpipe.dedup".into()
}
fn default_fleet_topic() -> String {
    "hookpipe.fleet".into()
}
fn default_results_topic() -> String {
    "hookpipe.results".into()
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

/// The producer's `compression.type`: the codecs librdkafka is built with here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (zlib).
    Gzip,
    /// LZ4: cheap on CPU, the default.
    Lz4,
    /// Snappy.
    Snappy,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Every codec, in the order the error message lists them.
    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Snappy,
        Compression::Zstd,
    ];

    /// The value of librdkafka's `compression.type`, also the name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses `kafka.compression`.
    pub fn parse(name: &str) -> Result<Compression, String> {
        Compression::ALL
            .into_iter()
            .find(|codec| codec.as_str() == name)
            .ok_or_else(|| "must be one of none, gzip, lz4, snappy, zstd".to_string())
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_text(deserializer, Compression::parse)
    }
}

/// Properties that carry the delivery guarantee; users may not override them.
pub const PROTECTED_KAFKA_PROPERTIES: &[&str] = &[
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "bootstrap.servers",
    "message.timeout.ms",
    "delivery.timeout.ms",
];

impl KafkaSettings {
    /// Problems with these settings, as `(key relative to [kafka], message)`; the message
    /// timeout must fit in `server.request_timeout_ms`.
    pub fn problems(&self, request_timeout_ms: u64) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut push = |key: &str, message: String| problems.push((key.to_string(), message));
        if self.message_timeout_ms == 0 || self.message_timeout_ms >= request_timeout_ms {
            push(
                "message_timeout_ms",
                format!(
                    "must be above 0 and below server.request_timeout_ms ({request_timeout_ms}), so a failed delivery is answered before the deadline"
                ),
            );
        }
        for (key, topic) in [
            ("pages_topic", &self.pages_topic),
            ("state_topic", &self.state_topic),
            ("debug_topic", &self.debug_topic),
            ("errors_topic", &self.errors_topic),
            ("quarantine_topic", &self.quarantine_topic),
            ("dedup_topic", &self.dedup_topic),
            ("fleet_topic", &self.fleet_topic),
            ("results_topic", &self.results_topic),
            ("retry_topic", &self.retry_topic),
        ] {
            if let Err(message) = validate_topic_name(topic) {
                push(key, message);
            }
        }
        if self.topic_partitions < 1 {
            push("topic_partitions", "must be at least 1".into());
        }
        for key in self.properties.keys() {
            if PROTECTED_KAFKA_PROPERTIES.contains(&key.as_str()) {
                push(
                    &format!("properties.{key}"),
                    "is set by hookpipe (durability guarantees) and cannot be overridden".into(),
                );
            }
        }
        if self.retry_retention_hours == 0 || self.retry_retention_hours > 24 * 365 {
            push("retry_retention_hours", "must be between 1 and 8760".into());
        }
        problems
    }
}

/// Checks a topic name as Kafka does: 1-249 characters of letters, digits, `.`, `_` or `-`.
pub fn validate_topic_name(topic: &str) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::Compression;
    use crate::config::test_support::{env, BASE};
    use crate::config::Settings;

    #[test]
    fn message_timeout_must_fit_in_request_deadline() {
        let errors = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_KAFKA__MESSAGE_TIMEOUT_MS", "20000")]))
            .unwrap_err()
            .0;
        assert_eq!(errors[0].key, "kafka.message_timeout_ms");
    }

    #[test]
    fn protected_kafka_properties_rejected() {
        let text = format!("{BASE}\n[kafka.properties]\nacks = \"1\"\n");
        // `[kafka.properties]` after `[[listeners]]` is still a top-level table in TOML.
        let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
        assert_eq!(errors[0].key, "kafka.properties.acks");
    }

    #[test]
    fn compression_is_one_of_the_built_codecs() {
        assert_eq!(Settings::default().kafka.compression, Compression::Lz4);
        for name in ["none", "gzip", "lz4", "snappy", "zstd"] {
            let settings = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_KAFKA__COMPRESSION", name)])).unwrap();
            assert_eq!(settings.kafka.compression.as_str(), name);
            assert_eq!(serde_json::to_value(settings.kafka.compression).unwrap(), name);
        }
        let text = format!("{BASE}\n[kafka]\ncompression = \"brotli\"\ntopic_partitions = 0\n");
        let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
        let found: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "kafka.compression: must be one of none, gzip, lz4, snappy, zstd",
                "kafka.topic_partitions: must be at least 1",
            ]
        );
        let errors = Settings::from_toml_and_env("[kafka]\ncompression = 1\n", env(&[]))
            .unwrap_err()
            .0;
        assert_eq!(
            errors[0].key, "kafka.compression",
            "a value of the wrong type names the key"
        );
    }
}
