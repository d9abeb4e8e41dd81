//! RetryStoreActor: the last stage — publishes each page, as one message, to its listener's
//! topic (or a quarantine page to the quarantine topic) and answers with Kafka's delivery report.
//!
//! The page is the durable copy of its records: workers import from it, and a record that
//! fails gets its retry data stored with its error by the worker (README, "Retry data"), so
//! nothing but the page is written at ingest. Its `hookpipe-retry-data` header tells the worker
//! whether the listener keeps retry data for failed records (`stored`) or not (`none`,
//! `do_not_store_retry_data`).

use std::sync::Arc;

use actix::prelude::*;

use crate::kafka::producer::{OutgoingMessage, PageProducer, PublishError};
use crate::pipeline::listener::Listener;
use crate::pipeline::Admitted;
use crate::telemetry::events::{PageFailed, PagePublished, QuarantinePublished};
use crate::wire;

/// A serialized page for one listener.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), PublishError>")]
pub struct PublishPage {
    /// Its listener.
    pub listener: Arc<Listener>,
    /// Its id.
    pub page_id: String,
    /// The page message.
    pub payload: Vec<u8>,
    /// Requests with records in it.
    pub request_ids: Vec<Arc<str>>,
    /// Records in it.
    pub record_count: usize,
    /// A page of records, or of quarantined records.
    pub destination: Destination,
    /// The partition of a page of a listener with an ordering key (all its records' keys map
    /// to it); `None`: the partitioner's, by the listener id.
    pub partition: Option<i32>,
}

/// Where a page goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The listener's pages topic, for the import workers.
    Pages,
    /// The quarantine topic: records that failed the listener's schema.
    Quarantine,
    /// The listener's topic, as one CloudEvent (`wire::cloudevents`) with these headers: the
    /// "page" is one record, its id the event's.
    Event(Vec<(String, String)>),
}

/// The retry-store stage: makes pages durable in Kafka.
pub struct RetryStoreActor {
    producer: PageProducer,
}

impl RetryStoreActor {
    /// A stage publishing through `producer`.
    pub fn new(producer: PageProducer) -> RetryStoreActor {
        RetryStoreActor { producer }
    }
}

impl Actor for RetryStoreActor {
    type Context = Context<Self>;
}

impl Handler<Admitted<PublishPage>> for RetryStoreActor {
    type Result = ResponseFuture<Result<(), PublishError>>;

    fn handle(&mut self, admitted: Admitted<PublishPage>, _ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(store_page(self.producer.clone(), admitted.into_message()))
    }
}

/// Publishes one page through `producer` and reports it (the stage's work, also called by the
/// drain's flush of the open pages, `page::OpenPages::flush`, once the HTTP threads are idle).
pub async fn store_page(producer: PageProducer, page: PublishPage) -> Result<(), PublishError> {
    let request_ids = page.request_ids.iter().map(|request_id| &**request_id);
    let (topic, mut headers) = match &page.destination {
        Destination::Pages => (
            &page.listener.topic,
            wire::page_headers(
                &wire::PageHeaders {
                    listener_id: page.listener.id(),
                    page_id: &page.page_id,
                    retry_data_stored: !page.listener.config.do_not_store_retry_data,
                    republished: false,
                },
                request_ids,
            ),
        ),
        Destination::Quarantine => (
            &page.listener.quarantine_topic,
            wire::quarantine_headers(page.listener.id(), &page.page_id, request_ids),
        ),
        Destination::Event(headers) => (
            &page.listener.topic,
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect(),
        ),
    };
    if page.destination != Destination::Quarantine && page.listener.config.response.waits_for_import() {
        // The worker writes import results for these records only (`wire::results`).
        headers.push((wire::results::HEADER_WAIT, wire::results::WAIT_IMPORT));
    }
    let started = std::time::Instant::now();
    let message = OutgoingMessage {
        topic,
        key: page.listener.id(),
        payload: &page.payload,
        headers: &headers,
    };
    let result = producer.publish_to_partition(message, page.partition).await;
    let listener = page.listener.id();
    let produce_latency = started.elapsed();
    let producer_queue_depth = producer.queue_depth();
    if page.destination == Destination::Quarantine {
        QuarantinePublished {
            listener,
            page_id: &page.page_id,
            records: page.record_count,
            error: result.as_ref().err().map(|error| error as &dyn std::fmt::Display),
            produce_latency,
            producer_queue_depth,
        }
        .emit();
        return result;
    }
    match &result {
        Ok(()) => PagePublished {
            listener,
            page_id: &page.page_id,
            records: page.record_count,
            produce_latency,
            producer_queue_depth,
        }
        .emit(),
        Err(error) => PageFailed {
            listener,
            page_id: &page.page_id,
            error,
            produce_latency,
            producer_queue_depth,
        }
        .emit(),
    }
    result
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::message::{Headers, Message as _};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    use super::*;
    use crate::config::Settings;
    use crate::kafka::embedded::EmbeddedCluster;
    use crate::pipeline::stage::Stage;
    use crate::pipeline::testing;
    use crate::telemetry::METRICS;
    use crate::wire::{
        HEADER_LISTENER_ID, HEADER_PAGE_ID, HEADER_REQUEST_ID, HEADER_RETRY_DATA, PAGE_CONTENT_TYPE, RETRY_DATA_NONE,
        RETRY_DATA_STORED,
    };

    /// librdkafka's in-process mock cluster with the listener's topic and the (legacy) retry
    /// topic, and a retry-store stage producing to it.
    fn start(listener_toml: &str) -> (EmbeddedCluster, Settings, Arc<Listener>, Stage<PublishPage>) {
        // Generous: the suite runs many tests at once on two cores, and the mock cluster's first
        // produce (the idempotent producer's id) can take a while then.
        start_with_timeout(listener_toml, 8000)
    }

    /// `start` with the producer's `message.timeout.ms` (short for the broker-down case).
    fn start_with_timeout(
        listener_toml: &str,
        message_timeout_ms: u64,
    ) -> (EmbeddedCluster, Settings, Arc<Listener>, Stage<PublishPage>) {
        let cluster = EmbeddedCluster::start().unwrap();
        let settings = testing::settings(&format!(
            "[kafka]\nmessage_timeout_ms = {message_timeout_ms}\n[[listeners]]\nid = \"t\"\n{listener_toml}"
        ));
        let listener = testing::listener_of(&settings);
        cluster.create_topic(&listener.topic, 1).unwrap();
        cluster.create_topic(&settings.kafka.retry_topic, 1).unwrap();
        let producer = PageProducer::new(&settings.kafka, &cluster.bootstrap_servers()).unwrap();
        let actor = RetryStoreActor::new(producer);
        let stage = Stage::start("retry_store", 4, actor);
        (cluster, settings, listener, stage)
    }

    fn page(listener: &Arc<Listener>) -> PublishPage {
        PublishPage {
            listener: listener.clone(),
            page_id: "p1".into(),
            payload: br#"{"type":"page"}"#.to_vec(),
            request_ids: vec![Arc::from("r1"), Arc::from("r2")],
            record_count: 3,
            destination: Destination::Pages,
            partition: None,
        }
    }

    /// A message read back: key, payload and headers.
    type Read = (String, Vec<u8>, Vec<(String, String)>);

    /// Every message of partition 0 of `topic` up to its end. Called once the stage answered,
    /// so everything it produced is there.
    fn read_all(cluster: &EmbeddedCluster, topic: &str) -> Vec<Read> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("group.id", "retry-store-test")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
        consumer.assign(&assignment).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut messages = Vec::new();
        while Instant::now() < deadline {
            let message = match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => message,
                Some(Err(KafkaError::PartitionEOF(_))) => return messages,
                _ => continue,
            };
            let text = |bytes: Option<&[u8]>| String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned();
            let headers = message
                .headers()
                .map(|headers| headers.iter().map(|h| (h.key.to_string(), text(h.value))).collect())
                .unwrap_or_default();
            messages.push((
                text(message.key()),
                message.payload().unwrap_or_default().to_vec(),
                headers,
            ));
        }
        panic!("no end of {topic} within 10 s");
    }

    fn published(listener: &str) -> (u64, u64, u64) {
        (
            METRICS.pages_published.with_label_values(&[listener]).get(),
            METRICS.records_published.with_label_values(&[listener]).get(),
            METRICS.pages_failed.with_label_values(&[listener]).get(),
        )
    }

    #[actix::test]
    async fn a_page_is_one_message_acknowledged_then_answered() {
        let (cluster, settings, listener, stage) = start("");
        let before = published("t");
        stage.forward(page(&listener)).await.unwrap().unwrap();
        let after = published("t");
        // Tests share the process-wide metrics: they grew, by at least this page.
        assert!(after.0 > before.0 && after.1 >= before.1 + 3);

        let messages = read_all(&cluster, &listener.topic);
        assert_eq!(messages.len(), 1, "one message per page");
        let (key, payload, headers) = &messages[0];
        assert_eq!(key, "t", "pages are keyed by listener");
        assert_eq!(payload, br#"{"type":"page"}"#);
        let header = |name: &str| -> Vec<&str> {
            headers
                .iter()
                .filter(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .collect()
        };
        assert_eq!(header(HEADER_LISTENER_ID), ["t"]);
        assert_eq!(header(HEADER_PAGE_ID), ["p1"]);
        assert_eq!(header(HEADER_RETRY_DATA), [RETRY_DATA_STORED]);
        assert_eq!(header(HEADER_REQUEST_ID), ["r1", "r2"]);
        assert_eq!(header("content-type"), [PAGE_CONTENT_TYPE]);
        assert!(
            read_all(&cluster, &settings.kafka.retry_topic).is_empty(),
            "nothing is written to the retry topic at ingest"
        );
    }

    #[actix::test]
    async fn a_quarantine_page_goes_to_the_quarantine_topic_only() {
        let (cluster, settings, listener, stage) = start("");
        cluster.create_topic(&settings.kafka.quarantine_topic, 1).unwrap();
        assert_eq!(listener.quarantine_topic, "hookpipe.quarantine");
        let quarantine = PublishPage {
            destination: Destination::Quarantine,
            ..page(&listener)
        };
        stage.forward(quarantine).await.unwrap().unwrap();
        let messages = read_all(&cluster, &listener.quarantine_topic);
        assert_eq!(messages.len(), 1);
        let (key, payload, headers) = &messages[0];
        assert_eq!(
            (key.as_str(), payload.as_slice()),
            ("t", br#"{"type":"page"}"#.as_slice())
        );
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                HEADER_LISTENER_ID,
                "content-type",
                HEADER_PAGE_ID,
                HEADER_REQUEST_ID,
                HEADER_REQUEST_ID
            ],
            "no retry-data header: nothing imports quarantined records"
        );
        assert!(
            read_all(&cluster, &listener.topic).is_empty(),
            "nothing on the pages topic"
        );
    }

    #[actix::test]
    async fn without_retry_data_the_page_says_so() {
        let (cluster, _settings, listener, stage) = start("do_not_store_retry_data = true");
        stage.forward(page(&listener)).await.unwrap().unwrap();
        let messages = read_all(&cluster, &listener.topic);
        assert!(messages[0]
            .2
            .contains(&(HEADER_RETRY_DATA.to_string(), RETRY_DATA_NONE.to_string())));
    }

    #[actix::test]
    async fn only_pages_of_listeners_that_wait_for_their_import_are_marked() {
        use crate::wire::results::{HEADER_WAIT, WAIT_IMPORT};
        let (cluster, _settings, listener, stage) = start("[listeners.response]\nwait = \"import\"");
        stage.forward(page(&listener)).await.unwrap().unwrap();
        let messages = read_all(&cluster, &listener.topic);
        assert!(messages[0]
            .2
            .contains(&(HEADER_WAIT.to_string(), WAIT_IMPORT.to_string())));
        let (cluster, _settings, listener, stage) = start("");
        stage.forward(page(&listener)).await.unwrap().unwrap();
        let messages = read_all(&cluster, &listener.topic);
        assert!(
            messages[0].2.iter().all(|(name, _)| name != HEADER_WAIT),
            "{:?}",
            messages[0].2
        );
    }

    #[actix::test]
    async fn a_page_kafka_does_not_acknowledge_is_answered_as_failed() {
        let (cluster, _settings, listener, stage) = start_with_timeout("", 1000);
        cluster.broker_down(1).unwrap();
        let failed_before = published("t").2;
        let result = stage.forward(page(&listener)).await.unwrap();
        // Not acknowledged, whichever way it is found out: refused at once once the producer
        // knows every broker is down (fail fast), or purged from a producer replaced for the
        // outage, or timed out before either.
        assert!(
            matches!(
                result,
                Err(PublishError::Unavailable(_) | PublishError::Delivery(_) | PublishError::Closed)
            ),
            "{result:?}"
        );
        assert!(published("t").2 > failed_before);
    }
}
