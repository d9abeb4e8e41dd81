//! VerifyActor: proves the sender is who it claims to be, on the raw body bytes.

pub mod body_token;
pub mod presets;
pub mod recipe;
pub mod request;
pub mod scheme;

use actix::prelude::*;
use actix_web::http::header::HeaderMap;

use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::rate_limit::RateLimitActor;
use crate::pipeline::{Accepted, Admitted, Ingest, Outcome, Stage};
use request::{HeaderSource, VerifyRequest};

/// First stage of the chain.
pub struct VerifyActor {
    next: Stage<RateLimitActor>,
}

impl VerifyActor {
    /// A verify stage forwarding to `next`.
    pub fn new(next: Stage<RateLimitActor>) -> VerifyActor {
        VerifyActor { next }
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

impl Handler<Admitted<Ingest>> for VerifyActor {
    type Result = ResponseFuture<Outcome>;

    fn handle(&mut self, admitted: Admitted<Ingest>, _ctx: &mut Context<Self>) -> Self::Result {
        let Admitted { mut message, permit } = admitted;
        drop(permit);
        let next = self.next.clone();
        if message.webhook.mock {
            return Box::pin(async move { next.forward(message).await? });
        }
        let webhook = &message.webhook;
        let verdict = webhook.listener.verifier.verify(&VerifyRequest {
            method: &webhook.method,
            url: &webhook.url,
            query: &webhook.query,
            headers: &ActixHeaders(&webhook.headers),
            body: &webhook.body,
            now_unix: super::unix_millis_now() / 1000,
        });
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
            // The token has done its job: no record, page or sample may carry it.
            if let Some(path) = message.webhook.listener.verifier.secret_json_path() {
                if let Some(redacted) = body_token::redact(&message.webhook.body, path) {
                    message.webhook.body = redacted.into();
                }
            }
            next.forward(message).await?
        })
    }
}
