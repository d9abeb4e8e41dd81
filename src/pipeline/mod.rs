//! The actor chain: Receiver → Verify → RateLimit → Parse → Page → RetryStore → Kafka.
//!
//! One chain runs on every HTTP thread (each actor lives on the arbiter of the thread
//! that built it), so no stage carries all traffic on one thread. Shared state — listener
//! registry, rate-limit buckets, open pages, the Kafka producer — is built for concurrent use. Every
//! mailbox has a fixed capacity; stages forward with `send().await`, and the Receiver's
//! in-flight cap sheds load with 503 before any queue can grow without bound.

pub mod debug;
pub mod ingest_error;
pub mod listener;
pub mod page;
pub mod parse;
pub mod rate_limit;
pub mod retry_store;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::kafka::producer::PageProducer;
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::listener::Listener;
use crate::pipeline::rate_limit::bucket::SharedClock;
use crate::telemetry::events::MailboxBlocked;

/// A webhook: the HTTP request as the Receiver hands it to the chain.
#[derive(Debug)]
pub struct Webhook {
    /// Unique id of this request (returned as `X-Request-Id`).
    pub request_id: Arc<str>,
    /// The listener it was sent to.
    pub listener: Arc<Listener>,
    /// HTTP method.
    pub method: String,
    /// The full URL as the sender saw it (external base URL + path + query).
    pub url: String,
    /// Raw query string, without `?`.
    pub query: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Raw body bytes as received: what verification runs on.
    pub body: Bytes,
    /// Receive time, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// Mock output sent through the API: not verified or rate-limited, records marked mock.
    pub mock: bool,
}

/// What an accepted request produced.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Records published.
    pub record_count: usize,
    /// The records, kept only when the listener's response template may use them.
    pub records: Option<Vec<parse::records::Record>>,
    /// A challenge to echo (Slack `url_verification`).
    pub challenge: Option<String>,
}

/// The answer of the chain to one request.
pub type Outcome = Result<Accepted, IngestError>;

/// Message entering the chain (handled by Verify, then RateLimit, then Parse).
#[derive(Debug, Message)]
#[rtype(result = "Outcome")]
pub struct Ingest {
    /// The request.
    pub webhook: Webhook,
    /// Provider delivery id found by verification, for consumers' deduplication.
    pub delivery_id: Option<String>,
    /// Return the parsed records in `Accepted` (for sample data).
    pub keep_records: bool,
}

/// Settings every chain is built from.
#[derive(Clone)]
pub struct ChainSettings {
    /// Mailbox capacity of every stage.
    pub mailbox_capacity: usize,
    /// How long an open page waits for more records.
    pub page_linger: Duration,
    /// Serialized size cap of a page's records.
    pub max_page_bytes: usize,
    /// Parser limits.
    pub parse_limits: parse::records::ParseLimits,
    /// Clock of the rate limiter and of timestamped signatures.
    pub clock: SharedClock,
    /// An optional bucket for the whole instance.
    pub global_bucket: Option<Arc<rate_limit::bucket::LeakyBucket>>,
    /// Topic of records' retry data.
    pub retry_topic: String,
    /// The instance's open pages, shared by every HTTP thread's page stage.
    pub open_pages: Arc<page::OpenPages>,
}

/// The entry of one HTTP thread's chain.
#[derive(Clone)]
pub struct Chain {
    /// First stage.
    pub entry: Stage<verify::VerifyActor>,
}

impl Chain {
    /// Wires the chain back to front on the current arbiter, each stage given the next one's address.
    pub fn start(settings: &ChainSettings, producer: PageProducer) -> Chain {
        let capacity = settings.mailbox_capacity;
        let retry_store = Stage::start(
            "retry_store",
            capacity,
            retry_store::RetryStoreActor::new(producer, settings.retry_topic.clone()),
        );
        let page = Stage::start(
            "page",
            capacity,
            page::PageActor::new(
                retry_store,
                settings.page_linger,
                settings.max_page_bytes,
                settings.open_pages.clone(),
            ),
        );
        let parse = Stage::start(
            "parse",
            capacity,
            parse::ParseActor::new(page, settings.parse_limits.clone()),
        );
        let rate_limit = Stage::start(
            "rate_limit",
            capacity,
            rate_limit::RateLimitActor::new(parse, settings.clock.clone(), settings.global_bucket.clone()),
        );
        let entry = Stage::start("verify", capacity, verify::VerifyActor::new(rate_limit));
        Chain { entry }
    }
}

/// A stage's address with an explicit, measurable mailbox bound: a message holds a permit
/// from the moment it is queued until the stage starts handling it, so waiting for a permit
/// is exactly waiting on a full mailbox (and is counted in
/// `hookpipe_mailbox_blocked_seconds_total`).
pub struct Stage<A: Actor> {
    addr: Addr<A>,
    permits: Arc<Semaphore>,
    name: &'static str,
}

impl<A: Actor> Clone for Stage<A> {
    fn clone(&self) -> Self {
        Stage {
            addr: self.addr.clone(),
            permits: self.permits.clone(),
            name: self.name,
        }
    }
}

/// A message admitted into a stage's mailbox; the handler drops the permit when it starts.
pub struct Admitted<M> {
    /// The message.
    pub message: M,
    /// Room in the mailbox, released when handling starts.
    pub permit: OwnedSemaphorePermit,
}

impl<M: Message> Message for Admitted<M> {
    type Result = M::Result;
}

impl<A: Actor<Context = Context<A>>> Stage<A> {
    /// Starts `actor` on the current arbiter with room for `capacity` queued messages.
    pub fn start(name: &'static str, capacity: usize, actor: A) -> Stage<A> {
        MailboxBlocked::declare(name);
        let addr = A::create(move |ctx| {
            // The semaphore is the bound; actix's own capacity only has to be no smaller.
            ctx.set_mailbox_capacity(capacity.max(1));
            actor
        });
        Stage {
            addr,
            permits: Arc::new(Semaphore::new(capacity.max(1))),
            name,
        }
    }

    /// Sends and awaits the answer, waiting (measured) while the mailbox is full.
    pub async fn forward<M>(&self, message: M) -> Result<M::Result, IngestError>
    where
        A: Handler<Admitted<M>>,
        A::Context: actix::dev::ToEnvelope<A, Admitted<M>>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let started = Instant::now();
                let permit = self
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| IngestError::Internal("stage closed".into()))?;
                MailboxBlocked {
                    stage: self.name,
                    waited: started.elapsed(),
                }
                .emit();
                permit
            }
        };
        self.send(message, permit).await
    }

    /// Sends only if the mailbox has room: the Receiver sheds load instead of queueing.
    pub async fn try_forward<M>(&self, message: M) -> Result<M::Result, IngestError>
    where
        A: Handler<Admitted<M>>,
        A::Context: actix::dev::ToEnvelope<A, Admitted<M>>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| IngestError::Overloaded)?;
        self.send(message, permit).await
    }

    async fn send<M>(&self, message: M, permit: OwnedSemaphorePermit) -> Result<M::Result, IngestError>
    where
        A: Handler<Admitted<M>>,
        A::Context: actix::dev::ToEnvelope<A, Admitted<M>>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.addr
            .send(Admitted { message, permit })
            .await
            .map_err(|error| IngestError::Internal(format!("next stage unavailable: {error}")))
    }
}

/// A new time-ordered id (UUID v7 as 32 hex digits): request and page ids.
///
/// The random bits come from a per-thread generator seeded once from the OS: ids must be unique,
/// not secret, and asking the kernel for randomness on every request costs a system call.
pub fn new_id() -> String {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes"),
        ));
    }
    // SplitMix64: a full-period sequence per thread, well mixed.
    let next = || {
        STATE.with(|state| {
            let value = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(value);
            let mut z = value;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    };
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&next().to_le_bytes());
    random[8..].copy_from_slice(&next().to_le_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(unix_millis_now().max(0) as u64, &random)
        .into_uuid()
        .simple()
        .to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_millis_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC with milliseconds, for a Unix-milliseconds time.
pub fn rfc3339_millis(unix_ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(unix_ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_v7_uuids_across_threads() {
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..10_000).map(|_| super::new_id()).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        let parsed = uuid::Uuid::parse_str(&ids[0]).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(ids[0].len(), 32);
    }
}
