//! Import errors and retry data.
//!
//! A record that fails permanently (or exhausts its tries) is an *error*: the worker writes it to
//! the compacted errors topic under `<listener id>/<record id>`; resolving it (by a later
//! successful import of the same trace key, by a successful retry, or by hand) writes a
//! tombstone. Every instance mirrors the topic (`StateTopic`), so the errors view works anywhere;
//! the mirror holds open errors only (about half a kilobyte each, no record content).
//!
//! Retry data (the records' content, written at ingest by the RetryStoreActor, one message per
//! page, key = page id) is not mirrored: it is read on demand. Kafka cannot look a key up, but it can look a time
//! up, and a record's retry data is produced within `server.request_timeout_ms` of the record's
//! `received_at`: `find_retry_data` asks for the offsets at `received_at - margin` on every
//! partition of the retry topic and reads forward to `received_at + request timeout + margin`,
//! keeping only the wanted keys. Memory is bounded by the wanted records; the read by the
//! traffic of that window.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::broadcast::error::RecvError;

use crate::config::KafkaSettings;
use crate::kafka::producer::{OutgoingMessage, PageProducer, PublishError};
use crate::kafka::state::StateTopic;
use crate::pipeline::page::pager::{ClosedPage, Pager};
use crate::pipeline::{new_id, rfc3339_millis, unix_millis_now};
use crate::wire::{self, ReadError, RecordId, RetryDataMessage};

/// Clocks of the instances that wrote retry data may differ by this much (NTP assumed).
pub const RETRY_LOOKUP_CLOCK_MARGIN: Duration = Duration::from_secs(60);
/// Retry data looked up in one read of the retry topic.
pub const RETRY_LOOKUP_BATCH: usize = 500;

/// One failed record, as stored in the errors topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    /// Its listener.
    pub listener_id: String,
    /// The record's id (`<request id>-<index>`).
    pub record_id: String,
    /// The request it came in, when the page said.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The record's trace key; a later success with the same key resolves the error.
    pub trace_key: String,
    /// Link to the record in the source system, when the listener renders one.
    #[serde(default)]
    pub data_uri: Option<String>,
    /// What went wrong (the target's answer, shortened).
    pub error: String,
    /// HTTP status of the target's last answer; none for connection errors and file targets.
    #[serde(default)]
    pub target_status: Option<u16>,
    /// The record's attempt: 1 for the original delivery, +1 per retry through the API.
    pub attempt: u32,
    /// Requests made to the target during this attempt (1 + automatic retries).
    pub tries: u32,
    /// When the worker gave up, RFC 3339.
    pub failed_at: String,
    /// The same, Unix ms (for sorting).
    pub failed_at_ms: i64,
    /// When hookpipe received the record, RFC 3339.
    #[serde(default)]
    pub received_at: Option<String>,
    /// The page it was imported in.
    pub page_id: String,
    /// The pages topic it was read from.
    pub topic: String,
    /// Whether retry data was stored for the record (false: the listener has `do_not_store_retry_data`).
    pub retry_data_stored: bool,
    /// When a retry through the API last republished the record; the error stays open until the
    /// retried record imports (or fails again, replacing this entry).
    #[serde(default)]
    pub retry_requested_at: Option<String>,
}

impl ErrorEntry {
    /// `received_at` in Unix ms, when present and readable.
    pub fn received_at_ms(&self) -> Option<i64> {
        let text = self.received_at.as_deref()?;
        let time = humantime::parse_rfc3339_weak(text).ok()?;
        let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(since.as_millis()).ok()
    }
}

/// Key of an error in the errors topic.
pub fn error_key(listener_id: &str, record_id: &str) -> String {
    format!("{listener_id}/{record_id}")
}

/// One record's retry data, as read from its page's retry data message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryData {
    /// Its listener.
    pub listener_id: String,
    /// The pages topic the record was published to.
    pub topic: String,
    /// The page it was first published in.
    pub page_id: String,
    /// The record exactly as it was in the page (`id`, `trace_key`, `data`, …).
    pub record: serde_json::Value,
}

/// Open errors per (listener, trace key), kept in step with the mirror, for auto-resolution.
#[derive(Debug, Default)]
struct TraceIndex {
    by_trace: HashMap<(String, String), BTreeSet<String>>,
    by_key: HashMap<String, (String, String)>,
}

impl TraceIndex {
    /// Sets what `key` holds: `Some((listener, trace key))` for an open error, `None` when resolved.
    fn set(&mut self, key: &str, entry: Option<(String, String)>) {
        if let Some(previous) = self.by_key.remove(key) {
            if let Some(keys) = self.by_trace.get_mut(&previous) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_trace.remove(&previous);
                }
            }
        }
        if let Some(trace) = entry {
            self.by_trace.entry(trace.clone()).or_default().insert(key.to_string());
            self.by_key.insert(key.to_string(), trace);
        }
    }

    fn keys_with(&self, listener_id: &str, trace_key: &str) -> Vec<String> {
        self.by_trace
            .get(&(listener_id.to_string(), trace_key.to_string()))
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The errors topic, mirrored, with an index by trace key.
pub struct ErrorsStore {
    state: Arc<StateTopic>,
    index: Arc<RwLock<TraceIndex>>,
}

impl std::fmt::Debug for ErrorsStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ErrorsStore")
            .field("state", &self.state)
            .finish()
    }
}

impl ErrorsStore {
    /// Opens (with `create`, creates) the errors topic, reads it and keeps following it.
    pub async fn open(settings: &KafkaSettings, bootstrap: &str, create: bool) -> Result<Arc<ErrorsStore>, String> {
        let state = StateTopic::open(settings, bootstrap, &settings.errors_topic, create).await?;
        // Subscribed before the first scan, so no change falls between the two.
        let changes = state.subscribe();
        let index = Arc::new(RwLock::new(TraceIndex::default()));
        let store = Arc::new(ErrorsStore { state, index });
        store.rebuild_index();
        let weak = Arc::downgrade(&store);
        std::thread::Builder::new()
            .name("errors-index".into())
            .spawn(move || follow_changes(weak, changes))
            .map_err(|e| format!("cannot start the errors index thread: {e}"))?;
        Ok(store)
    }

    /// Open errors of a listener, newest first.
    pub fn list(&self, listener_id: &str) -> Vec<ErrorEntry> {
        let mut entries: Vec<ErrorEntry> = self
            .state
            .scan_prefix(&format!("{listener_id}/"))
            .into_iter()
            .filter_map(|(key, value)| decode(&key, &value))
            .collect();
        entries.sort_by(|a, b| {
            b.failed_at_ms
                .cmp(&a.failed_at_ms)
                .then_with(|| b.record_id.cmp(&a.record_id))
        });
        entries
    }

    /// One open error.
    pub fn get(&self, listener_id: &str, record_id: &str) -> Option<ErrorEntry> {
        let key = error_key(listener_id, record_id);
        decode(&key, &self.state.get(&key)?)
    }

    /// Writes an error (new, or replacing the record's previous one); returns once Kafka
    /// acknowledged it and this instance's view shows it.
    pub async fn record(&self, entry: &ErrorEntry) -> Result<(), String> {
        let key = error_key(&entry.listener_id, &entry.record_id);
        let bytes = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
        self.state.put(&key, &bytes).await?;
        self.write_index()
            .set(&key, Some((entry.listener_id.clone(), entry.trace_key.clone())));
        Ok(())
    }

    /// Resolves an error (a tombstone); `false` when it was not open here.
    pub async fn resolve(&self, listener_id: &str, record_id: &str) -> Result<bool, String> {
        let key = error_key(listener_id, record_id);
        if self.state.get(&key).is_none() {
            return Ok(false);
        }
        self.state.delete(&key).await?;
        self.write_index().set(&key, None);
        Ok(true)
    }

    /// Record ids of the listener's open errors with this trace key.
    pub fn open_with_trace_key(&self, listener_id: &str, trace_key: &str) -> Vec<String> {
        let prefix_len = listener_id.len() + 1;
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys_with(listener_id, trace_key)
            .into_iter()
            .map(|key| key[prefix_len..].to_string())
            .collect()
    }

    fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, TraceIndex> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn rebuild_index(&self) {
        let mut index = TraceIndex::default();
        for (key, value) in self.state.scan_prefix("") {
            if let Some(entry) = decode(&key, &value) {
                index.set(&key, Some((entry.listener_id, entry.trace_key)));
            }
        }
        *self.write_index() = index;
    }

    fn refresh_key(&self, key: &str) {
        let entry = self
            .state
            .get(key)
            .and_then(|value| decode(key, &value))
            .map(|entry| (entry.listener_id, entry.trace_key));
        self.write_index().set(key, entry);
    }
}

fn decode(key: &str, value: &[u8]) -> Option<ErrorEntry> {
    match serde_json::from_slice(value) {
        Ok(entry) => Some(entry),
        Err(error) => {
            tracing::warn!(%key, %error, "unreadable entry in the errors topic; ignored");
            None
        }
    }
}

/// The index thread: applies each change the mirror reports; ends when the store is dropped
/// (its mirror then stops and closes the channel).
fn follow_changes(store: Weak<ErrorsStore>, mut changes: tokio::sync::broadcast::Receiver<String>) {
    loop {
        let change = changes.blocking_recv();
        let Some(store) = store.upgrade() else { return };
        match change {
            Ok(key) => store.refresh_key(&key),
            Err(RecvError::Lagged(_)) => store.rebuild_index(),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Creates the retry topic (`cleanup.policy=delete`, `retention.ms` from
/// `kafka.retry_retention_hours`) unless it exists. Superseded by `kafka::topics::provision`,
/// which creates it with every other topic; kept until `http::start` calls that.
pub async fn create_retry_topic(settings: &KafkaSettings, bootstrap: &str) -> Result<(), String> {
    crate::kafka::topics::create_missing(settings, bootstrap, &[crate::kafka::topics::retry_topic(settings)]).await
}

/// A record whose retry data is wanted, and when it was received (Unix ms; `None`: unknown,
/// the whole retained topic is read).
#[derive(Debug, Clone)]
pub struct RetryLookup {
    /// The record id (the key of its retry data).
    pub record_id: String,
    /// Its `received_at`.
    pub received_at_ms: Option<i64>,
}

/// Reads the retry data of `wanted` from the retry topic (blocking; see the module comment).
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

    #[test]
    fn trace_index_follows_sets_and_resolutions() {
        let mut index = TraceIndex::default();
        index.set("l/r1", Some(("l".into(), "T".into())));
        index.set("l/r2", Some(("l".into(), "T".into())));
        index.set("m/r3", Some(("m".into(), "T".into())));
        assert_eq!(index.keys_with("l", "T"), vec!["l/r1", "l/r2"]);
        // A record failing again under a new trace key moves.
        index.set("l/r2", Some(("l".into(), "U".into())));
        assert_eq!(index.keys_with("l", "T"), vec!["l/r1"]);
        assert_eq!(index.keys_with("l", "U"), vec!["l/r2"]);
        index.set("l/r1", None);
        index.set("l/never", None);
        assert!(index.keys_with("l", "T").is_empty());
        assert!(!index.by_trace.contains_key(&("l".to_string(), "T".to_string())));
        assert_eq!(index.keys_with("m", "T"), vec!["m/r3"]);
    }

    #[test]
    fn received_at_parses_rfc3339() {
        let entry = ErrorEntry {
            listener_id: "l".into(),
            record_id: "r".into(),
            request_id: None,
            trace_key: "t".into(),
            data_uri: None,
            error: "e".into(),
            target_status: None,
            attempt: 1,
            tries: 1,
            failed_at: rfc3339_millis(5),
            failed_at_ms: 5,
            received_at: Some(rfc3339_millis(1_700_000_000_123)),
            page_id: "p".into(),
            topic: "t".into(),
            retry_data_stored: true,
            retry_requested_at: None,
        };
        assert_eq!(entry.received_at_ms(), Some(1_700_000_000_123));
        let entry = ErrorEntry {
            received_at: Some("yesterday".into()),
            ..entry
        };
        assert_eq!(entry.received_at_ms(), None);
    }
}
