//! The one producer wrapper: idempotent, acks=all, capped queue, delivery futures — and honest
//! about outages: a page is refused at once (`PublishError::Unavailable`, answered 503) while the
//! producer knows every broker is down, every delivery result feeds the readiness `/readyz`
//! reports, and the librdkafka handle underneath is replaced when it can no longer deliver
//! (`kafka::supervisor`).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

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

/// How long a caller waits for another thread's partitions request before it is refused.
const PARTITIONS_WAIT_FOR_OTHER: Duration = Duration::from_millis(250);

/// After a failed partitions request, how long requests for that topic are refused at once
/// before the brokers are asked again.
const PARTITIONS_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What is known of a topic's partitions.
#[derive(Debug, Clone)]
enum Partitions {
    /// Asked and answered: kept for the life of the process.
    Known(i32),
    /// Being asked right now, by some thread.
    Asking,
    /// The last request failed, at that instant, for that reason.
    Failed(std::time::Instant, String),
}

/// Shared, thread-safe producer; clones share one supervised librdkafka handle.
#[derive(Clone)]
pub struct PageProducer {
    supervised: Arc<Supervised>,
    /// Partitions of the topics asked about by [`PageProducer::partition_count`], kept.
    partitions: Arc<(Mutex<HashMap<String, Partitions>>, Condvar)>,
}

impl PageProducer {
    /// Creates the producer with hookpipe's durability settings, and its supervisor.
    pub fn new(settings: &KafkaSettings, bootstrap: &str) -> Result<PageProducer, KafkaError> {
        let mut config = super::durable_producer_config(settings, bootstrap);
        // Pages can be up to 5 MB of records plus envelope.
        config.set("message.max.bytes", (6 * 1024 * 1024).to_string());
        config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
        Ok(PageProducer {
            supervised: Supervised::start(config, Duration::from_millis(settings.message_timeout_ms))?,
            partitions: Arc::default(),
        })
    }

    /// How many partitions `topic` has: asked of the brokers the first time (blocking, at most
    /// a few seconds), then kept for the life of the process, so that a key maps to the same
    /// partition for as long as the process runs (ordering keys, README "Ordering").
    ///
    /// The caller is the page stage, on an HTTP thread, so at most one thread per topic waits
    /// for the brokers: while one asks, the others wait for its answer at most
    /// [`PARTITIONS_WAIT_FOR_OTHER`] and are then refused (503); after a failed request they
    /// are refused at once for [`PARTITIONS_RETRY_AFTER`] before anyone asks again. Brokers
    /// that hang without being known down so cost one blocked thread, not all of them.
    pub fn partition_count(&self, topic: &str) -> Result<i32, PublishError> {
        let (table, answered) = &*self.partitions;
        let mut partitions = table.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting_since = std::time::Instant::now();
        loop {
            match partitions.get(topic) {
                Some(Partitions::Known(count)) => return Ok(*count),
                Some(Partitions::Asking) => {
                    let left = PARTITIONS_WAIT_FOR_OTHER.saturating_sub(waiting_since.elapsed());
                    if left.is_zero() {
                        return Err(PublishError::Delivery(format!(
                            "the partitions of {topic} are being asked for"
                        )));
                    }
                    partitions = answered
                        .wait_timeout(partitions, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                Some(Partitions::Failed(at, problem)) if at.elapsed() < PARTITIONS_RETRY_AFTER => {
                    return Err(PublishError::Delivery(problem.clone()))
                }
                Some(Partitions::Failed(..)) | None => break,
            }
        }
        // Not while Kafka is known to be unavailable: the metadata request would block the
        // thread for `PARTITIONS_TIMEOUT`.
        if let Some(refusal) = self.supervised.availability().refusal() {
            return Err(PublishError::Unavailable(refusal));
        }
        partitions.insert(topic.to_string(), Partitions::Asking);
        drop(partitions);
        let answer = self.ask_partition_count(topic);
        let known = match &answer {
            Ok(count) => Partitions::Known(*count),
            Err(problem) => Partitions::Failed(std::time::Instant::now(), problem.clone()),
        };
        table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_string(), known);
        answered.notify_all();
        answer.map_err(PublishError::Delivery)
    }

    /// Asks the brokers how many partitions `topic` has (at most [`PARTITIONS_TIMEOUT`]).
    fn ask_partition_count(&self, topic: &str) -> Result<i32, String> {
        let current = self.supervised.current();
        let metadata = current
            .producer
            .client()
            .fetch_metadata(Some(topic), PARTITIONS_TIMEOUT)
            .map_err(|error| format!("cannot read the partitions of {topic}: {error}"))?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len() as i32);
        if count < 1 {
            return Err(format!("topic {topic} has no partitions (yet)"));
        }
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
        let (generation, sent) = self.supervised.send(record);
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

    /// Brokers that hang without being known down (here: a listener that accepts connections
    /// and never answers) block one thread per topic, once: the others are refused at once
    /// while it asks, and for a moment after it failed.
    #[test]
    fn one_thread_at_a_time_waits_for_a_topics_partitions() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = silent.local_addr().unwrap();
        let held = std::thread::spawn(move || {
            let connections: Vec<_> = silent.incoming().take(8).filter_map(Result::ok).collect();
            std::thread::sleep(Duration::from_secs(30));
            drop(connections);
        });
        drop(held);
        let producer = PageProducer::new(&KafkaSettings::default(), &address.to_string()).unwrap();
        let asking = {
            let producer = producer.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let answer = producer.partition_count("t");
                (answer, started.elapsed())
            })
        };
        // The first caller is asking (it holds the entry) ...
        let deadline = Instant::now() + Duration::from_secs(3);
        while !matches!(producer.partitions.0.lock().unwrap().get("t"), Some(Partitions::Asking)) {
            assert!(Instant::now() < deadline, "the first caller never started asking");
            std::thread::sleep(Duration::from_millis(5));
        }
        // ... so a second one is refused after a short wait instead of waiting as long.
        let started = Instant::now();
        let second = producer.partition_count("t");
        assert!(
            matches!(&second, Err(PublishError::Delivery(problem)) if problem.contains("being asked")),
            "{second:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1), "the second caller waited");
        let (first, waited) = asking.join().unwrap();
        assert!(first.is_err(), "a broker that never answers gave {first:?}");
        assert!(
            waited >= Duration::from_secs(1),
            "the first caller did wait ({waited:?})"
        );
        // Right after the failure, refused at once with its reason.
        let started = Instant::now();
        let third = producer.partition_count("t");
        assert!(
            third.is_err() && started.elapsed() < Duration::from_millis(500),
            "{third:?}"
        );
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
