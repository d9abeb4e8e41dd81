//! RateLimitActor: a leaky bucket per listener (and optionally one per instance), taken after
//! verification and before any parsing, so a 429 costs little and unsigned floods cannot drain
//! a bucket. The decision itself is [`limiter::RateLimiter`], shared with the Receiver.

pub mod bucket;
pub mod fleet;
pub mod fleet_feed;
pub mod limiter;

use actix::prelude::*;

use crate::pipeline::{Admitted, Ingest, Stage};
use limiter::RateLimiter;

/// The rate-limit stage: refuses what its buckets have no token for, forwards the rest.
pub struct RateLimitActor {
    next: Stage<Ingest>,
    limiter: RateLimiter,
}

impl RateLimitActor {
    /// A rate-limit stage forwarding to `next`.
    pub fn new(next: Stage<Ingest>, limiter: RateLimiter) -> RateLimitActor {
        RateLimitActor { next, limiter }
    }
}

impl Actor for RateLimitActor {
    type Context = Context<Self>;
}

impl Handler<Admitted<Ingest>> for RateLimitActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, admitted: Admitted<Ingest>, _ctx: &mut Context<Self>) -> Self::Result {
        let mut message = admitted.into_message();
        // Mock output enters after this stage (`Chain::mock_entry`): it takes no token.
        debug_assert!(!message.webhook.mock, "mock output is not rate-limited");
        let reservation = message.reservation.take();
        if let Err(refused) = self.limiter.take(&message.webhook.listener, reservation) {
            message.reply.refuse(refused);
            return Box::pin(async {});
        }
        let next = self.next.clone();
        // A stopped next stage drops the message, and its reply answers 503.
        Box::pin(async move {
            let _ = next.forward(message).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::pipeline::ingest_error::IngestError;
    use crate::pipeline::rate_limit::bucket::{LeakyBucket, ManualClock};
    use crate::pipeline::stage::probe::probe;
    use crate::pipeline::testing::{ingest, listener, signed_hmac_sha256};
    use crate::pipeline::verify::VerifyActor;

    const TWO_PER_SECOND: &str = "[listeners.rate_limit]\ncapacity = 2\nrefill_per_sec = 1\n";

    fn limited(outcome: crate::pipeline::Outcome) -> (u64, &'static str) {
        match outcome {
            Err(IngestError::RateLimited {
                retry_after_secs,
                scope,
            }) => (retry_after_secs, scope),
            other => panic!("{other:?}"),
        }
    }

    #[actix::test]
    async fn takes_a_token_per_request_and_refills_with_the_clock() {
        let clock = Arc::new(ManualClock::default());
        let (next, probe) = probe();
        let stage = Stage::start(
            "rate_limit",
            4,
            RateLimitActor::new(next, RateLimiter::new(clock.clone(), None)),
        );
        let listener = listener(TWO_PER_SECOND);
        let mut answers = Vec::new();
        for _ in 0..3 {
            let (message, awaited) = ingest(&listener, &[], b"{}");
            stage.forward(message).await.unwrap();
            answers.push(awaited);
        }
        assert_eq!(probe.drain().len(), 2, "two tokens, two requests through");
        let third = answers.pop().unwrap();
        assert_eq!(limited(third.outcome().await), (1, "listener"));

        clock.advance(Duration::from_secs(1));
        let (message, _awaited) = ingest(&listener, &[], b"{}");
        stage.forward(message).await.unwrap();
        assert_eq!(probe.drain().len(), 1, "a token leaked back after a second");
    }

    #[actix::test]
    async fn the_global_bucket_is_taken_after_the_listener_one() {
        let clock = Arc::new(ManualClock::default());
        let global = Arc::new(LeakyBucket::new(1, 1));
        let (next, probe) = probe();
        let stage = Stage::start(
            "rate_limit",
            4,
            RateLimitActor::new(next, RateLimiter::new(clock, Some(global))),
        );
        let listener = listener(TWO_PER_SECOND);
        let (first, _first_reply) = ingest(&listener, &[], b"{}");
        stage.forward(first).await.unwrap();
        let (second, second_reply) = ingest(&listener, &[], b"{}");
        stage.forward(second).await.unwrap();
        assert_eq!(probe.drain().len(), 1);
        assert_eq!(limited(second_reply.outcome().await), (1, "global"));
    }

    /// The Receiver's check (before verification) takes nothing and verification comes before
    /// the stage that takes: a flood of unsigned requests leaves the bucket full for signed
    /// ones; once signed ones have emptied it, everyone is refused before verification.
    #[actix::test]
    async fn unsigned_floods_cannot_drain_the_bucket() {
        let clock = Arc::new(ManualClock::default());
        let limiter = RateLimiter::new(clock, None);
        let (next, probe) = probe();
        let rate_limit = Stage::start("rate_limit", 4, RateLimitActor::new(next, limiter.clone()));
        let verify = Stage::start(
            "verify",
            4,
            VerifyActor::new(rate_limit, crate::pipeline::dedup::Deduplicator::new()),
        );
        let listener = listener(&format!(
            "{TWO_PER_SECOND}[listeners.verification]\ntype = \"hmac\"\nalgorithm = \"sha256\"\n\
             encoding = \"hex\"\nheader = \"X-Sig\"\nsecrets = [\"flood-secret\"]\n"
        ));
        // As the Receiver does: reserve (no take), then hand the request to the chain.
        let send = |signature: String| {
            let (limiter, verify, listener) = (limiter.clone(), verify.clone(), listener.clone());
            async move {
                let (mut message, mut awaited) = ingest(&listener, &[("x-sig", &signature)], b"{}");
                match limiter.reserve(&listener) {
                    Ok(reservation) => message.reservation = Some(reservation),
                    Err(refused) => return Some(Err(refused)),
                }
                verify.forward(message).await.unwrap();
                awaited.try_outcome()
            }
        };
        for _ in 0..100 {
            let forged = signed_hmac_sha256(b"not-the-secret", b"{}");
            assert!(matches!(send(forged).await, Some(Err(IngestError::Unauthorized(_)))));
        }
        let signed = || signed_hmac_sha256(b"flood-secret", b"{}");
        assert!(send(signed()).await.is_none(), "forwarded, not answered");
        assert!(send(signed()).await.is_none(), "forwarded, not answered");
        assert_eq!(probe.drain().len(), 2, "the flood took no token");
        // Empty now: refused before verification, signed or not.
        assert_eq!(limited(send(signed()).await.unwrap()), (1, "listener"));
        let forged = signed_hmac_sha256(b"not-the-secret", b"{}");
        assert_eq!(limited(send(forged).await.unwrap()), (1, "listener"));
    }
}
