//! The rate-limit decision, in one place for both moments it is made (no actix types):
//!
//! - **before verification** (the Receiver): a request is promised a token of its listener's
//!   bucket (and of the instance's) while the free tokens outnumber the promises made to
//!   requests still being verified; otherwise it is refused with 429, signed or not, before
//!   verification and the chain cost anything. Nothing is taken: unsigned requests must never
//!   drain a bucket. So no more requests are verified at once than can be accepted: when one
//!   token refills under a flood, one request is verified, not every request in flight (an
//!   unsigned request gets 429 rather than 401 while the bucket is empty or promised).
//! - **after verification** (the rate-limit stage): a verified request takes its promised
//!   token; a refused one gives its promise back (the [`Reservation`] is dropped).
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

    /// Before verification: promises the request a token of each bucket (see the module
    /// docs), or refuses. Dropping the reservation gives the promises back.
    pub fn reserve(&self, listener: &Listener) -> Result<Reservation, IngestError> {
        let now = self.clock.now_nanos();
        let refused = |retry_after_secs, scope| IngestError::RateLimited {
            retry_after_secs,
            scope,
        };
        listener
            .bucket
            .reserve(now)
            .map_err(|retry| refused(retry, "listener"))?;
        let mut reservation = Reservation {
            buckets: [Some(listener.bucket.clone()), None],
        };
        if let Some(global) = &self.global {
            // Refused here, `reservation` drops and gives the listener's promise back.
            global.reserve(now).map_err(|retry| refused(retry, "global"))?;
            reservation.buckets[1] = Some(global.clone());
        }
        Ok(reservation)
    }

    /// After verification: takes a token from each bucket (the promised ones, when the request
    /// holds a reservation), or refuses.
    pub fn take(&self, listener: &Listener, reservation: Option<Reservation>) -> Result<(), IngestError> {
        match reservation {
            None => self.decide(listener, LeakyBucket::try_acquire),
            Some(mut reservation) => {
                let now = self.clock.now_nanos();
                for (bucket, scope) in reservation.buckets.iter_mut().zip(["listener", "global"]) {
                    if let Some(bucket) = bucket.take() {
                        bucket
                            .redeem(now)
                            .map_err(|retry_after_secs| IngestError::RateLimited {
                                retry_after_secs,
                                scope,
                            })?;
                    }
                }
                Ok(())
            }
        }
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

/// Tokens promised to one request by [`RateLimiter::reserve`]: its listener's bucket and,
/// when there is one, the instance's. Taken by [`RateLimiter::take`]; given back when dropped
/// untaken (the request was refused by verification, or went away).
#[derive(Debug)]
pub struct Reservation {
    buckets: [Option<Arc<LeakyBucket>>; 2],
}

impl Drop for Reservation {
    fn drop(&mut self) {
        for bucket in self.buckets.iter_mut().filter_map(Option::take) {
            bucket.release();
        }
    }
}
