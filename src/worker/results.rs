//! Import results of the listeners that wait for their imports (`response.wait = "import"`,
//! pages marked `hookpipe-wait: import`): once such a page is settled — every record imported or
//! recorded as an import error — one message per request of the page goes to
//! `kafka.results_topic` (`wire::results`), where the serve instance holding the request reads it.
//!
//! Best effort by design: a result that Kafka does not take is logged and counted, not retried,
//! and the page is committed all the same (its records are imported, their errors recorded);
//! the request waiting for it is answered 202 at its timeout, which promises only durability.
//! The producer is made on the first page that needs it: a worker whose listeners do not wait
//! has none.

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::future::join_all;
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureRecord;

use crate::config::Settings;
use crate::kafka::handle::ProducerHandle;
use crate::telemetry::events::ImportResultsPublished;
use crate::wire::results::{record_index, RecordResult, ResultsMessage, MAX_DETAILED, MAX_MESSAGE_BYTES};
use crate::worker::import::RecordOutcome;
use crate::worker::page::{self, IncomingPage};

/// How long a page's results may take to be acknowledged before the worker goes on without.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes import results to the results topic.
pub struct ResultsPublisher {
    settings: Settings,
    bootstrap: String,
    producer: OnceLock<Result<ProducerHandle<DefaultClientContext>, String>>,
}

impl ResultsPublisher {
    /// A publisher to `kafka.results_topic` of `settings`; nothing is connected yet.
    pub fn new(settings: &Settings, bootstrap: &str) -> ResultsPublisher {
        ResultsPublisher {
            settings: settings.clone(),
            bootstrap: bootstrap.to_string(),
            producer: OnceLock::new(),
        }
    }

    fn producer(&self) -> Result<&ProducerHandle<DefaultClientContext>, &str> {
        self.producer
            .get_or_init(|| {
                let kafka = &self.settings.kafka;
                // Not idempotent: a result written twice is read once (by record id), and a
                // result lost only turns an answer into the 202 of a timeout.
                // Its reports are served by `ProducerHandle`'s thread, which sleeps until
                // librdkafka has one (rust-rdkafka's `FutureProducer` thread busy-waits).
                let mut config = crate::kafka::base_client_config(kafka, &self.bootstrap);
                config
                    .set("client.id", "hookpipe-worker-results")
                    .set("acks", "all")
                    .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
                    .set("linger.ms", "0");
                ProducerHandle::create(&config, DefaultClientContext)
                    .map_err(|error| format!("cannot create the results producer: {error}"))
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// Publishes the results of `page`'s records and waits (up to [`PUBLISH_TIMEOUT`]) for Kafka
    /// to acknowledge them.
    pub async fn publish(&self, page: &IncomingPage, outcomes: &[RecordOutcome]) {
        let messages = results_of(page, outcomes);
        let listener = page.listener_id.as_str();
        let producer = match self.producer() {
            Ok(producer) => producer,
            Err(error) => {
                return ImportResultsPublished {
                    listener,
                    published: 0,
                    failed: messages.len(),
                    error: Some(error),
                }
                .emit()
            }
        };
        let topic = &self.settings.kafka.results_topic;
        let values: Vec<(&str, Vec<u8>)> = messages
            .iter()
            .map(|message| (message.request_id.as_str(), message.to_bytes()))
            .collect();
        let sends = values.iter().map(|(key, value)| {
            let sent = producer.send_result(FutureRecord::to(topic).key(*key).payload(value.as_slice()));
            async move {
                match sent {
                    // Not taken (its queue full, say): failed, as a result not acknowledged.
                    Err((error, _record)) => Err(error.to_string()),
                    Ok(delivery) => match delivery.await {
                        Ok(Ok(_delivered)) => Ok(()),
                        Ok(Err((error, _message))) => Err(error.to_string()),
                        Err(_dropped) => Err("the results producer went away".to_string()),
                    },
                }
            }
        });
        let (failed, error) = match tokio::time::timeout(PUBLISH_TIMEOUT, join_all(sends)).await {
            Err(_elapsed) => (
                values.len(),
                Some(format!("not acknowledged within {PUBLISH_TIMEOUT:?}")),
            ),
            Ok(outcomes) => {
                let failed = outcomes.iter().filter(|outcome| outcome.is_err()).count();
                let error = outcomes.into_iter().find_map(Result::err);
                (failed, error)
            }
        };
        ImportResultsPublished {
            listener,
            published: values.len() - failed,
            failed,
            error: error.as_deref(),
        }
        .emit();
    }
}

/// One message per request with records in `page` (more when its results exceed
/// [`MAX_MESSAGE_BYTES`]), in the order of their first record; a record without a request id
/// (not hookpipe's own) has no one waiting for it. The target's answer is written only for the
/// first [`MAX_DETAILED`] records of a request, the only ones kept by the instance waiting. Pure.
pub fn results_of(page: &IncomingPage, outcomes: &[RecordOutcome]) -> Vec<ResultsMessage> {
    // Each message with the size of its records so far.
    let mut messages: Vec<(ResultsMessage, usize)> = Vec::new();
    for (record, outcome) in page.records.iter().zip(outcomes) {
        let Some(request_id) = page::text_field(record, "request_id").filter(|id| !id.is_empty()) else {
            continue;
        };
        let id = page::record_id(record);
        let result = match outcome {
            RecordOutcome::Imported { answer, .. } => RecordResult {
                id: id.to_string(),
                imported: true,
                status: None,
                error: None,
                // A page's answer is the same for each of its records: kept once per request
                // at most MAX_DETAILED times, not 10 000 times over in one message.
                target: answer
                    .as_deref()
                    .filter(|_| record_index(request_id, id).is_some_and(|index| index < MAX_DETAILED))
                    .cloned(),
            },
            RecordOutcome::Failed { error, status, .. } => RecordResult {
                id: page::record_id(record).to_string(),
                imported: false,
                status: *status,
                error: Some(error.clone()),
                target: None,
            },
        };
        let size = serde_json::to_vec(&result).map_or(0, |bytes| bytes.len() + 1);
        let open = messages
            .iter_mut()
            .rev()
            .find(|(message, _)| message.request_id == request_id)
            .filter(|(_, written)| written + size <= MAX_MESSAGE_BYTES);
        match open {
            Some((message, written)) => {
                message.records.push(result);
                *written += size;
            }
            None => messages.push((
                ResultsMessage::new(&page.listener_id, request_id, &page.page_id, vec![result]),
                size,
            )),
        }
    }
    messages.into_iter().map(|(message, _)| message).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn one_message_per_request_with_each_record_s_result() {
        let page = IncomingPage {
            wait_for_import: true,
            listener_id: "orders".into(),
            page_id: "p1".into(),
            created_at: None,
            records: vec![
                json!({"id": "a-0", "request_id": "a", "data": 1}),
                json!({"id": "b-0", "request_id": "b", "data": 2}),
                json!({"id": "a-1", "request_id": "a", "data": 3}),
                json!({"id": "x", "data": 4}),
            ],
        };
        let outcomes = [
            RecordOutcome::Imported {
                tries: 1,
                answer: Some(Arc::new(json!({"id": 9}))),
            },
            RecordOutcome::Failed {
                error: "HTTP 422: bad".into(),
                status: Some(422),
                tries: 1,
            },
            RecordOutcome::Imported { tries: 2, answer: None },
            RecordOutcome::Imported { tries: 1, answer: None },
        ];
        let messages = results_of(&page, &outcomes);
        let written: Vec<serde_json::Value> = messages
            .iter()
            .map(|message| serde_json::from_slice(&message.to_bytes()).unwrap())
            .collect();
        assert_eq!(
            written,
            [
                json!({"type": "import_results", "version": 1, "listener_id": "orders", "request_id": "a",
                       "page_id": "p1", "records": [{"id": "a-0", "imported": true, "target": {"id": 9}},
                                                    {"id": "a-1", "imported": true}]}),
                json!({"type": "import_results", "version": 1, "listener_id": "orders", "request_id": "b",
                       "page_id": "p1", "records": [{"id": "b-0", "imported": false, "status": 422,
                                                     "error": "HTTP 422: bad"}]}),
            ],
            "a record without a request id has no result"
        );
    }

    /// A page of 1000 records of one request, imported with a 2 KiB answer (or failed with
    /// 500-character errors), fits Kafka's default message size limit of 1 MB.
    #[test]
    fn a_big_page_s_results_are_split_and_answers_kept_only_where_read() {
        let records = 1000;
        let page = IncomingPage {
            wait_for_import: true,
            listener_id: "orders".into(),
            page_id: "p1".into(),
            created_at: None,
            records: (0..records)
                .map(|index| json!({"id": format!("a-{index}"), "request_id": "a", "data": index}))
                .collect(),
        };
        let answer = Arc::new(json!({"echo": "x".repeat(2000)}));
        let imported = vec![
            RecordOutcome::Imported {
                tries: 1,
                answer: Some(answer.clone()),
            };
            records
        ];
        let failed = vec![
            RecordOutcome::Failed {
                error: "e".repeat(500),
                status: Some(400),
                tries: 1,
            };
            10_000
        ];
        let mut big_page = page.clone();
        big_page.records = (0..10_000)
            .map(|index| json!({"id": format!("a-{index}"), "request_id": "a", "data": index}))
            .collect();
        for (page, outcomes) in [(&page, &imported), (&big_page, &failed)] {
            let messages = results_of(page, outcomes);
            let ids: Vec<String> = messages
                .iter()
                .flat_map(|message| message.records.iter().map(|result| result.id.clone()))
                .collect();
            let expected: Vec<String> = (0..outcomes.len()).map(|index| format!("a-{index}")).collect();
            assert_eq!(ids, expected, "every record once, in order");
            for message in &messages {
                assert_eq!(message.request_id, "a");
                let size = message.to_bytes().len();
                assert!(size <= MAX_MESSAGE_BYTES + 1024, "{size} bytes in one message");
            }
        }
        let messages = results_of(&page, &imported);
        let with_answer: Vec<&str> = messages
            .iter()
            .flat_map(|message| message.records.iter())
            .filter(|result| result.target.is_some())
            .map(|result| result.id.as_str())
            .collect();
        let first: Vec<String> = (0..MAX_DETAILED).map(|index| format!("a-{index}")).collect();
        assert_eq!(
            with_answer, first,
            "the answer only where the waiting instance reads it"
        );
    }
}
