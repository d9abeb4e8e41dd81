//! Kafka: the one producer wrapper, the embedded cluster, topic creation and reading pages back.

pub mod admin;
pub mod embedded;
pub mod producer;
pub mod state;
pub mod tail;

use rdkafka::ClientConfig;

use crate::config::kafka::KafkaSettings;

/// Client properties shared by every client hookpipe creates (producer, admin, consumer).
pub fn base_client_config(settings: &KafkaSettings, bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config.set("client.id", "hookpipe");
    for (key, value) in &settings.properties {
        config.set(key, value);
    }
    config
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
