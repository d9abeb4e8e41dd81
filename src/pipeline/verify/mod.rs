//! VerifyActor: proves the sender is who it claims to be, on the raw body bytes.

pub mod presets;
pub mod recipe;
pub mod scheme;

use actix::prelude::*;
use actix_web::http::header::HeaderMap;

use crate::error::IngestError;
use crate::pipeline::rate_limit::bucket::SharedClock;
use crate::pipeline::rate_limit::RateLimitActor;
use crate::pipeline::{forward, Accepted, Ingest, Outcome};
use scheme::{HeaderSource, VerifyRequest};

/// First stage of the chain.
pub struct VerifyActor {
    next: Addr<RateLimitActor>,
    // Kept for symmetry with the rate limiter; signature timestamps use wall-clock time.
    _clock: SharedClock,
}

impl VerifyActor {
    /// A verify stage forwarding to `next`.
    pub fn new(next: Addr<RateLimitActor>, clock: SharedClock) -> VerifyActor {
        VerifyActor { next, _clock: clock }
    }
}

impl Actor for VerifyActor {
    type Context = Context<Self>;
}

/// Actix's header map as the verifier's header source.
pub struct ActixHeaders<'a>(pub &'a HeaderMap);

impl HeaderSource for ActixHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Handler<Ingest> for VerifyActor {
    type Result = ResponseFuture<Outcome>;

    fn handle(&mut self, mut message: Ingest, _ctx: &mut Context<Self>) -> Self::Result {
        let delivery = &message.delivery;
        let verdict = delivery.listener.verifier.verify(&VerifyRequest {
            method: &delivery.method,
            url: &delivery.url,
            query: &delivery.query,
            headers: &ActixHeaders(&delivery.headers),
            body: &delivery.body,
            now_unix: super::unix_millis_now() / 1000,
        });
        let next = self.next.clone();
        Box::pin(async move {
            let verified = verdict.map_err(IngestError::Unauthorized)?;
            if let Some(challenge) = verified.challenge {
                // A verified handshake (Slack's url_verification) is answered, not published.
                return Ok(Accepted {
                    challenge: Some(challenge),
                    ..Accepted::default()
                });
            }
            message.delivery_id = verified.delivery_id;
            forward(&next, message).await?
        })
    }
}
