//! Creating the topics hookpipe needs: brokers here do not auto-create them.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::kafka::KafkaSettings;

/// Creates each topic that does not exist yet; existing topics are left as they are.
pub async fn ensure_topics(settings: &KafkaSettings, bootstrap: &str, topics: &[String]) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = super::base_client_config(settings, bootstrap)
        .create()
        .map_err(|e| format!("cannot create Kafka admin client: {e}"))?;
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|topic| {
            NewTopic::new(
                topic,
                settings.topic_partitions,
                TopicReplication::Fixed(settings.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .map_err(|e| format!("cannot create topics: {e}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("cannot create topic {topic}: {code}")),
        }
    }
    Ok(())
}
