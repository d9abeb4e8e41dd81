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
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::Settings;
use crate::telemetry::events::ImportResultsPublished;
use crate::wire::results::{RecordResult, ResultsMessage};
use crate::worker::import::RecordOutcome;
use crate::worker::page::{self, IncomingPage};

/// How long a page's results may take to be acknowledged before the worker goes on without.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes import results to the results topic.
pub struct ResultsPublisher {
    settings: Settings,
    bootstrap: String,
    producer: OnceLock<Result<FutureProducer, String>>,
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

    fn producer(&self) -> Result<&FutureProducer, &str> {
        self.producer
            .get_or_init(|| {
                let kafka = &self.settings.kafka;
                // Not idempotent: a result written twice is read once (by record id), and a
                // result lost only turns an answer into the 202 of a timeout.
                crate::kafka::base_client_config(kafka, &self.bootstrap)
                    .set("client.id", "hookpipe-worker-results")
                    .set("acks", "all")
                    .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
                    .set("linger.ms", "0")
                    .create()
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
            producer.send(
                FutureRecord::to(topic).key(*key).payload(value.as_slice()),
                PUBLISH_TIMEOUT,
            )
        });
        let (failed, error) = match tokio::time::timeout(PUBLISH_TIMEOUT, join_all(sends)).await {
            Err(_elapsed) => (
                values.len(),
                Some(format!("not acknowledged within {PUBLISH_TIMEOUT:?}")),
            ),
            Ok(outcomes) => {
                let failed = outcomes.iter().filter(|outcome| outcome.is_err()).count();
                let error = outcomes
                    .into_iter()
                    .find_map(Result::err)
                    .map(|(error, _)| error.to_string());
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

/// One message per request with records in `page`, in the order of their first record; a
/// record without a request id (not hookpipe's own) has no one waiting for it. Pure.
pub fn results_of(page: &IncomingPage, outcomes: &[RecordOutcome]) -> Vec<ResultsMessage> {
    let mut messages: Vec<ResultsMessage> = Vec::new();
    for (record, outcome) in page.records.iter().zip(outcomes) {
        let Some(request_id) = page::text_field(record, "request_id").filter(|id| !id.is_empty()) else {
            continue;
        };
        let result = match outcome {
            RecordOutcome::Imported { answer, .. } => RecordResult {
                id: page::record_id(record).to_string(),
                imported: true,
                status: None,
                error: None,
                target: answer.as_deref().cloned(),
            },
            RecordOutcome::Failed { error, status, .. } => RecordResult {
                id: page::record_id(record).to_string(),
                imported: false,
                status: *status,
                error: Some(error.clone()),
                target: None,
            },
        };
        match messages.iter_mut().find(|message| message.request_id == request_id) {
            Some(message) => message.records.push(result),
            None => messages.push(ResultsMessage::new(
                &page.listener_id,
                request_id,
                &page.page_id,
                vec![result],
            )),
        }
    }
    messages
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
}
