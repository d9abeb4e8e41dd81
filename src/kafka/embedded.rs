//! The embedded default: librdkafka's in-process mock cluster. Nothing is durable.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// An in-memory Kafka cluster living as long as this value (not `Send`: keep it on the main thread).
pub struct EmbeddedCluster {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedCluster {
    /// Starts a one-broker mock cluster.
    pub fn start() -> Result<EmbeddedCluster, rdkafka::error::KafkaError> {
        Ok(EmbeddedCluster {
            cluster: MockCluster::new(1)?,
        })
    }

    /// Its bootstrap address, for hookpipe's own clients and for `hookpipe tail`.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates a topic (the mock cluster's own call; its admin API support is partial).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), rdkafka::error::KafkaError> {
        self.cluster.create_topic(topic, partitions, 1)
    }

    /// Fault injection for tests: takes broker `id` (1-based) down.
    pub fn broker_down(&self, id: i32) -> Result<(), rdkafka::error::KafkaError> {
        self.cluster.broker_down(id)
    }

    /// Fault injection for tests: the next Produce requests fail with `errors`, one each, in
    /// order (`RD_KAFKA_RESP_ERR__TRANSPORT` disconnects instead).
    pub fn fail_next_produce_requests(&self, errors: &[rdkafka::types::RDKafkaRespErr]) {
        self.cluster
            .request_errors(rdkafka::types::RDKafkaApiKey::Produce, errors);
    }

    /// Fault injection for tests: broker `id` answers every request `rtt` late.
    pub fn slow_down(&self, id: i32, rtt: std::time::Duration) -> Result<(), rdkafka::error::KafkaError> {
        self.cluster.broker_round_trip_time(id, rtt)
    }

    /// Fault injection for tests: brings broker `id` back.
    pub fn broker_up(&self, id: i32) -> Result<(), rdkafka::error::KafkaError> {
        self.cluster.broker_up(id)
    }
}
