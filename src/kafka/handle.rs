//! One librdkafka producer handle and the thread that delivers its reports: librdkafka writes a
//! byte to a socket when its main queue (delivery reports, errors, statistics, logs) goes from
//! empty to non-empty (`rd_kafka_queue_io_event_enable`), and the thread sleeps in a `read` of
//! that socket until then, serves what is queued without blocking, and sleeps again.
//!
//! Why not rust-rdkafka's `FutureProducer`: its thread polls the queue in 100 ms calls whose
//! deadline it turns into whole milliseconds, so the last millisecond of every call is a spin of
//! non-blocking polls (and `clock_gettime`): ~1 % of a core per handle, loaded or idle, two
//! handles per serve instance (pages, state). Delivery futures, what they yield and when — only
//! once librdkafka reported the message — are the `FutureProducer`'s.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::producer::future_producer::{Delivery, OwnedDeliveryResult};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureRecord, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::util::Timeout;
use tokio::sync::oneshot;

/// How long the delivery thread sleeps at most without a wake-up byte (it looks whether it
/// should stop; a report is never left waiting for this).
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// What a delivery future yields: librdkafka's report (as `FutureProducer`'s), or `Err` when the
/// handle was destroyed first.
pub type DeliveryFuture = oneshot::Receiver<OwnedDeliveryResult>;

/// A handle's callbacks (`C`) and its delivery reports, which complete the futures.
pub struct Delivering<C> {
    inner: C,
}

impl<C: ClientContext> ClientContext for Delivering<C> {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.inner.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.inner.error(error, reason);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.inner.stats_raw(statistics);
    }
}

impl<C: ClientContext + 'static> ProducerContext for Delivering<C> {
    type DeliveryOpaque = Box<oneshot::Sender<OwnedDeliveryResult>>;

    fn delivery(&self, result: &DeliveryResult<'_>, sender: Self::DeliveryOpaque) {
        let owned = match result {
            Ok(message) => Ok(Delivery {
                partition: message.partition(),
                offset: message.offset(),
                timestamp: message.timestamp(),
            }),
            Err((error, message)) => Err((error.clone(), message.detach())),
        };
        // The request may have gone (its deadline passed): nobody to tell.
        let _ = sender.send(owned);
    }
}

/// A producer handle whose delivery reports are served by its own thread, woken by librdkafka.
pub struct ProducerHandle<C: ClientContext + 'static> {
    producer: Arc<BaseProducer<Delivering<C>>>,
    /// librdkafka's main queue (a reference of ours, destroyed on drop).
    queue: QueuePtr,
    /// The end librdkafka writes to (non-blocking: a full socket drops the byte, not the thread).
    wake: UnixStream,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The main queue's pointer, shared with the delivery thread.
#[derive(Clone, Copy)]
struct QueuePtr(*mut rdkafka::bindings::rd_kafka_queue_t);

// SAFETY: librdkafka queues are thread-safe; the pointer is destroyed only after the thread
// that shares it has been joined.
unsafe impl Send for QueuePtr {}
// SAFETY: as above.
unsafe impl Sync for QueuePtr {}

impl<C: ClientContext + 'static> ProducerHandle<C> {
    /// Creates the handle from `config` with the callbacks of `context`, and its thread.
    pub fn create(config: &ClientConfig, context: C) -> KafkaResult<ProducerHandle<C>> {
        Self::create_with_idle_wait(config, context, Some(IDLE_WAIT))
    }

    /// [`ProducerHandle::create`] whose thread sleeps at most `idle_wait` without a wake-up
    /// (`None`: until woken; the tests use it to show that no report waits for the timeout).
    fn create_with_idle_wait(
        config: &ClientConfig,
        context: C,
        idle_wait: Option<Duration>,
    ) -> KafkaResult<ProducerHandle<C>> {
        let producer: BaseProducer<Delivering<C>> = config.create_with_context(Delivering { inner: context })?;
        let producer = Arc::new(producer);
        let (wake, woken) = UnixStream::pair()
            .map_err(|e| KafkaError::ClientCreation(format!("cannot create the delivery socket: {e}")))?;
        wake.set_nonblocking(true)
            .and_then(|()| woken.set_read_timeout(idle_wait))
            .map_err(|e| KafkaError::ClientCreation(format!("cannot set up the delivery socket: {e}")))?;
        // SAFETY: the handle is alive (held by `producer`); the queue reference is destroyed in
        // `drop` before the handle can be.
        let queue = QueuePtr(unsafe { rdkafka::bindings::rd_kafka_queue_get_main(producer.client().native_ptr()) });
        // SAFETY: the queue is alive; the payload is copied; the socket stays open until the
        // wake-ups are disabled again in `drop`.
        unsafe {
            rdkafka::bindings::rd_kafka_queue_io_event_enable(queue.0, wake.as_raw_fd(), b"1".as_ptr().cast(), 1);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (producer, stop) = (producer.clone(), stop.clone());
            std::thread::Builder::new()
                .name("producer polling thread".into())
                .spawn(move || deliver(&producer, queue, woken, &stop))
        };
        let mut handle = ProducerHandle {
            producer,
            queue,
            wake,
            stop,
            thread: None,
        };
        handle.thread =
            Some(thread.map_err(|e| KafkaError::ClientCreation(format!("cannot start the delivery thread: {e}")))?);
        Ok(handle)
    }

    /// Enqueues a message; the future completes once librdkafka reports it acknowledged or failed.
    #[allow(clippy::result_large_err)]
    pub fn send_result<'a, K, P>(
        &self,
        record: FutureRecord<'a, K, P>,
    ) -> Result<DeliveryFuture, (KafkaError, FutureRecord<'a, K, P>)>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        let (sender, receiver) = oneshot::channel();
        let base = BaseRecord {
            topic: record.topic,
            partition: record.partition,
            payload: record.payload,
            key: record.key,
            timestamp: record.timestamp,
            headers: record.headers,
            delivery_opaque: Box::new(sender),
        };
        self.producer.send(base).map(|()| receiver).map_err(|(error, base)| {
            let record = FutureRecord {
                topic: base.topic,
                partition: base.partition,
                payload: base.payload,
                key: base.key,
                timestamp: base.timestamp,
                headers: base.headers,
            };
            (error, record)
        })
    }

    /// The client underneath (metadata, the native handle).
    pub fn client(&self) -> &Client<Delivering<C>> {
        self.producer.client()
    }

    /// Drops what is queued (and, with `inflight`, in flight); their futures fail.
    pub fn purge(&self, flags: PurgeConfig) {
        self.producer.purge(flags);
    }

    /// Waits until every queued message is delivered or failed (serving reports itself).
    pub fn flush<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        self.producer.flush(timeout)
    }

    /// Messages queued or in flight.
    pub fn in_flight_count(&self) -> i32 {
        self.producer.in_flight_count()
    }
}

impl<C: ClientContext + 'static> Drop for ProducerHandle<C> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = (&self.wake).write(b"s");
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // SAFETY: the thread that shared the queue has ended; no byte is written to the socket
        // after this, and the queue reference is ours to destroy, before the handle (dropped
        // with `producer`: purged, and flushed by rust-rdkafka, which serves the reports itself).
        unsafe {
            rdkafka::bindings::rd_kafka_queue_io_event_enable(self.queue.0, -1, std::ptr::null(), 0);
            rdkafka::bindings::rd_kafka_queue_destroy(self.queue.0);
        }
    }
}

/// The delivery thread: sleeps until librdkafka writes to the socket, then serves every event
/// queued, without blocking; until the handle is dropped.
///
/// No report is missed: librdkafka writes when the queue goes from empty to non-empty and no
/// byte is pending since the queue was last polled (every poll resets that), and the thread
/// reads the socket only once it saw the queue empty after its last poll.
fn deliver<C: ClientContext + 'static>(
    producer: &BaseProducer<Delivering<C>>,
    queue: QueuePtr,
    mut woken: UnixStream,
    stop: &AtomicBool,
) {
    let mut bytes = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: the queue reference lives until this thread is joined.
        if unsafe { rdkafka::bindings::rd_kafka_queue_length(queue.0) } == 0 {
            // A wake-up, a stale byte or the timeout: either way, look again.
            let _ = woken.read(&mut bytes);
        } else {
            // A zero timeout serves at most one event and never waits.
            producer.poll(Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rdkafka::client::DefaultClientContext;

    use super::*;
    use crate::kafka::embedded::EmbeddedCluster;

    fn handle(cluster: &EmbeddedCluster, message_timeout_ms: u32) -> ProducerHandle<DefaultClientContext> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("linger.ms", "0")
            .set("message.timeout.ms", message_timeout_ms.to_string());
        // No timeout: a report whose wake-up were lost would never be served (the test hangs
        // and fails on its deadline instead of passing a second later).
        ProducerHandle::create_with_idle_wait(&config, DefaultClientContext, None).unwrap()
    }

    fn record<'a>(topic: &'a str, payload: &'a [u8]) -> FutureRecord<'a, str, [u8]> {
        FutureRecord::to(topic).key("k").payload(payload)
    }

    /// Every report reaches its future through the wake-ups alone: single messages with the
    /// queue empty in between (each one an empty-to-non-empty transition) and bursts of many
    /// (reports arriving while the thread serves), with offsets as librdkafka reported them.
    #[actix::test]
    async fn every_delivery_report_completes_its_future_without_a_polling_timeout() {
        let cluster = EmbeddedCluster::start().unwrap();
        cluster.create_topic("t", 2).unwrap();
        let producer = handle(&cluster, 10_000);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut offsets = Vec::new();
        for _ in 0..50 {
            let delivery = producer.send_result(record("t", b"one")).map_err(|(e, _)| e).unwrap();
            let delivered = tokio::time::timeout(Duration::from_secs(30), delivery).await;
            offsets.push(
                delivered
                    .expect("a single report was never served")
                    .unwrap()
                    .unwrap()
                    .offset,
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(offsets.windows(2).all(|pair| pair[0] < pair[1]), "{offsets:?}");
        for _ in 0..20 {
            let deliveries: Vec<_> = (0..200)
                .map(|_| producer.send_result(record("t", b"burst")).map_err(|(e, _)| e).unwrap())
                .collect();
            for delivery in deliveries {
                let left = deadline.saturating_duration_since(Instant::now());
                let delivered = tokio::time::timeout(left, delivery).await;
                assert!(delivered
                    .expect("a report of a burst was never served")
                    .unwrap()
                    .is_ok());
            }
        }
    }

    /// A message Kafka never acknowledges fails its future (it is never reported delivered),
    /// and one still queued when the handle goes fails as well; dropping the handle ends its
    /// thread.
    #[actix::test]
    async fn unacknowledged_messages_fail_their_futures() {
        let cluster = EmbeddedCluster::start().unwrap();
        cluster.create_topic("t", 1).unwrap();
        let producer = handle(&cluster, 1_000);
        producer
            .send_result(record("t", b"up"))
            .map_err(|(e, _)| e)
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        cluster.broker_down(1).unwrap();
        let timed_out = producer.send_result(record("t", b"down")).map_err(|(e, _)| e).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(20), timed_out)
            .await
            .expect("never reported");
        assert!(matches!(result, Ok(Err(_))), "{result:?}");
        let queued = producer
            .send_result(record("t", b"queued"))
            .map_err(|(e, _)| e)
            .unwrap();
        drop(producer);
        let result = tokio::time::timeout(Duration::from_secs(5), queued)
            .await
            .expect("never answered");
        assert!(!matches!(result, Ok(Ok(_))), "{result:?}");
    }
}
