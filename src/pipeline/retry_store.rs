//! RetryStoreActor: publishes each page to its listener's topic and answers with Kafka's
//! delivery report. (Keeping per-record retry data comes with the import workers, issue 5.)

use std::sync::Arc;

use actix::prelude::*;

use crate::kafka::producer::{OutgoingMessage, PageProducer, PublishError};
use crate::listener::Listener;
use crate::pipeline::Admitted;
use crate::telemetry::METRICS;

/// Header carrying the listener id.
pub const HEADER_LISTENER_ID: &str = "hookpipe-listener-id";
/// Header carrying the page id.
pub const HEADER_PAGE_ID: &str = "hookpipe-page-id";
/// Header carrying a request id (one per request with records in the page).
pub const HEADER_REQUEST_ID: &str = "hookpipe-request-id";
/// Content type of a page message.
pub const PAGE_CONTENT_TYPE: &str = "application/json";

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
}

/// Last stage of the chain.
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
        let Admitted { message: page, permit } = admitted;
        drop(permit);
        let producer = self.producer.clone();
        Box::pin(async move {
            let mut headers: Vec<(&str, &str)> = Vec::with_capacity(3 + page.request_ids.len());
            headers.push((HEADER_LISTENER_ID, page.listener.id()));
            headers.push(("content-type", PAGE_CONTENT_TYPE));
            headers.push((HEADER_PAGE_ID, &page.page_id));
            for request_id in &page.request_ids {
                headers.push((HEADER_REQUEST_ID, request_id));
            }
            let started = std::time::Instant::now();
            let result = producer
                .publish(OutgoingMessage {
                    topic: &page.listener.topic,
                    key: page.listener.id(),
                    payload: &page.payload,
                    headers: &headers,
                })
                .await;
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
