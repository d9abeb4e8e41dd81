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
use crate::telemetry::events::{PageFailed, PagePublished, RetryDataStored};

/// Header carrying the listener id.
pub const HEADER_LISTENER_ID: &str = "hookpipe-listener-id";
/// Header carrying the page id.
pub const HEADER_PAGE_ID: &str = "hookpipe-page-id";
/// Header carrying a request id (one per request with records in the page).
pub const HEADER_REQUEST_ID: &str = "hookpipe-request-id";
/// Content type of a page message.
pub const PAGE_CONTENT_TYPE: &str = "application/json";
/// Header saying whether the page's records have retry data: `stored` or `none`.
pub const HEADER_RETRY_DATA: &str = "hookpipe-retry-data";
/// `HEADER_RETRY_DATA` value: every record of the page has retry data in the retry topic.
pub const RETRY_DATA_STORED: &str = "stored";
/// `HEADER_RETRY_DATA` value: the listener does not store retry data.
pub const RETRY_DATA_NONE: &str = "none";

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
            let mut headers: Vec<(&str, &str)> = Vec::with_capacity(4 + page.request_ids.len());
            headers.push((HEADER_LISTENER_ID, page.listener.id()));
            headers.push(("content-type", PAGE_CONTENT_TYPE));
            headers.push((HEADER_PAGE_ID, &page.page_id));
            headers.push((
                HEADER_RETRY_DATA,
                if store_retry_data {
                    RETRY_DATA_STORED
                } else {
                    RETRY_DATA_NONE
                },
            ));
            for request_id in &page.request_ids {
                headers.push((HEADER_REQUEST_ID, request_id));
            }
            let started = std::time::Instant::now();
            let page_delivery = producer.publish(OutgoingMessage {
                topic: &page.listener.topic,
                key: page.listener.id(),
                payload: &page.payload,
                headers: &headers,
            });
            let retry_headers = [
                (HEADER_LISTENER_ID, page.listener.id()),
                ("content-type", PAGE_CONTENT_TYPE),
                (HEADER_PAGE_ID, page.page_id.as_str()),
            ];
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
            let listener = page.listener.id();
            if store_retry_data && retry_result.is_ok() {
                RetryDataStored {
                    listener,
                    records: page.record_count,
                }
                .emit();
            }
            let result = page_result.and(retry_result);
            let produce_latency = started.elapsed();
            let producer_queue_depth = producer.queue_depth();
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
        })
    }
}
