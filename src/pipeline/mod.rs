//! The actor chain: Receiver → Verify → RateLimit → Parse → Page → RetryStore → Kafka.
//!
//! One chain runs on every HTTP thread (each actor lives on the arbiter of the thread
//! that built it), so no stage carries all traffic on one thread. Shared state — listener
//! registry, rate-limit buckets, open pages, the Kafka producer — is built for concurrent use. Every
//! mailbox has a fixed capacity; stages forward with `send().await`, and the Receiver's
//! in-flight cap sheds load with 503 before any queue can grow without bound.
//!
//! Each request carries its [`reply::Reply`]: the stage that decides the request (one that
//! refuses it, or the page stage once Kafka acknowledged its records) answers it directly, so
//! stages forward and return instead of waiting for the stages after them. A stage knows only
//! the message its next stage takes (`next: Stage<Ingest>`); [`Chain::start`] alone knows the
//! order.

pub mod debug;
pub mod handshake;
pub mod ingest_error;
pub mod listener;
pub mod page;
pub mod parse;
pub mod rate_limit;
pub mod reply;
pub mod retry_store;
pub mod schema;
pub mod stage;
#[cfg(test)]
pub mod testing;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header::HeaderMap;
use actix_web::web::Bytes;

use crate::kafka::producer::PageProducer;
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::listener::Listener;
use crate::pipeline::rate_limit::bucket::SharedClock;
use rate_limit::limiter::RateLimiter;
use reply::Reply;
pub use stage::{Admitted, Stage};

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
    /// Mock output sent through the API (it enters at [`Chain::mock_entry`]): records marked mock.
    pub mock: bool,
}

/// What an accepted request produced.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Records published.
    pub record_count: usize,
    /// The records, kept only when the listener's response template may use them.
    pub records: Option<Vec<parse::records::Record>>,
    /// The answer of the handshake the request was (`pipeline::handshake`), sent instead of the
    /// listener's success response.
    pub handshake: Option<handshake::HandshakeAnswer>,
    /// Of a listener with a schema: how many records were valid and how many quarantined.
    pub schema: Option<schema::SchemaCounts>,
}

/// The answer of the chain to one request.
pub type Outcome = Result<Accepted, IngestError>;

/// A request travelling the chain (through verification, rate limiting and parsing), with the
/// reply that whichever stage decides it answers.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Ingest {
    /// The request.
    pub webhook: Webhook,
    /// Provider delivery id found by verification, for consumers' deduplication.
    pub delivery_id: Option<String>,
    /// Return the parsed records in `Accepted` (for sample data).
    pub keep_records: bool,
    /// The tokens the Receiver promised the request before verification, taken by the
    /// rate-limit stage (`None`: the stage takes its tokens itself).
    pub reservation: Option<rate_limit::limiter::Reservation>,
    /// A handshake that publishes nothing (`pipeline::handshake`): the verify stage answers it
    /// once it verified, and forwards nothing.
    pub answer_once_verified: bool,
    /// The request's answer.
    pub reply: Reply,
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
    /// Clock of the rate limiter.
    pub clock: SharedClock,
    /// An optional bucket for the whole instance.
    pub global_bucket: Option<Arc<rate_limit::bucket::LeakyBucket>>,
    /// The instance's open pages, shared by every HTTP thread's page stage.
    pub open_pages: Arc<page::OpenPages>,
}

/// One HTTP thread's chain: its entries and the rate limiter its Receiver checks first.
#[derive(Clone)]
pub struct Chain {
    /// Where webhooks enter: the first stage.
    pub entry: Stage<Ingest>,
    /// The parse stage: where mock output sent through the API enters, skipping verification
    /// and rate limiting.
    pub mock_entry: Stage<Ingest>,
    /// The buckets the rate-limit stage takes from, which the Receiver checks (without taking)
    /// before verification.
    pub rate_limiter: RateLimiter,
}

impl Chain {
    /// Wires the chain back to front on the current arbiter, each stage given the next one's
    /// inbox. This is the only place that knows the order of the stages.
    pub fn start(settings: &ChainSettings, producer: PageProducer) -> Chain {
        let capacity = settings.mailbox_capacity;
        let rate_limiter = RateLimiter::new(settings.clock.clone(), settings.global_bucket.clone());
        let retry_store = Stage::start("retry_store", capacity, retry_store::RetryStoreActor::new(producer));
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
            rate_limit::RateLimitActor::new(parse.clone(), rate_limiter.clone()),
        );
        let verify = Stage::start("verify", capacity, verify::VerifyActor::new(rate_limit));
        Chain {
            entry: verify,
            mock_entry: parse,
            rate_limiter,
        }
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
