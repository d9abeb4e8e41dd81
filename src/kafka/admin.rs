//! Creating pages topics by name: superseded by `kafka::topics` (`provision`, `provision_topic`,
//! `provision_worker`), kept until `http::start` and the worker call those.

use crate::config::kafka::KafkaSettings;

/// Creates each pages topic that does not exist yet; existing topics are left as they are.
pub async fn ensure_topics(settings: &KafkaSettings, bootstrap: &str, topics: &[String]) -> Result<(), String> {
    let specs: Vec<super::topics::TopicSpec> = topics
        .iter()
        .map(|name| super::topics::TopicSpec::pages(name))
        .collect();
    super::topics::create_missing(settings, bootstrap, &specs).await
}
