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
pub mod dedup;
pub mod dedup_feed;
pub mod handshake;
pub mod ingest_error;
pub mod listener;
pub mod page;
pub mod parse;
pub mod rate_limit;
pub mod reply;
pub mod request_view;
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
    /// A delivery whose id was accepted within the listener's dedup window: answered with the
    /// success response, published nowhere.
    pub duplicate: bool,
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
    /// The instance's remembered delivery ids, shared by every HTTP thread's verify stage.
    pub dedup: Arc<dedup::Deduplicator>,
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
        let verify = Stage::start(
            "verify",
            capacity,
            verify::VerifyActor::new(rate_limit, settings.dedup.clone()),
        );
        Chain {
            entry: verify,
            mock_entry: parse,
            rate_limiter,
        }
    }
}

/// A new time-ordered id (UUID v7 as 32 hex digits): request and page ids.
///
/// The 74 random bits come from a per-thread ChaCha12 generator seeded once from the OS: a
/// sender sees its request ids (`X-Request-Id`), so they must not let anyone compute another
/// request's id (a SplitMix64 sequence did: one id gives the state, and the state every later
/// id of the thread), while asking the kernel on every request would cost a system call. A
/// ChaCha block yields six ids' worth of random bits.
pub fn new_id() -> String {
    use chacha20::rand_core::{Rng, SeedableRng};
    use std::cell::RefCell;
    thread_local! {
        static RANDOM: RefCell<chacha20::ChaCha12Rng> = RefCell::new(chacha20::ChaCha12Rng::from_seed(os_seed()));
    }
    let mut random = [0u8; 10];
    RANDOM.with(|generator| generator.borrow_mut().fill_bytes(&mut random));
    let id = uuid::Builder::from_unix_timestamp_millis(unix_millis_now().max(0) as u64, &random).into_uuid();
    // Encoded into a buffer, not through a formatter (`to_string`): every request makes one.
    let mut hex = [0u8; uuid::fmt::Simple::LENGTH];
    String::from(&*id.simple().encode_lower(&mut hex))
}

/// 32 bytes from the operating system's random source (getrandom(2)).
fn os_seed() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .expect("the operating system's random source answers");
    seed
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

    /// The 74 random bits of an id (UUID bytes 6..16 less the version and variant bits), as
    /// the 80 bits they were made from with those 6 bits zeroed.
    fn random_bits(id: &str) -> u128 {
        let bytes = uuid::Uuid::parse_str(id).unwrap().into_bytes();
        let mut value = 0u128;
        for byte in &bytes[6..16] {
            value = (value << 8) | u128::from(*byte);
        }
        value & !(0xF << 76) & !(0b11 << 62)
    }

    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    fn splitmix_output(state: u64) -> u64 {
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The inverse of `splitmix_output`: the finalizer is a bijection.
    fn splitmix_state(output: u64) -> u64 {
        fn unshift(value: u64, shift: u32) -> u64 {
            let mut x = value;
            for _ in 0..(64 / shift + 1) {
                x = value ^ (x >> shift);
            }
            x
        }
        fn inverse(a: u64) -> u64 {
            // Newton's iteration for the inverse of an odd number modulo 2^64.
            let mut x = a;
            for _ in 0..6 {
                x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
            }
            x
        }
        let mut z = unshift(output, 31);
        z = unshift(z.wrapping_mul(inverse(0x94D0_49BB_1331_11EB)), 27);
        unshift(z.wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9)), 30)
    }

    /// An id made the way `new_id` made them before (two SplitMix64 outputs per id).
    fn splitmix_id(state: &mut u64) -> String {
        let mut next = || {
            *state = state.wrapping_add(GAMMA);
            splitmix_output(*state)
        };
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&next().to_le_bytes());
        random[8..].copy_from_slice(&next().to_le_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000, &random)
            .into_uuid()
            .simple()
            .to_string()
    }

    /// What an observer of one id predicts for the random bits of the thread's next id, if the
    /// ids come from a SplitMix64 sequence: each guess of the 6 bits the UUID hides gives a state.
    fn predicted_next(id: &str) -> Vec<u128> {
        let bytes = uuid::Uuid::parse_str(id).unwrap().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[6..14]);
        (0u8..64)
            .map(|hidden| {
                let mut guess = first;
                guess[0] = (guess[0] & 0x0F) | ((hidden & 0xF) << 4);
                guess[2] = (guess[2] & 0x3F) | ((hidden >> 4) << 6);
                let state = splitmix_state(u64::from_le_bytes(guess));
                let mut next_state = state.wrapping_add(GAMMA);
                let next = splitmix_id(&mut next_state);
                random_bits(&next)
            })
            .collect()
    }

    #[test]
    fn an_id_does_not_predict_the_next_one() {
        // The attack works on the former generator: every id gives away the next one...
        let mut state = 0x1234_5678_9ABC_DEF0;
        let former: Vec<String> = (0..200).map(|_| splitmix_id(&mut state)).collect();
        let predicted = former
            .windows(2)
            .filter(|pair| predicted_next(&pair[0]).contains(&random_bits(&pair[1])))
            .count();
        assert_eq!(predicted, former.len() - 1, "the SplitMix64 predictor must work");
        // ...and fails on ids of one thread now.
        let ids: Vec<String> = (0..200).map(|_| super::new_id()).collect();
        let predicted = ids
            .windows(2)
            .filter(|pair| predicted_next(&pair[0]).contains(&random_bits(&pair[1])))
            .count();
        assert_eq!(predicted, 0);
    }

    #[test]
    fn consecutive_ids_are_not_a_fixed_step_apart_and_every_random_bit_varies() {
        let ids: Vec<u128> = (0..4096).map(|_| random_bits(&super::new_id())).collect();
        let steps: std::collections::HashSet<u128> = ids.windows(2).map(|pair| pair[1].wrapping_sub(pair[0])).collect();
        let xors: std::collections::HashSet<u128> = ids.windows(2).map(|pair| pair[1] ^ pair[0]).collect();
        assert_eq!(
            steps.len(),
            ids.len() - 1,
            "no two consecutive pairs share a difference"
        );
        assert_eq!(xors.len(), ids.len() - 1);
        // Each of the 74 random bits is set in about half of the ids (a stuck or copied bit
        // shows as 0 or 4096; 1700..2400 is more than 10 standard deviations wide).
        let random_positions = (0..80).filter(|bit| !(76..80).contains(bit) && !(62..64).contains(bit));
        for bit in random_positions {
            let set = ids.iter().filter(|value| (*value >> bit) & 1 == 1).count();
            assert!(
                (1700..2400).contains(&set),
                "bit {bit} set in {set} of {} ids",
                ids.len()
            );
        }
    }
}
