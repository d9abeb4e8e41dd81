//! PageActor: renders each record's trace key and data URI, groups records into pages and
//! answers each request once every page holding its records is acknowledged (or at once, when
//! a record cannot be serialized). Records that failed their listener's schema under
//! `quarantine` go, with their errors, into quarantine pages the request waits for as well.
//! A listener publishing CloudEvents takes the `events` path instead: one event per record.
//! A listener with an ordering key has one open page per partition of its topic (`ordering`).

mod events;
pub mod ordering;
pub mod pager;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use sha2::{Digest, Sha256};

use crate::kafka::producer::{PageProducer, PublishError};
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::listener::Listener;
use crate::pipeline::parse::records::Record;
use crate::pipeline::reply::{PageShare, PageShares, Reply};
use crate::pipeline::retry_store::{store_page, Destination, PublishPage};
use crate::pipeline::schema::Quarantined;
use crate::pipeline::{rfc3339_millis, Accepted, Admitted, Stage};
use crate::telemetry::events::TemplateFailed;
use crate::wire;
use pager::{ClosedPage, PageGroup, Pager};

/// The records of one request, to be paged, with the request's reply.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Paginate {
    /// Their listener.
    pub listener: Arc<Listener>,
    /// The request they came in.
    pub request_id: Arc<str>,
    /// When that request arrived (Unix ms).
    pub received_at_ms: i64,
    /// The provider's delivery id, when verification found one.
    pub delivery_id: Option<String>,
    /// Mock output: each record is marked `"mock": true`.
    pub mock: bool,
    /// The parsed records (those that satisfy the listener's schema, when it has one).
    pub records: Vec<Record>,
    /// Each record's place in its request when some were quarantined, so ids stay the request's
    /// (`{request_id}-{index}`); `None`: 0, 1, 2, …
    pub indexes: Option<Vec<usize>>,
    /// Records that failed the listener's schema, for the quarantine topic.
    pub quarantined: Vec<Quarantined>,
    /// The request's headers and query, for a listener whose CloudEvents `type` template may use
    /// them; `None` for every other listener.
    pub request: Option<Box<crate::pipeline::request_view::RequestView>>,
    /// What the reply says once every page holding the records is acknowledged.
    pub accepted: Accepted,
    /// The request's answer.
    pub reply: Reply,
}

/// A request waiting for one of its pages: its id (a page header) and its share of the reply.
type Waiter = (Arc<str>, PageShare);

/// The open pages of the whole process, shared by the PageActor of every worker.
///
/// One open page per listener for the instance, not per HTTP thread: concurrent requests that
/// land on different HTTP threads share a page, so pages are fuller and each Kafka message (and
/// its acknowledgement and wake-ups) carries more records. Every HTTP thread
/// adds to it and publishes the pages it closes on its own thread; the lock is held only to
/// add serialized records or take a page, never across I/O.
#[derive(Default)]
pub struct OpenPages {
    inner: Mutex<OpenPagesState>,
    /// How many partitions a topic has, for listeners with an ordering key.
    partitions: Option<PartitionCount>,
}

/// How many partitions a topic has (`PageProducer::partition_count`).
pub type PartitionCount = Arc<dyn Fn(&str) -> Result<i32, PublishError> + Send + Sync>;

#[derive(Default)]
struct OpenPagesState {
    pager: Pager<Waiter>,
    /// Listener of each open page's group (pages keep their listener's topic at open time).
    listeners: HashMap<PageGroup, Arc<Listener>>,
    /// Pages of each group being published right now, by any worker.
    publishing: HashMap<PageGroup, usize>,
}

impl OpenPages {
    /// Open pages whose listeners with an ordering key learn their topic's partitions from
    /// `partitions`; without it (`Default`), such listeners' requests are refused (503).
    pub fn with_partitions(partitions: PartitionCount) -> OpenPages {
        OpenPages {
            inner: Mutex::default(),
            partitions: Some(partitions),
        }
    }

    /// The partitions of `topic`.
    fn partition_count(&self, topic: &str) -> Result<i32, PublishError> {
        match &self.partitions {
            Some(partitions) => partitions(topic),
            None => Err(PublishError::Delivery("no partition count for ordered pages".into())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OpenPagesState> {
        // A panic while holding the lock cannot leave the pager half-updated in a way that
        // matters more than losing the process; keep serving.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes every open page now, through `producer` directly (not through a page stage),
    /// and answers the requests waiting for them; returns how many pages it published.
    ///
    /// The graceful drain calls it once the instance stops accepting, so the last requests do
    /// not wait for `page_linger`, and `App::run` once more after the HTTP threads have stopped,
    /// so no record accepted into a page is left unpublished.
    pub async fn flush(&self, producer: &PageProducer) -> usize {
        let pages: Vec<_> = {
            let mut pages = self.lock();
            let closed = pages.pager.take_all();
            closed
                .into_iter()
                .filter_map(|page| pages.start_publishing(page))
                .collect()
        };
        let count = pages.len();
        let publishes = pages.into_iter().map(|(page, listener)| {
            let (message, waiters, group) = page_message(page, listener);
            let producer = producer.clone();
            async move {
                let result = store_page(producer, message).await;
                for (_, share) in waiters {
                    share.settle(result.clone());
                }
                self.lock().finish_publishing(&group);
            }
        });
        futures_util::future::join_all(publishes).await;
        count
    }
}

impl OpenPagesState {
    /// The group's open page with its listener, if it may go now (group commit).
    fn take_if_idle(&mut self, group: &PageGroup) -> Option<(ClosedPage<Waiter>, Arc<Listener>)> {
        if self.publishing.get(group).copied().unwrap_or(0) >= MAX_PUBLISHING {
            return None;
        }
        let page = self.pager.take(group)?;
        self.start_publishing(page)
    }

    /// Counts `page` as being published and pairs it with its listener.
    fn start_publishing(&mut self, page: ClosedPage<Waiter>) -> Option<(ClosedPage<Waiter>, Arc<Listener>)> {
        let Some(listener) = self.listeners.get(&page.group).cloned() else {
            debug_assert!(false, "page of an unknown listener");
            return None;
        };
        *self.publishing.entry(page.group.clone()).or_default() += 1;
        Some((page, listener))
    }

    /// A publish of the group finished; forgets groups with nothing open or in flight.
    fn finish_publishing(&mut self, group: &PageGroup) {
        let in_flight = match self.publishing.get_mut(group) {
            Some(count) => {
                *count = count.saturating_sub(1);
                *count
            }
            None => 0,
        };
        if in_flight == 0 && !self.pager.has_open(group) {
            self.publishing.remove(group);
            self.listeners.remove(group);
        }
    }
}

/// The page stage: pages records and answers their requests when Kafka has acknowledged them.
pub struct PageActor {
    next: Stage<PublishPage>,
    linger: Duration,
    max_page_bytes: usize,
    pages: Arc<OpenPages>,
    /// The linger timer this actor armed for each group's open page, with the page's
    /// generation: cancelled when the page goes out before it fires (most pages do, as soon
    /// as the publish ahead of them completes), so an idle HTTP thread is not woken for nothing.
    lingering: HashMap<PageGroup, (u64, SpawnHandle)>,
}

/// Pages of one group (listener, or listener and partition) the instance publishes at once before new records wait for a page.
///
/// This is group commit: while nothing is in flight a page goes out at once (no added
/// latency at low load); while a publish is in flight, records of concurrent requests
/// gather in the open page, which goes out as soon as it completes (or when it is full,
/// or after `page_linger` at the latest). Pages grow with load instead of with a timer.
/// Full pages always go out at once, so this bounds the wait, not the throughput.
///
/// One rather than two: on the 2-core load benchmark pages went from ~12 to ~16 records and
/// CPU per request from ~38 to ~36 µs (the Kafka side costs ~100 µs of CPU per page).
const MAX_PUBLISHING: usize = 1;

impl PageActor {
    /// A page stage forwarding to `next`, sharing `pages` with the other HTTP threads' page stages.
    pub fn new(next: Stage<PublishPage>, linger: Duration, max_page_bytes: usize, pages: Arc<OpenPages>) -> PageActor {
        PageActor {
            next,
            linger,
            max_page_bytes,
            pages,
            lingering: HashMap::new(),
        }
    }

    /// Publishes a page on this HTTP thread; when it is done, the group's next page may go.
    fn publish(&mut self, page: ClosedPage<Waiter>, listener: Arc<Listener>, ctx: &mut Context<Self>) {
        self.cancel_linger_if_gone(&page.group, ctx);
        let next = self.next.clone();
        let (message, waiters, group) = page_message(page, listener);
        // Spawned on this actor's context so a full RetryStore mailbox delays this page only.
        ctx.spawn(
            async move {
                let result = next.forward(message).await.unwrap_or(Err(PublishError::Closed));
                for (_, share) in waiters {
                    // A request whose deadline passed is answered into the void: fine.
                    share.settle(result.clone());
                }
            }
            .into_actor(self)
            .map(move |(), actor, ctx| {
                let next_page = {
                    let mut pages = actor.pages.lock();
                    pages.finish_publishing(&group);
                    pages.take_if_idle(&group)
                };
                if let Some((page, listener)) = next_page {
                    actor.publish(page, listener, ctx);
                }
            }),
        );
    }
}

impl PageActor {
    /// Cancels the linger timer armed for the group's page once that page is no longer open
    /// (this publish, or another HTTP thread's, took it).
    fn cancel_linger_if_gone(&mut self, group: &PageGroup, ctx: &mut Context<Self>) {
        let Some((generation, _)) = self.lingering.get(group) else {
            return;
        };
        if self.pages.lock().pager.is_open(group, *generation) {
            return;
        }
        if let Some((_, timer)) = self.lingering.remove(group) {
            ctx.cancel_future(timer);
        }
    }

    /// Publishes a request's quarantine pages at once, beside its pages (they are not shared
    /// between requests, so they wait for nothing), each settling a share of its reply.
    fn publish_quarantine(
        &mut self,
        quarantine: Vec<QuarantinePage>,
        listener: &Arc<Listener>,
        request_id: &Arc<str>,
        shares: &PageShares,
        ctx: &mut Context<Self>,
    ) {
        for page in quarantine {
            let share = shares.share();
            let next = self.next.clone();
            let publish = PublishPage {
                listener: listener.clone(),
                page_id: page.page_id,
                payload: page.payload,
                request_ids: vec![request_id.clone()],
                record_count: page.record_count,
                destination: Destination::Quarantine,
                partition: None,
            };
            ctx.spawn(
                async move {
                    share.settle(next.forward(publish).await.unwrap_or(Err(PublishError::Closed)));
                }
                .into_actor(self),
            );
        }
    }
}

impl Actor for PageActor {
    type Context = Context<Self>;
    // No flush in `stopping`: a publish spawned there would race the HTTP thread's arbiter
    // shutting down. Pages left open at shutdown are published by `OpenPages::flush`, called by
    // the drain and again by `App::run` on the system's own arbiter once the threads have stopped.
}

/// The page message of a closed page, with the requests waiting for it and its group.
fn page_message(page: ClosedPage<Waiter>, listener: Arc<Listener>) -> (PublishPage, Vec<Waiter>, PageGroup) {
    let page_id = crate::pipeline::new_id();
    let created_at = rfc3339_millis(crate::pipeline::unix_millis_now());
    let payload = match page.group.partition {
        None => wire::serialize_page(listener.id(), &page_id, &created_at, &page.records),
        Some(_) => wire::serialize_ordered_page(listener.id(), &page_id, &created_at, &page.records),
    };
    let mut request_ids: Vec<Arc<str>> = page.waiters.iter().map(|(id, _)| id.clone()).collect();
    request_ids.dedup();
    let message = PublishPage {
        listener,
        page_id,
        payload,
        request_ids,
        record_count: page.records.len(),
        destination: Destination::Pages,
        partition: page.group.partition,
    };
    (message, page.waiters, page.group)
}

impl Handler<Admitted<Paginate>> for PageActor {
    type Result = ();

    fn handle(&mut self, admitted: Admitted<Paginate>, ctx: &mut Context<Self>) {
        let message = admitted.into_message();
        if message.listener.events.is_some() {
            // A listener publishing CloudEvents: one event per record, no page (`events`).
            return self.publish_events(message, ctx);
        }
        let serialized = serialize_records(&message, self.max_page_bytes)
            .and_then(|serialized| Ok((serialized, quarantine_pages(&message, self.max_page_bytes)?)));
        let ((serialized, keys), quarantine) = match serialized {
            Ok(serialized) => serialized,
            Err(error) => return message.reply.refuse(error),
        };
        let listener = message.listener;
        // A listener with an ordering key: its records grouped by the partition of their keys,
        // in the order received; any other: one group, the listener's (as always).
        let partitions = match listener.ordering {
            None => None,
            Some(_) => match self.pages.partition_count(&listener.topic) {
                Ok(partitions) => Some(partitions),
                Err(error) => return message.reply.refuse(IngestError::Unavailable(error)),
            },
        };
        // Answered when the last page holding one of its records settles, quarantine pages included.
        let shares = message.reply.share_among_pages(message.accepted);
        let request_id = message.request_id;
        self.publish_quarantine(quarantine, &listener, &request_id, &shares, ctx);
        if serialized.is_empty() {
            // Every record was quarantined: the quarantine pages' shares answer the request.
            return;
        }
        // Without an ordering key, the listener's one group (no allocation on this path).
        let (mut one, mut several);
        let groups: &mut dyn Iterator<Item = (PageGroup, Vec<Vec<u8>>)> = match partitions {
            None => {
                one = std::iter::once((PageGroup::listener(listener.id().to_string()), serialized));
                &mut one
            }
            Some(partitions) => {
                several = by_partition(listener.id(), serialized, &keys, partitions).into_iter();
                &mut several
            }
        };
        let to_publish = {
            let mut pages = self.pages.lock();
            let mut to_publish = Vec::new();
            for (group, records) in groups {
                pages.listeners.insert(group.clone(), listener.clone());
                let (closed, opened) =
                    pages
                        .pager
                        .add(&group, records, listener.config.page_size, self.max_page_bytes, || {
                            (request_id.clone(), shares.share())
                        });
                to_publish.extend(closed.into_iter().filter_map(|page| pages.start_publishing(page)));
                if self.linger.is_zero() {
                    to_publish.extend(pages.pager.take(&group).and_then(|page| pages.start_publishing(page)));
                } else {
                    to_publish.extend(pages.take_if_idle(&group));
                    if let Some(generation) = opened.filter(|generation| pages.pager.is_open(&group, *generation)) {
                        // The upper bound on the wait, should publishes stall.
                        let timer_group = group.clone();
                        let timer = ctx.run_later(self.linger, move |actor, ctx| {
                            let group = timer_group;
                            if actor
                                .lingering
                                .get(&group)
                                .is_some_and(|(armed, _)| *armed == generation)
                            {
                                actor.lingering.remove(&group);
                            }
                            let page = {
                                let mut pages = actor.pages.lock();
                                let page = pages.pager.take_generation(&group, generation);
                                page.and_then(|page| pages.start_publishing(page))
                            };
                            if let Some((page, listener)) = page {
                                actor.publish(page, listener, ctx);
                            }
                        });
                        // A timer still armed for an older page of the group is for a page
                        // that is gone (published by another HTTP thread).
                        if let Some((_, stale)) = self.lingering.insert(group.clone(), (generation, timer)) {
                            ctx.cancel_future(stale);
                        }
                    }
                }
            }
            to_publish
        };
        for (page, listener) in to_publish {
            self.publish(page, listener, ctx);
        }
    }
}

/// The serialized records of a request to a listener with an ordering key, grouped by the
/// partition of each record's key (`keys`, one per record) in the order they came.
fn by_partition(
    listener_id: &str,
    records: Vec<Vec<u8>>,
    keys: &[String],
    partitions: i32,
) -> Vec<(PageGroup, Vec<Vec<u8>>)> {
    debug_assert_eq!(records.len(), keys.len());
    let mut groups: Vec<(PageGroup, Vec<Vec<u8>>)> = Vec::new();
    for (record, key) in records.into_iter().zip(keys) {
        let partition = Some(ordering::partition_for(key, partitions));
        match groups.iter_mut().find(|(group, _)| group.partition == partition) {
            Some((_, records)) => records.push(record),
            None => groups.push((
                PageGroup {
                    listener_id: listener_id.to_string(),
                    partition,
                },
                vec![record],
            )),
        }
    }
    groups
}

/// The serialized records of a request and, for a listener with an ordering key, each one's
/// key (empty otherwise).
type Serialized = (Vec<Vec<u8>>, Vec<String>);

/// Serializes every record of a request, rejecting the whole request if one is too large,
/// before any of its records enters a page.
fn serialize_records(message: &Paginate, max_page_bytes: usize) -> Result<Serialized, IngestError> {
    let listener = &message.listener;
    let received_at = rfc3339_millis(message.received_at_ms);
    let mut out = Vec::with_capacity(message.records.len());
    let mut keys = Vec::new();
    for (position, record) in message.records.iter().enumerate() {
        let index = message.indexes.as_ref().map_or(position, |indexes| indexes[position]);
        let (trace_key, data_uri) = trace_key_and_data_uri(listener, record)?;
        let fields = wire::RecordFields {
            id: &wire::record_id(&message.request_id, index),
            request_id: &message.request_id,
            trace_key: &trace_key,
            data_uri: data_uri.as_deref(),
            received_at: &received_at,
            delivery_id: message.delivery_id.as_deref(),
            mock: message.mock,
            data_json: record.json(),
        };
        let bytes = match listener.ordering_key_of(record) {
            None => wire::serialize_record(&fields),
            Some(key) => {
                // A failed template: strict refuses the request, otherwise the empty key (the
                // records without a key share one order).
                let key = match key {
                    Ok(key) => key,
                    Err(reason) => {
                        template_failed(listener, "ordering_key", "ordering key", reason)?.unwrap_or_default()
                    }
                };
                let bytes = wire::serialize_ordered_record(&fields, &key);
                keys.push(key);
                bytes
            }
        };
        // `+ 1` matches the pager's cost of a record (its separating comma).
        if bytes.len() + 1 > max_page_bytes {
            return Err(IngestError::RecordTooLarge { limit: max_page_bytes });
        }
        out.push(bytes);
    }
    Ok((out, keys))
}

/// A record's trace key (its template's, or the default) and data URI (its template's, if any).
fn trace_key_and_data_uri(listener: &Listener, record: &Record) -> Result<(String, Option<String>), IngestError> {
    let trace_key = if listener.has_trace_key_template() {
        match listener.render_trace_key(record) {
            Ok(trace_key) => Some(trace_key),
            Err(reason) => template_failed(listener, "trace_key", "trace key", reason)?,
        }
    } else {
        None
    };
    let trace_key = trace_key.unwrap_or_else(|| default_trace_key(record));
    let data_uri = match listener.render_data_uri(record) {
        Some(Ok(uri)) => Some(uri),
        Some(Err(reason)) => template_failed(listener, "data_uri", "data URI", reason)?,
        None => None,
    };
    Ok((trace_key, data_uri))
}

/// A quarantine page, serialized.
struct QuarantinePage {
    page_id: String,
    payload: Vec<u8>,
    record_count: usize,
}

/// The request's quarantined records, with their errors, in pages of the listener's page size
/// and at most `max_page_bytes` (the pager's rules); refused as a whole, like the request's
/// other records, if one is too large on its own.
fn quarantine_pages(message: &Paginate, max_page_bytes: usize) -> Result<Vec<QuarantinePage>, IngestError> {
    if message.quarantined.is_empty() {
        return Ok(Vec::new());
    }
    let listener = &message.listener;
    let received_at = rfc3339_millis(message.received_at_ms);
    let mut records = Vec::with_capacity(message.quarantined.len());
    for quarantined in &message.quarantined {
        let bytes = wire::serialize_quarantined_record(&wire::QuarantinedFields {
            id: &wire::record_id(&message.request_id, quarantined.index),
            request_id: &message.request_id,
            received_at: &received_at,
            delivery_id: message.delivery_id.as_deref(),
            mock: message.mock,
            errors: &quarantined.violations.errors,
            errors_truncated: quarantined.violations.truncated,
            data_json: quarantined.record.json(),
        });
        if bytes.len() + 1 > max_page_bytes {
            return Err(IngestError::RecordTooLarge { limit: max_page_bytes });
        }
        records.push(bytes);
    }
    let mut pager = Pager::<()>::default();
    let group = PageGroup::listener(listener.id().to_string());
    let (mut pages, _) = pager.add(&group, records, listener.config.page_size, max_page_bytes, || ());
    pages.extend(pager.take(&group));
    let created_at = rfc3339_millis(crate::pipeline::unix_millis_now());
    Ok(pages
        .into_iter()
        .map(|page| {
            let page_id = crate::pipeline::new_id();
            QuarantinePage {
                payload: wire::serialize_quarantine_page(listener.id(), &page_id, &created_at, &page.records),
                record_count: page.records.len(),
                page_id,
            }
        })
        .collect())
}

/// A trace key or data URI template failed on a record: counted; a strict listener refuses the
/// request, any other gets `Ok(None)` and uses the fallback (default trace key, null data URI).
fn template_failed(
    listener: &Listener,
    template: &'static str,
    what: &'static str,
    reason: String,
) -> Result<Option<String>, IngestError> {
    TemplateFailed {
        listener: listener.id(),
        template,
        reason: &reason,
    }
    .emit();
    if listener.config.strict_templates {
        return Err(IngestError::Template { what, reason });
    }
    Ok(None)
}

/// The default trace key: the record's own `id` when it is an object with a non-empty string
/// or a number `id`, otherwise the first 16 bytes of the SHA-256 of its JSON text, in hex — the
/// same record always gets the same key.
pub fn default_trace_key(record: &Record) -> String {
    let json = record.json();
    if json.starts_with('{') {
        // The last `id` member, as in a parsed object.
        let id = record
            .noted_id()
            .unwrap_or_else(|| crate::pipeline::parse::json::member_of_valid_object(json, "id"));
        match id.and_then(|id| id.as_bytes().first().map(|first| (id, *first))) {
            Some((id, b'"')) => {
                if let Ok(id) = serde_json::from_str::<String>(id) {
                    if !id.is_empty() {
                        return id;
                    }
                }
            }
            Some((id, b'-' | b'0'..=b'9')) => {
                if let Ok(number) = serde_json::from_str::<serde_json::Number>(id) {
                    return number.to_string();
                }
            }
            _ => {}
        }
    }
    let digest = Sha256::digest(json.as_bytes());
    let mut key = String::with_capacity(32);
    for byte in &digest[..16] {
        use std::fmt::Write;
        let _ = write!(key, "{byte:02x}");
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The records of one request to a listener configured by `listener_toml`, serialized.
    fn serialize_for(listener_toml: &str, record: serde_json::Value) -> Result<serde_json::Value, IngestError> {
        let message = Paginate {
            listener: crate::pipeline::testing::listener(listener_toml),
            request_id: Arc::from("r1"),
            received_at_ms: 0,
            delivery_id: None,
            mock: false,
            records: vec![Record::from_value(&record).unwrap()],
            indexes: None,
            quarantined: Vec::new(),
            request: None,
            accepted: Accepted::default(),
            reply: Reply::new().0,
        };
        let (serialized, _) = serialize_records(&message, 1 << 20)?;
        Ok(serde_json::from_slice(&serialized[0]).unwrap())
    }

    fn failures(template: &str) -> u64 {
        crate::telemetry::METRICS
            .template_failures
            .with_label_values(&["t", template])
            .get()
    }

    #[test]
    fn template_helpers_render_into_the_record() {
        let record = serialize_for(
            "trace_key_template = '{{join \"_\" a b}}'\ndata_uri_template = 'https://x/{{lowercase a}}'",
            json!({"a": "X", "b": "y"}),
        )
        .unwrap();
        assert_eq!(record["trace_key"], "X_y");
        assert_eq!(record["data_uri"], "https://x/x");
    }

    #[test]
    fn template_failures_fall_back_unless_strict() {
        let data = json!({"id": "A1", "a": 1});
        let lenient = "trace_key_template = '{{divide a 0}}'\ndata_uri_template = 'https://x/{{add a \"one\"}}'";
        let (trace_keys, data_uris) = (failures("trace_key"), failures("data_uri"));
        let record = serialize_for(lenient, data.clone()).unwrap();
        assert_eq!(record["trace_key"], "A1", "the default trace key");
        assert_eq!(record["data_uri"], serde_json::Value::Null);
        // Tests run in parallel and share the process-wide metric: it grew, by at least one.
        assert!(failures("trace_key") > trace_keys);
        assert!(failures("data_uri") > data_uris);

        let strict = format!("{lenient}\nstrict_templates = true");
        match serialize_for(&strict, data.clone()) {
            Err(IngestError::Template { what, reason }) => {
                assert_eq!(what, "trace key");
                assert!(reason.contains("division by zero"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        match serialize_for(
            "data_uri_template = 'https://x/{{b}}'\nstrict_templates = true",
            data.clone(),
        ) {
            Err(IngestError::Template { what, .. }) => assert_eq!(what, "data URI"),
            other => panic!("{other:?}"),
        }
        // Not strict: a missing field is empty.
        let record = serialize_for("data_uri_template = 'https://x/{{b}}'", data).unwrap();
        assert_eq!(record["data_uri"], "https://x/");
    }

    #[test]
    fn default_trace_key_prefers_id_then_hash() {
        let key = |value: serde_json::Value| default_trace_key(&Record::from_value(&value).unwrap());
        assert_eq!(key(json!({"id": "A1"})), "A1");
        assert_eq!(key(json!({"sku": 1, "id": 7})), "7");
        assert_eq!(key(json!({"id": -7.5})), "-7.5");
        let repeated = crate::pipeline::parse::records::parse_records(
            br#"{"id":"first","x":1,"id":"last"}"#,
            Some("application/json"),
            None,
            &Default::default(),
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            default_trace_key(&repeated),
            "last",
            "the last id wins, as in a parsed object"
        );
        let hashed = key(json!({"sku": "x"}));
        assert_eq!(hashed.len(), 32);
        assert_eq!(hashed, key(json!({"sku": "x"})));
        assert_ne!(hashed, key(json!({"sku": "y"})));
        // No usable id: empty, not a scalar, or not an object's member.
        for value in [
            json!({"id": ""}),
            json!({"id": {"x": 1}}),
            json!({"id": null}),
            json!(["A1"]),
            json!("A1"),
        ] {
            assert_eq!(key(value.clone()).len(), 32, "{value}");
        }
    }

    mod flush {
        use super::*;
        use crate::kafka::embedded::EmbeddedCluster;
        use crate::pipeline::testing;

        /// Pages left open (as when a drain starts, or the HTTP threads have stopped) are
        /// published by `flush` alone, and the requests waiting for them are answered.
        #[actix::test]
        async fn flush_publishes_every_open_page_and_answers_its_requests() {
            let cluster = EmbeddedCluster::start().unwrap();
            let settings = testing::settings("[kafka]\nmessage_timeout_ms = 8000\n[[listeners]]\nid = \"t\"\n");
            let listener = testing::listener_of(&settings);
            cluster.create_topic(&listener.topic, 1).unwrap();
            let producer = PageProducer::new(&settings.kafka, &cluster.bootstrap_servers()).unwrap();
            let pages = OpenPages::default();
            let (reply, mut awaited) = Reply::new();
            let shares = reply.share_among_pages(Accepted {
                record_count: 2,
                ..Accepted::default()
            });
            {
                let mut state = pages.lock();
                let group = PageGroup::listener("t".into());
                state.listeners.insert(group.clone(), listener.clone());
                let records = vec![br#"{"id":"a"}"#.to_vec(), br#"{"id":"b"}"#.to_vec()];
                let (closed, opened) = state
                    .pager
                    .add(&group, records, 20, 1 << 20, || (Arc::from("r1"), shares.share()));
                assert!(closed.is_empty() && opened.is_some(), "one open page");
            }
            drop(shares);
            assert!(awaited.try_outcome().is_none(), "waiting for its page");

            assert_eq!(pages.flush(&producer).await, 1);
            assert_eq!(awaited.outcome().await.unwrap().record_count, 2);
            assert_eq!(pages.flush(&producer).await, 0, "nothing is left open");
            let state = pages.lock();
            assert!(
                state.listeners.is_empty() && state.publishing.is_empty(),
                "the listener is forgotten"
            );
        }
    }

    mod stage {
        use super::*;
        use crate::pipeline::reply::AwaitedReply;
        use crate::pipeline::stage::probe::{probe_answering, Probe};
        use crate::pipeline::testing::listener;

        /// A page stage publishing at once (no linger) into a probe answering with `kafka`.
        fn page_stage(
            max_page_bytes: usize,
            kafka: impl Fn(&PublishPage) -> Result<(), PublishError> + 'static,
        ) -> (Stage<Paginate>, Probe<PublishPage>) {
            let (next, probe) = probe_answering(kafka);
            let actor = PageActor::new(next, Duration::ZERO, max_page_bytes, Arc::default());
            (Stage::start("page", 4, actor), probe)
        }

        fn paginate(listener: &Arc<Listener>, records: &[serde_json::Value]) -> (Paginate, AwaitedReply) {
            let (reply, awaited) = Reply::new();
            let message = Paginate {
                listener: listener.clone(),
                request_id: Arc::from("r1"),
                received_at_ms: 0,
                delivery_id: None,
                mock: true,
                records: records.iter().map(|value| Record::from_value(value).unwrap()).collect(),
                indexes: None,
                quarantined: Vec::new(),
                request: None,
                accepted: Accepted {
                    record_count: records.len(),
                    ..Accepted::default()
                },
                reply,
            };
            (message, awaited)
        }

        #[actix::test]
        async fn answers_the_request_once_its_page_is_acknowledged() {
            let (stage, probe) = page_stage(1 << 20, |_| Ok(()));
            let (message, awaited) = paginate(&listener(""), &[json!({"id": "a"}), json!({"id": "b"})]);
            stage.forward(message).await.unwrap();
            assert_eq!(awaited.outcome().await.unwrap().record_count, 2);
            let pages = probe.drain();
            assert_eq!(pages.len(), 1);
            assert_eq!(pages[0].record_count, 2);
            assert_eq!(pages[0].request_ids, vec![Arc::<str>::from("r1")]);
            let page: serde_json::Value = serde_json::from_slice(&pages[0].payload).unwrap();
            assert_eq!(page["records"][1]["trace_key"], "b");
            assert_eq!(page["records"][0]["mock"], true);
        }

        /// An ordering key: a request's records go to one page per partition of their keys, in
        /// the order received, as version 2 pages carrying each record's key; records without
        /// a value there share the empty key; without a partition count the request is refused.
        #[actix::test]
        async fn an_ordering_key_pages_records_by_the_partition_of_their_key() {
            let (next, probe) = probe_answering(|_| Ok(()));
            let pages = Arc::new(OpenPages::with_partitions(Arc::new(|_: &str| Ok(4))));
            let stage = Stage::start("page", 4, PageActor::new(next, Duration::ZERO, 1 << 20, pages));
            let customers = ["c-1", "c-2", "c-1", "c-3", "c-2", "c-1"];
            let mut records: Vec<serde_json::Value> = customers
                .iter()
                .enumerate()
                .map(|(n, customer)| json!({"customer": {"id": customer}, "n": n}))
                .collect();
            records.push(json!({"n": 6}));
            let ordered = listener("ordering_key = \"customer.id\"");
            let (message, awaited) = paginate(&ordered, &records);
            stage.forward(message).await.unwrap();
            assert_eq!(awaited.outcome().await.unwrap().record_count, 7);
            let published = probe.drain();
            let mut seen = Vec::new();
            for page in &published {
                let body: serde_json::Value = serde_json::from_slice(&page.payload).unwrap();
                assert_eq!(body["version"], 2);
                let partition = page.partition.expect("an ordered page names its partition");
                for record in body["records"].as_array().unwrap() {
                    let key = record["ordering_key"].as_str().unwrap();
                    assert_eq!(ordering::partition_for(key, 4), partition, "{key}");
                    seen.push((key.to_string(), record["data"]["n"].as_u64().unwrap()));
                }
            }
            assert_eq!(seen.len(), 7, "every record once");
            for key in ["c-1", "c-2", "c-3", ""] {
                let order: Vec<u64> = seen.iter().filter(|(k, _)| k == key).map(|(_, n)| *n).collect();
                let expected: Vec<u64> = records
                    .iter()
                    .filter(|r| r["customer"]["id"].as_str().unwrap_or("") == key)
                    .map(|r| r["n"].as_u64().unwrap())
                    .collect();
                assert_eq!(order, expected, "key {key:?} keeps its order");
            }
            let partitions: std::collections::BTreeSet<i32> = published.iter().filter_map(|p| p.partition).collect();
            assert_eq!(
                partitions.len(),
                published.len(),
                "one page per partition for one request"
            );

            // A listener without one: one page, version 1, no partition, no key.
            let (stage, probe) = page_stage(1 << 20, |_| Ok(()));
            let (message, awaited) = paginate(&listener(""), &records);
            stage.forward(message).await.unwrap();
            awaited.outcome().await.unwrap();
            let published = probe.drain();
            assert_eq!((published.len(), published[0].partition), (1, None));
            let body: serde_json::Value = serde_json::from_slice(&published[0].payload).unwrap();
            assert_eq!(body["version"], 1);
            assert!(body["records"][0].get("ordering_key").is_none());

            // No partition count (the broker cannot say): 503, nothing published.
            let (stage, probe) = page_stage(1 << 20, |_| Ok(()));
            let (message, awaited) = paginate(&ordered, &records);
            stage.forward(message).await.unwrap();
            assert!(matches!(awaited.outcome().await, Err(IngestError::Unavailable(_))));
            assert!(probe.drain().is_empty());
        }

        #[actix::test]
        async fn an_ordering_key_template_renders_the_key() {
            let (next, probe) = probe_answering(|_| Ok(()));
            let pages = Arc::new(OpenPages::with_partitions(Arc::new(|_: &str| Ok(2))));
            let stage = Stage::start("page", 4, PageActor::new(next, Duration::ZERO, 1 << 20, pages));
            let (message, awaited) = paginate(
                &listener("ordering_key = '{{region}}/{{customer_id}}'"),
                &[json!({"region": "eu", "customer_id": 7})],
            );
            stage.forward(message).await.unwrap();
            awaited.outcome().await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&probe.drain()[0].payload).unwrap();
            assert_eq!(body["records"][0]["ordering_key"], "eu/7");
        }

        #[actix::test]
        async fn a_page_kafka_refused_refuses_its_requests() {
            let (stage, _probe) = page_stage(1 << 20, |_| Err(PublishError::QueueFull));
            let (message, awaited) = paginate(&listener(""), &[json!({"id": "a"})]);
            stage.forward(message).await.unwrap();
            assert!(matches!(
                awaited.outcome().await,
                Err(IngestError::Unavailable(PublishError::QueueFull))
            ));
        }

        #[actix::test]
        async fn a_request_over_several_pages_waits_for_all_and_fails_with_any() {
            let three = [json!({"id": "a"}), json!({"id": "b"}), json!({"id": "c"})];
            let pages_of_two = listener("page_size = 2");
            let (stage, probe) = page_stage(1 << 20, |_| Ok(()));
            let (message, awaited) = paginate(&pages_of_two, &three);
            stage.forward(message).await.unwrap();
            assert_eq!(awaited.outcome().await.unwrap().record_count, 3);
            let sizes: Vec<usize> = probe.drain().iter().map(|page| page.record_count).collect();
            assert_eq!(sizes, vec![2, 1]);

            // The second page fails: the request is refused although the first was stored.
            let (stage, _probe) = page_stage(1 << 20, |page| match page.record_count {
                1 => Err(PublishError::Delivery("broker said no".into())),
                _ => Ok(()),
            });
            let (message, awaited) = paginate(&pages_of_two, &three);
            stage.forward(message).await.unwrap();
            assert!(matches!(
                awaited.outcome().await,
                Err(IngestError::Unavailable(PublishError::Delivery(_)))
            ));
        }

        fn quarantined(index: usize) -> Quarantined {
            use crate::json_schema::{Violation, Violations};
            Quarantined {
                index,
                record: Record::from_value(&json!({"n": index})).unwrap(),
                violations: Violations {
                    errors: vec![Violation {
                        instance_path: "/n".into(),
                        schema_path: "/properties/n/type".into(),
                        message: "value is not of type \"string\"".into(),
                    }],
                    truncated: index == 3,
                },
            }
        }

        #[actix::test]
        async fn schema_quarantined_records_go_to_quarantine_pages_the_request_waits_for() {
            let (stage, probe) = page_stage(1 << 20, |_| Ok(()));
            let (mut message, awaited) = paginate(&listener("page_size = 2"), &[json!({"id": "a"})]);
            message.indexes = Some(vec![1]);
            message.quarantined = vec![quarantined(0), quarantined(2), quarantined(3)];
            stage.forward(message).await.unwrap();
            assert_eq!(awaited.outcome().await.unwrap().record_count, 1);
            let published = probe.drain();
            let (pages, quarantine): (Vec<_>, Vec<_>) = published
                .iter()
                .partition(|page| page.destination == Destination::Pages);
            assert_eq!(pages.len(), 1);
            let page: serde_json::Value = serde_json::from_slice(&pages[0].payload).unwrap();
            assert_eq!(
                page["records"][0]["id"], "r1-1",
                "a paged record keeps its place in the request"
            );
            let sizes: Vec<usize> = quarantine.iter().map(|page| page.record_count).collect();
            assert_eq!(sizes, [2, 1], "quarantine pages follow the listener's page size");
            let first: serde_json::Value = serde_json::from_slice(&quarantine[0].payload).unwrap();
            assert_eq!(first["type"], "quarantine");
            assert_eq!(first["listener_id"], "t");
            let ids: Vec<&str> = first["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, ["r1-0", "r1-2"]);
            assert_eq!(first["records"][0]["request_id"], "r1");
            assert_eq!(first["records"][0]["data"], json!({"n": 0}));
            assert_eq!(first["records"][0]["errors"][0]["instance_path"], "/n");
            assert_eq!(first["records"][0]["errors_truncated"], false);
            let second: serde_json::Value = serde_json::from_slice(&quarantine[1].payload).unwrap();
            assert_eq!(second["records"][0]["errors_truncated"], true);
            assert_eq!(quarantine[0].request_ids, vec![Arc::<str>::from("r1")]);
        }

        #[actix::test]
        async fn a_request_whose_records_all_failed_their_schema_waits_for_the_quarantine() {
            // Every record quarantined: no page, and the request fails with its quarantine page.
            let (stage, probe) = page_stage(1 << 20, |page| match page.destination {
                Destination::Quarantine => Err(PublishError::QueueFull),
                Destination::Pages | Destination::Event(_) => Ok(()),
            });
            let (mut message, awaited) = paginate(&listener(""), &[]);
            message.indexes = Some(Vec::new());
            message.quarantined = vec![quarantined(0)];
            stage.forward(message).await.unwrap();
            assert!(matches!(
                awaited.outcome().await,
                Err(IngestError::Unavailable(PublishError::QueueFull))
            ));
            let published = probe.drain();
            assert_eq!(published.len(), 1);
            assert_eq!(published[0].destination, Destination::Quarantine);
        }

        #[actix::test]
        async fn a_record_over_the_page_limit_is_refused_before_any_page() {
            let (stage, probe) = page_stage(64, |_| Ok(()));
            let (message, awaited) = paginate(&listener(""), &[json!({"id": "a", "padding": "x".repeat(100)})]);
            stage.forward(message).await.unwrap();
            assert!(matches!(
                awaited.outcome().await,
                Err(IngestError::RecordTooLarge { limit: 64 })
            ));
            assert!(probe.drain().is_empty());
        }
    }
}
