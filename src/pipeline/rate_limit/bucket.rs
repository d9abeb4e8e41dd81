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

/// A leaky bucket of `capacity` requests that drains at `refill_per_sec` requests per second.
#[derive(Debug)]
pub struct LeakyBucket {
    capacity: u128,
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
}

impl LeakyBucket {
    /// A full bucket.
    pub fn new(capacity: u32, refill_per_sec: u32) -> LeakyBucket {
        LeakyBucket {
            capacity: u128::from(capacity.max(1)) * SCALE,
            refill_per_sec: u128::from(refill_per_sec.max(1)),
            state: Mutex::new(State {
                tokens: u128::from(capacity.max(1)) * SCALE,
                last: None,
                reserved: 0,
            }),
        }
    }

    /// Takes one token at `now`; when none is free, returns the whole seconds until one is.
    pub fn try_acquire(&self, now_nanos: u64) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
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
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
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
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
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
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        state.reserved = state.reserved.saturating_sub(1);
    }

    /// Ends a promise of [`LeakyBucket::reserve`] by taking its token, as `try_acquire` does.
    pub fn redeem(&self, now_nanos: u64) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
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
            let refill = elapsed * self.refill_per_sec * SCALE / NANOS_PER_SEC;
            if refill > 0 {
                state.tokens = (state.tokens + refill).min(self.capacity);
                // Advance only by the time that produced whole scaled tokens, keeping the remainder.
                let used = refill * NANOS_PER_SEC / (self.refill_per_sec * SCALE);
                state.last = Some(last + used as u64);
            }
            if state.tokens == self.capacity {
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
        let missing = needed.min(self.capacity).saturating_sub(state.tokens);
        let nanos = missing * NANOS_PER_SEC / (self.refill_per_sec * SCALE);
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
