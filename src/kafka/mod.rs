//! Kafka: the one producer wrapper, the embedded cluster, topic creation and reading pages back.

pub mod admin;
pub mod embedded;
pub mod producer;
pub mod state;
pub mod tail;

use rdkafka::ClientConfig;

use crate::config::KafkaSettings;

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
