//! Republishing failed records for another attempt: grouped by the page stage's `Pager`, written
//! and headed by `crate::wire`, so a republished page is built as any other page.

use std::collections::BTreeSet;

use super::entry::{ErrorEntry, RetryData};
use crate::kafka::producer::{OutgoingMessage, PageProducer, PublishError};
use crate::pipeline::page::pager::{ClosedPage, Pager};
use crate::pipeline::{new_id, rfc3339_millis, unix_millis_now};
use crate::wire;

/// A record to republish: its error and its retry data.
#[derive(Debug)]
pub struct Republish {
    /// The open error.
    pub error: ErrorEntry,
    /// Its retry data.
    pub data: RetryData,
}

/// Republishes records of one listener to `topic` as pages of at most `page_size` records and
/// `max_page_bytes` bytes, each record with `attempt` = the error's attempt + 1 and its id kept.
pub async fn republish(
    producer: &PageProducer,
    listener_id: &str,
    topic: &str,
    page_size: usize,
    max_page_bytes: usize,
    records: &[Republish],
) -> Result<(), PublishError> {
    // Each record is added on its own, so each page's waiters are the request ids of its records.
    let mut pager: Pager<Option<String>> = Pager::default();
    let mut pages: Vec<ClosedPage<Option<String>>> = Vec::new();
    for item in records {
        let mut record = item.data.record.clone();
        if let Some(object) = record.as_object_mut() {
            object.insert("attempt".into(), (item.error.attempt + 1).into());
        }
        let serialized = serde_json::to_vec(&record).map_err(|e| PublishError::Delivery(e.to_string()))?;
        let request_id = item.error.request_id.clone();
        // A record that no longer fits a page on its own (`attempt` made it longer, or the limit
        // went down since) goes alone in a page, as the pager requires every record to fit.
        if serialized.len() + 1 > max_page_bytes {
            pages.extend(pager.take(listener_id));
            pages.push(ClosedPage {
                listener_id: listener_id.to_string(),
                records: vec![serialized],
                waiters: vec![request_id],
            });
            continue;
        }
        let (closed, _opened) = pager.add(listener_id, vec![serialized], page_size.max(1), max_page_bytes, || {
            request_id.clone()
        });
        pages.extend(closed);
    }
    pages.extend(pager.take(listener_id));
    let mut messages = Vec::with_capacity(pages.len());
    for page in &pages {
        let page_id = new_id();
        let payload = wire::serialize_page(listener_id, &page_id, &rfc3339_millis(unix_millis_now()), &page.records);
        let request_ids: BTreeSet<&str> = page.waiters.iter().flatten().map(String::as_str).collect();
        messages.push((page_id, payload, request_ids));
    }
    let mut deliveries = Vec::with_capacity(messages.len());
    for (page_id, payload, request_ids) in &messages {
        let headers = wire::page_headers(
            &wire::PageHeaders {
                listener_id,
                page_id,
                retry_data_stored: true,
                republished: true,
            },
            request_ids.iter().copied(),
        );
        deliveries.push(async move {
            producer
                .publish(OutgoingMessage {
                    topic,
                    key: listener_id,
                    payload,
                    headers: &headers,
                })
                .await
        });
    }
    futures_util::future::join_all(deliveries).await.into_iter().collect()
}
