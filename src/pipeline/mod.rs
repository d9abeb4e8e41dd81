//! The actor chain: Receiver → Verify → RateLimit → Parse → Page → RetryStore → Kafka.
//!
//! One chain runs on every HTTP worker thread (each actor lives on the arbiter of the worker
//! that built it), so no stage carries all traffic on one thread. Shared state — listener
//! registry, rate-limit buckets, the Kafka producer — is built for concurrent use. Every
//! mailbox has a fixed capacity; stages forward with `send().await`, and the Receiver's
//! in-flight cap sheds load with 503 before any queue can grow without bound.

pub mod debug;
pub mod page;
pub mod parse;
pub mod rate_limit;
pub mod retry_store;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;

use crate::error::IngestError;
use crate::kafka::producer::PageProducer;
use crate::listener::Listener;
use crate::pipeline::rate_limit::bucket::SharedClock;

/// A request as the Receiver hands it to the chain.
#[derive(Debug)]
pub struct Delivery {
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
}

/// What an accepted request produced.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Records published.
    pub record_count: usize,
    /// The records, kept only when the listener's response template may use them.
    pub records: Option<Vec<serde_json::Value>>,
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
    pub delivery: Delivery,
    /// Provider delivery id found by verification, for consumers' deduplication.
    pub delivery_id: Option<String>,
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
}

/// The entry of one worker's chain.
#[derive(Clone)]
pub struct Chain {
    /// First stage.
    pub entry: Addr<verify::VerifyActor>,
}

impl Chain {
    /// Wires the chain back to front on the current arbiter, each stage given the next one's address.
    pub fn start(settings: &ChainSettings, producer: PageProducer) -> Chain {
        let capacity = settings.mailbox_capacity;
        let retry_store = retry_store::RetryStoreActor::new(producer).start_with_capacity(capacity);
        let page = page::PageActor::new(retry_store, settings.page_linger, settings.max_page_bytes)
            .start_with_capacity(capacity);
        let parse = parse::ParseActor::new(page, settings.parse_limits.clone()).start_with_capacity(capacity);
        let rate_limit = rate_limit::RateLimitActor::new(parse, settings.clock.clone(), settings.global_bucket.clone())
            .start_with_capacity(capacity);
        let entry = verify::VerifyActor::new(rate_limit, settings.clock.clone()).start_with_capacity(capacity);
        Chain { entry }
    }
}

/// Starting an actor with an explicit mailbox capacity.
pub trait StartWithCapacity: Actor<Context = Context<Self>> {
    /// Starts the actor on the current arbiter with a mailbox of `capacity` messages.
    fn start_with_capacity(self, capacity: usize) -> Addr<Self> {
        Self::create(move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            self
        })
    }
}

impl<A: Actor<Context = Context<A>>> StartWithCapacity for A {}

/// Forwards a message to the next stage, waiting while its mailbox is full.
pub async fn forward<A, M>(next: &Addr<A>, message: M) -> Result<M::Result, IngestError>
where
    A: Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    next.send(message)
        .await
        .map_err(|error| IngestError::Internal(format!("next stage unavailable: {error}")))
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
