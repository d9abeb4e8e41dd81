//! The events of waiting for imports (`response.wait = "import"`): the serve tier's waits and
//! the results it reads, the worker's results it writes.

use std::time::Duration;

use super::super::{METRICS, WORKER_METRICS};

/// The number of requests waiting for their import on this instance changed.
pub struct ImportWaitsInFlight {
    /// Waiting now.
    pub in_flight: usize,
}

impl ImportWaitsInFlight {
    /// Sets `hookpipe_import_waits_in_flight`.
    pub fn emit(&self) {
        METRICS.import_waits_in_flight.set(self.in_flight as i64);
    }
}

/// A request of a listener that waits for its imports was answered (or refused before anything
/// was published).
pub struct ImportWaitFinished<'a> {
    /// The listener's id.
    pub listener: &'a str,
    /// The request's id.
    pub request_id: &'a str,
    /// `imported`, `failed`, `timed_out`, `refused` or `no_results`.
    pub outcome: &'static str,
    /// How long it waited after Kafka's acknowledgement.
    pub waited: Duration,
}

impl ImportWaitFinished<'_> {
    /// Counts it in `hookpipe_import_waits_total`; a timeout or a refusal gets a log line.
    pub fn emit(&self) {
        METRICS
            .import_waits
            .with_label_values(&[self.listener, self.outcome])
            .inc();
        let waited_ms = self.waited.as_millis() as u64;
        match self.outcome {
            "timed_out" | "no_results" => {
                tracing::info!(target: "hookpipe::import_wait", listener = self.listener, request_id = self.request_id,
                    outcome = self.outcome, waited_ms, "answered 202 before the import finished (the records are durable)")
            }
            "refused" => {
                tracing::debug!(target: "hookpipe::import_wait", listener = self.listener, request_id = self.request_id,
                    "refused: server.max_import_waits requests are waiting already")
            }
            _ => {
                tracing::debug!(target: "hookpipe::import_wait", listener = self.listener, request_id = self.request_id,
                outcome = self.outcome, waited_ms, "import finished")
            }
        }
    }
}

/// A message of the results topic was read by a serve instance.
pub struct ImportResultConsumed {
    /// `matched`, `unknown` or `malformed`.
    pub outcome: &'static str,
}

impl ImportResultConsumed {
    /// Counts it in `hookpipe_import_results_consumed_total`.
    pub fn emit(&self) {
        METRICS.import_results_consumed.with_label_values(&[self.outcome]).inc();
    }
}

/// The worker wrote (or failed to write) the import results of one page.
pub struct ImportResultsPublished<'a> {
    /// The page's listener.
    pub listener: &'a str,
    /// Messages Kafka acknowledged.
    pub published: usize,
    /// Messages it did not.
    pub failed: usize,
    /// Why, when some failed.
    pub error: Option<&'a str>,
}

impl ImportResultsPublished<'_> {
    /// Counts them in `hookpipe_worker_import_results_total`; failures get a warning.
    pub fn emit(&self) {
        let counter = |outcome: &str, count: usize| {
            if count > 0 {
                WORKER_METRICS
                    .import_results
                    .with_label_values(&[self.listener, outcome])
                    .inc_by(count as u64);
            }
        };
        counter("published", self.published);
        counter("failed", self.failed);
        if let Some(error) = self.error {
            tracing::warn!(target: "hookpipe::worker", listener = self.listener, failed = self.failed, error,
                "cannot write import results: the requests waiting for them are answered 202 at their timeout");
        }
    }
}
