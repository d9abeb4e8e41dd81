//! Logging setup and every metric hookpipe exports, in one place.
//!
//! Metric names are `hookpipe_<thing>_<unit>[_total]`. Labels come from small fixed sets: a
//! listener id (only ids of configured listeners, `unknown` otherwise), a status class, an
//! outcome or reason from a fixed list — never a path, token, address or error text.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
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

/// All of hookpipe's metrics.
pub struct Metrics {
    registry: Registry,
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
    pub mailbox_blocked: prometheus::CounterVec,
    /// Debug windows open on this instance's view.
    pub debug_windows_open: IntGauge,
    /// Debug captures dropped because the recorder or its producer queue was full.
    pub debug_captures_dropped: IntCounter,
    /// Sample data updates dropped because the producer queue was full.
    pub samples_dropped: IntCounter,
    /// Records whose retry data was acknowledged by Kafka, by listener.
    pub retry_data_stored: IntCounterVec,
    /// Records republished for another attempt through the errors API, by listener.
    pub errors_republished: IntCounterVec,
    /// Worker: records imported into their target, by listener.
    pub worker_records_imported: IntCounterVec,
    /// Worker: records that failed permanently or exhausted their tries (recorded as errors), by listener.
    pub worker_records_failed: IntCounterVec,
    /// Worker: records sent to their target again after a retryable failure, by listener.
    pub worker_records_retried: IntCounterVec,
    /// Worker: open errors resolved by a later successful import, by listener.
    pub worker_errors_resolved: IntCounterVec,
    /// Worker: pages that are not hookpipe pages (skipped), by topic.
    pub worker_pages_malformed: IntCounterVec,
    /// Worker: time to import one page (all of its records, retries included), by listener.
    pub worker_import_latency: HistogramVec,
    /// Worker: responses of targets by listener and status class (`2xx`…`5xx`, `error` without a response).
    pub worker_target_responses: IntCounterVec,
    /// Worker: messages not yet consumed by this worker, summed over its partitions, by topic.
    pub worker_consumer_lag: IntGaugeVec,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(counter.clone())).expect("unique metric");
    counter
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let page_records = HistogramVec::new(
            HistogramOpts::new("hookpipe_page_records", "Records per published page.")
                .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0]),
            &["listener"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(page_records.clone()))
            .expect("unique metric");
        let produce_latency = Histogram::with_opts(
            HistogramOpts::new(
                "hookpipe_kafka_produce_latency_seconds",
                "Time from enqueueing a page to Kafka's delivery report.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(produce_latency.clone()))
            .expect("unique metric");
        let gauge = |name: &str, help: &str| {
            let gauge = IntGauge::new(name, help).expect("valid metric");
            registry.register(Box::new(gauge.clone())).expect("unique metric");
            gauge
        };
        let producer_queue_depth = gauge(
            "hookpipe_producer_queue_depth",
            "Messages in the producer's local queue or in flight to Kafka.",
        );
        let in_flight = gauge("hookpipe_in_flight_requests", "Ingest requests being processed.");
        let debug_windows_open = gauge("hookpipe_debug_windows_open", "Debug windows currently open.");
        let mailbox_blocked = prometheus::CounterVec::new(
            Opts::new(
                "hookpipe_mailbox_blocked_seconds_total",
                "Time stages spent waiting for room in the next stage's mailbox.",
            ),
            &["stage"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(mailbox_blocked.clone()))
            .expect("unique metric");
        // Every stage is exported from the start, so "never blocked" reads as 0, not as absent.
        for stage in ["verify", "rate_limit", "parse", "page", "retry_store"] {
            mailbox_blocked.with_label_values(&[stage]);
        }
        let worker_import_latency = HistogramVec::new(
            HistogramOpts::new(
                "hookpipe_worker_import_latency_seconds",
                "Time to import one page into its target, retries included.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
            &["listener"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(worker_import_latency.clone()))
            .expect("unique metric");
        let worker_consumer_lag = IntGaugeVec::new(
            Opts::new(
                "hookpipe_worker_consumer_lag",
                "Messages of the worker's assigned partitions not yet consumed (from librdkafka statistics).",
            ),
            &["topic"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(worker_consumer_lag.clone()))
            .expect("unique metric");
        let plain_counter = |name: &str, help: &str| {
            let counter = IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(counter.clone())).expect("unique metric");
            counter
        };
        Metrics {
            requests: counter_vec(
                &registry,
                "hookpipe_http_requests_total",
                "Ingest requests by listener and status class.",
                &["listener", "status_class"],
            ),
            verification_failures: counter_vec(
                &registry,
                "hookpipe_verification_failures_total",
                "Requests that failed verification, by reason.",
                &["listener", "reason"],
            ),
            rate_limited: counter_vec(
                &registry,
                "hookpipe_rate_limited_total",
                "Requests refused by a rate-limit bucket.",
                &["listener", "scope"],
            ),
            parse_errors: counter_vec(
                &registry,
                "hookpipe_parse_errors_total",
                "Bodies that did not parse, by kind.",
                &["listener", "kind"],
            ),
            template_failures: counter_vec(
                &registry,
                "hookpipe_template_failures_total",
                "Template renders that failed on a record or request (a fallback was used unless the listener has strict_templates).",
                &["listener", "template"],
            ),
            records_published: counter_vec(
                &registry,
                "hookpipe_records_published_total",
                "Records acknowledged by Kafka.",
                &["listener"],
            ),
            pages_published: counter_vec(
                &registry,
                "hookpipe_pages_published_total",
                "Pages acknowledged by Kafka.",
                &["listener"],
            ),
            pages_failed: counter_vec(
                &registry,
                "hookpipe_pages_failed_total",
                "Pages Kafka did not acknowledge.",
                &["listener"],
            ),
            bytes_in: counter_vec(
                &registry,
                "hookpipe_request_body_bytes_total",
                "Request body bytes received, after decoding.",
                &["listener"],
            ),
            page_records,
            produce_latency,
            producer_queue_depth,
            in_flight,
            mailbox_blocked,
            debug_windows_open,
            debug_captures_dropped: plain_counter(
                "hookpipe_debug_captures_dropped_total",
                "Debug captures dropped because the recorder was overwhelmed.",
            ),
            samples_dropped: plain_counter(
                "hookpipe_samples_dropped_total",
                "Sample data updates dropped because the producer queue was full.",
            ),
            retry_data_stored: counter_vec(
                &registry,
                "hookpipe_retry_data_records_total",
                "Records whose retry data Kafka acknowledged.",
                &["listener"],
            ),
            errors_republished: counter_vec(
                &registry,
                "hookpipe_errors_republished_total",
                "Failed records republished for another attempt through the errors API.",
                &["listener"],
            ),
            worker_records_imported: counter_vec(
                &registry,
                "hookpipe_worker_records_imported_total",
                "Records imported into their target.",
                &["listener"],
            ),
            worker_records_failed: counter_vec(
                &registry,
                "hookpipe_worker_records_failed_total",
                "Records that failed permanently or exhausted their tries, recorded as errors.",
                &["listener"],
            ),
            worker_records_retried: counter_vec(
                &registry,
                "hookpipe_worker_records_retried_total",
                "Records sent to their target again after a retryable failure.",
                &["listener"],
            ),
            worker_errors_resolved: counter_vec(
                &registry,
                "hookpipe_worker_errors_resolved_total",
                "Open errors resolved by a later successful import of the same trace key.",
                &["listener"],
            ),
            worker_pages_malformed: counter_vec(
                &registry,
                "hookpipe_worker_pages_malformed_total",
                "Messages on a pages topic that are not hookpipe pages (skipped).",
                &["topic"],
            ),
            worker_import_latency,
            worker_target_responses: counter_vec(
                &registry,
                "hookpipe_worker_target_responses_total",
                "Target responses by status class; `error` when no response arrived.",
                &["listener", "status_class"],
            ),
            worker_consumer_lag,
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding metrics to a Vec cannot fail");
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The status class label of a status code.
pub fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A template (`trace_key`, `data_uri`, `response_body`) failed to render: counts it and logs
/// it at debug level (once per record would flood warn), with the reason — which names
/// helpers, argument positions and field names, never record content.
pub struct TemplateFailed<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// Which template: `trace_key`, `data_uri` or `response_body`.
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
            listener = self.listener,
            template = self.template,
            reason = self.reason,
            "template failed to render"
        );
    }
}
