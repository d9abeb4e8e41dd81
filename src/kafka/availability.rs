//! What the page producer knows about Kafka right now, from its own delivery results and
//! librdkafka's events: whether pages are being acknowledged (`/readyz`), whether a page is
//! refused at once instead of holding its request (every broker is down), and when the librdkafka
//! producer must be replaced by a fresh one (a fatal error, producer-state errors that keep
//! coming, no producer id while a broker answers, every broker gone, or a delivery timed out
//! once it had a producer id).
//!
//! Pure logic: the clock is passed in, librdkafka is only named by its error codes, so every rule
//! is unit-tested here. Events carry the *generation* of the producer they come from; those of a
//! replaced producer (its purged messages, its last callbacks) change nothing.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::types::RDKafkaErrorCode;

/// How long a producer may stay without a producer id while a broker answers before it is
/// replaced (it normally gets one within milliseconds; one whose `InitProducerId` keeps failing
/// would wait for ever).
pub const NO_PRODUCER_ID_LIMIT: Duration = Duration::from_secs(5);
/// Deliveries refused for the producer's id, epoch or sequence, in a row, that make it replaced.
pub const PRODUCER_STATE_FAILURE_LIMIT: u32 = 3;

/// What a failed delivery says about Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Kafka was not reachable: pages are not being acknowledged.
    Unreachable,
    /// Kafka did not acknowledge within `kafka.message_timeout_ms` (kept by the supervisor, not
    /// librdkafka, which would bump its idempotent producer's epoch locally — which Tansu cannot
    /// take: `kafka::supervisor`): pages are not being acknowledged (see `replacement_due`).
    TimedOut,
    /// The broker refused the producer's id, epoch or sequence, or failed on them: the
    /// idempotence state is lost, and a fresh producer (a new `InitProducerId`) is the way out.
    ProducerState,
    /// This page was refused (too large, unknown topic, ...): says nothing about Kafka.
    Page,
}

/// Reads a delivery error code.
pub fn classify(code: RDKafkaErrorCode) -> FailureKind {
    use RDKafkaErrorCode as Code;
    match code {
        Code::Fatal
        | Code::OutOfOrderSequenceNumber
        | Code::UnknownProducerId
        | Code::InvalidProducerEpoch
        | Code::InvalidProducerIdMapping
        | Code::ProducerFenced
        | Code::Unknown => FailureKind::ProducerState,
        Code::MessageSizeTooLarge
        | Code::InvalidMessageSize
        | Code::InvalidMessage
        | Code::InvalidRecord
        | Code::UnknownTopic
        | Code::UnknownPartition
        | Code::UnknownTopicOrPartition
        | Code::TopicAuthorizationFailed
        | Code::InvalidTopic => FailureKind::Page,
        Code::MessageTimedOut | Code::RequestTimedOut => FailureKind::TimedOut,
        _ => FailureKind::Unreachable,
    }
}

/// Whether pages are being acknowledged, and if not, why (a fixed text for `/readyz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The last delivery was acknowledged (or none failed since a broker last answered).
    Acknowledging,
    /// Every broker is down or unreachable.
    BrokersUnreachable,
    /// Deliveries failed since the last acknowledgement.
    NotAcknowledging,
    /// The producer failed for good; a fresh one is being made.
    ProducerFailed,
}

impl Readiness {
    /// Whether pages are being acknowledged.
    pub fn is_ready(self) -> bool {
        self == Readiness::Acknowledging
    }

    /// The short text `/readyz` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Acknowledging => "reachable",
            Readiness::BrokersUnreachable => "brokers unreachable",
            Readiness::NotAcknowledging => "pages not acknowledged",
            Readiness::ProducerFailed => "producer failed; replacing it",
        }
    }
}

/// Why the producer is replaced (fixed texts, for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceReason {
    /// librdkafka raised a fatal error: the handle can never produce again.
    Fatal,
    /// Every broker went down: whatever was in flight is purged (answered 503), and the fresh
    /// producer asks for a new producer id when a broker is back, rather than bumping its epoch.
    BrokersDown,
    /// Deliveries keep failing on the producer's id, epoch or sequence.
    ProducerStateErrors,
    /// No producer id for [`NO_PRODUCER_ID_LIMIT`] while a broker answers.
    NoProducerId,
    /// A delivery timed out while the producer had an id (its message may be in flight, and is
    /// still queued: librdkafka has no message timeout of its own, so that it never bumps the
    /// epoch locally, which Tansu 0.6's storage dies on — README, "Broker outages"): a fresh
    /// handle, and the purge of what the old one holds.
    TimedOut,
}

impl ReplaceReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ReplaceReason::Fatal => "fatal",
            ReplaceReason::BrokersDown => "brokers_down",
            ReplaceReason::ProducerStateErrors => "producer_state_errors",
            ReplaceReason::NoProducerId => "no_producer_id",
            ReplaceReason::TimedOut => "timed_out",
        }
    }

    /// The log text.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplaceReason::Fatal => "fatal producer error",
            ReplaceReason::BrokersDown => "every broker went down",
            ReplaceReason::ProducerStateErrors => "deliveries keep failing on the producer id, epoch or sequence",
            ReplaceReason::NoProducerId => "no producer id while a broker answers",
            ReplaceReason::TimedOut => "a delivery timed out with the producer id assigned (what it holds is purged)",
        }
    }
}

/// The shared state: written from librdkafka's callbacks, the delivery futures and the
/// supervisor, read on every publish and by `/readyz`.
#[derive(Debug, Default)]
pub struct Availability {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The producer events count for; older ones are ignored.
    generation: u64,
    /// Since every broker went down (librdkafka's `ALL_BROKERS_DOWN`), until one answers.
    down_since: Option<Instant>,
    /// Unreachable or producer-state failures since the last acknowledgement.
    failures_since_ack: u32,
    /// Producer-state failures in a row.
    producer_state_failures: u32,
    /// A fatal error of this generation.
    fatal: bool,
    /// Since the statistics last showed the producer without a producer id.
    no_producer_id_since: Option<Instant>,
    /// The statistics showed this generation with a producer id (it may have had messages in
    /// flight).
    had_producer_id: bool,
    /// A delivery of this generation timed out after it had a producer id: replace it, and
    /// give it no more pages meanwhile (they would queue behind what it cannot deliver).
    timed_out_with_id: bool,
    /// Every broker went down while this generation was in use: replace it.
    replace_for_outage: bool,
    /// The last acknowledgement.
    last_ack: Option<Instant>,
    /// Of `failures_since_ack`, those of the handles before the last replacement, until the
    /// fresh one shows a broker answers it (its producer id, or an acknowledgement).
    failures_before_replacement: u32,
}

impl Availability {
    /// A fresh state for producer generation 0.
    pub fn new() -> Availability {
        Availability::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The generation events are counted for.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// librdkafka reported every broker down. Returns whether that is news.
    pub fn brokers_down(&self, generation: u64, now: Instant) -> bool {
        let mut state = self.lock();
        if generation != state.generation || state.down_since.is_some() {
            return false;
        }
        state.down_since = Some(now);
        state.replace_for_outage = true;
        true
    }

    /// A broker answered (a metadata request): producing makes sense again. Returns how long
    /// the brokers were down, if they were.
    pub fn broker_answered(&self, generation: u64) -> Option<Duration> {
        let mut state = self.lock();
        if generation != state.generation {
            return None;
        }
        let since = state.down_since.take()?;
        Some(since.elapsed())
    }

    /// A page was acknowledged.
    pub fn delivered(&self, generation: u64, now: Instant) {
        let mut state = self.lock();
        if generation != state.generation {
            return;
        }
        state.failures_since_ack = 0;
        state.producer_state_failures = 0;
        state.down_since = None;
        state.last_ack = Some(now);
        state.failures_before_replacement = 0;
    }

    /// A page was not acknowledged.
    pub fn failed(&self, generation: u64, kind: FailureKind) {
        let mut state = self.lock();
        if generation != state.generation {
            return;
        }
        match kind {
            FailureKind::Page => {}
            FailureKind::Unreachable => {
                state.failures_since_ack += 1;
                state.producer_state_failures = 0;
            }
            FailureKind::TimedOut => {
                state.failures_since_ack += 1;
                state.producer_state_failures = 0;
                if state.had_producer_id {
                    state.timed_out_with_id = true;
                }
            }
            FailureKind::ProducerState => {
                state.failures_since_ack += 1;
                state.producer_state_failures += 1;
            }
        }
    }

    /// librdkafka raised a fatal error on this generation.
    pub fn fatal(&self, generation: u64) {
        let mut state = self.lock();
        if generation == state.generation {
            state.fatal = true;
        }
    }

    /// What the statistics say of the producer id: `assigned` or not, seen `now`.
    pub fn producer_id(&self, generation: u64, assigned: bool, now: Instant) {
        let mut state = self.lock();
        if generation != state.generation {
            return;
        }
        if assigned {
            state.no_producer_id_since = None;
            state.had_producer_id = true;
            // The fresh producer got its id from a broker: the old ones' failures are forgotten.
            let carried = std::mem::take(&mut state.failures_before_replacement);
            state.failures_since_ack = state.failures_since_ack.saturating_sub(carried);
        } else if state.no_producer_id_since.is_none() {
            state.no_producer_id_since = Some(now);
        }
    }

    /// Whether a page is refused at once (no point holding its request): every broker is down,
    /// or the producer failed for good, or timed out with its id, and is about to be replaced.
    pub fn refusal(&self) -> Option<Readiness> {
        let state = self.lock();
        if state.fatal || state.timed_out_with_id {
            Some(Readiness::ProducerFailed)
        } else if state.down_since.is_some() {
            Some(Readiness::BrokersUnreachable)
        } else {
            None
        }
    }

    /// Whether pages are being acknowledged now.
    pub fn readiness(&self) -> Readiness {
        if let Some(refusal) = self.refusal() {
            return refusal;
        }
        if self.lock().failures_since_ack > 0 {
            Readiness::NotAcknowledging
        } else {
            Readiness::Acknowledging
        }
    }

    /// Whether every broker is down (the supervisor then asks for metadata until one answers).
    pub fn is_down(&self) -> bool {
        self.lock().down_since.is_some()
    }

    /// The last acknowledgement, if any.
    pub fn last_ack(&self) -> Option<Instant> {
        self.lock().last_ack
    }

    /// Whether the current producer must be replaced, and why.
    pub fn replacement_due(&self, now: Instant) -> Option<ReplaceReason> {
        let state = self.lock();
        if state.fatal {
            Some(ReplaceReason::Fatal)
        } else if state.replace_for_outage {
            Some(ReplaceReason::BrokersDown)
        } else if state.producer_state_failures >= PRODUCER_STATE_FAILURE_LIMIT {
            Some(ReplaceReason::ProducerStateErrors)
        } else if state.timed_out_with_id {
            Some(ReplaceReason::TimedOut)
        } else if state.down_since.is_none()
            && state
                .no_producer_id_since
                .is_some_and(|since| now.saturating_duration_since(since) >= NO_PRODUCER_ID_LIMIT)
        {
            Some(ReplaceReason::NoProducerId)
        } else {
            None
        }
    }

    /// A fresh producer, `generation`, replaced the current one: what was counted against the
    /// old one's state is forgotten; whether the brokers are down is not (the new one finds out
    /// again from a broker that answers), nor that deliveries failed since the last
    /// acknowledgement — pages are not acknowledged until the fresh producer shows a broker
    /// answers it, by a producer id or an acknowledgement (without that, `/readyz` would say
    /// 200 right after a replacement while the broker still hangs).
    pub fn replaced(&self, generation: u64) {
        let mut state = self.lock();
        debug_assert!(generation > state.generation);
        state.generation = generation;
        state.failures_before_replacement = state.failures_since_ack;
        state.producer_state_failures = 0;
        state.fatal = false;
        state.no_producer_id_since = None;
        state.had_producer_id = false;
        state.timed_out_with_id = false;
        state.replace_for_outage = false;
    }
}

/// The supervisor's backoff between two replacements: doubling from `initial` up to `max`, back
/// to `initial` once a page is acknowledged after a replacement.
#[derive(Debug, Clone)]
pub struct ReplaceBackoff {
    initial: Duration,
    max: Duration,
    next_delay: Duration,
    last_replacement: Option<Instant>,
}

impl ReplaceBackoff {
    /// A backoff from `initial` to `max`.
    pub fn new(initial: Duration, max: Duration) -> ReplaceBackoff {
        ReplaceBackoff {
            initial,
            max,
            next_delay: initial,
            last_replacement: None,
        }
    }

    /// Whether a replacement may happen `now`; `last_ack` resets the backoff when it came after
    /// the last replacement (that one worked).
    pub fn may_replace(&mut self, now: Instant, last_ack: Option<Instant>) -> bool {
        let Some(last) = self.last_replacement else {
            return true;
        };
        if last_ack.is_some_and(|ack| ack > last) {
            self.next_delay = self.initial;
            self.last_replacement = None;
            return true;
        }
        now.saturating_duration_since(last) >= self.next_delay
    }

    /// A replacement happened `now`: the next one waits longer.
    pub fn replaced(&mut self, now: Instant) {
        if self.last_replacement.is_some() {
            self.next_delay = (self.next_delay * 2).min(self.max);
        }
        self.last_replacement = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_as_unreachable_producer_state_or_page() {
        assert_eq!(classify(RDKafkaErrorCode::MessageTimedOut), FailureKind::TimedOut);
        assert_eq!(
            classify(RDKafkaErrorCode::BrokerTransportFailure),
            FailureKind::Unreachable
        );
        assert_eq!(classify(RDKafkaErrorCode::PurgeInflight), FailureKind::Unreachable);
        assert_eq!(
            classify(RDKafkaErrorCode::OutOfOrderSequenceNumber),
            FailureKind::ProducerState
        );
        assert_eq!(
            classify(RDKafkaErrorCode::UnknownProducerId),
            FailureKind::ProducerState
        );
        assert_eq!(
            classify(RDKafkaErrorCode::InvalidProducerEpoch),
            FailureKind::ProducerState
        );
        assert_eq!(classify(RDKafkaErrorCode::Fatal), FailureKind::ProducerState);
        assert_eq!(classify(RDKafkaErrorCode::MessageSizeTooLarge), FailureKind::Page);
    }

    #[test]
    fn readiness_follows_the_last_delivery() {
        let availability = Availability::new();
        let now = Instant::now();
        assert_eq!(availability.readiness(), Readiness::Acknowledging);
        availability.failed(0, FailureKind::Unreachable);
        assert_eq!(availability.readiness(), Readiness::NotAcknowledging);
        availability.delivered(0, now);
        assert!(availability.readiness().is_ready());
        // A page Kafka refuses for itself says nothing about Kafka.
        availability.failed(0, FailureKind::Page);
        assert!(availability.readiness().is_ready());
    }

    #[test]
    fn brokers_down_refuse_at_once_until_one_answers_and_replace_the_producer_once() {
        let availability = Availability::new();
        let now = Instant::now();
        assert!(availability.brokers_down(0, now));
        assert!(!availability.brokers_down(0, now), "news once");
        assert_eq!(availability.refusal(), Some(Readiness::BrokersUnreachable));
        assert_eq!(availability.readiness(), Readiness::BrokersUnreachable);
        assert_eq!(availability.replacement_due(now), Some(ReplaceReason::BrokersDown));
        availability.replaced(1);
        assert_eq!(availability.replacement_due(now), None, "one replacement per outage");
        assert!(availability.is_down(), "still down until a broker answers");
        // The new producer cannot connect either: no second replacement.
        assert!(!availability.brokers_down(1, now));
        assert_eq!(availability.replacement_due(now + Duration::from_secs(60)), None);
        assert!(availability.broker_answered(1).is_some());
        assert_eq!(availability.refusal(), None);
        assert!(availability.readiness().is_ready());
    }

    #[test]
    fn events_of_a_replaced_producer_change_nothing() {
        let availability = Availability::new();
        let now = Instant::now();
        availability.replaced(1);
        availability.failed(0, FailureKind::ProducerState);
        availability.fatal(0);
        assert!(!availability.brokers_down(0, now));
        availability.producer_id(0, false, now);
        assert!(availability.readiness().is_ready());
        assert_eq!(availability.replacement_due(now + Duration::from_secs(60)), None);
        availability.failed(1, FailureKind::Unreachable);
        assert_eq!(availability.readiness(), Readiness::NotAcknowledging);
        availability.delivered(0, now);
        assert_eq!(
            availability.readiness(),
            Readiness::NotAcknowledging,
            "an old ack is no news"
        );
    }

    #[test]
    fn a_replacement_while_deliveries_fail_is_not_ready_until_the_fresh_producer_is_answered() {
        let availability = Availability::new();
        let now = Instant::now();
        for _ in 0..PRODUCER_STATE_FAILURE_LIMIT {
            availability.failed(0, FailureKind::ProducerState);
        }
        availability.failed(0, FailureKind::Unreachable);
        assert_eq!(availability.readiness(), Readiness::NotAcknowledging);
        availability.replaced(1);
        assert_eq!(
            availability.readiness(),
            Readiness::NotAcknowledging,
            "nothing acknowledged since the failures: a fresh handle is no news of the broker"
        );
        assert_eq!(
            availability.replacement_due(now),
            None,
            "the old handle's state is forgotten"
        );
        // The fresh producer still waits for its id (the broker hangs): still not ready.
        availability.producer_id(1, false, now);
        assert_eq!(availability.readiness(), Readiness::NotAcknowledging);
        // The old handle's statistics say nothing.
        availability.producer_id(0, true, now);
        assert_eq!(availability.readiness(), Readiness::NotAcknowledging);
        // A broker granted the fresh producer its id: ready (no traffic needed).
        availability.producer_id(1, true, now);
        assert!(availability.readiness().is_ready());
        // Once confirmed, the id seen again does not clear later failures.
        availability.failed(1, FailureKind::Unreachable);
        availability.producer_id(1, true, now);
        assert_eq!(availability.readiness(), Readiness::NotAcknowledging);
        // Nor does a replacement's id clear the failures of the fresh handle itself.
        availability.replaced(2);
        availability.failed(2, FailureKind::Unreachable);
        availability.producer_id(2, true, now);
        assert_eq!(availability.readiness(), Readiness::NotAcknowledging);
        // An acknowledgement of the fresh producer confirms it too.
        availability.replaced(3);
        availability.delivered(3, now);
        assert!(availability.readiness().is_ready());
    }

    #[test]
    fn a_timeout_with_the_producer_id_assigned_refuses_and_replaces_at_once() {
        let availability = Availability::new();
        let now = Instant::now();
        // Without an id nothing was in flight: no epoch to bump, nothing to replace.
        availability.producer_id(0, false, now);
        availability.failed(0, FailureKind::TimedOut);
        assert_eq!(availability.replacement_due(now), None);
        assert_eq!(availability.refusal(), None);
        assert_eq!(availability.readiness(), Readiness::NotAcknowledging);
        availability.producer_id(0, true, now);
        availability.failed(0, FailureKind::TimedOut);
        assert_eq!(availability.replacement_due(now), Some(ReplaceReason::TimedOut));
        assert_eq!(
            availability.refusal(),
            Some(Readiness::ProducerFailed),
            "no page for a handle about to bump its epoch"
        );
        // A timeout of the old handle says nothing about the fresh one.
        availability.replaced(1);
        assert_eq!(availability.refusal(), None);
        availability.failed(0, FailureKind::TimedOut);
        availability.failed(1, FailureKind::TimedOut);
        assert_eq!(availability.replacement_due(now), None, "the fresh one has no id yet");
        availability.producer_id(1, true, now);
        availability.failed(1, FailureKind::TimedOut);
        assert_eq!(availability.replacement_due(now), Some(ReplaceReason::TimedOut));
    }

    #[test]
    fn a_replacement_without_failures_stays_ready() {
        let availability = Availability::new();
        availability.replaced(1);
        assert!(availability.readiness().is_ready());
    }

    #[test]
    fn fatal_errors_refuse_and_replace() {
        let availability = Availability::new();
        availability.fatal(0);
        assert_eq!(availability.refusal(), Some(Readiness::ProducerFailed));
        assert_eq!(availability.replacement_due(Instant::now()), Some(ReplaceReason::Fatal));
        availability.replaced(1);
        assert_eq!(availability.refusal(), None);
    }

    #[test]
    fn producer_state_errors_in_a_row_replace() {
        let availability = Availability::new();
        let now = Instant::now();
        for _ in 1..PRODUCER_STATE_FAILURE_LIMIT {
            availability.failed(0, FailureKind::ProducerState);
        }
        assert_eq!(availability.replacement_due(now), None);
        availability.failed(0, FailureKind::Unreachable);
        availability.failed(0, FailureKind::ProducerState);
        assert_eq!(availability.replacement_due(now), None, "a timeout breaks the row");
        for _ in 1..PRODUCER_STATE_FAILURE_LIMIT {
            availability.failed(0, FailureKind::ProducerState);
        }
        assert_eq!(
            availability.replacement_due(now),
            Some(ReplaceReason::ProducerStateErrors)
        );
    }

    #[test]
    fn no_producer_id_for_too_long_replaces_unless_the_brokers_are_down() {
        let availability = Availability::new();
        let start = Instant::now();
        availability.producer_id(0, false, start);
        availability.producer_id(0, false, start + Duration::from_secs(1));
        assert_eq!(availability.replacement_due(start + Duration::from_secs(4)), None);
        let late = start + NO_PRODUCER_ID_LIMIT;
        assert_eq!(availability.replacement_due(late), Some(ReplaceReason::NoProducerId));
        availability.producer_id(0, true, late);
        assert_eq!(availability.replacement_due(late), None);
        // While the brokers are down, having no id is expected.
        availability.producer_id(0, false, start);
        availability.brokers_down(0, start);
        availability.replaced(1);
        availability.producer_id(1, false, start);
        assert_eq!(availability.replacement_due(late), None);
    }

    #[test]
    fn replacements_back_off_until_one_works() {
        let mut backoff = ReplaceBackoff::new(Duration::from_secs(1), Duration::from_secs(4));
        let start = Instant::now();
        assert!(backoff.may_replace(start, None));
        backoff.replaced(start);
        assert!(!backoff.may_replace(start + Duration::from_millis(999), None));
        assert!(backoff.may_replace(start + Duration::from_secs(1), None));
        backoff.replaced(start + Duration::from_secs(1));
        assert!(!backoff.may_replace(start + Duration::from_secs(2), None), "2 s now");
        assert!(backoff.may_replace(start + Duration::from_secs(3), None));
        backoff.replaced(start + Duration::from_secs(3));
        backoff.replaced(start + Duration::from_secs(7));
        assert!(
            !backoff.may_replace(start + Duration::from_secs(10), None),
            "capped at 4 s"
        );
        assert!(backoff.may_replace(start + Duration::from_secs(11), None));
        // An acknowledgement after the last replacement: it worked, start over.
        assert!(backoff.may_replace(start + Duration::from_secs(8), Some(start + Duration::from_secs(8))));
        backoff.replaced(start + Duration::from_secs(9));
        assert!(backoff.may_replace(start + Duration::from_secs(10), None));
    }
}
