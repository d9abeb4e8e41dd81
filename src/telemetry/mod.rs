//! Logging setup and every metric hookpipe exports, in one place: one registry per tier, so the
//! serve tier's `/metrics` shows only what `hookpipe serve` measures and the worker's only what
//! `hookpipe worker` measures (neither exports the other's series as zeros).
//!
//! Metric names are `hookpipe_<thing>_<unit>[_total]`. Labels come from small fixed sets: a
//! listener id (only ids of configured listeners, `unknown` otherwise), a status class, an
//! outcome or reason from a fixed list — never a path, token, address or error text.
//!
//! Call sites do not touch metrics directly: they emit a typed event ([`events`]) that updates
//! the metric and writes the log line of the same fact together.
//!
//! This module imports nothing from the rest of the crate, so every module may emit events.

pub mod events;

use std::sync::LazyLock;

use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: human-readable by default, JSON lines with `json`.
/// The level comes from `HOOKPIPE_LOG` (e.g. `info`, `hookpipe=debug`), default `info`.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("HOOKPIPE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// Label value for requests that matched no listener.
pub const UNKNOWN_LISTENER: &str = "unknown";

/// The status class label of a status code.
pub fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A listener's own series of the counters every request touches, looked up once: a label
/// lookup (`with_label_values`) hashes the labels and takes a lock each time, which was most of
/// what counting a refused request cost. Owned by the listener; the series are the same ones the
/// lookup finds, so a listener rebuilt by an update counts on.
#[derive(Default)]
pub struct ListenerCounters {
    /// `hookpipe_requests_total` by status class (2xx, 3xx, 4xx, 5xx).
    requests: [std::sync::OnceLock<IntCounter>; 4],
    /// `hookpipe_request_body_bytes_total`.
    bytes_in: std::sync::OnceLock<IntCounter>,
    /// `hookpipe_rate_limited_total` by scope (listener, global).
    rate_limited: [std::sync::OnceLock<IntCounter>; 2],
}

impl ListenerCounters {
    fn count_request(&self, listener: &str, class: &'static str) {
        let slot = match class {
            "2xx" => 0,
            "3xx" => 1,
            "4xx" => 2,
            _ => 3,
        };
        self.requests[slot]
            .get_or_init(|| METRICS.requests.with_label_values(&[listener, class]))
            .inc();
    }

    fn add_body_bytes(&self, listener: &str, bytes: u64) {
        self.bytes_in
            .get_or_init(|| METRICS.bytes_in.with_label_values(&[listener]))
            .inc_by(bytes);
    }

    fn count_rate_limited(&self, listener: &str, scope: &'static str) {
        match scope {
            "listener" | "global" => self.rate_limited[usize::from(scope == "global")]
                .get_or_init(|| METRICS.rate_limited.with_label_values(&[listener, scope]))
                .inc(),
            _ => METRICS.rate_limited.with_label_values(&[listener, scope]).inc(),
        }
    }
}

/// The serve tier's metrics (`hookpipe serve`: receiver, chain, management API).
pub struct ServeMetrics {
    registry: Registry,
    names: Vec<String>,
    /// Ingest requests by listener and status class (`2xx`, `4xx`, `5xx`).
    pub requests: IntCounterVec,
    /// Verification failures by listener and reason (`missing`, `malformed`, `mismatch`, `expired`).
    pub verification_failures: IntCounterVec,
    /// Requests refused by a bucket, by listener and scope (`listener`, `global`).
    pub rate_limited: IntCounterVec,
    /// Bodies that did not parse, by listener and kind.
    pub parse_errors: IntCounterVec,
    /// Template renders that failed, by listener and template (`trace_key`, `data_uri`,
    /// `response_body`).
    pub template_failures: IntCounterVec,
    /// Records acknowledged by Kafka, by listener.
    pub records_published: IntCounterVec,
    /// Pages acknowledged by Kafka, by listener.
    pub pages_published: IntCounterVec,
    /// Pages Kafka did not acknowledge, by listener.
    pub pages_failed: IntCounterVec,
    /// Request body bytes received (after decoding), by listener.
    pub bytes_in: IntCounterVec,
    /// Records per published page.
    pub page_records: HistogramVec,
    /// Time from enqueue to Kafka's delivery report.
    pub produce_latency: Histogram,
    /// Messages in the producer's local queue or in flight.
    pub producer_queue_depth: IntGauge,
    /// Ingest requests being processed.
    pub in_flight: IntGauge,
    /// Time stages spent waiting on a full next-stage mailbox, by stage.
    pub mailbox_blocked: CounterVec,
    /// Debug windows open on this instance's view.
    pub debug_windows_open: IntGauge,
    /// Live serve instances the rate-limit buckets are divided among, this one included.
    pub rate_limit_fleet_members: IntGauge,
    /// This instance's share (0 to 1) of each bucket, by listener and scope.
    pub rate_limit_fleet_share: GaugeVec,
    /// Heartbeats to the fleet topic, by outcome (acknowledged, failed).
    pub rate_limit_fleet_heartbeats: IntCounterVec,
    /// How old this instance's newest heartbeat read back from the fleet topic is, seconds.
    pub rate_limit_fleet_heartbeat_lag: Gauge,
    /// Open import errors in this instance's mirror of the errors topic (all listeners).
    pub import_errors_open: IntGauge,
    /// Debug captures dropped because the recorder or its producer queue was full.
    pub debug_captures_dropped: IntCounter,
    /// Sample data updates dropped because the producer queue was full.
    pub samples_dropped: IntCounter,
    /// Records republished for another attempt through the errors API, by listener.
    pub errors_republished: IntCounterVec,
    /// Page producer handles replaced by a fresh one, by reason (`fatal`, `brokers_down`,
    /// `producer_state_errors`, `no_producer_id`).
    pub producer_replacements: IntCounterVec,
    /// 1 while pages are being acknowledged (what `/readyz` says), 0 otherwise.
    pub kafka_ready: IntGauge,
    /// Requests a handshake rule applied to, by listener and result (`answered`, `refused`).
    pub handshakes: IntCounterVec,
    /// Records checked against their listener's schema, by listener and outcome (`valid`,
    /// `rejected`, `quarantined`).
    pub schema_records: IntCounterVec,
    /// Quarantine pages Kafka acknowledged (`published`) or not (`failed`), by listener.
    pub quarantine_pages: IntCounterVec,
    /// Management-API requests refused for their peer's authentication, by outcome
    /// (`wrong_token`: 401, `locked_out`: 429 without a look at the token).
    pub api_auth_failures: IntCounterVec,
    /// Deliveries of listeners with `dedup`, by listener and outcome (`first`, `duplicate`,
    /// `in_flight`, `no_delivery_id`).
    pub dedup_deliveries: IntCounterVec,
    /// Delivery ids this instance remembers (every listener).
    pub dedup_ids: IntGauge,
    /// Delivery ids forgotten before their window ended because a listener's `max_ids` was reached.
    pub dedup_evicted: IntCounter,
    /// Accepted delivery ids not sent to the dedup topic (producer queue full): other instances
    /// will not know them.
    pub dedup_feed_dropped: IntCounter,
    /// SIGHUP reloads of the ingest listener's TLS certificate, by outcome (`reloaded`, `failed`).
    pub tls_reloads: IntCounterVec,
    /// The `notAfter` of the certificate the ingest listener serves, in Unix seconds (no series
    /// without `server.tls`).
    pub tls_certificate_expiry: IntGaugeVec,
    /// Requests waiting for their import now (`response.wait = "import"`), capped by
    /// `server.max_import_waits`.
    pub import_waits_in_flight: IntGauge,
    /// Requests that waited for their import, by listener and outcome (`imported`, `failed`,
    /// `timed_out`, `refused`: 503 over `server.max_import_waits`, `no_results`: 202 at once,
    /// the results topic not being read).
    pub import_waits: IntCounterVec,
    /// Messages read from the results topic, by outcome (`matched`: for a request waiting here,
    /// `unknown`: for none, dropped unread; `malformed`).
    pub import_results_consumed: IntCounterVec,
}

/// The import worker's metrics (`hookpipe worker`).
pub struct WorkerMetrics {
    registry: Registry,
    names: Vec<String>,
    /// Records imported into their target, by listener.
    pub records_imported: IntCounterVec,
    /// Records that failed permanently or exhausted their tries (recorded as errors), by listener.
    pub records_failed: IntCounterVec,
    /// Records sent to their target again after a retryable failure, by listener.
    pub records_retried: IntCounterVec,
    /// Open errors resolved by a later successful import, by listener.
    pub errors_resolved: IntCounterVec,
    /// Failed records recorded as errors with their retry data, by listener.
    pub retry_data_stored: IntCounterVec,
    /// Pages that are not hookpipe pages (skipped), by topic.
    pub pages_malformed: IntCounterVec,
    /// Time to import one page (all of its records, retries included), by listener.
    pub import_latency: HistogramVec,
    /// Responses of targets by listener and status class (`2xx`…`5xx`, `error` without a response).
    pub target_responses: IntCounterVec,
    /// Messages not yet consumed by this worker, summed over its partitions, by topic.
    pub consumer_lag: IntGaugeVec,
    /// Records of ordered pages held (read, not yet settled), capped by `worker.max_held_records`.
    pub held_records: IntGauge,
    /// Times fetching was paused because `worker.max_held_records` were held.
    pub fetch_pauses: IntCounter,
    /// Import result messages written for requests waiting for their import, by listener and
    /// outcome (`published`, `failed`).
    pub import_results: IntCounterVec,
}

/// Registers metrics in one registry, noting their names; every constructor panics only on a
/// programming error (an invalid or duplicate name), which the first test run would show.
struct Declare<'a>(&'a Registry, std::cell::RefCell<Vec<String>>);

impl<'a> Declare<'a> {
    fn new(registry: &'a Registry) -> Declare<'a> {
        Declare(registry, Default::default())
    }

    fn register<M: prometheus::core::Collector + Clone + 'static>(&self, metric: M) -> M {
        let names = metric.desc().into_iter().map(|desc| desc.fq_name.clone());
        self.1.borrow_mut().extend(names);
        self.0.register(Box::new(metric.clone())).expect("unique metric");
        metric
    }

    /// The names registered so far, sorted.
    fn names(&self) -> Vec<String> {
        let mut names = self.1.borrow().clone();
        names.sort();
        names
    }

    fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.register(IntCounter::new(name, help).expect("valid metric"))
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.register(IntGauge::new(name, help).expect("valid metric"))
    }

    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.register(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    fn float_gauge(&self, name: &str, help: &str) -> Gauge {
        self.register(Gauge::new(name, help).expect("valid metric"))
    }

    fn float_gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.register(GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    fn histogram_vec(&self, name: &str, help: &str, buckets: Vec<f64>, labels: &[&str]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets);
        self.register(HistogramVec::new(opts, labels).expect("valid metric"))
    }
}

/// The Prometheus text exposition of every metric of `registry`.
fn render(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buffer)
        .expect("encoding metrics to a Vec cannot fail");
    String::from_utf8(buffer).unwrap_or_default()
}

impl ServeMetrics {
    fn new() -> ServeMetrics {
        let registry = Registry::new();
        let declare = Declare::new(&registry);
        let produce_latency = declare.register(
            Histogram::with_opts(
                HistogramOpts::new(
                    "hookpipe_kafka_produce_latency_seconds",
                    "Time from enqueueing a page to Kafka's delivery report.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            )
            .expect("valid metric"),
        );
        // Each stage's series is declared when the stage starts (`events::MailboxBlocked::declare`),
        // so "never blocked" reads as 0, not as absent.
        let mailbox_blocked = declare.register(
            CounterVec::new(
                Opts::new(
                    "hookpipe_mailbox_blocked_seconds_total",
                    "Time stages spent waiting for room in the next stage's mailbox.",
                ),
                &["stage"],
            )
            .expect("valid metric"),
        );
        ServeMetrics {
            requests: declare.counter_vec(
                "hookpipe_http_requests_total",
                "Ingest requests by listener and status class.",
                &["listener", "status_class"],
            ),
            verification_failures: declare.counter_vec(
                "hookpipe_verification_failures_total",
                "Requests that failed verification, by reason.",
                &["listener", "reason"],
            ),
            rate_limited: declare.counter_vec(
                "hookpipe_rate_limited_total",
                "Requests refused by a rate-limit bucket.",
                &["listener", "scope"],
            ),
            parse_errors: declare.counter_vec(
                "hookpipe_parse_errors_total",
                "Bodies that did not parse, by kind.",
                &["listener", "kind"],
            ),
            template_failures: declare.counter_vec(
                "hookpipe_template_failures_total",
                "Template renders that failed on a record or request (a fallback was used unless the listener has strict_templates).",
                &["listener", "template"],
            ),
            records_published: declare.counter_vec(
                "hookpipe_records_published_total",
                "Records acknowledged by Kafka.",
                &["listener"],
            ),
            pages_published: declare.counter_vec(
                "hookpipe_pages_published_total",
                "Pages acknowledged by Kafka.",
                &["listener"],
            ),
            pages_failed: declare.counter_vec(
                "hookpipe_pages_failed_total",
                "Pages Kafka did not acknowledge.",
                &["listener"],
            ),
            bytes_in: declare.counter_vec(
                "hookpipe_request_body_bytes_total",
                "Request body bytes received, after decoding.",
                &["listener"],
            ),
            page_records: declare.histogram_vec(
                "hookpipe_page_records",
                "Records per published page.",
                vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0],
                &["listener"],
            ),
            produce_latency,
            producer_queue_depth: declare.gauge(
                "hookpipe_producer_queue_depth",
                "Messages in the producer's local queue or in flight to Kafka.",
            ),
            in_flight: declare.gauge("hookpipe_in_flight_requests", "Ingest requests being processed."),
            mailbox_blocked,
            debug_windows_open: declare.gauge("hookpipe_debug_windows_open", "Debug windows currently open."),
            rate_limit_fleet_members: declare.gauge(
                "hookpipe_rate_limit_fleet_members",
                "Live serve instances the rate-limit buckets are divided among, this one included (1 when alone or not in a fleet).",
            ),
            rate_limit_fleet_share: declare.float_gauge_vec(
                "hookpipe_rate_limit_fleet_share",
                "This instance's share (0 to 1) of a rate-limit bucket: its capacity and refill are the bucket's times this (scope `global`: server.global_rate_limit, listener empty).",
                &["listener", "scope"],
            ),
            rate_limit_fleet_heartbeats: declare.counter_vec(
                "hookpipe_rate_limit_fleet_heartbeats_total",
                "Heartbeats this instance sent to kafka.fleet_topic, by outcome: acknowledged, or failed (not queued, or not acknowledged within kafka.message_timeout_ms).",
                &["outcome"],
            ),
            rate_limit_fleet_heartbeat_lag: declare.float_gauge(
                "hookpipe_rate_limit_fleet_heartbeat_lag_seconds",
                "Age, at each heartbeat, of this instance's newest heartbeat read back from kafka.fleet_topic (about heartbeat_ms plus a produce and a fetch when the topic works; 0 before the first one). Above server.fleet_rate_limit.member_timeout_ms the instance drops nobody and its shares stay as they were.",
            ),
            import_errors_open: declare.gauge(
                "hookpipe_import_errors_open",
                "Open import errors, all listeners (every instance mirrors the errors topic, so each reports the fleet's count).",
            ),
            debug_captures_dropped: declare.counter(
                "hookpipe_debug_captures_dropped_total",
                "Debug captures dropped because the recorder was overwhelmed.",
            ),
            samples_dropped: declare.counter(
                "hookpipe_samples_dropped_total",
                "Sample data updates dropped because the producer queue was full.",
            ),
            errors_republished: declare.counter_vec(
                "hookpipe_errors_republished_total",
                "Failed records republished for another attempt through the errors API.",
                &["listener"],
            ),
            producer_replacements: declare.counter_vec(
                "hookpipe_kafka_producer_replacements_total",
                "Page producer handles replaced by a fresh one (a new producer id), by reason.",
                &["reason"],
            ),
            kafka_ready: declare.gauge(
                "hookpipe_kafka_ready",
                "1 while pages are being acknowledged by Kafka (what /readyz says), 0 otherwise.",
            ),
            handshakes: declare.counter_vec(
                "hookpipe_handshakes_total",
                "Requests a handshake rule applied to: answered, or refused with a 4xx.",
                &["listener", "result"],
            ),
            schema_records: declare.counter_vec(
                "hookpipe_schema_records_total",
                "Records checked against their listener's schema, by outcome: valid, rejected (the request got 422) or quarantined.",
                &["listener", "outcome"],
            ),
            quarantine_pages: declare.counter_vec(
                "hookpipe_quarantine_pages_total",
                "Pages of quarantined records sent to the quarantine topic, by outcome: published (acknowledged) or failed.",
                &["listener", "outcome"],
            ),
            api_auth_failures: declare.counter_vec(
                "hookpipe_api_auth_failures_total",
                "Management-API requests refused for authentication: wrong_token (401) or locked_out (429, the peer failed too often lately).",
                &["outcome"],
            ),
            dedup_deliveries: declare.counter_vec(
                "hookpipe_dedup_deliveries_total",
                "Deliveries of listeners with dedup, by outcome: first (published), duplicate (answered, published nowhere), in_flight (409: the same delivery is being published), no_delivery_id (published, not deduplicated).",
                &["listener", "outcome"],
            ),
            dedup_ids: declare.gauge("hookpipe_dedup_ids", "Delivery ids this instance remembers for deduplication."),
            dedup_evicted: declare.counter(
                "hookpipe_dedup_evicted_total",
                "Delivery ids forgotten before their window ended because their listener's dedup.max_ids was reached.",
            ),
            dedup_feed_dropped: declare.counter(
                "hookpipe_dedup_feed_dropped_total",
                "Accepted delivery ids not sent to the dedup topic (producer queue full): other instances do not know them.",
            ),
            tls_reloads: declare.counter_vec(
                "hookpipe_tls_reloads_total",
                "SIGHUP reloads of the ingest listener's TLS certificate and key: reloaded (new connections get the new certificate) or failed (the previous one is still served).",
                &["outcome"],
            ),
            tls_certificate_expiry: declare.gauge_vec(
                "hookpipe_tls_certificate_expiry_timestamp_seconds",
                "Expiry (notAfter, Unix seconds) of the TLS certificate the ingest listener serves; absent without server.tls.",
                &[],
            ),
            import_waits_in_flight: declare.gauge(
                "hookpipe_import_waits_in_flight",
                "Requests of listeners with response.wait = \"import\" waiting for their import on this instance (capped by server.max_import_waits).",
            ),
            import_waits: declare.counter_vec(
                "hookpipe_import_waits_total",
                "Requests that waited for their import, by outcome: imported (success answer), failed (failure answer), timed_out (202), refused (503 over server.max_import_waits, nothing published), no_results (202 at once: the results topic is not read yet).",
                &["listener", "outcome"],
            ),
            import_results_consumed: declare.counter_vec(
                "hookpipe_import_results_consumed_total",
                "Messages read from the results topic: matched (a request waiting here), unknown (none here: dropped unread), malformed.",
                &["outcome"],
            ),
            names: declare.names(),
            registry,
        }
    }

    /// The Prometheus text exposition of the serve tier's metrics.
    pub fn render(&self) -> String {
        render(&self.registry)
    }

    /// The name of every metric family the serve tier declares, series or not (what
    /// dashboards and alert rules may name; checked by the deploy files' tests).
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl WorkerMetrics {
    fn new() -> WorkerMetrics {
        let registry = Registry::new();
        let declare = Declare::new(&registry);
        let consumer_lag = declare.register(
            IntGaugeVec::new(
                Opts::new(
                    "hookpipe_worker_consumer_lag",
                    "Messages of the worker's assigned partitions not yet consumed (from librdkafka statistics).",
                ),
                &["topic"],
            )
            .expect("valid metric"),
        );
        WorkerMetrics {
            records_imported: declare.counter_vec(
                "hookpipe_worker_records_imported_total",
                "Records imported into their target.",
                &["listener"],
            ),
            records_failed: declare.counter_vec(
                "hookpipe_worker_records_failed_total",
                "Records that failed permanently or exhausted their tries, recorded as errors.",
                &["listener"],
            ),
            records_retried: declare.counter_vec(
                "hookpipe_worker_records_retried_total",
                "Records sent to their target again after a retryable failure.",
                &["listener"],
            ),
            errors_resolved: declare.counter_vec(
                "hookpipe_worker_errors_resolved_total",
                "Open errors resolved by a later successful import of the same trace key.",
                &["listener"],
            ),
            retry_data_stored: declare.counter_vec(
                "hookpipe_worker_retry_data_records_total",
                "Failed records recorded as errors with their retry data (kept in the error).",
                &["listener"],
            ),
            pages_malformed: declare.counter_vec(
                "hookpipe_worker_pages_malformed_total",
                "Messages on a pages topic that are not hookpipe pages (skipped).",
                &["topic"],
            ),
            import_latency: declare.histogram_vec(
                "hookpipe_worker_import_latency_seconds",
                "Time to import one page into its target, retries included.",
                vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                ],
                &["listener"],
            ),
            target_responses: declare.counter_vec(
                "hookpipe_worker_target_responses_total",
                "Target responses by status class; `error` when no response arrived.",
                &["listener", "status_class"],
            ),
            consumer_lag,
            held_records: declare.gauge(
                "hookpipe_worker_held_records",
                "Records of ordered pages (listeners with an ordering_key) read and not yet settled: being imported, waiting behind their key, or done behind an earlier page of their partition; one for each other message done behind them.",
            ),
            fetch_pauses: declare.counter(
                "hookpipe_worker_fetch_pauses_total",
                "Times the worker paused fetching the partitions holding records because worker.max_held_records were held.",
            ),
            import_results: declare.counter_vec(
                "hookpipe_worker_import_results_total",
                "Import result messages written to the results topic for requests waiting for their import: published or failed (those requests are answered 202 at their timeout).",
                &["listener", "outcome"],
            ),
            names: declare.names(),
            registry,
        }
    }

    /// The Prometheus text exposition of the worker's metrics.
    pub fn render(&self) -> String {
        render(&self.registry)
    }

    /// The name of every metric family the worker declares, series or not.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// The serve tier's metrics, exported by its `GET /metrics`.
pub static METRICS: LazyLock<ServeMetrics> = LazyLock::new(ServeMetrics::new);

/// The import worker's metrics, exported by `worker.metrics_listen`'s `GET /metrics`.
pub static WORKER_METRICS: LazyLock<WorkerMetrics> = LazyLock::new(WorkerMetrics::new);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tier_exports_only_its_own_metrics() {
        METRICS.requests.with_label_values(&["t", "2xx"]).inc();
        WORKER_METRICS.records_imported.with_label_values(&["t"]).inc();
        WORKER_METRICS.consumer_lag.with_label_values(&["topic"]).set(0);
        let serve = METRICS.render();
        let worker = WORKER_METRICS.render();
        assert!(serve.contains("hookpipe_http_requests_total"), "{serve}");
        assert!(
            !serve.contains("hookpipe_worker_"),
            "no worker series on serve:\n{serve}"
        );
        assert!(worker.contains("hookpipe_worker_records_imported_total"), "{worker}");
        assert!(worker.contains("hookpipe_worker_consumer_lag"), "{worker}");
        for serve_only in [
            "hookpipe_http_requests_total",
            "hookpipe_in_flight_requests",
            "hookpipe_producer_queue_depth",
            "hookpipe_kafka_produce_latency_seconds",
            "hookpipe_debug_captures_dropped_total",
        ] {
            assert!(
                !worker.contains(serve_only),
                "{serve_only} not on the worker:\n{worker}"
            );
        }
    }

    #[test]
    fn names_list_every_declared_family_even_without_a_series() {
        let serve = METRICS.names();
        for name in [
            "hookpipe_http_requests_total",
            "hookpipe_rate_limited_total",
            "hookpipe_kafka_produce_latency_seconds",
            "hookpipe_mailbox_blocked_seconds_total",
        ] {
            assert!(serve.iter().any(|declared| declared == name), "{name} in {serve:?}");
        }
        let worker = WORKER_METRICS.names();
        assert!(worker.iter().any(|name| name == "hookpipe_worker_consumer_lag"));
        assert!(!worker.iter().any(|name| name == "hookpipe_http_requests_total"));
        assert!(serve.windows(2).all(|pair| pair[0] < pair[1]), "sorted, unique");
    }
}
