//! Reading pages back from a topic: `hookpipe tail`, and the tests' view of what landed.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::kafka::KafkaSettings;

/// One message as read from Kafka.
#[derive(Debug, Clone)]
pub struct ReadMessage {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its headers, as text.
    pub headers: Vec<(String, String)>,
    /// Its value.
    pub payload: Vec<u8>,
}

impl ReadMessage {
    /// The first header value with this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Where to start reading.
#[derive(Debug, Clone, Copy)]
pub enum StartAt {
    /// The oldest message still stored.
    Beginning,
    /// Only messages arriving from now on.
    End,
}

/// A group-less reader over every partition of one topic.
pub struct TopicReader {
    consumer: BaseConsumer,
}

impl TopicReader {
    /// Assigns every partition of `topic` (waiting up to `timeout` for its metadata).
    pub fn open(
        settings: &KafkaSettings,
        bootstrap: &str,
        topic: &str,
        from: StartAt,
        timeout: Duration,
    ) -> Result<TopicReader, String> {
        let consumer: BaseConsumer = super::base_client_config(settings, bootstrap)
            .set("group.id", "hookpipe-tail")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(|e| format!("cannot create consumer: {e}"))?;
        let deadline = Instant::now() + timeout;
        let partitions = loop {
            let partitions = super::partitions_of(&consumer, topic, Duration::from_secs(5))?;
            if !partitions.is_empty() {
                break partitions;
            }
            if Instant::now() >= deadline {
                return Err(format!("topic {topic} not found"));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            let offset = match from {
                StartAt::Beginning => Offset::Beginning,
                StartAt::End => Offset::End,
            };
            assignment
                .add_partition_offset(topic, partition, offset)
                .map_err(|e| format!("cannot assign {topic}/{partition}: {e}"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| format!("cannot assign {topic}: {e}"))?;
        Ok(TopicReader { consumer })
    }

    /// The next message, or `None` when nothing arrives within `timeout`.
    pub fn next(&self, timeout: Duration) -> Result<Option<ReadMessage>, String> {
        match self.consumer.poll(timeout) {
            None => Ok(None),
            Some(Err(error)) => Err(error.to_string()),
            Some(Ok(message)) => {
                let headers = message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    h.value
                                        .map(|v| String::from_utf8_lossy(v).into_owned())
                                        .unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Some(ReadMessage {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    headers,
                    payload: message.payload().unwrap_or_default().to_vec(),
                }))
            }
        }
    }

    /// Reads until `count` messages arrived or `timeout` passed, then waits `quiet` more for
    /// extra (unexpected) messages so callers can assert on exact counts.
    pub fn read(&self, count: usize, timeout: Duration, quiet: Duration) -> Result<Vec<ReadMessage>, String> {
        let mut messages = Vec::new();
        let deadline = Instant::now() + timeout;
        while messages.len() < count && Instant::now() < deadline {
            if let Some(message) = self.next(Duration::from_millis(100))? {
                messages.push(message);
            }
        }
        let quiet_deadline = Instant::now() + quiet;
        while Instant::now() < quiet_deadline {
            if let Some(message) = self.next(Duration::from_millis(50))? {
                messages.push(message);
            }
        }
        Ok(messages)
    }
}
