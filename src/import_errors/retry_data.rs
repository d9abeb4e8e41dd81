//! Reading retry data of errors recorded by earlier versions back from their retry topic, on
//! demand (see the module comment of `import_errors`): the wanted records are grouped into time
//! windows, each window is read from every partition of the retry topic, and only the wanted
//! records are kept.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::value::RawValue;

use super::entry::RetryData;
use crate::config::kafka::KafkaSettings;
use crate::wire::{ReadError, RecordId, RetryDataMessage};

/// Clocks of the instances that wrote retry data may differ by this much (NTP assumed).
pub const RETRY_LOOKUP_CLOCK_MARGIN: Duration = Duration::from_secs(60);
/// Retry data looked up in one read of the retry topic.
pub const RETRY_LOOKUP_BATCH: usize = 500;

/// A record whose retry data is wanted, and when it was received (Unix ms; `None`: unknown,
/// the whole retained topic is read).
#[derive(Debug, Clone)]
pub struct RetryLookup {
    /// The record id (the key of its retry data).
    pub record_id: String,
    /// Its `received_at`.
    pub received_at_ms: Option<i64>,
}

/// Reads the retry data of `wanted` from the retry topic (blocking; see the module comment of `import_errors`).
/// `produce_deadline` is how long after receipt the retry data may have been written (the
/// serve tier's request timeout). Records not found are absent from the map (expired, or
/// never stored).
pub fn find_retry_data(
    settings: &KafkaSettings,
    bootstrap: &str,
    wanted: &[RetryLookup],
    produce_deadline: Duration,
    timeout: Duration,
) -> Result<HashMap<String, RetryData>, String> {
    let topic = settings.retry_topic.as_str();
    let consumer: BaseConsumer = crate::kafka::base_client_config(settings, bootstrap)
        .set("group.id", "hookpipe-retry-lookup")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(|e| format!("cannot create a consumer of {topic}: {e}"))?;
    let partitions = crate::kafka::partitions_of(&consumer, topic, Duration::from_secs(10))?;
    if partitions.is_empty() {
        return Ok(HashMap::new());
    }
    let deadline = Instant::now() + timeout;
    let margin = RETRY_LOOKUP_CLOCK_MARGIN.as_millis() as i64;
    let after = produce_deadline.as_millis() as i64 + margin;
    let mut found = HashMap::new();
    for (window, keys) in lookup_windows(wanted, margin, after) {
        read_window(&consumer, topic, &partitions, window, keys, deadline, &mut found)?;
    }
    Ok(found)
}

/// A time range of the retry topic to read, Unix ms; `None` = everything retained.
type Window = Option<(i64, i64)>;

/// Groups the wanted records into non-overlapping time windows.
fn lookup_windows(wanted: &[RetryLookup], before: i64, after: i64) -> Vec<(Window, BTreeSet<String>)> {
    let mut unknown = BTreeSet::new();
    let mut timed: Vec<(i64, &str)> = Vec::new();
    for lookup in wanted {
        match lookup.received_at_ms {
            Some(at) => timed.push((at, &lookup.record_id)),
            None => {
                unknown.insert(lookup.record_id.clone());
            }
        }
    }
    timed.sort_unstable();
    let mut windows: Vec<(Window, BTreeSet<String>)> = Vec::new();
    for (at, record_id) in timed {
        let (start, end) = (at - before, at + after);
        match windows.last_mut() {
            Some((Some((_, last_end)), keys)) if start <= *last_end => {
                *last_end = (*last_end).max(end);
                keys.insert(record_id.to_string());
            }
            _ => windows.push((Some((start, end)), BTreeSet::from([record_id.to_string()]))),
        }
    }
    if !unknown.is_empty() {
        windows.push((None, unknown));
    }
    windows
}

/// Reads one window of every partition, moving found keys from `keys` into `found`.
fn read_window(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    window: Window,
    mut keys: BTreeSet<String>,
    deadline: Instant,
    found: &mut HashMap<String, RetryData>,
) -> Result<(), String> {
    let mut starts = TopicPartitionList::new();
    for partition in partitions {
        let offset = match window {
            Some((start, _)) => Offset::Offset(start.max(0)),
            None => Offset::Beginning,
        };
        starts
            .add_partition_offset(topic, *partition, offset)
            .map_err(|e| e.to_string())?;
    }
    if window.is_some() {
        starts = consumer
            .offsets_for_times(starts, Duration::from_secs(10))
            .map_err(|e| format!("cannot look up offsets by time in {topic}: {e}"))?;
    }
    // Where each partition's read starts; it ends at end-of-partition or past the window.
    // (Watermarks are not used: some Kafka-compatible brokers report the high watermark of a
    // multi-record batch as its base offset + 1.)
    let mut assignment = TopicPartitionList::new();
    let mut open: BTreeSet<i32> = BTreeSet::new();
    for element in starts.elements() {
        let offset = match element.offset() {
            offset @ (Offset::Offset(_) | Offset::Beginning) => offset,
            // No message at or after the window's start.
            _ => continue,
        };
        assignment
            .add_partition_offset(topic, element.partition(), offset)
            .map_err(|e| e.to_string())?;
        open.insert(element.partition());
    }
    tracing::debug!(topic, ?window, ?open, "retry data lookup");
    if open.is_empty() {
        return Ok(());
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("cannot assign {topic}: {e}"))?;
    let end = window.map(|(_, end)| end);
    while !open.is_empty() && !keys.is_empty() {
        if Instant::now() >= deadline {
            return Err(format!("looking up retry data in {topic} took too long"));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(error)) => return Err(format!("reading {topic}: {error}")),
            Some(Ok(message)) => {
                let partition = message.partition();
                match message
                    .payload()
                    .map(|payload| take_wanted_records(payload, &mut keys, found))
                {
                    Some(Ok(())) => {}
                    Some(Err(error)) => tracing::warn!(
                        partition,
                        offset = message.offset(),
                        %error,
                        "unreadable retry data; ignored"
                    ),
                    None => {}
                }
                if end.is_some_and(|end| message.timestamp().to_millis().is_some_and(|t| t > end)) {
                    open.remove(&partition);
                }
            }
        }
    }
    consumer
        .unassign()
        .map_err(|e| format!("cannot unassign {topic}: {e}"))?;
    Ok(())
}

/// Moves the records of one retry data message whose ids are in `keys` into `found`.
fn take_wanted_records(
    payload: &[u8],
    keys: &mut BTreeSet<String>,
    found: &mut HashMap<String, RetryData>,
) -> Result<(), ReadError> {
    let page = RetryDataMessage::<&RawValue>::read(payload)?;
    for record in page.records {
        // One unreadable record must not hide the others of its page.
        let Ok(id) = serde_json::from_str::<RecordId<'_>>(record.get()) else {
            tracing::warn!(page_id = %page.page_id, "retry data record without an id; skipped");
            continue;
        };
        if !keys.contains(id.id.as_ref()) {
            continue;
        }
        match serde_json::from_str(record.get()) {
            Ok(value) => {
                keys.remove(id.id.as_ref());
                found.insert(
                    id.id.into_owned(),
                    RetryData {
                        listener_id: page.listener_id.clone(),
                        topic: page.topic.clone(),
                        page_id: page.page_id.clone(),
                        record: value,
                    },
                );
            }
            Err(error) => {
                tracing::warn!(page_id = %page.page_id, record_id = %id.id, %error, "unreadable retry data record; skipped")
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(id: &str, at: Option<i64>) -> RetryLookup {
        RetryLookup {
            record_id: id.into(),
            received_at_ms: at,
        }
    }

    #[test]
    fn wanted_records_are_taken_from_a_page_of_retry_data() {
        let records = [
            br#"{"id":"r\u002d0","data":{"a":[1,2]}}"#.to_vec(),
            br#"{"data":1,"id":"r-1"}"#.to_vec(),
        ];
        let message = crate::wire::serialize_retry_data("l", "pages", "p", "t", &records);
        let mut keys = BTreeSet::from(["r-0".to_string(), "elsewhere".to_string()]);
        let mut found = HashMap::new();
        take_wanted_records(&message, &mut keys, &mut found).unwrap();
        assert_eq!(keys, BTreeSet::from(["elsewhere".to_string()]));
        let data = &found["r-0"];
        assert_eq!(
            (data.listener_id.as_str(), data.topic.as_str(), data.page_id.as_str()),
            ("l", "pages", "p")
        );
        assert_eq!(data.record["data"]["a"][1], 2);
        assert!(take_wanted_records(b"{\"records\":1}", &mut keys, &mut found).is_err());
    }

    #[test]
    fn windows_merge_when_they_overlap() {
        let windows = lookup_windows(
            &[
                lookup("c", Some(10_000)),
                lookup("a", Some(1_000)),
                lookup("b", Some(1_050)),
                lookup("x", None),
            ],
            100,
            200,
        );
        let shown: Vec<(Window, Vec<String>)> = windows
            .into_iter()
            .map(|(w, keys)| (w, keys.into_iter().collect()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (Some((900, 1_250)), vec!["a".to_string(), "b".to_string()]),
                (Some((9_900, 10_200)), vec!["c".to_string()]),
                (None, vec!["x".to_string()]),
            ]
        );
        assert!(lookup_windows(&[], 1, 1).is_empty());
    }
}
