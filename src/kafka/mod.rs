//! Kafka: the client configuration every client starts from, the one durable producer
//! configuration, the one page producer wrapper (with what it knows of Kafka's availability, the
//! supervisor of its handle and the handle's delivery thread), the embedded cluster, the topics
//! hookpipe owns and reading pages back.

pub mod availability;
pub mod embedded;
pub mod handle;
pub mod producer;
pub mod state;
pub mod supervisor;
pub mod tail;
pub mod topics;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::config::kafka::KafkaSettings;

/// Longest wait between two connection attempts to a broker that went away
/// (`reconnect.backoff.max.ms`; librdkafka's default, 10 s, would keep hookpipe away from a broker
/// that is back for up to that long). `kafka.properties` may change it.
const RECONNECT_BACKOFF_MAX_MS: &str = "1000";

/// Client properties shared by every client hookpipe creates (producer, admin, consumer).
pub fn base_client_config(settings: &KafkaSettings, bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config.set("client.id", "hookpipe");
    config.set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS);
    for (key, value) in &settings.properties {
        config.set(key, value);
    }
    config
}

/// The configuration of every producer hookpipe creates (pages, state, debug log, errors):
/// idempotent, acks from every in-sync replica, a bounded local queue and `message.timeout.ms`
/// shorter than the HTTP deadline. Set after `kafka.properties`, so those cannot weaken it.
pub fn durable_producer_config(settings: &KafkaSettings, bootstrap: &str) -> ClientConfig {
    let mut config = base_client_config(settings, bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", settings.compression.as_str())
        .set("message.timeout.ms", settings.message_timeout_ms.to_string())
        .set("queue.buffering.max.messages", settings.queue_max_messages.to_string())
        .set("queue.buffering.max.kbytes", settings.queue_max_kbytes.to_string())
        .set("linger.ms", settings.linger_ms.to_string());
    config
}

/// librdkafka's own log lines (broker connections, the idempotent producer's state, group
/// membership) through `tracing`, under the `librdkafka` target.
pub fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

/// The partition ids of `topic` as the cluster reports them now (empty while it is unknown).
pub fn partitions_of<C: rdkafka::consumer::Consumer>(
    consumer: &C,
    topic: &str,
    timeout: std::time::Duration,
) -> Result<Vec<i32>, String> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("cannot read the metadata of {topic}: {e}"))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}

/// The partition ids of `topic`, sorted, once the cluster shows it with every partition led;
/// otherwise what is missing (a freshly created topic takes a moment to get there).
pub fn led_partitions(metadata: &Metadata, topic: &str) -> Result<Vec<i32>, String> {
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err("not in metadata".to_string());
    };
    if let Some(error) = found.error() {
        return Err(format!("{:?}", RDKafkaErrorCode::from(error)));
    }
    if found.partitions().is_empty() {
        return Err("no partitions yet".to_string());
    }
    if found.partitions().iter().any(|p| p.leader() < 0) {
        return Err("partitions without leader".to_string());
    }
    let mut ids: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(ids)
}
