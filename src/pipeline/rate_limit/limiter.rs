//! The rate-limit decision, in one place for both moments it is made (no actix types):
//!
//! - **before verification** (the Receiver): while a listener's bucket (or the instance's) is
//!   empty, every request to it is refused with 429, signed or not, before verification and the
//!   chain cost anything. Nothing is taken: unsigned requests must never drain a bucket. (An
//!   unsigned request gets 429 rather than 401 while the bucket is empty.)
//! - **after verification** (the rate-limit stage): a verified request takes a token.
//!
//! The listener's own bucket is checked first: a noisy listener must not drain the global one.

use std::sync::Arc;

use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::listener::Listener;
use crate::pipeline::rate_limit::bucket::{LeakyBucket, SharedClock};

/// The buckets a request is checked against: its listener's and, optionally, the instance's.
#[derive(Clone)]
pub struct RateLimiter {
    clock: SharedClock,
    global: Option<Arc<LeakyBucket>>,
}

impl RateLimiter {
    /// A limiter reading `clock`, with an optional bucket for the whole instance.
    pub fn new(clock: SharedClock, global: Option<Arc<LeakyBucket>>) -> RateLimiter {
        RateLimiter { clock, global }
    }

    /// Before verification: refuses while a bucket is empty, taking nothing. A request refused
    /// here would be refused by [`RateLimiter::take`] too.
    pub fn refuse_while_empty(&self, listener: &Listener) -> Result<(), IngestError> {
        self.decide(listener, LeakyBucket::peek)
    }

    /// After verification: takes a token from each bucket, or refuses.
    pub fn take(&self, listener: &Listener) -> Result<(), IngestError> {
        self.decide(listener, LeakyBucket::try_acquire)
    }

    fn decide(&self, listener: &Listener, check: fn(&LeakyBucket, u64) -> Result<(), u64>) -> Result<(), IngestError> {
        let now = self.clock.now_nanos();
        let refused = |retry_after_secs, scope| IngestError::RateLimited {
            retry_after_secs,
            scope,
        };
        check(&listener.bucket, now).map_err(|retry| refused(retry, "listener"))?;
        if let Some(global) = &self.global {
            check(global, now).map_err(|retry| refused(retry, "global"))?;
        }
        Ok(())
    }
}
