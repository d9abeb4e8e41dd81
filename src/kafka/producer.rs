//! The one producer wrapper: idempotent, acks=all, capped queue, delivery futures — and honest
//! about outages: a page is refused at once (`PublishError::Unavailable`, answered 503) while the
//! producer knows every broker is down, every delivery result feeds the readiness `/readyz`
//! reports, and the librdkafka handle underneath is replaced when it can no longer deliver
//! (`kafka::supervisor`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureRecord, Producer};

use super::availability::{Availability, FailureKind, Readiness};
use super::supervisor::Supervised;
use crate::config::kafka::KafkaSettings;

/// How often librdkafka reports its statistics (the idempotent producer's state among them).
pub const STATISTICS_INTERVAL_MS: u32 = 1_000;

/// Why a page was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The local queue is at its cap: backpressure, answered with 503.
    #[error("producer queue full")]
    QueueFull,
    /// Not even tried: the producer knows Kafka cannot take it now (every broker down, or the
    /// producer failed and is being replaced). Answered with 503 at once.
    #[error("Kafka unavailable: {}", .0.as_str())]
    Unavailable(Readiness),
    /// Kafka did not acknowledge within `message.timeout.ms`, or refused the page.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// The producer went away before answering (shutdown, or a replaced producer).
    #[error("producer closed")]
    Closed,
}

/// A page ready to go: topic, key, payload and headers.
#[derive(Debug)]
pub struct OutgoingMessage<'a> {
    /// Destination topic.
    pub topic: &'a str,
    /// Partitioning key (the listener id).
    pub key: &'a str,
    /// Serialized page.
    pub payload: &'a [u8],
    /// Header pairs; values must not carry secrets.
    pub headers: &'a [(&'a str, &'a str)],
}

/// How long asking the brokers for a topic's partitions may take (once per topic).
const PARTITIONS_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared, thread-safe producer; clones share one supervised librdkafka handle.
#[derive(Clone)]
pub struct PageProducer {
    supervised: Arc<Supervised>,
    /// Partitions of the topics asked about by [`PageProducer::partition_count`], kept.
    partitions: Arc<Mutex<HashMap<String, i32>>>,
}

impl PageProducer {
    /// Creates the producer with hookpipe's durability settings, and its supervisor.
    pub fn new(settings: &KafkaSettings, bootstrap: &str) -> Result<PageProducer, KafkaError> {
        let mut config = super::durable_producer_config(settings, bootstrap);
        // Pages can be up to 5 MB of records plus envelope.
        config.set("message.max.bytes", (6 * 1024 * 1024).to_string());
        config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
        Ok(PageProducer {
            supervised: Supervised::start(config)?,
            partitions: Arc::default(),
        })
    }

    /// How many partitions `topic` has: asked of the brokers the first time (blocking, at most
    /// a few seconds), then kept for the life of the process, so that a key maps to the same
    /// partition for as long as the process runs (ordering keys, README "Ordering").
    pub fn partition_count(&self, topic: &str) -> Result<i32, PublishError> {
        if let Some(count) = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
        {
            return Ok(*count);
        }
        // Not while Kafka is known to be unavailable: the caller is the page stage, on an HTTP
        // thread, which the metadata request would block for `PARTITIONS_TIMEOUT` per request.
        if let Some(refusal) = self.supervised.availability().refusal() {
            return Err(PublishError::Unavailable(refusal));
        }
        let current = self.supervised.current();
        let metadata = current
            .producer
            .client()
            .fetch_metadata(Some(topic), PARTITIONS_TIMEOUT)
            .map_err(|error| PublishError::Delivery(format!("cannot read the partitions of {topic}: {error}")))?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len() as i32);
        if count < 1 {
            return Err(PublishError::Delivery(format!("topic {topic} has no partitions (yet)")));
        }
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_string(), count);
        Ok(count)
    }

    /// Enqueues a message and waits for its delivery report; refuses it at once while Kafka is
    /// known to be unavailable.
    pub async fn publish(&self, message: OutgoingMessage<'_>) -> Result<(), PublishError> {
        self.publish_to_partition(message, None).await
    }

    /// [`PageProducer::publish`] to a chosen partition (`None`: the partitioner picks by key).
    pub async fn publish_to_partition(
        &self,
        message: OutgoingMessage<'_>,
        partition: Option<i32>,
    ) -> Result<(), PublishError> {
        let availability = self.supervised.availability();
        if let Some(refusal) = availability.refusal() {
            return Err(PublishError::Unavailable(refusal));
        }
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (key, value) in message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(*value),
            });
        }
        let mut record = FutureRecord::to(message.topic)
            .key(message.key)
            .payload(message.payload)
            .headers(headers);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        let current = self.supervised.current();
        let generation = current.generation;
        let sent = current.producer.send_result(record);
        // Not held across the wait: a replaced handle is destroyed by the supervisor.
        drop(current);
        let delivery = match sent {
            Ok(delivery) => delivery,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                return Err(PublishError::QueueFull)
            }
            Err((error, _)) => {
                self.failed(generation, &error);
                return Err(PublishError::Delivery(error.to_string()));
            }
        };
        match delivery.await {
            Ok(Ok(_)) => {
                self.supervised.delivered(generation);
                Ok(())
            }
            Ok(Err((error, _))) => {
                self.failed(generation, &error);
                Err(PublishError::Delivery(error.to_string()))
            }
            Err(_canceled) => {
                availability.failed(generation, FailureKind::Unreachable);
                Err(PublishError::Closed)
            }
        }
    }

    fn failed(&self, generation: u64, error: &KafkaError) {
        self.supervised.failed(generation, error);
    }

    /// Whether pages are being acknowledged now (what `/readyz` reports).
    pub fn readiness(&self) -> Readiness {
        self.supervised.availability().readiness()
    }

    /// What the producer knows about Kafka.
    pub fn availability(&self) -> &Availability {
        self.supervised.availability()
    }

    /// How many times the librdkafka handle was replaced by a fresh one.
    pub fn replacements(&self) -> u64 {
        self.supervised.current().generation
    }

    /// Messages waiting in the local queue or in flight.
    pub fn queue_depth(&self) -> i32 {
        self.supervised.current().producer.in_flight_count()
    }

    /// Waits until every queued message is delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.supervised.current().producer.flush(timeout)
    }

    /// Raises a fatal error in the current librdkafka handle (librdkafka's own test hook).
    #[doc(hidden)]
    pub fn raise_fatal_error_for_tests(&self) {
        self.supervised.raise_fatal_error_for_tests();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::kafka::embedded::EmbeddedCluster;

    fn message<'a>(topic: &'a str) -> OutgoingMessage<'a> {
        OutgoingMessage {
            topic,
            key: "k",
            payload: b"page",
            headers: &[],
        }
    }

    /// While the brokers are known to be down, a topic's partitions are not asked for (the
    /// page stage's HTTP thread would wait `PARTITIONS_TIMEOUT` on every request of an ordered
    /// listener): refused at once, as a publish is.
    #[test]
    fn partitions_are_not_asked_for_while_kafka_is_known_down() {
        let producer = PageProducer::new(&KafkaSettings::default(), "127.0.0.1:1").unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = None;
        while Instant::now() < deadline {
            if producer.availability().refusal().is_some() {
                match producer.partition_count("t") {
                    Err(PublishError::Unavailable(_)) => return,
                    other => last = Some(format!("{other:?}")),
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("never refused as unavailable (last: {last:?})");
    }

    /// A fatal error (what librdkafka raises when a broker refuses the idempotent producer's
    /// sequence) leaves a handle that can never produce again: the supervisor replaces it, and
    /// pages are acknowledged again without restarting anything.
    #[actix::test]
    async fn a_producer_with_a_fatal_error_is_replaced_and_delivers_again() {
        let cluster = EmbeddedCluster::start().unwrap();
        cluster.create_topic("t", 1).unwrap();
        let settings = KafkaSettings {
            message_timeout_ms: 8000,
            ..KafkaSettings::default()
        };
        let producer = PageProducer::new(&settings, &cluster.bootstrap_servers()).unwrap();
        producer.publish(message("t")).await.unwrap();
        assert_eq!(producer.replacements(), 0);

        producer.raise_fatal_error_for_tests();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut refused = 0;
        loop {
            assert!(
                Instant::now() < deadline,
                "no delivery after the fatal error ({refused} refused)"
            );
            match producer.publish(message("t")).await {
                Ok(()) if producer.replacements() > 0 => break,
                Ok(()) => {}
                Err(_) => refused += 1,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(producer.replacements(), 1, "one fresh handle");
        assert!(producer.readiness().is_ready());
    }
}
