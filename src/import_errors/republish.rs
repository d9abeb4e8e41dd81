//! Republishing failed records for another attempt: grouped by the page stage's `Pager`, written
//! and headed by `crate::wire`, so a republished page is built as any other page — or, for a
//! listener publishing CloudEvents, one event per record (`wire::cloudevents`), as at ingest.

use std::collections::BTreeSet;

use super::entry::{ErrorEntry, RetryData};
use crate::kafka::producer::{OutgoingMessage, PageProducer, PublishError};
use crate::pipeline::listener::EventOutput;

use crate::pipeline::page::pager::{ClosedPage, PageGroup, Pager};
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
    let pages =
        pages_of(listener_id, page_size, max_page_bytes, records).map_err(|e| PublishError::Delivery(e.to_string()))?;
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

/// Republishes records of a listener publishing CloudEvents to `topic`, one event per record with
/// `hookpipeattempt` = the error's attempt + 1, its id, type and source kept (a record failed
/// while its listener published pages gets the listener's source and the default type).
pub async fn republish_events(
    producer: &PageProducer,
    listener_id: &str,
    topic: &str,
    output: &EventOutput,
    max_message_bytes: usize,
    records: &[Republish],
) -> Result<(), PublishError> {
    let mut events = Vec::with_capacity(records.len());
    for item in records {
        let record = &item.data.record;
        let data_json = record.get("data").unwrap_or(&serde_json::Value::Null).to_string();
        let fields = wire::cloudevents::fields_of_record(
            record,
            listener_id,
            &output.source,
            &data_json,
            item.error.attempt + 1,
        )
        .ok_or_else(|| PublishError::Delivery(format!("record {} has no id", item.error.record_id)))?;
        let event = wire::cloudevents::encode(output.mode, &fields);
        if event.message_bytes() > max_message_bytes {
            return Err(PublishError::Delivery(format!(
                "record {} is over pipeline.max_page_bytes as an event",
                item.error.record_id
            )));
        }
        events.push(event);
    }
    let deliveries = events.iter().map(|event| async move {
        let headers: Vec<(&str, &str)> = event
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        producer
            .publish(OutgoingMessage {
                topic,
                key: listener_id,
                payload: &event.payload,
                headers: &headers,
            })
            .await
    });
    futures_util::future::join_all(deliveries).await.into_iter().collect()
}

/// The records with `attempt` = the error's attempt + 1, serialized and grouped into pages by the
/// `Pager`; each page's waiters are the request ids of its records.
fn pages_of(
    listener_id: &str,
    page_size: usize,
    max_page_bytes: usize,
    records: &[Republish],
) -> Result<Vec<ClosedPage<Option<String>>>, serde_json::Error> {
    let mut pager: Pager<Option<String>> = Pager::default();
    let mut pages: Vec<ClosedPage<Option<String>>> = Vec::new();
    let group = PageGroup::listener(listener_id.to_string());
    for item in records {
        let mut record = item.data.record.clone();
        if let Some(object) = record.as_object_mut() {
            object.insert("attempt".into(), (item.error.attempt + 1).into());
        }
        let serialized = serde_json::to_vec(&record)?;
        let request_id = item.error.request_id.clone();
        // A record that no longer fits a page on its own (`attempt` made it longer, or the limit
        // went down since) goes alone in a page, as the pager requires every record to fit.
        if serialized.len() + 1 > max_page_bytes {
            pages.extend(pager.take(&group));
            pages.push(ClosedPage {
                group: group.clone(),
                records: vec![serialized],
                waiters: vec![request_id],
            });
            continue;
        }
        // Added one by one, so the pager asks for one waiter (this request id) per record.
        let (closed, _opened) = pager.add(&group, vec![serialized], page_size.max(1), max_page_bytes, || {
            request_id.clone()
        });
        pages.extend(closed);
    }
    pages.extend(pager.take(&group));
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(record_id: &str, request_id: Option<&str>, attempt: u32, data: serde_json::Value) -> Republish {
        Republish {
            error: ErrorEntry {
                listener_id: "l".into(),
                record_id: record_id.into(),
                request_id: request_id.map(str::to_string),
                trace_key: "t".into(),
                data_uri: None,
                error: "e".into(),
                target_status: None,
                attempt,
                tries: 1,
                failed_at: rfc3339_millis(5),
                failed_at_ms: 5,
                received_at: None,
                page_id: "p".into(),
                topic: "pages".into(),
                retry_data_stored: true,
                retry_data: None,
                retry_data_missing: None,
                retry_requested_at: None,
            },
            data: RetryData {
                listener_id: "l".into(),
                topic: "pages".into(),
                page_id: "p".into(),
                record: json!({"id": record_id, "request_id": request_id, "data": data}),
            },
        }
    }

    fn shown(pages: &[ClosedPage<Option<String>>]) -> Vec<(Vec<serde_json::Value>, Vec<Option<String>>)> {
        pages
            .iter()
            .map(|page| {
                let records = page
                    .records
                    .iter()
                    .map(|r| serde_json::from_slice(r).unwrap())
                    .collect();
                (records, page.waiters.clone())
            })
            .collect()
    }

    #[test]
    fn records_get_their_next_attempt_and_fill_pages_up_to_page_size() {
        let records: Vec<Republish> = (0..5)
            .map(|index| {
                item(
                    &format!("r-{index}"),
                    Some(["a", "b"][index % 2]),
                    1 + index as u32,
                    json!(index),
                )
            })
            .collect();
        let pages = pages_of("l", 2, 1 << 20, &records).unwrap();
        let pages = shown(&pages);
        assert_eq!(
            pages.iter().map(|(records, _)| records.len()).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        assert_eq!(
            pages[0].0[1],
            json!({"id": "r-1", "request_id": "b", "data": 1, "attempt": 3})
        );
        assert_eq!(pages[2].0[0]["attempt"], 6);
        assert_eq!(pages[1].1, [Some("a".to_string()), Some("b".to_string())]);
        assert!(
            pages_of("l", 0, 1 << 20, &records[..1]).unwrap().len() == 1,
            "page_size 0 means 1"
        );
    }

    #[test]
    fn pages_close_before_their_bytes_exceed_the_limit_and_oversized_records_go_alone() {
        let small = |id: &str| item(id, None, 1, json!("x"));
        let one = serde_json::to_vec(&json!({"id": "r-0", "request_id": null, "data": "x", "attempt": 2})).unwrap();
        // Two records and their commas fit; a third does not.
        let limit = 2 * (one.len() + 1) + 1;
        let records = [small("r-0"), small("r-1"), small("r-2"), small("r-3")];
        let pages = pages_of("l", 100, limit, &records).unwrap();
        assert_eq!(pages.iter().map(|p| p.records.len()).collect::<Vec<_>>(), [2, 2]);
        assert_eq!(pages[0].waiters, [None, None], "one waiter per record");

        let big = item("r-big", Some("q"), 1, json!("y".repeat(limit)));
        let records = [small("r-0"), big, small("r-1")];
        let pages = shown(&pages_of("l", 100, limit, &records).unwrap());
        let ids: Vec<Vec<&str>> = pages
            .iter()
            .map(|(records, _)| records.iter().map(|r| r["id"].as_str().unwrap()).collect())
            .collect();
        assert_eq!(ids, [vec!["r-0"], vec!["r-big"], vec!["r-1"]]);
        assert_eq!(pages[1].1, [Some("q".to_string())]);
    }
}
