//! The one producer wrapper: idempotent, acks=all, capped queue, delivery futures.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::config::kafka::KafkaSettings;

/// Why a page was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The local queue is at its cap: backpressure, answered with 503.
    #[error("producer queue full")]
    QueueFull,
    /// Kafka did not acknowledge within `message.timeout.ms`, or refused the page.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// The producer went away before answering (shutdown).
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

/// Shared, thread-safe producer; clones share one librdkafka handle.
#[derive(Clone)]
pub struct PageProducer {
    inner: FutureProducer,
}

impl PageProducer {
    /// Creates the producer with hookpipe's durability settings.
    pub fn new(settings: &KafkaSettings, bootstrap: &str) -> Result<PageProducer, KafkaError> {
        let mut config = super::durable_producer_config(settings, bootstrap);
        // Pages can be up to 5 MB of records plus envelope.
        config.set("message.max.bytes", (6 * 1024 * 1024).to_string());
        Ok(PageProducer {
            inner: config.create()?,
        })
    }

    /// Enqueues a message and waits for its delivery report.
    pub async fn publish(&self, message: OutgoingMessage<'_>) -> Result<(), PublishError> {
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (key, value) in message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(*value),
            });
        }
        let record = FutureRecord::to(message.topic)
            .key(message.key)
            .payload(message.payload)
            .headers(headers);
        let delivery = match self.inner.send_result(record) {
            Ok(delivery) => delivery,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                return Err(PublishError::QueueFull)
            }
            Err((error, _)) => return Err(PublishError::Delivery(error.to_string())),
        };
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((error, _))) => Err(PublishError::Delivery(error.to_string())),
            Err(_canceled) => Err(PublishError::Closed),
        }
    }

    /// Whether a broker answers a metadata request within `timeout` (blocks).
    pub fn reachable(&self, timeout: Duration) -> bool {
        self.inner.client().fetch_metadata(None, timeout).is_ok()
    }

    /// Messages waiting in the local queue or in flight.
    pub fn queue_depth(&self) -> i32 {
        self.inner.in_flight_count()
    }

    /// Waits until every queued message is delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.flush(timeout)
    }
}
