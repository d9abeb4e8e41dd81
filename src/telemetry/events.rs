//! Typed telemetry events: each fact hookpipe reports is one struct whose `emit()` updates its
//! metrics and writes its log line together (Vector's `internal_events`), so the two never
//! disagree and a call site is one statement.
//!
//! Fields are plain values (ids, counts, fixed labels) rather than pipeline types, so this module
//! depends on nothing but the registries: any module may emit. Log lines keep the target of the
//! module that used to write them, so `HOOKPIPE_LOG` filters keep selecting the same lines.

use std::fmt::Display;
use std::time::Duration;

use super::{status_class, METRICS, WORKER_METRICS};

// ---------------------------------------------------------------------------------------------
// Serve tier: the receiver and the chain.

/// An ingest request was answered: counts it by listener and status class (and by reason when
/// verification, a bucket or the parser refused it) and writes the access-log line.
///
/// The access log names the listener, never the path: a secret-URL token must not be logged.
pub struct RequestFinished<'a> {
    /// The request's id.
    pub request_id: &'a str,
    /// The listener the path named, for the log line (`-` when none matched). A wrong URL token
    /// still names its listener here, where only operators look.
    pub listener: Option<&'a str>,
    /// The metrics' listener label: the listener's id, or [`super::UNKNOWN_LISTENER`] for an
    /// unknown listener or a wrong URL token (which must look the same in metrics).
    pub metrics_listener: &'a str,
    /// The response's status code.
    pub status: u16,
    /// Time from the request's arrival to its answer.
    pub latency_ms: u64,
    /// Records published, or why the request was refused.
    pub result: Result<usize, RequestRefused<'a>>,
    /// The listener's own series, when `metrics_listener` is the listener's id.
    pub counters: Option<&'a super::ListenerCounters>,
}

/// Why a request was refused, as telemetry sees it.
pub struct RequestRefused<'a> {
    /// The outcome label (`unauthorized`, `rate_limited`, …).
    pub outcome: &'static str,
    /// The reason, for the debug line (never secret: it is the response's own error text).
    pub reason: &'a dyn Display,
    /// The failure counter that also counts it, if any.
    pub cause: RefusalCause,
    /// Refused by load shedding (in-flight cap, full mailbox): expected under load, so not a
    /// warning even though it is a 503.
    pub load_shed: bool,
}

/// Refusals with a counter of their own, with that counter's label.
pub enum RefusalCause {
    /// `hookpipe_verification_failures_total`, by reason.
    Verification(&'static str),
    /// `hookpipe_rate_limited_total`, by scope.
    RateLimited(&'static str),
    /// `hookpipe_parse_errors_total`, by kind.
    Parse(&'static str),
    /// Counted by status class only.
    Other,
}

impl RequestFinished<'_> {
    /// Counts the request and writes its access-log line.
    pub fn emit(&self) {
        let label = self.metrics_listener;
        match self.counters {
            Some(counters) => counters.count_request(label, status_class(self.status)),
            None => METRICS
                .requests
                .with_label_values(&[label, status_class(self.status)])
                .inc(),
        }
        let request_id = self.request_id;
        let listener = self.listener.unwrap_or("-");
        let (status, latency_ms) = (self.status, self.latency_ms);
        let refused = match &self.result {
            Ok(records) => {
                tracing::debug!(target: "hookpipe::http::receiver", request_id = %request_id, listener, status,
                    latency_ms, records, "webhook accepted");
                return;
            }
            Err(refused) => refused,
        };
        match refused.cause {
            RefusalCause::Verification(reason) => {
                METRICS.verification_failures.with_label_values(&[label, reason]).inc()
            }
            RefusalCause::RateLimited(scope) => match self.counters {
                Some(counters) => counters.count_rate_limited(label, scope),
                None => METRICS.rate_limited.with_label_values(&[label, scope]).inc(),
            },
            RefusalCause::Parse(kind) => METRICS.parse_errors.with_label_values(&[label, kind]).inc(),
            RefusalCause::Other => {}
        }
        let outcome = refused.outcome;
        if status >= 500 && !refused.load_shed {
            tracing::warn!(target: "hookpipe::http::receiver", request_id = %request_id, listener, status,
                latency_ms, outcome, "webhook not accepted");
        } else {
            // Rejections are the sender's problem and can come by the million (attacks, floods):
            // metrics count them; the line is there at debug level.
            tracing::debug!(target: "hookpipe::http::receiver", request_id = %request_id, listener, status,
                latency_ms, outcome, reason = %refused.reason, "webhook rejected");
        }
    }
}

/// A management-API request was refused for authentication: a wrong or missing token (401), or
/// a peer locked out after too many of those (429). Never carries the token, right or wrong.
pub struct ApiAuthRefused<'a> {
    /// The TCP peer (`-` when unknown).
    pub peer: &'a dyn Display,
    /// `wrong_token` or `locked_out`.
    pub outcome: &'static str,
    /// This failure was the one that locked the peer out (for the lockout's one warning).
    pub lockout_started: Option<Duration>,
}

impl ApiAuthRefused<'_> {
    /// Counts the refusal; warns once per lockout, the rest at debug level (they can flood).
    pub fn emit(&self) {
        METRICS.api_auth_failures.with_label_values(&[self.outcome]).inc();
        let (peer, outcome) = (self.peer, self.outcome);
        match self.lockout_started {
            Some(window) => tracing::warn!(target: "hookpipe::http::api", peer = %peer,
                lockout_secs = window.as_secs(),
                "too many failed management-API authentications from this peer: refused (429) without a look at its token for the window"),
            None => tracing::debug!(target: "hookpipe::http::api", peer = %peer, outcome,
                "management-API request refused for authentication"),
        }
    }
}

/// A handshake rule applied to a request: answered it (`answered`) or refused it (`refused`).
pub struct HandshakeDecided<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// `answered` or `refused`.
    pub result: &'static str,
}

impl HandshakeDecided<'_> {
    /// Adds to `hookpipe_handshakes_total` (the request's own line is its access-log line).
    pub fn emit(&self) {
        METRICS
            .handshakes
            .with_label_values(&[self.listener, self.result])
            .inc();
    }
}

/// A request's body was read and decoded: counts its bytes.
pub struct BodyReceived<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// Decoded body length.
    pub bytes: usize,
    /// The listener's own series.
    pub counters: &'a super::ListenerCounters,
}

impl BodyReceived<'_> {
    /// Adds to `hookpipe_request_body_bytes_total`.
    pub fn emit(&self) {
        self.counters.add_body_bytes(self.listener, self.bytes as u64);
    }
}

/// A template (`trace_key`, `data_uri`, `response_body`) failed to render: counts it and logs
/// it at debug level (once per record would flood warn), with the reason — which names
/// helpers, argument positions and field names, never record content.
pub struct TemplateFailed<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// Which template: `trace_key`, `data_uri`, `ordering_key` or `response_body`.
    pub template: &'static str,
    /// Why, from the renderer.
    pub reason: &'a str,
}

impl TemplateFailed<'_> {
    /// Increments `hookpipe_template_failures_total` and writes the log line.
    pub fn emit(&self) {
        METRICS
            .template_failures
            .with_label_values(&[self.listener, self.template])
            .inc();
        tracing::debug!(
            target: "hookpipe::telemetry",
            listener = self.listener,
            template = self.template,
            reason = self.reason,
            "template failed to render"
        );
    }
}

/// A stage waited for room in the next stage's mailbox.
pub struct MailboxBlocked {
    /// The next stage's name.
    pub stage: &'static str,
    /// How long.
    pub waited: Duration,
}

impl MailboxBlocked {
    /// Exports the stage's series at 0, so "never blocked" reads as 0, not as absent.
    pub fn declare(stage: &'static str) {
        METRICS.mailbox_blocked.with_label_values(&[stage]);
    }

    /// Adds to `hookpipe_mailbox_blocked_seconds_total`.
    pub fn emit(&self) {
        METRICS
            .mailbox_blocked
            .with_label_values(&[self.stage])
            .inc_by(self.waited.as_secs_f64());
    }
}

/// Kafka acknowledged a page (and its retry data, if the listener stores it).
pub struct PagePublished<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// The page's id.
    pub page_id: &'a str,
    /// Records in the page.
    pub records: usize,
    /// Time from enqueueing to the last acknowledgement.
    pub produce_latency: Duration,
    /// The producer's queue right after.
    pub producer_queue_depth: i32,
}

impl PagePublished<'_> {
    /// Counts the page and its records, observes the latency and writes the debug line.
    pub fn emit(&self) {
        let listener = self.listener;
        observe_produce(self.produce_latency, self.producer_queue_depth);
        METRICS.pages_published.with_label_values(&[listener]).inc();
        METRICS
            .records_published
            .with_label_values(&[listener])
            .inc_by(self.records as u64);
        METRICS
            .page_records
            .with_label_values(&[listener])
            .observe(self.records as f64);
        tracing::debug!(target: "hookpipe::pipeline::retry_store", listener, page_id = %self.page_id,
            records = self.records, "page published");
    }
}

/// Kafka did not acknowledge a page or its retry data: its requests get 503.
pub struct PageFailed<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// The page's id.
    pub page_id: &'a str,
    /// Why.
    pub error: &'a dyn Display,
    /// Time from enqueueing to the failure.
    pub produce_latency: Duration,
    /// The producer's queue right after.
    pub producer_queue_depth: i32,
}

impl PageFailed<'_> {
    /// Counts the page as failed, observes the latency and writes the warning.
    pub fn emit(&self) {
        observe_produce(self.produce_latency, self.producer_queue_depth);
        METRICS.pages_failed.with_label_values(&[self.listener]).inc();
        tracing::warn!(target: "hookpipe::pipeline::retry_store", listener = self.listener,
            page_id = %self.page_id, error = %self.error, "page not acknowledged");
    }
}

/// A request's records were checked against their listener's schema: counts them by outcome.
pub struct SchemaChecked<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// Records that satisfy the schema (checked before a rejection, or paged).
    pub valid: usize,
    /// Records that refused the request (`reject`: 0 or 1).
    pub rejected: usize,
    /// Records sent to the quarantine topic.
    pub quarantined: usize,
}

impl SchemaChecked<'_> {
    /// Adds to `hookpipe_schema_records_total`; the debug line says what it found.
    pub fn emit(&self) {
        for (outcome, count) in [
            ("valid", self.valid),
            ("rejected", self.rejected),
            ("quarantined", self.quarantined),
        ] {
            if count > 0 {
                METRICS
                    .schema_records
                    .with_label_values(&[self.listener, outcome])
                    .inc_by(count as u64);
            }
        }
        if self.rejected + self.quarantined > 0 {
            tracing::debug!(target: "hookpipe::pipeline::schema", listener = self.listener, valid = self.valid,
                rejected = self.rejected, quarantined = self.quarantined, "records failed their schema");
        }
    }
}

/// A delivery of a listener with `dedup` was looked up by its delivery id.
pub struct DeliveryDeduplicated<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// `first`, `duplicate`, `in_flight` or `no_delivery_id`.
    pub outcome: &'static str,
}

impl DeliveryDeduplicated<'_> {
    /// Counts it in `hookpipe_dedup_deliveries_total`; duplicates get a debug line.
    pub fn emit(&self) {
        METRICS
            .dedup_deliveries
            .with_label_values(&[self.listener, self.outcome])
            .inc();
        if self.outcome != "first" {
            tracing::debug!(target: "hookpipe::pipeline::dedup", listener = self.listener, outcome = self.outcome,
                "delivery not published as a first delivery");
        }
    }
}

/// This instance's view of the fleet changed size (`pipeline::rate_limit::fleet`).
pub struct FleetMembersChanged<'a> {
    /// Live members now, this one included.
    pub members: usize,
    /// Before.
    pub previous: usize,
    /// This instance's member key.
    pub member: &'a str,
}

impl FleetMembersChanged<'_> {
    /// Sets `hookpipe_rate_limit_fleet_members` and writes the line.
    pub fn emit(&self) {
        METRICS.rate_limit_fleet_members.set(self.members as i64);
        tracing::info!(target: "hookpipe::pipeline::rate_limit::fleet", member = self.member,
            members = self.members, previous = self.previous, "rate-limit buckets divided among the fleet's live members");
    }
}

/// This instance's share of a bucket, as of the latest re-division.
pub struct FleetShare<'a> {
    /// The listener's id; `None` for `server.global_rate_limit`.
    pub listener: Option<&'a str>,
    /// The share, parts per million.
    pub share_ppm: u32,
}

impl FleetShare<'_> {
    /// Sets `hookpipe_rate_limit_fleet_share`.
    pub fn emit(&self) {
        let (listener, scope) = match self.listener {
            Some(listener) => (listener, "listener"),
            None => ("", "global"),
        };
        METRICS
            .rate_limit_fleet_share
            .with_label_values(&[listener, scope])
            .set(f64::from(self.share_ppm) / 1e6);
    }
}

/// A listener's bucket is gone (the listener was deleted): its share series goes with it.
pub struct FleetShareRemoved<'a> {
    /// The listener's id.
    pub listener: &'a str,
}

impl FleetShareRemoved<'_> {
    /// Removes the listener's `hookpipe_rate_limit_fleet_share` series.
    pub fn emit(&self) {
        // Absent already (never divided, or removed before) is fine.
        let _ = METRICS
            .rate_limit_fleet_share
            .remove_label_values(&[self.listener, "listener"]);
    }
}

/// A heartbeat's outcome, and how far behind this instance's heartbeats read back are.
pub struct FleetHeartbeat {
    /// Whether Kafka acknowledged it (`None`: not known yet, only the lag is set).
    pub acknowledged: Option<bool>,
    /// Age of the newest own heartbeat read back, ms (`None`: none yet).
    pub lag_ms: Option<i64>,
}

impl FleetHeartbeat {
    /// Counts `hookpipe_rate_limit_fleet_heartbeats_total` and sets the lag gauge.
    pub fn emit(&self) {
        if let Some(acknowledged) = self.acknowledged {
            let outcome = if acknowledged { "acknowledged" } else { "failed" };
            METRICS.rate_limit_fleet_heartbeats.with_label_values(&[outcome]).inc();
            if !acknowledged {
                tracing::debug!(target: "hookpipe::pipeline::rate_limit::fleet", "heartbeat not acknowledged");
            }
        }
        if let Some(lag_ms) = self.lag_ms {
            METRICS
                .rate_limit_fleet_heartbeat_lag
                .set(lag_ms.max(0) as f64 / 1000.0);
        }
    }
}

/// Kafka answered for a page of quarantined records: acknowledged (`error` is `None`), or not
/// (its request gets 503, as for a page).
pub struct QuarantinePublished<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// The quarantine page's id.
    pub page_id: &'a str,
    /// Records in it.
    pub records: usize,
    /// Why it failed, if it did.
    pub error: Option<&'a dyn Display>,
    /// Time from enqueueing to Kafka's answer.
    pub produce_latency: Duration,
    /// The producer's queue right after.
    pub producer_queue_depth: i32,
}

impl QuarantinePublished<'_> {
    /// Counts the page by outcome, observes the latency and writes the line.
    pub fn emit(&self) {
        observe_produce(self.produce_latency, self.producer_queue_depth);
        let outcome = if self.error.is_some() { "failed" } else { "published" };
        METRICS
            .quarantine_pages
            .with_label_values(&[self.listener, outcome])
            .inc();
        match self.error {
            None => tracing::debug!(target: "hookpipe::pipeline::retry_store", listener = self.listener,
                page_id = %self.page_id, records = self.records, "quarantine page published"),
            Some(error) => tracing::warn!(target: "hookpipe::pipeline::retry_store", listener = self.listener,
                page_id = %self.page_id, %error, "quarantine page not acknowledged"),
        }
    }
}

fn observe_produce(latency: Duration, queue_depth: i32) {
    METRICS.produce_latency.observe(latency.as_secs_f64());
    METRICS.producer_queue_depth.set(i64::from(queue_depth));
}

/// librdkafka reported every broker down: pages are refused at once (503) until one answers.
pub struct KafkaDown<'a> {
    /// librdkafka's text.
    pub reason: &'a str,
}

impl KafkaDown<'_> {
    /// Writes the warning.
    pub fn emit(&self) {
        tracing::warn!(target: "hookpipe::kafka", reason = self.reason,
            "every Kafka broker is down: webhooks are answered 503 at once until one answers");
    }
}

/// A broker answers again after every one was down.
pub struct KafkaBack {
    /// How long they were down.
    pub outage: Duration,
}

impl KafkaBack {
    /// Writes the notice.
    pub fn emit(&self) {
        tracing::info!(target: "hookpipe::kafka", outage_ms = self.outage.as_millis() as u64,
            "a Kafka broker answers again: accepting webhooks");
    }
}

/// The page producer's librdkafka handle was replaced by a fresh one.
pub struct ProducerReplaced {
    /// Why, from a fixed set (`fatal`, `brokers_down`, `producer_state_errors`, `no_producer_id`).
    pub reason: &'static str,
    /// The same, in words.
    pub detail: &'static str,
    /// The new handle's generation (how many replacements so far).
    pub generation: u64,
}

impl ProducerReplaced {
    /// Counts the replacement and writes the warning.
    pub fn emit(&self) {
        METRICS.producer_replacements.with_label_values(&[self.reason]).inc();
        tracing::warn!(target: "hookpipe::kafka", reason = self.detail, generation = self.generation,
            "replaced the Kafka producer by a fresh one (a new producer id)");
    }
}

/// A debug capture was dropped: the recorder's mailbox or its producer queue was full.
pub struct DebugCaptureDropped;

impl DebugCaptureDropped {
    /// Increments `hookpipe_debug_captures_dropped_total`.
    pub fn emit(&self) {
        METRICS.debug_captures_dropped.inc();
    }
}

/// A sample data update was dropped: the producer queue was full.
pub struct SampleDropped;

impl SampleDropped {
    /// Increments `hookpipe_samples_dropped_total`.
    pub fn emit(&self) {
        METRICS.samples_dropped.inc();
    }
}

// ---------------------------------------------------------------------------------------------
// Serve tier: TLS of the ingest listener.

/// Log target of the listener's TLS lines.
const TLS_TARGET: &str = "hookpipe::tls";

/// The listener's certificate and key were loaded: at start, or by a SIGHUP reload.
pub struct TlsCertificateLoaded<'a> {
    /// The certificate file, for the log line.
    pub cert_file: &'a dyn Display,
    /// The certificate's `notAfter` (Unix seconds), when it could be read.
    pub not_after_unix: Option<i64>,
    /// A reload (SIGHUP) rather than the start.
    pub reloaded: bool,
}

impl TlsCertificateLoaded<'_> {
    /// Sets the expiry gauge, counts a reload (at start: declares both outcomes at 0) and writes
    /// the log line.
    pub fn emit(&self) {
        if let Some(not_after) = self.not_after_unix {
            METRICS
                .tls_certificate_expiry
                .with_label_values(&[] as &[&str])
                .set(not_after);
        }
        let cert_file = self.cert_file;
        let not_after_unix = self.not_after_unix.unwrap_or_default();
        if self.reloaded {
            METRICS.tls_reloads.with_label_values(&["reloaded"]).inc();
            tracing::info!(target: TLS_TARGET, %cert_file, not_after_unix,
                "TLS certificate reloaded (SIGHUP): new connections get it, open ones keep theirs");
        } else {
            for outcome in ["reloaded", "failed"] {
                METRICS.tls_reloads.with_label_values(&[outcome]);
            }
            tracing::info!(target: TLS_TARGET, %cert_file, not_after_unix,
                "TLS on: serving the certificate of server.tls.cert_file (SIGHUP reloads it)");
        }
    }
}

/// A SIGHUP reload found a certificate or key that does not load: the previous pair is kept.
pub struct TlsReloadFailed<'a> {
    /// Why (names the file; never its content).
    pub reason: &'a dyn Display,
}

impl TlsReloadFailed<'_> {
    /// Counts the failure and writes the warning.
    pub fn emit(&self) {
        METRICS.tls_reloads.with_label_values(&["failed"]).inc();
        tracing::warn!(target: TLS_TARGET, reason = %self.reason,
            "TLS certificate reload failed (SIGHUP): still serving the previous certificate");
    }
}

/// A SIGHUP with nothing to reload (`serve` without `server.tls`, or a worker): logged, the
/// process carries on.
pub struct HangupIgnored {
    /// `serve` or `worker`.
    pub tier: &'static str,
}

impl HangupIgnored {
    /// Writes the log line.
    pub fn emit(&self) {
        tracing::info!(target: "hookpipe::signals", tier = self.tier,
            "SIGHUP: nothing to reload (only server.tls is reloaded; the configuration file is read at start), carrying on");
    }
}

// ---------------------------------------------------------------------------------------------
// Worker.

/// A message on a pages topic is not a hookpipe page: skipped.
pub struct PageMalformed<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Why it is not a page.
    pub reason: &'a dyn Display,
}

impl PageMalformed<'_> {
    /// Counts it and writes the warning.
    pub fn emit(&self) {
        WORKER_METRICS.pages_malformed.with_label_values(&[self.topic]).inc();
        tracing::warn!(target: "hookpipe::worker", topic = self.topic, partition = self.partition,
            offset = self.offset, reason = %self.reason, "not a hookpipe page; skipped");
    }
}

/// The worker went through every record of a page (before settling its errors).
pub struct PageImportTimed<'a> {
    /// The page's listener.
    pub listener: &'a str,
    /// Time for all its records, retries included.
    pub elapsed: Duration,
}

impl PageImportTimed<'_> {
    /// Observes `hookpipe_worker_import_latency_seconds`.
    pub fn emit(&self) {
        WORKER_METRICS
            .import_latency
            .with_label_values(&[self.listener])
            .observe(self.elapsed.as_secs_f64());
    }
}

/// A page is done: its records imported or recorded as errors, its resolutions recorded.
pub struct PageImported<'a> {
    /// The page's listener.
    pub listener: &'a str,
    /// The page's id.
    pub page_id: &'a str,
    /// Records the target accepted.
    pub imported: u64,
    /// Records recorded as errors.
    pub failed: u64,
    /// Of those, records whose retry data was kept with their error.
    pub with_retry_data: u64,
    /// Extra tries, summed over the records.
    pub retried: u64,
    /// Open errors the page resolved.
    pub resolved: u64,
}

impl PageImported<'_> {
    /// Adds to the worker's record counters and writes the debug line.
    pub fn emit(&self) {
        let listener = self.listener;
        WORKER_METRICS
            .records_imported
            .with_label_values(&[listener])
            .inc_by(self.imported);
        WORKER_METRICS
            .records_failed
            .with_label_values(&[listener])
            .inc_by(self.failed);
        WORKER_METRICS
            .records_retried
            .with_label_values(&[listener])
            .inc_by(self.retried);
        WORKER_METRICS
            .errors_resolved
            .with_label_values(&[listener])
            .inc_by(self.resolved);
        WORKER_METRICS
            .retry_data_stored
            .with_label_values(&[listener])
            .inc_by(self.with_retry_data);
        let (imported, failed, resolved) = (self.imported, self.failed, self.resolved);
        tracing::debug!(target: "hookpipe::worker", listener, page_id = %self.page_id, imported, failed, resolved,
            "page done");
    }
}

/// A target answered an import (or could not be reached: class `error`).
pub struct TargetAnswered<'a> {
    /// The page's listener.
    pub listener: &'a str,
    /// `2xx`…`5xx`, or `error` without a response.
    pub status_class: &'a str,
}

impl TargetAnswered<'_> {
    /// Increments `hookpipe_worker_target_responses_total`.
    pub fn emit(&self) {
        WORKER_METRICS
            .target_responses
            .with_label_values(&[self.listener, self.status_class])
            .inc();
    }
}

/// librdkafka's statistics (or the subscription) gave a topic's consumer lag.
pub struct ConsumerLag<'a> {
    /// The topic.
    pub topic: &'a str,
    /// Messages not yet consumed, summed over the worker's partitions.
    pub lag: i64,
}

impl ConsumerLag<'_> {
    /// Sets `hookpipe_worker_consumer_lag`.
    pub fn emit(&self) {
        WORKER_METRICS
            .consumer_lag
            .with_label_values(&[self.topic])
            .set(self.lag);
    }
}

/// The records of ordered pages a worker holds changed (`worker::ordered`).
pub struct HeldRecords {
    /// Records read and not yet settled.
    pub held: usize,
}

impl HeldRecords {
    /// Sets `hookpipe_worker_held_records`.
    pub fn emit(&self) {
        WORKER_METRICS.held_records.set(self.held as i64);
    }
}

/// `worker.max_held_records` were held: fetching of the partitions holding them is paused.
pub struct FetchPaused {
    /// Records held.
    pub held: usize,
    /// Partitions paused.
    pub partitions: usize,
}

impl FetchPaused {
    /// Increments `hookpipe_worker_fetch_pauses_total` and writes the log line.
    pub fn emit(&self) {
        WORKER_METRICS.fetch_pauses.inc();
        tracing::info!(
            held = self.held,
            partitions = self.partitions,
            "worker.max_held_records reached: fetching of the partitions holding them paused"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting for imports (`response.wait = "import"`), both tiers.

mod import_wait;
pub use import_wait::{ImportResultConsumed, ImportResultsPublished, ImportWaitFinished, ImportWaitsInFlight};
