//! A supervised librdkafka producer handle (the pages' and the state topics' each have one) and
//! the thread that looks after it: librdkafka's
//! events (every broker down, fatal errors, the idempotent producer's state in its statistics)
//! feed the [`Availability`]; while every broker is down the supervisor asks for metadata until
//! one answers; and it replaces the handle with a fresh one — a new `InitProducerId`, not an
//! epoch bump — when the availability says so, with a backoff.
//!
//! Why replace rather than wait: when messages time out in librdkafka (an outage, a blackholed
//! connection, a broker slower than the message timeout), its idempotent producer bumps its epoch
//! locally and produces with it, sequence 0. Kafka accepts that; Tansu 0.6 panics on an epoch it
//! never issued — in the one task that serves its storage, so from then on it answers no request
//! that needs storage, from any client, until it is restarted (README, "Broker outages"). A fresh
//! handle asks for a new producer id, which every broker grants.
//!
//! Why the message timeout is hookpipe's, not librdkafka's: librdkafka bumps in its broker thread
//! the moment a message times out, and sends what it still queues with the new epoch as soon as a
//! connection is up again — a reconnection takes a millisecond or two, about as long as the
//! delivery report takes to reach the supervisor, so no replacement can be sure to come first
//! (the blackhole chaos case lost that race about one run in four). So the handles get no
//! message timeout (`message.timeout.ms = 0`: librdkafka never times a message out, and never
//! bumps for it), and [`Supervised::send`] fails a delivery with `MessageTimedOut` once
//! `kafka.message_timeout_ms` has passed; a handle whose delivery so timed out once it had an id
//! is replaced, given no page meanwhile, and what it still holds is purged by the replacement.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{OwnedMessage, Timestamp, ToBytes};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{FutureRecord, PurgeConfig};
use rdkafka::ClientConfig;
use tokio::sync::oneshot;

use super::availability::{classify, Availability, FailureKind, ReplaceBackoff, ReplaceReason};
use super::handle::ProducerHandle;
use crate::telemetry::events::{KafkaBack, KafkaDown, ProducerReplaced};

/// A librdkafka producer handle with hookpipe's callbacks (and its delivery thread).
pub type Handle = ProducerHandle<ProducerEvents>;

/// How often the supervisor looks (and probes, while every broker is down).
const TICK: Duration = Duration::from_millis(200);
/// How long one metadata probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Backoff between replacements: from this...
const REPLACE_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// ...doubling up to this.
const REPLACE_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a replaced handle gets to report what it purged before it is destroyed.
const RETIRE_FLUSH: Duration = Duration::from_millis(500);

/// A delivery of [`Supervised::send`]: librdkafka's report, `MessageTimedOut` once the message
/// timeout passed without one, or `Err` when the handle was destroyed first.
pub type Delivery = Pin<Box<dyn Future<Output = Result<OwnedDeliveryResult, oneshot::error::RecvError>> + Send>>;

/// The current handle, its generation, and what is known about Kafka.
pub struct Supervised {
    config: ClientConfig,
    /// `kafka.message_timeout_ms`, kept by [`Supervised::send`] (librdkafka's is off).
    message_timeout: Duration,
    current: RwLock<Current>,
    availability: Arc<Availability>,
    wake: Arc<Wake>,
}

/// One handle and its generation (0 for the first, +1 per replacement).
#[derive(Clone)]
pub struct Current {
    /// Its generation: the availability counts only the current one's events.
    pub generation: u64,
    /// The handle.
    pub producer: Arc<Handle>,
}

impl Supervised {
    /// Creates the first handle from `config` and starts the supervisor thread, which ends when
    /// the last reference to the returned value is gone. Deliveries time out after
    /// `message_timeout` (kept here: the handles get no `message.timeout.ms`, see the module).
    pub fn start(mut config: ClientConfig, message_timeout: Duration) -> Result<Arc<Supervised>, KafkaError> {
        config.set("message.timeout.ms", "0");
        let availability = Arc::new(Availability::new());
        let wake = Arc::new(Wake::default());
        let producer = create(&config, 0, &availability, &wake)?;
        let supervised = Arc::new(Supervised {
            config,
            message_timeout,
            current: RwLock::new(Current {
                generation: 0,
                producer: Arc::new(producer),
            }),
            availability,
            wake: wake.clone(),
        });
        let weak = Arc::downgrade(&supervised);
        std::thread::Builder::new()
            .name("kafka-supervisor".into())
            .spawn(move || supervise(weak, wake))
            .map_err(|e| KafkaError::ClientCreation(format!("cannot start the producer supervisor: {e}")))?;
        Ok(supervised)
    }

    /// The handle in use now, for what is not a message (metadata, flush, queue depth): messages
    /// go through [`Supervised::send`]. A replaced handle is destroyed when its last holder lets
    /// go.
    pub fn current(&self) -> Current {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Enqueues a message on the current handle; returns that handle's generation and the
    /// delivery, which fails with `MessageTimedOut` once the message timeout has passed without
    /// librdkafka's report (fed to nothing here: the caller reports the outcome with
    /// [`Supervised::delivered`] / [`Supervised::failed`]).
    ///
    /// Enqueued under the read lock of the current handle, so that once the supervisor swapped in
    /// a fresh one nothing more reaches the old handle, whose purge may make librdkafka bump its
    /// epoch.
    #[allow(clippy::type_complexity, clippy::result_large_err)]
    pub fn send<'a, K, P>(
        &self,
        record: FutureRecord<'a, K, P>,
    ) -> (u64, Result<Delivery, (KafkaError, FutureRecord<'a, K, P>)>)
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let deadline = tokio::time::Instant::now() + self.message_timeout;
        let (topic, partition) = (record.topic.to_string(), record.partition.unwrap_or(-1));
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let sent = current.producer.send_result(record);
        let generation = current.generation;
        drop(current);
        let delivery = sent.map(|report| -> Delivery {
            Box::pin(async move {
                match tokio::time::timeout_at(deadline, report).await {
                    Ok(report) => report,
                    Err(_elapsed) => Ok(Err((
                        KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
                        OwnedMessage::new(None, None, topic, Timestamp::NotAvailable, partition, -1, None),
                    ))),
                }
            })
        });
        (generation, delivery)
    }

    /// What is known about Kafka.
    pub fn availability(&self) -> &Availability {
        &self.availability
    }

    /// Wakes the supervisor now (a delivery result it should act on).
    pub fn nudge(&self) {
        self.wake.notify();
    }

    /// Feeds a message of handle `generation` that Kafka acknowledged to the availability.
    pub fn delivered(&self, generation: u64) {
        self.availability.delivered(generation, Instant::now());
    }

    /// Feeds a message of handle `generation` that failed to the availability, waking the
    /// supervisor when the handle's idempotence state is in doubt (or about to be: a timeout).
    pub fn failed(&self, generation: u64, error: &KafkaError) {
        let kind = error.rdkafka_error_code().map_or(FailureKind::Unreachable, classify);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.availability.fatal(generation);
        }
        self.availability.failed(generation, kind);
        if matches!(kind, FailureKind::ProducerState | FailureKind::TimedOut) {
            self.nudge();
        }
    }

    /// Raises a fatal error in the current librdkafka handle, as the broker's refusal of its
    /// idempotence state would (librdkafka's own test hook): for the tests of the replacement.
    #[doc(hidden)]
    pub fn raise_fatal_error_for_tests(&self) {
        let current = self.current();
        let reason = c"hookpipe test: fatal error";
        // SAFETY: the handle is alive (held by `current`) and `reason` is a NUL-terminated
        // string that outlives the call, which copies it.
        unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                current.producer.client().native_ptr(),
                rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            );
        }
    }

    /// Replaces the handle by a fresh one; what the old one still holds is purged (answered as
    /// not acknowledged, so its requests get 503 now rather than at `message.timeout.ms`).
    fn replace(&self, reason: ReplaceReason) -> Result<(), KafkaError> {
        let old = self.current();
        let generation = old.generation + 1;
        let producer = Arc::new(create(&self.config, generation, &self.availability, &self.wake)?);
        self.availability.replaced(generation);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Current { generation, producer };
        ProducerReplaced {
            reason: reason.label(),
            detail: reason.as_str(),
            generation,
        }
        .emit();
        old.producer.purge(PurgeConfig::default().queue().inflight());
        // Delivers the purge's reports (their requests are answered); the handle is destroyed
        // when the last publish holding it lets go — normally here.
        let _ = old.producer.flush(RETIRE_FLUSH);
        Ok(())
    }

    /// While every broker is down: asks for metadata, and once a broker answers, pages are
    /// accepted again.
    fn probe(&self) {
        let current = self.current();
        if current.producer.client().fetch_metadata(None, PROBE_TIMEOUT).is_ok() {
            if let Some(outage) = self.availability.broker_answered(current.generation) {
                KafkaBack { outage }.emit();
            }
        }
    }
}

/// The supervisor's loop: one look per tick (or sooner when woken), until the producer is gone.
fn supervise(weak: Weak<Supervised>, wake: Arc<Wake>) {
    let mut backoff = ReplaceBackoff::new(REPLACE_BACKOFF_INITIAL, REPLACE_BACKOFF_MAX);
    loop {
        let Some(supervised) = weak.upgrade() else {
            return;
        };
        let now = Instant::now();
        if let Some(reason) = supervised.availability.replacement_due(now) {
            if backoff.may_replace(now, supervised.availability.last_ack()) {
                backoff.replaced(now);
                if let Err(error) = supervised.replace(reason) {
                    tracing::error!(%error, "cannot create a fresh Kafka producer; trying again");
                }
            }
            // A handle waiting for its replacement keeps what it queues (no page: refused): it
            // has no message timeout of its own, so nothing of it makes librdkafka bump; a purge
            // of a handle still in use would (a gap in its sequence numbers).
        }
        if supervised.availability.is_down() {
            supervised.probe();
        }
        drop(supervised);
        wake.wait(TICK);
    }
}

/// Creates handle `generation`, its callbacks feeding `availability`.
fn create(
    config: &ClientConfig,
    generation: u64,
    availability: &Arc<Availability>,
    wake: &Arc<Wake>,
) -> Result<Handle, KafkaError> {
    let mut config = config.clone();
    config.set_log_level(if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
        RDKafkaLogLevel::Debug
    } else {
        RDKafkaLogLevel::Info
    });
    ProducerHandle::create(
        &config,
        ProducerEvents {
            generation,
            availability: availability.clone(),
            wake: wake.clone(),
        },
    )
}

/// librdkafka's callbacks of one handle.
pub struct ProducerEvents {
    generation: u64,
    availability: Arc<Availability>,
    wake: Arc<Wake>,
}

impl ClientContext for ProducerEvents {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        super::log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                if self.availability.brokers_down(self.generation, Instant::now()) {
                    KafkaDown { reason }.emit();
                    self.wake.notify();
                }
            }
            Some(RDKafkaErrorCode::Fatal) => {
                tracing::error!(target: "librdkafka", generation = self.generation, reason, "fatal producer error");
                self.availability.fatal(self.generation);
                self.wake.notify();
            }
            // Repeats on every reconnection attempt while a broker is away.
            Some(RDKafkaErrorCode::BrokerTransportFailure) => {
                tracing::debug!(target: "librdkafka", %error, reason, "Kafka connection failed")
            }
            _ => tracing::warn!(target: "librdkafka", %error, reason, "Kafka producer error"),
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        if let Some(assigned) = producer_id_assigned(statistics) {
            self.availability.producer_id(self.generation, assigned, Instant::now());
        }
    }
}

/// Whether librdkafka's statistics show the idempotent producer with a producer id
/// (`eos.idemp_state` is `Assigned`); `None` when they do not say.
pub fn producer_id_assigned(statistics: &[u8]) -> Option<bool> {
    // Only the one field is deserialized: the rest (per broker, per partition: kilobytes, every
    // second, per handle) is skipped without building values.
    #[derive(serde::Deserialize)]
    struct Statistics<'a> {
        #[serde(borrow)]
        eos: Option<Eos<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Eos<'a> {
        #[serde(borrow)]
        idemp_state: Option<std::borrow::Cow<'a, str>>,
    }
    let statistics: Statistics<'_> = serde_json::from_slice(statistics).ok()?;
    Some(statistics.eos?.idemp_state? == "Assigned")
}

/// Wakes the supervisor before its tick when an event needs acting on.
#[derive(Default)]
struct Wake {
    woken: Mutex<bool>,
    condvar: Condvar,
}

impl Wake {
    fn notify(&self) {
        *self.woken.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.condvar.notify_one();
    }

    fn wait(&self, timeout: Duration) {
        let woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut woken, _) = self
            .condvar
            .wait_timeout_while(woken, timeout, |woken| !*woken)
            .unwrap_or_else(PoisonError::into_inner);
        *woken = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::embedded::EmbeddedCluster;

    /// librdkafka's `message.timeout.ms` of a handle, as the handle itself has it.
    fn librdkafka_message_timeout(handle: &Handle) -> String {
        let mut value = [0u8; 32];
        let mut size = value.len();
        // SAFETY: the handle is alive (borrowed); its configuration lives as long as it; the
        // buffer and its size are ours.
        let result = unsafe {
            let conf = rdkafka::bindings::rd_kafka_conf(handle.client().native_ptr());
            rdkafka::bindings::rd_kafka_conf_get(
                conf,
                c"message.timeout.ms".as_ptr(),
                value.as_mut_ptr().cast(),
                &mut size,
            )
        };
        assert_eq!(result, rdkafka::bindings::rd_kafka_conf_res_t::RD_KAFKA_CONF_OK);
        String::from_utf8_lossy(&value[..size.saturating_sub(1)]).into_owned()
    }

    /// librdkafka bumps the idempotent producer's epoch itself when a message times out in it,
    /// and sends what it still queues with that epoch once a connection is up, before any
    /// replacement can come (Tansu 0.6 panics on it: the module's doc). So no handle has a
    /// message timeout of its own — the first and the replaced ones — whatever the
    /// configuration says.
    #[test]
    fn the_handles_have_no_message_timeout_of_their_own() {
        let mut config =
            crate::kafka::durable_producer_config(&crate::config::kafka::KafkaSettings::default(), "127.0.0.1:1");
        config.set("message.timeout.ms", "2000");
        let supervised = Supervised::start(config, Duration::from_secs(2)).unwrap();
        assert_eq!(librdkafka_message_timeout(&supervised.current().producer), "0");
        // No broker answers at 127.0.0.1:1, so the supervisor replaces the handle itself (every
        // broker down); a replacement of the test's own would race with it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let replaced = loop {
            let current = supervised.current();
            if current.generation >= 1 {
                break current;
            }
            assert!(Instant::now() < deadline, "the handle was never replaced");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(librdkafka_message_timeout(&replaced.producer), "0");
    }

    /// The message timeout is kept by `send`: a broker slower than it fails the delivery with
    /// `MessageTimedOut` at the timeout, not at the broker's answer.
    #[actix::test]
    async fn a_delivery_not_acknowledged_within_the_message_timeout_times_out() {
        let cluster = EmbeddedCluster::start().unwrap();
        cluster.create_topic("t", 1).unwrap();
        let config = crate::kafka::durable_producer_config(
            &crate::config::kafka::KafkaSettings::default(),
            &cluster.bootstrap_servers(),
        );
        let supervised = Supervised::start(config, Duration::from_millis(1000)).unwrap();
        let record = || FutureRecord::<str, [u8]>::to("t").key("k").payload(b"v");
        let (_, first) = supervised.send(record());
        first.unwrap().await.unwrap().unwrap();
        cluster.slow_down(1, Duration::from_secs(8)).unwrap();
        let started = Instant::now();
        let (_, slow) = supervised.send(record());
        let report = slow.unwrap().await.unwrap();
        let waited = started.elapsed();
        match report {
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), _)) => {}
            other => panic!("not timed out: {other:?}"),
        }
        assert!(
            waited >= Duration::from_millis(1000) && waited < Duration::from_secs(6),
            "timed out after {waited:?}"
        );
    }

    #[test]
    fn the_producer_id_is_read_from_the_statistics() {
        let assigned = br#"{"name":"p","eos":{"idemp_state":"Assigned","idemp_stateage":12,"producer_id":3}}"#;
        assert_eq!(producer_id_assigned(assigned), Some(true));
        let waiting = br#"{"eos":{"idemp_state":"WaitPID","idemp_stateage":5000}}"#;
        assert_eq!(producer_id_assigned(waiting), Some(false));
        assert_eq!(producer_id_assigned(br#"{"name":"p"}"#), None);
        // As librdkafka writes them: the field after kilobytes of others, nested and escaped.
        let full = br#"{"name":"p\"1","brokers":{"127.0.0.1:9092/1":{"int_latency":{"min":1,"p99":[1,2.5e3]},"toppars":{}}},"topics":{"t":{"partitions":{"0":{"msgq_cnt":0}}}},"eos":{"idemp_state":"Assigned","txn_state":"Init","producer_id":7},"tx":3}"#;
        assert_eq!(producer_id_assigned(full), Some(true));
        assert_eq!(producer_id_assigned(br#"{"eos":{"idemp_state":"Init"}}"#), Some(false));
        assert_eq!(producer_id_assigned(b"not json"), None);
    }
}
