//! The import worker (`hookpipe worker`): consumes pages in a consumer group, imports each into
//! its listener's target, records failed records in the errors topic (each with its retry data,
//! unless the listener stores none), resolves open errors a success makes obsolete, and only then
//! stores the page's offset for commit.
//!
//! At least once: an offset is stored (and later committed, every `worker.commit_interval_ms`,
//! on rebalance and at shutdown) only after every record of its page is imported or recorded
//! as an error, so a crash at any point re-imports at most the pages after the last commit.
//! Pages are processed one at a time on the thread that polls the consumer, so a rebalance
//! (served inside `poll`) never lands in the middle of a page.

pub mod backoff;
pub mod file_target;
pub mod http_target;
pub mod import;
pub mod metrics_server;
pub mod page;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{join, join_all};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use serde_json::Value;

use crate::config::{worker::TargetConfig, Settings};
use crate::import_errors::{do_not_store_reason, too_large_reason, ErrorEntry, ErrorsStore};
use crate::pipeline::{rfc3339_millis, unix_millis_now};
use crate::telemetry::events::{ConsumerLag, PageImportTimed, PageImported, PageMalformed};
use file_target::JsonLinesTarget;
use http_target::HttpTarget;
use import::{import_page, Abandoned, Pacer, RecordOutcome, Target};
use page::IncomingPage;

/// How long one `poll` waits before the loop checks for shutdown again.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Room on top of `worker.page_timeout_ms` for recording a page's errors before the group
/// considers the worker stuck.
const MAX_POLL_MARGIN_MS: u64 = 60_000;
/// How often librdkafka reports statistics (consumer lag).
const STATISTICS_INTERVAL_MS: u64 = 5_000;
/// Consumer errors repeat on every poll while a broker is down; one warning per period is enough.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How long creating the pages topics may take before the worker goes on without.
const TOPIC_CREATION_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait between attempts to record a page's errors while Kafka refuses them.
const MAX_WRITE_BACKOFF: Duration = Duration::from_secs(10);

/// Asks a worker to stop: it finishes the page in hand, within a grace period.
#[derive(Clone, Debug)]
pub struct Shutdown {
    state: Arc<ShutdownState>,
}

#[derive(Debug)]
struct ShutdownState {
    requested_at: Mutex<Option<Instant>>,
    grace: Duration,
}

impl Shutdown {
    /// A handle whose page in hand may take `grace` to finish once stop is requested.
    pub fn new(grace: Duration) -> Shutdown {
        Shutdown {
            state: Arc::new(ShutdownState {
                requested_at: Mutex::new(None),
                grace,
            }),
        }
    }

    /// With the grace period of `worker.shutdown_timeout_secs`.
    pub fn for_settings(settings: &Settings) -> Shutdown {
        Shutdown::new(Duration::from_secs(settings.worker.shutdown_timeout_secs))
    }

    /// Requests the stop (the first request starts the grace period).
    pub fn request(&self) {
        let mut requested_at = self.state.requested_at.lock().unwrap_or_else(PoisonError::into_inner);
        requested_at.get_or_insert_with(Instant::now);
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.state
            .requested_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Whether the grace period of a requested stop is over.
    fn grace_over(&self) -> bool {
        self.state
            .requested_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() >= self.state.grace)
    }
}

/// Requests `shutdown` on SIGTERM or Ctrl-C (a thread with its own small runtime).
pub fn stop_on_signals(shutdown: Shutdown) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    use tokio::signal::unix::{signal, SignalKind};
    let (mut terminate, mut hangup) = runtime
        .block_on(async { Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::hangup())?)) })
        .map_err(|e| format!("cannot listen for SIGTERM and SIGHUP: {e}"))?;
    std::thread::Builder::new()
        .name("worker-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                use futures_util::future::{select, Either};
                let mut stop = select(Box::pin(terminate.recv()), Box::pin(tokio::signal::ctrl_c()));
                // A SIGHUP (a reload meant for the serve tier, a closed terminal) is logged and
                // ignored: the worker has nothing to reload.
                loop {
                    match select(stop, Box::pin(hangup.recv())).await {
                        Either::Left(_) => break,
                        Either::Right((_, pending)) => {
                            crate::telemetry::events::HangupIgnored { tier: "worker" }.emit();
                            stop = pending;
                        }
                    }
                }
            });
            tracing::info!("stop requested: finishing the page in hand, then committing");
            shutdown.request();
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// Consumer callbacks: statistics become the lag gauge, rebalances are logged.
struct WorkerContext;

impl ClientContext for WorkerContext {
    /// librdkafka's own log lines (group membership, broker connections) go through `tracing`.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        crate::kafka::log_to_tracing(level, facility, message);
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            let lag: i64 = stats
                .partitions
                .values()
                .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                .map(|p| p.consumer_lag)
                .sum();
            ConsumerLag { topic, lag }.emit();
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let describe = |list: &rdkafka::TopicPartitionList| {
            list.elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match rebalance {
            Rebalance::Assign(list) => tracing::info!(partitions = %describe(list), "partitions assigned"),
            Rebalance::Revoke(list) => tracing::info!(partitions = %describe(list), "partitions revoked"),
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
        }
    }
}

/// Targets by listener, and the default one.
struct Targets {
    by_listener: HashMap<String, Arc<dyn Target>>,
    default: Option<Arc<dyn Target>>,
}

impl Targets {
    fn build(settings: &Settings) -> Result<Targets, String> {
        let make = |key: &str, config: &TargetConfig| -> Result<Arc<dyn Target>, String> {
            Ok(match config {
                TargetConfig::Http(http) => {
                    Arc::new(HttpTarget::new(http.clone()).map_err(|e| format!("{key}.ca_file: {e}"))?)
                }
                TargetConfig::File { path } => {
                    Arc::new(JsonLinesTarget::file(path).map_err(|e| format!("{key}.path: {e}"))?)
                }
                TargetConfig::Stdout => Arc::new(JsonLinesTarget::stdout()),
            })
        };
        let mut by_listener = HashMap::new();
        for (listener, config) in &settings.worker.targets {
            by_listener.insert(listener.clone(), make(&format!("worker.targets.{listener}"), config)?);
        }
        let default = match &settings.worker.default_target {
            Some(config) => Some(make("worker.default_target", config)?),
            None => None,
        };
        Ok(Targets { by_listener, default })
    }

    fn get(&self, listener_id: &str) -> Option<&dyn Target> {
        self.by_listener
            .get(listener_id)
            .or(self.default.as_ref())
            .map(|target| target.as_ref())
    }
}

/// Real time; sleeps are cut short when the shutdown grace period ends.
struct LivePacer<'a> {
    shutdown: &'a Shutdown,
}

impl Pacer for LivePacer<'_> {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> bool {
        let end = Instant::now() + duration;
        loop {
            if self.shutdown.grace_over() {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn jitter(&self) -> f64 {
        // 53 random bits from a v4 UUID: uniform in [0, 1) without a random-number dependency.
        (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
    }

    fn must_abandon(&self) -> bool {
        self.shutdown.grace_over()
    }
}

/// What became of a page.
enum Step {
    /// Every record imported or recorded: the offset may be committed.
    Done,
    /// Given up at shutdown: the offset must not be committed.
    Abandoned,
}

/// A started worker: consumer subscribed, errors view loaded, metrics served.
pub struct Worker {
    consumer: BaseConsumer<WorkerContext>,
    runtime: tokio::runtime::Runtime,
    errors: Arc<ErrorsStore>,
    targets: Targets,
    topics: Vec<String>,
    metrics_addr: Option<SocketAddr>,
    page_timeout: Duration,
    retry_data_max_bytes: usize,
}

impl Worker {
    /// Creates the topics (with `kafka.create_topics`), opens the errors view, builds the
    /// targets, starts the metrics listener and subscribes to the pages topics.
    pub fn start(settings: &Settings, bootstrap: &str) -> Result<Worker, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the worker runtime: {e}"))?;
        let topics = settings.worker_topics();
        let create = settings.kafka.create_topics;
        let errors = runtime.block_on(async {
            if create {
                let creation = crate::kafka::topics::provision_worker(settings, bootstrap);
                // Brokers that ignore CreateTopics (the embedded mock cluster) would hold this
                // for a minute; the topics usually exist already, so go on and let the
                // subscription wait for them.
                match tokio::time::timeout(TOPIC_CREATION_TIMEOUT, creation).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "cannot create the pages topics; going on"),
                    Err(_) => tracing::warn!(
                        "creating the pages topics timed out; going on (with the embedded cluster of \
                         `hookpipe serve`, set kafka.create_topics = false)"
                    ),
                }
            }
            ErrorsStore::open(&settings.kafka, bootstrap, false).await
        })?;
        let targets = Targets::build(settings)?;
        if targets.default.is_none() {
            // Name the listeners this applies to, not those that have a target.
            let without_target: Vec<&str> = settings
                .listeners
                .iter()
                .map(|listener| listener.id.as_str())
                .filter(|id| !settings.worker.targets.contains_key(*id))
                .collect();
            tracing::warn!(
                ?without_target,
                "no worker.default_target: records of listeners without a target (those listed, and \
                 any created through the API) are recorded as errors"
            );
        }
        let worker = &settings.worker;
        let mut client_config = crate::kafka::base_client_config(&settings.kafka, bootstrap);
        // librdkafka only hands over lines up to this level; debug lines (with a `debug`
        // property) only when `HOOKPIPE_LOG` asks for `librdkafka=debug`.
        client_config.set_log_level(if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
            rdkafka::config::RDKafkaLogLevel::Debug
        } else {
            rdkafka::config::RDKafkaLogLevel::Info
        });
        let consumer: BaseConsumer<WorkerContext> = client_config
            .set("client.id", "hookpipe-worker")
            .set("group.id", &worker.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", worker.commit_interval_ms.to_string())
            // The at-least-once pattern: only offsets this loop stores (after the page) commit.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", worker.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (worker.session_timeout_ms / 3).clamp(100, 3_000).to_string(),
            )
            .set(
                "max.poll.interval.ms",
                (worker.page_timeout_ms + MAX_POLL_MARGIN_MS).to_string(),
            )
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string())
            .set("fetch.wait.max.ms", "200")
            .create_with_context(WorkerContext)
            .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
        for topic in topics.iter().filter(|t| !t.starts_with('^')) {
            // Exported from the start; librdkafka's first statistics replace it.
            ConsumerLag { topic, lag: 0 }.emit();
        }
        let subscription: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&subscription)
            .map_err(|e| format!("cannot subscribe to {}: {e}", topics.join(", ")))?;
        let metrics_addr = worker.metrics_listen.map(metrics_server::start).transpose()?;
        Ok(Worker {
            consumer,
            runtime,
            errors,
            targets,
            topics,
            metrics_addr,
            page_timeout: Duration::from_millis(worker.page_timeout_ms),
            retry_data_max_bytes: worker.retry_data_max_bytes,
        })
    }

    /// Where `GET /metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The topics (or patterns) consumed.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The errors view this worker writes to.
    pub fn errors(&self) -> &Arc<ErrorsStore> {
        &self.errors
    }

    /// Imports pages until `shutdown` is requested, then commits and leaves the group.
    pub fn run(self, shutdown: &Shutdown) {
        let mut last_error_log: Option<Instant> = None;
        while !shutdown.requested() {
            let message = match self.consumer.poll(POLL_INTERVAL) {
                None => continue,
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    if last_error_log.is_none_or(|at| at.elapsed() >= ERROR_LOG_INTERVAL) {
                        tracing::warn!(%error, "consuming pages failed; retrying");
                        last_error_log = Some(Instant::now());
                    }
                    continue;
                }
            };
            match self.process(&message, shutdown) {
                Step::Done => {
                    if let Err(error) = self.consumer.store_offset_from_message(&message) {
                        // The partition moved to another worker meanwhile: it imports the page again.
                        tracing::warn!(topic = message.topic(), partition = message.partition(), offset = message.offset(), %error,
                            "cannot store the offset of an imported page (partition revoked?)");
                    }
                }
                Step::Abandoned => {
                    tracing::warn!(
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        "shutdown grace period over: page left uncommitted, it will be imported again"
                    );
                    break;
                }
            }
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!("offsets committed; leaving the consumer group"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => tracing::warn!(%error, "final commit failed; the last pages may be imported again"),
        }
    }

    fn process(&self, message: &BorrowedMessage<'_>, shutdown: &Shutdown) -> Step {
        let topic = message.topic();
        let headers = page::headers_of(message);
        let (page, stores_retry_data) =
            match IncomingPage::from_message(message.payload().unwrap_or_default(), &headers) {
                Ok(incoming) => incoming,
                Err(reason) => {
                    PageMalformed {
                        topic,
                        partition: message.partition(),
                        offset: message.offset(),
                        reason: &reason,
                    }
                    .emit();
                    return Step::Done;
                }
            };
        let keep = stores_retry_data.then_some(self.retry_data_max_bytes);
        let pacer = LivePacer { shutdown };
        let started = Instant::now();
        let outcomes = match self.targets.get(&page.listener_id) {
            Some(target) => match import_page(target, &page, started + self.page_timeout, &pacer) {
                Ok(outcomes) => outcomes,
                Err(Abandoned) => return Step::Abandoned,
            },
            None => vec![
                RecordOutcome::Failed {
                    error:
                        "no target configured for this listener (worker.targets.<listener id> or worker.default_target)"
                            .into(),
                    status: None,
                    tries: 0,
                };
                page.records.len()
            ],
        };
        let listener = page.listener_id.as_str();
        PageImportTimed {
            listener,
            elapsed: started.elapsed(),
        }
        .emit();
        let (imported, failed, retried) = outcomes.iter().fold((0, 0, 0), |(i, f, r), outcome| match outcome {
            RecordOutcome::Imported { tries } => (i + 1, f, r + u64::from(tries.saturating_sub(1))),
            RecordOutcome::Failed { tries, .. } => (i, f + 1, r + u64::from(tries.saturating_sub(1))),
        });
        let settled = settle(&page, topic, keep, &outcomes, unix_millis_now(), &|trace_key| {
            self.errors.open_with_trace_key(listener, trace_key)
        });
        let mut wait = Duration::from_millis(250);
        let resolved = loop {
            match self.runtime.block_on(write(&self.errors, listener, &settled)) {
                Ok(resolved) => break resolved,
                Err(error) => {
                    tracing::warn!(listener, page_id = %page.page_id, %error,
                        "cannot record the page's errors in Kafka; retrying before committing the page");
                    if !pacer.sleep(wait) {
                        return Step::Abandoned;
                    }
                    wait = (wait * 2).min(MAX_WRITE_BACKOFF);
                }
            }
        };
        let with_retry_data = settled.errors.values().filter(|e| e.retry_data.is_some()).count() as u64;
        PageImported {
            listener,
            page_id: &page.page_id,
            imported,
            failed,
            with_retry_data,
            retried,
            resolved,
        }
        .emit();
        Step::Done
    }
}

/// The writes a page's outcomes call for.
#[derive(Debug, Default, PartialEq)]
struct Settled {
    /// New (or replaced) errors, by record id.
    errors: BTreeMap<String, ErrorEntry>,
    /// Open errors to resolve, by record id.
    resolve: BTreeSet<String>,
}

/// Decides, in record order, which errors to write and which to resolve: a failure opens (or
/// replaces) its record's error, with the record as its retry data when `keep` (the largest
/// record kept; `None`: the listener stores no retry data) allows; a success resolves its own
/// record's error and every open error of the listener with the same trace key, including
/// failures earlier in this very page.
fn settle(
    page: &IncomingPage,
    topic: &str,
    keep: Option<usize>,
    outcomes: &[RecordOutcome],
    now_ms: i64,
    open_with_trace_key: &dyn Fn(&str) -> Vec<String>,
) -> Settled {
    let mut settled = Settled::default();
    for (record, outcome) in page.records.iter().zip(outcomes) {
        let record_id = page::record_id(record);
        let trace_key = page::trace_key(record);
        match outcome {
            RecordOutcome::Imported { .. } => {
                // Its own error (a retried record) goes whatever its trace key.
                settled.errors.remove(record_id);
                settled.resolve.insert(record_id.to_string());
                if !trace_key.is_empty() {
                    settled.errors.retain(|_, entry| entry.trace_key != trace_key);
                    settled.resolve.extend(open_with_trace_key(trace_key));
                }
            }
            RecordOutcome::Failed { error, status, tries } => {
                settled.resolve.remove(record_id);
                let (retry_data, retry_data_missing) = retry_data_of(record, &page.listener_id, keep);
                let entry = ErrorEntry {
                    listener_id: page.listener_id.clone(),
                    record_id: record_id.to_string(),
                    request_id: page::text_field(record, "request_id").map(str::to_string),
                    trace_key: trace_key.to_string(),
                    data_uri: page::text_field(record, "data_uri").map(str::to_string),
                    error: error.clone(),
                    target_status: *status,
                    attempt: page::attempt(record),
                    tries: *tries,
                    failed_at: rfc3339_millis(now_ms),
                    failed_at_ms: now_ms,
                    received_at: page::text_field(record, "received_at").map(str::to_string),
                    page_id: page.page_id.clone(),
                    topic: topic.to_string(),
                    retry_data_stored: retry_data.is_some(),
                    retry_data,
                    retry_data_missing,
                    retry_requested_at: None,
                };
                settled.errors.insert(record_id.to_string(), entry);
            }
        }
    }
    settled
}

/// A failed record's retry data (the record as it was in its page), or why it has none.
fn retry_data_of(record: &Value, listener_id: &str, keep: Option<usize>) -> (Option<Value>, Option<String>) {
    let Some(max_bytes) = keep else {
        return (None, Some(do_not_store_reason(listener_id)));
    };
    let size = serde_json::to_vec(record).map_or(usize::MAX, |bytes| bytes.len());
    if size > max_bytes {
        tracing::warn!(
            listener = listener_id,
            record_id = page::record_id(record),
            size,
            max_bytes,
            "failed record over worker.retry_data_max_bytes: recorded without retry data"
        );
        return (None, Some(too_large_reason(size, max_bytes)));
    }
    (Some(record.clone()), None)
}

/// Writes a page's errors and resolutions, concurrently; returns how many errors were resolved.
async fn write(errors: &ErrorsStore, listener_id: &str, settled: &Settled) -> Result<u64, String> {
    let records = join_all(settled.errors.values().map(|entry| errors.record(entry)));
    let resolutions = join_all(settled.resolve.iter().map(|id| errors.resolve(listener_id, id)));
    let (recorded, resolved) = join(records, resolutions).await;
    recorded.into_iter().collect::<Result<Vec<()>, String>>()?;
    let resolved = resolved.into_iter().collect::<Result<Vec<bool>, String>>()?;
    Ok(resolved.into_iter().filter(|was_open| *was_open).count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed(error: &str) -> RecordOutcome {
        RecordOutcome::Failed {
            error: error.into(),
            status: Some(400),
            tries: 1,
        }
    }

    fn page(records: &[(&str, &str)]) -> IncomingPage {
        IncomingPage {
            listener_id: "orders".into(),
            page_id: "p1".into(),
            created_at: None,
            records: records
                .iter()
                .map(|(id, trace)| json!({"id": id, "trace_key": trace, "request_id": "q", "received_at": "t", "data": {}}))
                .collect(),
        }
    }

    #[test]
    fn failures_become_errors_with_their_context() {
        let page = page(&[("r-0", "A"), ("r-1", "B")]);
        let settled = settle(
            &page,
            "hookpipe.pages",
            Some(1 << 20),
            &[RecordOutcome::Imported { tries: 2 }, failed("HTTP 400: no")],
            42,
            &|_| Vec::new(),
        );
        assert_eq!(settled.resolve, BTreeSet::from(["r-0".to_string()]));
        let entry = &settled.errors["r-1"];
        assert_eq!(entry.trace_key, "B");
        assert_eq!(entry.error, "HTTP 400: no");
        assert_eq!(entry.target_status, Some(400));
        assert_eq!(entry.attempt, 1);
        assert_eq!(entry.failed_at_ms, 42);
        assert_eq!(entry.request_id.as_deref(), Some("q"));
        assert!(entry.retry_data_stored);
        assert_eq!(
            entry.retry_data.as_ref(),
            Some(&page.records[1]),
            "the record, as in its page"
        );
        assert_eq!(entry.retry_data_missing, None);
        assert_eq!(entry.topic, "hookpipe.pages");
        assert!(!settled.errors.contains_key("r-0"), "imported records keep nothing");
    }

    #[test]
    fn errors_keep_no_retry_data_when_the_listener_stores_none_or_the_record_is_too_big() {
        let page = page(&[("r-0", "A")]);
        let none = settle(&page, "t", None, &[failed("x")], 1, &|_| Vec::new());
        let entry = &none.errors["r-0"];
        assert!(!entry.retry_data_stored && entry.retry_data.is_none());
        assert!(entry.retry_refusal().unwrap().contains("do_not_store_retry_data"));
        let size = serde_json::to_vec(&page.records[0]).unwrap().len();
        let fits = settle(&page, "t", Some(size), &[failed("x")], 1, &|_| Vec::new());
        assert!(
            fits.errors["r-0"].retry_data.is_some(),
            "a record of exactly the cap is kept"
        );
        let over = settle(&page, "t", Some(size - 1), &[failed("x")], 1, &|_| Vec::new());
        let entry = &over.errors["r-0"];
        assert!(!entry.retry_data_stored && entry.retry_data.is_none());
        assert!(entry
            .retry_refusal()
            .unwrap()
            .contains("over worker.retry_data_max_bytes"));
    }

    #[test]
    fn a_later_success_resolves_open_errors_and_earlier_failures_of_its_trace_key() {
        let page = page(&[("r-0", "A"), ("r-1", "A"), ("r-2", "C"), ("r-3", "C")]);
        let open = |trace: &str| -> Vec<String> {
            match trace {
                "A" => vec!["old-1".into(), "old-2".into()],
                _ => Vec::new(),
            }
        };
        let settled = settle(
            &page,
            "t",
            None,
            &[
                failed("x"),
                RecordOutcome::Imported { tries: 1 },
                RecordOutcome::Imported { tries: 1 },
                failed("y"),
            ],
            1,
            &open,
        );
        // r-0 failed, then r-1 with the same trace key imported: no error for r-0.
        assert_eq!(settled.errors.keys().collect::<Vec<_>>(), vec!["r-3"]);
        assert_eq!(
            settled.resolve,
            BTreeSet::from(["old-1", "old-2", "r-1", "r-2"].map(String::from))
        );
    }
}
