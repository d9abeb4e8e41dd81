//! Shared state in Kafka: a compacted topic mirrored in memory (`StateTopic`) and a
//! retention-bounded log mirrored with a per-key cap (`LogTopic`).
//!
//! Every instance reads every partition of the topic (assigned, no consumer group), so every
//! instance converges on the same view; writes return only once this instance's own mirror has
//! applied them, so a write followed by a read on the same instance sees the write.
//!
//! Reads never block. Writes time out with Tokio's timer, so they must run inside a Tokio
//! runtime with time enabled (actix's runtime is one).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{broadcast, oneshot, watch};

use super::supervisor::{Delivery, Supervised};
use super::topics::{Cleanup, TopicSpec};
use crate::config::kafka::KafkaSettings;

/// How long a write may take from enqueue to being applied by the local mirror.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on how long the follower thread goes without checking its stop flag.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Brokers can take a while to show a freshly created topic's partitions with leaders.
const CREATED_TOPIC_TIMEOUT: Duration = Duration::from_secs(30);
/// A topic opened without creating it should exist already; this only covers metadata lag.
const EXISTING_TOPIC_TIMEOUT: Duration = Duration::from_secs(10);
/// Opening fails when catching up makes no progress for this long (broker gone mid-read).
const CATCH_UP_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the log mirror drops entries that aged out of the retention.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);
/// Consumer errors repeat on every poll while a broker is down; one warning per period is enough.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Subscribers that fall further behind than this get `Lagged` and resync with a scan.
const CHANGE_CHANNEL_CAPACITY: usize = 1024;

/// A compacted topic mirrored in memory: the latest value per key; a null value deletes.
pub struct StateTopic {
    follower: Follower,
    mirror: Arc<StateMirror>,
}

impl StateTopic {
    /// Creates the topic if missing (compacted), reads it up to the high watermarks seen at open,
    /// then keeps following it on a background thread named `state-<topic>`.
    pub async fn open(
        settings: &KafkaSettings,
        bootstrap: &str,
        topic: &str,
        create: bool,
    ) -> Result<Arc<StateTopic>, String> {
        let (changes, _) = broadcast::channel(CHANGE_CHANNEL_CAPACITY);
        let mirror = Arc::new(StateMirror {
            values: RwLock::new(KeyValues::default()),
            changes,
        });
        let follower = Follower::open(settings, bootstrap, topic, Cleanup::Compact, create, mirror.clone()).await?;
        Ok(Arc::new(StateTopic { follower, mirror }))
    }

    /// The latest value of `key`, if it has one.
    pub fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.mirror.read().get(key)
    }

    /// All (key, value) whose key starts with `prefix`, sorted by key.
    pub fn scan_prefix(&self, prefix: &str) -> Vec<(String, Arc<[u8]>)> {
        self.mirror.read().scan_prefix(prefix)
    }

    /// Sets `key` to `value`; returns once Kafka acknowledged it and this mirror applied it.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.follower.write(key, Some(value)).await
    }

    /// Enqueues `key` = `value` without waiting (hot paths such as sample data); `Err` at once
    /// when the producer queue is full.
    pub fn try_put(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.follower.enqueue_unawaited(key, Some(value))
    }

    /// Deletes `key` (a tombstone); returns once Kafka acknowledged it and this mirror applied it.
    pub async fn delete(&self, key: &str) -> Result<(), String> {
        self.follower.write(key, None).await
    }

    /// Keys of changes as this mirror applies them, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.mirror.changes.subscribe()
    }

    /// The topic this mirrors.
    pub fn topic(&self) -> &str {
        &self.follower.topic
    }
}

impl fmt::Debug for StateTopic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StateTopic")
            .field("topic", &self.follower.topic)
            .field("keys", &self.mirror.read().len())
            .finish()
    }
}

/// An append-only topic with time-based retention, mirrored in memory with a per-key cap.
pub struct LogTopic {
    follower: Follower,
    mirror: Arc<LogMirror>,
}

impl LogTopic {
    /// Creates the topic if missing (`retention.ms` = `retention`), reads what it holds, then
    /// keeps following it; the mirror keeps at most `max_per_key` entries per key, none older
    /// than `retention` (by Kafka message timestamp).
    pub async fn open(
        settings: &KafkaSettings,
        bootstrap: &str,
        topic: &str,
        retention: Duration,
        max_per_key: usize,
        create: bool,
    ) -> Result<Arc<LogTopic>, String> {
        if max_per_key == 0 {
            return Err(format!("log topic {topic}: max_per_key must be at least 1"));
        }
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        if retention_ms < 1 {
            return Err(format!("log topic {topic}: retention must be at least 1 ms"));
        }
        let mirror = Arc::new(LogMirror {
            entries: RwLock::new(LogEntries::new(retention_ms, max_per_key)),
        });
        // `retention_ms` is at least 1, checked above.
        let cleanup = Cleanup::Delete {
            retention_ms: retention_ms as u64,
        };
        let follower = Follower::open(settings, bootstrap, topic, cleanup, create, mirror.clone()).await?;
        Ok(Arc::new(LogTopic { follower, mirror }))
    }

    /// Enqueues an append without waiting; `Err` at once when the producer queue is full.
    pub fn try_append(&self, key: &str, value: &[u8]) -> Result<(), String> {
        // Callers that must know the outcome use `append`.
        self.follower.enqueue_unawaited(key, Some(value))
    }

    /// Appends and waits until Kafka acknowledged it and this mirror applied it.
    pub async fn append(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.follower.write(key, Some(value)).await
    }

    /// The entries of `key` still within retention, newest first, as (timestamp ms, value).
    pub fn entries(&self, key: &str) -> Vec<(i64, Arc<[u8]>)> {
        self.mirror.read().newest_first(key, now_ms())
    }

    /// Waits (blocking) until appends enqueued by `try_append` are delivered; call at shutdown,
    /// since dropping the handle discards what is still queued.
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        self.follower
            .producer
            .current()
            .producer
            .flush(timeout)
            .map_err(|e| format!("cannot flush appends to {}: {e}", self.follower.topic))
    }

    /// The topic this mirrors.
    pub fn topic(&self) -> &str {
        &self.follower.topic
    }
}

impl fmt::Debug for LogTopic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("LogTopic")
            .field("topic", &self.follower.topic)
            .field("keys", &self.mirror.read().key_count())
            .finish()
    }
}

/// What the follower thread feeds each record into.
pub(crate) trait Sink: Send + Sync + 'static {
    /// Applies one record; `value` is `None` for a tombstone.
    fn apply(&self, key: &str, value: Option<&[u8]>, timestamp_ms: i64);

    /// Applies one record with its place in the topic (sinks that need the offset override
    /// this; the others get `apply`).
    fn apply_at(&self, _offset: i64, key: &str, value: Option<&[u8]>, timestamp_ms: i64) {
        self.apply(key, value, timestamp_ms)
    }

    /// Periodic housekeeping on the follower thread.
    fn maintain(&self) {}
}

struct StateMirror {
    values: RwLock<KeyValues>,
    changes: broadcast::Sender<String>,
}

impl StateMirror {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeyValues> {
        // The guarded maps are never left half-updated, so a poisoned lock is still consistent.
        self.values.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink for StateMirror {
    fn apply(&self, key: &str, value: Option<&[u8]>, _timestamp_ms: i64) {
        self.values
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(key, value);
        // No receivers is normal (nobody subscribed yet).
        let _ = self.changes.send(key.to_string());
    }
}

struct LogMirror {
    entries: RwLock<LogEntries>,
}

impl LogMirror {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, LogEntries> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, LogEntries> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink for LogMirror {
    fn apply(&self, key: &str, value: Option<&[u8]>, timestamp_ms: i64) {
        // A log has nothing to delete by key; a null value carries no entry.
        if let Some(value) = value {
            self.write().apply(key, value, timestamp_ms, now_ms());
        }
    }

    fn maintain(&self) {
        self.write().prune(now_ms());
    }
}

/// Latest value per key.
#[derive(Debug, Default)]
struct KeyValues {
    entries: BTreeMap<String, Arc<[u8]>>,
}

impl KeyValues {
    fn apply(&mut self, key: &str, value: Option<&[u8]>) {
        match value {
            Some(value) => {
                self.entries.insert(key.to_string(), Arc::from(value));
            }
            None => {
                self.entries.remove(key);
            }
        }
    }

    fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.entries.get(key).cloned()
    }

    fn scan_prefix(&self, prefix: &str) -> Vec<(String, Arc<[u8]>)> {
        self.entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A log entry: Kafka timestamp (ms) and value.
type TimedValue = (i64, Arc<[u8]>);

/// Per key, the newest `max_per_key` entries younger than the retention, newest first.
#[derive(Debug)]
struct LogEntries {
    by_key: HashMap<String, VecDeque<TimedValue>>,
    retention_ms: i64,
    max_per_key: usize,
}

impl LogEntries {
    fn new(retention_ms: i64, max_per_key: usize) -> LogEntries {
        debug_assert!(max_per_key > 0 && retention_ms > 0);
        LogEntries {
            by_key: HashMap::new(),
            retention_ms,
            max_per_key,
        }
    }

    fn oldest_kept(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.retention_ms)
    }

    fn apply(&mut self, key: &str, value: &[u8], timestamp_ms: i64, now_ms: i64) {
        if timestamp_ms < self.oldest_kept(now_ms) {
            return;
        }
        let entries = self.by_key.entry(key.to_string()).or_default();
        // Producers on different instances have different clocks, so timestamps can arrive out
        // of order; at equal timestamps the later record counts as newer.
        let position = entries
            .iter()
            .position(|(existing, _)| *existing <= timestamp_ms)
            .unwrap_or(entries.len());
        if position >= self.max_per_key {
            return;
        }
        entries.insert(position, (timestamp_ms, Arc::from(value)));
        entries.truncate(self.max_per_key);
    }

    fn prune(&mut self, now_ms: i64) {
        let oldest_kept = self.oldest_kept(now_ms);
        self.by_key.retain(|_, entries| {
            while entries.back().is_some_and(|(timestamp, _)| *timestamp < oldest_kept) {
                entries.pop_back();
            }
            !entries.is_empty()
        });
    }

    fn newest_first(&self, key: &str, now_ms: i64) -> Vec<(i64, Arc<[u8]>)> {
        let oldest_kept = self.oldest_kept(now_ms);
        self.by_key
            .get(key)
            .map(|entries| {
                entries
                    .iter()
                    .take_while(|(timestamp, _)| *timestamp >= oldest_kept)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn key_count(&self) -> usize {
        self.by_key.len()
    }
}

/// Sets the stop flag of the follower thread when the handle goes away.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Next offset the mirror will apply, per partition.
type Progress = HashMap<i32, watch::Receiver<i64>>;

/// The part every mirrored topic shares: producer, follower thread, and read-your-writes.
pub(crate) struct Follower {
    topic: String,
    producer: Arc<Supervised>,
    progress: Progress,
    _stop: StopOnDrop,
}

impl Follower {
    pub(crate) async fn open(
        settings: &KafkaSettings,
        bootstrap: &str,
        topic: &str,
        cleanup: Cleanup,
        create: bool,
        sink: Arc<dyn Sink>,
    ) -> Result<Follower, String> {
        Self::open_at(settings, bootstrap, topic, cleanup, create, sink, Start::Beginning).await
    }

    /// Follows `topic` (which must exist) from its end as found at open: only what is written
    /// from then on reaches `sink` (the import results: what was written before waits for nobody).
    pub(crate) async fn open_from_end(
        settings: &KafkaSettings,
        bootstrap: &str,
        topic: &str,
        sink: Arc<dyn Sink>,
    ) -> Result<Follower, String> {
        Self::open_at(
            settings,
            bootstrap,
            topic,
            Cleanup::BrokerDefault,
            false,
            sink,
            Start::End,
        )
        .await
    }

    async fn open_at(
        settings: &KafkaSettings,
        bootstrap: &str,
        topic: &str,
        cleanup: Cleanup,
        create: bool,
        sink: Arc<dyn Sink>,
        start: Start,
    ) -> Result<Follower, String> {
        if create {
            // Superseded by `topics::provision`, after which every follower opens with `create = false`.
            let spec = TopicSpec {
                name: topic.to_string(),
                cleanup,
            };
            super::topics::create_missing(settings, bootstrap, &[spec])
                .await
                .map_err(|error| {
                    format!(
                        "{error} (if this broker cannot create topics, create it beforehand and open with create=false)"
                    )
                })?;
        }
        let producer = shared_producer(settings, bootstrap, topic)?;
        let consumer = create_consumer(settings, bootstrap, topic)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_guard = StopOnDrop(stop.clone());
        let (ready_sender, ready) = oneshot::channel();
        let thread_topic = topic.to_string();
        let metadata_timeout = if create {
            CREATED_TOPIC_TIMEOUT
        } else {
            EXISTING_TOPIC_TIMEOUT
        };
        std::thread::Builder::new()
            .name(format!("state-{topic}"))
            .spawn(move || {
                follow(
                    consumer,
                    thread_topic,
                    metadata_timeout,
                    start,
                    sink,
                    stop,
                    ready_sender,
                )
            })
            .map_err(|e| format!("cannot start the follower thread of {topic}: {e}"))?;
        let progress = match ready.await {
            Ok(Ok(progress)) => progress,
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(format!("follower of {topic} ended before catching up")),
        };
        Ok(Follower {
            topic: topic.to_string(),
            producer,
            progress,
            _stop: stop_guard,
        })
    }

    /// Enqueues a write; the delivery future, and the generation of the handle it went to.
    pub(crate) fn enqueue(&self, key: &str, value: Option<&[u8]>) -> Result<(Delivery, u64), String> {
        self.enqueue_to(None, key, value)
    }

    /// Enqueues a write to `partition` (by key when `None`), as `enqueue`.
    pub(crate) fn enqueue_to(
        &self,
        partition: Option<i32>,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(Delivery, u64), String> {
        let mut record = FutureRecord::<str, [u8]>::to(&self.topic).key(key);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        let (generation, sent) = self.producer.send(record);
        sent.map(|delivery| (delivery, generation))
            .map_err(|(error, _)| match error {
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                    format!("producer queue for {} is full", self.topic)
                }
                error => {
                    self.producer.failed(generation, &error);
                    format!("cannot produce to {}: {error}", self.topic)
                }
            })
    }

    /// Enqueues a write nobody waits for; its outcome still feeds the producer's availability
    /// (a timed-out write must get the handle replaced before librdkafka's bumped epoch goes
    /// out, as any other: `kafka::supervisor`), watched on the current Tokio runtime if any.
    pub(crate) fn enqueue_unawaited(&self, key: &str, value: Option<&[u8]>) -> Result<(), String> {
        self.enqueue_unawaited_to(None, key, value, |_| {})
    }

    /// [`Self::enqueue_unawaited`] to `partition` (by key when `None`); `on_outcome` is told
    /// whether Kafka acknowledged it (when known: not if the producer closed first, nor without
    /// a Tokio runtime).
    pub(crate) fn enqueue_unawaited_to(
        &self,
        partition: Option<i32>,
        key: &str,
        value: Option<&[u8]>,
        on_outcome: impl FnOnce(bool) + Send + 'static,
    ) -> Result<(), String> {
        let (delivery, generation) = self.enqueue_to(partition, key, value)?;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let producer = self.producer.clone();
            runtime.spawn(async move {
                match delivery.await {
                    Ok(Ok(_)) => {
                        producer.delivered(generation);
                        on_outcome(true);
                    }
                    Ok(Err((error, _))) => {
                        producer.failed(generation, &error);
                        on_outcome(false);
                    }
                    Err(_canceled) => {}
                }
            });
        }
        Ok(())
    }

    async fn write(&self, key: &str, value: Option<&[u8]>) -> Result<(), String> {
        let topic = &self.topic;
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        let (delivery, generation) = self.enqueue(key, value)?;
        let delivered = match tokio::time::timeout_at(deadline, delivery).await {
            Ok(Ok(Ok(delivered))) => {
                self.producer.delivered(generation);
                delivered
            }
            Ok(Ok(Err((error, _)))) => {
                self.producer.failed(generation, &error);
                return Err(format!("write to {topic} failed: {error}"));
            }
            Ok(Err(_canceled)) => return Err(format!("producer for {topic} closed")),
            Err(_elapsed) => return Err(format!("write to {topic} not acknowledged within {WRITE_TIMEOUT:?}")),
        };
        let (partition, offset) = (delivered.partition, delivered.offset);
        let mut progress = self
            .progress
            .get(&partition)
            .cloned()
            .ok_or_else(|| format!("{topic} partition {partition} is not followed (created after open?)"))?;
        let applied = async move { progress.wait_for(|next_offset| *next_offset > offset).await.map(drop) };
        match tokio::time::timeout_at(deadline, applied).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_closed)) => Err(format!("follower of {topic} stopped")),
            Err(_elapsed) => Err(format!(
                "write to {topic} acknowledged at {partition}/{offset} but not read back within {WRITE_TIMEOUT:?}"
            )),
        }
    }
}

/// The producers of open state topics, one per cluster and settings (see [`shared_producer`]).
static STATE_PRODUCERS: Mutex<Vec<(String, Weak<Supervised>)>> = Mutex::new(Vec::new());

/// The one producer every state topic of this process writes through when they share a cluster
/// and settings (a serve instance's state, debug log and errors topics; a worker's errors topic):
/// one librdkafka handle (one main thread, one thread per broker) instead of one per topic.
/// Pages keep a producer of their own: theirs is the hot path, with bigger messages, and state
/// writes (API writes, samples, captures) must not queue behind a burst of pages. The entry is
/// weak, so the producer closes with the last topic that uses it. Supervised as the pages'
/// producer is (`kafka::supervisor`): a handle that can no longer deliver after an outage is
/// replaced by a fresh one, so state writes recover by themselves too.
fn shared_producer(settings: &KafkaSettings, bootstrap: &str, topic: &str) -> Result<Arc<Supervised>, String> {
    let key = format!("{bootstrap}\u{0}{settings:?}");
    let mut producers = STATE_PRODUCERS.lock().unwrap_or_else(PoisonError::into_inner);
    producers.retain(|(_, producer)| producer.strong_count() > 0);
    if let Some(producer) = producers.iter().find(|(k, _)| *k == key).and_then(|(_, p)| p.upgrade()) {
        return Ok(producer);
    }
    let mut config = super::durable_producer_config(settings, bootstrap);
    config.set(
        "statistics.interval.ms",
        super::producer::STATISTICS_INTERVAL_MS.to_string(),
    );
    let producer = Supervised::start(config, Duration::from_millis(settings.message_timeout_ms))
        .map_err(|e| format!("cannot create producer for {topic}: {e}"))?;
    producers.push((key, Arc::downgrade(&producer)));
    Ok(producer)
}

fn create_consumer(settings: &KafkaSettings, bootstrap: &str, topic: &str) -> Result<BaseConsumer, String> {
    super::base_client_config(settings, bootstrap)
        // librdkafka needs a group id to `assign()`; partitions are assigned by hand and offsets
        // never committed, so no group is ever joined and every instance reads everything.
        .set("group.id", "hookpipe-state")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // End-of-partition events tell the initial read it is complete.
        .set("enable.partition.eof", "true")
        // Brokers without long polling answer an empty fetch only after this; it bounds how
        // late another instance's write shows up here.
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(|e| format!("cannot create consumer for {topic}: {e}"))
}

/// Partition ids of `topic`, once every partition has a leader.
fn discover_partitions(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Vec<i32>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last_problem = match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Err(error) => format!("cannot read metadata: {error}"),
            Ok(metadata) => match super::led_partitions(&metadata, topic) {
                Ok(ids) => return Ok(ids),
                Err(problem) => problem,
            },
        };
        if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
            return Err(format!("topic {topic} not available after {timeout:?}: {last_problem}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Where a follower starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// The oldest record kept: the follower is ready once it read up to the end found at open.
    Beginning,
    /// The end found at open (the high watermark, not librdkafka's `End`, which is resolved only
    /// at the first fetch and would skip what is written meanwhile): ready at once.
    End,
}

/// Assigns every partition from `start`; returns the (low, high) watermarks of each.
fn assign_all(
    consumer: &BaseConsumer,
    topic: &str,
    metadata_timeout: Duration,
    start: Start,
    stop: &AtomicBool,
) -> Result<Vec<(i32, i64, i64)>, String> {
    let partitions = discover_partitions(consumer, topic, metadata_timeout, stop)?;
    let mut assignment = TopicPartitionList::new();
    let mut watermarks = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .map_err(|e| format!("cannot read the offsets of {topic}/{partition}: {e}"))?;
        watermarks.push((partition, low, high));
        let offset = match start {
            Start::Beginning => Offset::Beginning,
            Start::End => Offset::Offset(high),
        };
        assignment
            .add_partition_offset(topic, partition, offset)
            .map_err(|e| format!("cannot assign {topic}/{partition}: {e}"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("cannot assign {topic}: {e}"))?;
    Ok(watermarks)
}

/// The follower thread: reads up to the watermarks seen at start, reports ready, then follows
/// until the handle is dropped.
fn follow(
    consumer: BaseConsumer,
    topic: String,
    metadata_timeout: Duration,
    start: Start,
    sink: Arc<dyn Sink>,
    stop: Arc<AtomicBool>,
    ready: oneshot::Sender<Result<Progress, String>>,
) {
    let watermarks = match assign_all(&consumer, &topic, metadata_timeout, start, &stop) {
        Ok(watermarks) => watermarks,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let mut positions: HashMap<i32, watch::Sender<i64>> = HashMap::new();
    let mut progress: Progress = HashMap::new();
    for (partition, _, _) in &watermarks {
        let (sender, receiver) = watch::channel(0);
        positions.insert(*partition, sender);
        progress.insert(*partition, receiver);
    }
    let mut behind: HashMap<i32, i64> = watermarks
        .into_iter()
        .filter(|(_, low, high)| start == Start::Beginning && high > low)
        .map(|(partition, _, high)| (partition, high))
        .collect();
    let mut ready = Some((ready, progress));
    let mut last_progress = Instant::now();
    let mut last_prune = Instant::now();
    let mut last_error_log: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(POLL_INTERVAL) {
            None => {}
            Some(Ok(message)) => {
                let (partition, offset) = (message.partition(), message.offset());
                match decode_key(message.key()) {
                    Ok(key) => {
                        let timestamp_ms = record_timestamp(message.timestamp(), now_ms());
                        sink.apply_at(offset, key, message.payload(), timestamp_ms);
                    }
                    Err(reason) => {
                        tracing::warn!(topic = %topic, partition, offset, reason, "record skipped")
                    }
                }
                if let Some(position) = positions.get(&partition) {
                    position.send_replace(offset + 1);
                }
                if behind.get(&partition).is_some_and(|high| offset + 1 >= *high) {
                    behind.remove(&partition);
                }
                last_progress = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                behind.remove(&partition);
            }
            Some(Err(error)) if last_error_log.is_none_or(|at| at.elapsed() >= ERROR_LOG_INTERVAL) => {
                tracing::warn!(topic = %topic, %error, "reading state topic failed; retrying");
                last_error_log = Some(Instant::now());
            }
            Some(Err(error)) => tracing::debug!(topic = %topic, %error, "reading state topic failed; retrying"),
        }
        if ready.is_some() {
            if behind.is_empty() {
                if let Some((sender, progress)) = ready.take() {
                    // A dropped receiver means open was abandoned; the stop flag ends the loop.
                    let _ = sender.send(Ok(progress));
                }
            } else if last_progress.elapsed() >= CATCH_UP_STALL_TIMEOUT {
                if let Some((sender, _)) = ready.take() {
                    let _ = sender.send(Err(format!(
                        "reading {topic} made no progress for {CATCH_UP_STALL_TIMEOUT:?}; partitions behind: {:?}",
                        behind.keys().collect::<Vec<_>>()
                    )));
                }
                return;
            }
        }
        if last_prune.elapsed() >= PRUNE_INTERVAL {
            sink.maintain();
            last_prune = Instant::now();
        }
    }
}

fn decode_key(key: Option<&[u8]>) -> Result<&str, &'static str> {
    match key {
        None => Err("record without key"),
        Some(bytes) => std::str::from_utf8(bytes).map_err(|_| "key is not UTF-8"),
    }
}

/// The record's Kafka timestamp, or `now_ms` when the broker gave none.
fn record_timestamp(timestamp: Timestamp, now_ms: i64) -> i64 {
    timestamp.to_millis().filter(|millis| *millis > 0).unwrap_or(now_ms)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(entries: &[(i64, Arc<[u8]>)]) -> Vec<(i64, Vec<u8>)> {
        entries.iter().map(|(t, v)| (*t, v.to_vec())).collect()
    }

    /// A follower opened from the end hands over only what is written after it opened, however
    /// soon after (the import results: what was written before waits for nobody).
    #[actix::test]
    async fn a_follower_from_the_end_sees_only_what_is_written_after_it_opened() {
        struct Seen(Mutex<Vec<String>>);
        impl Sink for Seen {
            fn apply(&self, key: &str, _value: Option<&[u8]>, _timestamp_ms: i64) {
                self.0.lock().unwrap().push(key.to_string());
            }
        }
        let cluster = crate::kafka::embedded::EmbeddedCluster::start().unwrap();
        let settings = KafkaSettings::default();
        let bootstrap = cluster.bootstrap_servers();
        cluster.create_topic("from-end", 2).unwrap();
        let writer = LogTopic::open(&settings, &bootstrap, "from-end", Duration::from_secs(60), 10, false)
            .await
            .unwrap();
        for key in ["old-1", "old-2", "old-3"] {
            writer.append(key, b"x").await.unwrap();
        }
        let seen = Arc::new(Seen(Mutex::new(Vec::new())));
        let _follower = Follower::open_from_end(&settings, &bootstrap, "from-end", seen.clone())
            .await
            .unwrap();
        // At once: the assignment starts at the high watermarks read at open, not at an `End`
        // resolved at the first fetch, which would skip what is written meanwhile.
        writer.append("new-1", b"x").await.unwrap();
        writer.append("new-2", b"x").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.0.lock().unwrap().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut keys = seen.0.lock().unwrap().clone();
        keys.sort();
        assert_eq!(keys, ["new-1", "new-2"]);
    }

    /// The shared state producer is supervised like the pages' one: a handle that can no longer
    /// deliver (a fatal idempotence error, as after an outage on some brokers) is replaced, and
    /// writes are acknowledged again without reopening anything.
    #[actix::test]
    async fn a_state_producer_with_a_fatal_error_is_replaced_and_writes_again() {
        let cluster = crate::kafka::embedded::EmbeddedCluster::start().unwrap();
        let settings = KafkaSettings {
            message_timeout_ms: 4000,
            ..KafkaSettings::default()
        };
        cluster.create_topic("state-fatal", 1).unwrap();
        let state = StateTopic::open(&settings, &cluster.bootstrap_servers(), "state-fatal", false)
            .await
            .unwrap();
        state.put("k", b"1").await.unwrap();
        let supervised = state.follower.producer.clone();
        assert_eq!(supervised.current().generation, 0);
        supervised.raise_fatal_error_for_tests();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut refused = 0;
        loop {
            assert!(
                Instant::now() < deadline,
                "no write after the fatal error ({refused} refused)"
            );
            match state.put("k", b"2").await {
                Ok(()) if supervised.current().generation > 0 => break,
                Ok(()) => {}
                Err(_) => refused += 1,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(state.get("k").as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn state_topics_of_one_cluster_share_one_producer_until_the_last_closes() {
        let settings = KafkaSettings::default();
        let first = shared_producer(&settings, "127.0.0.1:1", "a").unwrap();
        let second = shared_producer(&settings, "127.0.0.1:1", "b").unwrap();
        assert!(Arc::ptr_eq(&first, &second), "same cluster and settings: one producer");
        let other_cluster = shared_producer(&settings, "127.0.0.1:2", "a").unwrap();
        assert!(!Arc::ptr_eq(&first, &other_cluster));
        let other_settings = KafkaSettings {
            message_timeout_ms: settings.message_timeout_ms + 1,
            ..settings.clone()
        };
        assert!(!Arc::ptr_eq(
            &first,
            &shared_producer(&other_settings, "127.0.0.1:1", "a").unwrap()
        ));
        let weak = Arc::downgrade(&first);
        drop((first, second));
        // Its supervisor thread holds it for a moment per tick, never longer.
        let deadline = Instant::now() + Duration::from_secs(5);
        while weak.strong_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(weak.strong_count(), 0, "the cache holds no strong reference");
        let reopened = shared_producer(&settings, "127.0.0.1:1", "a").unwrap();
        assert!(weak.upgrade().is_none(), "a closed producer is not handed out again");
        // Only its own supervisor's tick may hold the fresh one besides us (polled, as above:
        // asserting the count at one instant failed when the tick fell on it).
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&reopened) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(Arc::strong_count(&reopened), 1, "the cache holds no strong reference");
    }

    #[test]
    fn latest_value_wins_and_tombstone_deletes() {
        let mut state = KeyValues::default();
        state.apply("a", Some(b"1"));
        state.apply("a", Some(b"2"));
        state.apply("b", Some(b"3"));
        state.apply("b", None);
        state.apply("never-set", None);
        assert_eq!(state.get("a").as_deref(), Some(&b"2"[..]));
        assert_eq!(state.get("b"), None);
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn scan_prefix_is_sorted_and_exact() {
        let mut state = KeyValues::default();
        for key in ["listener/b", "listener/a", "listenerx", "lis", "sample/a", "listener/"] {
            state.apply(key, Some(key.as_bytes()));
        }
        let keys: Vec<String> = state.scan_prefix("listener/").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["listener/", "listener/a", "listener/b"]);
        assert_eq!(state.scan_prefix("").len(), 6);
        assert!(state.scan_prefix("zzz").is_empty());
    }

    #[test]
    fn log_keeps_newest_per_key_newest_first() {
        let now = 1_000_000;
        let mut log = LogEntries::new(60_000, 3);
        for i in 0..5 {
            log.apply("k", &[i as u8], now - 100 + i, now);
        }
        log.apply("other", b"x", now, now);
        assert_eq!(
            values(&log.newest_first("k", now)),
            vec![(now - 96, vec![4]), (now - 97, vec![3]), (now - 98, vec![2])]
        );
        assert_eq!(log.newest_first("other", now).len(), 1);
        assert!(log.newest_first("missing", now).is_empty());
    }

    #[test]
    fn log_orders_out_of_order_timestamps_and_ties_by_arrival() {
        let now = 1_000_000;
        let mut log = LogEntries::new(60_000, 3);
        log.apply("k", b"b", now - 20, now);
        log.apply("k", b"a", now - 30, now);
        log.apply("k", b"c", now - 20, now);
        assert_eq!(
            values(&log.newest_first("k", now)),
            vec![
                (now - 20, b"c".to_vec()),
                (now - 20, b"b".to_vec()),
                (now - 30, b"a".to_vec())
            ]
        );
        // Older than everything kept, with the key full: not kept.
        log.apply("k", b"old", now - 40, now);
        assert_eq!(log.newest_first("k", now).len(), 3);
        assert_eq!(log.newest_first("k", now)[2].1.as_ref(), b"a");
    }

    #[test]
    fn log_drops_entries_older_than_retention() {
        let now = 1_000_000;
        let mut log = LogEntries::new(1_000, 10);
        log.apply("k", b"expired-on-arrival", now - 5_000, now);
        log.apply("k", b"old", now - 900, now);
        log.apply("k", b"new", now - 100, now);
        log.apply("gone", b"x", now - 950, now);
        assert_eq!(log.newest_first("k", now).len(), 2);
        let later = now + 500;
        assert_eq!(
            values(&log.newest_first("k", later)),
            vec![(now - 100, b"new".to_vec())]
        );
        log.prune(later);
        assert_eq!(log.key_count(), 1);
        log.prune(now + 10_000);
        assert_eq!(log.key_count(), 0);
    }

    #[test]
    fn keys_must_be_present_and_utf8() {
        assert_eq!(decode_key(Some(b"listener/1")), Ok("listener/1"));
        assert!(decode_key(None).is_err());
        assert!(decode_key(Some(&[0xff, 0xfe])).is_err());
    }

    #[test]
    fn missing_timestamps_fall_back_to_now() {
        assert_eq!(record_timestamp(Timestamp::CreateTime(42), 7), 42);
        assert_eq!(record_timestamp(Timestamp::LogAppendTime(43), 7), 43);
        assert_eq!(record_timestamp(Timestamp::NotAvailable, 7), 7);
        assert_eq!(record_timestamp(Timestamp::CreateTime(-1), 7), 7);
        assert_eq!(record_timestamp(Timestamp::CreateTime(0), 7), 7);
    }
}
