//! The leaky bucket: pure logic, shared by every HTTP thread, with an injectable clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A source of monotonic time in nanoseconds, injectable so tests need not sleep.
pub trait Clock: Send + Sync {
    /// Nanoseconds since an arbitrary, fixed origin.
    fn now_nanos(&self) -> u64;
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock { origin: Instant::now() }
    }
}

impl Clock for MonotonicClock {
    fn now_nanos(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Tokens are counted in millionths so refill stays exact at any rate without floats.
const SCALE: u128 = 1_000_000;

/// What gives a bucket created after the start (a listener added or changed) its share of the
/// fleet's bucket (`fleet_feed::FleetLimiter`), before it serves a request.
pub trait BucketShares: Send + Sync {
    /// Sets `bucket`'s share: that of listener `listener_id` now.
    fn adopt(&self, listener_id: &str, bucket: &LeakyBucket);

    /// Listener `listener_id` is gone (deleted): forget what is kept of its share.
    fn forget(&self, _listener_id: &str) {}
}

/// A share of a bucket held for the whole instance: [`LeakyBucket::set_share`] takes parts per
/// million of this.
pub const WHOLE_SHARE_PPM: u32 = 1_000_000;

/// A leaky bucket of `capacity` requests that drains at `refill_per_sec` requests per second.
///
/// In a fleet (`rate_limit::fleet`) the instance holds a share of it: capacity and refill are
/// both scaled by the share, which changes every heartbeat. Alone, the share is whole and the
/// bucket is exactly the configured one.
#[derive(Debug)]
pub struct LeakyBucket {
    /// The configured capacity, scaled by `SCALE`.
    capacity: u128,
    /// The configured refill, requests per second.
    refill_per_sec: u128,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Available tokens, scaled by `SCALE`.
    tokens: u128,
    /// Clock reading of the last refill; `None` until first use so a bucket starts full.
    last: Option<u64>,
    /// Tokens promised to requests between the Receiver's check and the rate-limit stage
    /// ([`LeakyBucket::reserve`]), not yet taken or given back.
    reserved: u128,
    /// This instance's share of the bucket, parts per million.
    share_ppm: u32,
    /// The capacity of the share, scaled by `SCALE`.
    capacity: u128,
    /// The refill of the share, scaled tokens per second (`SCALE` × requests per second).
    rate: u128,
    /// Requests that asked this bucket for a token since [`LeakyBucket::take_attempts`]: the
    /// demand the fleet divides the bucket by.
    attempts: u64,
}

impl LeakyBucket {
    /// A full bucket.
    pub fn new(capacity: u32, refill_per_sec: u32) -> LeakyBucket {
        let capacity = u128::from(capacity.max(1)) * SCALE;
        let refill_per_sec = u128::from(refill_per_sec.max(1));
        LeakyBucket {
            capacity,
            refill_per_sec,
            state: Mutex::new(State {
                tokens: capacity,
                last: None,
                reserved: 0,
                share_ppm: WHOLE_SHARE_PPM,
                capacity,
                rate: refill_per_sec * SCALE,
                attempts: 0,
            }),
        }
    }

    /// The configured refill, requests per second (not this instance's share of it).
    pub fn refill_per_sec(&self) -> u32 {
        self.refill_per_sec as u32
    }

    /// Holds `share_ppm` millionths of the bucket from `now` on: capacity and refill scaled by
    /// it (a positive share holds at least one whole token, or it could never accept). Tokens
    /// above the new capacity are dropped; a larger share gets no tokens at once, only the
    /// faster refill, so changing shares never adds tokens to the fleet.
    pub fn set_share(&self, share_ppm: u32, now_nanos: u64) {
        let share_ppm = share_ppm.min(WHOLE_SHARE_PPM);
        let mut state = self.lock();
        if state.share_ppm == share_ppm {
            return;
        }
        self.refill(&mut state, now_nanos);
        let ppm = u128::from(share_ppm);
        let whole = u128::from(WHOLE_SHARE_PPM);
        state.share_ppm = share_ppm;
        state.capacity = match share_ppm {
            0 => 0,
            _ => (self.capacity * ppm / whole).max(SCALE),
        };
        state.rate = self.refill_per_sec * SCALE * ppm / whole;
        state.tokens = state.tokens.min(state.capacity);
        state.last = Some(now_nanos);
    }

    /// Drops every free token (an instance joining a running fleet starts with none: the
    /// others' buckets hold the fleet's).
    pub fn empty(&self, now_nanos: u64) {
        let mut state = self.lock();
        state.tokens = 0;
        state.last = Some(now_nanos);
    }

    /// This instance's share, parts per million.
    pub fn share_ppm(&self) -> u32 {
        self.lock().share_ppm
    }

    /// Requests that asked for a token since the last call.
    pub fn take_attempts(&self) -> u64 {
        std::mem::take(&mut self.lock().attempts)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Takes one token at `now`; when none is free, returns the whole seconds until one is.
    pub fn try_acquire(&self, now_nanos: u64) -> Result<(), u64> {
        let mut state = self.lock();
        state.attempts += 1;
        self.refill(&mut state, now_nanos);
        if state.tokens >= SCALE {
            state.tokens -= SCALE;
            return Ok(());
        }
        Err(self.retry_after(&state))
    }

    /// Whether a token is free at `now`, without taking it; when none is, the whole seconds
    /// until one is. A request refused here would be refused by `try_acquire` too.
    pub fn peek(&self, now_nanos: u64) -> Result<(), u64> {
        let mut state = self.lock();
        self.refill(&mut state, now_nanos);
        if state.tokens >= SCALE {
            Ok(())
        } else {
            Err(self.retry_after(&state))
        }
    }

    /// Promises a token at `now` to a request that has not been verified yet: succeeds while
    /// the free tokens outnumber the promises already made, so no more requests are verified
    /// at once than can be accepted. Nothing is taken: the promise ends with
    /// [`LeakyBucket::redeem`] (verified: take the token) or [`LeakyBucket::release`] (refused).
    /// When it fails, the whole seconds until a token beyond those promised is free.
    pub fn reserve(&self, now_nanos: u64) -> Result<(), u64> {
        let mut state = self.lock();
        state.attempts += 1;
        self.refill(&mut state, now_nanos);
        let needed = (state.reserved + 1) * SCALE;
        if state.tokens >= needed {
            state.reserved += 1;
            Ok(())
        } else {
            Err(self.retry_after_for(&state, needed))
        }
    }

    /// Gives back a promise of [`LeakyBucket::reserve`] without taking its token.
    pub fn release(&self) {
        let mut state = self.lock();
        state.reserved = state.reserved.saturating_sub(1);
    }

    /// Ends a promise of [`LeakyBucket::reserve`] by taking its token, as `try_acquire` does.
    pub fn redeem(&self, now_nanos: u64) -> Result<(), u64> {
        let mut state = self.lock();
        state.reserved = state.reserved.saturating_sub(1);
        self.refill(&mut state, now_nanos);
        if state.tokens >= SCALE {
            state.tokens -= SCALE;
            return Ok(());
        }
        Err(self.retry_after(&state))
    }

    /// Adds the tokens that leaked back since the last refill.
    fn refill(&self, state: &mut State, now_nanos: u64) {
        if let Some(last) = state.last {
            let elapsed = u128::from(now_nanos.saturating_sub(last));
            let refill = elapsed * state.rate / NANOS_PER_SEC;
            if refill > 0 {
                state.tokens = (state.tokens + refill).min(state.capacity);
                // Advance only by the time that produced whole scaled tokens, keeping the remainder.
                let used = refill * NANOS_PER_SEC / state.rate;
                state.last = Some(last + used as u64);
            }
            if state.tokens == state.capacity {
                state.last = Some(now_nanos);
            }
        } else {
            state.last = Some(now_nanos);
        }
    }

    fn retry_after(&self, state: &State) -> u64 {
        self.retry_after_for(state, SCALE)
    }

    /// Whole seconds (at least 1) until the bucket holds `needed` scaled tokens, or as many as
    /// it can hold.
    fn retry_after_for(&self, state: &State, needed: u128) -> u64 {
        if state.rate == 0 {
            // No share at the moment: the next heartbeat may give one.
            return 1;
        }
        let missing = needed.min(state.capacity).saturating_sub(state.tokens);
        let nanos = missing * NANOS_PER_SEC / state.rate;
        (nanos.div_ceil(NANOS_PER_SEC) as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn peek_never_takes_and_agrees_with_try_acquire() {
        let bucket = LeakyBucket::new(2, 1);
        let second = 1_000_000_000;
        for _ in 0..5 {
            assert_eq!(bucket.peek(0), Ok(()));
        }
        assert_eq!(bucket.try_acquire(0), Ok(()));
        assert_eq!(bucket.try_acquire(0), Ok(()));
        assert_eq!(bucket.peek(0), Err(1));
        assert_eq!(bucket.try_acquire(0), Err(1));
        // Peeking while refilling does not disturb the refill.
        assert_eq!(bucket.peek(second / 2), Err(1));
        assert_eq!(bucket.peek(second), Ok(()));
        assert_eq!(bucket.try_acquire(second), Ok(()));
        assert_eq!(bucket.peek(second), Err(1));
    }

    #[test]
    fn reservations_promise_no_more_tokens_than_are_free() {
        let bucket = LeakyBucket::new(2, 1);
        let second = 1_000_000_000;
        assert_eq!(bucket.reserve(0), Ok(()));
        assert_eq!(bucket.reserve(0), Ok(()));
        assert_eq!(bucket.reserve(0), Err(1), "two tokens, two promises");
        // A refused (unverified) request gives its promise back: another may be verified.
        bucket.release();
        assert_eq!(bucket.reserve(0), Ok(()));
        // Redeeming takes the promised tokens; nothing is left to promise until a refill.
        assert_eq!(bucket.redeem(0), Ok(()));
        assert_eq!(bucket.redeem(0), Ok(()));
        assert_eq!(bucket.reserve(0), Err(1));
        assert_eq!(bucket.peek(0), Err(1));
        assert_eq!(bucket.reserve(second), Ok(()));
        assert_eq!(bucket.reserve(second), Err(1), "one token refilled, one promised");
        // Promises never make tokens: a plain take still finds the promised token free.
        assert_eq!(bucket.try_acquire(second), Ok(()));
        assert_eq!(bucket.redeem(second), Err(1));
    }

    #[test]
    fn burst_then_steady_rate() {
        let clock = ManualClock::default();
        let bucket = LeakyBucket::new(1000, 300);
        let accepted = (0..5000)
            .filter(|_| bucket.try_acquire(clock.now_nanos()).is_ok())
            .count();
        assert_eq!(accepted, 1000);
        let mut accepted_later = 0;
        for _ in 0..1000 {
            clock.advance(Duration::from_millis(10));
            accepted_later += (0..10)
                .filter(|_| bucket.try_acquire(clock.now_nanos()).is_ok())
                .count();
        }
        // 10 s at 300/s.
        assert_eq!(accepted_later, 3000);
    }

    #[test]
    fn retry_after_is_whole_seconds_until_a_token() {
        let clock = ManualClock::default();
        let bucket = LeakyBucket::new(1, 1);
        assert!(bucket.try_acquire(clock.now_nanos()).is_ok());
        assert_eq!(bucket.try_acquire(clock.now_nanos()), Err(1));
        let slow = LeakyBucket::new(1, 1);
        assert!(slow.try_acquire(0).is_ok());
        clock.advance(Duration::from_millis(999));
        assert_eq!(slow.try_acquire(clock.now_nanos()), Err(1));
        clock.advance(Duration::from_millis(1));
        assert!(slow.try_acquire(clock.now_nanos()).is_ok());
    }

    #[test]
    fn never_exceeds_capacity_after_idle() {
        let clock = ManualClock::default();
        let bucket = LeakyBucket::new(10, 300);
        assert!(bucket.try_acquire(clock.now_nanos()).is_ok());
        clock.advance(Duration::from_secs(3600));
        let accepted = (0..100)
            .filter(|_| bucket.try_acquire(clock.now_nanos()).is_ok())
            .count();
        assert_eq!(accepted, 10);
    }

    #[test]
    fn a_share_scales_capacity_and_refill_and_never_adds_tokens() {
        let second = 1_000_000_000;
        let bucket = LeakyBucket::new(1000, 300);
        bucket.set_share(WHOLE_SHARE_PPM / 4, 0);
        // A quarter: 250 tokens of the full bucket kept, the rest dropped.
        assert_eq!((0..1000).filter(|_| bucket.try_acquire(0).is_ok()).count(), 250);
        // Refilled at a quarter of 300/s: 75 in a second.
        assert_eq!((0..1000).filter(|_| bucket.try_acquire(second).is_ok()).count(), 75);
        // A larger share refills faster but brings no tokens with it.
        bucket.set_share(WHOLE_SHARE_PPM / 2, second);
        assert!(bucket.try_acquire(second).is_err());
        assert_eq!(
            (0..1000).filter(|_| bucket.try_acquire(2 * second).is_ok()).count(),
            150
        );
        // No share: nothing, and a Retry-After of a second (the next heartbeat may bring one).
        bucket.set_share(0, 2 * second);
        assert_eq!(bucket.try_acquire(100 * second), Err(1));
        assert_eq!(bucket.reserve(100 * second), Err(1));
        // Whole again: the configured bucket, refilling from empty.
        bucket.set_share(WHOLE_SHARE_PPM, 100 * second);
        assert_eq!(
            (0..2000).filter(|_| bucket.try_acquire(110 * second).is_ok()).count(),
            1000
        );
        assert_eq!(bucket.share_ppm(), WHOLE_SHARE_PPM);
    }

    #[test]
    fn a_small_share_still_holds_a_whole_token() {
        let bucket = LeakyBucket::new(10, 10);
        bucket.set_share(WHOLE_SHARE_PPM / 100, 0);
        assert_eq!(bucket.try_acquire(0), Ok(()), "a tenth of a token would never accept");
        assert!(bucket.try_acquire(0).is_err());
        // Refill at a tenth of a request per second.
        assert!(bucket.try_acquire(9_000_000_000).is_err());
        assert_eq!(bucket.try_acquire(10_000_000_000), Ok(()));
    }

    #[test]
    fn attempts_count_every_request_that_asked() {
        let bucket = LeakyBucket::new(1, 1);
        let _ = bucket.try_acquire(0);
        let _ = bucket.try_acquire(0);
        let _ = bucket.reserve(0);
        bucket.release();
        let _ = bucket.peek(0);
        assert_eq!(bucket.take_attempts(), 3, "peeks are not demand");
        assert_eq!(bucket.take_attempts(), 0);
        let emptied = LeakyBucket::new(5, 1);
        emptied.empty(0);
        assert!(emptied.try_acquire(0).is_err());
    }

    #[test]
    fn concurrent_burst_is_exact() {
        let clock = Arc::new(ManualClock::default());
        let bucket = Arc::new(LeakyBucket::new(1000, 300));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (clock, bucket) = (clock.clone(), bucket.clone());
                std::thread::spawn(move || {
                    (0..2000)
                        .filter(|_| bucket.try_acquire(clock.now_nanos()).is_ok())
                        .count()
                })
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }
}
