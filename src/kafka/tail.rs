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
    topic: String,
    partitions: Vec<i32>,
}

/// The offsets of one partition: where its log starts and where it ends now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// The partition.
    pub partition: i32,
    /// The offset of its oldest stored message.
    pub low: i64,
    /// The offset its next message will get (its high watermark): everything before it is
    /// readable.
    pub high: i64,
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
        // Where to go should a fetch be answered "offset out of range": the start the reader was
        // opened at, not librdkafka's default (the end), which would skip what it has not read.
        let reset = match from {
            StartAt::Beginning => "earliest",
            StartAt::End => "latest",
        };
        let consumer: BaseConsumer = super::base_client_config(settings, bootstrap)
            .set("group.id", "hookpipe-tail")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", reset)
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
        for &partition in &partitions {
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
        Ok(TopicReader {
            consumer,
            topic: topic.to_string(),
            partitions,
        })
    }

    /// The watermarks of every partition read, as the last fetch answers reported them (no
    /// request of its own: a `ListOffsets` of its own timed out again and again on Tansu right
    /// after a fault case's load, while fetches were answered); `Err` until every partition
    /// was answered once. A low watermark not reported yet is given as 0 (where a log that
    /// lost nothing to retention starts).
    pub fn watermarks(&self) -> Result<Vec<Watermarks>, String> {
        self.partitions
            .iter()
            .map(|&partition| {
                let topic = std::ffi::CString::new(self.topic.as_str()).map_err(|e| e.to_string())?;
                let (mut low, mut high) = (-1i64, -1i64);
                // SAFETY: the handle is alive (held by `self.consumer`), `topic` outlives the
                // call, and librdkafka only writes the two offsets (its cached values: no I/O).
                let code = unsafe {
                    rdkafka::bindings::rd_kafka_get_watermark_offsets(
                        self.consumer.client().native_ptr(),
                        topic.as_ptr(),
                        partition,
                        &mut low,
                        &mut high,
                    )
                };
                if code != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    return Err(format!("no offsets of {}/{partition} yet: {code:?}", self.topic));
                }
                if high < 0 {
                    return Err(format!("no fetch of {}/{partition} answered yet", self.topic));
                }
                Ok(Watermarks {
                    partition,
                    low: low.max(0),
                    high,
                })
            })
            .collect()
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
