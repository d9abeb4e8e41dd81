//! The import worker (`hookpipe worker`): consumes pages in a consumer group, imports each into
//! its listener's target, records failed records in the errors topic (each with its retry data,
//! unless the listener stores none), resolves open errors a success makes obsolete, and only then
//! stores the page's offset for commit.
//!
//! At least once: an offset is stored (and later committed, every `worker.commit_interval_ms`,
//! on rebalance and at shutdown) only after every record of its page is imported or recorded
//! as an error, so a crash at any point re-imports at most the pages after the last commit.
//! Pages are processed one at a time on the thread that polls the consumer, so a rebalance
//! (served inside `poll`) never lands in the middle of a page — except the pages of listeners
//! with an ordering key (version 2): their keys are imported at once by the threads of `pool`,
//! in per-key order (`ordered`), and a partition's offsets are stored in offset order once
//! everything before them is settled; a revocation waits for the runs being imported.

pub mod backoff;
pub mod file_target;
pub mod http_target;
pub mod import;
pub mod metrics_server;
pub mod ordered;
pub mod page;
pub mod pool;
pub mod results;
pub mod stop;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{join, join_all};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::TopicPartitionList;
use serde_json::Value;

use crate::config::{worker::TargetConfig, Settings};
use crate::import_errors::{do_not_store_reason, too_large_reason, ErrorEntry, ErrorsStore};
use crate::pipeline::{rfc3339_millis, unix_millis_now};
use crate::telemetry::events::{ConsumerLag, FetchPaused, HeldRecords, PageImportTimed, PageImported, PageMalformed};
use crate::wire::{HEADER_RETRY_DATA, ORDERED_PAGE_VERSION, RETRY_DATA_NONE};
use file_target::JsonLinesTarget;
use http_target::HttpTarget;
use import::{import_page, Abandoned, Pacer, RecordOutcome, Target};
use ordered::{PartitionId, Scheduler};
use page::IncomingPage;
use pool::{Import, Partitions, Pool};
use stop::LivePacer;
pub use stop::{stop_on_signals, Shutdown};

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
/// How long one `poll` waits while runs of ordered pages are being imported, so that the next
/// run of a key starts soon after the one before it finished.
const ORDERED_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Consumer callbacks: statistics become the lag gauge, rebalances are logged, and a revocation
/// waits for the runs of ordered pages of the revoked partitions being imported (up to `revoke_wait`).
struct WorkerContext {
    partitions: Arc<Partitions>,
    revoke_wait: Duration,
}

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
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let revoked: Vec<PartitionId> = list
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            self.partitions.revoke(&revoked, self.revoke_wait);
        }
    }

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

    /// The import threads' way into the targets (`pool::Import`): a page imported in full,
    /// with real time cut short by `shutdown` or by the revocation of the run's partition,
    /// within `page_timeout`.
    fn importer(self: &Arc<Targets>, shutdown: &Shutdown, page_timeout: Duration) -> Import {
        let (targets, shutdown) = (self.clone(), shutdown.clone());
        Arc::new(move |page: &IncomingPage, cancelled: &dyn Fn() -> bool| {
            let live = LivePacer { shutdown: &shutdown };
            let pacer = pool::Cancellable {
                inner: &live,
                cancelled,
            };
            match targets.get(&page.listener_id) {
                Some(target) => import_page(target, page, Instant::now() + page_timeout, &pacer),
                None => Ok(no_target(page.records.len())),
            }
        })
    }

    fn get(&self, listener_id: &str) -> Option<&dyn Target> {
        self.by_listener
            .get(listener_id)
            .or(self.default.as_ref())
            .map(|target| target.as_ref())
    }
}

/// Every record failed: the listener has no target.
fn no_target(records: usize) -> Vec<RecordOutcome> {
    vec![
        RecordOutcome::Failed {
            error: "no target configured for this listener (worker.targets.<listener id> or worker.default_target)"
                .into(),
            status: None,
            tries: 0,
        };
        records
    ]
}

/// Whether the page's listener keeps retry data of failed records (`hookpipe-retry-data`):
/// `none` is `do_not_store_retry_data`; pages without the header are not hookpipe's own, and
/// their records are kept like any others.
fn stores_retry_data(message: &BorrowedMessage<'_>) -> bool {
    message
        .headers()
        .and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == HEADER_RETRY_DATA)
                .and_then(|h| h.value)
                .map(|v| v != RETRY_DATA_NONE.as_bytes())
        })
        .unwrap_or(true)
}

/// The ordered pages in hand: what is held, the import threads (started with the first), and
/// the partitions whose fetching is paused because `worker.max_held_records` are held.
#[derive(Default)]
struct Ordered {
    scheduler: Scheduler,
    pool: Option<Pool>,
    paused: Vec<PartitionId>,
    held_reported: usize,
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
    targets: Arc<Targets>,
    topics: Vec<String>,
    metrics_addr: Option<SocketAddr>,
    page_timeout: Duration,
    retry_data_max_bytes: usize,
    partitions: Arc<Partitions>,
    key_concurrency: usize,
    max_held_records: usize,
    results: results::ResultsPublisher,
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
        let partitions = Arc::new(Partitions::default());
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
            .create_with_context(WorkerContext {
                partitions: partitions.clone(),
                revoke_wait: Duration::from_millis(worker.page_timeout_ms),
            })
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
            targets: Arc::new(targets),
            topics,
            metrics_addr,
            page_timeout: Duration::from_millis(worker.page_timeout_ms),
            retry_data_max_bytes: worker.retry_data_max_bytes,
            partitions,
            key_concurrency: worker.key_concurrency,
            max_held_records: worker.max_held_records,
            results: results::ResultsPublisher::new(settings, bootstrap),
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
        let mut ordered = Ordered::default();
        while !shutdown.requested() {
            if self.drive_ordered(&mut ordered, shutdown).is_err() {
                break;
            }
            let wait = if ordered.scheduler.running() > 0 {
                ORDERED_POLL_INTERVAL
            } else {
                POLL_INTERVAL
            };
            let message = match self.consumer.poll(wait) {
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
            // A page or a CloudEvent (`page::IncomingPage::from_message`); ordered pages go to
            // their keys' runs.
            let headers = page::headers_of(&message);
            let parsed = IncomingPage::from_message(message.payload().unwrap_or_default(), &headers);
            let parsed = match parsed {
                Ok((page, _, ORDERED_PAGE_VERSION)) => {
                    self.admit(&mut ordered, &message, page, shutdown);
                    continue;
                }
                Ok((page, stores_retry_data, _)) => Ok((page, stores_retry_data)),
                Err(reason) => Err(reason),
            };
            match self.process(&message, parsed, shutdown) {
                Step::Done => self.done(&mut ordered, &message),
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
        self.finish_ordered(&mut ordered, shutdown);
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!("offsets committed; leaving the consumer group"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => tracing::warn!(%error, "final commit failed; the last pages may be imported again"),
        }
    }

    /// A message processed on this thread is done: its offset is stored now, or — when ordered
    /// pages before it in its partition are still held — once they are settled.
    fn done(&self, ordered: &mut Ordered, message: &BorrowedMessage<'_>) {
        if !ordered.scheduler.partitions_held() {
            // No ordered page anywhere: as always.
            return self.store_offset(message.topic(), message.partition(), message.offset());
        }
        let partition: PartitionId = (message.topic().to_string(), message.partition());
        match ordered.scheduler.epoch(&partition) {
            Some(epoch) if !ordered.scheduler.is_idle(&partition) && self.partitions.is_current(&partition, epoch) => {
                ordered.scheduler.mark_done(&partition, epoch, message.offset());
            }
            _ => self.store_offset(message.topic(), message.partition(), message.offset()),
        }
    }

    fn store_offset(&self, topic: &str, partition: i32, offset: i64) {
        if let Err(error) = self.consumer.store_offset(topic, partition, offset) {
            // The partition moved to another worker meanwhile: it imports the page again.
            tracing::warn!(topic, partition, offset, %error,
                "cannot store the offset of an imported page (partition revoked?)");
        }
    }

    /// Holds an ordered page and starts the runs of its keys that may start.
    fn admit(&self, ordered: &mut Ordered, message: &BorrowedMessage<'_>, page: IncomingPage, shutdown: &Shutdown) {
        let partition: PartitionId = (message.topic().to_string(), message.partition());
        let epoch = self.partitions.epoch(&partition);
        let keep = stores_retry_data(message).then_some(self.retry_data_max_bytes);
        let runs = ordered.scheduler.admit(&partition, epoch, message.offset(), page, keep);
        if ordered.pool.is_none() {
            let importer = self.targets.importer(shutdown, self.page_timeout);
            match Pool::start(
                self.key_concurrency,
                self.max_held_records,
                importer,
                self.partitions.clone(),
            ) {
                Ok(pool) => ordered.pool = Some(pool),
                Err(error) => tracing::error!(%error, "ordered pages cannot be imported"),
            }
        }
        if let Some(pool) = &ordered.pool {
            for run in runs {
                pool.submit(run);
            }
        }
    }

    /// Forgets revoked partitions, starts the next run of each key whose run finished, settles
    /// (and stores the offsets of) what is done in offset order, and pauses fetching while
    /// `worker.max_held_records` are held. `Err` once the shutdown grace period is over.
    fn drive_ordered(&self, ordered: &mut Ordered, shutdown: &Shutdown) -> Result<(), Abandoned> {
        if !ordered.scheduler.partitions_held() && ordered.paused.is_empty() {
            return Ok(());
        }
        for partition in ordered.scheduler.partitions() {
            let epoch = ordered.scheduler.epoch(&partition);
            if epoch.is_some_and(|epoch| !self.partitions.is_current(&partition, epoch)) {
                ordered.scheduler.revoke(&partition);
            }
        }
        if let Some(pool) = &ordered.pool {
            for (run, result) in pool.finished(Duration::ZERO) {
                if let Some(next) = ordered.scheduler.finished(&run, result) {
                    pool.submit(next);
                }
            }
        }
        self.settle_ordered(ordered, shutdown)?;
        let held = ordered.scheduler.held_records();
        if held != ordered.held_reported {
            HeldRecords { held }.emit();
            ordered.held_reported = held;
        }
        if held >= self.max_held_records {
            // The partitions holding records stop fetching (the others go on: whatever they
            // bring is held too, and paused in turn) until half the cap is settled.
            let holding: Vec<PartitionId> = ordered
                .scheduler
                .holding()
                .into_iter()
                .filter(|partition| !ordered.paused.contains(partition))
                .collect();
            if !holding.is_empty() {
                self.pause(&holding, true);
                FetchPaused {
                    held,
                    partitions: holding.len(),
                }
                .emit();
                ordered.paused.extend(holding);
            }
        } else if !ordered.paused.is_empty() {
            // Below the cap, partitions holding nothing any more fetch again; at half the cap, all.
            let holding = ordered.scheduler.holding();
            let resume: Vec<PartitionId> = ordered
                .paused
                .iter()
                .filter(|partition| held <= self.max_held_records / 2 || !holding.contains(partition))
                .cloned()
                .collect();
            if !resume.is_empty() {
                self.pause(&resume, false);
                ordered.paused.retain(|partition| !resume.contains(partition));
            }
        }
        Ok(())
    }

    /// Settles what is done at the front of each partition held, in offset order, storing
    /// each offset once its page's errors are recorded.
    fn settle_ordered(&self, ordered: &mut Ordered, shutdown: &Shutdown) -> Result<(), Abandoned> {
        for partition in ordered.scheduler.partitions() {
            for settleable in ordered.scheduler.settleable(&partition) {
                if let Some((page, keep, outcomes)) = settleable.page {
                    let admitted = settleable.admitted;
                    if let Step::Abandoned = self.settle_page(&page, &partition.0, keep, &outcomes, admitted, shutdown)
                    {
                        return Err(Abandoned);
                    }
                }
                self.store_offset(&partition.0, partition.1, settleable.offset);
            }
        }
        Ok(())
    }

    fn pause(&self, partitions: &[PartitionId], pause: bool) {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            list.add_partition(topic, *partition);
        }
        let result = if pause {
            self.consumer.pause(&list)
        } else {
            self.consumer.resume(&list)
        };
        if let Err(error) = result {
            // A partition revoked meanwhile: its next owner fetches it anyway.
            tracing::debug!(%error, pause, "cannot pause or resume fetching");
        }
    }

    /// At shutdown: waits for the runs being imported (cut short once the grace period is
    /// over), then settles what is done.
    fn finish_ordered(&self, ordered: &mut Ordered, shutdown: &Shutdown) {
        let Some(pool) = ordered.pool.take() else { return };
        // Runs not started yet are not started now; those out end with the grace period.
        self.partitions.close();
        for (run, result) in pool.stop() {
            // The next run of a key is not started: its page is not settled.
            let _ = ordered.scheduler.finished(&run, result);
        }
        let _ = self.settle_ordered(ordered, shutdown);
    }

    fn process(
        &self,
        message: &BorrowedMessage<'_>,
        parsed: Result<(IncomingPage, bool), String>,
        shutdown: &Shutdown,
    ) -> Step {
        let topic = message.topic();
        let (page, stores_retry_data) = match parsed {
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
            None => no_target(page.records.len()),
        };
        self.settle_page(&page, topic, keep, &outcomes, Some(started), shutdown)
    }

    /// Records a page's errors and resolutions once every record is imported or failed
    /// (`started`: when its import began, for the page timing metric).
    fn settle_page(
        &self,
        page: &IncomingPage,
        topic: &str,
        keep: Option<usize>,
        outcomes: &[RecordOutcome],
        started: Option<Instant>,
        shutdown: &Shutdown,
    ) -> Step {
        let pacer = LivePacer { shutdown };
        let listener = page.listener_id.as_str();
        if let Some(started) = started {
            PageImportTimed {
                listener,
                elapsed: started.elapsed(),
            }
            .emit();
        }
        let (imported, failed, retried) = outcomes.iter().fold((0, 0, 0), |(i, f, r), outcome| match outcome {
            RecordOutcome::Imported { tries, .. } => (i + 1, f, r + u64::from(tries.saturating_sub(1))),
            RecordOutcome::Failed { tries, .. } => (i, f + 1, r + u64::from(tries.saturating_sub(1))),
        });
        let settled = settle(page, topic, keep, outcomes, unix_millis_now(), &|trace_key| {
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
        if page.wait_for_import {
            // Once the failures are errors: a waiting request hears only what is final.
            self.runtime.block_on(self.results.publish(page, outcomes));
        }
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
            wait_for_import: false,
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
            &[
                RecordOutcome::Imported { tries: 2, answer: None },
                failed("HTTP 400: no"),
            ],
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
                RecordOutcome::Imported { tries: 1, answer: None },
                RecordOutcome::Imported { tries: 1, answer: None },
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
