//! RetryStoreActor: publishes each page to its listener's topic and, unless the listener says
//! "do not store retry data", the page's retry data to the retry topic (one message per page,
//! key = page id: its records exactly as published, plus their topic); answers with Kafka's
//! delivery reports.
//!
//! The page and its retry data are produced concurrently and the request is answered once all
//! are acknowledged: retry data is part of what a 2xx promises is durable (a failed record must
//! be retryable), and producing both at once keeps the sender's latency at one round trip.

use std::sync::Arc;

use actix::prelude::*;
use futures_util::future::join;

use crate::kafka::producer::{OutgoingMessage, PageProducer, PublishError};
use crate::pipeline::listener::Listener;
use crate::pipeline::Admitted;
use crate::telemetry::METRICS;
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
    /// The retry data message of the page; `None` when the listener stores no retry data.
    pub retry_data: Option<Vec<u8>>,
    /// Requests with records in it.
    pub request_ids: Vec<Arc<str>>,
    /// Records in it.
    pub record_count: usize,
}

/// Last stage of the chain.
pub struct RetryStoreActor {
    producer: PageProducer,
    retry_topic: Arc<str>,
}

impl RetryStoreActor {
    /// A stage publishing through `producer`, retry data to `retry_topic`.
    pub fn new(producer: PageProducer, retry_topic: String) -> RetryStoreActor {
        RetryStoreActor {
            producer,
            retry_topic: retry_topic.into(),
        }
    }
}

impl Actor for RetryStoreActor {
    type Context = Context<Self>;
}

impl Handler<Admitted<PublishPage>> for RetryStoreActor {
    type Result = ResponseFuture<Result<(), PublishError>>;

    fn handle(&mut self, admitted: Admitted<PublishPage>, _ctx: &mut Context<Self>) -> Self::Result {
        let Admitted { message: page, permit } = admitted;
        drop(permit);
        let producer = self.producer.clone();
        let retry_topic = self.retry_topic.clone();
        Box::pin(async move {
            let store_retry_data = page.retry_data.is_some();
            let headers = wire::page_headers(
                &wire::PageHeaders {
                    listener_id: page.listener.id(),
                    page_id: &page.page_id,
                    retry_data_stored: store_retry_data,
                    republished: false,
                },
                page.request_ids.iter().map(|request_id| &**request_id),
            );
            let started = std::time::Instant::now();
            let page_delivery = producer.publish(OutgoingMessage {
                topic: &page.listener.topic,
                key: page.listener.id(),
                payload: &page.payload,
                headers: &headers,
            });
            let retry_headers = wire::retry_data_headers(page.listener.id(), &page.page_id);
            let retry_delivery = async {
                match &page.retry_data {
                    Some(payload) => {
                        producer
                            .publish(OutgoingMessage {
                                topic: &retry_topic,
                                key: &page.page_id,
                                payload,
                                headers: &retry_headers,
                            })
                            .await
                    }
                    None => Ok(()),
                }
            };
            let (page_result, retry_result) = join(page_delivery, retry_delivery).await;
            if store_retry_data && retry_result.is_ok() {
                METRICS
                    .retry_data_stored
                    .with_label_values(&[page.listener.id()])
                    .inc_by(page.record_count as u64);
            }
            let result = page_result.and(retry_result);
            METRICS.produce_latency.observe(started.elapsed().as_secs_f64());
            METRICS.producer_queue_depth.set(i64::from(producer.queue_depth()));
            let listener_id = page.listener.id();
            match &result {
                Ok(()) => {
                    METRICS.pages_published.with_label_values(&[listener_id]).inc();
                    METRICS
                        .records_published
                        .with_label_values(&[listener_id])
                        .inc_by(page.record_count as u64);
                    METRICS
                        .page_records
                        .with_label_values(&[listener_id])
                        .observe(page.record_count as f64);
                }
                Err(_) => METRICS.pages_failed.with_label_values(&[listener_id]).inc(),
            }
            match &result {
                Ok(()) => {
                    tracing::debug!(listener = page.listener.id(), page_id = %page.page_id, records = page.record_count, "page published")
                }
                Err(error) => {
                    tracing::warn!(listener = page.listener.id(), page_id = %page.page_id, %error, "page not acknowledged")
                }
            }
            result
        })
    }
}
