//! RateLimitActor: a leaky bucket per listener (and optionally one per instance), checked
//! before any parsing so a 429 costs little.

pub mod bucket;

use std::sync::Arc;

use actix::prelude::*;

use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::parse::ParseActor;
use crate::pipeline::{Admitted, Ingest, Outcome, Stage};
use bucket::{LeakyBucket, SharedClock};

/// Second stage of the chain.
pub struct RateLimitActor {
    next: Stage<ParseActor>,
    clock: SharedClock,
    global: Option<Arc<LeakyBucket>>,
}

impl RateLimitActor {
    /// A rate-limit stage forwarding to `next`.
    pub fn new(next: Stage<ParseActor>, clock: SharedClock, global: Option<Arc<LeakyBucket>>) -> RateLimitActor {
        RateLimitActor { next, clock, global }
    }
}

impl Actor for RateLimitActor {
    type Context = Context<Self>;
}

impl Handler<Admitted<Ingest>> for RateLimitActor {
    type Result = ResponseFuture<Outcome>;

    fn handle(&mut self, admitted: Admitted<Ingest>, _ctx: &mut Context<Self>) -> Self::Result {
        let Admitted { message, permit } = admitted;
        drop(permit);
        let now = self.clock.now_nanos();
        // The listener's own bucket first: a noisy listener must not drain the global one.
        let verdict = if message.webhook.mock {
            Ok(())
        } else {
            message
                .webhook
                .listener
                .bucket
                .try_acquire(now)
                .map_err(|retry_after| (retry_after, "listener"))
                .and_then(|()| {
                    self.global.as_ref().map_or(Ok(()), |global| {
                        global.try_acquire(now).map_err(|retry| (retry, "global"))
                    })
                })
        };
        let next = self.next.clone();
        Box::pin(async move {
            if let Err((retry_after_secs, scope)) = verdict {
                return Err(IngestError::RateLimited {
                    retry_after_secs,
                    scope,
                });
            }
            next.forward(message).await?
        })
    }
}
